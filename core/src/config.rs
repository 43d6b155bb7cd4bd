//! Workspace configuration: sources (public write keys and the origins allowed to use them),
//! admin keys (by secret name), and the settings served to the SDK.
//!
//! Loaded from TOML; every error names the line, column and key:
//!
//! ```
//! let text = "environment = \"development\"\n[[workspaces]]\nid = \"Demo!\"\nadmin_key_secrets = [\"K\"]\nsources = []\n";
//! let error = portrait_core::config::Config::parse(text).unwrap_err();
//! assert_eq!(error.to_string(), "line 3, column 6: workspaces[0].id: must be 1–32 characters of a-z, 0-9 and -");
//! ```

use crate::audience::Rule;
use crate::identity::IdentityRules;
use crate::tags::TagSettings;
use crate::topics::rules::{MAX_RULES, TagRule};
use crate::webhook::Webhook;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

use crate::client::consent::Decision;
use serde::{Deserialize, Serialize};
use toml::de::{DeTable, DeValue};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `development` configurations are only served to requests for localhost (a deploy that
    /// forgot to replace the development keys answers 503 instead of accepting data).
    pub environment: Environment,
    pub workspaces: Vec<Workspace>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    Development,
    Production,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workspace {
    /// Part of every storage name of the workspace: `[a-z0-9-]{1,32}`.
    pub id: String,
    /// Names of the secrets (wrangler secrets; `.dev.vars` locally) that hold admin keys.
    pub admin_key_secrets: Vec<String>,
    pub sources: Vec<Source>,
    #[serde(default)]
    pub sdk: SdkSettings,
    /// Identity resolution settings (placeholders, limits, custom id types).
    #[serde(default)]
    pub identity: IdentityRules,
    /// How behaviour becomes scores, stages and predictions (see `crate::tags`).
    #[serde(default)]
    pub scoring: TagSettings,
    /// Audiences of people or accounts, by rule (see `crate::audience`).
    #[serde(default)]
    pub audiences: Vec<Audience>,
    /// Webhooks fired by audience entries and exits, lifecycle changes and lead scores.
    #[serde(default)]
    pub webhooks: Vec<Webhook>,
}

/// `[[workspaces.audiences]]`: who is in it is decided by `rule` each time a profile (or an
/// account) changes.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Audience {
    /// `[a-z0-9_-]{1,64}`.
    pub name: String,
    pub rule: String,
    #[serde(default)]
    pub of: AudienceOf,
    /// The parsed rule, set when the configuration is validated.
    #[serde(skip)]
    pub parsed: Option<Rule>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AudienceOf {
    #[default]
    People,
    Accounts,
}

impl AudienceOf {
    pub fn as_str(self) -> &'static str {
        match self {
            AudienceOf::People => "people",
            AudienceOf::Accounts => "accounts",
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    pub name: String,
    /// Public: it ships in web pages. What it allows is described in SECURITY.md.
    pub write_key: String,
    /// Browser origins (`https://www.example.com`) allowed to send with this key; `*` allows
    /// any. Requests without an `Origin` header (servers) are not restricted by it.
    pub allowed_origins: Vec<String>,
    #[serde(default)]
    pub rate_limit: RateLimit,
}

/// Token bucket per source, enforced per collector instance.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    pub events_per_second: u32,
    pub burst: u32,
}

impl Default for RateLimit {
    fn default() -> RateLimit {
        RateLimit { events_per_second: 1_000, burst: 20_000 }
    }
}

/// What `GET /v1/config/{writeKey}` tells the SDK.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct SdkSettings {
    #[serde(default = "granted")]
    pub consent_default: Decision,
    #[serde(default)]
    pub autocapture: Autocapture,
    #[serde(default)]
    pub respect_do_not_track: bool,
    #[serde(default)]
    pub respect_global_privacy_control: bool,
    /// The site's own page tags (see [`crate::topics::rules`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tag_rules: Vec<TagRule>,
}

fn granted() -> Decision {
    Decision::Granted
}

impl Default for SdkSettings {
    fn default() -> SdkSettings {
        SdkSettings {
            consent_default: Decision::Granted,
            autocapture: Autocapture::default(),
            respect_do_not_track: false,
            respect_global_privacy_control: false,
            tag_rules: Vec::new(),
        }
    }
}

/// Each switch on by default. The SDK reads the same switches from `load`'s options.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Autocapture {
    pub page_views: bool,
    pub clicks: bool,
    pub forms: bool,
    pub scroll: bool,
    pub engagement: bool,
    pub campaigns: bool,
}

impl Default for Autocapture {
    fn default() -> Autocapture {
        Autocapture {
            page_views: true,
            clicks: true,
            forms: true,
            scroll: true,
            engagement: true,
            campaigns: true,
        }
    }
}

/// A configuration error, located in the source text.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigError {
    pub line: usize,
    pub column: usize,
    /// Dotted path of the offending key (`workspaces[0].sources[1].write_key`), when known.
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}: ", self.line, self.column)?;
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

/// The source a write key belongs to.
#[derive(Clone, Copy, Debug)]
pub struct SourceRef<'a> {
    pub workspace: &'a Workspace,
    pub source: &'a Source,
}

impl Config {
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            let key = text.get(span.clone()).unwrap_or("").trim().chars().take(64).collect();
            located(text, span, key, e.message().to_owned())
        })?;
        config.validate(text)?;
        config.parse_audiences(text)?;
        Ok(config)
    }

    fn validate(&self, text: &str) -> Result<(), ConfigError> {
        let error = |key: String, message: &str| Err(located_key(text, key, message.to_owned()));
        let mut workspace_ids: BTreeMap<&str, usize> = BTreeMap::new();
        let mut write_keys: BTreeMap<&str, String> = BTreeMap::new();
        // An admin key opens one workspace: a secret two share would open only one of them.
        let mut admin_secrets: BTreeMap<&str, (String, usize)> = BTreeMap::new();
        for (w, workspace) in self.workspaces.iter().enumerate() {
            let id = workspace.id.as_str();
            let valid_id = (1..=32).contains(&id.len())
                && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !valid_id {
                return error(format!("workspaces[{w}].id"), "must be 1–32 characters of a-z, 0-9 and -");
            }
            if let Some(first) = workspace_ids.insert(id, w) {
                return error(format!("workspaces[{w}].id"), &format!("duplicate of workspaces[{first}].id"));
            }
            if workspace.admin_key_secrets.is_empty() {
                return error(
                    format!("workspaces[{w}].admin_key_secrets"),
                    "at least one admin key secret is required",
                );
            }
            for (k, name) in workspace.admin_key_secrets.iter().enumerate() {
                let valid = !name.is_empty()
                    && name.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
                let path = format!("workspaces[{w}].admin_key_secrets[{k}]");
                if !valid {
                    return error(path, "secret names are A-Z, 0-9 and _");
                }
                if let Some((first, in_workspace)) = admin_secrets.insert(name, (path.clone(), w)) {
                    let why = if in_workspace == w { "" } else { ": an admin key opens one workspace" };
                    return error(path, &format!("duplicate of {first}{why}"));
                }
            }
            let mut source_names = std::collections::BTreeSet::new();
            for (s, source) in workspace.sources.iter().enumerate() {
                let path = format!("workspaces[{w}].sources[{s}]");
                // Its statistics are kept, and read (`/v1/sources/{name}/stats`), by name.
                let name = &source.name;
                // Unique whatever the case: one would hide the other on a case-blind look.
                let folded = name.to_ascii_lowercase();
                if !is_name(&folded) || !source_names.insert(folded) {
                    return error(
                        format!("{path}.name"),
                        &format!(
                            "`{}`: source names are 1–64 characters of A-Z, a-z, 0-9, _ and -, unique in a workspace",
                            name.chars().take(64).collect::<String>()
                        ),
                    );
                }
                let key = source.write_key.as_str();
                // Characters that a URL carries as they are: the key is a path segment of
                // `/v1/config/{key}` and a query value of the beacon URL.
                let url_safe = |b: u8| b.is_ascii_alphanumeric() || b"._-~".contains(&b);
                if key.len() < 8 || key.len() > 128 || !key.bytes().all(url_safe) {
                    return error(
                        format!("{path}.write_key"),
                        "must be 8–128 characters of A-Z, a-z, 0-9 and . _ - ~",
                    );
                }
                if let Some(first) = write_keys.insert(key, path.clone()) {
                    return error(format!("{path}.write_key"), &format!("duplicate of {first}.write_key"));
                }
                for (o, origin) in source.allowed_origins.iter().enumerate() {
                    if let Err(problem) = origin_as_sent(origin) {
                        return error(format!("{path}.allowed_origins[{o}]"), problem);
                    }
                }
                if source.rate_limit.events_per_second == 0 || source.rate_limit.burst == 0 {
                    return error(
                        format!("{path}.rate_limit"),
                        "events_per_second and burst must be positive",
                    );
                }
            }
            for (table, problem) in
                [("identity", workspace.identity.problem()), ("scoring", workspace.scoring.problem())]
            {
                if let Some((field, message)) = problem {
                    return error(format!("workspaces[{w}].{table}.{field}"), &message);
                }
            }
            let rules = &workspace.sdk.tag_rules;
            if rules.len() > MAX_RULES {
                let past = format!("workspaces[{w}].sdk.tag_rules[{MAX_RULES}]");
                return error(past, &format!("at most {MAX_RULES} rules"));
            }
            for (r, rule) in rules.iter().enumerate() {
                if let Some((field, message)) = rule.problem() {
                    return error(format!("workspaces[{w}].sdk.tag_rules[{r}].{field}"), &message);
                }
            }
        }
        Ok(())
    }

    /// Parses every audience rule, locating errors in the configuration text.
    fn parse_audiences(&mut self, text: &str) -> Result<(), ConfigError> {
        for (w, workspace) in self.workspaces.iter_mut().enumerate() {
            let mut names = std::collections::BTreeSet::new();
            for (a, audience) in workspace.audiences.iter_mut().enumerate() {
                let key = format!("workspaces[{w}].audiences[{a}]");
                if !is_name(&audience.name) || !names.insert(audience.name.clone()) {
                    return Err(located_key(
                        text,
                        format!("{key}.name"),
                        format!("`{}`: {NAMES}", audience.name),
                    ));
                }
                let rule = Rule::parse(&audience.rule).map_err(|e| {
                    let span = span_of(text, &format!("{key}.rule"));
                    let start = span.start + string_opening(&text[span.clone()]);
                    let offset = offset_of(&audience.rule, e.line, e.column);
                    located(text, start + offset..start + offset, format!("{key}.rule"), e.message.clone())
                })?;
                audience.parsed = Some(rule);
            }
            let names: Vec<&str> = workspace.audiences.iter().map(|a| a.name.as_str()).collect();
            let mut hooks = std::collections::BTreeSet::new();
            for (h, webhook) in workspace.webhooks.iter().enumerate() {
                let problem = webhook.problem(&names).or_else(|| {
                    (!hooks.insert(webhook.name.as_str()))
                        .then(|| ("name".to_owned(), "declared twice".to_owned()))
                });
                if let Some((field, message)) = problem {
                    return Err(located_key(text, format!("workspaces[{w}].webhooks[{h}].{field}"), message));
                }
            }
        }
        Ok(())
    }

    /// The source owning `write_key`. Compares against every key in constant time per key,
    /// so the answer's timing does not reveal how much of a key was right.
    pub fn source(&self, write_key: &str) -> Option<SourceRef<'_>> {
        let mut found = None;
        for workspace in &self.workspaces {
            for source in &workspace.sources {
                if constant_time_eq(source.write_key.as_bytes(), write_key.as_bytes()) {
                    found = Some(SourceRef { workspace, source });
                }
            }
        }
        found
    }

    /// Whether any source allows `origin` (for CORS preflights, which carry no key).
    pub fn any_source_allows(&self, origin: &str) -> bool {
        self.workspaces.iter().flat_map(|w| &w.sources).any(|source| source.allows_origin(origin))
    }
}

impl Source {
    pub fn allows_origin(&self, origin: &str) -> bool {
        self.allowed_origins.iter().any(|allowed| allowed == "*" || allowed == origin)
    }
}

/// Equality whose running time depends only on the lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What names of audiences may be (a source's may have capitals too).
const NAMES: &str = "names are 1–64 characters of a-z, 0-9, _ and -, unique in a workspace";

fn is_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Whether `text` is `*`, `null` (what a sandboxed or `file:` page sends) or an origin as a
/// browser sends it in `Origin` (matched as text by [`Source::allows_origin`]): lower case,
/// and a port only when it is not the scheme's own.
fn origin_as_sent(text: &str) -> Result<(), &'static str> {
    const SHAPE: &str =
        "expected `*` or an origin such as `https://www.example.com` (scheme, host, optional port; no path)";
    if text == "*" || text == "null" {
        return Ok(());
    }
    let Some((scheme, rest)) = text.split_once("://") else { return Err(SHAPE) };
    // An IPv6 host is in brackets, and holds colons itself; a name or IPv4 host holds none.
    let ipv6 = rest.starts_with('[');
    let (host, after_host) = match rest.strip_prefix('[') {
        Some(inside) => match inside.find(']') {
            Some(end) => (&inside[..end], &inside[end + 1..]),
            None => return Err(SHAPE),
        },
        None => rest.split_at(rest.find(':').unwrap_or(rest.len())),
    };
    let host_byte = |b: u8| match ipv6 {
        true => b.is_ascii_hexdigit() || b == b':' || b == b'.',
        false => b.is_ascii_alphanumeric() || b == b'.' || b == b'-',
    };
    let port = match after_host.strip_prefix(':') {
        Some(port) => Some(port),
        None if after_host.is_empty() => None,
        None => return Err(SHAPE),
    };
    if !matches!(scheme, "http" | "https") || host.is_empty() || !host.bytes().all(host_byte) {
        return Err(SHAPE);
    }
    if text.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err("write it in lower case: browsers send the origin so, and it is matched as text");
    }
    match port.map(|p| (p, p.parse::<u16>())) {
        None => Ok(()),
        Some((p, Ok(n))) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => {
            if (scheme, n) == ("http", 80) || (scheme, n) == ("https", 443) {
                Err("leave out the scheme's own port: browsers send the origin without it")
            } else {
                Ok(())
            }
        }
        Some(_) => Err("a port is 1–65535"),
    }
}

/// Bytes of the quotes that open a TOML string (`"`, `'`, or a triple quote and the newline
/// right after it).
fn string_opening(literal: &str) -> usize {
    match literal.get(..3) {
        Some("'''" | "\"\"\"") if literal[3..].starts_with('\n') => 4,
        Some("'''" | "\"\"\"") => 3,
        _ => 1,
    }
}

/// The byte offset of a 1-based (line, column in characters) position in `text`.
fn offset_of(text: &str, line: usize, column: usize) -> usize {
    let line_start: usize = text.split_inclusive('\n').take(line.saturating_sub(1)).map(str::len).sum();
    let rest = &text[line_start.min(text.len())..];
    line_start + rest.char_indices().nth(column.saturating_sub(1)).map_or(rest.len(), |(i, _)| i)
}

/// Where in `text` the value at `key` (`workspaces[0].scoring.levels`, as errors name it) is
/// written. A check of a table as a whole (`scoring.levels`, the propensity's coefficients)
/// points at the table; a key the path cannot reach, at the deepest table it reaches.
fn span_of(text: &str, key: &str) -> Range<usize> {
    let Ok(root) = DeTable::parse(text) else { return 0..0 };
    let mut span = root.span();
    let root = DeValue::Table(root.into_inner());
    let mut value = &root;
    for step in key_steps(key) {
        let next = match (value, step) {
            (DeValue::Table(table), KeyStep::Key(name)) => table.get(name.as_str()),
            (DeValue::Array(array), KeyStep::Index(Some(index))) => array.get(index),
            _ => None,
        };
        let Some(found) = next else { break };
        span = found.span();
        value = found.get_ref();
    }
    span
}

/// A step of a key path: a key, or an array's index (`None`: not a number).
enum KeyStep {
    Key(String),
    Index(Option<usize>),
}

/// The steps of a key path as errors write it: keys, bare or quoted (as
/// `predict::toml_key` quotes a feature's name, which may hold `.`), and `[index]`es.
fn key_steps(key: &str) -> Vec<KeyStep> {
    let mut steps = Vec::new();
    let mut chars = key.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '.' => {}
            '[' => {
                let index: String = chars.by_ref().take_while(|&c| c != ']').collect();
                steps.push(KeyStep::Index(index.parse().ok()));
            }
            '"' => {
                let mut name = String::new();
                while let Some(c) = chars.next().filter(|&c| c != '"') {
                    match c {
                        '\\' => match chars.next() {
                            Some('u') => {
                                let hex: String = chars.by_ref().take(4).collect();
                                let code = u32::from_str_radix(&hex, 16).ok().filter(|_| hex.len() == 4);
                                name.extend(code.and_then(char::from_u32));
                            }
                            escaped => name.extend(escaped),
                        },
                        c => name.push(c),
                    }
                }
                steps.push(KeyStep::Key(name));
            }
            first => {
                let mut name = String::from(first);
                while let Some(c) = chars.next_if(|&c| c != '.' && c != '[') {
                    name.push(c);
                }
                steps.push(KeyStep::Key(name));
            }
        }
    }
    steps
}

/// An error about `key`, located where its value is written ([`span_of`]).
fn located_key(text: &str, key: String, message: String) -> ConfigError {
    located(text, span_of(text, &key), key, message)
}

fn located(text: &str, span: Range<usize>, key: String, message: String) -> ConfigError {
    let before = text.get(..span.start).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    ConfigError { line, column, key, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = r#"
environment = "production"

[[workspaces]]
id = "acme"
admin_key_secrets = ["PORTRAIT_ADMIN_KEY_ACME"]

[[workspaces.sources]]
name = "www"
write_key = "pk_live_0123456789"
allowed_origins = ["https://www.acme.com", "http://localhost:8080"]
rate_limit = { events_per_second = 50, burst = 500 }

[workspaces.sdk]
consent_default = "pending"
autocapture = { scroll = false }

[[workspaces.sdk.tag_rules]]
tag = "intent:pricing"
url = "/pricing*"
"#;

    #[test]
    fn a_valid_configuration_loads_with_defaults() {
        let config = Config::parse(VALID).unwrap();
        let found = config.source("pk_live_0123456789").unwrap();
        assert_eq!(found.workspace.id, "acme");
        assert!(found.source.allows_origin("https://www.acme.com"));
        assert!(!found.source.allows_origin("https://evil.example"));
        assert_eq!(found.source.rate_limit, RateLimit { events_per_second: 50, burst: 500 });
        let sdk = &found.workspace.sdk;
        assert_eq!(sdk.consent_default, Decision::Pending);
        assert!(!sdk.autocapture.scroll && sdk.autocapture.clicks);
        assert_eq!(sdk.tag_rules[0].url.as_deref(), Some("/pricing*"));
        assert_eq!(sdk.tag_rules[0].weight, 1.0);
        assert!(config.source("pk_live_012345678").is_none());
        assert!(config.any_source_allows("http://localhost:8080"));
    }

    #[test]
    fn errors_name_the_line_column_and_key() {
        let cases = [
            (
                VALID.replace("\"acme\"", "\"Acme\""),
                "line 5, column 6: workspaces[0].id: must be 1–32 characters of a-z, 0-9 and -",
            ),
            (
                VALID.replace("https://www.acme.com\"", "https://www.acme.com/path\""),
                "line 11, column 20: workspaces[0].sources[0].allowed_origins[0]: expected `*` or an origin such as `https://www.example.com` (scheme, host, optional port; no path)",
            ),
            (
                VALID.replace("pk_live_0123456789", "short"),
                "line 10, column 13: workspaces[0].sources[0].write_key: must be 8–128 characters of A-Z, a-z, 0-9 and . _ - ~",
            ),
            (
                // A `+` would reach the collector as a space, a `#` would cut the key short.
                VALID.replace("pk_live_0123456789", "pk_live+01#23"),
                "line 10, column 13: workspaces[0].sources[0].write_key: must be 8–128 characters of A-Z, a-z, 0-9 and . _ - ~",
            ),
            (
                VALID.replace("name = \"www\"", "name = \"www\"\ncolour = \"blue\""),
                "line 10, column 1: colour: unknown field `colour`, expected one of `name`, `write_key`, `allowed_origins`, `rate_limit`",
            ),
            (
                VALID.replace("\"pending\"", "\"maybe\""),
                "line 15, column 19: \"maybe\": unknown variant `maybe`, expected one of `granted`, `denied`, `pending`",
            ),
            (
                VALID.replace("burst = 500", "burst = 0"),
                "line 12, column 14: workspaces[0].sources[0].rate_limit: events_per_second and burst must be positive",
            ),
            (
                VALID.replace("environment = \"production\"", ""),
                "line 1, column 1: missing field `environment`",
            ),
            (
                format!(
                    "{VALID}\n[[workspaces]]\nid = \"acme\"\nadmin_key_secrets = [\"K\"]\nsources = []\n"
                ),
                "line 23, column 6: workspaces[1].id: duplicate of workspaces[0].id",
            ),
            (
                VALID.replace("url = \"/pricing*\"", "url = \"pricing\""),
                "line 20, column 7: workspaces[0].sdk.tag_rules[0].url: a path pattern starts with `/`, e.g. `/pricing*`",
            ),
            (
                VALID.replace("tag = \"intent:pricing\"", "tag = \"Intent\""),
                "line 19, column 7: workspaces[0].sdk.tag_rules[0].tag: must be 1–64 characters of a-z, 0-9 and : _ - . /",
            ),
            (
                VALID.replace("url = \"/pricing*\"", "url = \"/p\"\nweight = 3.0"),
                "line 21, column 10: workspaces[0].sdk.tag_rules[0].weight: must be at least 0.001 and at most 1",
            ),
            (
                format!("{VALID}{}", "[[workspaces.sdk.tag_rules]]\ntag = \"t\"\nurl = \"/x\"\n".repeat(MAX_RULES)),
                "line 318, column 1: workspaces[0].sdk.tag_rules[100]: at most 100 rules",
            ),
            (
                VALID.replace("https://www.acme.com\"", "https://WWW.Acme.com\""),
                "line 11, column 20: workspaces[0].sources[0].allowed_origins[0]: write it in lower case: browsers send the origin so, and it is matched as text",
            ),
            (
                VALID.replace("https://www.acme.com\"", "https://www.acme.com:443\""),
                "line 11, column 20: workspaces[0].sources[0].allowed_origins[0]: leave out the scheme's own port: browsers send the origin without it",
            ),
            (
                VALID.replace("http://localhost:8080", "http://localhost:99999"),
                "line 11, column 44: workspaces[0].sources[0].allowed_origins[1]: a port is 1–65535",
            ),
            (
                VALID.replace("name = \"www\"", "name = \"my site\""),
                "line 9, column 8: workspaces[0].sources[0].name: `my site`: source names are 1–64 characters of A-Z, a-z, 0-9, _ and -, unique in a workspace",
            ),
            (
                VALID.replace("[workspaces.sdk]", "[[workspaces.sources]]\nname = \"WWW\"\nwrite_key = \"pk_live_other_key\"\nallowed_origins = []\n\n[workspaces.sdk]"),
                "line 15, column 8: workspaces[0].sources[1].name: `WWW`: source names are 1–64 characters of A-Z, a-z, 0-9, _ and -, unique in a workspace",
            ),
            (
                format!("{VALID}\n[[workspaces]]\nid = \"beta\"\nadmin_key_secrets = [\"PORTRAIT_ADMIN_KEY_ACME\"]\nsources = []\n"),
                "line 24, column 22: workspaces[1].admin_key_secrets[0]: duplicate of workspaces[0].admin_key_secrets[0]: an admin key opens one workspace",
            ),
            (
                VALID.replace("[workspaces.sdk]", "[workspaces.identity]\nblocked_values = [\"none\", \"\"]\n\n[workspaces.sdk]"),
                "line 15, column 27: workspaces[0].identity.blocked_values[1]: must be 1–255 bytes (empty values are always blocked)",
            ),
            (
                // `levels` is checked as a whole: its table.
                VALID.replace("[workspaces.sdk]", "[workspaces.scoring.levels]\nhot = 10\nwarm = 15\ncold = 5\n\n[workspaces.sdk]"),
                "line 14, column 1: workspaces[0].scoring.levels: expected hot ≥ warm ≥ cold ≥ 0",
            ),
            (
                // A quoted key, with a `.` of its own.
                VALID.replace(
                    "[workspaces.sdk]",
                    "[workspaces.scoring.propensity]\nintercept = 0.5\ncoefficients = { \"Page.Type\" = 1.0 }\n\n[workspaces.sdk]",
                ),
                "line 16, column 32: workspaces[0].scoring.propensity.coefficients.\"Page.Type\": expected a tag name of 1–64 characters of a-z, 0-9 and _, or `tag=value` for a text tag",
            ),
            (
                VALID.replace("[\"PORTRAIT_ADMIN_KEY_ACME\"]", "[]"),
                "line 6, column 21: workspaces[0].admin_key_secrets: at least one admin key secret is required",
            ),
            (
                VALID.replace("[workspaces.sdk]", "[workspaces.scoring]\nchurn_window_days = 0\n\n[workspaces.sdk]"),
                "line 15, column 21: workspaces[0].scoring.churn_window_days: windows must be at least one day",
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(Config::parse(&text).unwrap_err().to_string(), expected);
        }
        // (origin, whether it loads)
        let origins = [
            ("http://[::1]:8080", true),
            ("http://[::1]", true),
            ("https://www.acme.com:8443", true),
            ("http://127.0.0.1:8787", true),
            ("null", true),
            ("http://a:b:8080", false),
            ("http://::1:8080", false),
            ("http://[::1", false),
            ("http://[::1]x", false),
            ("http://[g::1]", false),
            ("https://a.com:", false),
        ];
        for (origin, loads) in origins {
            let text = VALID.replace("http://localhost:8080", origin);
            assert_eq!(Config::parse(&text).is_ok(), loads, "{origin}");
        }
    }

    #[test]
    fn key_paths_read_back_into_their_steps() {
        let steps = |key| {
            key_steps(key)
                .into_iter()
                .map(|step| match step {
                    KeyStep::Key(name) => name,
                    KeyStep::Index(index) => format!("{index:?}"),
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(
            steps("workspaces[0].sdk.tag_rules[12].url"),
            ["workspaces", "Some(0)", "sdk", "tag_rules", "Some(12)", "url"]
        );
        assert_eq!(steps(r#"coefficients."a.b[1]=\"x\"\\\u0007""#), ["coefficients", "a.b[1]=\"x\"\\\u{7}"]);
        assert_eq!(steps("a[x]"), ["a", "None"]);
        // Cut short or empty: steps as far as they go, never a panic.
        assert_eq!(steps(r#"a."b\u00"#), ["a", "b"]);
        assert!(steps("").is_empty());
    }

    #[test]
    fn audience_rules_and_webhooks_are_checked_where_they_are_written() {
        let with = |extra: &str| format!("{VALID}{extra}");
        let audience = "\n[[workspaces.audiences]]\nname = \"hot\"\nrule = '''\nlead_score >= 60\n  and country = \"DE\"'''\n";
        let error = Config::parse(&with(audience)).unwrap_err();
        let rule_line = VALID.lines().count() + 6; // a blank line, the table, name, `rule = '''`, its first line
        assert_eq!(
            (error.line, error.column, error.key.as_str()),
            (rule_line, 15, "workspaces[0].audiences[0].rule")
        );
        assert!(error.message.contains("did you mean \"==\""), "{}", error.message);

        let good = "\n[[workspaces.audiences]]\nname = \"hot\"\nrule = \"lead_score >= 60\"\n";
        let config = Config::parse(&with(good)).unwrap();
        assert!(config.workspaces[0].audiences[0].parsed.is_some());
        let twice = Config::parse(&with(&good.repeat(2))).unwrap_err();
        assert_eq!(
            (twice.line, twice.column, twice.key.as_str()),
            (VALID.lines().count() + 7, 8, "workspaces[0].audiences[1].name"),
            "the second audience's name"
        );
        let webhook = "\n[[workspaces.webhooks]]\nname = \"crm\"\nurl = \"https://x.example/h\"\nsecret = \"S\"\non = [\"audience_entered:cold\"]\n";
        let error = Config::parse(&with(&format!("{good}{webhook}"))).unwrap_err();
        assert_eq!(error.key, "workspaces[0].webhooks[0].on[0]");
        let on_line = with(&format!("{good}{webhook}")).lines().position(|l| l.starts_with("on = "));
        assert_eq!((Some(error.line), error.column), (on_line.map(|at| at + 1), 7), "the webhook's `on[0]`");
        assert!(error.message.contains("audiences: hot"), "{}", error.message);
    }

    /// The configuration the README shows is a valid one.
    #[test]
    fn the_readme_configuration_parses() {
        let readme = include_str!("../../README.md");
        let start =
            readme.find("```toml\nenvironment = \"production\"").expect("the README shows a configuration")
                + 8;
        let text = &readme[start..start + readme[start..].find("```").unwrap()];
        let config = Config::parse(&text.replace('…', "0123456789"))
            .unwrap_or_else(|e| panic!("README configuration: {e}"));
        let workspace = &config.workspaces[0];
        assert_eq!(workspace.audiences.len(), 2);
        assert_eq!(workspace.webhooks[0].on.len(), 3);
        assert_eq!(workspace.scoring.levels.cold, 5.0);
    }

    #[test]
    fn constant_time_comparison_is_still_equality() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
