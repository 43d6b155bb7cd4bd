//! Campaigns and channels: where a visit came from.
//!
//! A landing URL's UTM parameters and ad click ids make a [`Landing`]; the referrer and the
//! campaign together make a [`Channel`]. The SDK keeps the first touch and the last touch.

use super::url;

/// Ad click ids kept from landing URLs (Google, Microsoft, Meta, LinkedIn).
pub const CLICK_IDS: [&str; 4] = ["gclid", "msclkid", "fbclid", "li_fat_id"];
/// The UTM parameters, in the order of [`Landing::utm`] (the context's `campaign` fields:
/// name, source, medium, term, content).
pub const UTM: [&str; 5] = ["utm_campaign", "utm_source", "utm_medium", "utm_term", "utm_content"];

/// The campaign of a landing URL.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Landing {
    /// By [`UTM`]: name, source, medium, term, content.
    pub utm: [Option<String>; 5],
    /// Click ids, each once (the last one in the URL), in key order.
    pub click_ids: Vec<(&'static str, String)>,
}

impl Landing {
    pub fn medium(&self) -> Option<&str> {
        self.utm[2].as_deref()
    }
}

/// The campaign in a landing URL's query, if it has any UTM parameter or click id.
pub fn from_query(query: &str) -> Option<Landing> {
    let mut landing = Landing::default();
    for (key, value) in url::query_pairs(query) {
        if let Some(field) = UTM.iter().position(|utm| *utm == key) {
            landing.utm[field] = Some(value);
        } else if let Some(id) = CLICK_IDS.iter().find(|id| **id == key) {
            landing.click_ids.retain(|(held, _)| held != id);
            landing.click_ids.push((id, value));
        }
    }
    landing.click_ids.sort_unstable_by_key(|(id, _)| *id);
    (landing != Landing::default()).then_some(landing)
}

/// A stable fingerprint of a campaign: a visit with a different one starts a new session.
pub fn fingerprint(landing: &Landing) -> u64 {
    let mut hash = crate::hash::Fnv1a::new(crate::hash::OFFSET_BASIS);
    for part in &landing.utm {
        hash.update(part.as_deref().unwrap_or("").as_bytes());
        hash.update(&[0]);
    }
    for (id, value) in &landing.click_ids {
        hash.update(id.as_bytes());
        hash.update(value.as_bytes());
    }
    hash.finish()
}

/// Where a visit came from, as marketers group it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    Paid,
    Email,
    Social,
    Search,
    Internal,
    Direct,
    /// A link from another site ("referral").
    Other,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Paid => "paid",
            Channel::Email => "email",
            Channel::Social => "social",
            Channel::Search => "search",
            Channel::Internal => "internal",
            Channel::Direct => "direct",
            Channel::Other => "other",
        }
    }
}

const PAID_MEDIUMS: [&str; 8] =
    ["cpc", "ppc", "paid", "paidsearch", "paid_search", "display", "cpm", "paid_social"];
/// Matched against each dot-separated label of the referrer's host.
const SEARCH_ENGINES: [&str; 9] =
    ["google", "bing", "duckduckgo", "yahoo", "baidu", "yandex", "ecosia", "qwant", "naver"];
const SOCIAL_SITES: [&str; 12] = [
    "facebook",
    "instagram",
    "linkedin",
    "lnkd",
    "twitter",
    "t",
    "x",
    "reddit",
    "youtube",
    "pinterest",
    "tiktok",
    "ycombinator",
];
const WEBMAIL_HOSTS: [&str; 5] =
    ["mail.google.com", "outlook.live.com", "outlook.office.com", "mail.yahoo.com", "mail.proton.me"];

/// The channel of a visit: the campaign's medium and click ids first (they are explicit),
/// then the referrer's host. `page_host` is the site's own host, for internal navigation.
pub fn channel(referrer: Option<&str>, page_host: &str, campaign: Option<&Landing>) -> Channel {
    if let Some(campaign) = campaign {
        let medium = campaign.medium().unwrap_or("").to_ascii_lowercase();
        if PAID_MEDIUMS.contains(&medium.as_str()) || !campaign.click_ids.is_empty() {
            return Channel::Paid;
        }
        if medium == "email" || medium == "newsletter" {
            return Channel::Email;
        }
        if medium == "social" || medium == "social-media" {
            return Channel::Social;
        }
    }
    let Some(host) = referrer.filter(|r| !r.is_empty()).and_then(url::host) else {
        return Channel::Direct;
    };
    let labels: Vec<&str> = host.split('.').collect();
    // The label before the public suffix: `google` in www.google.co.uk, `t` in t.co.
    let named = |names: &[&str]| labels.iter().rev().skip(1).any(|label| names.contains(label));
    if url::same_site(&host, page_host) {
        Channel::Internal
    } else if WEBMAIL_HOSTS.contains(&host.as_str()) {
        Channel::Email
    } else if named(&SEARCH_ENGINES) {
        Channel::Search
    } else if named(&SOCIAL_SITES) {
        Channel::Social
    } else {
        Channel::Other
    }
}

/// The channel a session is credited to: [`channel`], except that an internal referrer
/// means the session expired during the visit, which is not a new arrival (direct).
pub fn session_channel(referrer: Option<&str>, page_host: &str, campaign: Option<&Landing>) -> Channel {
    match channel(referrer, page_host, campaign) {
        Channel::Internal => Channel::Direct,
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_utm_parameters_and_click_ids() {
        let campaign =
            from_query("utm_source=news&utm_medium=email&utm_campaign=Spring%20Sale&gclid=abc&x=1").unwrap();
        assert_eq!(campaign.utm[0].as_deref(), Some("Spring Sale"));
        assert_eq!(campaign.utm[1].as_deref(), Some("news"));
        assert_eq!(campaign.medium(), Some("email"));
        assert_eq!(campaign.click_ids, [("gclid", "abc".to_owned())]);
        let both = from_query("msclkid=1&gclid=2&msclkid=3").unwrap();
        assert_eq!(both.click_ids, [("gclid", "2".to_owned()), ("msclkid", "3".to_owned())]);
        assert_eq!(from_query("q=shoes&page=2"), None);
        assert_eq!(from_query(""), None);
    }

    #[test]
    fn fingerprints_differ_by_campaign() {
        let a = from_query("utm_campaign=a").unwrap();
        let b = from_query("utm_campaign=b").unwrap();
        assert_ne!(fingerprint(&a), fingerprint(&b));
        assert_eq!(fingerprint(&a), fingerprint(&from_query("utm_campaign=a").unwrap()));
    }

    #[test]
    fn a_session_never_starts_internal() {
        let internal = Some("https://www.acme.io/pricing");
        assert_eq!(channel(internal, "acme.io", None), Channel::Internal);
        assert_eq!(session_channel(internal, "acme.io", None), Channel::Direct);
        assert_eq!(session_channel(Some("https://t.co/x"), "acme.io", None), Channel::Social);
    }

    #[test]
    fn classifies_channels() {
        let site = "www.acme.io";
        let cases: [(Option<&str>, Option<&str>, Channel); 12] = [
            (None, None, Channel::Direct),
            (Some(""), None, Channel::Direct),
            (Some("https://www.google.co.uk/"), None, Channel::Search),
            (Some("https://duckduckgo.com/"), None, Channel::Search),
            (Some("https://t.co/abc"), None, Channel::Social),
            (Some("https://www.linkedin.com/feed/"), None, Channel::Social),
            (Some("https://mail.google.com/mail/u/0"), None, Channel::Email),
            (Some("https://blog.acme.io/post"), None, Channel::Internal),
            (Some("https://news.example.org/"), None, Channel::Other),
            (Some("https://www.google.com/"), Some("utm_medium=cpc"), Channel::Paid),
            (None, Some("fbclid=1"), Channel::Paid),
            (Some("https://news.example.org/"), Some("utm_medium=Email"), Channel::Email),
        ];
        for (referrer, query, expected) in cases {
            let campaign = query.and_then(from_query);
            assert_eq!(channel(referrer, site, campaign.as_ref()), expected, "{referrer:?} {query:?}");
        }
    }
}
