//! The browser SDK's rules, without a browser: everything `sdk/` decides, as plain functions
//! and state machines over values, so it is tested natively and shared byte for byte.
//!
//! - [`url`]: the parts of a URL the SDK reads (host, path, query, extension).
//! - [`campaign`]: UTM parameters and ad click ids from a landing URL; referrer channels.
//! - [`session`]: session id and count (30 minutes of inactivity or a new campaign).
//! - [`consent`]: consent categories and what each decision allows.
//! - [`queue`]: the persisted, bounded event queue: batches, acks, retries with backoff.
//! - [`capture`]: autocapture rules: link kinds, scroll milestones, element text.

pub mod campaign;
pub mod capture;
pub mod consent;
pub mod queue;
pub mod session;
pub mod url;
