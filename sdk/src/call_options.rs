//! analytics.js's per-call options, the object after a call's arguments
//! (`track(event, properties, {context: {ip}, timestamp})`), as `sdk/js/api.js` hands them
//! over: `timestamp` and `messageId` are the event's own, `context` goes over the one the SDK
//! collected ([`ContextBlock::with`]). (`api.js` moves the other options analytics-next puts
//! into the context there, and sets `anonymousId` as `setAnonymousId` does.) A source
//! middleware's event is read back the same way.

use std::borrow::Cow;

use portrait_core::record::ContextBlock;
use wasm_bindgen::prelude::*;

use crate::convert::{Props, field, id_text};

/// What [`CallOptions::context`] reports, with the field's name as the detail.
pub const LEFT_OUT: &str = "a context field of the wrong type was left out";
/// What the SDK reports for a `timestamp` that is not a time (the event keeps its own).
pub const NOT_A_TIME: &str = "timestamp must be a Date, an ISO 8601 text or milliseconds since 1970";

#[derive(Default)]
pub struct CallOptions {
    /// Milliseconds since 1970: `Some(Err)` for a value that is no time.
    pub timestamp: Option<Result<i64, JsValue>>,
    pub message_id: Option<String>,
    pub context: Props,
}

impl CallOptions {
    /// Reads `{timestamp, messageId, context}` (anything else, or nothing, is no option).
    pub fn read(options: &JsValue) -> CallOptions {
        CallOptions::read_with(options, Props::from_object)
    }

    /// [`CallOptions::read`], reading the context with `read_context`.
    pub fn read_with(options: &JsValue, read_context: fn(&JsValue) -> Props) -> CallOptions {
        CallOptions {
            timestamp: time_of(&field(options, "timestamp")),
            message_id: id_text(&field(options, "messageId")),
            context: read_context(&field(options, "context")),
        }
    }

    /// The event's time: the call's `timestamp`, else `fallback` (a `timestamp` that is no
    /// time is pushed to `errors`).
    pub fn time_or(&self, fallback: i64, errors: &mut Errors) -> i64 {
        match &self.timestamp {
            Some(Ok(at)) => *at,
            Some(Err(value)) => {
                errors.push((NOT_A_TIME, value.clone()));
                fallback
            }
            None => fallback,
        }
    }

    /// The event's context: `block` with the call's over it (the fields left out for their
    /// type pushed to `errors`, named as in the context: `page.url`).
    pub fn context<'a>(&self, block: &'a ContextBlock, errors: &mut Errors) -> Cow<'a, ContextBlock> {
        if self.context.tokens.is_empty() {
            return Cow::Borrowed(block);
        }
        let overlaid = block.with(&self.context.tokens);
        for (section, key) in overlaid.left_out {
            let name = if key.is_empty() { section.to_owned() } else { [section, ".", key].concat() };
            errors.push((LEFT_OUT, name.into()));
        }
        Cow::Owned(overlaid.block)
    }
}

/// Problems to report: a message and its detail.
pub type Errors = Vec<(&'static str, JsValue)>;

/// A time as `new Date(value)` reads it (a date, an ISO 8601 text, milliseconds); `None` for
/// `undefined` and `null`.
fn time_of(value: &JsValue) -> Option<Result<i64, JsValue>> {
    if value.is_undefined() || value.is_null() {
        return None;
    }
    let is_time = value.is_string() || value.as_f64().is_some() || value.is_instance_of::<js_sys::Date>();
    let ms = if is_time { js_sys::Date::new(value).get_time() } else { f64::NAN };
    Some(match ms.is_finite() {
        true => Ok(ms as i64),
        false => Err(value.clone()),
    })
}
