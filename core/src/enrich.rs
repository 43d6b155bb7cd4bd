//! What the collector adds to an event it accepts: corrected times, location, device.
//!
//! The Worker reads the request (clock, `cf` object, headers) and calls these; the rules live
//! here so they are tested natively.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind};
use crate::event::Event;
use crate::time::Timestamp;

/// Events older than this (by corrected timestamp) are refused: they are outside the window in
/// which the collector remembers message ids, so a duplicate could not be recognised.
pub const MAX_EVENT_AGE_MS: i64 = 30 * 24 * 3_600_000;

/// Sets `received_at` and corrects `timestamp` for the sender's clock skew, Segment's way:
/// `timestamp = receivedAt − (sentAt − timestamp)` when `sentAt` is known. A missing timestamp
/// becomes `receivedAt`; one in the future is clamped to `receivedAt`. Refuses events older
/// than [`MAX_EVENT_AGE_MS`].
pub fn correct_time(event: &mut Event, received_at: Timestamp) -> Result<(), Error> {
    let corrected = match (event.timestamp, event.sent_at) {
        (None, _) => received_at,
        (Some(t), Some(sent)) => Timestamp(received_at.0.saturating_sub(sent.0.saturating_sub(t.0))),
        (Some(t), None) => t,
    };
    event.received_at = Some(received_at);
    event.timestamp = Some(corrected.min(received_at));
    if received_at.0 - corrected.0 > MAX_EVENT_AGE_MS {
        return Err(Error::new("timestamp", ErrorKind::TooOld));
    }
    Ok(())
}

/// Whether a request's edge location is the person's: it is when a browser sent it (it has an
/// `Origin`) or an app on their device (Segment's mobile libraries put `device` and `os` in
/// every event's context). A server's request (Segment's server libraries send neither) comes
/// from a data centre, whose location would replace the person's.
pub fn location_is_the_persons(has_origin: bool, events: &[Event]) -> bool {
    let from_a_device =
        |event: &Event| ["device", "os"].iter().any(|key| event.context.other.contains_key(*key));
    has_origin || events.iter().any(from_a_device)
}

/// Where the request came from, as the edge saw it. Never includes the IP address itself.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Geo {
    pub country: Option<String>,
    pub region: Option<String>,
    pub city: Option<String>,
    pub postal_code: Option<String>,
    pub timezone: Option<String>,
    pub continent: Option<String>,
    pub asn: Option<u32>,
    /// The network's owner: for B2B traffic often the visitor's company.
    pub as_organization: Option<String>,
}

impl Geo {
    pub fn is_empty(&self) -> bool {
        *self == Geo::default()
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceType {
    #[default]
    Unknown,
    Desktop,
    Mobile,
    Tablet,
    Bot,
}

impl DeviceType {
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceType::Unknown => "unknown",
            DeviceType::Desktop => "desktop",
            DeviceType::Mobile => "mobile",
            DeviceType::Tablet => "tablet",
            DeviceType::Bot => "bot",
        }
    }
}

/// The device behind a user agent string.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    pub device_type: DeviceType,
    pub browser: Option<String>,
    pub browser_version: Option<String>,
    pub os: Option<String>,
}

/// Substrings that mark automation that woothee's crawler list does not know.
const AUTOMATION_MARKERS: [&str; 9] = [
    "headlesschrome",
    "phantomjs",
    "puppeteer",
    "selenium",
    "webdriver",
    "lighthouse",
    "python-requests",
    "go-http-client",
    "curl/",
];

/// Parses a browser's user agent (woothee's rules, plus automation markers and tablets).
pub fn parse_user_agent(user_agent: &str) -> Device {
    let lower = user_agent.to_ascii_lowercase();
    let parsed = woothee::parser::Parser::new().parse(user_agent);
    let known = |s: &str| (!s.is_empty() && s != woothee::woothee::VALUE_UNKNOWN).then(|| s.to_owned());
    let (browser, browser_version, os, category) = match &parsed {
        Some(r) => (known(r.name), known(r.version), known(r.os), r.category),
        None => (None, None, None, ""),
    };
    let is_tablet = lower.contains("ipad") || (lower.contains("android") && !lower.contains("mobile"));
    let device_type = if category == "crawler" || AUTOMATION_MARKERS.iter().any(|m| lower.contains(m)) {
        DeviceType::Bot
    } else if is_tablet && matches!(category, "smartphone" | "pc") {
        DeviceType::Tablet
    } else {
        match category {
            "pc" => DeviceType::Desktop,
            "smartphone" | "mobilephone" => DeviceType::Mobile,
            _ => DeviceType::Unknown,
        }
    };
    Device { device_type, browser, browser_version, os }
}

/// What the collector learned about one accepted event.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Enrichment {
    /// Shared by the events of a request (one copy per request, not per event).
    pub geo: Arc<Geo>,
    /// From `context.userAgent` (what the browser SDK reports); unknown for server-side events.
    /// Shared by the events that carry the same user agent.
    pub device: Arc<Device>,
}

/// An accepted event with its enrichment: what the Worker hands to a profile.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Received {
    pub event: Event,
    pub enrichment: Enrichment,
}

impl Received {
    pub fn is_bot(&self) -> bool {
        self.enrichment.device.device_type == DeviceType::Bot
    }
}

/// The user agent parsed last and the device it names. A person's events nearly always share
/// one user agent, and parsing it is the costly part of enrichment: a caller that keeps one
/// of these across requests (the collector keeps one per profile) parses it once.
#[derive(Debug, Default)]
pub struct LastDevice(Option<(String, Arc<Device>)>);

impl LastDevice {
    fn of(&mut self, user_agent: &str) -> Arc<Device> {
        match &self.0 {
            Some((seen, device)) if seen == user_agent => Arc::clone(device),
            _ => {
                let device = Arc::new(parse_user_agent(user_agent));
                self.0 = Some((user_agent.to_owned(), Arc::clone(&device)));
                device
            }
        }
    }
}

/// Enriches the events of one request; an event too old to accept is an `Err`.
pub fn enrich_all(
    events: Vec<Event>,
    received_at: Timestamp,
    geo: &Geo,
    last: &mut LastDevice,
) -> Vec<Result<Received, Error>> {
    let geo = Arc::new(geo.clone());
    events.into_iter().map(|event| enrich_with(event, received_at, &geo, last)).collect()
}

/// A beacon as the collector accepts it: every event decoded, validated and enriched, sorted
/// into the kept ones (with their batch index), the rejected ones, and a count of bots.
/// Pure: the same beacon, time and place always give the same result, so storing the beacon
/// with its receipt is as good as storing the enriched events.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Accepted {
    pub events: Vec<(usize, Received)>,
    pub rejected: Vec<crate::Rejected>,
    pub bots: u32,
}

pub fn accept_beacon(
    body: &[u8],
    received_at: Timestamp,
    geo: &Geo,
    last: &mut LastDevice,
) -> Result<Accepted, Error> {
    let decoded = crate::beacon::decode(body)?;
    let mut accepted = Accepted {
        events: Vec::with_capacity(decoded.events.len()),
        rejected: decoded.rejected.clone(),
        ..Accepted::default()
    };
    let indices = decoded.accepted_indices();
    for (index, enriched) in indices.into_iter().zip(enrich_all(decoded.events, received_at, geo, last)) {
        match enriched {
            Ok(received) if received.is_bot() => accepted.bots += 1,
            Ok(received) => accepted.events.push((index, received)),
            Err(error) => accepted.rejected.push(crate::Rejected::new(index, error)),
        }
    }
    accepted.rejected.sort_by_key(|r| r.index);
    Ok(accepted)
}

fn enrich_with(
    mut event: Event,
    received_at: Timestamp,
    geo: &Arc<Geo>,
    last: &mut LastDevice,
) -> Result<Received, Error> {
    correct_time(&mut event, received_at)?;
    let device = event.context.user_agent.as_deref().map_or_else(Arc::default, |ua| last.of(ua));
    Ok(Received { event, enrichment: Enrichment { geo: Arc::clone(geo), device } })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Call;

    fn at(text: &str) -> Timestamp {
        Timestamp::parse_iso8601(text).unwrap()
    }

    #[test]
    fn clock_skew_is_corrected_and_the_future_clamped() {
        let received = at("2026-11-28T12:00:00Z");
        // (timestamp, sentAt) → corrected timestamp
        let cases = [
            // A client clock 1 h fast: the event happened 5 s before sending.
            (Some("2026-11-28T13:00:00Z"), Some("2026-11-28T13:00:05Z"), "2026-11-28T11:59:55.000Z"),
            // No sentAt: taken as is …
            (Some("2026-11-28T11:00:00Z"), None, "2026-11-28T11:00:00.000Z"),
            // … unless in the future.
            (Some("2026-11-28T12:30:00Z"), None, "2026-11-28T12:00:00.000Z"),
            // sentAt before timestamp (a broken client): clamped too.
            (Some("2026-11-28T12:00:10Z"), Some("2026-11-28T12:00:00Z"), "2026-11-28T12:00:00.000Z"),
            (None, Some("2026-11-28T12:00:00Z"), "2026-11-28T12:00:00.000Z"),
        ];
        for (timestamp, sent_at, expected) in cases {
            let mut event = Event::new("m", Call::Identify);
            event.timestamp = timestamp.map(at);
            event.sent_at = sent_at.map(at);
            correct_time(&mut event, received).unwrap();
            assert_eq!(event.timestamp.unwrap().to_string(), expected, "{timestamp:?} {sent_at:?}");
            assert_eq!(event.received_at, Some(received));
        }
    }

    #[test]
    fn events_older_than_the_dedupe_window_are_refused() {
        let mut event = Event::new("m", Call::Identify);
        event.timestamp = Some(at("2026-10-28T11:59:59Z"));
        let error = correct_time(&mut event, at("2026-11-28T12:00:00Z")).unwrap_err();
        assert_eq!(error.to_string(), "timestamp: older than 30 days: outside the deduplication window");
    }

    #[test]
    fn a_beacon_is_sorted_into_kept_rejected_and_bots() {
        let received_at = at("2026-11-28T12:00:00Z");
        let event = |id: &str, ua: &str, timestamp: &str| {
            let mut event = Event::new(id, Call::Track { event: "E".into() });
            event.anonymous_id = Some("a".into());
            event.timestamp = Some(at(timestamp));
            event.context_mut().user_agent = Some(ua.into());
            event
        };
        let chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36";
        let mut no_identity = event("c", chrome, "2026-11-28T11:00:00Z");
        no_identity.anonymous_id = None;
        let events = vec![
            event("a", chrome, "2026-11-28T11:00:00Z"),
            event("b", "Googlebot/2.1", "2026-11-28T11:00:00Z"),
            no_identity,
            event("d", chrome, "2025-01-01T00:00:00Z"),
            event("e", chrome, "2026-11-28T11:30:00Z"),
        ];
        let body = crate::beacon::encode(&crate::beacon::Batch { sent_at: None, dropped: 0, events });
        let accepted =
            accept_beacon(&body, received_at, &Geo::default(), &mut LastDevice::default()).unwrap();
        let kept: Vec<(usize, &str)> =
            accepted.events.iter().map(|(i, r)| (*i, r.event.message_id.as_str())).collect();
        assert_eq!(kept, [(0, "a"), (4, "e")]);
        assert_eq!(accepted.bots, 1);
        let rejected: Vec<(usize, &str)> =
            accepted.rejected.iter().map(|r| (r.index, r.error.kind.code())).collect();
        assert_eq!(rejected, [(2, "no_identity"), (3, "too_old")]);
        assert_eq!(
            accept_beacon(&body, received_at, &Geo::default(), &mut LastDevice::default()).unwrap(),
            accepted,
            "pure"
        );
    }

    #[test]
    fn user_agents_become_devices() {
        let cases = [
            (
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36",
                "desktop",
                "Chrome",
                "Linux",
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
                "mobile",
                "Safari",
                "iPhone",
            ),
            (
                "Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
                "tablet",
                "Safari",
                "iPad",
            ),
            (
                "Mozilla/5.0 (Linux; Android 14; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
                "tablet",
                "Chrome",
                "Android",
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
                "desktop",
                "Firefox",
                "Windows 10",
            ),
            (
                "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
                "bot",
                "Googlebot",
                "-",
            ),
            (
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.0.0 Safari/537.36",
                "bot",
                "Chrome",
                "Linux",
            ),
            ("curl/8.4.0", "bot", "HTTP Library", "-"),
        ];
        for (ua, device_type, browser, os) in cases {
            let device = parse_user_agent(ua);
            let got = (
                device.device_type.as_str(),
                device.browser.as_deref().unwrap_or("-"),
                device.os.as_deref().unwrap_or("-"),
            );
            assert_eq!(got, (device_type, browser, os), "{ua}");
        }
    }
}
