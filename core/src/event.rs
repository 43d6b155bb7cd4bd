//! The event model: Segment's spec calls, as one Rust type that both wire formats decode to.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;
use crate::value::Map;

/// One call of the Segment spec. Field names follow the spec (`messageId` → `message_id`).
///
/// The serde derives are Portrait's compact internal form (postcard, between the Worker and its
/// Durable Objects and in storage). Segment JSON is [`crate::segment::Json`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Unique per event; retries reuse it, which is what makes them harmless downstream.
    pub message_id: String,
    pub call: Call,
    pub anonymous_id: Option<String>,
    pub user_id: Option<String>,
    /// When it happened, by the sender's clock. Absent only until the collector fills it in.
    pub timestamp: Option<Timestamp>,
    /// When the sender sent it, by the sender's clock (for clock-skew correction).
    pub sent_at: Option<Timestamp>,
    /// When the collector received it; never taken from the wire.
    pub received_at: Option<Timestamp>,
    /// Shared by the events of a batch that carry the same context (the beacon sends each
    /// distinct context once); [`Event::context_mut`] copies it on write.
    pub context: Arc<Context>,
    /// Set for `track`, `page` and `screen`; empty otherwise.
    pub properties: Map,
    /// Set for `identify` and `group`; empty otherwise.
    pub traits: Map,
}

impl Event {
    /// An event with the given id and call and every other field empty.
    pub fn new(message_id: impl Into<String>, call: Call) -> Event {
        Event {
            message_id: message_id.into(),
            call,
            anonymous_id: None,
            user_id: None,
            timestamp: None,
            sent_at: None,
            received_at: None,
            context: Arc::default(),
            properties: Map::new(),
            traits: Map::new(),
        }
    }

    /// The context to change: this event's own copy, made if it shares one.
    pub fn context_mut(&mut self) -> &mut Context {
        Arc::make_mut(&mut self.context)
    }
}

/// What kind of call, with the fields only that kind has.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Call {
    Page {
        category: Option<String>,
        name: Option<String>,
    },
    /// A mobile screen view: handled like a page view.
    Screen {
        name: Option<String>,
    },
    Track {
        event: String,
    },
    Identify,
    Group {
        group_id: String,
    },
    Alias {
        previous_id: String,
    },
}

impl Call {
    /// The Segment `type` field.
    pub fn type_name(&self) -> &'static str {
        crate::record::Call::of(self).type_name()
    }
}

/// Segment's `context`, with the fields Portrait reads typed and everything else kept in
/// `other`. The client IP is never part of it: decoders drop `context.ip`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Context {
    pub page: Page,
    pub campaign: Campaign,
    pub user_agent: Option<String>,
    pub locale: Option<String>,
    pub timezone: Option<String>,
    pub screen: Screen,
    pub library: Library,
    pub other: Map,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Page {
    pub url: Option<String>,
    pub path: Option<String>,
    pub title: Option<String>,
    pub referrer: Option<String>,
    pub search: Option<String>,
    pub other: Map,
}

/// UTM parameters; ad click ids (`gclid`, `fbclid`, …) and any other keys go in `other`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Campaign {
    pub name: Option<String>,
    pub source: Option<String>,
    pub medium: Option<String>,
    pub term: Option<String>,
    pub content: Option<String>,
    pub other: Map,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Screen {
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub density: Option<f64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Library {
    pub name: Option<String>,
    pub version: Option<String>,
}
