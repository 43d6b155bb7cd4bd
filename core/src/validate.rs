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
    match (check_time("timestamp", event.timestamp), check_time("sentAt", event.sent_at)) {
        // Both outside the plausible years: the sender's clock is off (a device reset to
        // 1970), and the timestamp is dated by the correction for that clock
        // (`enrich::correct_time`, which refuses a result too old), not refused here.
        (Err(_), Err(_)) => {}
        (timestamp, sent_at) => {
            timestamp?;
            sent_at?;
        }
    }
    check_time("receivedAt", event.received_at)?;
    check_context(&event.context).map_err(|e| e.within("context"))?;
    check_map(&event.properties, 1).map_err(|e| e.within("properties"))?;
    check_map(&event.traits, 1).map_err(|e| e.within("traits"))?;
    // Measuring is a JSON serialisation; an event whose size bound is under the limit skips it.
    if json_len_bound(event) <= MAX_EVENT_BYTES {
        return Ok(());
    }
    let size = json_len(event);
    if size > MAX_EVENT_BYTES {
        return Err(Error::new("", ErrorKind::EventTooLarge { size }));
    }
    Ok(())
}

/// An upper bound of the event's canonical JSON length, from lengths alone: every string
/// byte escaped as `\u00XX` (6 bytes), every number at its longest, and generous room for
/// the fixed keys and punctuation.
fn json_len_bound(event: &Event) -> usize {
    const FIXED: usize = 1024; // ~30 fixed keys with quotes, colons, commas and braces
    const NUMBER: usize = 32; // -9223372036854775808, a float in shortest form or a quoted time, plus separators
    fn text(s: &str) -> usize {
        6 * s.len() + 4 // quotes, colon or comma
    }
    fn value(v: &Value) -> usize {
        match v {
            Value::Null | Value::Bool(_) => 7,
            Value::Int(_) | Value::Float(_) => NUMBER,
            Value::String(s) => text(s),
            Value::Array(items) => 3 + items.iter().map(value).sum::<usize>(),
            Value::Object(map) => 3 + map_bound(map),
        }
    }
    fn map_bound(map: &Map) -> usize {
        map.iter().map(|(k, v)| text(k) + value(v)).sum()
    }
    fn opt(s: &Option<String>) -> usize {
        s.as_deref().map_or(0, text)
    }
    let c = &event.context;
    let call = match &event.call {
        Call::Page { category, name } => opt(category) + opt(name),
        Call::Screen { name } => opt(name),
        Call::Track { event } => text(event),
        Call::Group { group_id: id } | Call::Alias { previous_id: id } => text(id),
        Call::Identify => 0,
    };
    let strings = [
        &c.page.url,
        &c.page.path,
        &c.page.title,
        &c.page.referrer,
        &c.page.search,
        &c.campaign.name,
        &c.campaign.source,
        &c.campaign.medium,
        &c.campaign.term,
        &c.campaign.content,
        &c.user_agent,
        &c.locale,
        &c.timezone,
        &c.library.name,
        &c.library.version,
        &event.anonymous_id,
        &event.user_id,
    ];
    FIXED
        + text(&event.message_id)
        + call
        + strings.iter().map(|s| opt(s)).sum::<usize>()
        + 3 * NUMBER // screen
        + 3 * NUMBER // timestamp, sentAt, receivedAt
        + [&event.properties, &event.traits, &c.other, &c.page.other, &c.campaign.other]
            .iter()
            .map(|m| map_bound(m))
            .sum::<usize>()
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
        if key == "__proto__" {
            return Err(Error::new(key_segment(key), ErrorKind::ForbiddenKey));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Timestamp;

    /// The bound must never be below the real length, or oversized events would pass.
    #[test]
    fn the_size_bound_is_never_below_the_size() {
        for nasty in ["\u{1}\"\\\n\t\u{1f}é漢\u{7f}", "a", ""] {
            check_bound(nasty);
        }
    }

    fn check_bound(nasty: &str) {
        let calls = [
            Call::Page { category: Some(nasty.into()), name: Some(nasty.into()) },
            Call::Screen { name: Some(nasty.into()) },
            Call::Track { event: nasty.into() },
            Call::Identify,
            Call::Group { group_id: nasty.into() },
            Call::Alias { previous_id: nasty.into() },
        ];
        for call in calls {
            let mut event = Event::new(nasty, call);
            event.anonymous_id = Some(nasty.into());
            event.user_id = Some(nasty.into());
            for t in [&mut event.timestamp, &mut event.sent_at, &mut event.received_at] {
                *t = Some(Timestamp(4_102_444_799_999));
            }
            let mut context = Context::default();
            let c = &mut context;
            for s in [
                &mut c.page.url,
                &mut c.page.path,
                &mut c.page.title,
                &mut c.page.referrer,
                &mut c.page.search,
                &mut c.campaign.name,
                &mut c.campaign.source,
                &mut c.campaign.medium,
                &mut c.campaign.term,
                &mut c.campaign.content,
                &mut c.user_agent,
                &mut c.locale,
                &mut c.timezone,
                &mut c.library.name,
                &mut c.library.version,
            ] {
                *s = Some(nasty.into());
            }
            c.screen = crate::event::Screen {
                width: Some(u32::MAX),
                height: Some(u32::MAX),
                density: Some(-1.7976931348623157e308),
            };
            let values = [
                Value::Null,
                Value::Bool(false),
                Value::Int(i64::MIN),
                Value::Float(-2.2250738585072014e-308),
                Value::String(nasty.into()),
                Value::Array(vec![Value::Array(vec![]), Value::Object(Map::new())]),
            ];
            let map: Map =
                values.iter().enumerate().map(|(i, v)| (format!("{nasty}{i}"), v.clone())).collect();
            for m in [
                &mut event.properties,
                &mut event.traits,
                &mut c.other,
                &mut c.page.other,
                &mut c.campaign.other,
            ] {
                *m = map.clone();
                m.insert("nested".into(), Value::Object(map.clone()));
            }
            event.context = context.into();
            let (bound, size) = (json_len_bound(&event), crate::segment::json_len(&event));
            assert!(bound >= size, "{:?}: bound {bound} < size {size}", event.call);
        }
    }
}
