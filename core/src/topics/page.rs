//! What each part of a web page means to the classifier: the SDK walks the DOM and hands
//! the parts it found to a [`PageRead`]; this module decides which field each one fills, the
//! site's topic hints among them. Kept here, not in the SDK, so that it is tested natively.
//!
//! ```
//! use portrait_core::topics::page::PageRead;
//! let mut page = PageRead::new("https://example.com/sport/results", "Home");
//! page.meta("og:title", "Premier League results");
//! page.meta("portrait:topics", "/Sports");
//! page.heading("  Match report ");
//! let json: serde_json::Value = serde_json::from_str(r#"{"@type": "NewsArticle", "articleSection": "Football"}"#).unwrap();
//! page.json_ld(&json);
//! assert_eq!(page.text.titles, ["Home", "Premier League results"]);
//! assert_eq!(page.text.keywords, ["NewsArticle", "Football"]);
//! assert_eq!(page.text.headings, ["Match report"]);
//! assert_eq!(page.hints, ["/Sports"]);
//! ```

use super::PageText;

/// The longest text kept from one part (a title, a heading, a meta value), in characters.
pub const MAX_FIELD_CHARS: usize = 300;
/// The most headings read from one page (the first ones, in document order).
pub const MAX_HEADINGS: usize = 20;
/// The longest sample of the page's visible text, in characters (when the site asks for it).
pub const VISIBLE_TEXT_CHARS: usize = 2_000;
/// Items read from one JSON-LD list, and how deep lists and nested objects are followed
/// (enough for `@graph: [{…, mainEntity: {…}}]`, as SEO plugins write it).
const JSON_LD_ITEMS: usize = 20;
const JSON_LD_DEPTH: u32 = 3;

/// A page as read so far: its text fields, the site's topic hints, and every `<meta>` for
/// the site's tag rules.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PageRead {
    pub text: PageText,
    /// `<meta name="portrait:topics">` and `data-portrait-topics` values, as written.
    pub hints: Vec<String>,
    /// Every `<meta>` name (or property) with its content.
    pub metas: Vec<(String, String)>,
}

impl PageRead {
    pub fn new(url: &str, title: &str) -> PageRead {
        let text = PageText { url: url.to_owned(), titles: vec![clip(title)], ..PageText::default() };
        PageRead { text, ..PageRead::default() }
    }

    /// A `<meta name|property="key" content="…">`: descriptions (`description`,
    /// `og:description`), a title (`og:title`), keywords (`keywords`, `article:section`,
    /// `article:tag`) or the site's topic hint (`portrait:topics`); kept for the tag rules
    /// whatever it is.
    pub fn meta(&mut self, key: &str, content: &str) {
        let content = clip(content);
        match key.to_ascii_lowercase().as_str() {
            "description" | "og:description" => self.text.descriptions.push(content.clone()),
            "og:title" => self.text.titles.push(content.clone()),
            "keywords" | "article:section" | "article:tag" => self.text.keywords.push(content.clone()),
            "portrait:topics" => self.hints.push(content.clone()),
            _ => {}
        }
        self.metas.push((key.to_owned(), content));
    }

    /// A `data-portrait-topics` attribute's value.
    pub fn hint(&mut self, value: &str) {
        self.hints.push(clip(value));
    }

    /// An `h1`–`h3`'s text; past [`MAX_HEADINGS`], ignored.
    pub fn heading(&mut self, text: &str) {
        if self.text.headings.len() < MAX_HEADINGS {
            self.text.headings.push(clip(text));
        }
    }

    /// A JSON-LD block: `headline` as a title; `@type`, `articleSection`, `keywords` and
    /// `about` (a string, `{name}`, or lists of them) as keywords; `@graph`, `mainEntity` and
    /// lists followed three deep.
    pub fn json_ld<V: JsonValue>(&mut self, value: &V) {
        self.json_ld_at(value, 0);
    }

    fn json_ld_at<V: JsonValue>(&mut self, value: &V, depth: u32) {
        if depth > JSON_LD_DEPTH {
            return;
        }
        if let Some(items) = value.items() {
            for item in items.iter().take(JSON_LD_ITEMS) {
                self.json_ld_at(item, depth + 1);
            }
            return;
        }
        if !value.is_object() {
            return;
        }
        self.text.titles.extend(names(&value.field("headline")));
        for key in ["@type", "articleSection", "keywords", "about"] {
            self.text.keywords.extend(names(&value.field(key)));
        }
        self.json_ld_at(&value.field("@graph"), depth + 1);
        self.json_ld_at(&value.field("mainEntity"), depth + 1);
    }

    /// The sample of visible text (only when the site turned it on).
    pub fn visible_text(&mut self, text: &str) {
        self.text.text = text.chars().take(VISIBLE_TEXT_CHARS).collect();
    }
}

/// A string, an object's `name`, or a list of those.
fn names<V: JsonValue>(value: &V) -> Vec<String> {
    let name = |v: &V| v.string().or_else(|| v.field("name").string()).map(|s| clip(&s));
    match value.items() {
        Some(items) => items.iter().take(JSON_LD_ITEMS).filter_map(name).collect(),
        None => name(value).into_iter().collect(),
    }
}

fn clip(text: &str) -> String {
    text.trim().chars().take(MAX_FIELD_CHARS).collect()
}

/// A JSON value as JSON-LD reading needs it: in the browser a parsed JavaScript value, here
/// and in the classify command a `serde_json::Value`. A missing field is a value that is
/// neither a string, a list nor an object.
pub trait JsonValue: Sized {
    fn string(&self) -> Option<String>;
    fn items(&self) -> Option<Vec<Self>>;
    fn is_object(&self) -> bool;
    fn field(&self, key: &str) -> Self;
}

impl JsonValue for serde_json::Value {
    fn string(&self) -> Option<String> {
        self.as_str().map(str::to_owned)
    }

    fn items(&self) -> Option<Vec<Self>> {
        self.as_array().cloned()
    }

    fn is_object(&self) -> bool {
        self.is_object()
    }

    fn field(&self, key: &str) -> Self {
        self.get(key).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parts of a sample document, as the SDK's DOM walk hands them over.
    fn news_article() -> PageRead {
        let mut page = PageRead::new("https://news.example/sport/2026/derby", "  Derby day | Example News  ");
        page.meta("description", "City and United share the points");
        page.meta("og:title", "Derby day: a draw at the Etihad");
        page.meta("og:description", "Two goals each");
        page.meta("og:image", "https://news.example/derby.jpg");
        page.meta("Keywords", "football, premier league");
        page.meta("article:section", "Sport");
        page.meta("article:tag", "Manchester");
        page.meta("portrait:topics", "/Sports, 299");
        page.hint("/News");
        page.heading("Derby day");
        page.heading(&"x".repeat(500));
        let json = serde_json::json!({
            "@context": "https://schema.org",
            "@graph": [
                {"@type": "NewsArticle", "headline": "Derby ends level", "articleSection": ["Sport", "Football"],
                 "keywords": "derby, draw", "about": [{"@type": "Thing", "name": "Manchester City"}, "United"]},
                {"@type": "WebPage", "mainEntity": {"@type": "SportsEvent", "about": {"name": "The derby"}}}
            ]
        });
        page.json_ld(&json);
        page
    }

    #[test]
    fn each_part_of_a_sample_document_fills_its_field() {
        let page = news_article();
        assert_eq!(page.text.url, "https://news.example/sport/2026/derby");
        assert_eq!(
            page.text.titles,
            ["Derby day | Example News", "Derby day: a draw at the Etihad", "Derby ends level"]
        );
        assert_eq!(page.text.descriptions, ["City and United share the points", "Two goals each"]);
        assert_eq!(
            page.text.keywords,
            [
                "football, premier league",
                "Sport",
                "Manchester",
                "NewsArticle",
                "Sport",
                "Football",
                "derby, draw",
                "Manchester City",
                "United",
                "WebPage",
                "SportsEvent",
                "The derby"
            ]
        );
        assert_eq!(page.text.headings[0], "Derby day");
        assert_eq!(page.text.headings[1].chars().count(), MAX_FIELD_CHARS, "clipped");
        assert_eq!(page.hints, ["/Sports, 299", "/News"]);
        assert_eq!(page.metas.len(), 8, "every meta, for the tag rules");
        assert_eq!(page.metas[3], ("og:image".to_owned(), "https://news.example/derby.jpg".to_owned()));
    }

    #[test]
    fn the_sample_document_reads_as_sport() {
        let model = crate::topics::builtin().expect("the builtin model decodes");
        let top = model.classify(&news_article().text.features()).top_level;
        assert_eq!(model.topic(top[0].id).map(|t| t.path()), Some("/Sports"));
    }

    #[test]
    fn json_ld_is_read_within_its_bounds_and_junk_is_ignored() {
        let mut page = PageRead::new("/", "");
        let deep =
            serde_json::json!({"@graph": {"@graph": {"@graph": {"@graph": {"headline": "too deep"}}}}});
        let long = serde_json::json!({"keywords": (0..50).map(|i| format!("k{i}")).collect::<Vec<_>>()});
        for junk in [serde_json::json!(null), serde_json::json!(42), serde_json::json!("text"), deep, long] {
            page.json_ld(&junk);
        }
        assert_eq!(page.text.titles, [""]);
        assert_eq!(page.text.keywords.len(), JSON_LD_ITEMS);
    }

    #[test]
    fn the_visible_text_sample_is_bounded() {
        let mut page = PageRead::new("/", "");
        page.visible_text(&"é".repeat(10_000));
        assert_eq!(page.text.text.chars().count(), VISIBLE_TEXT_CHARS);
    }
}
