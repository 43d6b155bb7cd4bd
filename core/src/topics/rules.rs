//! Site tag rules: a site tags its own pages (product lines, intent) from the configuration,
//! e.g. `/pricing*` → `intent:pricing`. A rule's conditions — a URL path pattern, a CSS
//! selector the page must contain, a meta tag's value — must all hold; a matching page view
//! earns the rule's tag with its weight, scaled by the attention the page got, like topics.
//!
//! ```toml
//! [[workspaces.sdk.tag_rules]]
//! tag = "intent:pricing"
//! url = "/pricing*"                 # path pattern; `*` matches any characters
//! weight = 1.0                      # (0, 1], default 1
//!
//! [[workspaces.sdk.tag_rules]]
//! tag = "product:analytics"
//! meta = "product-line=analytics"   # <meta name="product-line" content="analytics">; `*` = any value
//! selector = "#signup-form"         # the page has an element matching this CSS selector
//! ```

use serde::{Deserialize, Serialize};

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
        if !(self.weight > 0.0 && self.weight <= 1.0) {
            return Some(("weight", "must be more than 0 and at most 1".into()));
        }
        let conditions = [("url", &self.url), ("selector", &self.selector), ("meta", &self.meta)];
        if conditions.iter().all(|(_, c)| c.is_none()) {
            return Some(("url", "a rule needs at least one of url, selector and meta".into()));
        }
        for (field, condition) in conditions {
            if let Some(condition) = condition
                && (condition.trim().is_empty() || condition.len() > MAX_CONDITION_LEN)
            {
                return Some((field, format!("must be 1–{MAX_CONDITION_LEN} characters")));
            }
        }
        if self.url.as_ref().is_some_and(|url| !url.starts_with('/')) {
            return Some(("url", "a path pattern starts with `/`, e.g. `/pricing*`".into()));
        }
        if self.meta.as_ref().is_some_and(|meta| !meta.contains('=')) {
            return Some(("meta", "expected `name=value` (value `*` for any)".into()));
        }
        None
    }

    /// Whether the page matches: its `path`, its meta tags (`meta(name)` → content) and
    /// whether it has an element matching a selector (`has(selector)`; only asked when the
    /// other conditions hold, as it is the costly one).
    pub fn matches(
        &self,
        path: &str,
        meta: impl Fn(&str) -> Option<String>,
        has: impl Fn(&str) -> bool,
    ) -> bool {
        if self.url.as_ref().is_some_and(|pattern| !glob(pattern, path)) {
            return false;
        }
        if let Some((name, wanted)) = self.meta.as_ref().and_then(|m| m.split_once('=')) {
            match meta(name.trim()) {
                Some(content)
                    if wanted.trim() == "*" || content.trim().eq_ignore_ascii_case(wanted.trim()) => {}
                _ => return false,
            }
        }
        self.selector.as_ref().is_none_or(|selector| has(selector))
    }
}

/// A site tag: 1–64 characters of a-z, 0-9 and `: _ - . /` (what the collector accepts from
/// a browser, too).
pub fn is_tag(tag: &str) -> bool {
    let tag_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || ":_-./".contains(c);
    !tag.is_empty() && tag.len() <= MAX_TAG_LEN && tag.chars().all(tag_char)
}

/// Whether a `data-portrait-show-if` condition holds for the visitor's top topics (id and
/// path) and top site tags. Conditions, any of which suffices when joined by `|`:
/// - `interest:/Computers & Electronics`: that topic or one under it (paths, any case);
/// - `interest:5`: the same, by the topic's id (`path_of` gives an id's path; an id it does
///   not know matches only itself);
/// - `tag:intent:pricing`: that site tag (from the tag rules).
pub fn show_if<'a>(
    condition: &str,
    topics: &[(u16, &str)],
    tags: &[String],
    path_of: impl Fn(u16) -> Option<&'a str>,
) -> bool {
    condition.split('|').map(str::trim).any(|one| {
        if let Some(tag) = one.strip_prefix("tag:") {
            return tags.iter().any(|t| t == tag.trim());
        }
        let Some(wanted) = one.strip_prefix("interest:").map(|w| w.trim().trim_end_matches('/')) else {
            return false;
        };
        // `interest:` or `interest:/` (a template's empty value) names nothing.
        if wanted.is_empty() {
            return false;
        }
        let wanted = match wanted.parse::<u16>().map(|id| (id, path_of(id))) {
            Ok((_, Some(path))) => path,
            Ok((id, None)) => return topics.iter().any(|&(topic, _)| topic == id),
            Err(_) => wanted,
        };
        topics.iter().any(|&(_, path)| {
            let prefix = path.get(..wanted.len()).is_some_and(|p| p.eq_ignore_ascii_case(wanted));
            prefix && (path.len() == wanted.len() || path.as_bytes()[wanted.len()] == b'/')
        })
    })
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
    fn every_condition_must_hold_and_the_selector_is_asked_last() {
        let meta = |name: &str| (name == "product-line").then(|| "Analytics".to_owned());
        let all = rule(Some("/pricing*"), Some("#plans"), Some("product-line=analytics"));
        assert!(all.matches("/pricing", meta, |s| s == "#plans"));
        assert!(!all.matches("/pricing", meta, |_| false));
        assert!(!all.matches("/about", meta, |_| panic!("not asked: the URL already failed")));
        assert!(rule(None, None, Some("product-line=*")).matches("/x", meta, |_| false));
        assert!(!rule(None, None, Some("section=sales")).matches("/x", meta, |_| false));
    }

    #[test]
    fn show_if_conditions() {
        let topics = [(5u16, "/Computers & Electronics/Computer Security"), (299, "/Sports")];
        let path_of = |id| match id {
            1 => Some("/Computers & Electronics"),
            2 => Some("/Computers & Electronics/Computer Security"),
            3 => Some("/Arts & Entertainment"),
            _ => None,
        };
        let tags = ["intent:pricing".to_owned()];
        let cases = [
            ("interest:/Computers & Electronics", true),
            ("interest:/computers & electronics/", true),
            ("interest:/Computers", false),
            ("interest:299", true),
            ("interest:300", false),
            ("interest:1", true),
            ("interest:2", true),
            ("interest:3", false),
            ("tag:intent:pricing", true),
            ("tag:intent:demo", false),
            ("tag:intent:demo | interest:/Sports", true),
            ("/Sports", false),
            ("", false),
            ("interest:", false),
            ("interest:/", false),
        ];
        for (condition, expected) in cases {
            assert_eq!(show_if(condition, &topics, &tags, path_of), expected, "{condition}");
        }
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
        assert_eq!(rule(None, Some(""), None).problem().map(|p| p.0), Some("selector"));
        assert_eq!(rule(Some("/pricing*"), Some(".plans"), Some("a=b")).problem(), None);
    }
}
