//! The tag system: what a profile means, as tags people can act on — factual (stated or
//! observed), analytical (computed from behaviour) and predictive (estimated) — each with its
//! value, when it last changed (when one event decided it) and the reason behind it.
//!
//! Tags are a pure function of the profile state, the workspace's [`TagSettings`] and the
//! time they are read at: nothing is stored that could go stale, decay is applied when a tag
//! is read (`0.5^(age / half-life)`), and a configuration change applies to the whole history
//! (page-type rules match the page paths the profile keeps in [`Activity`]).
//!
//! ```
//! use portrait_core::{profile::Profile, tags::{TagSettings, tags}, Timestamp};
//! let tags = tags(&Profile::default(), &TagSettings::default(), Timestamp(0));
//! assert!(tags.iter().any(|t| t.name == "lifecycle" && t.value == "anonymous"));
//! ```
//!
//! The defaults suit a B2B website; every number is configurable under `[workspaces.scoring]`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};

use crate::audience::{Fact, Facts};
use crate::firmographics::{self, EmployeeBand};
use crate::predict::Propensity;
use crate::profile::{MS_PER_DAY, Profile, Stamped};
use crate::time::Timestamp;
use crate::topics::rules::glob;
use crate::value::Value;
use crate::view::rounded;

/// factual: stated or observed; analytical: computed from behaviour; predictive: estimated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TagKind {
    Factual,
    Analytical,
    Predictive,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Tag {
    pub name: &'static str,
    pub kind: TagKind,
    pub value: Json,
    /// When the value last changed (the event it came from), if one event decided it.
    #[serde(rename = "changedAt", skip_serializing_if = "Option::is_none")]
    pub changed_at: Option<String>,
    /// The rule or events behind the value.
    pub reason: String,
}

/// `[workspaces.scoring]`: how behaviour becomes scores and stages.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TagSettings {
    /// Engagement weights, first match wins; the score is
    /// Σ weight × min(events that day, daily_cap) × 0.5^(age / half_life_days).
    pub engagement: Vec<EventWeight>,
    /// Engagement score thresholds of the levels (`dormant` below `cold`).
    pub levels: Levels,
    /// Page types by URL path pattern, first match wins, each with the buying stage it signals.
    pub page_types: Vec<PageType>,
    /// Events that signal a stage whatever the page.
    pub intent_events: BTreeMap<String, Stage>,
    /// Intent counts the page views and events of this many days.
    pub intent_window_days: u32,
    pub lifecycle: LifecycleSettings,
    pub lead_score: LeadScoreSettings,
    pub rfm: RfmSettings,
    pub propensity: Propensity,
    /// Days compared for the churn-risk trend: the last `churn_window_days` against the ones before.
    pub churn_window_days: u32,
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EventWeight {
    /// `page` (every page view), `page:<path pattern>`, a track event name, `identify`,
    /// `group`, or `*` (anything not matched before).
    pub event: String,
    pub weight: f64,
    pub half_life_days: f64,
    pub daily_cap: u32,
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Levels {
    pub hot: f64,
    pub warm: f64,
    pub cold: f64,
}

/// Buying stages, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Awareness,
    Consideration,
    Decision,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Awareness => "awareness",
            Stage::Consideration => "consideration",
            Stage::Decision => "decision",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PageType {
    pub name: String,
    /// A path pattern (`*` = any characters), as in site tag rules.
    pub url: String,
    pub stage: Stage,
}

/// Lifecycle stages, in order; `churned` is set only explicitly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Lifecycle {
    Anonymous,
    Known,
    Mql,
    Sql,
    Opportunity,
    Customer,
    Churned,
}

impl Lifecycle {
    pub const ALL: [Lifecycle; 7] = [
        Lifecycle::Anonymous,
        Lifecycle::Known,
        Lifecycle::Mql,
        Lifecycle::Sql,
        Lifecycle::Opportunity,
        Lifecycle::Customer,
        Lifecycle::Churned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Lifecycle::Anonymous => "anonymous",
            Lifecycle::Known => "known",
            Lifecycle::Mql => "mql",
            Lifecycle::Sql => "sql",
            Lifecycle::Opportunity => "opportunity",
            Lifecycle::Customer => "customer",
            Lifecycle::Churned => "churned",
        }
    }

    fn parse(text: &str) -> Option<Lifecycle> {
        let text = text.trim().to_ascii_lowercase().replace(['-', ' '], "_");
        let text = match text.as_str() {
            "lead" | "subscriber" => "known",
            "marketing_qualified_lead" => "mql",
            "sales_qualified_lead" => "sql",
            other => other,
        }
        .to_owned();
        Lifecycle::ALL.into_iter().find(|l| l.as_str() == text)
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LifecycleSettings {
    /// A known person with a lead score at least this is an MQL.
    pub mql_lead_score: f64,
    /// Events that move a person to a stage (never back).
    pub events: BTreeMap<String, Lifecycle>,
    /// An identify trait that sets the stage explicitly (it wins, and can say `churned`).
    pub trait_key: String,
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LeadScoreSettings {
    /// Fit points by seniority (`c_level`, `vp`, `director`, `manager`, `individual`).
    pub seniority: BTreeMap<String, f64>,
    /// Fit points by employee band (`1-10` … `10001+`).
    pub employees: BTreeMap<String, f64>,
    /// Fit points by industry (case-insensitive); empty: industry does not count.
    pub industries: BTreeMap<String, f64>,
    /// Behaviour points per engagement point, up to `engagement_max`.
    pub engagement_factor: f64,
    pub engagement_max: f64,
    /// Behaviour points by intent stage.
    pub intent: BTreeMap<Stage, f64>,
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RfmSettings {
    /// Days since the last order at or under which recency scores 5, 4, 3, 2 (else 1).
    pub recency_days: [f64; 4],
    /// Orders at or above which frequency scores 2, 3, 4, 5 (1 order: 1).
    pub frequency: [f64; 4],
    /// Revenue at or above which monetary scores 2, 3, 4, 5.
    pub monetary: [f64; 4],
}

impl Default for TagSettings {
    fn default() -> TagSettings {
        let weight = |event: &str, weight, half_life_days, daily_cap| EventWeight {
            event: event.into(),
            weight,
            half_life_days,
            daily_cap,
        };
        let page = |name: &str, url: &str, stage| PageType { name: name.into(), url: url.into(), stage };
        TagSettings {
            engagement: vec![
                weight("Demo Requested", 25.0, 30.0, 1),
                weight("Trial Started", 25.0, 30.0, 1),
                weight("Signed Up", 20.0, 30.0, 1),
                weight("Form Submitted", 10.0, 30.0, 3),
                weight("identify", 5.0, 30.0, 2),
                weight("page:/pricing*", 3.0, 14.0, 5),
                weight("page", 1.0, 14.0, 20),
                // Autocapture's reports ride on page views: they count little.
                weight("Page Engaged", 0.2, 14.0, 20),
                weight("Scroll Depth Reached", 0.1, 14.0, 10),
                weight("Link Clicked", 0.2, 14.0, 20),
                weight("Button Clicked", 0.2, 14.0, 20),
                weight("*", 1.0, 14.0, 10),
            ],
            levels: Levels { hot: 40.0, warm: 15.0, cold: 5.0 },
            page_types: vec![
                page("pricing", "/pricing*", Stage::Decision),
                page("demo", "/demo*", Stage::Decision),
                page("trial", "/trial*", Stage::Decision),
                page("signup", "/signup*", Stage::Decision),
                page("contact", "/contact*", Stage::Decision),
                page("case_study", "/case-studies*", Stage::Consideration),
                page("case_study", "/customers*", Stage::Consideration),
                page("docs", "/docs*", Stage::Consideration),
                page("comparison", "/compare*", Stage::Consideration),
                page("product", "/product*", Stage::Consideration),
                page("blog", "/blog*", Stage::Awareness),
            ],
            intent_events: BTreeMap::from([
                ("Demo Requested".into(), Stage::Decision),
                ("Trial Started".into(), Stage::Decision),
            ]),
            intent_window_days: 30,
            lifecycle: LifecycleSettings {
                mql_lead_score: 50.0,
                events: BTreeMap::from([
                    ("Demo Requested".into(), Lifecycle::Sql),
                    ("Opportunity Created".into(), Lifecycle::Opportunity),
                    ("Order Completed".into(), Lifecycle::Customer),
                    ("Subscription Started".into(), Lifecycle::Customer),
                ]),
                trait_key: "lifecycle_stage".into(),
            },
            lead_score: LeadScoreSettings {
                seniority: [
                    ("c_level", 20.0),
                    ("vp", 18.0),
                    ("director", 15.0),
                    ("manager", 10.0),
                    ("individual", 5.0),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
                employees: [
                    ("1-10", 2.0),
                    ("11-50", 6.0),
                    ("51-200", 10.0),
                    ("201-500", 14.0),
                    ("501-1000", 15.0),
                    ("1001-5000", 15.0),
                    ("5001-10000", 12.0),
                    ("10001+", 10.0),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
                industries: BTreeMap::new(),
                engagement_factor: 0.5,
                engagement_max: 35.0,
                intent: BTreeMap::from([
                    (Stage::Awareness, 3.0),
                    (Stage::Consideration, 8.0),
                    (Stage::Decision, 15.0),
                ]),
            },
            rfm: RfmSettings {
                recency_days: [14.0, 30.0, 90.0, 180.0],
                frequency: [2.0, 3.0, 5.0, 10.0],
                monetary: [100.0, 500.0, 2_000.0, 10_000.0],
            },
            propensity: Propensity {
                intercept: -4.0,
                coefficients: BTreeMap::from([
                    ("lead_score".into(), 0.04),
                    ("intent_stage=decision".into(), 1.2),
                    ("intent_stage=consideration".into(), 0.5),
                    ("active_7d".into(), 0.6),
                ]),
            },
            churn_window_days: 14,
        }
    }
}

impl TagSettings {
    /// What is wrong with these settings, as (field, message).
    pub fn problem(&self) -> Option<(String, String)> {
        let finite = |x: f64| x.is_finite();
        for (i, w) in self.engagement.iter().enumerate() {
            if w.event.is_empty()
                || !finite(w.weight)
                || !(w.half_life_days > 0.0 && finite(w.half_life_days))
            {
                return Some((
                    format!("engagement[{i}]"),
                    "needs an event, a finite weight and a positive half_life_days".into(),
                ));
            }
        }
        let Levels { hot, warm, cold } = self.levels;
        if !(finite(hot) && hot >= warm && warm >= cold && cold >= 0.0) {
            return Some(("levels".into(), "expected hot ≥ warm ≥ cold ≥ 0".into()));
        }
        for (i, page) in self.page_types.iter().enumerate() {
            if page.name.is_empty() || !page.url.starts_with(['/', '*']) {
                return Some((
                    format!("page_types[{i}]"),
                    "needs a name and a url pattern starting with / or *".into(),
                ));
            }
        }
        for (field, days) in
            [("intent_window_days", self.intent_window_days), ("churn_window_days", self.churn_window_days)]
        {
            if days == 0 {
                return Some((field.into(), "windows must be at least one day".into()));
            }
        }
        let lead = &self.lead_score;
        let points = lead.seniority.values().chain(lead.employees.values()).chain(lead.industries.values());
        if !points.chain([&lead.engagement_factor, &lead.engagement_max]).all(|x| finite(*x)) {
            return Some(("lead_score".into(), "every number must be finite".into()));
        }
        for (name, values) in [
            ("recency_days", &self.rfm.recency_days),
            ("frequency", &self.rfm.frequency),
            ("monetary", &self.rfm.monetary),
        ] {
            if !values.iter().all(|x| finite(*x)) || !values.windows(2).all(|w| w[0] <= w[1]) {
                return Some((format!("rfm.{name}"), "expected four finite bins in increasing order".into()));
            }
        }
        self.propensity.problem().map(|(field, message)| (format!("propensity.{field}"), message))
    }

    fn weight_of(&self, kind: &str) -> Option<&EventWeight> {
        self.engagement.iter().find(|w| match (w.event.as_str(), kind.strip_prefix("$page ")) {
            ("*" | "page", Some(_)) | ("*", None) => true,
            (pattern, Some(path)) => pattern.strip_prefix("page:").is_some_and(|p| glob(p, path)),
            (name, None) => kind == name || kind.strip_prefix('$') == Some(name),
        })
    }

    /// The page type and stage of a page path.
    pub fn page_type(&self, path: &str) -> Option<&PageType> {
        self.page_types.iter().find(|p| glob(&p.url, path))
    }
}

/// The engagement score and the lead score at the end of each of the last `days` days up to
/// `now` (`{days: ["YYYY-MM-DD", …], engagement: […], leadScore: […]}`), for charts: each from
/// the activity up to that day. Traits are as they are now, so the fit part of the lead
/// score is today's throughout.
pub fn series(profile: &Profile, settings: &TagSettings, now: Timestamp, days: i64) -> Json {
    let today = now.0.div_euclid(MS_PER_DAY);
    let (mut labels, mut engagement, mut lead) = (Vec::new(), Vec::new(), Vec::new());
    let mut past = profile.clone();
    for day in (today - days + 1..=today).rev() {
        past.activity.kinds.values_mut().for_each(|counts| counts.retain(|&d, _| d <= day));
        let at = Timestamp(now.0.min((day + 1) * MS_PER_DAY - 1));
        let reading = Reading::new(&past, settings, at);
        labels.push(at.to_string()[..10].to_owned());
        engagement.push(rounded(reading.engagement));
        lead.push(reading.lead.score.round());
    }
    labels.reverse();
    engagement.reverse();
    lead.reverse();
    json!({ "days": labels, "engagement": engagement, "leadScore": lead })
}

/// Everything the tags are computed from at one time, computed once.
struct Reading<'a> {
    profile: &'a Profile,
    settings: &'a TagSettings,
    now: Timestamp,
    today: i64,
    engagement: f64,
    intent: Option<(Stage, String)>,
    /// Read by the lifecycle and by the predictive tags: computed once.
    lead: LeadScore,
}

#[derive(Default)]
struct LeadScore {
    score: f64,
    fit: f64,
    behaviour: f64,
    /// What earned the points, most points first.
    factors: Vec<(String, f64)>,
}

impl<'a> Reading<'a> {
    fn new(profile: &'a Profile, settings: &'a TagSettings, now: Timestamp) -> Reading<'a> {
        let today = now.0.div_euclid(MS_PER_DAY);
        let engagement = engagement_score(profile, settings, now);
        let mut reading =
            Reading { profile, settings, now, today, engagement, intent: None, lead: LeadScore::default() };
        reading.intent = intent(&reading);
        reading.lead = lead_score(&reading);
        reading
    }
}

/// The tags of `profile` as of `now`.
pub fn tags(profile: &Profile, settings: &TagSettings, now: Timestamp) -> Vec<Tag> {
    let reading = Reading::new(profile, settings, now);
    let mut tags = Vec::new();
    factual(&reading, &mut tags);
    analytical(&reading, &mut tags);
    predictive(&reading, &mut tags);
    tags
}

fn tag(
    tags: &mut Vec<Tag>,
    name: &'static str,
    kind: TagKind,
    value: Json,
    changed_at: Option<Timestamp>,
    reason: impl Into<String>,
) {
    tags.push(Tag {
        name,
        kind,
        value,
        changed_at: changed_at.map(|t| t.to_string()),
        reason: reason.into(),
    });
}

/// The first of `keys` the traits hold as text (or a number), with its stamp.
fn trait_text<'p>(
    traits: &'p BTreeMap<String, Stamped<Value>>,
    keys: &[&str],
) -> Option<(String, &'p Stamped<Value>)> {
    keys.iter().find_map(|key| {
        let stamped = traits.get(*key)?;
        let text = match &stamped.value {
            Value::String(s) if !s.trim().is_empty() => s.trim().to_owned(),
            Value::Int(n) => n.to_string(),
            Value::Object(map) => match map.get("name") {
                Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_owned(),
                _ => return None,
            },
            _ => return None,
        };
        Some((text, stamped))
    })
}

fn factual(r: &Reading<'_>, tags: &mut Vec<Tag>) {
    let p = r.profile;
    if let Some(Stamped { stamp, value: geo }) = &p.location {
        for (name, value) in [
            ("country", &geo.country),
            ("region", &geo.region),
            ("city", &geo.city),
            ("timezone", &geo.timezone),
            ("network", &geo.as_organization),
        ] {
            if let Some(value) = value {
                tag(
                    tags,
                    name,
                    TagKind::Factual,
                    json!(value),
                    Some(stamp.at),
                    "edge location of the latest event",
                );
            }
        }
    }
    if let Some(Stamped { stamp, value }) = &p.locale {
        let language = value.split(['-', '_']).next().unwrap_or(value).to_ascii_lowercase();
        tag(
            tags,
            "language",
            TagKind::Factual,
            json!(language),
            Some(stamp.at),
            format!("browser locale {value}"),
        );
    }
    if let Some(device) = p.main_device() {
        let count = p.devices[device];
        let reason = format!("most used device: {count} of {} events", p.event_count());
        for (name, part) in ["device_type", "browser", "os"].into_iter().zip(device.splitn(3, '/')) {
            if part != "unknown" {
                tag(tags, name, TagKind::Factual, json!(part), None, reason.clone());
            }
        }
    }
    // Company facts: the person's own traits, else what their account's group calls said.
    let group_traits = |keys: &[&str]| p.group_traits.values().find_map(|traits| trait_text(traits, keys));
    let company = trait_text(&p.traits, &["company", "company_name", "companyName"])
        .or_else(|| group_traits(&["name"]));
    if let Some((name, stamped)) = company {
        tag(
            tags,
            "company",
            TagKind::Factual,
            json!(name),
            Some(stamped.stamp.at),
            "identify or group traits",
        );
    }
    if let Some((industry, stamped)) =
        trait_text(&p.traits, &["industry"]).or_else(|| group_traits(&["industry"]))
    {
        tag(
            tags,
            "industry",
            TagKind::Factual,
            json!(industry),
            Some(stamped.stamp.at),
            "identify or group traits",
        );
    }
    if let Some((band, at)) = employee_band(p) {
        tag(
            tags,
            "employee_band",
            TagKind::Factual,
            json!(band.as_str()),
            Some(at),
            "employee count in traits",
        );
    }
    if let Some((title, stamped)) = trait_text(&p.traits, &["title", "job_title", "jobTitle"]) {
        let at = Some(stamped.stamp.at);
        tag(tags, "job_title", TagKind::Factual, json!(title), at, "identify traits");
        if let Some(parsed) = firmographics::parse_title(&title) {
            let reason = format!("parsed from the job title \"{title}\"");
            tag(tags, "seniority", TagKind::Factual, json!(parsed.seniority.as_str()), at, reason.clone());
            tag(tags, "department", TagKind::Factual, json!(parsed.department.as_str()), at, reason);
        }
    }
    for (name, slot) in [("first_touch", &p.first_touch), ("last_touch", &p.last_touch)] {
        if let Some(Stamped { stamp, value }) = slot {
            let mut touch = touch_json(value);
            touch["channel"] = json!(value.channel().as_str());
            tag(tags, name, TagKind::Factual, touch, Some(stamp.at), "campaign or referrer of a page view");
        }
    }
    if let Some(Stamped { stamp, value }) = &p.first_touch {
        tag(
            tags,
            "first_channel",
            TagKind::Factual,
            json!(value.channel().as_str()),
            Some(stamp.at),
            "channel of the first visit from a campaign or another site",
        );
    }
    if let Some((date, stamped)) = trait_text(&p.traits, &["createdAt", "created_at", "signup_date"]) {
        tag(tags, "signup_date", TagKind::Factual, json!(date), Some(stamped.stamp.at), "identify traits");
    }
}

fn employee_band(p: &Profile) -> Option<(EmployeeBand, Timestamp)> {
    const KEYS: [&str; 4] = ["employees", "employee_count", "employeeCount", "company_size"];
    let of = |traits: &BTreeMap<String, Stamped<Value>>| {
        KEYS.iter()
            .find_map(|k| traits.get(*k))
            .and_then(|s| firmographics::employee_band(&s.value).map(|b| (b, s.stamp.at)))
    };
    of(&p.traits).or_else(|| p.group_traits.values().find_map(of))
}

fn touch_json(touch: &crate::profile::Touch) -> Json {
    let mut map = serde_json::Map::new();
    for (key, value) in [
        ("source", &touch.source),
        ("medium", &touch.medium),
        ("campaign", &touch.campaign),
        ("term", &touch.term),
        ("content", &touch.content),
        ("referrerHost", &touch.referrer_host),
    ] {
        if let Some(value) = value {
            map.insert(key.into(), json!(value));
        }
    }
    Json::Object(map)
}

/// Σ weight × min(count, cap) × 0.5^(age / half-life) over the kinds and days kept.
pub fn engagement_score(profile: &Profile, settings: &TagSettings, now: Timestamp) -> f64 {
    let mut score = 0.0;
    for (kind, days) in &profile.activity.kinds {
        let Some(w) = settings.weight_of(kind) else { continue };
        for (&day, &count) in days {
            // Age from the middle of the day, never negative (events are not in the future).
            let age_days = ((now.0 - day * MS_PER_DAY - MS_PER_DAY / 2) as f64 / MS_PER_DAY as f64).max(0.0);
            score += w.weight * f64::from(count.min(w.daily_cap)) * 0.5f64.powf(age_days / w.half_life_days);
        }
    }
    score
}

fn level(settings: &TagSettings, score: f64) -> &'static str {
    let Levels { hot, warm, cold } = settings.levels;
    match score {
        s if s >= hot => "hot",
        s if s >= warm => "warm",
        s if s >= cold => "cold",
        _ => "dormant",
    }
}

/// The highest stage signalled in the intent window, with what signalled it.
fn intent(r: &Reading<'_>) -> Option<(Stage, String)> {
    let from = r.today - i64::from(r.settings.intent_window_days) + 1;
    let mut best: Option<(Stage, String)> = None;
    for (kind, days) in &r.profile.activity.kinds {
        if days.range(from..=r.today).next().is_none() {
            continue;
        }
        let signal = match kind.strip_prefix("$page ") {
            Some(path) => r.settings.page_type(path).map(|p| (p.stage, format!("{} page {path}", p.name))),
            None => r.settings.intent_events.get(kind).map(|stage| (*stage, format!("event {kind}"))),
        };
        if let Some((stage, why)) = signal
            && best.as_ref().is_none_or(|(b, _)| stage > *b)
        {
            best = Some((stage, why));
        }
    }
    best
}

fn analytical(r: &Reading<'_>, tags: &mut Vec<Tag>) {
    let (p, s) = (r.profile, r.settings);
    tag(
        tags,
        "engagement_score",
        TagKind::Analytical,
        json!(rounded(r.engagement)),
        None,
        "Σ weight(event) × min(events that day, daily cap) × 0.5^(age / half-life), as of now",
    );
    tag(
        tags,
        "engagement_level",
        TagKind::Analytical,
        json!(level(s, r.engagement)),
        None,
        format!("hot ≥ {}, warm ≥ {}, cold ≥ {}, else dormant", s.levels.hot, s.levels.warm, s.levels.cold),
    );
    // (Not when every interest faded: no tag, rather than an empty one.)
    let interests = p.last_seen.map(|last_seen| crate::view::interests_json(&p.interests, last_seen, 10));
    if let Some(interests) = interests.filter(|value| value.as_array().is_some_and(|list| !list.is_empty())) {
        tag(
            tags,
            "interests",
            TagKind::Analytical,
            interests,
            None,
            "topics of the pages read: classified in the browser and weighted by attention, or, for pages other \
             sources report, classified by the collector from their URL and title; halved every 14 days; scored as \
             of the last event",
        );
    }
    let site_tags = p.last_seen.map(|last_seen| p.site_tags.top(last_seen.0, 10));
    if let Some(top) = site_tags.filter(|top| !top.is_empty()) {
        let value =
            top.into_iter().map(|(tag, score)| json!({ "tag": tag, "score": rounded(score) })).collect();
        tag(
            tags,
            "site_tags",
            TagKind::Analytical,
            Json::Array(value),
            None,
            "the workspace's tag rules matched on pages read, weighted by attention, halved every 14 days; scored \
             as of the last event",
        );
    }
    if let Some(last_seen) = p.last_seen {
        let days = (r.now.0 - last_seen.0).max(0) / MS_PER_DAY;
        tag(
            tags,
            "days_since_last_seen",
            TagKind::Analytical,
            json!(days),
            Some(last_seen),
            "time since the latest event",
        );
        tag(
            tags,
            "active_7d",
            TagKind::Analytical,
            json!(days < 7),
            Some(last_seen),
            "an event in the last 7 days",
        );
        tag(
            tags,
            "active_30d",
            TagKind::Analytical,
            json!(days < 30),
            Some(last_seen),
            "an event in the last 30 days",
        );
    }
    let recent_sessions = p.sessions.recent.iter().filter(|x| x.start.0 > r.now.0 - 28 * MS_PER_DAY).count();
    tag(
        tags,
        "visits_per_week",
        TagKind::Analytical,
        json!(rounded(recent_sessions as f64 / 4.0)),
        None,
        "sessions in the last 28 days / 4",
    );
    if let Some((weekday, daypart, sessions)) = visit_pattern(p) {
        let reason = format!("most frequent among {sessions} recent sessions (UTC)");
        tag(tags, "preferred_weekday", TagKind::Analytical, json!(weekday), None, reason.clone());
        tag(tags, "preferred_time_of_day", TagKind::Analytical, json!(daypart), None, reason);
    }
    if let Some(device) = p.main_device() {
        let device_type = device.split('/').next().unwrap_or(device);
        tag(
            tags,
            "preferred_device",
            TagKind::Analytical,
            json!(device_type),
            None,
            "device type of most events",
        );
    }
    let page_views = p.counters.get("$page").copied().unwrap_or(0);
    tag(tags, "page_views", TagKind::Analytical, json!(page_views), None, "count of page calls");
    tag(
        tags,
        "sessions",
        TagKind::Analytical,
        json!(p.sessions.count()),
        None,
        format!("runs of activity without a {}-minute gap", crate::profile::SESSION_GAP_MS / 60_000),
    );
    if let Some(rfm) = rfm(p, s, r.now) {
        tag(
            tags,
            "rfm",
            TagKind::Analytical,
            rfm,
            p.orders.last,
            format!("{} orders (\"{}\")", p.orders.count, crate::profile::ORDER_EVENT),
        );
    }
    match &r.intent {
        Some((stage, why)) => tag(
            tags,
            "intent_stage",
            TagKind::Analytical,
            json!(stage.as_str()),
            None,
            format!("highest stage in the last {} days: {why}", s.intent_window_days),
        ),
        None => tag(
            tags,
            "intent_stage",
            TagKind::Analytical,
            Json::Null,
            None,
            format!("no signal in the last {} days", s.intent_window_days),
        ),
    }
    let (stage, why, at) = lifecycle(r);
    tag(tags, "lifecycle", TagKind::Analytical, json!(stage.as_str()), at, why);
}

/// The weekday and part of the day most sessions started in (UTC).
fn visit_pattern(p: &Profile) -> Option<(&'static str, &'static str, usize)> {
    const WEEKDAYS: [&str; 7] =
        ["thursday", "friday", "saturday", "sunday", "monday", "tuesday", "wednesday"];
    const DAYPARTS: [&str; 4] = ["night", "morning", "afternoon", "evening"];
    let sessions = &p.sessions.recent;
    if sessions.is_empty() {
        return None;
    }
    let mut weekdays = [0usize; 7];
    let mut dayparts = [0usize; 4];
    for session in sessions {
        let day = session.start.0.div_euclid(MS_PER_DAY);
        weekdays[day.rem_euclid(7) as usize] += 1; // 1970-01-01 was a Thursday
        let hour = session.start.0.rem_euclid(MS_PER_DAY) / 3_600_000;
        dayparts[(hour / 6) as usize] += 1;
    }
    let best =
        |counts: &[usize]| (0..counts.len()).max_by_key(|&i| (counts[i], std::cmp::Reverse(i))).unwrap_or(0);
    Some((WEEKDAYS[best(&weekdays)], DAYPARTS[best(&dayparts)], sessions.len()))
}

fn rfm(p: &Profile, s: &TagSettings, now: Timestamp) -> Option<Json> {
    let last = p.orders.last?;
    let days = (now.0 - last.0).max(0) as f64 / MS_PER_DAY as f64;
    let recency = 5 - s.rfm.recency_days.iter().take_while(|&&limit| days > limit).count() as u8;
    let bins =
        |value: f64, limits: &[f64; 4]| 1 + limits.iter().filter(|&&limit| value >= limit).count() as u8;
    let frequency = bins(p.orders.count as f64, &s.rfm.frequency);
    let revenue = p.orders.revenue_cents as f64 / 100.0;
    let monetary = bins(revenue, &s.rfm.monetary);
    let segment = match recency {
        4.. if frequency >= 4 => "champion",
        4.. if frequency >= 2 => "loyal",
        4.. => "new",
        3 => "needs_attention",
        _ if frequency >= 3 => "at_risk",
        _ => "lost",
    };
    Some(json!({
        "recency": recency, "frequency": frequency, "monetary": monetary,
        "score": format!("{recency}{frequency}{monetary}"), "segment": segment,
        "orders": p.orders.count, "revenue": revenue, "daysSinceLastOrder": days.floor(),
    }))
}

/// The stage: an explicit trait wins; else the furthest of known (an identity beyond the
/// anonymous id), MQL (lead score), and the configured events.
fn lifecycle(r: &Reading<'_>) -> (Lifecycle, String, Option<Timestamp>) {
    let (p, s) = (r.profile, r.settings);
    if let Some((text, stamped)) = trait_text(&p.traits, &[s.lifecycle.trait_key.as_str()])
        && let Some(stage) = Lifecycle::parse(&text)
    {
        return (stage, format!("trait {} = \"{text}\"", s.lifecycle.trait_key), Some(stamped.stamp.at));
    }
    let mut stage = (Lifecycle::Anonymous, "only an anonymous id".to_owned());
    let known = p.identities.iter().any(|i| i.kind != crate::identity::IdKind::AnonymousId);
    if known {
        stage = (Lifecycle::Known, "identified (user id or email)".into());
        let score = r.lead.score;
        if score >= s.lifecycle.mql_lead_score {
            stage = (Lifecycle::Mql, format!("lead score {score:.0} ≥ {}", s.lifecycle.mql_lead_score));
        }
    }
    for (event, target) in &s.lifecycle.events {
        if p.counters.get(event).is_some_and(|n| *n > 0) && *target > stage.0 && *target != Lifecycle::Churned
        {
            stage = (*target, format!("event {event}"));
        }
    }
    (stage.0, stage.1, None)
}

/// Fit (seniority, company size, industry; ≤ 50) + behaviour (engagement, intent; ≤ 50).
fn lead_score(r: &Reading<'_>) -> LeadScore {
    let (p, lead) = (r.profile, &r.settings.lead_score);
    let mut factors: Vec<(String, f64)> = Vec::new();
    if let Some((title, _)) = trait_text(&p.traits, &["title", "job_title", "jobTitle"])
        && let Some(parsed) = firmographics::parse_title(&title)
        && let Some(points) = lead.seniority.get(parsed.seniority.as_str())
    {
        factors.push((format!("seniority {}", parsed.seniority.as_str()), *points));
    }
    if let Some((band, _)) = employee_band(p)
        && let Some(points) = lead.employees.get(band.as_str())
    {
        factors.push((format!("employees {}", band.as_str()), *points));
    }
    let industry = trait_text(&p.traits, &["industry"])
        .or_else(|| p.group_traits.values().find_map(|t| trait_text(t, &["industry"])));
    if let Some((industry, _)) = industry
        && let Some((name, points)) =
            lead.industries.iter().find(|(name, _)| name.eq_ignore_ascii_case(&industry))
    {
        factors.push((format!("industry {name}"), *points));
    }
    let fit = factors.iter().map(|(_, points)| points).sum::<f64>().clamp(0.0, 50.0);
    let engagement = (r.engagement * lead.engagement_factor).min(lead.engagement_max);
    if engagement > 0.0 {
        factors.push((format!("engagement {:.1}", r.engagement), engagement));
    }
    if let Some((stage, _)) = &r.intent
        && let Some(points) = lead.intent.get(stage)
    {
        factors.push((format!("intent {}", stage.as_str()), *points));
    }
    let behaviour = (factors.iter().map(|(_, points)| points).sum::<f64>() - fit).clamp(0.0, 50.0);
    factors.sort_by(|a, b| b.1.total_cmp(&a.1));
    LeadScore { score: (fit + behaviour).clamp(0.0, 100.0), fit, behaviour, factors }
}

fn predictive(r: &Reading<'_>, tags: &mut Vec<Tag>) {
    let LeadScore { score, fit, behaviour, factors } = &r.lead;
    let factors_json: Vec<Json> =
        factors.iter().map(|(f, pts)| json!({ "factor": f, "points": rounded(*pts) })).collect();
    tag(
        tags,
        "lead_score",
        TagKind::Predictive,
        json!(score.round()),
        None,
        format!(
            "fit {fit:.0} (seniority, company size, industry; ≤ 50) + behaviour {behaviour:.0} (engagement, intent; ≤ 50)"
        ),
    );
    tag(
        tags,
        "lead_score_factors",
        TagKind::Predictive,
        Json::Array(factors_json),
        None,
        "the points behind the lead score, largest first",
    );
    // The propensity reads the tags computed so far (by name), as its fitting command does.
    let named: Vec<(&str, &Json)> = tags.iter().map(|t| (t.name, &t.value)).collect();
    let (probability, contributions) =
        r.settings.propensity.score(&|f| crate::predict::feature_value(&named, f));
    let top: Vec<String> = contributions.iter().take(3).map(|(f, c)| format!("{f} {c:+.2}")).collect();
    tag(
        tags,
        "conversion_propensity",
        TagKind::Predictive,
        json!(rounded(probability)),
        None,
        format!(
            "logistic model of the workspace; strongest terms: {}",
            if top.is_empty() { "none".into() } else { top.join(", ") }
        ),
    );
    let is_customer = tags.iter().any(|t| t.name == "lifecycle" && t.value == "customer");
    if is_customer {
        let window = i64::from(r.settings.churn_window_days);
        let all = |_: &str| true;
        let last = r.profile.activity.count(all, r.today - window + 1, r.today);
        let previous = r.profile.activity.count(all, r.today - 2 * window + 1, r.today - window);
        let risk = if last == 0 || (previous >= 4 && last * 2 <= previous) {
            "high"
        } else if last < previous {
            "medium"
        } else {
            "low"
        };
        tag(
            tags,
            "churn_risk",
            TagKind::Predictive,
            json!(risk),
            None,
            format!("customer events: {last} in the last {window} days, {previous} in the {window} before"),
        );
    }
}

/// What audience rules read of a profile: its tags by name (numbers, booleans and texts; a
/// tag whose value is a list or an object reads as null), its traits, and its interests and
/// site tags scored at `now`.
pub struct ProfileFacts<'a> {
    pub tags: &'a [Tag],
    pub profile: &'a Profile,
    pub now: Timestamp,
}

impl Facts for ProfileFacts<'_> {
    fn value(&self, name: &str) -> Fact<'_> {
        self.tags.iter().find(|t| t.name == name).map_or(Fact::Null, |t| json_fact(&t.value))
    }

    fn interest(&self, topic: &str) -> f64 {
        topic_score(&self.profile.interests, topic, self.now)
    }

    fn site_tag(&self, tag: &str) -> f64 {
        self.profile.site_tags.score(&tag.to_owned(), self.now.0)
    }

    fn trait_value(&self, key: &str) -> Fact<'_> {
        self.profile.traits.get(key).map_or(Fact::Null, |t| Fact::from(&t.value))
    }
}

/// The score at `now` of a topic named by id, path or name (0 if unknown or absent).
pub fn topic_score(interests: &crate::topics::interests::Interests, topic: &str, now: Timestamp) -> f64 {
    let Some(model) = crate::topics::builtin() else { return 0.0 };
    let id = model
        .resolve_hint(topic)
        .or_else(|| model.topics().iter().find(|t| t.name.eq_ignore_ascii_case(topic.trim())).map(|t| t.id));
    id.map_or(0.0, |id| interests.score(&id, now.0))
}

/// A JSON value as a rule sees it.
pub fn json_fact(value: &Json) -> Fact<'_> {
    match value {
        Json::Bool(b) => Fact::Bool(*b),
        Json::Number(n) => n.as_f64().map_or(Fact::Null, Fact::Number),
        Json::String(s) => Fact::Text(s.as_str().into()),
        Json::Null | Json::Array(_) | Json::Object(_) => Fact::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_rise_with_activity_and_decay_after_it() {
        use crate::enrich::Received;
        use crate::event::{Call, Event};
        let day = MS_PER_DAY;
        let now = Timestamp(20_000 * day + 12 * 3_600_000);
        let mut profile = Profile::default();
        for (i, days_ago) in [10, 10, 10, 5].into_iter().enumerate() {
            let mut event = Event::new(format!("m{i}"), Call::Track { event: "Demo Requested".into() });
            event.anonymous_id = Some("a".into());
            event.timestamp = Some(Timestamp(now.0 - days_ago * day));
            profile.apply(&Received { event, enrichment: Default::default() });
        }
        let series = series(&profile, &TagSettings::default(), now, 14);
        let engagement: Vec<f64> =
            series["engagement"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        assert_eq!(engagement.len(), 14);
        assert_eq!(series["days"][13], "2024-10-04", "the last day is today");
        assert_eq!(&engagement[..3], [0.0, 0.0, 0.0], "nothing before the first event");
        // The daily cap (1 a day for a demo request) holds on day 10, then decay, then a rise.
        assert!(engagement[3] > 20.0 && engagement[3] <= 25.0, "{engagement:?}");
        assert!(engagement[7] < engagement[3], "decays: {engagement:?}");
        assert!(engagement[8] > engagement[7], "the second request: {engagement:?}");
    }

    #[test]
    fn interests_that_all_faded_make_no_tag_and_match_no_audience() {
        let day = MS_PER_DAY;
        let now = Timestamp(20_000 * day);
        let mut profile = Profile { last_seen: Some(now), ..Profile::default() };
        profile.interests.add(299, 1.0, now.0 - 10 * day);
        let named = |profile: &Profile| {
            tags(profile, &TagSettings::default(), now).into_iter().any(|t| t.name == "interests")
        };
        assert!(named(&profile));
        assert!(topic_score(&profile.interests, "/Sports", now) > 0.5);
        let mut faded = Profile { last_seen: Some(now), ..Profile::default() };
        faded.interests.add(299, 1.0, now.0 - 150 * day); // under 0.001 after ten half-lives
        assert!(!named(&faded), "no tag, rather than an empty one");
        assert_eq!(topic_score(&faded.interests, "/Sports", now), 0.0);
    }

    #[test]
    fn default_settings_are_valid() {
        assert_eq!(TagSettings::default().problem(), None);
    }
}
