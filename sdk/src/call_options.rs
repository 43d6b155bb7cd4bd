//! analytics.js's per-call options, the object after a call's arguments
//! (`track(event, properties, {context: {traits}, timestamp})`), as `sdk/js/api.js` hands
//! them over: `timestamp` and `messageId` are the event's own, `context` goes over the one
//! the SDK collected ([`ContextBlock::with`]). (`api.js` moves the other options
//! analytics-next puts into the context there, and sets `anonymousId` as `setAnonymousId`
//! does.) A source middleware's event is read back the same way, except that its `context`
//! is the whole context ([`ContextBlock::from_map`]).

use std::borrow::Cow;

use portrait_core::client::{concat, keeps_event_time};
use portrait_core::limits::MAX_ID_BYTES;
use portrait_core::record::ContextBlock;
use wasm_bindgen::prelude::*;

use crate::convert::{Props, field, id_text, is_plain_object, json_view};

/// What [`CallOptions::context`] reports, with the field's name as the detail.
pub const LEFT_OUT: &str = "a context field of the wrong type, with no place in the context, or larger than an event can carry, was left out";
/// What the SDK reports for a `timestamp` it cannot use (the event keeps its own time).
pub const NOT_A_TIME: &str =
    "timestamp must be a Date, an ISO 8601 text or milliseconds, at most 30 days old and before 2100";
/// What the SDK reports for a `messageId` the collector would refuse (the SDK makes one).
pub const ID_TOO_LONG: &str = "an id is at most 255 bytes long";

/// Problems to report: a message and its detail.
pub type Errors = Vec<(&'static str, JsValue)>;

#[derive(Default)]
pub struct CallOptions {
    /// Milliseconds since 1970; `Some(Err)` for a value that is no time.
    timestamp: Option<Result<i64, JsValue>>,
    message_id: Option<String>,
    context: Props,
    /// The context is the whole one (a middleware's event), not one over the SDK's.
    replaces: bool,
}

impl CallOptions {
    /// An event the SDK dates itself (`at`, milliseconds since 1970).
    pub fn at(at: i64) -> CallOptions {
        CallOptions { timestamp: Some(Ok(at)), ..CallOptions::default() }
    }

    /// A call's `{timestamp, messageId, context}` (anything else, or nothing, is no option).
    pub fn read(options: &JsValue) -> CallOptions {
        // The common call has none: nothing to read.
        if !options.is_object() {
            return CallOptions::default();
        }
        CallOptions {
            context: Props::from_object(&field(options, "context")),
            ..CallOptions::read_times(options)
        }
    }

    /// A middleware's event: as a call's options, its `context` the whole context when it
    /// `changed` and is still a plain object as JSON writes it (not a `Date`); else the
    /// captured one stays, and is not read: walking it costs more than the rest of the event.
    pub fn returned(event: &JsValue, changed: bool) -> CallOptions {
        let context = field(event, "context");
        let plain = is_plain_object(&json_view(&context));
        let replaces = changed && plain;
        let context = if replaces { Props::from_object(&context) } else { Props::default() };
        CallOptions { replaces, context, ..CallOptions::read_times(event) }
    }

    /// The `timestamp` and `messageId` of `options`, no context.
    fn read_times(options: &JsValue) -> CallOptions {
        CallOptions {
            timestamp: time_of(&field(options, "timestamp")),
            message_id: id_text(&field(options, "messageId")),
            ..CallOptions::default()
        }
    }

    /// The event's id: the call's `messageId`, unless the collector would refuse it
    /// (reported), else `None`.
    pub fn message_id(&self, errors: &mut Errors) -> Option<String> {
        checked_id(self.message_id.as_deref()?, errors).map(str::to_owned)
    }

    /// The event's time: the call's `timestamp` if the collector keeps it, else `fallback`
    /// (a `timestamp` it cannot use is reported).
    pub fn time_or(&self, fallback: i64, now: i64, errors: &mut Errors) -> i64 {
        match &self.timestamp {
            Some(Ok(at)) if keeps_event_time(*at, now) => *at,
            Some(Ok(at)) => {
                errors.push((NOT_A_TIME, js_sys::Date::new(&(*at as f64).into()).into()));
                fallback
            }
            Some(Err(value)) => {
                errors.push((NOT_A_TIME, value.clone()));
                fallback
            }
            None => fallback,
        }
    }

    /// The event's context: `block` with the call's over it, or the middleware's whole
    /// context (the fields left out for their type reported, named as in the context:
    /// `page.url`).
    pub fn context<'a>(&self, block: &'a ContextBlock, errors: &mut Errors) -> Cow<'a, ContextBlock> {
        if self.context.is_cut() {
            errors.push((LEFT_OUT, "context".into()));
            return Cow::Borrowed(block);
        }
        let overlaid = match (self.replaces, self.context.tokens.is_empty()) {
            (true, _) => ContextBlock::from_map(&self.context.tokens),
            (false, true) => return Cow::Borrowed(block),
            (false, false) => block.with(&self.context.tokens),
        };
        for (section, key) in overlaid.left_out {
            let name = if key.is_empty() { section.to_owned() } else { concat(&[section, ".", key]) };
            errors.push((LEFT_OUT, name.into()));
        }
        Cow::Owned(overlaid.block)
    }
}

/// `id` unless the collector would refuse it (longer than [`MAX_ID_BYTES`]: reported).
pub fn checked_id<'a>(id: &'a str, errors: &mut Errors) -> Option<&'a str> {
    if !id_fits(id) {
        errors.push((ID_TOO_LONG, id.into()));
        return None;
    }
    Some(id)
}

/// Whether the collector keeps events with this id (at most `MAX_ID_BYTES`).
pub fn id_fits(id: &str) -> bool {
    id.len() <= MAX_ID_BYTES
}

/// A time as `new Date(value)` reads what JSON would write of it (a date, an ISO 8601 text,
/// milliseconds; a moment or Day.js object by its `toJSON`); `None` for `undefined` and
/// `null`.
fn time_of(value: &JsValue) -> Option<Result<i64, JsValue>> {
    if value.is_undefined() || value.is_null() {
        return None;
    }
    let json = json_view(value);
    let ms = match json.is_string() || json.as_f64().is_some() {
        true => js_sys::Date::new(&json).get_time(),
        false => f64::NAN,
    };
    Some(match ms.is_finite() {
        true => Ok(ms as i64),
        false => Err(value.clone()),
    })
}
