//! Factual B2B attributes read from identify and group traits: a job title's [`Seniority`] and
//! [`Department`] ([`parse_title`]), and a company's [`EmployeeBand`] ([`employee_band`]).
//! Pure functions: no I/O, work bounded by the (truncated) input's length, and no panic on any
//! input (property-tested below).
//!
//! # Job titles
//!
//! Reading. A title longer than [`MAX_TITLE_BYTES`] is cut at a char boundary first. Letters
//! are lower-cased (Unicode) and Latin diacritics folded (`Geschäftsführer` → `geschaftsfuhrer`,
//! `ß` → `ss`, combining accents dropped), and the title is split into words at every character
//! that is not alphanumeric. Segments matter for a few rules: `,` `&` `/` `|` `;` `:` `+`
//! brackets, a spaced dash (`VP - Sales`, but not `Co-Founder`) and the words *and, und, et, y,
//! or, oder, ou* separate them. Everything from *at*, *bei*, *chez* or `@` on is the employer
//! and is ignored (`Engineer at Salesforce`). Words after *to* in a segment describe someone
//! else (`Assistant to the CEO`): they never give a seniority, and give a department only when
//! nothing before them does. A word followed by *'s* names someone else too (`Founder's
//! Associate`, `CEO's Office`): it gives no seniority. German and Dutch compounds ending in a role word are split
//! (`Vertriebsleiter` → `vertrieb leiter`, `Accountmanager`, `Afdelingshoofd`), dropping a
//! linking *s* when the rest is a department word.
//!
//! Seniority: the highest rank any word gives, unless the title names a trainee or an
//! assistant, which makes it [`Seniority::Individual`] whatever else it says.
//! - C-level: the CxO abbreviations (CEO CTO CFO COO CMO CIO CISO CPO CRO CDO CSO CCO CHRO …),
//!   *Chief … Officer*, Founder / Co-founder, Owner (alone or as *Co-Owner*, *Business Owner*;
//!   not *Product Owner*), President, Chair(man) (alone or *Executive / Non-Executive / Board*
//!   Chair; not *Department Chair*), Partner (as the head noun of its segment,
//!   possibly *Senior / Managing / Founding / Equity / General* Partner; not *Partner Manager*,
//!   *HR Business Partner*), Managing Director / Partner / Member, Board Member; Geschäftsführer,
//!   Inhaber, Gründer, Vorstand(svorsitzender), Gesellschafter; PDG, DG, Directeur Général,
//!   Fondateur, Gérant; Director General, Director Ejecutivo, Gerente General, Consejero
//!   Delegado, Fundador; Algemeen Directeur, Oprichter, Eigenaar, Bestuurder.
//! - VP: VP, SVP, EVP, AVP, GVP, Vice President (any spelling: *Vice-Président*, *Vizepräsident*,
//!   *Vicepresidente*), Vice Chair. A VP is never C-level because of the word *President*.
//! - Director: Director / Directeur / Directrice / Directora / Direktor, Dir., Head (*Head of
//!   Growth*, *Marketing Head*), Hoofd, Leiter / Leitung (*Abteilungsleiter*, *Leiter Marketing*),
//!   DRH, General Manager, GM, Executive Director, and *Chief* without *Officer* (*Chief of Staff*,
//!   *Chief Architect*).
//! - Manager: Manager / Mgr, Lead (*Team Lead*, *Lead Engineer*; not *Lead Generation*), Leader,
//!   Supervisor, Superintendent, Foreman; Team-, Gruppen-, Projekt-, Filialleiter; Responsable,
//!   Chef (*Chef de projet*); Gerente, Jefe, Encargado; Teamleider, Leidinggevende. *Manager* is
//!   read literally: *Product Manager* and *Account Manager* are managers.
//! - Individual: everything else, including Principal / Staff / Senior / Junior and numbered
//!   levels. Trainees (Intern, Trainee, Apprentice, Student, Werkstudent, Praktikant, Azubi,
//!   Stagiaire, Alternant, Becario, Practicante, Stagiair) and assistants are always Individual.
//!   *Assistant* (*Assistent*, *Asistente*, *Assistante*) followed within two words by a rank
//!   word, before any linking word (*to, of, for, der, de, du, del …*), is a modifier that
//!   keeps the rank (*Assistant Manager*, *Assistant Vice President* =
//!   AVP, *Assistant General Manager*); otherwise (*Executive Assistant*, *Assistant to the
//!   Regional Manager*, *Assistant Professor*, *Assistentin der Geschäftsführung*) it makes the
//!   title Individual.
//! - *Associate*, *Deputy*, *Senior* never change a rank: *Associate Director* is a Director.
//! - Titles are read literally: *Director of First Impressions* is a Director (of nothing we
//!   know: [`Department::Other`]).
//!
//! Department: the first department term in the title, left to right, where at each word the
//! longest known term wins (so *Product Marketing* is Marketing, *Product Designer* Design,
//! *Business Development* Sales, *Information Security* Security, *Key Account Manager* Sales
//! but *Account Manager* Customer Success). So *VP Sales* is Sales, *Sales Engineer* is Sales
//! (the pre-sales team; so are *Solutions Engineer* and *Solutions Consultant*), *Security
//! Engineer* Security, *Data Engineer* Data, *Sales Operations* Sales, *Marketing & Sales*
//! Marketing. The CxO abbreviations carry theirs (CTO Engineering, CFO Finance, COO Operations,
//! CMO Marketing, CIO IT, CISO / CSO Security, CPO Product, CRO Sales, CDO Data, CHRO HR, CEO
//! Executive); a C-level title with no department term is [`Department::Executive`]; any
//! other title with none is [`Department::Other`]. The terms are the tables `DEPARTMENT_TERMS`
//! (English, German, French, Spanish, Dutch; a modest reviewed list, not an exhaustive one).
//!
//! A title none of whose words is known — no rank, trainee, role noun (*Consultant*,
//! *Specialist*, *Officer*, *Mitarbeiter*, …) or department term — is `None`: empty strings,
//! `n/a`, `-`, `123`, `asdf`, and also real titles outside the tables (*Barista*). Tags are
//! only derived from what was understood.
//!
//! # Employee counts
//!
//! [`employee_band`] accepts integers, floats (rounded down: `250.0`, `10.9` → 10) and strings:
//! a number (`250`, `1,200`, `1.200`, `1 200`, `1.5k`, `2 Mio`), optionally after *about / ca.
//! / ~* and before *employees / Mitarbeiter / salariés / empleados / medewerkers …*. A `,` `.`
//! `'` or space followed by exactly three digits groups thousands (`1.200` is 1200, as in
//! German, so `250.000` is 250000); otherwise `.` or `,` is a decimal point. Ranges:
//! - `a-b`, `a to b`, `a bis b`, `a à b`, `between a and b`: the band of the midpoint (rounded
//!   down). Vendors' bands straddle ours (`10-50`, `200-500`, `1000-5000`, Clearbit's
//!   `251-1K`), and the midpoint puts such a range in the band holding most of its width (the
//!   lower bound would put `200-500` in 51-200); for ranges aligned with ours (`51-200`)
//!   midpoint and lower bound agree. A multiplier on the upper
//!   bound only also applies to the lower one when that keeps the range ordered (`10-50k`
//!   is 10000-50000; `251-1K` stays 251-1000).
//! - `N+`, `N or more`, `more than N`, `>N`, `over N`: the band of N + 1. So round ceilings
//!   name the band above (`1000+` → 1001-5000, `10k+` → 10001+), and LinkedIn's `10,001+` is
//!   unchanged. `at least N`, `>=N`: the band of N.
//! - `<N`, `under N`, `less than N`: the band of N − 1; `up to N`, `<=N`: the band of N.
//!
//! `None` for anything else: no number, words outside the lists (`Founded 1998`), scientific
//! notation, negative numbers, zero, NaN / infinities (`"NaN"`, `"inf"`), booleans, arrays,
//! objects, and counts above [`MAX_EMPLOYEES`], which no employer has (a revenue figure or a
//! typo). Strings are cut at [`MAX_COUNT_BYTES`] first.

use crate::limits::cut_at_char;
use crate::value::Value;

/// Titles are cut to this many bytes (at a char boundary) before parsing.
pub const MAX_TITLE_BYTES: usize = 256;

/// Employee-count strings are cut to this many bytes (at a char boundary) before parsing.
pub const MAX_COUNT_BYTES: usize = 128;

/// Larger employee counts are not believed (the largest employers have about 2–3 million).
pub const MAX_EMPLOYEES: u64 = 10_000_000;

/// How senior a job title is. Ordered from the most senior: `CLevel < Vp < … < Individual`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Seniority {
    CLevel,
    Vp,
    Director,
    Manager,
    Individual,
}

impl Seniority {
    pub const ALL: [Seniority; 5] =
        [Seniority::CLevel, Seniority::Vp, Seniority::Director, Seniority::Manager, Seniority::Individual];

    /// The stable name used in tags.
    pub fn as_str(self) -> &'static str {
        match self {
            Seniority::CLevel => "c_level",
            Seniority::Vp => "vp",
            Seniority::Director => "director",
            Seniority::Manager => "manager",
            Seniority::Individual => "individual",
        }
    }
}

/// The function a job title belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Department {
    Executive,
    Engineering,
    Product,
    Design,
    Data,
    It,
    Security,
    Marketing,
    Sales,
    CustomerSuccess,
    Support,
    Finance,
    Legal,
    HumanResources,
    Operations,
    Research,
    Education,
    Other,
}

impl Department {
    pub const ALL: [Department; 18] = [
        Department::Executive,
        Department::Engineering,
        Department::Product,
        Department::Design,
        Department::Data,
        Department::It,
        Department::Security,
        Department::Marketing,
        Department::Sales,
        Department::CustomerSuccess,
        Department::Support,
        Department::Finance,
        Department::Legal,
        Department::HumanResources,
        Department::Operations,
        Department::Research,
        Department::Education,
        Department::Other,
    ];

    /// The stable name used in tags (snake_case).
    pub fn as_str(self) -> &'static str {
        match self {
            Department::Executive => "executive",
            Department::Engineering => "engineering",
            Department::Product => "product",
            Department::Design => "design",
            Department::Data => "data",
            Department::It => "it",
            Department::Security => "security",
            Department::Marketing => "marketing",
            Department::Sales => "sales",
            Department::CustomerSuccess => "customer_success",
            Department::Support => "support",
            Department::Finance => "finance",
            Department::Legal => "legal",
            Department::HumanResources => "human_resources",
            Department::Operations => "operations",
            Department::Research => "research",
            Department::Education => "education",
            Department::Other => "other",
        }
    }
}

/// What a job title says, see the [module documentation](self) for the rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct JobTitle {
    pub seniority: Seniority,
    pub department: Department,
}

/// A company's size by employee count, in LinkedIn's bands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EmployeeBand {
    B1To10,
    B11To50,
    B51To200,
    B201To500,
    B501To1000,
    B1001To5000,
    B5001To10000,
    B10001Plus,
}

impl EmployeeBand {
    pub const ALL: [EmployeeBand; 8] = [
        EmployeeBand::B1To10,
        EmployeeBand::B11To50,
        EmployeeBand::B51To200,
        EmployeeBand::B201To500,
        EmployeeBand::B501To1000,
        EmployeeBand::B1001To5000,
        EmployeeBand::B5001To10000,
        EmployeeBand::B10001Plus,
    ];

    /// The stable name used in tags.
    pub fn as_str(self) -> &'static str {
        match self {
            EmployeeBand::B1To10 => "1-10",
            EmployeeBand::B11To50 => "11-50",
            EmployeeBand::B51To200 => "51-200",
            EmployeeBand::B201To500 => "201-500",
            EmployeeBand::B501To1000 => "501-1000",
            EmployeeBand::B1001To5000 => "1001-5000",
            EmployeeBand::B5001To10000 => "5001-10000",
            EmployeeBand::B10001Plus => "10001+",
        }
    }

    /// The band holding `n` employees. Total: 0 counts as the smallest band (but
    /// [`employee_band`] answers `None` for a count of 0).
    pub fn from_count(n: u64) -> EmployeeBand {
        match n {
            0..=10 => EmployeeBand::B1To10,
            11..=50 => EmployeeBand::B11To50,
            51..=200 => EmployeeBand::B51To200,
            201..=500 => EmployeeBand::B201To500,
            501..=1000 => EmployeeBand::B501To1000,
            1001..=5000 => EmployeeBand::B1001To5000,
            5001..=10_000 => EmployeeBand::B5001To10000,
            _ => EmployeeBand::B10001Plus,
        }
    }

    /// The smallest and largest count in the band (`None`: no upper bound).
    pub fn bounds(self) -> (u64, Option<u64>) {
        match self {
            EmployeeBand::B1To10 => (1, Some(10)),
            EmployeeBand::B11To50 => (11, Some(50)),
            EmployeeBand::B51To200 => (51, Some(200)),
            EmployeeBand::B201To500 => (201, Some(500)),
            EmployeeBand::B501To1000 => (501, Some(1000)),
            EmployeeBand::B1001To5000 => (1001, Some(5000)),
            EmployeeBand::B5001To10000 => (5001, Some(10_000)),
            EmployeeBand::B10001Plus => (10_001, None),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Job titles: the tables. Words are lower-case and diacritic-free (as `fold_into` leaves them);
// a term of several words matches consecutive words; a word ending in `*` matches any word it
// begins (`recruit*`: recruiter, recruiting).
// ---------------------------------------------------------------------------------------------

/// Department terms. Each term belongs to one department (tested).
const DEPARTMENT_TERMS: &[(Department, &[&str])] = &[
    (
        Department::Executive,
        &[
            "ceo",
            "chief executive",
            "chief of staff",
            "executive assistant",
            "executive director",
            "office of the ceo",
            "board",
            "geschaftsfuhrung",
            "geschaeftsfuehrung",
            "direction generale",
            "direccion general",
        ],
    ),
    (
        Department::Engineering,
        &[
            "engineering",
            "engineer",
            "engineers",
            "eng",
            "engg",
            "developer",
            "developers",
            "development",
            "dev",
            "devs",
            "software",
            "devops",
            "sre",
            "site reliability",
            "frontend",
            "front end",
            "backend",
            "back end",
            "fullstack",
            "full stack",
            "programmer",
            "programming",
            "architect",
            "architecture",
            "technology",
            "technologies",
            "tech",
            "qa",
            "quality assurance",
            "tester",
            "firmware",
            "embedded",
            "ios",
            "android",
            "scrum",
            "agile",
            "cto",
            "r d",
            "i d",
            "research and development",
            "ingenieur",
            "ingenieurin",
            "ingeniero",
            "ingeniera",
            "ingenieria",
            "developpeur",
            "developpeuse",
            "developpement",
            "logiciel",
            "desarrollador",
            "desarrolladora",
            "desarrollo",
            "programador",
            "programadora",
            "entwickler",
            "entwicklerin",
            "entwicklung",
            "technik",
            "technisch*",
            "technologie",
            "tecnologia",
            "ontwikkelaar",
            "ontwikkeling",
            "programmeur",
        ],
    ),
    (Department::Product, &["product", "products", "produkt", "produit", "producto", "cpo"]),
    (
        Department::Design,
        &[
            "design",
            "designer",
            "designers",
            "ux",
            "ui",
            "user experience",
            "user research",
            "user researcher",
            "creative",
            "art director",
            "art direction",
            "illustrator",
            "graphic*",
            "grafik*",
            "product design",
            "product designer",
            "diseno",
            "disenador",
            "disenadora",
            "ontwerper",
        ],
    ),
    (
        Department::Data,
        &[
            "data",
            "analytics",
            "analyst",
            "analysts",
            "analista",
            "data scientist",
            "data science",
            "machine learning",
            "ml",
            "ai",
            "artificial intelligence",
            "bi",
            "business intelligence",
            "statistician",
            "statistics",
            "insights",
            "cdo",
            "caio",
            "daten",
            "donnees",
            "datos",
        ],
    ),
    (
        Department::It,
        &[
            "it",
            "ict",
            "sysadmin",
            "system administrator",
            "systems administrator",
            "system administration",
            "systems administration",
            "systemadministrator",
            "helpdesk",
            "help desk",
            "service desk",
            "desktop support",
            "information technology",
            "information systems",
            "information",
            "network",
            "networks",
            "infrastructure",
            "cio",
            "edv",
            "informatique",
            "informatica",
            "informatik",
            "sistemas",
            "ti",
            "automatisering",
            "systemes d information",
        ],
    ),
    (
        Department::Security,
        &[
            "security",
            "cyber*",
            "infosec",
            "information security",
            "it security",
            "it sicherheit",
            "ciso",
            "cso",
            "sicherheit",
            "informationssicherheit",
            "securite",
            "seguridad",
            "beveiliging",
            "penetration tester",
            "pentester",
        ],
    ),
    (
        Department::Marketing,
        &[
            "marketing",
            "marketer",
            "marketeer",
            "mktg",
            "mkt",
            "cmo",
            "growth",
            "brand",
            "branding",
            "demand gen",
            "demand generation",
            "demandgen",
            "seo",
            "sem",
            "ppc",
            "content",
            "copywriter",
            "copywriting",
            "communications",
            "communication",
            "comms",
            "pr",
            "public relations",
            "social media",
            "community",
            "lead gen",
            "lead generation",
            "leadgen",
            "product marketing",
            "partner marketing",
            "customer marketing",
            "events",
            "abm",
            "account based marketing",
            "devrel",
            "developer relations",
            "developer advocate",
            "evangelist",
            "editor",
            "editorial",
            "mercadeo",
            "mercadotecnia",
            "kommunikation",
            "werbung",
        ],
    ),
    (
        Department::Sales,
        &[
            "sales",
            "salesperson",
            "salesman",
            "saleswoman",
            "business development",
            "lead development",
            "bizdev",
            "bd",
            "bdr",
            "sdr",
            "ae",
            "account executive",
            "key account",
            "presales",
            "pre sales",
            "solutions engineer",
            "solution engineer",
            "solutions consultant",
            "ingeniero de ventas",
            "ingeniera de ventas",
            "ingenieur commercial",
            "ingenieure commerciale",
            "preventa",
            "revenue",
            "cro",
            "commercial",
            "commerciale",
            "comercial",
            "commercieel",
            "vertrieb",
            "verkauf",
            "verkoop",
            "vente",
            "ventes",
            "ventas",
            "developpement commercial",
            "desarrollo de negocio",
            "desarrollo de negocios",
            "ejecutivo de cuentas",
            "ejecutiva de cuentas",
            "channel",
            "partnerships",
            "alliances",
            "partner manager",
        ],
    ),
    (
        Department::CustomerSuccess,
        &[
            "customer success",
            "client success",
            "customer experience",
            "cx",
            "csm",
            "account manager",
            "account management",
            "account director",
            "customer onboarding",
            "onboarding",
            "implementation",
            "customer officer",
            "client services",
            "customer relations",
        ],
    ),
    (
        Department::Support,
        &[
            "support",
            "customer service",
            "customer support",
            "customer care",
            "soporte",
            "kundenservice",
            "kundendienst",
            "kundensupport",
            "service client",
            "atencion al cliente",
            "klantenservice",
        ],
    ),
    (
        Department::Finance,
        &[
            "finance",
            "financial",
            "finances",
            "accounting",
            "accountant",
            "accounts",
            "controller",
            "controlling",
            "comptroller",
            "cfo",
            "treasury",
            "treasurer",
            "tax",
            "audit",
            "auditor",
            "bookkeeper",
            "bookkeeping",
            "payroll",
            "fp a",
            "fpa",
            "investment",
            "investor relations",
            "billing",
            "finanz",
            "finanzen",
            "kaufmannisch*",
            "financier",
            "financiere",
            "buchhaltung",
            "buchhalter",
            "buchhalterin",
            "rechnungswesen",
            "steuer",
            "comptabilite",
            "comptable",
            "finanzas",
            "financiero",
            "financiera",
            "contabilidad",
            "contable",
            "contador",
            "contadora",
            "financien",
            "financieel",
            "boekhouding",
            "boekhouder",
        ],
    ),
    (
        Department::Legal,
        &[
            "legal",
            "counsel",
            "general counsel",
            "lawyer",
            "attorney",
            "paralegal",
            "compliance",
            "privacy",
            "data protection",
            "dpo",
            "solicitor",
            "barrister",
            "jurist",
            "juristin",
            "justiziar",
            "justitiar",
            "syndikus",
            "rechtsanwalt",
            "rechtsanwaltin",
            "recht",
            "rechtsabteilung",
            "juridique",
            "juriste",
            "avocat",
            "avocate",
            "abogado",
            "abogada",
            "juridico",
            "juridica",
            "advocaat",
            "juridisch",
        ],
    ),
    (
        Department::HumanResources,
        &[
            "hr",
            "human resources",
            "human resource",
            "people",
            "talent",
            "recruit*",
            "headhunter",
            "head hunter",
            "chro",
            "hrbp",
            "personal",
            "personalwesen",
            "rh",
            "drh",
            "ressources humaines",
            "rrhh",
            "recursos humanos",
            "personeelszaken",
            "learning and development",
            "benefits",
            "compensation",
        ],
    ),
    (
        Department::Operations,
        &[
            "operations",
            "operation",
            "operational",
            "operating",
            "ops",
            "coo",
            "logistics",
            "logistik",
            "logistique",
            "logistica",
            "logistiek",
            "supply chain",
            "procurement",
            "purchasing",
            "facilities",
            "facility",
            "office",
            "admin",
            "administration",
            "administrative",
            "revenue operations",
            "revops",
            "bizops",
            "business operations",
            "einkauf",
            "produktion",
            "betrieb",
            "achats",
            "operaciones",
            "compras",
            "inkoop",
        ],
    ),
    (
        Department::Research,
        &[
            "research",
            "researcher",
            "scientist",
            "scientific",
            "forschung",
            "recherche",
            "investigacion",
            "onderzoek",
            "onderzoeker",
        ],
    ),
    (
        Department::Education,
        &[
            "teacher",
            "professor",
            "lecturer",
            "educator",
            "instructor",
            "tutor",
            "faculty",
            "teaching",
            "education",
            "trainer",
            "curriculum",
            "lehrer",
            "lehrerin",
            "dozent",
            "dozentin",
            "enseignant",
            "enseignante",
            "professeur",
            "profesor",
            "profesora",
            "maestro",
            "maestra",
            "docente",
            "leraar",
            "docent",
        ],
    ),
];

/// Terms that look like a department term but are not one: they are consumed, so their words
/// give no department (`Personal Assistant` is not HR, as German `Personal` would be).
const NEUTRAL_TERMS: &[&str] = &["personal assistant", "personal trainer", "personal banker"];

/// Words that are a rank whatever surrounds them (the contextual ones are in [`rank_at`]).
const RANK_WORDS: &[(Seniority, &[&str])] = &[
    (
        Seniority::CLevel,
        &[
            "ceo",
            "cto",
            "cfo",
            "coo",
            "cmo",
            "cio",
            "ciso",
            "cpo",
            "cro",
            "cdo",
            "cso",
            "cco",
            "chro",
            "cxo",
            "cao",
            "caio",
            "founder",
            "founders",
            "cofounder",
            "cofounders",
            "proprietor",
            "pdg",
            "dg",
            "geschaftsfuhr*",
            "geschaeftsfuehr*",
            "vorstand*",
            "inhaber",
            "inhaberin",
            "grunder",
            "grunderin",
            "gruender",
            "gruenderin",
            "mitgrunder",
            "mitgrunderin",
            "mitgruender",
            "gesellschafter",
            "gesellschafterin",
            "vorsitzender",
            "vorsitzende",
            "fondateur",
            "fondatrice",
            "cofondateur",
            "cofondatrice",
            "gerant",
            "gerante",
            "proprietaire",
            "fundador",
            "fundadora",
            "cofundador",
            "cofundadora",
            "propietario",
            "propietaria",
            "oprichter",
            "medeoprichter",
            "eigenaar",
            "bestuurder",
        ],
    ),
    (
        Seniority::Vp,
        &[
            "vp",
            "vps",
            "svp",
            "evp",
            "avp",
            "gvp",
            "vicepresident",
            "vicepresidente",
            "vicepresidenta",
            "vizeprasident",
            "vizeprasidentin",
            "vizepraesident",
        ],
    ),
    (
        Seniority::Director,
        &[
            "director",
            "directors",
            "directora",
            "directeur",
            "directrice",
            "direktor",
            "direktorin",
            "dir",
            "gm",
            "hoofd",
            "drh",
        ],
    ),
    (
        Seniority::Manager,
        &[
            "manager",
            "managers",
            "managerin",
            "mgr",
            "mngr",
            "supervisor",
            "supervisora",
            "superviseur",
            "superintendent",
            "foreman",
            "leader",
            "teamlead",
            "jefe",
            "jefa",
            "chef",
            "chefin",
            "cheffe",
            "responsable",
            "encargado",
            "encargada",
            "gerente",
            "gerenta",
            "leider",
            "teamleider",
            "leidinggevende",
        ],
    ),
];

/// Words whose rank depends on their neighbours; handled in [`rank_at`].
const CONTEXT_RANK_WORDS: &[&str] = &[
    "president",
    "presidente",
    "presidenta",
    "prasident",
    "praesident",
    "chair",
    "chairman",
    "chairwoman",
    "chairperson",
    "owner",
    "partner",
    "chief",
    "managing",
    "general",
    "ejecutivo",
    "ejecutiva",
    "delegado",
    "delegada",
    "algemeen",
    "board",
    "head",
    "leiter",
    "leiterin",
    "leitung",
    "lead",
];

/// Trainees: the title is Individual whatever else it says.
const TRAINEE_WORDS: &[&str] = &[
    "intern",
    "interns",
    "internship",
    "trainee",
    "trainees",
    "apprentice",
    "apprenticeship",
    "student",
    "studentin",
    "werkstudent",
    "werkstudentin",
    "praktikant",
    "praktikantin",
    "azubi",
    "auszubildende",
    "auszubildender",
    "stagiaire",
    "alternant",
    "alternante",
    "becario",
    "becaria",
    "practicante",
    "estudiante",
    "etudiant",
    "etudiante",
    "stagiair",
];

/// Assistants: Individual, unless a rank word follows (`Assistant Manager`).
const ASSISTANT_WORDS: &[&str] = &[
    "assistant",
    "assistants",
    "assistante",
    "assistent",
    "assistentin",
    "assistenz",
    "asistente",
    "assistente",
];

/// Words that name a job without a rank or a department: they make a title understood.
const ROLE_NOUNS: &[&str] = &[
    "consultant",
    "consultants",
    "specialist",
    "specialists",
    "associate",
    "coordinator",
    "coordinador",
    "coordinadora",
    "coordinateur",
    "coordinatrice",
    "representative",
    "rep",
    "officer",
    "advisor",
    "adviser",
    "administrator",
    "agent",
    "clerk",
    "technician",
    "employee",
    "staff",
    "member",
    "worker",
    "professional",
    "operator",
    "expert",
    "executive",
    "strategist",
    "senior",
    "junior",
    "sr",
    "jr",
    "principal",
    "fellow",
    "deputy",
    "freelancer",
    "freelance",
    "contractor",
    "mitarbeiter",
    "mitarbeiterin",
    "sachbearbeiter",
    "sachbearbeiterin",
    "berater",
    "beraterin",
    "referent",
    "referentin",
    "consultor",
    "consultora",
    "empleado",
    "empleada",
    "medewerker",
    "adviseur",
    "charge",
    "chargee",
    "employe",
    "technicien",
    "vice",
    "owner",
    "partner",
    "chair",
];

/// `Lead` followed by one of these is not a rank (`Lead Generation Specialist`).
const LEAD_NOT_RANK: &[&str] = &[
    "gen",
    "generation",
    "generations",
    "nurturing",
    "qualification",
    "management",
    "scoring",
    "routing",
    "development",
];

/// Words that may precede `Partner` when it is a rank (`Senior Partner`).
const PARTNER_MODIFIERS: &[&str] =
    &["senior", "sr", "managing", "founding", "general", "equity", "salaried", "junior", "co", "name"];

/// Words that may precede `Chair` when it is a rank (`Executive Chairman`; not `Department
/// Chair`).
const CHAIR_MODIFIERS: &[&str] =
    &["co", "executive", "non", "independent", "board", "deputy", "vice", "vize"];

/// Words that may precede `Owner` when it is a rank (`Co-Owner`, `Business Owner`).
const OWNER_MODIFIERS: &[&str] = &["co", "business", "sole", "company", "franchise"];

/// The spellings of `director` after which `general` makes a chief executive.
const DIRECTOR_WORDS: &[&str] =
    &["director", "directora", "directeur", "directrice", "direktor", "direktorin"];

/// A rank word `Leiter` after these is a team lead (Manager), not a head of department.
const TEAM_WORDS: &[&str] = &["team", "gruppe", "gruppen", "projekt", "schicht", "filial", "filiale"];

/// German and Dutch role words that end compounds (`Vertriebsleiter`, `Accountmanager`).
/// Longer spellings first.
const COMPOUND_SUFFIXES: &[&str] = &[
    "leiterin",
    "leiter",
    "leitung",
    "managerin",
    "manager",
    "direktorin",
    "direktor",
    "vorstand",
    "entwicklerin",
    "entwickler",
    "ingenieurin",
    "ingenieur",
    "beraterin",
    "berater",
    "referentin",
    "referent",
    "assistentin",
    "assistent",
    "assistenz",
    "mitarbeiterin",
    "mitarbeiter",
    "specialist",
    "designer",
    "analyst",
    "medewerker",
    "leider",
    "hoofd",
    "chefin",
    "chef",
];

/// Words after which an assistant's title names whom they assist.
const LINKING_WORDS: &[&str] =
    &["to", "of", "for", "fur", "der", "des", "de", "du", "del", "da", "van", "von"];

/// Words that end the title: what follows is the employer.
const CUT_WORDS: &[&str] = &["at", "bei", "chez"];

/// Words that join two segments (`Founder and CEO`).
const CONNECTORS: &[&str] = &["and", "und", "et", "y", "or", "oder", "ou"];

// ---------------------------------------------------------------------------------------------
// Job titles: the parser.
// ---------------------------------------------------------------------------------------------

/// Parses a free-text job title into its seniority and department; `None` when nothing in it
/// is known (empty, placeholders, garbage). See the [module documentation](self) for the rules.
pub fn parse_title(title: &str) -> Option<JobTitle> {
    let tokens = tokenize(cut_at_char(title, MAX_TITLE_BYTES));
    let mut understood = false;

    let mut trainee = false;
    let mut rank: Option<Seniority> = None;
    for i in 0..tokens.len() {
        let word = tokens[i].word.as_str();
        let marks_individual =
            TRAINEE_WORDS.contains(&word) || (ASSISTANT_WORDS.contains(&word) && !rank_follows(&tokens, i));
        let this_rank = rank_at(&tokens, i);
        understood |= marks_individual || this_rank.is_some() || ROLE_NOUNS.contains(&word);
        if tokens[i].after_to {
            continue;
        }
        trainee |= marks_individual;
        if let Some(r) = this_rank {
            rank = Some(rank.map_or(r, |best| best.min(r)));
        }
    }
    let seniority = if trainee { Seniority::Individual } else { rank.unwrap_or(Seniority::Individual) };

    let mut own = None;
    let mut theirs = None;
    let mut i = 0;
    while i < tokens.len() {
        match term_at(&tokens, i) {
            Some((len, department)) => {
                understood = true;
                if let Some(department) = department {
                    let slot = if tokens[i].after_to { &mut theirs } else { &mut own };
                    slot.get_or_insert(department);
                }
                i += len;
            }
            None => i += 1,
        }
    }
    let department = own.or(theirs).unwrap_or(if seniority == Seniority::CLevel {
        Department::Executive
    } else {
        Department::Other
    });

    understood.then_some(JobTitle { seniority, department })
}

/// One word of a title.
#[derive(Debug)]
struct Token {
    word: String,
    /// Words in different segments were separated by punctuation or a connector.
    segment: u32,
    /// After `to` in its segment (`Assistant to the CEO`): about someone else.
    after_to: bool,
    /// Followed by `'s`: about someone else.
    possessive: bool,
}

fn is_combining_mark(c: char) -> bool {
    ('\u{300}'..='\u{36f}').contains(&c)
}

/// Pushes `c` lower-cased, with Latin diacritics removed.
fn fold_into(c: char, out: &mut String) {
    for l in c.to_lowercase() {
        match l {
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => out.push('a'),
            'ç' | 'ć' | 'č' => out.push('c'),
            'ď' | 'đ' => out.push('d'),
            'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ė' | 'ę' | 'ě' => out.push('e'),
            'ğ' => out.push('g'),
            'ì' | 'í' | 'î' | 'ï' | 'ī' | 'ı' => out.push('i'),
            'ł' => out.push('l'),
            'ñ' | 'ń' | 'ň' => out.push('n'),
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ő' => out.push('o'),
            'ř' => out.push('r'),
            'ś' | 'š' | 'ş' => out.push('s'),
            'ť' | 'ţ' => out.push('t'),
            'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' | 'ű' => out.push('u'),
            'ý' | 'ÿ' => out.push('y'),
            'ź' | 'ż' | 'ž' => out.push('z'),
            'ß' => out.push_str("ss"),
            'æ' => out.push_str("ae"),
            'œ' => out.push_str("oe"),
            c if is_combining_mark(c) => {}
            c => out.push(c),
        }
    }
}

fn tokenize(title: &str) -> Vec<Token> {
    let chars: Vec<char> = title.chars().collect();
    let mut t = Tokenizer { tokens: Vec::new(), word: String::new(), segment: 0, after_to: false };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        if is_combining_mark(c) {
            continue;
        }
        if c.is_alphanumeric() {
            fold_into(c, &mut t.word);
            continue;
        }
        // A possessive (`Founder's Associate`): the word names someone else.
        let possessive = matches!(c, '\'' | '’')
            && !t.word.is_empty()
            && matches!(chars.get(i), Some('s' | 'S'))
            && !chars.get(i + 1).is_some_and(|c| c.is_alphanumeric());
        if !t.end_word() || c == '@' {
            return t.tokens;
        }
        if possessive {
            if let Some(last) = t.tokens.last_mut() {
                last.possessive = true;
            }
            i += 1;
        }
        if breaks_segment(&chars, i - 1) {
            t.new_segment();
        }
    }
    t.end_word();
    t.tokens
}

struct Tokenizer {
    tokens: Vec<Token>,
    word: String,
    segment: u32,
    after_to: bool,
}

impl Tokenizer {
    fn new_segment(&mut self) {
        self.segment += 1;
        self.after_to = false;
    }

    /// Pushes the word being read, if any; false when the title ends there (`… at Acme`).
    fn end_word(&mut self) -> bool {
        if self.word.is_empty() {
            return true;
        }
        let word = std::mem::take(&mut self.word);
        if CUT_WORDS.contains(&word.as_str()) && !self.tokens.is_empty() {
            return false;
        }
        if CONNECTORS.contains(&word.as_str()) {
            self.new_segment();
            self.push(word);
            self.new_segment();
        } else if word == "to" {
            self.push(word);
            self.after_to = true;
        } else {
            self.push_compound(word);
        }
        true
    }

    fn push(&mut self, word: String) {
        self.tokens.push(Token { word, segment: self.segment, after_to: self.after_to, possessive: false });
    }

    /// Pushes `word`, split in two when it is a compound ending in a role word.
    fn push_compound(&mut self, word: String) {
        for suffix in COMPOUND_SUFFIXES {
            if word.len() >= suffix.len() + 3 && word.ends_with(suffix) {
                let mut prefix = &word[..word.len() - suffix.len()];
                if let Some(stem) = prefix.strip_suffix('s')
                    && is_department_word(stem)
                {
                    prefix = stem;
                }
                let prefix = prefix.to_owned();
                self.push(prefix);
                self.push((*suffix).to_owned());
                return;
            }
        }
        self.push(word);
    }
}

/// Whether the separator at `chars[i]` ends a segment: most punctuation does, a dash only with
/// a space on one side (`VP - Sales`, not `Co-Founder`).
fn breaks_segment(chars: &[char], i: usize) -> bool {
    match chars[i] {
        ',' | '&' | '/' | '\\' | '|' | ';' | ':' | '(' | ')' | '[' | ']' | '{' | '}' | '+' | '–' | '—'
        | '·' | '•' | '!' | '?' => true,
        '-' | '‐' | '‑' | '‒' | '−' => {
            let before = i.checked_sub(1).and_then(|j| chars.get(j));
            before.is_none_or(|c| c.is_whitespace()) || chars.get(i + 1).is_none_or(|c| c.is_whitespace())
        }
        _ => false,
    }
}

/// Whether a table word (possibly ending in `*`) matches `word`.
fn word_matches(pattern: &str, word: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => word.starts_with(prefix),
        None => pattern == word,
    }
}

/// The number of words `term` matches at `tokens[i..]`, if it matches.
fn term_len(term: &str, tokens: &[Token], i: usize) -> Option<usize> {
    let mut len = 0;
    for pattern in term.split(' ') {
        let token = tokens.get(i + len)?;
        if !word_matches(pattern, &token.word) {
            return None;
        }
        len += 1;
    }
    Some(len)
}

/// The longest department (or neutral) term at `tokens[i]`: its length and department.
fn term_at(tokens: &[Token], i: usize) -> Option<(usize, Option<Department>)> {
    let mut best: Option<(usize, Option<Department>)> = None;
    let mut consider = |len: usize, department: Option<Department>| {
        if best.is_none_or(|(longest, _)| len > longest) {
            best = Some((len, department));
        }
    };
    for (department, terms) in DEPARTMENT_TERMS {
        for term in *terms {
            if let Some(len) = term_len(term, tokens, i) {
                consider(len, Some(*department));
            }
        }
    }
    for term in NEUTRAL_TERMS {
        if let Some(len) = term_len(term, tokens, i) {
            consider(len, None);
        }
    }
    best
}

fn is_department_word(word: &str) -> bool {
    DEPARTMENT_TERMS
        .iter()
        .flat_map(|(_, terms)| terms.iter())
        .any(|t| !t.contains(' ') && word_matches(t, word))
}

fn rank_word(word: &str) -> Option<Seniority> {
    RANK_WORDS
        .iter()
        .find(|(_, words)| words.iter().any(|w| word_matches(w, word)))
        .map(|(seniority, _)| *seniority)
}

/// Whether a rank word follows `tokens[i]` within two words of its segment, before any linking
/// word (`Assistant Manager`, `Assistant General Manager`; not `Assistant to the Manager`,
/// `Assistentin der Geschäftsführung`).
fn rank_follows(tokens: &[Token], i: usize) -> bool {
    let segment = tokens[i].segment;
    tokens
        .iter()
        .enumerate()
        .skip(i + 1)
        .take(2)
        .take_while(|(_, t)| t.segment == segment && !LINKING_WORDS.contains(&t.word.as_str()))
        .any(|(j, t)| {
            rank_word(&t.word).is_some()
                || (CONTEXT_RANK_WORDS.contains(&t.word.as_str()) && rank_at(tokens, j).is_some())
        })
}

/// The rank `tokens[i]` gives, given its neighbours.
fn rank_at(tokens: &[Token], i: usize) -> Option<Seniority> {
    let token = &tokens[i];
    let word = token.word.as_str();
    let at = |j: Option<usize>| j.and_then(|j| tokens.get(j)).map(|t| t.word.as_str());
    let prev = at(i.checked_sub(1));
    let next = at(Some(i + 1));
    let same_segment = |j: usize| tokens.get(j).is_some_and(|t| t.segment == token.segment);
    // The words before this one in its segment.
    let mut before = tokens[..i].iter().rev().take_while(|t| t.segment == token.segment);
    match word {
        _ if token.possessive => None,
        "president" | "presidente" | "presidenta" | "prasident" | "praesident" => {
            if matches!(prev, Some("vice" | "vize")) { Some(Seniority::Vp) } else { Some(Seniority::CLevel) }
        }
        "chair" | "chairman" | "chairwoman" | "chairperson" => {
            if !before.all(|t| CHAIR_MODIFIERS.contains(&t.word.as_str())) {
                None
            } else if matches!(prev, Some("vice" | "vize")) {
                Some(Seniority::Vp)
            } else {
                Some(Seniority::CLevel)
            }
        }
        "owner" => before.all(|t| OWNER_MODIFIERS.contains(&t.word.as_str())).then_some(Seniority::CLevel),
        "partner" => (before.all(|t| PARTNER_MODIFIERS.contains(&t.word.as_str())) && !same_segment(i + 1))
            .then_some(Seniority::CLevel),
        "chief" => {
            if tokens[i + 1..].iter().any(|t| t.word == "officer") {
                Some(Seniority::CLevel)
            } else {
                Some(Seniority::Director)
            }
        }
        "managing" => matches!(next, Some("director" | "partner" | "member")).then_some(Seniority::CLevel),
        "general" => {
            let after = at(Some(i + 2));
            if matches!(prev, Some("gerente" | "gerenta")) {
                Some(Seniority::CLevel)
            } else if prev.is_some_and(|w| DIRECTOR_WORDS.contains(&w))
                && i > 0
                && same_segment(i - 1)
                && (!same_segment(i + 1) || matches!(next, Some("de" | "du" | "des" | "del" | "d")))
            {
                // Directeur général, Director General (de Acme); not Director, General Counsel.
                Some(Seniority::CLevel)
            } else if matches!(next, Some("manager" | "managerin")) {
                Some(Seniority::Director)
            } else if next.is_some_and(|w| DIRECTOR_WORDS.contains(&w)) && after.is_none() {
                Some(Seniority::CLevel)
            } else {
                None
            }
        }
        "ejecutivo" | "ejecutiva" => {
            prev.is_some_and(|w| DIRECTOR_WORDS.contains(&w)).then_some(Seniority::CLevel)
        }
        "delegado" | "delegada" => {
            matches!(prev, Some("consejero" | "consejera")).then_some(Seniority::CLevel)
        }
        "algemeen" => matches!(next, Some("directeur" | "directrice")).then_some(Seniority::CLevel),
        "board" => {
            let member = matches!(next, Some("member" | "director" | "chair" | "chairman"))
                || before.any(|t| t.word == "member");
            member.then_some(Seniority::CLevel)
        }
        "head" => (next != Some("hunter")).then_some(Seniority::Director),
        "leiter" | "leiterin" | "leitung" => {
            if prev.is_some_and(|w| TEAM_WORDS.contains(&w)) {
                Some(Seniority::Manager)
            } else {
                Some(Seniority::Director)
            }
        }
        "lead" => (!next.is_some_and(|w| LEAD_NOT_RANK.contains(&w)) || !same_segment(i + 1))
            .then_some(Seniority::Manager),
        _ => rank_word(word),
    }
}

// ---------------------------------------------------------------------------------------------
// Employee counts.
// ---------------------------------------------------------------------------------------------

/// The employee-count band of a trait value; `None` when it is not a plausible count. See the
/// [module documentation](self) for what is accepted and how ranges are placed.
pub fn employee_band(value: &Value) -> Option<EmployeeBand> {
    let count = match value {
        Value::Int(n) => u64::try_from(*n).ok()?,
        Value::Float(x) => whole(*x)?,
        Value::String(s) => parse_count(cut_at_char(s, MAX_COUNT_BYTES))?,
        Value::Null | Value::Bool(_) | Value::Array(_) | Value::Object(_) => return None,
    };
    (1..=MAX_EMPLOYEES).contains(&count).then(|| EmployeeBand::from_count(count))
}

/// `x` rounded down, if it is a finite non-negative number (saturating at `u64::MAX`).
fn whole(x: f64) -> Option<u64> {
    (x.is_finite() && x >= 0.0).then(|| x.floor() as u64)
}

#[derive(Clone, Debug, PartialEq)]
enum Lexeme {
    /// `raw × factor`: `10k` is 10 × 1000.
    Num {
        raw: f64,
        factor: f64,
    },
    Word(String),
    Sym(char),
}

impl Lexeme {
    fn is_word(&self, words: &[&str]) -> bool {
        matches!(self, Lexeme::Word(w) if words.contains(&w.as_str()))
    }
}

/// Characters that group thousands when exactly three digits follow.
const GROUP_SEPARATORS: &[char] = &[',', '.', '\'', '’', ' ', '\u{a0}', '\u{202f}', '\u{2009}'];

/// Dashes between the bounds of a range.
const DASHES: &[char] = &['-', '‐', '‑', '‒', '–', '—', '−'];

/// Words dropped wherever they are: what is counted, and approximations.
const COUNT_NOISE: &[&str] = &[
    "employees",
    "employee",
    "emp",
    "emps",
    "staff",
    "people",
    "persons",
    "person",
    "fte",
    "ftes",
    "headcount",
    "total",
    "mitarbeiter",
    "mitarbeitende",
    "mitarbeiterinnen",
    "beschaftigte",
    "angestellte",
    "salaries",
    "employes",
    "personnes",
    "empleados",
    "trabajadores",
    "personas",
    "medewerkers",
    "werknemers",
    "about",
    "around",
    "approx",
    "approximately",
    "roughly",
    "circa",
    "ca",
    "etwa",
    "environ",
    "aprox",
    "aproximadamente",
    "ongeveer",
];

/// Symbols dropped wherever they are.
const COUNT_NOISE_SYMBOLS: &[char] = &['.', '(', ')', '[', ']', ':', '~', '≈', '"'];

/// Multipliers after a number.
fn multiplier(word: &str) -> Option<f64> {
    match word {
        "k" | "thousand" | "tsd" | "mil" => Some(1e3),
        "m" | "mm" | "mio" | "million" | "millions" | "millionen" | "millones" => Some(1e6),
        _ => None,
    }
}

/// What the words before the number say about it.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Bound {
    Exactly,
    MoreThan,
    AtLeast,
    LessThan,
    AtMost,
    Between,
}

fn parse_count(s: &str) -> Option<u64> {
    let lexemes: Vec<Lexeme> = lex(s)
        .into_iter()
        .filter(|l| match l {
            Lexeme::Word(w) => !COUNT_NOISE.contains(&w.as_str()),
            Lexeme::Sym(c) => !COUNT_NOISE_SYMBOLS.contains(c),
            Lexeme::Num { .. } => true,
        })
        .collect();
    // Attach multipliers to their numbers.
    let mut items: Vec<Lexeme> = Vec::with_capacity(lexemes.len());
    for lexeme in lexemes {
        if let (Lexeme::Word(w), Some(Lexeme::Num { factor, .. })) = (&lexeme, items.last_mut())
            && *factor == 1.0
            && let Some(m) = multiplier(w)
        {
            *factor = m;
            continue;
        }
        items.push(lexeme);
    }

    let (bound, rest) = bound_prefix(&items);
    match rest {
        [Lexeme::Num { raw, factor }] => {
            let n = raw * factor;
            match bound {
                Bound::Exactly | Bound::AtLeast | Bound::AtMost => whole(n),
                Bound::MoreThan => whole(n)?.checked_add(1),
                Bound::LessThan => whole(n.ceil())?.checked_sub(1),
                Bound::Between => None,
            }
        }
        [Lexeme::Num { raw, factor }, tail @ ..] if bound == Bound::Exactly && is_open_suffix(tail) => {
            whole(raw * factor)?.checked_add(1)
        }
        [Lexeme::Num { raw: a, factor: fa }, separator, Lexeme::Num { raw: b, factor: fb }]
            if matches!(bound, Bound::Exactly | Bound::Between) && is_range_separator(separator) =>
        {
            // `10-50k` is 10k-50k; `251-1K` is 251-1000.
            let fa = if *fa == 1.0 && a <= b { *fb } else { *fa };
            let (lo, hi) = (whole(a * fa)?, whole(b * fb)?);
            let (lo, hi) = (lo.min(hi), lo.max(hi));
            Some(lo + (hi - lo) / 2)
        }
        _ => None,
    }
}

fn lex(s: &str) -> Vec<Lexeme> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() || is_combining_mark(c) {
            i += 1;
        } else if c.is_ascii_digit() {
            out.push(Lexeme::Num { raw: lex_number(&chars, &mut i), factor: 1.0 });
        } else if c.is_alphabetic() {
            let mut word = String::new();
            while let Some(&c) = chars.get(i).filter(|c| c.is_alphabetic() || is_combining_mark(**c)) {
                fold_into(c, &mut word);
                i += 1;
            }
            out.push(Lexeme::Word(word));
        } else {
            out.push(Lexeme::Sym(c));
            i += 1;
        }
    }
    out
}

/// Reads the number at `chars[*i]` (an ASCII digit): digits, groups of three after a
/// separator, then an optional decimal part after `.` or `,`.
fn lex_number(chars: &[char], i: &mut usize) -> f64 {
    let digit_at = |j: usize| chars.get(j).is_some_and(char::is_ascii_digit);
    let mut text = String::new();
    while digit_at(*i) {
        text.push(chars[*i]);
        *i += 1;
    }
    while chars.get(*i).is_some_and(|c| GROUP_SEPARATORS.contains(c))
        && (*i + 1..*i + 4).all(digit_at)
        && !digit_at(*i + 4)
    {
        text.extend(&chars[*i + 1..*i + 4]);
        *i += 4;
    }
    if matches!(chars.get(*i), Some('.' | ',')) && digit_at(*i + 1) {
        text.push('.');
        *i += 1;
        while digit_at(*i) {
            text.push(chars[*i]);
            *i += 1;
        }
    }
    // Only digits and at most one point: parsing cannot fail, and huge numbers become large
    // floats (or infinity), which the caller rejects.
    text.parse().unwrap_or(f64::INFINITY)
}

/// The bound the leading words or symbols give, and the lexemes after them.
fn bound_prefix(items: &[Lexeme]) -> (Bound, &[Lexeme]) {
    use Lexeme::{Sym, Word};
    if let [Word(a), Word(b), rest @ ..] = items
        && let Some(bound) = two_words(a, b)
    {
        return (bound, rest);
    }
    match items {
        [Sym('>'), Sym('='), rest @ ..] | [Sym('≥'), rest @ ..] => (Bound::AtLeast, rest),
        [Sym('<'), Sym('='), rest @ ..] | [Sym('≤'), rest @ ..] => (Bound::AtMost, rest),
        [Sym('>'), rest @ ..] => (Bound::MoreThan, rest),
        [Sym('<'), rest @ ..] => (Bound::LessThan, rest),
        [Word(a), rest @ ..] => match a.as_str() {
            "over" | "above" | "uber" => (Bound::MoreThan, rest),
            "under" | "below" | "unter" => (Bound::LessThan, rest),
            "min" | "minimum" => (Bound::AtLeast, rest),
            "max" | "maximum" => (Bound::AtMost, rest),
            "between" | "from" | "zwischen" | "von" | "entre" | "de" | "tussen" | "van" => {
                (Bound::Between, rest)
            }
            _ => (Bound::Exactly, items),
        },
        _ => (Bound::Exactly, items),
    }
}

fn two_words(a: &str, b: &str) -> Option<Bound> {
    match (a, b) {
        ("more", "than") | ("mehr", "als") | ("plus", "de") | ("mas", "de") | ("meer", "dan") => {
            Some(Bound::MoreThan)
        }
        ("less" | "fewer", "than")
        | ("weniger", "als")
        | ("moins", "de")
        | ("menos", "de")
        | ("minder", "dan") => Some(Bound::LessThan),
        ("at", "least") => Some(Bound::AtLeast),
        ("up", "to") | ("bis", "zu") => Some(Bound::AtMost),
        _ => None,
    }
}

/// `+`, `plus`, `or more` and their translations.
fn is_open_suffix(tail: &[Lexeme]) -> bool {
    match tail {
        [Lexeme::Sym('+')] => true,
        [one] => one.is_word(&["plus"]),
        [a, b] => {
            a.is_word(&["or", "and", "und", "et", "o", "y", "of"])
                && b.is_word(&["more", "mehr", "plus", "mas", "meer"])
        }
        _ => false,
    }
}

fn is_range_separator(lexeme: &Lexeme) -> bool {
    match lexeme {
        Lexeme::Sym(c) => DASHES.contains(c),
        Lexeme::Word(w) => {
            ["to", "bis", "a", "au", "tot", "till", "until", "and", "und", "et", "y", "en", "hasta"]
                .contains(&w.as_str())
        }
        Lexeme::Num { .. } => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Department as D;
    use Seniority as S;

    /// (title, seniority, department)
    const TITLES: &[(&str, Seniority, Department)] = &[
        // The brief's examples.
        ("Sr. Director, Product Marketing", S::Director, D::Marketing),
        ("VP Eng", S::Vp, D::Engineering),
        ("CTO", S::CLevel, D::Engineering),
        ("Head of Growth", S::Director, D::Marketing),
        ("Software Engineer II", S::Individual, D::Engineering),
        ("Founder & CEO", S::CLevel, D::Executive),
        ("Geschäftsführer", S::CLevel, D::Executive),
        ("Directeur commercial", S::Director, D::Sales),
        ("Jefe de ventas", S::Manager, D::Sales),
        ("Marketing Manager", S::Manager, D::Marketing),
        ("Account Executive", S::Individual, D::Sales),
        ("intern", S::Individual, D::Other),
        // Tricky ones.
        ("Assistant to the Regional Manager", S::Individual, D::Other),
        ("Chief of Staff", S::Director, D::Executive),
        ("Director of First Impressions", S::Director, D::Other),
        ("Product Owner", S::Individual, D::Product),
        ("Head of People", S::Director, D::HumanResources),
        ("CTO & Co-Founder", S::CLevel, D::Engineering),
        ("Senior Software Engineer", S::Individual, D::Engineering),
        ("Marketing Intern", S::Individual, D::Marketing),
        ("Werkstudent Marketing", S::Individual, D::Marketing),
        ("VP Sales", S::Vp, D::Sales),
        ("Sales Engineer", S::Individual, D::Sales),
        ("Solutions Engineer", S::Individual, D::Sales),
        ("Security Engineer", S::Individual, D::Security),
        ("Executive Assistant to the CEO", S::Individual, D::Executive),
        ("Assistant to the CFO", S::Individual, D::Finance),
        ("Assistant Manager", S::Manager, D::Other),
        ("Assistant Vice President, Finance", S::Vp, D::Finance),
        ("AVP Finance", S::Vp, D::Finance),
        ("Assistant Professor", S::Individual, D::Education),
        ("Associate Director, Customer Success", S::Director, D::CustomerSuccess),
        ("Vice President of Engineering", S::Vp, D::Engineering),
        ("Senior Vice-President, Sales & Marketing", S::Vp, D::Sales),
        ("President", S::CLevel, D::Executive),
        ("Chief Executive Officer", S::CLevel, D::Executive),
        ("Chief Revenue Officer", S::CLevel, D::Sales),
        ("Chief Information Security Officer", S::CLevel, D::Security),
        ("Chief Information Officer", S::CLevel, D::It),
        ("Chief People Officer", S::CLevel, D::HumanResources),
        ("Chief Architect", S::Director, D::Engineering),
        ("CISO", S::CLevel, D::Security),
        ("CFO & COO", S::CLevel, D::Finance),
        ("Co-Founder", S::CLevel, D::Executive),
        ("Owner", S::CLevel, D::Executive),
        ("Co-Owner, Growth Agency", S::CLevel, D::Marketing),
        ("Partner", S::CLevel, D::Executive),
        ("Managing Partner", S::CLevel, D::Executive),
        ("Partner Manager", S::Manager, D::Sales),
        ("HR Business Partner", S::Individual, D::HumanResources),
        ("Managing Director", S::CLevel, D::Executive),
        ("General Manager", S::Director, D::Other),
        ("Team Lead, Support", S::Manager, D::Support),
        ("Lead Engineer", S::Manager, D::Engineering),
        ("Lead Generation Specialist", S::Individual, D::Marketing),
        ("Customer Success Manager", S::Manager, D::CustomerSuccess),
        ("Account Manager", S::Manager, D::CustomerSuccess),
        ("Key Account Manager", S::Manager, D::Sales),
        ("Product Manager", S::Manager, D::Product),
        ("Senior Product Designer", S::Individual, D::Design),
        ("Data Scientist", S::Individual, D::Data),
        ("Staff Data Engineer", S::Individual, D::Data),
        ("Principal Engineer", S::Individual, D::Engineering),
        ("Site Reliability Engineer (SRE)", S::Individual, D::Engineering),
        ("DevOps Lead", S::Manager, D::Engineering),
        ("IT Security Manager", S::Manager, D::Security),
        ("Head of IT", S::Director, D::It),
        ("Sysadmin", S::Individual, D::It),
        ("Financial Controller", S::Individual, D::Finance),
        ("General Counsel", S::Individual, D::Legal),
        ("Director, General Counsel", S::Director, D::Legal),
        ("Talent Acquisition Partner", S::Individual, D::HumanResources),
        ("Technical Recruiter", S::Individual, D::HumanResources),
        ("Operations Manager", S::Manager, D::Operations),
        ("COO", S::CLevel, D::Operations),
        ("Supervisor, Customer Service", S::Manager, D::Support),
        ("Business Development Representative", S::Individual, D::Sales),
        ("SDR", S::Individual, D::Sales),
        ("Research Scientist", S::Individual, D::Research),
        ("High School Teacher", S::Individual, D::Education),
        ("Marketing Director at Salesforce", S::Director, D::Marketing),
        ("Engineer @ Sales Inc", S::Individual, D::Engineering),
        ("MARKETING MANAGER", S::Manager, D::Marketing),
        ("vp   of   product", S::Vp, D::Product),
        ("Personal Assistant", S::Individual, D::Other),
        ("Founding Engineer", S::Individual, D::Engineering),
        ("Board Member", S::CLevel, D::Executive),
        ("Chairman of the Board", S::CLevel, D::Executive),
        ("Vice Chairman", S::Vp, D::Other),
        ("Consultant", S::Individual, D::Other),
        // German.
        ("Geschäftsführerin", S::CLevel, D::Executive),
        ("Geschaeftsfuehrer", S::CLevel, D::Executive),
        ("GESCHÄFTSFÜHRENDER GESELLSCHAFTER", S::CLevel, D::Executive),
        ("Abteilungsleiter Vertrieb", S::Director, D::Sales),
        ("Vertriebsleiter", S::Director, D::Sales),
        ("Leiter Marketing", S::Director, D::Marketing),
        ("Leiterin Personal", S::Director, D::HumanResources),
        ("Teamleiter Kundenservice", S::Manager, D::Support),
        ("Projektleiter", S::Manager, D::Other),
        ("Vorstand Finanzen", S::CLevel, D::Finance),
        ("Finanzvorstand", S::CLevel, D::Finance),
        ("Vorstandsvorsitzender", S::CLevel, D::Executive),
        ("Softwareentwickler", S::Individual, D::Engineering),
        ("IT-Leiter", S::Director, D::It),
        ("Mitarbeiter Vertrieb", S::Individual, D::Sales),
        ("Praktikant Marketing", S::Individual, D::Marketing),
        ("Inhaber", S::CLevel, D::Executive),
        ("Assistentin der Geschäftsführung", S::Individual, D::Executive),
        // French.
        ("Directeur Général", S::CLevel, D::Executive),
        ("Directrice Marketing", S::Director, D::Marketing),
        ("PDG", S::CLevel, D::Executive),
        ("Responsable marketing", S::Manager, D::Marketing),
        ("Chef de projet", S::Manager, D::Other),
        ("Chef de produit", S::Manager, D::Product),
        ("Ingénieur logiciel", S::Individual, D::Engineering),
        ("Développeur Full-Stack", S::Individual, D::Engineering),
        ("Stagiaire marketing", S::Individual, D::Marketing),
        ("Responsable des ressources humaines", S::Manager, D::HumanResources),
        ("DRH", S::Director, D::HumanResources),
        ("Fondateur et PDG", S::CLevel, D::Executive),
        ("Chargée de communication", S::Individual, D::Marketing),
        ("Vice-Président Ventes", S::Vp, D::Sales),
        // Spanish.
        ("Gerente de Marketing", S::Manager, D::Marketing),
        ("Gerente General", S::CLevel, D::Executive),
        ("Director General", S::CLevel, D::Executive),
        ("Directora de Recursos Humanos", S::Director, D::HumanResources),
        ("Ingeniero de Software", S::Individual, D::Engineering),
        ("Fundador y CEO", S::CLevel, D::Executive),
        ("Becario de marketing", S::Individual, D::Marketing),
        ("Consejero Delegado", S::CLevel, D::Executive),
        ("Vicepresidente de Ventas", S::Vp, D::Sales),
        ("Analista de datos", S::Individual, D::Data),
        ("Ejecutivo de cuentas", S::Individual, D::Sales),
        // Dutch.
        ("Algemeen Directeur", S::CLevel, D::Executive),
        ("Hoofd Marketing", S::Director, D::Marketing),
        ("Manager Verkoop", S::Manager, D::Sales),
        ("Teamleider Klantenservice", S::Manager, D::Support),
        ("Eigenaar", S::CLevel, D::Executive),
        ("Medewerker Marketing", S::Individual, D::Marketing),
        ("Afdelingshoofd Inkoop", S::Director, D::Operations),
        ("Accountmanager", S::Manager, D::CustomerSuccess),
        ("Stagiair", S::Individual, D::Other),
        // Found by probing.
        ("Founder's Associate", S::Individual, D::Other),
        ("CEO’s Office", S::Individual, D::Executive),
        ("Department Chair", S::Individual, D::Other),
        ("Executive Chairman", S::CLevel, D::Executive),
        ("Directeur Financier", S::Director, D::Finance),
        ("Kaufmännischer Leiter", S::Director, D::Finance),
        ("Director de TI", S::Director, D::It),
        ("Ingeniero de Ventas", S::Individual, D::Sales),
        ("Ingénieur commercial", S::Individual, D::Sales),
        ("VP/GM, EMEA", S::Vp, D::Other),
        ("Chef d'équipe", S::Manager, D::Other),
    ];

    #[test]
    fn titles() {
        assert!(TITLES.len() >= 60);
        let failures: Vec<String> = TITLES
            .iter()
            .filter_map(|&(title, seniority, department)| {
                let want = Some(JobTitle { seniority, department });
                let got = parse_title(title);
                (got != want).then(|| format!("{title:?}: got {got:?}, want {want:?}"))
            })
            .collect();
        assert!(
            failures.is_empty(),
            "{} of {} titles wrong:\n{}",
            failures.len(),
            TITLES.len(),
            failures.join("\n")
        );
    }

    #[test]
    fn titles_not_understood() {
        for title in [
            "", "   ", "-", "---", "n/a", "N/A", "null", "none", "unknown", "123", "asdf", "!!!", "😀😀",
            "Barista", "at",
        ] {
            assert_eq!(parse_title(title), None, "{title:?}");
        }
    }

    #[test]
    fn titles_are_bounded() {
        // A C-level word past the byte limit is not read.
        let long = format!("{}CEO", "Engineer ".repeat(40));
        assert!(long.len() > MAX_TITLE_BYTES);
        assert_eq!(
            parse_title(&long),
            Some(JobTitle { seniority: S::Individual, department: D::Engineering })
        );
        // The limit falls inside a multi-byte character.
        let wide = format!("é{}", "ü".repeat(200));
        assert_eq!(parse_title(&wide), None);
        assert_eq!(cut_at_char("aé", 2), "a");
        assert_eq!(cut_at_char("abc", 10), "abc");
    }

    #[test]
    fn tokens_fold_and_split() {
        let words = |s: &str| tokenize(s).into_iter().map(|t| t.word).collect::<Vec<_>>();
        assert_eq!(words("Geschäftsführer"), ["geschaftsfuhrer"]);
        assert_eq!(words("Straße"), ["strasse"]);
        assert_eq!(words("Ingénieur"), ["ingenieur"]);
        assert_eq!(words("Inge\u{301}nieur"), ["ingenieur"]);
        assert_eq!(words("Vertriebsleiter"), ["vertrieb", "leiter"]);
        assert_eq!(words("Abteilungsleiter"), ["abteilungs", "leiter"]);
        assert_eq!(words("Sr. VP/GM"), ["sr", "vp", "gm"]);
        assert_eq!(words("Head of Data at Acme Security"), ["head", "of", "data"]);
        let tokens = tokenize("Co-Founder - CEO, Sales and Marketing");
        let segments: Vec<u32> = tokens.iter().map(|t| t.segment).collect();
        assert_eq!(segments, [0, 0, 1, 2, 3, 4]);
    }

    #[test]
    fn every_term_is_in_one_table() {
        let mut seen = std::collections::BTreeMap::new();
        let terms = DEPARTMENT_TERMS
            .iter()
            .flat_map(|(d, terms)| terms.iter().map(move |t| (*t, Some(*d))))
            .chain(NEUTRAL_TERMS.iter().map(|t| (*t, None)));
        for (term, department) in terms {
            assert_eq!(term, term.trim(), "{term:?}");
            assert!(
                !term.contains("  ") && term.chars().all(|c| c == ' ' || c == '*' || c.is_ascii_lowercase())
            );
            if let Some(other) = seen.insert(term, department) {
                panic!("{term:?} is in {other:?} and {department:?}");
            }
        }
        let mut rank_words = std::collections::BTreeSet::new();
        for word in RANK_WORDS.iter().flat_map(|(_, words)| words.iter()) {
            assert!(rank_words.insert(*word), "{word:?} has two ranks");
        }
    }

    #[test]
    fn names_are_stable() {
        let names: Vec<&str> = Seniority::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(names, ["c_level", "vp", "director", "manager", "individual"]);
        let names: Vec<&str> = Department::ALL.iter().map(|d| d.as_str()).collect();
        assert_eq!(
            names,
            [
                "executive",
                "engineering",
                "product",
                "design",
                "data",
                "it",
                "security",
                "marketing",
                "sales",
                "customer_success",
                "support",
                "finance",
                "legal",
                "human_resources",
                "operations",
                "research",
                "education",
                "other"
            ]
        );
        let names: Vec<&str> = EmployeeBand::ALL.iter().map(|b| b.as_str()).collect();
        assert_eq!(
            names,
            ["1-10", "11-50", "51-200", "201-500", "501-1000", "1001-5000", "5001-10000", "10001+"]
        );
        for band in EmployeeBand::ALL {
            let (lo, hi) = band.bounds();
            assert_eq!(EmployeeBand::from_count(lo), band);
            if let Some(hi) = hi {
                assert_eq!(EmployeeBand::from_count(hi), band);
                assert_ne!(EmployeeBand::from_count(hi + 1), band);
            }
            assert_eq!(
                band.as_str(),
                match hi {
                    Some(hi) => format!("{lo}-{hi}"),
                    None => format!("{lo}+"),
                }
            );
        }
        assert_eq!(EmployeeBand::from_count(0), EmployeeBand::B1To10);
        assert_eq!(EmployeeBand::from_count(u64::MAX), EmployeeBand::B10001Plus);
    }

    #[test]
    fn employee_bands() {
        use EmployeeBand as B;
        let s = |text: &str| Value::String(text.to_owned());
        let cases: Vec<(Value, Option<EmployeeBand>)> = vec![
            // Numbers.
            (Value::Int(1), Some(B::B1To10)),
            (Value::Int(10), Some(B::B1To10)),
            (Value::Int(11), Some(B::B11To50)),
            (Value::Int(50), Some(B::B11To50)),
            (Value::Int(51), Some(B::B51To200)),
            (Value::Int(200), Some(B::B51To200)),
            (Value::Int(201), Some(B::B201To500)),
            (Value::Int(250), Some(B::B201To500)),
            (Value::Int(500), Some(B::B201To500)),
            (Value::Int(501), Some(B::B501To1000)),
            (Value::Int(1000), Some(B::B501To1000)),
            (Value::Int(1001), Some(B::B1001To5000)),
            (Value::Int(5000), Some(B::B1001To5000)),
            (Value::Int(5001), Some(B::B5001To10000)),
            (Value::Int(10_000), Some(B::B5001To10000)),
            (Value::Int(10_001), Some(B::B10001Plus)),
            (Value::Int(2_300_000), Some(B::B10001Plus)),
            (Value::Int(MAX_EMPLOYEES as i64), Some(B::B10001Plus)),
            (Value::Int(MAX_EMPLOYEES as i64 + 1), None),
            (Value::Int(0), None),
            (Value::Int(-5), None),
            (Value::Int(i64::MAX), None),
            (Value::Int(i64::MIN), None),
            (Value::Float(250.0), Some(B::B201To500)),
            (Value::Float(10.9), Some(B::B1To10)),
            (Value::Float(1.0), Some(B::B1To10)),
            (Value::Float(0.5), None),
            (Value::Float(-1.0), None),
            (Value::Float(-0.0), None),
            (Value::Float(f64::NAN), None),
            (Value::Float(f64::INFINITY), None),
            (Value::Float(f64::NEG_INFINITY), None),
            (Value::Float(1e300), None),
            // Numeric strings.
            (s("250"), Some(B::B201To500)),
            (s(" 250 "), Some(B::B201To500)),
            (s("250.0"), Some(B::B201To500)),
            (s("1,200"), Some(B::B1001To5000)),
            (s("1.200"), Some(B::B1001To5000)),
            (s("1 200"), Some(B::B1001To5000)),
            (s("1\u{a0}200"), Some(B::B1001To5000)),
            (s("10'000"), Some(B::B5001To10000)),
            (s("1,000,000"), Some(B::B10001Plus)),
            (s("1.200,5"), Some(B::B1001To5000)),
            (s("250.000"), Some(B::B10001Plus)),
            (s("1.5k"), Some(B::B1001To5000)),
            (s("1,5k"), Some(B::B1001To5000)),
            (s("2 Mio"), Some(B::B10001Plus)),
            (s("250 employees"), Some(B::B201To500)),
            (s("ca. 250 Mitarbeiter"), Some(B::B201To500)),
            (s("~300"), Some(B::B201To500)),
            (s("about 40 people"), Some(B::B11To50)),
            // Ranges: the midpoint.
            (s("1-10"), Some(B::B1To10)),
            (s("11-50"), Some(B::B11To50)),
            (s("51-200"), Some(B::B51To200)),
            (s("51 - 200"), Some(B::B51To200)),
            (s("(51-200)"), Some(B::B51To200)),
            (s("201 to 500"), Some(B::B201To500)),
            (s("200 – 500"), Some(B::B201To500)),
            (s("501-1,000"), Some(B::B501To1000)),
            (s("1001-5000"), Some(B::B1001To5000)),
            (s("5001-10000"), Some(B::B5001To10000)),
            (s("10-50"), Some(B::B11To50)),
            (s("50-200"), Some(B::B51To200)),
            (s("200-500"), Some(B::B201To500)),
            (s("500-1000"), Some(B::B501To1000)),
            (s("1000-5000"), Some(B::B1001To5000)),
            (s("1.000-5.000 Mitarbeiter"), Some(B::B1001To5000)),
            (s("1K-5K"), Some(B::B1001To5000)),
            (s("251-1K"), Some(B::B501To1000)),
            (s("10-50k"), Some(B::B10001Plus)),
            (s("50K-100K"), Some(B::B10001Plus)),
            (s("200-51"), Some(B::B51To200)),
            (s("between 50 and 200"), Some(B::B51To200)),
            (s("500 à 1000 salariés"), Some(B::B501To1000)),
            (s("de 50 a 200 empleados"), Some(B::B51To200)),
            (s("0-10"), Some(B::B1To10)),
            // Open ranges: N+ is the band of N + 1.
            (s("10k+"), Some(B::B10001Plus)),
            (s("5000+"), Some(B::B5001To10000)),
            (s("1000+ employees"), Some(B::B1001To5000)),
            (s("10,001+"), Some(B::B10001Plus)),
            (s("10 001+ employees"), Some(B::B10001Plus)),
            (s("50 or more"), Some(B::B51To200)),
            (s("more than 500"), Some(B::B501To1000)),
            (s(">1000"), Some(B::B1001To5000)),
            (s(">= 1000"), Some(B::B501To1000)),
            (s("at least 11"), Some(B::B11To50)),
            (s("over 200"), Some(B::B201To500)),
            (s("<50"), Some(B::B11To50)),
            (s("< 11"), Some(B::B1To10)),
            (s("under 10"), Some(B::B1To10)),
            (s("less than 1"), None),
            (s("up to 10"), Some(B::B1To10)),
            // Garbage.
            (s(""), None),
            (s("   "), None),
            (s("abc"), None),
            (s("n/a"), None),
            (s("unknown"), None),
            (s("NaN"), None),
            (s("nan"), None),
            (s("inf"), None),
            (s("-inf"), None),
            (s("Infinity"), None),
            (s("1e5"), None),
            (s("-5"), None),
            (s("−5"), None),
            (s("0"), None),
            (s("0.4"), None),
            (s("Founded 1998"), None),
            (s("51-200-500"), None),
            (s("12abc"), None),
            (s("+250"), None),
            (s("++"), None),
            (s("-"), None),
            (s("50 to"), None),
            (s("to 50"), None),
            (s("between 50"), None),
            (s("1,2,3"), None),
            (s("99999999999999999999999"), None),
            (s(&"9".repeat(400)), None),
            (s("10000001"), None),
            (Value::Null, None),
            (Value::Bool(true), None),
            (Value::Array(vec![Value::Int(250)]), None),
            (Value::Object(crate::value::Map::new()), None),
        ];
        let failures: Vec<String> = cases
            .iter()
            .filter_map(|(value, want)| {
                let got = employee_band(value);
                (got != *want).then(|| format!("{value:?}: got {got:?}, want {want:?}"))
            })
            .collect();
        assert!(failures.is_empty(), "{} of {} wrong:\n{}", failures.len(), cases.len(), failures.join("\n"));
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::*;

        proptest! {
            #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

            #[test]
            fn any_title_parses_without_panicking(title in any::<String>()) {
                let _ = parse_title(&title);
            }

            #[test]
            fn title_like_strings_parse_without_panicking(
                title in "[A-Za-zÄÖÜäöüßéèçñ&/,.()@+ -]{0,400}"
            ) {
                let _ = parse_title(&title);
            }

            #[test]
            fn only_the_first_bytes_count(title in ".{0,300}", tail in "(CEO|Intern|Sales|VP|Director|Assistant to)") {
                let head = cut_at_char(&title, MAX_TITLE_BYTES);
                let padded = format!("{head}{}", " x".repeat(MAX_TITLE_BYTES));
                prop_assert_eq!(parse_title(&padded), parse_title(&format!("{padded} {tail}")));
            }

            #[test]
            fn case_does_not_matter(title in "[a-zA-Z &,/-]{0,80}") {
                prop_assert_eq!(parse_title(&title.to_uppercase()), parse_title(&title.to_lowercase()));
            }

            #[test]
            fn any_count_string_parses_without_panicking(text in any::<String>(), digits in "[0-9.,+<>kK -]{0,200}") {
                let _ = employee_band(&Value::String(text));
                let _ = employee_band(&Value::String(digits));
            }

            #[test]
            fn numbers_agree_with_from_count(n in 1u64..=MAX_EMPLOYEES) {
                let band = EmployeeBand::from_count(n);
                let (lo, hi) = band.bounds();
                prop_assert!(lo <= n && hi.is_none_or(|hi| n <= hi));
                prop_assert_eq!(employee_band(&Value::Int(n as i64)), Some(band));
                prop_assert_eq!(employee_band(&Value::Float(n as f64)), Some(band));
                prop_assert_eq!(employee_band(&Value::String(n.to_string())), Some(band));
            }

            #[test]
            fn any_number_is_handled(n in any::<i64>(), x in any::<f64>()) {
                let band = employee_band(&Value::Int(n));
                prop_assert_eq!(band.is_some(), (1..=MAX_EMPLOYEES as i64).contains(&n));
                let _ = employee_band(&Value::Float(x));
            }
        }
    }
}
