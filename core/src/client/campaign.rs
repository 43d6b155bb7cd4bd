//! Campaigns and channels: where a visit came from.
//!
//! A landing URL's UTM parameters and ad click ids make a [`Landing`]; the referrer and the
//! campaign together make a [`Channel`]. The SDK keeps the first touch and the last touch.

use super::{push_listed, url};
use crate::limits::cut_at_char;

/// Ad click ids kept from landing URLs (Google, Microsoft, Meta, LinkedIn).
pub const CLICK_IDS: [&str; 4] = ["gclid", "msclkid", "fbclid", "li_fat_id"];
/// The UTM parameters, in the order of [`Landing::utm`] (the context's `campaign` fields:
/// name, source, medium, term, content).
pub const UTM: [&str; 5] = ["utm_campaign", "utm_source", "utm_medium", "utm_term", "utm_content"];

/// The most kept of a campaign parameter's value: the whole would ride on every event of the
/// visitor's (the first touch for good), and a value past the collector's string limit
/// would have it refuse them all.
pub const MAX_CAMPAIGN_VALUE_BYTES: usize = 500;

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

    /// Its parameters as a query (`utm_source=news&gclid=abc`) that [`from_query`] reads
    /// back: what the SDK stores, not the landing URL's whole query, whose other parameters
    /// (a token, an email address) are no campaign.
    pub fn to_query(&self) -> String {
        let utm = UTM.iter().zip(&self.utm).filter_map(|(key, value)| Some((*key, value.as_deref()?)));
        let click_ids = self.click_ids.iter().map(|(id, value)| (*id, value.as_str()));
        let mut query = String::new();
        for (key, value) in utm.chain(click_ids) {
            push_listed(&mut query, "&", &[key, "=", &url::percent_encode(value)]);
        }
        query
    }
}

/// The campaign in a landing URL's query, if it has any UTM parameter or click id.
pub fn from_query(query: &str) -> Option<Landing> {
    let mut landing = Landing::default();
    // An empty value names nothing (`?gclid=`): it is no campaign.
    for (key, value) in url::query_pairs(query).filter(|(_, value)| !value.is_empty()) {
        let value = cut_at_char(&value, MAX_CAMPAIGN_VALUE_BYTES).to_owned();
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

const PAID_MEDIUMS: [&str; 12] = [
    "cpc",
    "ppc",
    "cpv",
    "cpm",
    "paid",
    "paidsearch",
    "paid_search",
    "paid-search",
    "display",
    "paid_social",
    "paid-social",
    "paidsocial",
];
const EMAIL_MEDIUMS: [&str; 4] = ["email", "e-mail", "e_mail", "newsletter"];
const SOCIAL_MEDIUMS: [&str; 4] = ["social", "social-media", "social_media", "social-network"];
/// Click ids only ads carry. Meta adds `fbclid` to every outbound link, its unpaid posts'
/// too, so that one says nothing: the referrer decides.
const PAID_CLICK_IDS: [&str; 3] = ["gclid", "msclkid", "li_fat_id"];
/// Matched against each dot-separated label of the referrer's host (and a tagged link's
/// `utm_source`).
const SEARCH_ENGINES: [&str; 16] = [
    "google",
    "bing",
    "duckduckgo",
    "yahoo",
    "baidu",
    "yandex",
    "ecosia",
    "qwant",
    "naver",
    "brave",
    "startpage",
    "seznam",
    "sogou",
    "daum",
    "kagi",
    "aol",
];
/// Search engines named by a word other sites' labels use too (`ask.fm`, `ask.libreoffice.org`).
const SEARCH_HOSTS: [&str; 1] = ["ask.com"];
/// A search engine's services that are not its search, by any label of the host (its
/// top-level domain aside) or of an app's package: `docs.google.com`, `m.blog.naver.com`,
/// the Google Docs app.
const NOT_SEARCH: [&str; 11] =
    ["docs", "drive", "sites", "accounts", "classroom", "calendar", "meet", "chat", "blog", "cafe", "play"];
const SOCIAL_SITES: [&str; 25] = [
    "facebook",
    "instagram",
    "linkedin",
    "lnkd",
    "twitter",
    "reddit",
    "youtube",
    "pinterest",
    "tiktok",
    "ycombinator",
    "bsky",
    "mastodon",
    "whatsapp",
    "telegram",
    "messenger",
    "discord",
    "snapchat",
    "tumblr",
    "quora",
    "weibo",
    "douban",
    "zhihu",
    "xiaohongshu",
    "linktr",
    "substack",
];
/// Whole hosts (and their subdomains) too short to match by label: `t` or `x` alone would
/// match any host with such a label.
const SOCIAL_HOSTS: [&str; 9] =
    ["t.co", "x.com", "t.me", "wa.me", "vk.com", "vk.ru", "vk.me", "threads.net", "threads.com"];
/// A label that names a mail service: `mail.google.com`, `uk.mail.yahoo.com`,
/// `outlook.office365.com`; `gm` only as an app's name (the Gmail app), not a site's.
const EMAIL_LABELS: [&str; 4] = ["mail", "webmail", "gmail", "outlook"];
const EMAIL_APPS: [&str; 1] = ["gm"];

/// The channel of a visit: the campaign's medium and click ids first (they are explicit),
/// then the referrer's host. `site` is the page's host, or the domain it is part of
/// (`acme.io` for `docs.acme.io`): a referrer within it is internal. A campaign that says nothing more (`utm_medium=affiliate`, no referrer) is a referral
/// (other), not a direct visit.
pub fn channel(referrer: Option<&str>, site: &str, campaign: Option<&Landing>) -> Channel {
    if let Some(campaign) = campaign {
        let medium = campaign.medium().unwrap_or("").to_ascii_lowercase();
        let paid_click = campaign.click_ids.iter().any(|(id, _)| PAID_CLICK_IDS.contains(id));
        if PAID_MEDIUMS.contains(&medium.as_str()) || paid_click {
            return Channel::Paid;
        }
        if EMAIL_MEDIUMS.contains(&medium.as_str()) {
            return Channel::Email;
        }
        if SOCIAL_MEDIUMS.contains(&medium.as_str()) {
            return Channel::Social;
        }
        // Then the site the link's source names, for an app's link without a referrer
        // (`utm_source=instagram&utm_medium=story`).
        let source = campaign.utm[1].as_deref().unwrap_or("").to_ascii_lowercase();
        let source_named = |names: &[&str]| source.split('.').any(|part| names.contains(&part));
        if source_named(&SOCIAL_SITES) {
            return Channel::Social;
        }
        if source_named(&SEARCH_ENGINES) {
            return Channel::Search;
        }
    }
    let Some(host) = referrer.filter(|r| !r.is_empty()).and_then(url::host) else {
        // No referrer (Meta's in-app browser sends none): `fbclid` still says Meta.
        let meta = campaign.is_some_and(|c| c.click_ids.iter().any(|(id, _)| *id == "fbclid"));
        let tagged = campaign.is_some_and(|c| c.utm.iter().any(Option::is_some));
        return match (meta, tagged) {
            (true, _) => Channel::Social,
            (false, true) => Channel::Other,
            (false, false) => Channel::Direct,
        };
    };
    let labels: Vec<&str> = host.split('.').collect();
    // An Android app's referrer names its package (`android-app://com.google.android.youtube`):
    // its last label is the app; a site's is the top-level domain, never a name.
    let app = referrer.is_some_and(|r| r.starts_with("android-app://"));
    let named =
        |names: &[&str]| labels.iter().rev().skip(usize::from(!app)).any(|label| names.contains(label));
    let app_named = |names: &[&str]| app && labels.last().is_some_and(|label| names.contains(label));
    let is_host = |hosts: &[&str]| hosts.iter().any(|h| host == *h || url::is_subdomain(&host, h));
    if url::same_site(&host, site) {
        Channel::Internal
    } else if labels.iter().any(|label| EMAIL_LABELS.contains(label)) || app_named(&EMAIL_APPS) {
        Channel::Email
    } else if named(&SOCIAL_SITES) || is_host(&SOCIAL_HOSTS) {
        // Before search: `com.google.android.youtube` (an app's name is read too) is YouTube,
        // not Google search.
        Channel::Social
    } else if (named(&SEARCH_ENGINES) && !named(&NOT_SEARCH)) || is_host(&SEARCH_HOSTS) {
        Channel::Search
    } else {
        Channel::Other
    }
}

/// The channel a session is credited to: [`channel`], except that an internal referrer
/// means the session expired during the visit, which is not a new arrival (direct).
pub fn session_channel(referrer: Option<&str>, site: &str, campaign: Option<&Landing>) -> Channel {
    match channel(referrer, site, campaign) {
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
        assert_eq!(from_query("gclid=&utm_source="), None, "empty values name nothing");
        assert_eq!(from_query(""), None);
    }

    #[test]
    fn keeps_the_campaign_alone_and_within_bounds() {
        // A crafted landing URL: a value past the collector's string limit, and parameters
        // that are no campaign.
        let long = "é".repeat(5_000);
        let query = format!("?email=ada%40example.com&utm_source={long}&token=s3cret&gclid=a%26b");
        let landing = from_query(&query).unwrap();
        let source = landing.utm[1].as_deref().unwrap();
        assert!(source.len() <= MAX_CAMPAIGN_VALUE_BYTES && source.len() >= MAX_CAMPAIGN_VALUE_BYTES - 1);
        assert!(long.starts_with(source), "cut at a character");
        let stored = landing.to_query();
        assert!(!stored.contains("email") && !stored.contains("token"), "{stored}");
        assert_eq!(from_query(&stored), Some(landing));
        assert_eq!(Landing::default().to_query(), "");
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
        let cases: [(Option<&str>, Option<&str>, Channel); 41] = [
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
            (None, Some("gclid=1"), Channel::Paid),
            (None, Some("li_fat_id=1&utm_source=linkedin"), Channel::Paid),
            // Meta tags its unpaid posts' links too: the referrer decides.
            (Some("https://l.facebook.com/"), Some("fbclid=1"), Channel::Social),
            (None, Some("fbclid=1"), Channel::Social),
            (None, Some("gclid="), Channel::Direct),
            (Some("https://news.example.org/"), Some("utm_medium=Email"), Channel::Email),
            (None, Some("utm_medium=paid-social"), Channel::Paid),
            (None, Some("utm_source=partner&utm_medium=affiliate"), Channel::Other),
            (Some("android-app://com.google.android.gm/"), None, Channel::Email),
            (Some("android-app://com.google.android.youtube/"), None, Channel::Social),
            (Some("android-app://com.google.android.googlequicksearchbox/"), None, Channel::Search),
            (Some("https://uk.mail.yahoo.com/"), None, Channel::Email),
            (Some("https://outlook.office365.com/"), None, Channel::Email),
            (Some("https://t.mail.example.com/"), None, Channel::Email),
            (Some("https://www.gm.com/"), None, Channel::Other),
            (Some("https://t.example.org/"), None, Channel::Other),
            (Some("https://x.com/acme/status/1"), None, Channel::Social),
            // A search engine's other services are no search.
            (Some("https://docs.google.com/document/d/1"), None, Channel::Other),
            (Some("android-app://com.google.android.apps.docs/"), None, Channel::Other),
            (Some("https://blog.naver.com/someone"), None, Channel::Other),
            (Some("https://m.blog.naver.com/someone"), None, Channel::Other),
            (Some("https://ask.libreoffice.org/question/1"), None, Channel::Other),
            (Some("https://www.ask.com/web?q=acme"), None, Channel::Search),
            (Some("https://vk.com/acme"), None, Channel::Social),
            (Some("https://search.brave.com/search?q=acme"), None, Channel::Search),
            (Some("https://www.threads.net/@acme"), None, Channel::Social),
            (Some("https://mastodon.social/@acme"), None, Channel::Social),
            (Some("https://t.me/acme"), None, Channel::Social),
            // The link's source names the site when no referrer does.
            (None, Some("utm_source=instagram&utm_medium=story"), Channel::Social),
            (None, Some("utm_source=google&utm_medium=organic"), Channel::Search),
            (None, Some("utm_source=google&utm_medium=cpc"), Channel::Paid),
        ];
        for (referrer, query, expected) in cases {
            let campaign = query.and_then(from_query);
            assert_eq!(channel(referrer, site, campaign.as_ref()), expected, "{referrer:?} {query:?}");
        }
    }
}
