//! Segment's HTTP Tracking API JSON: `/v1/batch` bodies and the single-call bodies of
//! `/v1/track`, `/v1/identify`, `/v1/page`, `/v1/screen`, `/v1/group` and `/v1/alias`.
//!
//! Decoding accepts what Segment's own libraries send: ISO-8601 timestamps (`timestamp`, else
//! `originalTimestamp`), ids given as numbers, `integrations` and any unknown field (ignored,
//! not rejected). `context.ip` and an
//! incoming `receivedAt` are dropped: the collector sets `receivedAt` and never keeps the IP.
//! Encoding writes the canonical form that [`json_len`] measures for the event size limit.
//!
//! ```
//! let body = br#"{"batch":[{"type":"track","event":"Signed Up","userId":"u1"}]}"#;
//! let decoded = portrait_core::segment::decode_batch(body, 7).unwrap();
//! assert_eq!(decoded.events.len(), 1);
//! ```

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::error::{Error, ErrorKind};
use crate::event::{Call, Campaign, Context, Event, Library, Page, Screen};
use crate::hash::{self, Fnv1a};
use crate::limits::{MAX_BATCH_BYTES, MAX_BATCH_EVENTS};
use crate::time::Timestamp;
use crate::validate::{key_segment, validate};
use crate::value::{Map, Value};
use crate::{Decoded, Rejected};

/// Decodes a `/v1/batch` body: `{batch: [...], context?, sentAt?, writeKey?}`. Batch-level
/// `context` keys and `sentAt` apply to every event that lacks its own. `arrival`, a number
/// this arrival of the body alone has (the collector's is random), goes into the `messageId`
/// made for an event that has neither one nor a `timestamp` (see [`content_message_id`]).
pub fn decode_batch(body: &[u8], arrival: u64) -> Result<Decoded, Error> {
    let mut top = parse_object(body)?;
    let write_key = string_field(&mut top, "writeKey")?;
    let defaults = Defaults {
        context: object_field(&mut top, "context")?,
        sent_at: timestamp_field(&mut top, "sentAt")?,
    };
    let items = match top.remove("batch") {
        Some(Value::Array(items)) => items,
        Some(other) => return Err(wrong_type("batch", "array", &other)),
        None => return Err(Error::new("batch", ErrorKind::Missing)),
    };
    if items.len() > MAX_BATCH_EVENTS {
        return Err(Error::new("batch", ErrorKind::TooManyEvents { count: items.len() }));
    }
    let mut decoded = Decoded { write_key, ..Decoded::default() };
    for (index, item) in items.into_iter().enumerate() {
        let event = match item {
            Value::Object(object) => event_from_object(object, None, &defaults, (arrival, index)),
            other => Err(wrong_type("", "object", &other)),
        };
        match event.and_then(|event| validate(&event).map(|()| event)) {
            Ok(event) => decoded.events.push(event),
            Err(error) => decoded.rejected.push(Rejected::new(index, error)),
        }
    }
    Ok(decoded)
}

/// Decodes the body of a single-call endpoint; `call_type` comes from the URL (`track`, …).
/// The body's own `type` field, if any, is ignored, as Segment does. `arrival` as for
/// [`decode_batch`].
pub fn decode_single(call_type: &str, body: &[u8], arrival: u64) -> Result<(Event, Option<String>), Error> {
    let mut object = parse_object(body)?;
    let write_key = string_field(&mut object, "writeKey")?;
    let event = event_from_object(object, Some(call_type), &Defaults::default(), (arrival, 0))?;
    validate(&event)?;
    Ok((event, write_key))
}

/// Encodes events as a `/v1/batch` body.
pub fn encode_batch(events: &[Event]) -> Vec<u8> {
    serde_json::to_vec(&batch_json(events)).expect("serialising to memory cannot fail")
}

/// `{"batch": [...]}` as a JSON value, for callers that add fields or pretty-print.
pub fn batch_json(events: &[Event]) -> serde_json::Value {
    let batch: Vec<serde_json::Value> = events.iter().map(to_json).collect();
    serde_json::json!({ "batch": batch })
}

/// One event as a Segment JSON value.
pub fn to_json(event: &Event) -> serde_json::Value {
    serde_json::to_value(Json(event)).expect("events are always representable as JSON")
}

/// An event in its Segment JSON form: `serde_json::to_writer(w, &Json(&event))`.
pub struct Json<'a>(pub &'a Event);

/// Length of the canonical JSON encoding: the measure of the per-event size limit.
pub fn json_len(event: &Event) -> usize {
    encoded_len(&Json(event))
}

/// [`json_len`] for an event whose context's encoded length is already known: a beacon
/// shares one context among many events, so its decoder measures each context once.
pub(crate) fn json_len_with_context_len(event: &Event, context_len: usize) -> usize {
    let without_context = encoded_len(&EventJson { event, with_context: false });
    match *event.context == Context::default() {
        true => without_context,
        false => without_context + r#","context":"#.len() + context_len,
    }
}

pub(crate) fn context_json_len(context: &Context) -> usize {
    encoded_len(&ContextJson(context))
}

fn encoded_len(value: &impl Serialize) -> usize {
    let mut counter = ByteCounter(0);
    serde_json::to_writer(&mut counter, value).expect("counting cannot fail");
    counter.0
}

struct ByteCounter(usize);

impl std::io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[derive(Default)]
struct Defaults {
    context: Map,
    sent_at: Option<Timestamp>,
}

fn parse_object(body: &[u8]) -> Result<Map, Error> {
    if body.len() > MAX_BATCH_BYTES {
        return Err(Error::new("", ErrorKind::BodyTooLarge { size: body.len() as u64 }));
    }
    // JavaScript's `JSON.stringify` writes half of a UTF-16 pair (a string cut inside an
    // emoji) as `\ud83d`, which serde_json refuses; Segment's libraries never resend a 400,
    // so the whole batch would be lost for one cut string. Such halves are read as U+FFFD.
    let parsed =
        serde_json::from_slice::<Value>(body).or_else(|error| match lone_surrogates_replaced(body) {
            Some(mended) => serde_json::from_slice::<Value>(&mended).map_err(|_| error),
            None => Err(error),
        });
    match parsed {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(wrong_type("", "object", &other)),
        Err(e) => Err(Error::new("", ErrorKind::Malformed(e.to_string()))),
    }
}

/// `body` with each `\uXXXX` escape of an unpaired UTF-16 surrogate inside a JSON string
/// replaced by `\uFFFD` (as long: byte offsets stay), or `None` if it has none.
fn lone_surrogates_replaced(body: &[u8]) -> Option<Vec<u8>> {
    let escaped_unit = |at: usize| -> Option<u16> {
        let digits = body.get(at..at + 6).filter(|e| e.starts_with(b"\\u"))?.get(2..)?;
        let digits = std::str::from_utf8(digits).ok().filter(|d| d.bytes().all(|b| b.is_ascii_hexdigit()))?;
        u16::from_str_radix(digits, 16).ok()
    };
    let mut mended: Option<Vec<u8>> = None;
    let mut in_string = false;
    let mut at = 0;
    while at < body.len() {
        match body[at] {
            b'"' => {
                in_string = !in_string;
                at += 1;
            }
            b'\\' if in_string => {
                let paired = |unit: u16| {
                    (0xD800..=0xDBFF).contains(&unit) && matches!(escaped_unit(at + 6), Some(0xDC00..=0xDFFF))
                };
                match escaped_unit(at) {
                    Some(unit) if paired(unit) => at += 12,
                    Some(0xD800..=0xDFFF) => {
                        mended.get_or_insert_with(|| body.to_vec())[at..at + 6].copy_from_slice(b"\\uFFFD");
                        at += 6;
                    }
                    Some(_) => at += 6,
                    // Any other escape is two bytes (`\"` among them: it ends no string).
                    None => at += 2,
                }
            }
            _ => at += 1,
        }
    }
    mended
}

/// `arrival`: the body's arrival (see [`decode_batch`]) and the event's place in it.
fn event_from_object(
    mut object: Map,
    call_type: Option<&str>,
    defaults: &Defaults,
    arrival: (u64, usize),
) -> Result<Event, Error> {
    let call_type = match call_type {
        Some(t) => t.to_owned(),
        None => string_field(&mut object, "type")?.ok_or_else(|| Error::new("type", ErrorKind::Missing))?,
    };
    let call = match call_type.as_str() {
        "page" => {
            Call::Page { category: id_field(&mut object, "category")?, name: id_field(&mut object, "name")? }
        }
        "screen" => Call::Screen { name: id_field(&mut object, "name")? },
        "track" => Call::Track { event: required_id(&mut object, "event")? },
        "identify" => Call::Identify,
        "group" => Call::Group { group_id: required_id(&mut object, "groupId")? },
        "alias" => Call::Alias { previous_id: required_id(&mut object, "previousId")? },
        // Named in the error, cut short: the answer must not repeat a hostile body at length.
        _ => {
            let shown = crate::limits::cut_at_char(&call_type, 64).to_owned();
            return Err(Error::new("type", ErrorKind::UnknownType(shown)));
        }
    };
    let mut context = defaults.context.clone();
    context.extend(object_field(&mut object, "context")?);
    let mut event = Event {
        message_id: id_field(&mut object, "messageId")?.unwrap_or_default(),
        call,
        anonymous_id: id_field(&mut object, "anonymousId")?,
        user_id: id_field(&mut object, "userId")?,
        timestamp: match timestamp_field(&mut object, "timestamp")? {
            Some(timestamp) => Some(timestamp),
            // Segment's name for the device's time, which it computes `timestamp` from (with
            // `sentAt`, as the collector does): sent alone by some libraries and exports.
            None => timestamp_field(&mut object, "originalTimestamp")?,
        },
        sent_at: timestamp_field(&mut object, "sentAt")?.or(defaults.sent_at),
        received_at: None,
        context: context_from_map(context).map_err(|e| e.within("context"))?.into(),
        properties: object_field(&mut object, "properties")?,
        traits: object_field(&mut object, "traits")?,
    };
    if event.message_id.is_empty() {
        event.message_id = content_message_id(&mut event, arrival);
    }
    Ok(event)
}

/// A `messageId` for senders that omit it, derived from the event's content so that a retry
/// of the same event is still recognised as a duplicate (two FNV-1a 64 hashes, 128 bits).
/// Not from `sentAt`, which a client's retry stamps again. An event without a `timestamp`
/// cannot tell a retry from a repeat by its content (a second click the same): its id holds
/// `arrival` (the body's arrival, its place in the body), so each is counted, as by Segment,
/// which gives such an event a random id.
fn content_message_id(event: &mut Event, arrival: (u64, usize)) -> String {
    /// Two FNV-1a states with different seeds, fed the same bytes.
    struct Pair([Fnv1a; 2]);
    impl std::io::Write for Pair {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.iter_mut().for_each(|h| h.update(buf));
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut pair = Pair([Fnv1a::new(hash::OFFSET_BASIS), Fnv1a::new(0x6c62_272e_07bb_0142)]);
    let sent_at = event.sent_at.take();
    serde_json::to_writer(&mut pair, &Json(event)).expect("hashing cannot fail");
    event.sent_at = sent_at;
    if event.timestamp.is_none() {
        let (arrival, index) = arrival;
        pair.0.iter_mut().for_each(|h| {
            h.update(&arrival.to_le_bytes());
            h.update(&(index as u64).to_le_bytes());
        });
    }
    format!("content-{:016x}{:016x}", pair.0[0].finish(), pair.0[1].finish())
}

fn context_from_map(mut map: Map) -> Result<Context, Error> {
    map.remove("ip");
    let mut page = object_field(&mut map, "page")?;
    let mut campaign = object_field(&mut map, "campaign")?;
    let mut screen = object_field(&mut map, "screen")?;
    let mut library = object_field(&mut map, "library")?;
    let in_page = |e: Error| e.within("page");
    let in_campaign = |e: Error| e.within("campaign");
    Ok(Context {
        page: Page {
            url: string_field(&mut page, "url").map_err(in_page)?,
            path: string_field(&mut page, "path").map_err(in_page)?,
            title: string_field(&mut page, "title").map_err(in_page)?,
            referrer: string_field(&mut page, "referrer").map_err(in_page)?,
            search: string_field(&mut page, "search").map_err(in_page)?,
            other: page,
        },
        campaign: Campaign {
            name: string_field(&mut campaign, "name").map_err(in_campaign)?,
            source: string_field(&mut campaign, "source").map_err(in_campaign)?,
            medium: string_field(&mut campaign, "medium").map_err(in_campaign)?,
            term: string_field(&mut campaign, "term").map_err(in_campaign)?,
            content: string_field(&mut campaign, "content").map_err(in_campaign)?,
            other: campaign,
        },
        user_agent: string_field(&mut map, "userAgent")?,
        locale: string_field(&mut map, "locale")?,
        timezone: string_field(&mut map, "timezone")?,
        screen: Screen {
            width: dimension_field(&mut screen, "width").map_err(|e| e.within("screen"))?,
            height: dimension_field(&mut screen, "height").map_err(|e| e.within("screen"))?,
            density: number_field(&mut screen, "density").map_err(|e| e.within("screen"))?,
        },
        library: Library {
            name: string_field(&mut library, "name").map_err(|e| e.within("library"))?,
            // A version sent as a number (`2`, `1.5`) is the library's all the same.
            version: text_field(&mut library, "version").map_err(|e| e.within("library"))?,
        },
        other: map,
    })
}

/// Removes `key`; JSON `null` counts as absent.
fn take(object: &mut Map, key: &str) -> Option<Value> {
    object.remove(key).filter(|v| *v != Value::Null)
}

fn wrong_type(path: &str, expected: &'static str, found: &Value) -> Error {
    Error::new(path, ErrorKind::WrongType { expected, found: found.type_name() })
}

fn string_field(object: &mut Map, key: &str) -> Result<Option<String>, Error> {
    match take(object, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(wrong_type(key, "string", &other)),
    }
}

/// A string, or a number kept as its text.
fn text_field(object: &mut Map, key: &str) -> Result<Option<String>, Error> {
    let number = match object.get(key) {
        Some(Value::Int(n)) => n.to_string(),
        Some(Value::Float(x)) => x.to_string(),
        _ => return string_field(object, key),
    };
    object.remove(key);
    Ok(Some(number))
}

/// Ids may be sent as numbers (several Segment libraries allow it); they are kept as text.
fn id_field(object: &mut Map, key: &str) -> Result<Option<String>, Error> {
    match take(object, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(Value::Int(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(wrong_type(key, "string", &other)),
    }
}

fn required_id(object: &mut Map, key: &str) -> Result<String, Error> {
    id_field(object, key)?.ok_or_else(|| Error::new(key, ErrorKind::Missing))
}

fn object_field(object: &mut Map, key: &str) -> Result<Map, Error> {
    match take(object, key) {
        None => Ok(Map::new()),
        Some(Value::Object(map)) => Ok(map),
        Some(other) => Err(wrong_type(&key_segment(key), "object", &other)),
    }
}

fn timestamp_field(object: &mut Map, key: &str) -> Result<Option<Timestamp>, Error> {
    match take(object, key) {
        None => Ok(None),
        Some(Value::String(s)) => {
            Timestamp::parse_iso8601(&s).map(Some).ok_or_else(|| Error::new(key, ErrorKind::BadTimestamp))
        }
        Some(other) => Err(wrong_type(key, "string", &other)),
    }
}

fn number_field(object: &mut Map, key: &str) -> Result<Option<f64>, Error> {
    match take(object, key) {
        None => Ok(None),
        Some(Value::Float(x)) => Ok(Some(x)),
        Some(Value::Int(n)) => Ok(Some(n as f64)),
        Some(other) => Err(wrong_type(key, "number", &other)),
    }
}

/// A whole number of pixels; `1920.0` (a computed width) is `1920`.
fn dimension_field(object: &mut Map, key: &str) -> Result<Option<u32>, Error> {
    let out_of_range =
        || Error::new(key, ErrorKind::WrongType { expected: "non-negative integer", found: "number" });
    match take(object, key) {
        None => Ok(None),
        Some(Value::Int(n)) => u32::try_from(n).map(Some).map_err(|_| out_of_range()),
        Some(Value::Float(x)) if x.fract() == 0.0 => {
            (0.0..=f64::from(u32::MAX)).contains(&x).then_some(x as u32).map(Some).ok_or_else(out_of_range)
        }
        Some(other) => Err(wrong_type(key, "non-negative integer", &other)),
    }
}

impl Serialize for Json<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        EventJson { event: self.0, with_context: true }.serialize(serializer)
    }
}

/// The JSON writer behind [`Json`]; without the context when measuring shared contexts.
struct EventJson<'a> {
    event: &'a Event,
    with_context: bool,
}

impl Serialize for EventJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let event = self.event;
        let mut out = serializer.serialize_map(None)?;
        out.serialize_entry("type", event.call.type_name())?;
        out.serialize_entry("messageId", &event.message_id)?;
        entry(&mut out, "anonymousId", &event.anonymous_id)?;
        entry(&mut out, "userId", &event.user_id)?;
        match &event.call {
            Call::Page { category, name } => {
                entry(&mut out, "category", category)?;
                entry(&mut out, "name", name)?;
            }
            Call::Screen { name } => entry(&mut out, "name", name)?,
            Call::Track { event } => out.serialize_entry("event", event)?,
            Call::Identify => {}
            Call::Group { group_id } => out.serialize_entry("groupId", group_id)?,
            Call::Alias { previous_id } => out.serialize_entry("previousId", previous_id)?,
        }
        map_entry(&mut out, "properties", &event.properties)?;
        map_entry(&mut out, "traits", &event.traits)?;
        if self.with_context && *event.context != Context::default() {
            out.serialize_entry("context", &ContextJson(&event.context))?;
        }
        let as_text = |t: &Option<Timestamp>| t.map(|t| t.to_string());
        entry(&mut out, "timestamp", &as_text(&event.timestamp))?;
        entry(&mut out, "sentAt", &as_text(&event.sent_at))?;
        entry(&mut out, "receivedAt", &as_text(&event.received_at))?;
        out.end()
    }
}

struct ContextJson<'a>(&'a Context);

impl Serialize for ContextJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let context = self.0;
        let mut out = serializer.serialize_map(None)?;
        let page = &context.page;
        let page_fields = [
            ("url", &page.url),
            ("path", &page.path),
            ("title", &page.title),
            ("referrer", &page.referrer),
            ("search", &page.search),
        ];
        sub_object(&mut out, "page", &page_fields, &page.other)?;
        let campaign = &context.campaign;
        let campaign_fields = [
            ("name", &campaign.name),
            ("source", &campaign.source),
            ("medium", &campaign.medium),
            ("term", &campaign.term),
            ("content", &campaign.content),
        ];
        sub_object(&mut out, "campaign", &campaign_fields, &campaign.other)?;
        entry(&mut out, "userAgent", &context.user_agent)?;
        entry(&mut out, "locale", &context.locale)?;
        entry(&mut out, "timezone", &context.timezone)?;
        let screen = &context.screen;
        if *screen != Screen::default() {
            #[derive(Serialize)]
            struct ScreenJson {
                #[serde(skip_serializing_if = "Option::is_none")]
                width: Option<u32>,
                #[serde(skip_serializing_if = "Option::is_none")]
                height: Option<u32>,
                #[serde(skip_serializing_if = "Option::is_none")]
                density: Option<f64>,
            }
            let json = ScreenJson { width: screen.width, height: screen.height, density: screen.density };
            out.serialize_entry("screen", &json)?;
        }
        let library = [("name", &context.library.name), ("version", &context.library.version)];
        sub_object(&mut out, "library", &library, &Map::new())?;
        for (key, value) in &context.other {
            if !CONTEXT_KEYS.contains(&key.as_str()) {
                out.serialize_entry(key, value)?;
            }
        }
        out.end()
    }
}

/// Typed context keys; an `other` map never repeats them (decoders take them out first).
const CONTEXT_KEYS: [&str; 8] =
    ["page", "campaign", "userAgent", "locale", "timezone", "screen", "library", "ip"];

/// Writes `{typed fields…, other…}` under `key`, or nothing if all are empty. Keys in `other`
/// that shadow a typed field are skipped: only a hand-made beacon can carry them.
fn sub_object<M: SerializeMap>(
    out: &mut M,
    key: &str,
    fields: &[(&str, &Option<String>)],
    other: &Map,
) -> Result<(), M::Error> {
    let object = SubObject { fields, other };
    match fields.iter().all(|(_, v)| v.is_none()) && other.is_empty() {
        true => Ok(()),
        false => out.serialize_entry(key, &object),
    }
}

struct SubObject<'a> {
    fields: &'a [(&'a str, &'a Option<String>)],
    other: &'a Map,
}

impl Serialize for SubObject<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_map(None)?;
        for (name, value) in self.fields {
            entry(&mut out, name, value)?;
        }
        for (key, value) in self.other {
            if !self.fields.iter().any(|(name, _)| name == key) {
                out.serialize_entry(key, value)?;
            }
        }
        out.end()
    }
}

fn entry<M: SerializeMap, T: Serialize>(out: &mut M, key: &str, value: &Option<T>) -> Result<(), M::Error> {
    match value {
        Some(value) => out.serialize_entry(key, value),
        None => Ok(()),
    }
}

fn map_entry<M: SerializeMap>(out: &mut M, key: &str, map: &Map) -> Result<(), M::Error> {
    match map.is_empty() {
        true => Ok(()),
        false => out.serialize_entry(key, map),
    }
}
