//! Events as the browser SDK holds them: each one encoded once, when it is captured, into a
//! self-contained [`Record`] that the SDK's queue keeps, stores and seals into a beacon with
//! [`crate::beacon::encode_records`]. So the SDK needs no [`Event`], no map type and no serde
//! (each costs kilobytes of wasm). The beacon has one writer for records and for events
//! ([`crate::beacon::encode`]); [`Record::from_event`] lets the tests check that an event and
//! its record encode to the same bytes.
//!
//! ```
//! use portrait_core::record::{Call, ContextParts, Record, Tokens};
//! let mut properties = Tokens::default();
//! properties.key("plan").str("pro");
//! let context = ContextParts::default().encode();
//! let record = Record::new(&Call::Track("Signed Up"), "m1", Some(1_700_000_000_000), (Some("a1"), None), &context, &properties, &Tokens::default());
//! let body = portrait_core::beacon::encode_records(Some(1_700_000_000_500), 0, [&record]);
//! let event = &portrait_core::beacon::decode(&body).unwrap().events[0];
//! assert_eq!(event.properties["plan"], portrait_core::Value::String("pro".into()));
//! ```
//!
//! The layout, little-endian, fixed widths (records live in memory and in the SDK's stored
//! queue; only the beacon is compact):
//!
//! ```text
//! record   = call · str(message id) · opt(i64 time) · opt(str anonymousId) · opt(str userId)
//!            · u32 len · context · tokens(properties) · tokens(traits)
//! call     = u8 kind (page 0, screen 1, track 2, identify 3, group 4, alias 5) · its strings
//! context  = 5 × opt(str) page · tokens · 5 × opt(str) campaign · tokens · opt(str) userAgent
//!            · opt(str) locale · opt(str) timezone · opt(u32) · opt(u32) · opt(f64) screen
//!            · opt(str) · opt(str) library · tokens(other)
//! tokens   = u32 count · u32 len · token* ; token = u8 tag (null 0, false 1, true 2,
//!            int 3 · i64, float 4 · f64, string 5 · str, array 6 · u32, object 7 · u32)
//! str      = u32 len · UTF-8 ; opt(x) = u8 0 | u8 1 · x
//! ```
//! A map is keys (string tokens) each followed by one value, as in the beacon.

use crate::event::{Call as EventCall, Context, Event};
use crate::value::{Map, Value};

/// A call's kind and the strings only it has (borrowed: a record copies them).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Call<'a> {
    Page { category: Option<&'a str>, name: Option<&'a str> },
    Screen(Option<&'a str>),
    Track(&'a str),
    Identify,
    Group(&'a str),
    Alias(&'a str),
}

impl<'a> Call<'a> {
    pub fn of(call: &'a EventCall) -> Call<'a> {
        match call {
            EventCall::Page { category, name } => {
                Call::Page { category: category.as_deref(), name: name.as_deref() }
            }
            EventCall::Screen { name } => Call::Screen(name.as_deref()),
            EventCall::Track { event } => Call::Track(event),
            EventCall::Identify => Call::Identify,
            EventCall::Group { group_id } => Call::Group(group_id),
            EventCall::Alias { previous_id } => Call::Alias(previous_id),
        }
    }

    /// The Segment type (`page`, `track`, …).
    pub fn type_name(self) -> &'static str {
        match self {
            Call::Page { .. } => "page",
            Call::Screen(_) => "screen",
            Call::Track(_) => "track",
            Call::Identify => "identify",
            Call::Group(_) => "group",
            Call::Alias(_) => "alias",
        }
    }

    /// The Segment field that names a call of this type: `event` (track), `groupId`,
    /// `previousId`, else `name`; none for identify.
    pub fn name_key(type_name: &str) -> Option<&'static str> {
        match type_name {
            "identify" => None,
            "track" => Some("event"),
            "group" => Some("groupId"),
            "alias" => Some("previousId"),
            _ => Some("name"),
        }
    }

    /// The value of its [`Call::name_key`] field.
    pub fn name(self) -> Option<&'a str> {
        match self {
            Call::Page { name, .. } | Call::Screen(name) => name,
            Call::Track(name) | Call::Group(name) | Call::Alias(name) => Some(name),
            Call::Identify => None,
        }
    }

    /// The inverse of [`Call::type_name`] and [`Call::name`] (a page's `category` aside):
    /// `None` for a type that is not Segment's, or a track, group or alias without its name.
    pub fn parse(type_name: &str, name: Option<&'a str>, category: Option<&'a str>) -> Option<Call<'a>> {
        Some(match type_name {
            "page" => Call::Page { category, name },
            "screen" => Call::Screen(name),
            "track" => Call::Track(name?),
            "identify" => Call::Identify,
            "group" => Call::Group(name?),
            "alias" => Call::Alias(name?),
            _ => return None,
        })
    }
}

pub(crate) const NULL: u8 = 0;
pub(crate) const FALSE: u8 = 1;
pub(crate) const TRUE: u8 = 2;
pub(crate) const INT: u8 = 3;
pub(crate) const FLOAT: u8 = 4;
pub(crate) const STRING: u8 = 5;
pub(crate) const ARRAY: u8 = 6;
pub(crate) const OBJECT: u8 = 7;

/// A token stream being written: properties, traits, or one of a context's maps. The writer
/// keeps keys unique (a beacon with a duplicate key is refused).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tokens {
    bytes: Vec<u8>,
    count: u32,
}

impl Tokens {
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// How many bytes are written.
    pub fn byte_len(&self) -> usize {
        self.bytes.len()
    }

    /// A map's key; its value follows.
    pub fn key(&mut self, key: &str) -> &mut Tokens {
        self.str(key)
    }

    pub fn null(&mut self) -> &mut Tokens {
        self.tag(NULL)
    }

    pub fn bool(&mut self, value: bool) -> &mut Tokens {
        self.tag(if value { TRUE } else { FALSE })
    }

    pub fn int(&mut self, value: i64) -> &mut Tokens {
        self.tag(INT);
        self.bytes.extend_from_slice(&value.to_le_bytes());
        self
    }

    pub fn float(&mut self, value: f64) -> &mut Tokens {
        self.tag(FLOAT);
        self.bytes.extend_from_slice(&value.to_le_bytes());
        self
    }

    pub fn str(&mut self, value: &str) -> &mut Tokens {
        self.tag(STRING);
        put_str(&mut self.bytes, value);
        self
    }

    /// Starts an array or object (`object`) whose element count is not known yet: answers
    /// where to [`Tokens::close`] it once its elements are written.
    pub fn open(&mut self, object: bool) -> usize {
        self.tag(if object { OBJECT } else { ARRAY });
        self.bytes.extend_from_slice(&[0; 4]);
        self.bytes.len() - 4
    }

    /// Sets the element count (an object's: key-value pairs) of a container [`Tokens::open`]ed at `at`.
    pub fn close(&mut self, at: usize, elements: u32) {
        self.bytes[at..at + 4].copy_from_slice(&elements.to_le_bytes());
    }

    /// A value, as [`Record::from_event`] writes maps.
    pub fn value(&mut self, value: &Value) -> &mut Tokens {
        match value {
            Value::Null => self.null(),
            Value::Bool(flag) => self.bool(*flag),
            Value::Int(n) => self.int(*n),
            Value::Float(x) => self.float(*x),
            Value::String(s) => self.str(s),
            Value::Array(items) => {
                let at = self.open(false);
                items.iter().for_each(|item| _ = self.value(item));
                self.close(at, items.len() as u32);
                self
            }
            Value::Object(map) => {
                let at = self.open(true);
                self.map(map);
                self.close(at, map.len() as u32);
                self
            }
        }
    }

    /// A map's entries, in its (key) order.
    pub fn map(&mut self, map: &Map) -> &mut Tokens {
        for (key, value) in map {
            self.key(key).value(value);
        }
        self
    }

    /// The tokens, in order (a map's: key, value, key, value, …; a container's elements
    /// follow its token).
    pub fn iter(&self) -> impl Iterator<Item = Token<'_>> {
        let mut reader = Reader::new(&self.bytes);
        std::iter::from_fn(move || reader.token())
    }

    /// A value already encoded, as [`Reader`] reads one (or a map's entries).
    fn raw(&mut self, (count, bytes): Encoded) -> &mut Tokens {
        self.count += count;
        self.bytes.extend_from_slice(bytes);
        self
    }

    fn tag(&mut self, tag: u8) -> &mut Tokens {
        self.count += 1;
        self.bytes.push(tag);
        self
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.count.to_le_bytes());
        out.extend_from_slice(&(self.bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.bytes);
    }
}

/// An event's context, field by field, borrowed; [`ContextParts::encode`] makes the block a
/// record carries (the SDK makes one per page view and session, not per event).
#[derive(Clone, Copy, Debug, Default)]
pub struct ContextParts<'a> {
    /// url, path, title, referrer, search.
    pub page: [Option<&'a str>; 5],
    pub page_other: Option<&'a Tokens>,
    /// name (`utm_campaign`), source, medium, term, content.
    pub campaign: [Option<&'a str>; 5],
    pub campaign_other: Option<&'a Tokens>,
    pub user_agent: Option<&'a str>,
    pub locale: Option<&'a str>,
    pub timezone: Option<&'a str>,
    /// width, height, density.
    pub screen: (Option<u32>, Option<u32>, Option<f64>),
    /// name, version.
    pub library: (Option<&'a str>, Option<&'a str>),
    pub other: Option<&'a Tokens>,
}

/// An encoded context (see the module's layout).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ContextBlock(Vec<u8>);

impl ContextParts<'_> {
    pub fn encode(&self) -> ContextBlock {
        let mut out = Vec::with_capacity(256);
        let empty = Tokens::default();
        let strs =
            |out: &mut Vec<u8>, fields: &[Option<&str>]| fields.iter().for_each(|s| put_opt_str(out, *s));
        strs(&mut out, &self.page);
        self.page_other.unwrap_or(&empty).encode(&mut out);
        strs(&mut out, &self.campaign);
        self.campaign_other.unwrap_or(&empty).encode(&mut out);
        strs(&mut out, &[self.user_agent, self.locale, self.timezone]);
        for dimension in [self.screen.0, self.screen.1] {
            put_opt(&mut out, dimension.map(u32::to_le_bytes).as_ref().map(|b| &b[..]));
        }
        put_opt(&mut out, self.screen.2.map(f64::to_le_bytes).as_ref().map(|b| &b[..]));
        strs(&mut out, &[self.library.0, self.library.1]);
        self.other.unwrap_or(&empty).encode(&mut out);
        ContextBlock(out)
    }
}

impl ContextBlock {
    pub fn of(context: &Context) -> ContextBlock {
        let maps = [&context.page.other, &context.campaign.other, &context.other].map(|map| {
            let mut tokens = Tokens::default();
            tokens.map(map);
            tokens
        });
        let (page, campaign) = (&context.page, &context.campaign);
        let parts = ContextParts {
            page: [&page.url, &page.path, &page.title, &page.referrer, &page.search].map(|s| s.as_deref()),
            page_other: Some(&maps[0]),
            campaign: [&campaign.name, &campaign.source, &campaign.medium, &campaign.term, &campaign.content]
                .map(|s| s.as_deref()),
            campaign_other: Some(&maps[1]),
            user_agent: context.user_agent.as_deref(),
            locale: context.locale.as_deref(),
            timezone: context.timezone.as_deref(),
            screen: (context.screen.width, context.screen.height, context.screen.density),
            library: (context.library.name.as_deref(), context.library.version.as_deref()),
            other: Some(&maps[2]),
        };
        parts.encode()
    }
}

/// The keys of a context's `page` fields ([`ContextParts::page`]) and `campaign` fields.
const PAGE_KEYS: [&str; 5] = ["url", "path", "title", "referrer", "search"];
const CAMPAIGN_KEYS: [&str; 5] = ["name", "source", "medium", "term", "content"];

/// What [`ContextBlock::with`] and [`ContextBlock::from_map`] made: the block, and the
/// fields left out for their type (`("page", "url")` for a number where a string belongs).
pub struct Overlaid<'a> {
    pub block: ContextBlock,
    pub left_out: Vec<(&'a str, &'a str)>,
}

impl ContextBlock {
    /// This context with a call's own over it, as analytics.js merges an event's
    /// `context` option into what it collects (`overrides`: that object's entries):
    /// - `page`: its `url`, `path`, `title`, `referrer` and `search` (strings; `null` removes
    ///   one) replace this block's, and its other keys join the page's;
    /// - `campaign` and `library` (`name`, `version`) replace this block's whole, `locale`
    ///   replaces its locale;
    /// - `userAgent`, `timezone` and `screen` are what the browser measured, and stay;
    /// - every other key joins the context's other entries, replacing one of the same key.
    ///
    /// A field of the wrong type (a page URL that is a number, a `page` that is not an
    /// object), or one the context has no place for (a `library`'s other keys), is left out
    /// and named in [`Overlaid::left_out`].
    pub fn with<'a>(&'a self, overrides: &'a Tokens) -> Overlaid<'a> {
        let base = Reader::new(&self.0).context().map(|(fields, _)| fields).unwrap_or_default();
        overlay(base, overrides, false)
    }

    /// A whole context from its map (what [`ContextBlock::to_map`] writes, as a source
    /// middleware may have changed it): what the map lacks, the context lacks. Fields of the
    /// wrong type are left out and named, as by [`ContextBlock::with`].
    pub fn from_map(map: &Tokens) -> Overlaid<'_> {
        overlay(ContextFields::default(), map, true)
    }

    /// The context as one map in Segment's shape: `{page: {url, …}, campaign: {name, …},
    /// userAgent, locale, timezone, screen: {width, height, density}, library: {name,
    /// version}, …other}`, leaving out what it lacks.
    pub fn to_map(&self) -> Tokens {
        let mut map = Tokens::default();
        let Some((fields, _)) = Reader::new(&self.0).context() else { return map };
        let sections = [
            ("page", &PAGE_KEYS[..], &fields.page[..], fields.page_other),
            ("campaign", &CAMPAIGN_KEYS, &fields.campaign, fields.campaign_other),
            ("library", &LIBRARY_KEYS, &fields.library, (0, &[])),
        ];
        for (section, keys, values, extra) in sections {
            let entries = values.iter().flatten().count() as u32 + entry_count(extra);
            if entries > 0 {
                let at = map.key(section).open(true);
                for (key, value) in keys.iter().zip(values) {
                    value.map(|value| map.key(key).str(value));
                }
                map.raw(extra).close(at, entries);
            }
        }
        for (key, value) in MEASURED_KEYS.iter().zip(fields.strings) {
            value.map(|value| map.key(key).str(value));
        }
        let (width, height, density) = fields.screen;
        let entries =
            [width.is_some(), height.is_some(), density.is_some()].into_iter().filter(|&is| is).count();
        if entries > 0 {
            let at = map.key("screen").open(true);
            for (key, value) in [("width", width), ("height", height)] {
                value.map(|n| map.key(key).int(n.into()));
            }
            density.map(|x| map.key("density").float(x));
            map.close(at, entries as u32);
        }
        map.raw(fields.other);
        map
    }
}

/// The keys of a context's `library`, and of its strings (in the block's order).
const LIBRARY_KEYS: [&str; 2] = ["name", "version"];
const MEASURED_KEYS: [&str; 3] = ["userAgent", "locale", "timezone"];

/// `overrides` (a context's map) over `base`, field by field as [`ContextBlock::with`]
/// says; `whole`: the map is the whole context ([`ContextBlock::from_map`]), its measured
/// fields (`userAgent`, `timezone`, `screen`) included.
fn overlay<'a>(base: ContextFields<'a>, overrides: &'a Tokens, whole: bool) -> Overlaid<'a> {
    let mut left_out = Vec::new();
    let (mut page, mut page_other) = (base.page, Vec::new());
    let mut campaign = None;
    let mut strings = base.strings;
    let mut screen = base.screen;
    let mut library = base.library;
    let mut other = Vec::new();
    for entry @ (key, value) in map_entries(&overrides.bytes) {
        match key {
            "page" => _ = typed_fields(entry, &PAGE_KEYS, &mut page, &mut page_other, &mut left_out),
            "campaign" => {
                let (mut fields, mut extra) = ([None; 5], Vec::new());
                if typed_fields(entry, &CAMPAIGN_KEYS, &mut fields, &mut extra, &mut left_out) {
                    campaign = Some((fields, extra));
                }
            }
            "library" => {
                let (mut fields, mut extra) = ([None; 2], Vec::new());
                if typed_fields(entry, &LIBRARY_KEYS, &mut fields, &mut extra, &mut left_out) {
                    library = fields;
                }
                // A library has no place for other keys.
                left_out.extend(extra.into_iter().map(|(extra, _)| (key, extra)));
            }
            "screen" if whole => screen = screen_of(entry, &mut left_out),
            "userAgent" | "locale" | "timezone" if whole || key == "locale" => {
                let index = MEASURED_KEYS.iter().position(|known| *known == key).unwrap_or_default();
                match Reader::new(value.1).token() {
                    Some(Token::Str(text)) => strings[index] = Some(text),
                    Some(Token::Null) => strings[index] = None,
                    _ => left_out.push((key, "")),
                }
            }
            "userAgent" | "timezone" | "screen" => {}
            _ => other.push(entry),
        }
    }
    let (campaign, campaign_other) = match campaign {
        Some((fields, extra)) => (fields, merged((0, &[]), &extra)),
        None => (base.campaign, merged(base.campaign_other, &[])),
    };
    let (page_other, other) = (merged(base.page_other, &page_other), merged(base.other, &other));
    let parts = ContextParts {
        page,
        page_other: Some(&page_other),
        campaign,
        campaign_other: Some(&campaign_other),
        user_agent: strings[0],
        locale: strings[1],
        timezone: strings[2],
        screen,
        library: (library[0], library[1]),
        other: Some(&other),
    };
    Overlaid { block: parts.encode(), left_out }
}

/// A `screen` object's `width` and `height` (whole numbers) and `density`; what has another
/// type or key is left out and named.
fn screen_of<'a>(
    (section, value): (&'a str, Encoded<'a>),
    left_out: &mut Vec<(&'a str, &'a str)>,
) -> (Option<u32>, Option<u32>, Option<f64>) {
    let mut screen = (None, None, None);
    let Some(entries) = object_entries((section, value), left_out) else { return screen };
    for (key, value) in entries {
        match (key, Reader::new(value.1).token()) {
            ("width", Some(Token::Int(n))) if u32::try_from(n).is_ok() => screen.0 = Some(n as u32),
            ("height", Some(Token::Int(n))) if u32::try_from(n).is_ok() => screen.1 = Some(n as u32),
            ("density", Some(Token::Int(n))) => screen.2 = Some(n as f64),
            // The collector refuses NaN and the infinities.
            ("density", Some(Token::Float(x))) if x.is_finite() => screen.2 = Some(x),
            _ => left_out.push((section, key)),
        }
    }
    screen
}

/// The number of entries of a map's tokens.
fn entry_count(map: Encoded) -> u32 {
    map_entries(map.1).count() as u32
}

/// A map's entries (its tokens' bytes), key and value, to its end.
fn map_entries(map: &[u8]) -> impl Iterator<Item = (&str, Encoded<'_>)> {
    let mut reader = Reader::new(map);
    std::iter::from_fn(move || reader.entry())
}

/// The entries of `value`, an object under the context's `section`; `None` for anything
/// else, and the section pushed to `left_out`.
fn object_entries<'a>(
    (section, value): (&'a str, Encoded<'a>),
    left_out: &mut Vec<(&'a str, &'a str)>,
) -> Option<impl Iterator<Item = (&'a str, Encoded<'a>)> + use<'a>> {
    let mut reader = Reader::new(value.1);
    if !matches!(reader.token(), Some(Token::Object(_))) {
        left_out.push((section, ""));
        return None;
    }
    Some(map_entries(reader.rest()))
}

/// A map entry's value, as a token count and the tokens' bytes.
type Encoded<'a> = (u32, &'a [u8]);

/// Reads an object `value` whose keys `keys` name string fields: each of those sets its
/// field (a string) or clears it (`null`); other keys go to `extra`. What has the wrong type
/// is pushed to `left_out`, as (the object's key, its own key). Answers whether `value` was
/// an object.
fn typed_fields<'a>(
    (section, value): (&'a str, Encoded<'a>),
    keys: &[&str],
    fields: &mut [Option<&'a str>],
    extra: &mut Vec<(&'a str, Encoded<'a>)>,
    left_out: &mut Vec<(&'a str, &'a str)>,
) -> bool {
    let Some(entries) = object_entries((section, value), left_out) else { return false };
    for (key, value) in entries {
        let Some(index) = keys.iter().position(|known| *known == key) else {
            extra.push((key, value));
            continue;
        };
        match Reader::new(value.1).token() {
            Some(Token::Str(text)) => fields[index] = Some(text),
            Some(Token::Null) => fields[index] = None,
            _ => left_out.push((section, key)),
        }
    }
    true
}

/// A map of `base`'s entries whose keys `over` lacks, then `over`'s.
fn merged(base: Encoded, over: &[(&str, Encoded)]) -> Tokens {
    let mut tokens = Tokens::default();
    for (key, value) in map_entries(base.1) {
        if !over.iter().any(|(replaced, _)| *replaced == key) {
            tokens.key(key).raw(value);
        }
    }
    for (key, value) in over {
        tokens.key(key).raw(*value);
    }
    tokens
}

/// One event, encoded (see the module's layout).
#[derive(Clone, Debug, PartialEq)]
pub struct Record(Vec<u8>);

/// The largest record whose event the collector could keep. A token takes at most 4.5 times
/// its bytes in JSON (an integer: 9 bytes here, `0,` in JSON; everything else less), so a
/// longer record is an event over [`crate::limits::MAX_EVENT_BYTES`] as JSON, which the
/// collector refuses: the SDK refuses it at once instead of queueing it, where it would push
/// older events out of a full queue.
pub const MAX_RECORD_BYTES: usize = crate::limits::MAX_EVENT_BYTES * 9 / 2;

impl Record {
    /// `identity`: (anonymousId, userId).
    pub fn new(
        call: &Call,
        message_id: &str,
        timestamp: Option<i64>,
        identity: (Option<&str>, Option<&str>),
        context: &ContextBlock,
        properties: &Tokens,
        traits: &Tokens,
    ) -> Record {
        let mut out = Vec::with_capacity(64 + context.0.len() + properties.bytes.len() + traits.bytes.len());
        match *call {
            Call::Page { category, name } => {
                out.push(0);
                put_opt_str(&mut out, category);
                put_opt_str(&mut out, name);
            }
            Call::Screen(name) => {
                out.push(1);
                put_opt_str(&mut out, name);
            }
            Call::Track(event) => {
                out.push(2);
                put_str(&mut out, event);
            }
            Call::Identify => out.push(3),
            Call::Group(group_id) => {
                out.push(4);
                put_str(&mut out, group_id);
            }
            Call::Alias(previous_id) => {
                out.push(5);
                put_str(&mut out, previous_id);
            }
        }
        put_str(&mut out, message_id);
        put_opt(&mut out, timestamp.map(i64::to_le_bytes).as_ref().map(|b| &b[..]));
        put_opt_str(&mut out, identity.0);
        put_opt_str(&mut out, identity.1);
        out.extend_from_slice(&(context.0.len() as u32).to_le_bytes());
        out.extend_from_slice(&context.0);
        properties.encode(&mut out);
        traits.encode(&mut out);
        Record(out)
    }

    /// An event as a record (`sent_at` and `received_at` are not part of one).
    pub fn from_event(event: &Event) -> Record {
        let [properties, traits] = [&event.properties, &event.traits].map(|map| {
            let mut tokens = Tokens::default();
            tokens.map(map);
            tokens
        });
        Record::new(
            &Call::of(&event.call),
            &event.message_id,
            event.timestamp.map(|t| t.0),
            (event.anonymous_id.as_deref(), event.user_id.as_deref()),
            &ContextBlock::of(&event.context),
            &properties,
            &traits,
        )
    }

    /// Bytes a record was stored as; `None` unless they are one whole, well-formed record.
    pub fn from_bytes(bytes: Vec<u8>) -> Option<Record> {
        let mut reader = Reader::new(&bytes);
        let parsed = reader.record().is_some() && reader.rest().is_empty();
        parsed.then_some(Record(bytes))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn message_id(&self) -> &str {
        let mut reader = Reader::new(&self.0);
        reader.call().and_then(|_| reader.str()).unwrap_or_default()
    }

    /// The record of a `track` call named `event` without its properties `keys`; `None` for
    /// any other record, and for one with none of those properties (nothing to change).
    pub fn without_properties(&self, event: &str, keys: &[&str]) -> Option<Record> {
        // The call first: every event queued without personalisation comes here.
        if Reader::new(&self.0).call()? != Call::Track(event) {
            return None;
        }
        let fields = Reader::new(&self.0).record()?;
        let entries = || map_entries(fields.properties.1);
        if !entries().any(|(key, _)| keys.contains(&key)) {
            return None;
        }
        let mut properties = Tokens::default();
        for (key, value) in entries().filter(|(key, _)| !keys.contains(key)) {
            properties.key(key).raw(value);
        }
        // The properties and the traits end the record, each a count, a length and its bytes.
        let traits_start = self.0.len() - 8 - fields.traits.1.len();
        let properties_start = traits_start - 8 - fields.properties.1.len();
        let mut out = Vec::with_capacity(self.0.len());
        out.extend_from_slice(&self.0[..properties_start]);
        properties.encode(&mut out);
        out.extend_from_slice(&self.0[traits_start..]);
        Some(Record(out))
    }
}

/// A record, read field by field (by the beacon's writer and to check stored bytes).
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
}

/// A record's fields, its context and token streams still encoded.
pub(crate) struct Fields<'a> {
    pub call: Call<'a>,
    pub message_id: &'a str,
    pub timestamp: Option<i64>,
    pub identity: (Option<&'a str>, Option<&'a str>),
    pub context: &'a [u8],
    pub properties: (u32, &'a [u8]),
    pub traits: (u32, &'a [u8]),
}

/// A context's fields, its maps still encoded.
#[derive(Default)]
pub(crate) struct ContextFields<'a> {
    pub page: [Option<&'a str>; 5],
    pub page_other: (u32, &'a [u8]),
    pub campaign: [Option<&'a str>; 5],
    pub campaign_other: (u32, &'a [u8]),
    pub strings: [Option<&'a str>; 3],
    pub screen: (Option<u32>, Option<u32>, Option<f64>),
    pub library: [Option<&'a str>; 2],
    pub other: (u32, &'a [u8]),
}

/// One token, its string borrowed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Token<'a> {
    Null,
    False,
    True,
    Int(i64),
    Float(f64),
    Str(&'a str),
    Array(u32),
    Object(u32),
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes }
    }

    pub fn rest(&self) -> &'a [u8] {
        self.bytes
    }

    /// Every field; `None` if the bytes are not a record (then the reader is spent).
    pub fn record(&mut self) -> Option<Fields<'a>> {
        let fields = Fields {
            call: self.call()?,
            message_id: self.str()?,
            timestamp: self.opt(Self::i64)?,
            identity: (self.opt(Self::str)?, self.opt(Self::str)?),
            context: {
                let len = self.u32()? as usize;
                let context = self.take(len)?;
                Reader::new(context).context().filter(|(_, rest)| rest.is_empty())?;
                context
            },
            properties: self.tokens()?,
            traits: self.tokens()?,
        };
        Some(fields)
    }

    fn call(&mut self) -> Option<Call<'a>> {
        Some(match self.u8()? {
            0 => Call::Page { category: self.opt(Self::str)?, name: self.opt(Self::str)? },
            1 => Call::Screen(self.opt(Self::str)?),
            2 => Call::Track(self.str()?),
            3 => Call::Identify,
            4 => Call::Group(self.str()?),
            5 => Call::Alias(self.str()?),
            _ => return None,
        })
    }

    /// A context block's fields, and what follows them.
    pub fn context(mut self) -> Option<(ContextFields<'a>, &'a [u8])> {
        let strs = |reader: &mut Reader<'a>| -> Option<[Option<&'a str>; 5]> {
            let mut fields = [None; 5];
            for field in &mut fields {
                *field = reader.opt(Self::str)?;
            }
            Some(fields)
        };
        let page = strs(&mut self)?;
        let page_other = self.tokens()?;
        let campaign = strs(&mut self)?;
        let campaign_other = self.tokens()?;
        let strings = [self.opt(Self::str)?, self.opt(Self::str)?, self.opt(Self::str)?];
        let screen = (self.opt(Self::u32)?, self.opt(Self::u32)?, self.opt(Self::f64)?);
        let library = [self.opt(Self::str)?, self.opt(Self::str)?];
        let other = self.tokens()?;
        let fields =
            ContextFields { page, page_other, campaign, campaign_other, strings, screen, library, other };
        Some((fields, self.bytes))
    }

    /// A token stream: its count and bytes, checked to hold exactly that many tokens.
    fn tokens(&mut self) -> Option<(u32, &'a [u8])> {
        let count = self.u32()?;
        let len = self.u32()? as usize;
        let bytes = self.take(len)?;
        let mut tokens = Reader::new(bytes);
        for _ in 0..count {
            tokens.token()?;
        }
        tokens.bytes.is_empty().then_some((count, bytes))
    }

    /// One whole value (a container with everything in it), as its token count and bytes.
    fn value(&mut self) -> Option<Encoded<'a>> {
        let start = self.bytes;
        let (mut unread, mut count) = (1u64, 0);
        while unread > 0 {
            unread -= 1;
            count += 1;
            match self.token()? {
                Token::Array(elements) => unread += u64::from(elements),
                // Each entry a key (one string token) and a value.
                Token::Object(entries) => unread += 2 * u64::from(entries),
                _ => {}
            }
        }
        Some((count, &start[..start.len() - self.bytes.len()]))
    }

    /// A map's next entry: its key and its value; `None` at the end.
    fn entry(&mut self) -> Option<(&'a str, Encoded<'a>)> {
        let Token::Str(key) = self.token()? else { return None };
        Some((key, self.value()?))
    }

    pub fn token(&mut self) -> Option<Token<'a>> {
        Some(match self.u8()? {
            NULL => Token::Null,
            FALSE => Token::False,
            TRUE => Token::True,
            INT => Token::Int(self.i64()?),
            FLOAT => Token::Float(self.f64()?),
            STRING => Token::Str(self.str()?),
            ARRAY => Token::Array(self.u32()?),
            OBJECT => Token::Object(self.u32()?),
            _ => return None,
        })
    }

    fn opt<T>(&mut self, read: fn(&mut Reader<'a>) -> Option<T>) -> Option<Option<T>> {
        match self.u8()? {
            0 => Some(None),
            1 => read(self).map(Some),
            _ => None,
        }
    }

    fn str(&mut self) -> Option<&'a str> {
        let len = self.u32()? as usize;
        std::str::from_utf8(self.take(len)?).ok()
    }

    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn i64(&mut self) -> Option<i64> {
        Some(i64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn f64(&mut self) -> Option<f64> {
        Some(f64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        if len > self.bytes.len() {
            self.bytes = &[];
            return None;
        }
        let (taken, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Some(taken)
    }
}

fn put_str(out: &mut Vec<u8>, value: &str) {
    out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    out.extend_from_slice(value.as_bytes());
}

fn put_opt_str(out: &mut Vec<u8>, value: Option<&str>) {
    match value {
        Some(value) => {
            out.push(1);
            put_str(out, value);
        }
        None => out.push(0),
    }
}

fn put_opt(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        Some(bytes) => {
            out.push(1);
            out.extend_from_slice(bytes);
        }
        None => out.push(0),
    }
}

#[cfg(test)]
mod tests {
    use super::{Call, ContextBlock, Record, Tokens};
    use crate::event::Context;
    use crate::value::Value;

    /// The context of a track call whose Segment JSON has this `context`.
    fn context_of(json: &str) -> Context {
        let body = format!(r#"{{"event": "e", "anonymousId": "a", "messageId": "m", "context": {json}}}"#);
        let (event, _) = crate::segment::decode_single("track", body.as_bytes(), 0).unwrap();
        (*event.context).clone()
    }

    /// The context a record with this block arrives with.
    fn sent_context(block: &ContextBlock) -> Context {
        let empty = Tokens::default();
        let record = Record::new(&Call::Identify, "m", None, (Some("a"), None), block, &empty, &empty);
        let body = crate::beacon::encode_records(None, 0, [&record]);
        (*crate::beacon::decode(&body).unwrap().events[0].context).clone()
    }

    #[test]
    fn a_calls_context_goes_over_the_one_the_sdk_collected() {
        let collected = r#"{"page": {"url": "https://a.example/p", "path": "/p", "referrer": "https://b.example/"},
            "campaign": {"name": "spring", "gclid": "g1"}, "userAgent": "UA", "locale": "en-GB",
            "screen": {"width": 390}, "library": {"name": "portrait.js", "version": "1"},
            "session": {"id": 5, "count": 1}, "channel": "search"}"#;
        let cases = [
            // The page's fields one by one (null removes one), its other keys joining; the
            // campaign whole; what the browser measured kept; other keys replaced or added.
            (
                r#"{"page": {"referrer": null, "title": "Pricing", "variant": "b"}, "campaign": {"source": "mail", "id": 7},
                    "userAgent": "spoofed", "timezone": "UTC", "screen": {"width": 1}, "locale": "fr-FR",
                    "library": {"name": "wrapper"}, "ip": "203.0.113.9", "channel": "email"}"#,
                r#"{"page": {"url": "https://a.example/p", "path": "/p", "title": "Pricing", "variant": "b"},
                    "campaign": {"source": "mail", "id": 7}, "userAgent": "UA", "locale": "fr-FR",
                    "screen": {"width": 390}, "library": {"name": "wrapper"},
                    "session": {"id": 5, "count": 1}, "channel": "email", "ip": "203.0.113.9"}"#,
                vec![],
            ),
            ("{}", collected, vec![]),
            // Wrong types are left out and named.
            (
                r#"{"page": {"url": 5, "title": "T"}, "campaign": "spring", "locale": ["fr"], "traits": {"plan": "pro"},
                    "library": {"name": "wrapper", "build": 7}}"#,
                r#"{"page": {"url": "https://a.example/p", "path": "/p", "title": "T", "referrer": "https://b.example/"},
                    "campaign": {"name": "spring", "gclid": "g1"}, "userAgent": "UA", "locale": "en-GB",
                    "screen": {"width": 390}, "library": {"name": "wrapper"},
                    "session": {"id": 5, "count": 1}, "channel": "search", "traits": {"plan": "pro"}}"#,
                vec![("campaign", ""), ("library", "build"), ("locale", ""), ("page", "url")],
            ),
        ];
        let block = ContextBlock::of(&context_of(collected));
        for (overrides, expected, left_out) in cases {
            let tokens = map_of(overrides);
            let overlaid = block.with(&tokens);
            assert_eq!(sent_context(&overlaid.block), context_of(expected), "{overrides}");
            assert_eq!(overlaid.left_out, left_out, "{overrides}");
        }
    }

    #[test]
    fn properties_are_removed_from_the_named_track_calls_only() {
        let event = |name: &str, properties: &str| {
            let body = format!(
                r#"{{"event": "{name}", "anonymousId": "a", "messageId": "m", "properties": {properties},
                    "context": {{"page": {{"path": "/p"}}}}, "timestamp": "2026-12-01T00:00:00Z"}}"#
            );
            Record::from_event(&crate::segment::decode_single("track", body.as_bytes(), 0).unwrap().0)
        };
        let keys = ["topics", "tags"];
        let engaged = event(
            "Page Engaged",
            r#"{"path": "/p", "topics": [[5, 0.5]], "engaged_ms": 9, "tags": [["x", 1]]}"#,
        );
        let without = engaged.without_properties("Page Engaged", &keys).unwrap();
        assert_eq!(without, event("Page Engaged", r#"{"path": "/p", "engaged_ms": 9}"#));
        assert!(Record::from_bytes(without.as_bytes().to_vec()).is_some());
        // Nothing to change: another event, or none of the keys.
        assert_eq!(event("Viewed", r#"{"topics": 1}"#).without_properties("Page Engaged", &keys), None);
        assert_eq!(without.without_properties("Page Engaged", &keys), None);
    }

    fn map_of(json: &str) -> Tokens {
        let mut tokens = Tokens::default();
        let Value::Object(map) = serde_json::from_str::<Value>(json).unwrap() else { panic!("{json}") };
        tokens.map(&map);
        tokens
    }

    #[test]
    fn an_event_the_collector_keeps_has_a_record_within_the_bound() {
        use crate::limits::MAX_EVENT_BYTES;
        // The worst cases for the ratio (many small integers, then small floats, empty
        // strings and containers, nulls), as large as the collector keeps.
        for element in ["0", "0.5", "\"\"", "[]", "{}", "null"] {
            let count = (MAX_EVENT_BYTES - 200) / (element.len() + 1);
            let items = vec![element; count].join(",");
            let json = format!(
                r#"{{"event": "e", "anonymousId": "a", "messageId": "m", "properties": {{"n": [{items}]}}}}"#
            );
            let (event, _) = crate::segment::decode_single("track", json.as_bytes(), 0).expect("kept");
            let record = Record::from_event(&event);
            assert!(
                record.as_bytes().len() <= super::MAX_RECORD_BYTES,
                "{element}: {} bytes",
                record.as_bytes().len()
            );
            if element == "0" {
                assert!(record.as_bytes().len() > super::MAX_RECORD_BYTES * 9 / 10, "the bound is tight");
            }
        }
    }

    #[test]
    fn a_context_as_a_map_and_back_is_itself_and_what_the_map_lacks_the_context_lacks() {
        let collected = r#"{"page": {"url": "https://a.example/p?q=1", "search": "?q=1", "variant": "b"},
            "campaign": {"name": "spring", "content": "ada@example.com", "gclid": "g1"}, "userAgent": "UA",
            "locale": "en-GB", "timezone": "Europe/London", "screen": {"width": 390, "height": 844, "density": 2.5},
            "library": {"name": "portrait.js", "version": "1"}, "session": {"id": 5, "count": 1}}"#;
        let block = ContextBlock::of(&context_of(collected));
        let map = block.to_map();
        let back = ContextBlock::from_map(&map);
        assert_eq!((&back.block, back.left_out.len()), (&block, 0), "the round trip");
        assert_eq!(sent_context(&ContextBlock::from_map(&map_of(collected)).block), context_of(collected));
        // A source middleware deleted the campaign, the query and the screen, and changed the time zone.
        let edited = r#"{"page": {"url": "https://a.example/p", "variant": "b"}, "userAgent": "UA", "locale": "en-GB",
            "timezone": "UTC", "library": {"name": "portrait.js", "version": "1"}, "session": {"id": 5, "count": 1},
            "screen": {"width": -1, "density": "high", "height": 1e300}}"#;
        let edited = map_of(edited);
        let rebuilt = ContextBlock::from_map(&edited);
        let expected = r#"{"page": {"url": "https://a.example/p", "variant": "b"}, "userAgent": "UA", "locale": "en-GB",
            "timezone": "UTC", "library": {"name": "portrait.js", "version": "1"}, "session": {"id": 5, "count": 1}}"#;
        assert_eq!(sent_context(&rebuilt.block), context_of(expected));
        assert_eq!(rebuilt.left_out, [("screen", "density"), ("screen", "height"), ("screen", "width")]);
        // JSON has no NaN, a page's numbers have: the collector refuses it.
        let mut nan = Tokens::default();
        let at = nan.key("screen").open(true);
        nan.key("density").float(f64::NAN);
        nan.close(at, 1);
        assert_eq!(ContextBlock::from_map(&nan).left_out, [("screen", "density")]);
    }

    #[test]
    fn calls_parse_back_from_their_type_and_name() {
        for call in [
            Call::Page { category: Some("Docs"), name: Some("Setup") },
            Call::Page { category: None, name: None },
            Call::Screen(Some("Home")),
            Call::Track("Signed Up"),
            Call::Identify,
            Call::Group("acme"),
            Call::Alias("user-1"),
        ] {
            let category = match call {
                Call::Page { category, .. } => category,
                _ => None,
            };
            assert_eq!(Call::parse(call.type_name(), call.name(), category), Some(call));
            assert_eq!(Call::name_key(call.type_name()).is_some(), call != Call::Identify);
        }
        assert_eq!(Call::parse("track", None, None), None, "a track needs its event");
        assert_eq!(Call::parse("group", None, None), None);
        assert_eq!(Call::parse("purchase", Some("x"), None), None, "not a Segment type");
    }
}
