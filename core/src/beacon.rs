//! The beacon format: how the SDK sends batches to the collector (`POST /v1/b`).
//!
//! ```text
//! body    = magic (0xB7 'P') · version (1) · postcard(WireBatch)
//! ```
//! Small by construction: every string (event names, keys, values, ids) is stored once in a
//! batch-level table and referenced by index; context and identity are stored once per
//! distinct value and referenced by index; message ids that are UUIDs travel as 16 bytes;
//! event times travel as a zig-zag varint delta from the batch's `sentAt`; properties and
//! traits are a flat token stream (no recursion in the decoder beyond [`MAX_DEPTH`]).
//!
//! A new layout gets a new version byte; decoders name the version they cannot read.
//! `core/tests/data/beacon_v1_*.bin` pin version 1 byte for byte.
//!
//! ```
//! use portrait_core::{beacon, Call, Event};
//! let mut event = Event::new("m1", Call::Track { event: "Signed Up".into() });
//! event.anonymous_id = Some("a1".into());
//! let body = beacon::encode(&beacon::Batch { sent_at: None, dropped: 0, events: vec![event.clone()] });
//! assert_eq!(beacon::decode(&body).unwrap().events, vec![event]);
//! ```

use std::collections::btree_map::Entry;
use std::sync::Arc;

use serde::Deserialize;

use crate::error::{Error, ErrorKind};
use crate::event::{Call, Campaign, Context, Event, Library, Page, Screen};
use crate::limits::{MAX_BATCH_BYTES, MAX_BATCH_EVENTS, MAX_DEPTH};
use crate::record::{self, Call as RecordCall, Record};
use crate::segment;
use crate::time::Timestamp;
use crate::validate::{key_segment, validate_measured};
use crate::value::{Map, Value};
use crate::{Decoded, Rejected};

/// First bytes of every beacon. 0xB7 is not valid as the first byte of UTF-8 text, so a
/// beacon can never be mistaken for JSON.
pub const MAGIC: [u8; 2] = [0xB7, b'P'];
pub const VERSION: u8 = 1;
/// The content type the SDK sends: CORS-safelisted, so browsers send no preflight.
pub const CONTENT_TYPE: &str = "text/plain";

/// What the SDK hands to [`encode`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Batch {
    /// Stamped on every event of the batch (events' own `sent_at` is not sent).
    pub sent_at: Option<Timestamp>,
    /// Events the SDK's queue had to drop (full) since its last successful batch.
    pub dropped: u32,
    pub events: Vec<Event>,
}

/// Encodes a batch. `received_at` is not sent (the collector sets it).
pub fn encode(batch: &Batch) -> Vec<u8> {
    let sent_at = batch.sent_at.map(|t| t.0);
    let mut writer = Writer::default();
    for event in &batch.events {
        writer.event(event, sent_at);
    }
    writer.finish(sent_at, batch.dropped)
}

/// Encodes a batch of [`Record`]s (the SDK's queue) sent at `sent_at`: the same bytes as
/// [`encode`] gives for the events they were made from.
pub fn encode_records<'a>(
    sent_at: Option<i64>,
    dropped: u32,
    records: impl IntoIterator<Item = &'a Record>,
) -> Vec<u8> {
    let mut writer = Writer::default();
    for record in records {
        writer.event(record, sent_at);
    }
    writer.finish(sent_at, dropped)
}

/// Decodes a beacon body. Whole-body problems (size, magic, version, corrupt bytes) are an
/// `Err`; an event that breaks a limit is reported in [`Decoded::rejected`] and the rest
/// are kept.
pub fn decode(body: &[u8]) -> Result<Decoded, Error> {
    let wire = wire_batch(body)?;
    let mut decoded = Decoded {
        events: Vec::with_capacity(wire.events.len()),
        dropped: wire.dropped,
        ..Decoded::default()
    };
    let mut reader = Reader { wire: &wire, contexts: vec![None; wire.contexts.len()] };
    let mut context_lens: Vec<Option<usize>> = vec![None; wire.contexts.len()];
    for (index, event) in wire.events.iter().enumerate() {
        let measure = |decoded: &Event| {
            let slot = &mut context_lens[event.context as usize]; // in range: the event decoded
            let context_len = *slot.get_or_insert_with(|| segment::context_json_len(&decoded.context));
            segment::json_len_with_context_len(decoded, context_len)
        };
        match reader.event(event).and_then(|decoded| validate_measured(&decoded, measure).map(|()| decoded)) {
            Ok(event) => decoded.events.push(event),
            Err(error) => decoded.rejected.push(Rejected::new(index, error)),
        }
    }
    Ok(decoded)
}

/// The batch of a beacon body, its references not yet resolved.
fn wire_batch(body: &[u8]) -> Result<WireBatch<'_>, Error> {
    let wire: WireBatch = match postcard::take_from_bytes(payload(body)?) {
        Ok((wire, [])) => wire,
        Ok((_, rest)) => {
            let detail = format!("{} unexpected bytes after the batch", rest.len());
            return Err(Error::new("", ErrorKind::Malformed(detail)));
        }
        Err(e) => return Err(Error::new("", ErrorKind::Malformed(format!("beacon: {e}")))),
    };
    if wire.events.len() > MAX_BATCH_EVENTS {
        return Err(Error::new("batch", ErrorKind::TooManyEvents { count: wire.events.len() }));
    }
    Ok(wire)
}

/// What the collector needs to route a beacon, read without decoding or validating its
/// events: how many there are, how many the sender dropped, and each (anonymousId, userId)
/// pair they refer to (`None` for
/// an id whose reference is out of range; [`decode`] rejects the events that use it).
#[derive(Clone, Debug, PartialEq)]
pub struct Peek {
    pub events: usize,
    pub identities: Vec<(Option<String>, Option<String>)>,
    /// Events the sender's queue dropped before this batch (see [`Batch::dropped`]).
    pub dropped: u32,
}

pub fn peek(body: &[u8]) -> Result<Peek, Error> {
    let malformed = |e: postcard::Error| Error::new("", ErrorKind::Malformed(format!("beacon: {e}")));
    let (prefix, rest) = postcard::take_from_bytes::<WirePrefix>(payload(body)?).map_err(malformed)?;
    // The events' length prefix: a varint, encoded as a `u32` would be.
    let (events, _) = postcard::take_from_bytes::<u32>(rest).map_err(malformed)?;
    let events = events as usize;
    if events > MAX_BATCH_EVENTS {
        return Err(Error::new("batch", ErrorKind::TooManyEvents { count: events }));
    }
    let string =
        |index: Option<Str>| index.and_then(|i| prefix.strings.get(i as usize)).map(|s| (*s).to_owned());
    let identities = prefix.identities.iter().map(|i| (string(i.anonymous_id), string(i.user_id))).collect();
    Ok(Peek { events, identities, dropped: prefix.dropped })
}

/// The envelope check shared by [`decode`] and [`peek`]: size, magic, version.
fn payload(body: &[u8]) -> Result<&[u8], Error> {
    if body.len() > MAX_BATCH_BYTES {
        return Err(Error::new("", ErrorKind::BodyTooLarge { size: body.len() as u64 }));
    }
    match body {
        [m0, m1, VERSION, payload @ ..] if [*m0, *m1] == MAGIC => Ok(payload),
        [m0, m1, version, ..] if [*m0, *m1] == MAGIC => {
            Err(Error::new("", ErrorKind::UnsupportedVersion(*version)))
        }
        _ => Err(Error::new("", ErrorKind::NotABeacon)),
    }
}

/// The fields of [`WireBatch`] before `events`, with borrowed strings.
#[derive(Deserialize)]
struct WirePrefix<'a> {
    #[allow(dead_code)] // read only to get past it
    sent_at: Option<i64>,
    dropped: u32,
    #[serde(borrow)]
    strings: Vec<&'a str>,
    #[allow(dead_code)]
    contexts: Vec<WireContext>,
    identities: Vec<WireIdentity>,
}

/// Strings are borrowed both ways: from the events when encoding, from the body when decoding
/// (an [`Event`] gets its own copy of each string it uses, not a copy of a copy).
#[derive(Deserialize)]
struct WireBatch<'a> {
    sent_at: Option<i64>,
    dropped: u32,
    #[serde(borrow)]
    strings: Vec<&'a str>,
    contexts: Vec<WireContext>,
    identities: Vec<WireIdentity>,
    events: Vec<WireEvent>,
}

/// Every `u32` below that names a string is an index into `WireBatch::strings`.
type Str = u32;

#[derive(Deserialize, PartialEq)]
struct WireIdentity {
    anonymous_id: Option<Str>,
    user_id: Option<Str>,
}

#[derive(Deserialize)]
struct WireEvent {
    call: WireCall,
    message_id: WireMessageId,
    /// Milliseconds after the batch's `sent_at` (negative: before), or absolute without one.
    timestamp: Option<i64>,
    context: u32,
    identity: u32,
    properties: Vec<Token>,
    traits: Vec<Token>,
}

#[derive(Deserialize)]
enum WireCall {
    Page { category: Option<Str>, name: Option<Str> },
    Screen { name: Option<Str> },
    Track { event: Str },
    Identify,
    Group { group_id: Str },
    Alias { previous_id: Str },
}

#[derive(Clone, Copy, Deserialize)]
enum WireMessageId {
    /// A lowercase, hyphenated UUID (what `crypto.randomUUID()` returns), as its 16 bytes.
    Uuid([u8; 16]),
    Text(Str),
}

#[derive(Deserialize, PartialEq)]
struct WireContext {
    page: [Option<Str>; 5],
    page_other: Vec<Token>,
    campaign: [Option<Str>; 5],
    campaign_other: Vec<Token>,
    user_agent: Option<Str>,
    locale: Option<Str>,
    timezone: Option<Str>,
    screen: (Option<u32>, Option<u32>, Option<f64>),
    library: (Option<Str>, Option<Str>),
    other: Vec<Token>,
}

/// A map is a sequence of `Str` key tokens each followed by one value. Containers give
/// their element count; an object's elements are key-value pairs.
#[derive(Deserialize, PartialEq, Debug)]
enum Token {
    Null,
    False,
    True,
    Int(i64),
    Float(f64),
    Str(Str),
    Array(u32),
    Object(u32),
}

/// Writes a [`WireBatch`]'s postcard bytes directly, from [`Event`]s or [`Record`]s (one
/// writer, so both give the same bytes). Tables fill in first-seen order, so encoding is
/// deterministic: strings, then contexts and identities, each written once and referred to by
/// index. `K` is how the source's contexts are told apart ([`Source::ContextKey`]): generic,
/// so the SDK, which writes only records, carries no code comparing [`Context`]s.
struct Writer<'a, K> {
    strings: Interner<'a>,
    /// Each distinct context once, and their bytes.
    contexts: Vec<K>,
    contexts_out: Vec<u8>,
    identities: Vec<(Option<Str>, Option<Str>)>,
    events: u32,
    events_out: Vec<u8>,
}

impl<K> Default for Writer<'_, K> {
    fn default() -> Self {
        Writer {
            strings: Interner::default(),
            contexts: Vec::new(),
            contexts_out: Vec::new(),
            identities: Vec::new(),
            events: 0,
            events_out: Vec::new(),
        }
    }
}

/// An [`Event`]'s context, recognised as one already written by address or by value.
#[derive(Clone, Copy)]
struct EventContext<'a>(&'a Context);

impl PartialEq for EventContext<'_> {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.0, other.0) || self.0 == other.0
    }
}

/// Writes a context's fields (called once per distinct context of a batch).
type WriteContext<'a, 'f> = &'f dyn Fn(&mut Interner<'a>, &mut Vec<u8>);

/// What the writer reads of one event: an [`Event`] natively, a [`Record`] in the SDK.
trait Source<'a> {
    /// How a context is recognised as one already written.
    type ContextKey: Copy + PartialEq;
    fn event(&'a self, writer: &mut Writer<'a, Self::ContextKey>, sent_at: Option<i64>);
}

impl<'a, K: Copy + PartialEq> Writer<'a, K> {
    fn event(&mut self, source: &'a impl Source<'a, ContextKey = K>, sent_at: Option<i64>) {
        source.event(self, sent_at);
        self.events += 1;
    }

    /// The fields every event has, in the order the tables fill (the order of the pinned
    /// encodings in `core/tests/data`): the call's strings, the message id, the identity,
    /// the context (written by `context` when new); then the properties and traits, which
    /// the caller writes after.
    fn head(
        &mut self,
        call: RecordCall<'a>,
        message_id: &'a str,
        timestamp: Option<i64>,
        identity: (Option<&'a str>, Option<&'a str>),
        sent_at: Option<i64>,
        context: (K, WriteContext<'a, '_>),
    ) {
        let out = &mut self.events_out;
        let strings = &mut self.strings;
        match call {
            RecordCall::Page { category, name } => {
                varint(out, 0);
                opt_str(strings, out, category);
                opt_str(strings, out, name);
            }
            RecordCall::Screen(name) => {
                varint(out, 1);
                opt_str(strings, out, name);
            }
            RecordCall::Track(event) => {
                varint(out, 2);
                varint(out, strings.index(event).into());
            }
            RecordCall::Identify => varint(out, 3),
            RecordCall::Group(group_id) => {
                varint(out, 4);
                varint(out, strings.index(group_id).into());
            }
            RecordCall::Alias(previous_id) => {
                varint(out, 5);
                varint(out, strings.index(previous_id).into());
            }
        }
        match uuid_bytes(message_id) {
            Some(bytes) => {
                varint(out, 0);
                out.extend_from_slice(&bytes);
            }
            None => {
                varint(out, 1);
                varint(out, strings.index(message_id).into());
            }
        }
        let identity = (identity.0.map(|s| strings.index(s)), identity.1.map(|s| strings.index(s)));
        opt(out, timestamp, |out, t| zigzag(out, t.wrapping_sub(sent_at.unwrap_or(0))));
        let (key, write_context) = context;
        let context = match self.contexts.iter().position(|seen| *seen == key) {
            Some(index) => index,
            None => {
                write_context(strings, &mut self.contexts_out);
                self.contexts.push(key);
                self.contexts.len() - 1
            }
        };
        varint(out, context as u64);
        let identity = match self.identities.iter().position(|seen| *seen == identity) {
            Some(index) => index,
            None => {
                self.identities.push(identity);
                self.identities.len() - 1
            }
        };
        varint(out, identity as u64);
    }

    fn finish(self, sent_at: Option<i64>, dropped: u32) -> Vec<u8> {
        let strings_len: usize = self.strings.strings.iter().map(|s| s.len() + 2).sum();
        let mut body = Vec::with_capacity(
            16 + strings_len + self.contexts_out.len() + self.identities.len() * 4 + self.events_out.len(),
        );
        body.extend_from_slice(&MAGIC);
        body.push(VERSION);
        opt(&mut body, sent_at, zigzag);
        varint(&mut body, dropped.into());
        varint(&mut body, self.strings.strings.len() as u64);
        for s in &self.strings.strings {
            varint(&mut body, s.len() as u64);
            body.extend_from_slice(s.as_bytes());
        }
        varint(&mut body, self.contexts.len() as u64);
        body.extend_from_slice(&self.contexts_out);
        varint(&mut body, self.identities.len() as u64);
        for (anonymous_id, user_id) in &self.identities {
            for id in [anonymous_id, user_id] {
                opt(&mut body, *id, |out, index| varint(out, index.into()));
            }
        }
        varint(&mut body, self.events.into());
        body.extend_from_slice(&self.events_out);
        body
    }
}

impl<'a> Source<'a> for Event {
    type ContextKey = EventContext<'a>;

    fn event(&'a self, writer: &mut Writer<'a, EventContext<'a>>, sent_at: Option<i64>) {
        let context: &'a Context = &self.context;
        let write_context = |strings: &mut Interner<'a>, out: &mut Vec<u8>| {
            let (page, campaign) = (&context.page, &context.campaign);
            for s in [&page.url, &page.path, &page.title, &page.referrer, &page.search] {
                opt_str(strings, out, s.as_deref());
            }
            map_tokens(strings, out, &page.other);
            for s in [&campaign.name, &campaign.source, &campaign.medium, &campaign.term, &campaign.content] {
                opt_str(strings, out, s.as_deref());
            }
            map_tokens(strings, out, &campaign.other);
            for s in [&context.user_agent, &context.locale, &context.timezone] {
                opt_str(strings, out, s.as_deref());
            }
            screen(out, (context.screen.width, context.screen.height, context.screen.density));
            for s in [&context.library.name, &context.library.version] {
                opt_str(strings, out, s.as_deref());
            }
            map_tokens(strings, out, &context.other);
        };
        writer.head(
            RecordCall::of(&self.call),
            &self.message_id,
            self.timestamp.map(|t| t.0),
            (self.anonymous_id.as_deref(), self.user_id.as_deref()),
            sent_at,
            (EventContext(context), &write_context),
        );
        for map in [&self.properties, &self.traits] {
            map_tokens(&mut writer.strings, &mut writer.events_out, map);
        }
    }
}

impl<'a> Source<'a> for Record {
    /// A record's context block, compared by its bytes.
    type ContextKey = &'a [u8];

    /// Records are well formed: built by [`Record::new`], or checked by [`Record::from_bytes`].
    fn event(&'a self, writer: &mut Writer<'a, &'a [u8]>, sent_at: Option<i64>) {
        let Some(fields) = record::Reader::new(self.as_bytes()).record() else { return };
        let write_context = |strings: &mut Interner<'a>, out: &mut Vec<u8>| {
            let Some((context, _)) = record::Reader::new(fields.context).context() else { return };
            context.page.iter().for_each(|s| opt_str(strings, out, *s));
            record_tokens(strings, out, context.page_other);
            context.campaign.iter().for_each(|s| opt_str(strings, out, *s));
            record_tokens(strings, out, context.campaign_other);
            context.strings.iter().for_each(|s| opt_str(strings, out, *s));
            screen(out, context.screen);
            context.library.iter().for_each(|s| opt_str(strings, out, *s));
            record_tokens(strings, out, context.other);
        };
        let context = (fields.context, &write_context as &dyn Fn(&mut Interner<'a>, &mut Vec<u8>));
        writer.head(fields.call, fields.message_id, fields.timestamp, fields.identity, sent_at, context);
        for tokens in [fields.properties, fields.traits] {
            record_tokens(&mut writer.strings, &mut writer.events_out, tokens);
        }
    }
}

/// The batch's string table: each string once, in first-seen order, with an open-addressing
/// index by FNV-1a hash (each slot holds an index + 1, 0 for empty; kept at most half full).
/// Not a `BTreeMap`: this runs in the browser SDK, where a map type's code costs kilobytes.
#[derive(Default)]
struct Interner<'a> {
    strings: Vec<&'a str>,
    slots: Vec<Str>,
}

impl<'a> Interner<'a> {
    fn index(&mut self, s: &'a str) -> Str {
        if self.strings.len() * 2 >= self.slots.len() {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let mut slot = crate::hash::fnv1a(s.as_bytes()) as usize & mask;
        loop {
            match self.slots[slot] {
                0 => break,
                held if self.strings[held as usize - 1] == s => return held - 1,
                _ => slot = (slot + 1) & mask,
            }
        }
        self.strings.push(s);
        self.slots[slot] = self.strings.len() as Str;
        self.strings.len() as Str - 1
    }

    /// Doubles the index (at least 64 slots) and puts every string back in it.
    fn grow(&mut self) {
        let size = (self.slots.len() * 2).max(64);
        self.slots = vec![0; size];
        for (index, s) in self.strings.iter().enumerate() {
            let mut slot = crate::hash::fnv1a(s.as_bytes()) as usize & (size - 1);
            while self.slots[slot] != 0 {
                slot = (slot + 1) & (size - 1);
            }
            self.slots[slot] = index as Str + 1;
        }
    }
}

// postcard's encodings, written directly: unsigned integers as LEB128 varints, signed ones
// zig-zagged first, `f64` as 8 bytes little-endian, `Option` as 0 or 1 and the value, a
// sequence as its length and its items, an enum as its variant's index and its fields.

fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn zigzag(out: &mut Vec<u8>, value: i64) {
    varint(out, ((value << 1) ^ (value >> 63)) as u64);
}

fn opt<T>(out: &mut Vec<u8>, value: Option<T>, write: impl FnOnce(&mut Vec<u8>, T)) {
    match value {
        Some(value) => {
            out.push(1);
            write(out, value);
        }
        None => out.push(0),
    }
}

fn opt_str<'a>(strings: &mut Interner<'a>, out: &mut Vec<u8>, s: Option<&'a str>) {
    opt(out, s, |out, s| varint(out, strings.index(s).into()));
}

fn screen(out: &mut Vec<u8>, (width, height, density): (Option<u32>, Option<u32>, Option<f64>)) {
    for dimension in [width, height] {
        opt(out, dimension, |out, n| varint(out, n.into()));
    }
    opt(out, density, |out, x| out.extend_from_slice(&x.to_le_bytes()));
}

/// A [`Token`] (its variant index, then its field).
fn token<'a>(strings: &mut Interner<'a>, out: &mut Vec<u8>, token: record::Token<'a>) {
    use record::Token as T;
    match token {
        T::Null => varint(out, 0),
        T::False => varint(out, 1),
        T::True => varint(out, 2),
        T::Int(n) => {
            varint(out, 3);
            zigzag(out, n);
        }
        T::Float(x) => {
            varint(out, 4);
            out.extend_from_slice(&x.to_le_bytes());
        }
        T::Str(s) => {
            varint(out, 5);
            varint(out, strings.index(s).into());
        }
        T::Array(len) => {
            varint(out, 6);
            varint(out, len.into());
        }
        T::Object(len) => {
            varint(out, 7);
            varint(out, len.into());
        }
    }
}

/// A record's token stream as a `Vec<Token>`.
fn record_tokens<'a>(strings: &mut Interner<'a>, out: &mut Vec<u8>, (count, bytes): (u32, &'a [u8])) {
    varint(out, count.into());
    let mut reader = record::Reader::new(bytes);
    for _ in 0..count {
        let Some(next) = reader.token() else { return }; // checked when the record was read
        token(strings, out, next);
    }
}

/// A map as a `Vec<Token>`: its token count, then each key and value.
fn map_tokens<'a>(strings: &mut Interner<'a>, out: &mut Vec<u8>, map: &'a Map) {
    fn count(value: &Value) -> u64 {
        match value {
            Value::Array(items) => 1 + items.iter().map(count).sum::<u64>(),
            Value::Object(map) => 1 + map.values().map(|v| 1 + count(v)).sum::<u64>(),
            _ => 1,
        }
    }
    fn value<'a>(strings: &mut Interner<'a>, out: &mut Vec<u8>, v: &'a Value) {
        use record::Token as T;
        match v {
            Value::Null => token(strings, out, T::Null),
            Value::Bool(false) => token(strings, out, T::False),
            Value::Bool(true) => token(strings, out, T::True),
            Value::Int(n) => token(strings, out, T::Int(*n)),
            Value::Float(x) => token(strings, out, T::Float(*x)),
            Value::String(s) => token(strings, out, T::Str(s)),
            Value::Array(items) => {
                token(strings, out, T::Array(items.len() as u32));
                items.iter().for_each(|item| value(strings, out, item));
            }
            Value::Object(map) => {
                token(strings, out, T::Object(map.len() as u32));
                entries(strings, out, map);
            }
        }
    }
    fn entries<'a>(strings: &mut Interner<'a>, out: &mut Vec<u8>, map: &'a Map) {
        for (key, v) in map {
            token(strings, out, record::Token::Str(key));
            value(strings, out, v);
        }
    }
    varint(out, map.values().map(|v| 1 + count(v)).sum());
    entries(strings, out, map);
}

/// Resolves a decoded [`WireBatch`]'s references; every index is checked.
struct Reader<'a> {
    wire: &'a WireBatch<'a>,
    /// Each context, once read: the events that refer to it share it.
    contexts: Vec<Option<Arc<Context>>>,
}

impl Reader<'_> {
    fn string(&self, index: Str) -> Result<String, Error> {
        self.wire
            .strings
            .get(index as usize)
            .map(|s| (*s).to_owned())
            .ok_or_else(|| Error::new("", ErrorKind::BadReference { table: "strings", index }))
    }

    fn opt(&self, index: Option<Str>, path: &str) -> Result<Option<String>, Error> {
        index.map(|i| self.string(i)).transpose().map_err(|e| e.within(path))
    }

    fn event(&mut self, wire: &WireEvent) -> Result<Event, Error> {
        let call = match wire.call {
            WireCall::Page { category, name } => {
                Call::Page { category: self.opt(category, "category")?, name: self.opt(name, "name")? }
            }
            WireCall::Screen { name } => Call::Screen { name: self.opt(name, "name")? },
            WireCall::Track { event } => {
                Call::Track { event: self.string(event).map_err(|e| e.within("event"))? }
            }
            WireCall::Identify => Call::Identify,
            WireCall::Group { group_id } => {
                Call::Group { group_id: self.string(group_id).map_err(|e| e.within("groupId"))? }
            }
            WireCall::Alias { previous_id } => {
                Call::Alias { previous_id: self.string(previous_id).map_err(|e| e.within("previousId"))? }
            }
        };
        let message_id = self.message_id(wire.message_id)?;
        // `ok_or_else`, not `ok_or`: an error built for every event showed up in the profile.
        let identity = self.wire.identities.get(wire.identity as usize).ok_or_else(|| {
            Error::new("anonymousId", ErrorKind::BadReference { table: "identities", index: wire.identity })
        })?;
        let base = self.wire.sent_at.unwrap_or(0);
        Ok(Event {
            message_id,
            call,
            anonymous_id: self.opt(identity.anonymous_id, "anonymousId")?,
            user_id: self.opt(identity.user_id, "userId")?,
            timestamp: wire.timestamp.map(|delta| Timestamp(base.wrapping_add(delta))),
            sent_at: self.wire.sent_at.map(Timestamp),
            received_at: None,
            context: self.shared_context(wire.context).map_err(|e| e.within("context"))?,
            properties: self.map(&wire.properties).map_err(|e| e.within("properties"))?,
            traits: self.map(&wire.traits).map_err(|e| e.within("traits"))?,
        })
    }

    fn shared_context(&mut self, index: u32) -> Result<Arc<Context>, Error> {
        if let Some(Some(context)) = self.contexts.get(index as usize) {
            return Ok(Arc::clone(context));
        }
        let context = Arc::new(self.context(index)?);
        self.contexts[index as usize] = Some(Arc::clone(&context)); // in range: `context` checked it
        Ok(context)
    }

    fn message_id(&self, id: WireMessageId) -> Result<String, Error> {
        match id {
            WireMessageId::Uuid(bytes) => Ok(format_uuid(&bytes)),
            WireMessageId::Text(index) => self.string(index).map_err(|e| e.within("messageId")),
        }
    }

    fn context(&self, index: u32) -> Result<Context, Error> {
        let wire = self
            .wire
            .contexts
            .get(index as usize)
            .ok_or_else(|| Error::new("", ErrorKind::BadReference { table: "contexts", index }))?;
        let [url, path, title, referrer, search] = wire.page;
        let [name, source, medium, term, content] = wire.campaign;
        let mut other = self.map(&wire.other)?;
        other.remove("ip");
        Ok(Context {
            page: Page {
                url: self.opt(url, "page.url")?,
                path: self.opt(path, "page.path")?,
                title: self.opt(title, "page.title")?,
                referrer: self.opt(referrer, "page.referrer")?,
                search: self.opt(search, "page.search")?,
                other: self.map(&wire.page_other).map_err(|e| e.within("page"))?,
            },
            campaign: Campaign {
                name: self.opt(name, "campaign.name")?,
                source: self.opt(source, "campaign.source")?,
                medium: self.opt(medium, "campaign.medium")?,
                term: self.opt(term, "campaign.term")?,
                content: self.opt(content, "campaign.content")?,
                other: self.map(&wire.campaign_other).map_err(|e| e.within("campaign"))?,
            },
            user_agent: self.opt(wire.user_agent, "userAgent")?,
            locale: self.opt(wire.locale, "locale")?,
            timezone: self.opt(wire.timezone, "timezone")?,
            screen: Screen { width: wire.screen.0, height: wire.screen.1, density: wire.screen.2 },
            library: Library {
                name: self.opt(wire.library.0, "library.name")?,
                version: self.opt(wire.library.1, "library.version")?,
            },
            other,
        })
    }

    /// A whole token stream as a map (the top level of properties, traits, context).
    fn map(&self, tokens: &[Token]) -> Result<Map, Error> {
        let mut cursor = Cursor { tokens, position: 0 };
        let mut map = Map::new();
        while cursor.position < tokens.len() {
            self.entry(&mut cursor, &mut map, 1)?;
        }
        Ok(map)
    }

    /// Reads one key and its value into `map`, which sits at nesting level `depth`.
    fn entry(&self, cursor: &mut Cursor, map: &mut Map, depth: usize) -> Result<(), Error> {
        let key = match cursor.next()? {
            Token::Str(index) => self.string(*index)?,
            other => return Err(malformed(format!("expected a key, found {other:?}"))),
        };
        let value = self.value(cursor, depth).map_err(|e| e.within(&key_segment(&key)))?;
        match map.entry(key) {
            Entry::Vacant(slot) => {
                slot.insert(value);
                Ok(())
            }
            Entry::Occupied(slot) => Err(malformed(format!("duplicate key `{}`", key_segment(slot.key())))),
        }
    }

    /// Reads a value that is an element of a container at level `depth`. Refusing to go past
    /// [`MAX_DEPTH`] here bounds the recursion; `validate` still owns the limit itself.
    fn value(&self, cursor: &mut Cursor, depth: usize) -> Result<Value, Error> {
        let token = cursor.next()?;
        if matches!(token, Token::Array(_) | Token::Object(_)) && depth + 1 > MAX_DEPTH {
            return Err(Error::new("", ErrorKind::TooDeep));
        }
        Ok(match *token {
            Token::Null => Value::Null,
            Token::False => Value::Bool(false),
            Token::True => Value::Bool(true),
            Token::Int(n) => Value::Int(n),
            Token::Float(x) => Value::Float(x),
            Token::Str(index) => Value::String(self.string(index)?),
            Token::Array(len) => {
                cursor.check_remaining(len)?;
                let mut items = Vec::with_capacity(len as usize);
                for i in 0..len {
                    let item = self.value(cursor, depth + 1).map_err(|e| e.within(&format!("[{i}]")))?;
                    items.push(item);
                }
                Value::Array(items)
            }
            Token::Object(len) => {
                cursor.check_remaining(len)?;
                let mut map = Map::new();
                for _ in 0..len {
                    self.entry(cursor, &mut map, depth + 1)?;
                }
                Value::Object(map)
            }
        })
    }
}

struct Cursor<'a> {
    tokens: &'a [Token],
    position: usize,
}

impl<'a> Cursor<'a> {
    fn next(&mut self) -> Result<&'a Token, Error> {
        let token =
            self.tokens.get(self.position).ok_or_else(|| malformed("token stream ends early".into()))?;
        self.position += 1;
        Ok(token)
    }

    /// A container cannot hold more elements than tokens remain: refuse before allocating.
    fn check_remaining(&self, len: u32) -> Result<(), Error> {
        match len as usize > self.tokens.len() - self.position {
            true => Err(malformed(format!("container of {len} elements overruns its token stream"))),
            false => Ok(()),
        }
    }
}

fn malformed(detail: String) -> Error {
    Error::new("", ErrorKind::Malformed(detail))
}

/// The 16 bytes of a UUID in the form that travels as bytes (lowercase, hyphenated): formatting
/// them gives back exactly `text`. `None` for any other text.
pub fn uuid_bytes(text: &str) -> Option<[u8; 16]> {
    const HYPHENS: [usize; 4] = [8, 13, 18, 23];
    let b = text.as_bytes();
    if b.len() != 36 || HYPHENS.iter().any(|&i| b[i] != b'-') {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None, // uppercase travels as text, so decoding gives back exactly what was sent
    };
    let mut bytes = [0u8; 16];
    let mut at = 0;
    for byte in &mut bytes {
        if HYPHENS.contains(&at) {
            at += 1;
        }
        *byte = nibble(b[at])? << 4 | nibble(b[at + 1])?;
        at += 2;
    }
    Some(bytes)
}

fn format_uuid(bytes: &[u8; 16]) -> String {
    // Into a buffer, then one copy: `write!` per byte, then `String::push` per character,
    // showed up in the profiles (10 % of decoding a beacon natively).
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = [b'-'; 36];
    let mut at = 0;
    for (i, byte) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            at += 1; // past a hyphen
        }
        text[at] = DIGITS[usize::from(byte >> 4)];
        text[at + 1] = DIGITS[usize::from(byte & 0xf)];
        at += 2;
    }
    String::from_utf8(text.to_vec()).expect("hex digits and hyphens are ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_interned_once_each_in_first_seen_order() {
        let texts: Vec<String> = (0..1_000).map(|n| format!("s{n}")).collect();
        let mut strings = Interner::default();
        for round in 0..2 {
            for (n, text) in texts.iter().enumerate() {
                assert_eq!(strings.index(text), n as Str, "round {round}: {text}");
            }
        }
        assert_eq!(strings.strings, texts.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(strings.slots.len() >= 2 * texts.len(), "kept at most half full");
    }
}
