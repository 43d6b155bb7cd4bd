//! Autocapture rules: what a click, a scroll or an element becomes. The SDK reads the DOM;
//! these decide.

use super::url;

/// Extensions whose links are file downloads (Google Analytics 4's list, and more archives,
/// installers and media).
const DOWNLOADS: [&str; 40] = [
    "pdf", "zip", "gz", "tgz", "tar", "bz2", "xz", "rar", "7z", "iso", "dmg", "exe", "msi", "pkg", "deb",
    "rpm", "apk", "csv", "txt", "rtf", "xls", "xlsx", "doc", "docx", "ppt", "pptx", "pps", "key", "epub",
    "mp3", "wav", "wma", "mid", "midi", "mp4", "mov", "avi", "wmv", "mpg", "mpeg",
];

/// What a link leads to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkKind {
    /// To another site.
    pub outbound: bool,
    /// A file (by extension, or the link's `download` attribute).
    pub download: bool,
}

/// Classifies a link's resolved `href` seen on a page of `site` (its host, or the domain it is
/// part of: `acme.io` for `docs.acme.io`, so that a link to `app.acme.io` is not outbound).
pub fn link_kind(href: &str, site: &str, download_attribute: bool) -> LinkKind {
    let outbound = url::host(href).is_some_and(|host| !url::same_site(&host, site));
    let download =
        download_attribute || url::extension(href).is_some_and(|e| DOWNLOADS.contains(&e.as_str()));
    LinkKind { outbound, download }
}

/// Scroll depth milestones, in percent.
pub const SCROLL_MILESTONES: [u8; 5] = [25, 50, 75, 90, 100];

/// The milestones reached at `depth_percent` that are not in `reached` yet (a bit set over
/// [`SCROLL_MILESTONES`]); marks them reached.
pub fn new_milestones(depth_percent: f64, reached: &mut u8) -> Vec<u8> {
    let mut new = Vec::new();
    for (bit, milestone) in SCROLL_MILESTONES.iter().enumerate() {
        if depth_percent + 0.5 >= f64::from(*milestone) && *reached & (1 << bit) == 0 {
            *reached |= 1 << bit;
            new.push(*milestone);
        }
    }
    new
}

/// How far down the page the bottom of the viewport is, in percent (a page that fits the
/// window is 100 % read).
pub fn scroll_depth(scroll_top: f64, viewport_height: f64, document_height: f64) -> f64 {
    if document_height <= viewport_height || document_height <= 0.0 {
        return 100.0;
    }
    ((scroll_top + viewport_height) / document_height * 100.0).clamp(0.0, 100.0)
}

/// An element's text as events carry it: whitespace collapsed, at most [`MAX_TEXT_CHARS`].
pub const MAX_TEXT_CHARS: usize = 80;

pub fn element_text(text: &str) -> String {
    let mut out = String::new();
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
        if out.chars().count() >= MAX_TEXT_CHARS {
            break;
        }
    }
    out.chars().take(MAX_TEXT_CHARS).collect()
}

/// The property name a `data-portrait-*` attribute sets: `data-portrait-plan-name` → `plan_name`.
/// `None` for the attribute that names the event itself, and for the SDK's other attributes
/// (`data-portrait-show-if`, `data-portrait-topics`), which say nothing about the click.
pub fn data_property(attribute: &str) -> Option<String> {
    let name = attribute.strip_prefix("data-portrait-")?;
    let own = ["", "event", "show-if", "topics"];
    (!own.contains(&name)).then(|| name.replace('-', "_"))
}

/// Engaged time: the page counts as engaged while visible and within this long of the last
/// input (pointer, key, scroll, touch).
pub const ENGAGED_IDLE_MS: i64 = 5_000;

/// Engaged-time accounting for one page view. The SDK calls [`Engagement::activity`] on input
/// and visibility changes; time counts from each activity until the next, capped at
/// [`ENGAGED_IDLE_MS`], and only while visible.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Engagement {
    pub engaged_ms: i64,
    last_activity: Option<i64>,
}

impl Engagement {
    pub fn activity(&mut self, now: i64) {
        self.settle(now);
        self.last_activity = Some(now);
    }

    /// The page was hidden: counting stops until the next activity.
    pub fn hidden(&mut self, now: i64) {
        self.settle(now);
        self.last_activity = None;
    }

    fn settle(&mut self, now: i64) {
        if let Some(last) = self.last_activity {
            self.engaged_ms += (now - last).clamp(0, ENGAGED_IDLE_MS);
        }
    }

    /// Takes the engaged time counted so far (to report it), starting again from zero.
    pub fn take(&mut self, now: i64) -> i64 {
        self.settle(now);
        if self.last_activity.is_some() {
            self.last_activity = Some(now);
        }
        std::mem::take(&mut self.engaged_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links() {
        let site = "acme.io";
        assert_eq!(
            link_kind("https://other.com/x", site, false),
            LinkKind { outbound: true, download: false }
        );
        assert_eq!(
            link_kind("https://www.acme.io/a.pdf", site, false),
            LinkKind { outbound: false, download: true }
        );
        assert_eq!(
            link_kind("https://acme.io/report", site, true),
            LinkKind { outbound: false, download: true }
        );
        assert_eq!(
            link_kind("https://acme.io/media/clip.mov", site, false),
            LinkKind { outbound: false, download: true }
        );
        assert_eq!(link_kind("mailto:a@acme.io", site, false), LinkKind::default());
        assert_eq!(link_kind("https://acme.io/blog/v1.2", site, false), LinkKind::default());
    }

    #[test]
    fn scroll_milestones_fire_once_each() {
        let mut reached = 0;
        assert_eq!(new_milestones(10.0, &mut reached), Vec::<u8>::new());
        assert_eq!(new_milestones(60.0, &mut reached), [25, 50]);
        assert_eq!(new_milestones(55.0, &mut reached), Vec::<u8>::new());
        assert_eq!(new_milestones(99.6, &mut reached), [75, 90, 100]);
        assert_eq!(scroll_depth(0.0, 800.0, 600.0), 100.0);
        assert_eq!(scroll_depth(200.0, 800.0, 2_000.0), 50.0);
    }

    #[test]
    fn element_text_is_collapsed_and_bounded() {
        assert_eq!(element_text("  Buy\n   now  "), "Buy now");
        assert_eq!(element_text(&"é".repeat(200)).chars().count(), MAX_TEXT_CHARS);
        assert_eq!(element_text(&"word ".repeat(100)).chars().count(), MAX_TEXT_CHARS);
    }

    #[test]
    fn data_attributes_name_properties() {
        assert_eq!(data_property("data-portrait-plan-name").as_deref(), Some("plan_name"));
        assert_eq!(data_property("data-portrait-event"), None);
        assert_eq!(data_property("data-portrait-show-if"), None);
        assert_eq!(data_property("data-portrait-topics"), None);
        assert_eq!(data_property("data-other"), None);
    }

    #[test]
    fn engaged_time_counts_visible_active_time_only() {
        let mut engagement = Engagement::default();
        engagement.activity(0);
        engagement.activity(2_000); // 2 s
        engagement.activity(60_000); // idle: capped at 5 s
        engagement.hidden(61_000); // 1 s
        engagement.activity(500_000); // hidden meanwhile: nothing
        assert_eq!(engagement.take(501_000), 9_000); // + 1 s
        assert_eq!(engagement.take(502_000), 1_000);
    }
}
