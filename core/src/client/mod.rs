//! The browser SDK's rules, without a browser: everything `sdk/` decides, as plain functions
//! and state machines over values, so it is tested natively and shared byte for byte.
//!
//! - [`url`]: the parts of a URL the SDK reads (host, path, query, extension).
//! - [`campaign`]: UTM parameters and ad click ids from a landing URL; referrer channels.
//! - [`session`]: session id and count (30 minutes of inactivity or a new campaign).
//! - [`consent`]: consent categories and what each decision allows.
//! - [`queue`]: the persisted, bounded event queue: batches, acks, retries with backoff.
//! - [`capture`]: autocapture rules: link kinds, scroll milestones, element text.

use crate::enrich::MAX_EVENT_AGE_MS;
use crate::limits::{MAX_ID_BYTES, MAX_TIMESTAMP_MS, MIN_TIMESTAMP_MS};

pub mod campaign;
pub mod capture;
pub mod consent;
pub mod queue;
pub mod session;
pub mod url;

/// What the SDK (and its interest module) report for a number option stated but not a
/// finite number (`NaN`, `"30"`), whose default is used instead.
pub const NOT_A_FINITE_NUMBER: &str = "not a finite number; the default is used";

/// `parts` joined into one string, as `[..].concat()` makes it, without the standard
/// library's `join` code, which is generic over separators (0.9 KB of the SDK's wasm).
pub fn concat(parts: &[&str]) -> String {
    let mut out = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    for part in parts {
        out.push_str(part);
    }
    out
}

/// Appends `parts` to `out`, after `separator` unless `out` is empty: a list such as
/// `a=1,b=2` written in one pass (the standard library's `join` costs ~0.9 KB of wasm).
pub fn push_listed(out: &mut String, separator: &str, parts: &[&str]) {
    if !out.is_empty() {
        out.push_str(separator);
    }
    for part in parts {
        out.push_str(part);
    }
}

/// Appends `n` in base `radix` (2 to 16; lowercase digits), as `format!` writes it. The SDK's
/// stored forms and cookies are written with this and string concatenation, so its wasm
/// carries no `core::fmt` (BENCHMARKS.md).
pub fn push_integer(out: &mut String, n: i64, radix: u32) {
    if n < 0 {
        out.push('-');
    }
    push_unsigned(out, n.unsigned_abs(), radix);
}

/// [`push_integer`] for an unsigned value.
pub fn push_unsigned(out: &mut String, mut n: u64, radix: u32) {
    let mut digits = [0u8; 64];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b"0123456789abcdef"[(n % u64::from(radix)) as usize];
        n /= u64::from(radix);
        if n == 0 {
            break;
        }
    }
    out.extend(digits[at..].iter().map(|&d| char::from(d)));
}

/// Reads an integer in base `radix` (2 to 16) as `str::parse` and `i64::from_str_radix` do:
/// an optional sign, then at least one digit (either case); `None` for anything else and on
/// overflow. The inverse of [`push_integer`], without the standard library's parsing code
/// per integer type in the SDK's wasm.
pub fn parse_integer(text: &str, radix: u32) -> Option<i64> {
    match text.as_bytes().first()? {
        b'-' => 0i64.checked_sub_unsigned(digits(&text.as_bytes()[1..], radix)?),
        b'+' => i64::try_from(digits(&text.as_bytes()[1..], radix)?).ok(),
        _ => i64::try_from(digits(text.as_bytes(), radix)?).ok(),
    }
}

/// [`parse_integer`] for an unsigned value: an optional `+`, then the digits.
pub fn parse_unsigned(text: &str, radix: u32) -> Option<u64> {
    digits(text.strip_prefix('+').unwrap_or(text).as_bytes(), radix)
}

/// At least one digit in base `radix`, and nothing else.
fn digits(text: &[u8], radix: u32) -> Option<u64> {
    if text.is_empty() {
        return None;
    }
    text.iter().try_fold(0u64, |n, &byte| {
        let digit = char::from(byte).to_digit(radix)?;
        n.checked_mul(u64::from(radix))?.checked_add(u64::from(digit))
    })
}

/// Whether the collector keeps an event a page timed `at` itself (analytics.js's `timestamp`
/// option) and sends at `now`: no older than [`MAX_EVENT_AGE_MS`] (the collector's dedupe
/// window) and between the years 2000 and 2100 (outside is clock garbage). A time in the
/// future is the collector's to clamp.
pub fn keeps_event_time(at: i64, now: i64) -> bool {
    at >= now.saturating_sub(MAX_EVENT_AGE_MS) && (MIN_TIMESTAMP_MS..MAX_TIMESTAMP_MS).contains(&at)
}

/// The id in a value Segment's analytics.js stored (`ajs_anonymous_id`, `ajs_user_id`, a
/// cookie or a `localStorage` entry, decoded): JSON text (`"…"`) or plain. `None` for its
/// JSON `null` (an anonymous visitor's user id), for an id with a quote or a backslash (JSON
/// escapes: no id of ours), and for one the collector would refuse.
pub fn segment_stored_id(stored: &str) -> Option<&str> {
    let id = match stored.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(text) => text,
        None if stored == "null" || stored == "undefined" => return None,
        None => stored,
    };
    let escaped = id.bytes().any(|b| b == b'"' || b == b'\\');
    (!id.is_empty() && !escaped && id.len() <= MAX_ID_BYTES).then_some(id)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    #[test]
    fn segment_stored_ids_are_json_text_or_plain() {
        let long = "\"".to_owned() + &"t".repeat(300) + "\"";
        let cases = [
            ("\"a1b2\"", Some("a1b2")),
            ("a1b2", Some("a1b2")),
            ("jane+test@x.com", Some("jane+test@x.com")),
            ("null", None),
            ("undefined", None),
            ("\"\"", None),
            ("\"say \\\"hi\\\"\"", None),
            (long.as_str(), None),
        ];
        for (stored, id) in cases {
            assert_eq!(super::segment_stored_id(stored), id, "{stored}");
        }
    }

    #[test]
    fn an_event_time_is_kept_where_the_collector_keeps_it() {
        let now = 1_800_000_000_000;
        let day = 86_400_000;
        let cases =
            [0, -29 * day, -30 * day, -30 * day - 1, -31 * day, 3_600_000, 4_102_444_800_000 - now, -now];
        for offset in cases {
            let at = now + offset;
            let json = format!(
                r#"{{"event": "e", "anonymousId": "a", "messageId": "m", "timestamp": "{}", "sentAt": "{}"}}"#,
                crate::time::Timestamp(at),
                crate::time::Timestamp(now)
            );
            // The collector's verdict: validation, then the age check after clock correction.
            let collector =
                crate::segment::decode_single("track", json.as_bytes(), 0).is_ok_and(|(mut event, _)| {
                    crate::enrich::correct_time(&mut event, crate::time::Timestamp(now)).is_ok()
                });
            assert_eq!(super::keeps_event_time(at, now), collector, "{offset} ms from now");
        }
    }

    proptest! {
        #[test]
        fn integers_are_read_as_the_standard_library_reads_them(
            text in "[+-]{0,2}[0-9a-fA-Z]{0,21}|\\PC{0,8}",
            radix in prop::sample::select(vec![10u32, 16]),
        ) {
            prop_assert_eq!(super::parse_integer(&text, radix), i64::from_str_radix(&text, radix).ok());
            prop_assert_eq!(super::parse_unsigned(&text, radix), u64::from_str_radix(&text, radix).ok());
        }

        #[test]
        fn integers_read_back_as_they_were_written(n in any::<i64>(), radix in 2u32..=16) {
            let mut text = String::new();
            super::push_integer(&mut text, n, radix);
            prop_assert_eq!(super::parse_integer(&text, radix), Some(n));
        }
    }

    #[test]
    fn integers_are_written_as_format_writes_them() {
        let cases = [0, 7, -7, 10, 1_700_000_000_000, i64::MIN, i64::MAX];
        for n in cases {
            let mut text = String::new();
            super::push_integer(&mut text, n, 10);
            assert_eq!(text, n.to_string());
        }
        for n in [0, 255, u64::MAX, 0xdead_beef] {
            let mut text = String::new();
            super::push_unsigned(&mut text, n, 16);
            assert_eq!(text, format!("{n:x}"));
        }
    }
}
