//! Limits enforcement, shared by both decoders: whatever format an event arrived in, it is
//! checked by [`validate`] before anyone sees it.

use crate::error::{Error, ErrorKind};
use crate::event::{Call, Context, Event};
use crate::limits::*;
use crate::time::Timestamp;
use crate::value::{Map, Value};

/// Checks one event against every limit in [`crate::limits`]. Paths in the error are relative
/// to the event (`properties.items[2]`); batch decoders prefix them with `batch[i]`.
pub fn validate(event: &Event) -> Result<(), Error> {
    validate_measured(event, crate::segment::json_len)
}

/// [`validate`], with the event's JSON length computed by `json_len` (only if the other
/// checks pass, so a hostile event is rejected before it is measured).
pub(crate) fn validate_measured(event: &Event, json_len: impl FnOnce(&Event) -> usize) -> Result<(), Error> {
    check_required_id("messageId", &event.message_id)?;
    check_optional_id("anonymousId", &event.anonymous_id)?;
    check_optional_id("userId", &event.user_id)?;
    let has = |id: &Option<String>| id.as_deref().is_some_and(|s| !s.is_empty());
    if !has(&event.anonymous_id) && !has(&event.user_id) {
        return Err(Error::new("", ErrorKind::NoIdentity));
    }
    match &event.call {
        Call::Page { category, name } => {
            check_optional_id("category", category)?;
            check_optional_id("name", name)?;
        }
        Call::Screen { name } => check_optional_id("name", name)?,
        Call::Track { event } => check_required_id("event", event)?,
        Call::Identify => {}
        Call::Group { group_id } => check_required_id("groupId", group_id)?,
        Call::Alias { previous_id } => check_required_id("previousId", previous_id)?,
    }
    check_time("timestamp", event.timestamp)?;
    check_time("sentAt", event.sent_at)?;
    check_time("receivedAt", event.received_at)?;
    check_context(&event.context).map_err(|e| e.within("context"))?;
    check_map(&event.properties, 1).map_err(|e| e.within("properties"))?;
    check_map(&event.traits, 1).map_err(|e| e.within("traits"))?;
    let size = json_len(event);
    if size > MAX_EVENT_BYTES {
        return Err(Error::new("", ErrorKind::EventTooLarge { size }));
    }
    Ok(())
}

fn check_required_id(field: &str, id: &str) -> Result<(), Error> {
    if id.is_empty() {
        return Err(Error::new(field, ErrorKind::Missing));
    }
    check_id_len(field, id)
}

fn check_optional_id(field: &str, id: &Option<String>) -> Result<(), Error> {
    id.as_deref().map_or(Ok(()), |id| check_id_len(field, id))
}

fn check_id_len(field: &str, id: &str) -> Result<(), Error> {
    match id.len() > MAX_ID_BYTES {
        true => Err(Error::new(field, ErrorKind::IdTooLong { len: id.len() })),
        false => Ok(()),
    }
}

fn check_time(field: &str, time: Option<Timestamp>) -> Result<(), Error> {
    match time {
        Some(Timestamp(ms)) if !(MIN_TIMESTAMP_MS..MAX_TIMESTAMP_MS).contains(&ms) => {
            Err(Error::new(field, ErrorKind::TimestampOutOfRange))
        }
        _ => Ok(()),
    }
}

fn check_context(context: &Context) -> Result<(), Error> {
    let page = &context.page;
    let campaign = &context.campaign;
    let strings = [
        ("page.url", &page.url),
        ("page.path", &page.path),
        ("page.title", &page.title),
        ("page.referrer", &page.referrer),
        ("page.search", &page.search),
        ("campaign.name", &campaign.name),
        ("campaign.source", &campaign.source),
        ("campaign.medium", &campaign.medium),
        ("campaign.term", &campaign.term),
        ("campaign.content", &campaign.content),
        ("userAgent", &context.user_agent),
        ("locale", &context.locale),
        ("timezone", &context.timezone),
        ("library.name", &context.library.name),
        ("library.version", &context.library.version),
    ];
    for (path, value) in strings {
        if let Some(s) = value {
            check_string(s).map_err(|e| e.within(path))?;
        }
    }
    if let Some(density) = context.screen.density {
        check_float(density).map_err(|e| e.within("screen.density"))?;
    }
    check_map(&page.other, 2).map_err(|e| e.within("page"))?;
    check_map(&campaign.other, 2).map_err(|e| e.within("campaign"))?;
    check_map(&context.other, 1)
}

/// `map` sits at nesting level `depth` (properties, traits and context are level 1).
fn check_map(map: &Map, depth: usize) -> Result<(), Error> {
    for (key, value) in map {
        if key.len() > MAX_KEY_BYTES {
            return Err(Error::new(key_segment(key), ErrorKind::KeyTooLong { len: key.len() }));
        }
        check_value(value, depth).map_err(|e| e.within(&key_segment(key)))?;
    }
    Ok(())
}

/// `value` is an element of a container at level `depth`.
fn check_value(value: &Value, depth: usize) -> Result<(), Error> {
    let is_container = matches!(value, Value::Array(_) | Value::Object(_));
    if is_container && depth + 1 > MAX_DEPTH {
        return Err(Error::new("", ErrorKind::TooDeep));
    }
    match value {
        Value::String(s) => check_string(s),
        Value::Float(x) => check_float(*x),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, item)| check_value(item, depth + 1).map_err(|e| e.within(&format!("[{i}]")))),
        Value::Object(map) => check_map(map, depth + 1),
        Value::Null | Value::Bool(_) | Value::Int(_) => Ok(()),
    }
}

fn check_string(s: &str) -> Result<(), Error> {
    match s.len() > MAX_STRING_BYTES {
        true => Err(Error::new("", ErrorKind::StringTooLong { len: s.len() })),
        false => Ok(()),
    }
}

fn check_float(x: f64) -> Result<(), Error> {
    match x.is_finite() {
        true => Ok(()),
        false => Err(Error::new("", ErrorKind::NonFiniteNumber)),
    }
}

/// A key as a path segment, shortened so a hostile 10 KB key cannot bloat the error.
pub(crate) fn key_segment(key: &str) -> String {
    const SHOWN: usize = 64;
    match key.char_indices().nth(SHOWN) {
        Some((cut, _)) => format!("{}…", &key[..cut]),
        None => key.to_owned(),
    }
}
