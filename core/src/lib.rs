//! Portrait's core: every rule the SDK and the collector share, with no I/O and no clock.
//!
//! - [`event`]: the Segment-spec event model ([`Event`], [`Call`], [`Context`]).
//! - [`value`]: the JSON-like [`Value`] of properties and traits.
//! - [`beacon`] and [`segment`]: the two wire formats, both decoding to [`Event`].
//! - [`validate`](mod@validate) and [`limits`]: what an acceptable event is.
//! - [`error`]: typed rejections with stable codes and paths.
//! - [`profile`]: one person's convergent profile state: apply events, merge profiles.
//! - [`identity`]: identifiers, placeholders, and when two profiles may become one.
//! - [`config`]: workspaces, sources, keys and SDK settings from TOML, with located errors.
//! - [`routing`]: how a request's events are split into one beacon per person.
//! - [`tags`]: factual, analytical and predictive tags of a profile, with their reasons.
//! - [`view`]: the profile and its tags as the admin API shows them.
//! - [`audience`] and [`webhook`]: audience rules, and the webhooks profile changes fire.
//! - [`client`]: the browser SDK's rules: queue, consent, sessions, campaigns, autocapture.
//! - [`dedupe`]: the message ids a profile has applied.
//! - [`enrich`]: what the collector adds: corrected times, geo, device, bot verdict.
//!
//! See ARCHITECTURE.md at the repository root for the map and the invariants.

pub mod account;
pub mod audience;
pub mod beacon;
pub mod changes;
pub mod client;
pub mod config;
pub mod dedupe;
pub mod enrich;
pub mod error;
pub mod event;
pub mod firmographics;
pub mod hash;
pub mod identity;
pub mod limits;
pub mod predict;
pub mod profile;
pub mod record;
pub mod routing;
pub mod segment;
pub mod tags;
pub mod time;
pub mod topics;
pub mod validate;
pub mod value;
pub mod view;
pub mod webhook;

pub use error::{Error, ErrorKind};
pub use event::{Call, Campaign, Context, Event, Library, Page, Screen};
pub use time::Timestamp;
pub use value::{Map, Value};

/// The result of decoding a batch in either format: the valid events, and each invalid one
/// by its index. Policy: one bad event does not sink its batch; the collector stores the
/// valid events and answers with the rejected indices and reasons.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Decoded {
    pub events: Vec<Event>,
    pub rejected: Vec<Rejected>,
    /// The `writeKey` field of a Segment body, if it had one (beacons carry it in the URL).
    pub write_key: Option<String>,
    /// Events the sender's queue dropped before this batch (beacon only).
    pub dropped: u32,
}

impl Decoded {
    /// The batch index of each event in `events`, in order (the indices not rejected).
    pub fn accepted_indices(&self) -> Vec<usize> {
        let total = self.events.len() + self.rejected.len();
        let rejected: std::collections::BTreeSet<usize> = self.rejected.iter().map(|r| r.index).collect();
        (0..total).filter(|i| !rejected.contains(i)).collect()
    }
}

/// One event of a batch that failed decoding or validation.
#[derive(Clone, Debug, PartialEq)]
pub struct Rejected {
    pub index: usize,
    /// The path starts with `batch[index]`.
    pub error: Error,
}

impl Rejected {
    pub fn new(index: usize, error: Error) -> Rejected {
        Rejected { index, error: error.within(&format!("batch[{index}]")) }
    }

    /// The same rejection for the event's index in another batch (when a batch was split).
    pub fn renumber(mut self, index: usize) -> Rejected {
        let old = format!("batch[{}]", self.index);
        if let Some(rest) = self.error.path.strip_prefix(&old) {
            self.error.path = format!("batch[{index}]{rest}");
        }
        self.index = index;
        self
    }
}
