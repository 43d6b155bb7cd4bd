//! Site tag rules: a site tags its own pages (product lines, intent) from the configuration,
//! e.g. `/pricing*` → `intent:pricing`. A rule's conditions — a URL path pattern, a CSS
//! selector the page must contain, a meta tag's value — must all hold; a matching page view
//! earns the rule's tag with its weight, scaled by the attention the page got, like topics.
//!
//! ```toml
//! [[workspaces.sdk.tag_rules]]
//! tag = "intent:pricing"
//! url = "/pricing*"                 # path pattern; `*` matches any characters
//! weight = 1.0                      # 0.001 to 1, default 1
//!
//! [[workspaces.sdk.tag_rules]]
//! tag = "product:analytics"
//! meta = "product-line=analytics"   # <meta name="product-line" content="analytics">; `*` = any value
//! selector = "#signup-form"         # the page has an element matching this CSS selector
//! ```

use serde::{Deserialize, Serialize};

use super::Model;

/// Bounds on rules, so that a configuration cannot make the SDK's work per page unbounded.
pub const MAX_RULES: usize = 100;
const MAX_TAG_LEN: usize = 64;
const MAX_CONDITION_LEN: usize = 200;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagRule {
    pub tag: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<String>,
    #[serde(default = "full_weight")]
    pub weight: f64,
}

fn full_weight() -> f64 {
    1.0
}

impl TagRule {
    /// What is wrong with the rule, as `(field, message)`; `None` when it is valid.
    pub fn problem(&self) -> Option<(&'static str, String)> {
        if !is_tag(&self.tag) {
            return Some(("tag", format!("must be 1–{MAX_TAG_LEN} characters of a-z, 0-9 and : _ - . /")));
        }
        // The SDK sends weights to 0.001: a smaller one would never be credited.
        if !(self.weight >= 0.001 && self.weight <= 1.0) {
            return Some(("weight", "must be at least 0.001 and at most 1".into()));
        }
        let conditions = [("url", &self.url), ("selector", &self.selector), ("meta", &self.meta)];
        if conditions.iter().all(|(_, c)| c.is_none()) {
            return Some(("url", "a rule needs at least one of url, selector and meta".into()));
        }
        for (field, condition) in conditions {
            let Some(condition) = condition else { continue };
            if condition.trim().is_empty() || condition.chars().count() > MAX_CONDITION_LEN {
                return Some((field, format!("must be 1–{MAX_CONDITION_LEN} characters")));
            }
        }
        if let Some(problem) = self.selector.as_deref().and_then(selector_problem) {
            return Some(("selector", problem.into()));
        }
        if self.url.as_ref().is_some_and(|url| !url.trim_start().starts_with('/')) {
            return Some(("url", "a path pattern starts with `/`, e.g. `/pricing*`".into()));
        }
        // Rules see the page's path only: a pattern with a query or an anchor never matches.
        if self.url.as_ref().is_some_and(|url| url.contains(['?', '#'])) {
            return Some((
                "url",
                "a path pattern has no `?` or `#` (the query and anchor are not read)".into(),
            ));
        }
        if self.meta.as_ref().is_some_and(|meta| {
            meta.split_once('=').is_none_or(|(name, value)| name.trim().is_empty() || value.trim().is_empty())
        }) {
            return Some(("meta", "expected `name=value` (value `*` for any)".into()));
        }
        None
    }

    /// Whether the page matches: its `path` (as the browser gives it, percent-encoded; a
    /// pattern is matched against it decoded too, `/zubehör*`), its meta tags (`metas(name)`:
    /// the contents of every one of that name) and whether it has an element matching a
    /// selector (`has(selector)`; only asked when the other conditions hold, as it is the
    /// costly one).
    pub fn matches(
        &self,
        path: &PagePath,
        metas: impl Fn(&str) -> Vec<String>,
        has: impl Fn(&str) -> bool,
    ) -> bool {
        // Spaces around a condition are the configuration's layout, not part of it.
        let url = self.url.as_deref().map(str::trim);
        if url.is_some_and(|pattern| !glob(pattern, &path.encoded) && !glob(pattern, &path.decoded)) {
            return false;
        }
        if let Some((name, wanted)) = self.meta.as_ref().and_then(|m| m.split_once('=')) {
            let wanted = wanted.trim();
            let found = |content: &String| wanted == "*" || content.trim().eq_ignore_ascii_case(wanted);
            if !metas(name.trim()).iter().any(found) {
                return false;
            }
        }
        self.selector.as_ref().is_none_or(|selector| has(selector))
    }
}

/// What makes `selector` no CSS selector, as far as a cheap look tells (the browser decides
/// the rest, and the SDK reports a selector it refuses): brackets and quotes that do not
/// close, or a character no selector has outside a string.
fn selector_problem(selector: &str) -> Option<&'static str> {
    let mut open: Vec<char> = Vec::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut chars = selector.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            _ if escaped => escaped = false,
            // A comment: skipped to its end (an unclosed one is the browser's to refuse).
            (None, '/') if chars.peek() == Some(&'*') => {
                chars.next();
                let mut last = ' ';
                for c in chars.by_ref() {
                    if last == '*' && c == '/' {
                        break;
                    }
                    last = c;
                }
            }
            (_, '\\') => escaped = true,
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '(' | '[') => open.push(c),
            (None, ')' | ']') => {
                if open.pop() != Some(if c == ')' { '(' } else { '[' }) {
                    return Some("has a `)` or `]` that closes nothing");
                }
            }
            (None, '{' | '}' | ';' | '<') => return Some("has `{`, `}`, `;` or `<`, which no selector has"),
            _ => {}
        }
    }
    match (quote, open.is_empty()) {
        (Some(_), _) => Some("has a quote that is not closed"),
        (None, false) => Some("has a `(` or `[` that is not closed"),
        (None, true) => None,
    }
}

/// The most of a page's path the URL patterns read: a crafted link may be megabytes long, and
/// a pattern's work grows with the path.
pub const MAX_PATH_BYTES: usize = 2048;

/// A page's path as the URL patterns read it: as the browser gives it (percent-encoded), cut
/// to [`MAX_PATH_BYTES`], and that decoded (no longer), once for all the rules.
pub struct PagePath {
    encoded: String,
    decoded: String,
}

impl PagePath {
    pub fn new(path: &str) -> PagePath {
        let encoded = crate::limits::cut_at_char(path, MAX_PATH_BYTES);
        PagePath { encoded: encoded.to_owned(), decoded: crate::client::url::percent_decode(encoded) }
    }
}

/// The site tags `page` earns from `rules` (at `path`; `has(selector)` as in
/// [`TagRule::matches`]), each once, with the greatest weight of the rules that give it.
pub fn page_tags(
    rules: &[TagRule],
    page: &super::page::PageRead,
    path: &str,
    has: impl Fn(&str) -> bool,
) -> Vec<(String, f64)> {
    let metas = |name: &str| -> Vec<String> {
        page.metas.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, c)| c.clone()).collect()
    };
    let path = PagePath::new(path);
    let mut tags: Vec<(String, f64)> = Vec::new();
    for rule in rules.iter().filter(|rule| rule.matches(&path, metas, &has)) {
        match tags.iter_mut().find(|(tag, _)| *tag == rule.tag) {
            Some((_, weight)) => *weight = weight.max(rule.weight),
            None => tags.push((rule.tag.clone(), rule.weight)),
        }
    }
    tags
}

/// A site tag: 1–64 characters of a-z, 0-9 and `: _ - . /` (what the collector accepts from
/// a browser, too).
pub fn is_tag(tag: &str) -> bool {
    let tag_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || ":_-./".contains(c);
    !tag.is_empty() && tag.len() <= MAX_TAG_LEN && tag.chars().all(tag_char)
}

/// Whether a `data-portrait-show-if` condition holds for the visitor's top topics (ids) and
/// top site tags. Conditions, any of which suffices when joined by `|`:
/// - `interest:/Computers & Electronics`: that topic or one under it (paths, any case);
/// - `interest:126`: the same, by the topic's id;
/// - `tag:intent:pricing`: that site tag (from the tag rules).
///
/// The prefixes may be written in any case. A condition this cannot read is an error (what
/// is wrong with it): the element it guards stays hidden, and the page's author is told. So
/// is a topic `model`'s taxonomy does not have (a misspelt path). Without a model (it failed
/// to load) a topic cannot be told from another: `None`, undecided, unless an alternative
/// holds anyway (a site tag the visitor has, or a topic id among theirs) or the visitor has
/// no topics at all.
pub fn show_if(
    condition: &str,
    top: &[u16],
    tags: &[String],
    model: Option<&Model>,
) -> Result<Option<bool>, &'static str> {
    let mut shown = false;
    let mut undecided = false;
    // An empty alternative (a template's `interest:/Sports |`) names nothing, as does an
    // empty value.
    for one in condition.split('|').map(str::trim).filter(|one| !one.is_empty()) {
        // Bytes, not a substring search: this runs in the browser's module, and `str`'s
        // searchers cost it kilobytes.
        let colon = one.bytes().position(|b| b == b':').unwrap_or(one.len());
        let (prefix, value) = (one[..colon].trim(), one.get(colon + 1..).unwrap_or_default().trim());
        let (is_tag_prefix, is_interest) =
            (prefix.eq_ignore_ascii_case("tag"), prefix.eq_ignore_ascii_case("interest"));
        // `interest:/` too: a template's empty path.
        let wanted = value.trim_end_matches('/');
        shown |= if wanted.is_empty() && (is_tag_prefix || is_interest) {
            false
        } else if is_tag_prefix {
            let tag = value.to_ascii_lowercase();
            if !is_tag(&tag) {
                return Err(
                    "a tag is 1–64 characters of a-z, 0-9 and : _ - . / (conditions are joined by `|`)",
                );
            }
            tags.contains(&tag)
        } else if is_interest {
            // No topic's path or id has a `:`: `interest:/A, interest:/B` is two conditions.
            if value.bytes().any(|b| b == b':') {
                return Err("conditions are joined by `|`");
            }
            match model {
                Some(model) => {
                    let Some(topic) = model.resolve_hint(wanted).and_then(|id| model.topic(id)) else {
                        return Err(
                            "no topic of the taxonomy has this path or id (`interests()` lists them)",
                        );
                    };
                    top.iter()
                        .filter_map(|&id| model.topic(id))
                        .any(|held| is_under(held.path(), topic.path()))
                }
                None => {
                    // A visitor without topics (none yet, withdrawn, reset) holds none of them.
                    let held = wanted.parse::<u16>().is_ok_and(|id| top.contains(&id));
                    undecided |= !held && !top.is_empty();
                    held
                }
            }
        } else {
            return Err("a condition is `interest:<topic path or id>` or `tag:<site tag>`");
        };
    }
    Ok(if shown { Some(true) } else { (!undecided).then_some(false) })
}

/// Whether `path` is the topic path `ancestor` or one under it.
fn is_under(path: &str, ancestor: &str) -> bool {
    path.strip_prefix(ancestor).is_some_and(|rest| rest.is_empty() || rest.as_bytes()[0] == b'/')
}

/// `*` matches any run of characters (including `/`); everything else matches itself.
/// Iterative, with one backtrack point: linear-ish work whatever the pattern.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((star_pi, star_ti)) = star {
            pi = star_pi + 1;
            ti = star_ti + 1;
            star = Some((star_pi, star_ti + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(url: Option<&str>, selector: Option<&str>, meta: Option<&str>) -> TagRule {
        TagRule {
            tag: "intent:pricing".into(),
            url: url.map(Into::into),
            selector: selector.map(Into::into),
            meta: meta.map(Into::into),
            weight: 1.0,
        }
    }

    #[test]
    fn globs() {
        let cases = [
            ("/pricing*", "/pricing", true),
            ("/pricing*", "/pricing/enterprise", true),
            ("/pricing*", "/about/pricing", false),
            ("*/pricing", "/de/pricing", true),
            ("/blog/*/security*", "/blog/2026/security-basics", true),
            ("/blog/*/security*", "/blog/security", false),
            ("/docs", "/docs/", false),
            ("*", "/anything", true),
        ];
        for (pattern, path, expected) in cases {
            assert_eq!(glob(pattern, path), expected, "{pattern} on {path}");
        }
        assert!(!glob("*a*a*a*a*a*b", &"a".repeat(5_000)), "no exponential backtracking");
    }

    #[test]
    fn a_crafted_long_path_is_read_to_its_bound() {
        let path = PagePath::new(&format!("/pricing{}", "%C3%A4".repeat(500_000)));
        assert!(path.encoded.len() <= MAX_PATH_BYTES && path.decoded.len() <= MAX_PATH_BYTES);
        assert!(rule(Some("/pricing*"), None, None).matches(&path, |_| Vec::new(), |_| false));
    }

    #[test]
    fn every_condition_must_hold_and_the_selector_is_asked_last() {
        // Two meta tags of one name: either may match.
        let meta = |name: &str| match name {
            "product-line" => vec!["CRM".to_owned(), "Analytics".to_owned()],
            _ => Vec::new(),
        };
        let all = rule(Some("/pricing*"), Some("#plans"), Some("product-line=analytics"));
        assert!(all.matches(&PagePath::new("/pricing"), meta, |s| s == "#plans"));
        assert!(!all.matches(&PagePath::new("/pricing"), meta, |_| false));
        assert!(
            !all.matches(&PagePath::new("/about"), meta, |_| panic!("not asked: the URL already failed"))
        );
        assert!(rule(None, None, Some("product-line=*")).matches(&PagePath::new("/x"), meta, |_| false));
        assert!(rule(None, None, Some("product-line=crm")).matches(&PagePath::new("/x"), meta, |_| false));
        assert!(!rule(None, None, Some("section=sales")).matches(&PagePath::new("/x"), meta, |_| false));
        // The browser's path is percent-encoded; a pattern is written as the path reads.
        assert!(rule(Some("/zubehör*"), None, None).matches(
            &PagePath::new("/zubeh%C3%B6r/kabel"),
            meta,
            |_| false
        ));
        assert!(rule(Some("/a%20b"), None, None).matches(&PagePath::new("/a%20b"), meta, |_| false));
    }

    #[test]
    fn a_page_earns_each_tag_once_with_its_rules_greatest_weight() {
        let mut page = super::super::page::PageRead::new("https://example.com/pricing", "Plans");
        page.meta("product-line", "CRM");
        page.meta("product-line", "Analytics");
        let weighted = |tag: &str, url: Option<&str>, meta: Option<&str>, weight: f64| TagRule {
            tag: tag.into(),
            weight,
            ..rule(url, None, meta)
        };
        let rules = [
            weighted("intent:pricing", Some("/*"), None, 0.1),
            weighted("intent:pricing", Some("/pricing*"), None, 1.0),
            weighted("product:analytics", None, Some("product-line=analytics"), 0.5),
            weighted("intent:demo", Some("/demo*"), None, 1.0),
        ];
        assert_eq!(
            page_tags(&rules, &page, "/pricing", |_| false),
            [("intent:pricing".to_owned(), 1.0), ("product:analytics".to_owned(), 0.5)]
        );
    }

    #[test]
    fn show_if_conditions() {
        let model = crate::topics::builtin();
        // /Computers & Electronics/Computer Security, /Sports.
        let topics = [423, 299];
        let tags = ["intent:pricing".to_owned()];
        let cases = [
            ("interest:/Computers & Electronics", true),
            ("interest:/computers & electronics/", true),
            ("interest:299", true),
            ("interest:126", true),
            ("interest:423", true),
            ("interest:1", false),
            ("interest:/Arts & Entertainment", false),
            ("interest:/Sports/American Football", false),
            ("tag:intent:pricing", true),
            ("tag:intent:demo", false),
            ("tag:intent:demo | interest:/Sports", true),
            ("Interest:/Sports", true),
            ("TAG:Intent:Pricing", true),
            ("interest:", false),
            ("interest:/", false),
            ("tag:", false),
            ("", false),
            ("interest:/Sports |", true),
        ];
        for (condition, expected) in cases {
            assert_eq!(show_if(condition, &topics, &tags, model), Ok(Some(expected)), "{condition}");
        }
        // What cannot be read is an error, not a silently hidden element: a misspelt prefix,
        // a comma, a malformed tag, a path or id the taxonomy does not have.
        let unreadable = [
            "/Sports",
            "interests:/Sports",
            "interest:/Sports, interest:/Games",
            "tag:Intent Pricing",
            "interest:/Computers",
            "interest:/Computer & Electronics",
            "interest:9999",
        ];
        for condition in unreadable {
            assert!(show_if(condition, &topics, &tags, model).is_err(), "{condition}");
        }
        // Without a model, a condition on topics is undecided unless the visitor holds the
        // very id, or a site tag it names.
        let ids = [299];
        assert_eq!(show_if("interest:299", &ids, &tags, None), Ok(Some(true)));
        assert_eq!(show_if("interest:/Sports", &ids, &tags, None), Ok(None));
        assert_eq!(show_if("interest:9999", &ids, &tags, None), Ok(None));
        assert_eq!(show_if("interest:/Sports | tag:intent:pricing", &ids, &tags, None), Ok(Some(true)));
        assert_eq!(show_if("tag:intent:demo", &ids, &tags, None), Ok(Some(false)));
        assert_eq!(
            show_if("interest:/Sports | interest:299", &[], &tags, None),
            Ok(Some(false)),
            "no topics"
        );
    }

    #[test]
    fn invalid_rules_name_their_field() {
        let mut bad = rule(Some("/x"), None, None);
        bad.tag = "Intent Pricing".into();
        assert_eq!(bad.problem().map(|p| p.0), Some("tag"));
        let mut heavy = rule(Some("/x"), None, None);
        heavy.weight = 2.0;
        assert_eq!(heavy.problem().map(|p| p.0), Some("weight"));
        assert_eq!(rule(None, None, None).problem().map(|p| p.0), Some("url"));
        assert_eq!(rule(Some("pricing"), None, None).problem().map(|p| p.0), Some("url"));
        assert_eq!(rule(None, None, Some("nameonly")).problem().map(|p| p.0), Some("meta"));
        assert_eq!(rule(None, None, Some(" =x")).problem().map(|p| p.0), Some("meta"));
        assert_eq!(rule(Some("/pricing?plan=*"), None, None).problem().map(|p| p.0), Some("url"));
        assert_eq!(rule(Some("/#/pricing"), None, None).problem().map(|p| p.0), Some("url"));
        assert_eq!(rule(None, Some(""), None).problem().map(|p| p.0), Some("selector"));
        for selector in ["div:has(", "<<<>>>", "a[href='x]", "a)", ".plans {color: red}"] {
            assert_eq!(
                rule(None, Some(selector), None).problem().map(|p| p.0),
                Some("selector"),
                "{selector}"
            );
        }
        assert_eq!(rule(None, Some(r#"a[href^="/pricing("], .plans > li:not(.x)"#), None).problem(), None);
        assert_eq!(rule(None, None, Some("name=")).problem().map(|p| p.0), Some("meta"));
        assert_eq!(
            rule(Some(" /x* "), Some("\n.plans,\n.prices\n"), Some(" a=b ")).problem(),
            None,
            "spaces around"
        );
        assert!(rule(Some(" /x* "), None, None).matches(&PagePath::new("/x/y"), |_| Vec::new(), |_| false));
        assert_eq!(rule(None, Some(".a /* ; { */ .b"), None).problem(), None, "a comment");
        assert_eq!(
            rule(Some(&format!("/{}", "é".repeat(150))), None, None).problem(),
            None,
            "characters, not bytes"
        );
        let mut faint = rule(Some("/x"), None, None);
        faint.weight = 1e-300;
        assert_eq!(faint.problem().map(|p| p.0), Some("weight"));
        assert_eq!(rule(Some("/pricing*"), Some(".plans"), Some("a=b")).problem(), None);
    }
}
