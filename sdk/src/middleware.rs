//! Source middleware (analytics-next's `addSourceMiddleware`): while the page has some, each
//! event, autocaptured ones included, goes to JavaScript as an object before it is recorded;
//! the middleware may change it, and what it passes on comes back through `Sdk::resume`.
//!
//! What is read back: the names (`event`, `name`, `category`), `properties`, `traits`, the ids
//! (`userId`, `anonymousId`, `groupId`, `previousId`), `messageId`, `timestamp` and
//! `context`. The middleware sees the whole context (the call's options applied), and what it
//! passes on is the event's context (`ContextBlock::from_map`): a key it deleted is gone. An
//! event whose context comes back unchanged, or not as an object, keeps the one it was
//! captured with (kept here by message id, with its time).
//!
//! Cost: the context goes to JavaScript as JSON text, made once per context (a page view
//! and session, or a call's own), which `api.js` parses for each event and compares with
//! what comes back; only a changed context is read back field by field.

use std::sync::atomic::{AtomicBool, Ordering};

use js_sys::{Object, Reflect};
use portrait_core::record::{Call, ContextBlock, Tokens};
use wasm_bindgen::prelude::*;

use crate::call_options::CallOptions;
use crate::convert::{Props, id_text, js_object, string_field};

/// Events handed to the middleware and not back yet that keep their time and context: a
/// middleware that drops events never answers for them, so the oldest are forgotten (an event
/// that comes back after that takes the time and context of its return).
const MAX_AWAITED: usize = 256;

/// An event the middleware has: when it was captured, with which context.
pub struct Awaited {
    message_id: String,
    pub at: i64,
    pub context: ContextBlock,
    /// Taken back while the middleware had it ([`Middleware::withdraw`]): when it comes
    /// back, it goes no further.
    pub withdrawn: bool,
}

/// Whether the page has source middleware. (Outside the SDK's state, which may be borrowed
/// when the page adds one, from a getter the SDK is reading; the module is single-threaded,
/// and an atomic is the plain way to a mutable static.)
static ACTIVE: AtomicBool = AtomicBool::new(false);

pub fn set_active(on: bool) {
    ACTIVE.store(on, Ordering::Relaxed);
}

pub fn active() -> bool {
    ACTIVE.load(Ordering::Relaxed)
}

/// The event as the middleware sees it (analytics.js's shape): `{type, messageId, timestamp,
/// anonymousId, userId, properties | traits, event | name, category | groupId | previousId,
/// context}`, new objects (nothing of the page's or the SDK's is shared), but for `context`,
/// which is JSON text ([`Middleware::context_text`]) that `api.js` parses.
pub fn event_object(
    call: &Call,
    message_id: &str,
    at: i64,
    identity: (&str, Option<&str>),
    (properties, traits): (&Tokens, &Tokens),
    context: JsValue,
) -> Object {
    let event = Object::new();
    let set = |key: &str, value: JsValue| _ = Reflect::set(&event, &key.into(), &value);
    let text = |value: Option<&str>| value.map_or(JsValue::NULL, JsValue::from);
    let type_name = call.type_name();
    set("type", type_name.into());
    set("messageId", message_id.into());
    set("timestamp", js_sys::Date::new(&(at as f64).into()).into());
    set("anonymousId", identity.0.into());
    set("userId", text(identity.1));
    if let Some(key) = Call::name_key(type_name) {
        set(key, text(call.name()));
    }
    if let Call::Page { category, .. } = call {
        set("category", text(*category));
    }
    match call {
        Call::Identify | Call::Group(_) => set("traits", js_object(traits).into()),
        _ => set("properties", js_object(properties).into()),
    }
    set("context", context);
    event
}

/// What the middleware passed on, read back: its call, properties, traits, ids, and as
/// options its message id, time and context.
pub struct Returned {
    pub type_name: String,
    /// `event` (track), `name` (page, screen), `groupId`, `previousId`.
    pub name: Option<String>,
    pub category: Option<String>,
    pub options: CallOptions,
    pub anonymous_id: Option<String>,
    pub user_id: Option<String>,
    pub properties: Props,
    pub traits: Props,
}

impl Returned {
    /// `event`, as the middleware passed it on; `context_changed`: whether its context is
    /// no longer what the SDK gave (else the one the event was captured with stays).
    pub fn read(event: &JsValue, context_changed: bool) -> Returned {
        let field = |key: &str| crate::convert::field(event, key);
        let type_name = string_field(&[event], "type").unwrap_or_default();
        // A string (an empty event name too, as without a middleware), or an integer id.
        let name = Call::name_key(&type_name).and_then(|key| {
            let value = field(key);
            value.as_string().or_else(|| id_text(&value))
        });
        Returned {
            name,
            category: string_field(&[event], "category"),
            options: CallOptions::returned(event, context_changed),
            anonymous_id: id_text(&field("anonymousId")),
            user_id: id_text(&field("userId")),
            properties: Props::from_object(&field("properties")),
            traits: Props::from_object(&field("traits")),
            type_name,
        }
    }

    /// The call it describes; `None` for a type that is not Segment's, or a name it needs and
    /// lacks (a track without its event, a group without its id).
    pub fn call(&self) -> Option<Call<'_>> {
        Call::parse(&self.type_name, self.name.as_deref(), self.category.as_deref())
    }
}

/// The SDK's side of the page's middleware: the events it has, by message id (bounded,
/// [`MAX_AWAITED`]), and the last context it was given, as JSON text.
#[derive(Default)]
pub struct Middleware {
    awaited: Vec<Awaited>,
    context_text: Option<(ContextBlock, JsValue)>,
}

impl Middleware {
    pub fn push(&mut self, message_id: &str, at: i64, context: &ContextBlock) {
        if self.awaited.len() >= MAX_AWAITED {
            self.awaited.remove(0);
        }
        let message_id = message_id.to_owned();
        self.awaited.push(Awaited { message_id, at, context: context.clone(), withdrawn: false });
    }

    /// The event with this id, if it is awaited.
    pub fn take(&mut self, message_id: &str) -> Option<Awaited> {
        let index = self.awaited.iter().position(|awaited| awaited.message_id == message_id)?;
        Some(self.awaited.remove(index))
    }

    /// Takes back the awaited events whose message ids `unwanted` picks (a capture that late
    /// settings switched off): what the middleware passes on of them is not recorded.
    pub fn withdraw(&mut self, unwanted: impl Fn(&str) -> bool) {
        for awaited in self.awaited.iter_mut().filter(|awaited| unwanted(&awaited.message_id)) {
            awaited.withdrawn = true;
        }
    }

    /// `context` as JSON text in Segment's shape (`ContextBlock::to_map`), made once for each
    /// context: the events of a page view share it.
    pub fn context_text(&mut self, context: &ContextBlock) -> JsValue {
        match &self.context_text {
            Some((made_for, text)) if made_for == context => text.clone(),
            _ => {
                let object = js_object(&context.to_map());
                // (JSON writes what `js_object` makes; "{}" would keep the captured context.)
                let text = js_sys::JSON::stringify(&object).map_or_else(|_| "{}".into(), JsValue::from);
                self.context_text = Some((context.clone(), text.clone()));
                text
            }
        }
    }
}
