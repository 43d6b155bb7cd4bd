//! The SDK's event queue: bounded, persisted, and safe to retry.
//!
//! Every captured event waits here until a collector answer settles it. [`Queue::take`] seals
//! the next batch (its events are then *in flight*); [`Queue::settle`] removes them once the
//! collector answered 2xx or refused them for good (a 4xx other than 429), and puts them back
//! at the front after a network error, a 5xx or a 429 ([`Outcome`]).
//! When the page is being hidden, [`Queue::take_all`] re-seals everything unsettled, in flight
//! included, for keepalive requests: a batch whose fetch the unload cancels is sent again, and the collector's
//! messageId dedupe makes the second copy harmless. So nothing is lost and nothing counted
//! twice.
//!
//! The whole queue is stored (see [`Queue::to_stored_text`]) so events survive reloads, crashes
//! and offline periods. It is bounded by [`Limits`]: when full, the oldest waiting events are
//! dropped (those in flight only when none waits: they may be delivered yet), and their count
//! rides on the next batch (`dropped` in the beacon).

use crate::beacon;
use crate::limits::MAX_BATCH_EVENTS;
use crate::record::Record;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Events held at most (waiting and in flight).
    pub max_events: usize,
    /// Approximate stored bytes held at most.
    pub max_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { max_events: 1_000, max_bytes: 1_000_000 }
    }
}

/// A sealed batch: send `body`, then report the outcome for `id`.
#[derive(Clone, Debug, PartialEq)]
pub struct Outgoing {
    pub id: u32,
    pub body: Vec<u8>,
    pub events: usize,
}

#[derive(Clone, Debug, Default)]
pub struct Queue {
    limits: Limits,
    /// Oldest first. A list, not a `VecDeque`: dropping the oldest happens only when full,
    /// and a deque's code costs the SDK ~2 KB of wasm.
    entries: Vec<Entry>,
    bytes: usize,
    /// Entries not in flight, and their bytes: kept as counts, asked for on every capture.
    waiting: usize,
    waiting_bytes: usize,
    /// Dropped events not yet reported in any batch.
    dropped: u32,
    /// The batches in flight and the dropped count each reports.
    in_flight: Vec<(u32, u32)>,
    next_id: u32,
    /// Consecutive failed sends, for the backoff.
    failures: u32,
    /// Events pushed so far: each entry's `seq` (see [`Queue::settled_up_to`]).
    pushed: u64,
    /// The first place among the events dropped since [`Queue::take_first_dropped`] asked.
    first_dropped: Option<u64>,
}

#[derive(Clone, Debug)]
struct Entry {
    record: Record,
    bytes: usize,
    batch: Option<u32>,
    /// Its place in the order events came to this queue.
    seq: u64,
}

/// The first byte of a stored queue's bytes (see [`Queue::to_stored_text`]).
const STORED_FORMAT: u8 = b'R';

/// What the collector's answer means for a batch ([`Queue::settle`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Outcome {
    /// 2xx: taken, but for the `rejected` events the collector found invalid.
    Delivered { rejected: u32 },
    /// Network error (status 0), 408, 429 or 5xx: send again later, not before `retry_after_ms`.
    /// `dropped_counted`: the collector counted the queue's dropped count the batch carried
    /// (a 429 for one person, or a 503 for a failure, after it applied other people's
    /// events of the batch).
    Retry { status: u16, retry_after_ms: Option<i64>, dropped_counted: bool },
    /// Any other 4xx: the collector will never take it; retrying cannot help.
    Refused { status: u16 },
}

impl Outcome {
    /// From the answer's status, its `Retry-After` header (seconds) and what its body counted
    /// (`counted`): a 200's rejected events, a 429's or 503's `dropped_counted`.
    pub fn of(status: u16, retry_after: Option<&str>, counted: u32) -> Outcome {
        match status {
            200..=299 => Outcome::Delivered { rejected: counted },
            0 | 408 | 429 | 500.. => Outcome::Retry {
                status,
                retry_after_ms: retry_after
                    .and_then(|s| super::parse_integer(s.trim(), 10))
                    .map(|s| s.saturating_mul(1_000)),
                dropped_counted: matches!(status, 429 | 503) && counted > 0,
            },
            _ => Outcome::Refused { status },
        }
    }
}

/// A stored queue not written for this long belongs to a page that is gone.
pub const ORPHAN_AFTER_MS: i64 = 120_000;

/// What [`Queue::adopt_stored_text`] did with another page's stored queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Adoption {
    /// Its page may still be open: leave it.
    Alive,
    /// Its events (this many, not counting ones already held) are in this queue now: remove it.
    Adopted(usize),
    /// Not a stored queue (damaged, or another version): remove it.
    Unreadable,
}

/// Backoff after the first failure; doubles with each further one, up to [`MAX_BACKOFF_MS`].
pub const BASE_BACKOFF_MS: i64 = 1_000;
pub const MAX_BACKOFF_MS: i64 = 60_000;
/// The longest `Retry-After` honoured: a day.
pub const MAX_RETRY_AFTER_MS: i64 = 86_400_000;

impl Queue {
    pub fn new(limits: Limits) -> Queue {
        Queue { limits, ..Queue::default() }
    }

    /// Adds an event, dropping the oldest ones if the queue is over its limits.
    pub fn push(&mut self, record: Record) {
        let bytes = record.as_bytes().len();
        let seq = self.next_seq();
        self.push_entry(Entry { record, bytes, batch: None, seq });
    }

    fn next_seq(&mut self) -> u64 {
        self.pushed += 1;
        self.pushed
    }

    /// How many events came to this queue so far: a mark for [`Queue::settled_up_to`].
    pub fn pushed(&self) -> u64 {
        self.pushed
    }

    /// Whether every event that came before `mark` ([`Queue::pushed`] then) has left the
    /// queue, delivered or dropped: what a `flush()` waits for, not for the events after it.
    pub fn settled_up_to(&self, mark: u64) -> bool {
        !self.entries.iter().any(|entry| entry.seq <= mark)
    }

    /// The first place ([`Queue::pushed`] then) among the events dropped since the last ask:
    /// a `flush()` called after it waited for an event that will never be delivered.
    pub fn take_first_dropped(&mut self) -> Option<u64> {
        self.first_dropped.take()
    }

    fn push_entry(&mut self, entry: Entry) {
        self.bytes += entry.bytes;
        if entry.batch.is_none() {
            self.waiting += 1;
            self.waiting_bytes += entry.bytes;
        }
        self.entries.push(entry);
        // Over a limit, the oldest waiting event goes (never the newest); one in flight only
        // when none waits: it may be delivered yet, and would then count as dropped too.
        while self.entries.len() > 1
            && (self.entries.len() > self.limits.max_events || self.bytes > self.limits.max_bytes)
        {
            let newest = self.entries.len() - 1;
            let oldest = self.entries[..newest].iter().position(|e| e.batch.is_none()).unwrap_or(0);
            let dropped = self.entries.remove(oldest);
            self.first_dropped = Some(self.first_dropped.map_or(dropped.seq, |first| first.min(dropped.seq)));
            self.bytes -= dropped.bytes;
            if dropped.batch.is_none() {
                self.waiting -= 1;
                self.waiting_bytes -= dropped.bytes;
            }
            self.dropped += 1;
        }
    }

    /// Moves the events of `held` (a queue that never sent: events held while consent was
    /// pending) to the end of this one, with the count of those it dropped.
    pub fn append(&mut self, held: Queue) {
        self.dropped += held.dropped;
        for entry in held.entries {
            let seq = self.next_seq();
            self.push_entry(Entry { batch: None, seq, ..entry });
        }
    }

    /// Events not in flight.
    pub fn waiting(&self) -> usize {
        self.waiting
    }

    /// Approximate bytes of the events not in flight.
    pub fn waiting_bytes(&self) -> usize {
        self.waiting_bytes
    }

    /// Every event held, waiting or in flight.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Seals the oldest waiting events, at most `max_events` and (when more than one) at
    /// most `max_bytes` encoded, into a beacon sent at `now`.
    pub fn take(&mut self, now: i64, max_events: usize, max_bytes: usize) -> Option<Outgoing> {
        let waiting: Vec<usize> =
            (0..self.entries.len()).filter(|&i| self.entries[i].batch.is_none()).collect();
        self.seal(&waiting, now, max_events, max_bytes)
    }

    /// Seals every unsettled event, in flight included, into beacons of at most `max_bytes`
    /// each: what the SDK hands to `sendBeacon` when the page is hidden. Batches in flight
    /// before are forgotten; their late answers settle nothing.
    pub fn take_all(&mut self, now: i64, max_bytes: usize) -> Vec<Outgoing> {
        for (_, dropped) in self.in_flight.drain(..) {
            self.dropped += dropped;
        }
        for entry in &mut self.entries {
            entry.batch = None;
        }
        (self.waiting, self.waiting_bytes) = (self.entries.len(), self.bytes);
        let mut batches = Vec::new();
        while let Some(batch) = self.take(now, MAX_BATCH_EVENTS, max_bytes) {
            batches.push(batch);
        }
        batches
    }

    fn seal(
        &mut self,
        candidates: &[usize],
        now: i64,
        max_events: usize,
        max_bytes: usize,
    ) -> Option<Outgoing> {
        let mut count = candidates.len().min(max_events.max(1));
        if count == 0 {
            return None;
        }
        let id = self.next_id;
        let (body, count) = loop {
            let records = candidates[..count].iter().map(|&i| &self.entries[i].record);
            let body = beacon::encode_records(Some(now), self.dropped, records);
            if body.len() <= max_bytes || count == 1 {
                break (body, count);
            }
            count /= 2;
        };
        self.next_id = self.next_id.wrapping_add(1);
        for &i in &candidates[..count] {
            self.entries[i].batch = Some(id);
            self.waiting -= 1;
            self.waiting_bytes -= self.entries[i].bytes;
        }
        self.in_flight.push((id, self.dropped));
        self.dropped = 0;
        Some(Outgoing { id, body, events: count })
    }

    /// Settles batch `id` by the collector's answer. `false` for a batch not in flight
    /// (resealed by [`take_all`](Self::take_all), or already settled): its late answer
    /// settles nothing, and counts for nothing.
    pub fn settle(&mut self, id: u32, outcome: Outcome) -> bool {
        match outcome {
            Outcome::Delivered { .. } => self.complete(id),
            Outcome::Refused { .. } => self.refuse(id),
            Outcome::Retry { dropped_counted, .. } => self.retry(id, dropped_counted),
        }
    }

    /// The batch was delivered (2xx): forget it.
    fn complete(&mut self, id: u32) -> bool {
        self.forget_flight(id).is_some_and(|_| self.forget_events(id))
    }

    /// The batch was refused for good (4xx other than 429): its events go, and the dropped
    /// count it carried rides on the next batch instead (the collector never read it).
    fn refuse(&mut self, id: u32) -> bool {
        let Some(dropped) = self.forget_flight(id) else { return false };
        self.dropped += dropped;
        self.forget_events(id)
    }

    fn forget_events(&mut self, id: u32) -> bool {
        self.failures = 0;
        self.drop_entries(|entry| entry.batch == Some(id));
        true
    }

    /// Removes the entries `gone` picks, keeping the counts of bytes and of waiting events;
    /// answers how many went.
    fn drop_entries(&mut self, gone: impl Fn(&Entry) -> bool) -> usize {
        let before = self.entries.len();
        let (mut bytes, mut waiting, mut waiting_bytes) = (self.bytes, self.waiting, self.waiting_bytes);
        self.entries.retain(|entry| {
            if !gone(entry) {
                return true;
            }
            bytes -= entry.bytes;
            if entry.batch.is_none() {
                waiting -= 1;
                waiting_bytes -= entry.bytes;
            }
            false
        });
        (self.bytes, self.waiting, self.waiting_bytes) = (bytes, waiting, waiting_bytes);
        before - self.entries.len()
    }

    /// The place ([`Queue::pushed`] when it came) of the earliest event of a batch in flight
    /// (not always its first: adopted events go in front of the queue's own, with later places).
    pub fn first_of_batch(&self, id: u32) -> Option<u64> {
        self.entries.iter().filter(|entry| entry.batch == Some(id)).map(|entry| entry.seq).min()
    }

    /// The batch failed in a way worth retrying: its events wait again, in their order, and
    /// its dropped count with them, unless the collector says it counted it. Sent again, the
    /// count would be counted again by a part of the retry that holds none of them.
    fn retry(&mut self, id: u32, dropped_counted: bool) -> bool {
        let Some(dropped) = self.forget_flight(id) else { return false };
        if !dropped_counted {
            self.dropped += dropped;
        }
        self.failures += 1;
        for entry in self.entries.iter_mut().filter(|e| e.batch == Some(id)) {
            entry.batch = None;
            self.waiting += 1;
            self.waiting_bytes += entry.bytes;
        }
        true
    }

    fn forget_flight(&mut self, id: u32) -> Option<u32> {
        let index = self.in_flight.iter().position(|(flight, _)| *flight == id)?;
        Some(self.in_flight.remove(index).1)
    }

    /// How long to wait before the next send after failures: exponential, with equal jitter
    /// (half the ceiling, and a random part of the other half: `random` in `[0, 1)`), and
    /// never sooner than the collector's `Retry-After`.
    pub fn backoff_ms(&self, random: f64, retry_after_ms: Option<i64>) -> i64 {
        // Bounded, so that the time it ends at cannot overflow (the SDK wakes meanwhile to
        // keep its stored queue its own).
        let asked = retry_after_ms.unwrap_or(0).clamp(0, MAX_RETRY_AFTER_MS);
        if self.failures == 0 {
            return asked;
        }
        let ceiling = (BASE_BACKOFF_MS << (self.failures - 1).min(16)).min(MAX_BACKOFF_MS);
        let jittered = ceiling / 2 + (random.clamp(0.0, 1.0) * (ceiling / 2) as f64) as i64;
        jittered.max(asked)
    }

    /// Replaces each record, in flight or waiting, that `change` gives a new one for: a
    /// retry or a page's exit sends the new one (same message id, so the collector keeps one).
    /// Answers how many changed.
    pub fn rewrite(&mut self, change: impl Fn(&Record) -> Option<Record>) -> usize {
        let mut changed = 0;
        for entry in &mut self.entries {
            let Some(record) = change(&entry.record) else { continue };
            changed += 1;
            let bytes = record.as_bytes().len();
            self.bytes = self.bytes - entry.bytes + bytes;
            if entry.batch.is_none() {
                self.waiting_bytes = self.waiting_bytes - entry.bytes + bytes;
            }
            (entry.record, entry.bytes) = (record, bytes);
        }
        changed
    }

    /// Removes the waiting events `unwanted` picks (those in flight are sent already);
    /// answers how many went.
    pub fn remove(&mut self, unwanted: impl Fn(&Record) -> bool) -> usize {
        self.drop_entries(|entry| entry.batch.is_none() && unwanted(&entry.record))
    }

    /// Forgets every event (consent refused). The batch numbers go on: an answer to a batch
    /// sent before must not settle one sealed after.
    pub fn clear(&mut self) {
        *self = Queue { next_id: self.next_id, pushed: self.pushed, ..Queue::new(self.limits) };
    }

    /// The queue as a page stores it (in `localStorage`, which holds text):
    /// `written_at|closed|bytes`, the bytes one char each: `R`, the dropped count (`u32`,
    /// little-endian), then each unsettled record (in flight included: its fate is unknown)
    /// as its length (`u32`) and its bytes. `closed`: the page is gone (`pagehide`), so the
    /// next page may adopt the queue at once.
    pub fn to_stored_text(&self, now: i64, closed: bool) -> String {
        let in_flight_dropped: u32 = self.in_flight.iter().map(|(_, dropped)| dropped).sum();
        let mut bytes = Vec::with_capacity(5 + self.bytes + 4 * self.entries.len());
        bytes.push(STORED_FORMAT);
        bytes.extend_from_slice(&(self.dropped + in_flight_dropped).to_le_bytes());
        for entry in &self.entries {
            bytes.extend_from_slice(&(entry.bytes as u32).to_le_bytes());
            bytes.extend_from_slice(entry.record.as_bytes());
        }
        let mut text = String::with_capacity(16 + bytes.len() * 2);
        super::push_integer(&mut text, now, 10);
        text.push_str(if closed { "|1|" } else { "|0|" });
        text.extend(bytes.iter().map(|&b| char::from(b)));
        text
    }

    /// Takes over another page's stored queue ([`Queue::to_stored_text`]) if that page is
    /// gone: it said so (`closed`), or has not written for [`ORPHAN_AFTER_MS`] (a live page
    /// with pending events rewrites its queue at least at every retry).
    pub fn adopt_stored_text(&mut self, text: &str, now: i64) -> Adoption {
        let mut parts = text.splitn(3, '|');
        let (Some(written_at), Some(closed), Some(bytes)) = (parts.next(), parts.next(), parts.next()) else {
            return Adoption::Unreadable;
        };
        let Some(written_at) = super::parse_integer(written_at, 10) else { return Adoption::Unreadable };
        if closed != "1" && now.saturating_sub(written_at) <= ORPHAN_AFTER_MS {
            return Adoption::Alive;
        }
        let bytes: Option<Vec<u8>> = bytes.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect();
        match bytes.and_then(|bytes| self.restore(&bytes)) {
            Some(count) => Adoption::Adopted(count),
            None => Adoption::Unreadable,
        }
    }

    /// Adds records read back from storage (another page's or this page's earlier queue) in
    /// front of the queue's own, skipping message ids it already holds. Unreadable bytes are
    /// `None` and add nothing.
    fn restore(&mut self, bytes: &[u8]) -> Option<usize> {
        let u32_at = |bytes: &[u8]| Some(u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?));
        let (&STORED_FORMAT, rest) = bytes.split_first()? else { return None };
        let dropped = u32_at(rest)?;
        let mut rest = &rest[4..];
        let mut records = Vec::new();
        while !rest.is_empty() {
            let length = u32_at(rest)? as usize;
            let (record, after) = rest[4..].split_at_checked(length)?;
            records.push(Record::from_bytes(record.to_vec())?);
            rest = after;
        }
        // Adopted events come after every mark given so far; this queue's keep their places.
        let mut restored = Queue { pushed: self.pushed, ..Queue::new(self.limits) };
        restored.dropped = dropped.saturating_add(self.dropped);
        for record in records {
            if !self.entries.iter().any(|e| e.record.message_id() == record.message_id()) {
                restored.push(record);
            }
        }
        let count = restored.entries.len();
        for entry in self.entries.drain(..) {
            restored.push_entry(entry);
        }
        restored.in_flight = std::mem::take(&mut self.in_flight);
        restored.next_id = self.next_id;
        *self = restored;
        Some(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Call, Event};
    use crate::time::Timestamp;
    use crate::value::Value;

    const NOW: i64 = 1_700_000_100_000;
    const DELIVERED: Outcome = Outcome::Delivered { rejected: 0 };
    const FAILED: Outcome = Outcome::Retry { status: 0, retry_after_ms: None, dropped_counted: false };
    const REFUSED: Outcome = Outcome::Refused { status: 400 };

    fn event(n: usize) -> Record {
        Record::from_event(&event_with(n, None))
    }

    fn event_with(n: usize, text: Option<String>) -> Event {
        let mut event = Event::new(format!("m{n}"), Call::Track { event: "Clicked".into() });
        event.anonymous_id = Some("a".into());
        event.timestamp = Some(Timestamp(1_700_000_000_000 + n as i64));
        if let Some(text) = text {
            event.properties.insert("text".into(), Value::String(text));
        }
        event
    }

    fn ids(body: &[u8]) -> Vec<String> {
        beacon::decode(body).unwrap().events.into_iter().map(|e| e.message_id).collect()
    }

    fn queue_of(count: usize) -> Queue {
        let mut queue = Queue::new(Limits::default());
        (0..count).for_each(|n| queue.push(event(n)));
        queue
    }

    #[test]
    fn batches_in_order_and_completes() {
        let mut queue = queue_of(5);
        let first = queue.take(NOW + 1, 2, 32_768).unwrap();
        let second = queue.take(NOW + 1, 2, 32_768).unwrap();
        assert_eq!(ids(&first.body), ["m0", "m1"]);
        assert_eq!(ids(&second.body), ["m2", "m3"]);
        assert_eq!((queue.waiting(), queue.in_flight()), (1, 2));
        queue.settle(first.id, DELIVERED);
        queue.settle(first.id, DELIVERED); // a second answer for the same batch changes nothing
        assert_eq!(queue.len(), 3);
        assert_eq!((queue.first_of_batch(first.id), queue.first_of_batch(second.id)), (None, Some(3)));
    }

    #[test]
    fn waiting_counts_follow_every_transition() {
        let mut queue = Queue::new(Limits { max_events: 8, max_bytes: 1_000_000 });
        let check = |queue: &Queue| {
            let waiting: Vec<&Entry> = queue.entries.iter().filter(|e| e.batch.is_none()).collect();
            assert_eq!(queue.waiting(), waiting.len());
            assert_eq!(queue.waiting_bytes(), waiting.iter().map(|e| e.bytes).sum::<usize>());
        };
        (0..6).for_each(|n| queue.push(event(n)));
        let a = queue.take(NOW, 2, 32_768).unwrap();
        let b = queue.take(NOW, 2, 32_768).unwrap();
        check(&queue);
        (6..12).for_each(|n| queue.push(event(n))); // drops the oldest waiting ones
        check(&queue);
        (12..20).for_each(|n| queue.push(event(n))); // and then the oldest in flight
        check(&queue);
        queue.settle(a.id, FAILED);
        queue.settle(b.id, DELIVERED);
        check(&queue);
        queue.take_all(NOW, 300);
        check(&queue);
    }

    #[test]
    fn rewritten_records_are_sent_and_counted_as_they_are_now() {
        let mut queue = Queue::new(Limits::default());
        (0..4).for_each(|n| queue.push(Record::from_event(&event_with(n, Some("x".repeat(100))))));
        let in_flight = queue.take(NOW, 2, 32_768).unwrap();
        // The odd ones lose their text.
        let changed = queue.rewrite(|record| {
            let n = record.message_id()[1..].parse::<usize>().unwrap();
            (n % 2 == 1).then(|| Record::from_event(&event_with(n, None)))
        });
        assert_eq!(changed, 2);
        let lengths: Vec<usize> = queue.entries.iter().map(|e| e.record.as_bytes().len()).collect();
        assert_eq!(queue.bytes, lengths.iter().sum::<usize>());
        assert_eq!(queue.waiting_bytes(), lengths[2..].iter().sum::<usize>());
        assert!(lengths[1] < lengths[0] && lengths[3] < lengths[2]);
        queue.settle(in_flight.id, FAILED);
        let again = beacon::decode(&queue.take(NOW + 1, 10, 32_768).unwrap().body).unwrap().events;
        let texts: Vec<bool> = again.iter().map(|e| e.properties.contains_key("text")).collect();
        assert_eq!(texts, [true, false, true, false]);
    }

    #[test]
    fn retried_events_go_back_in_their_place() {
        let mut queue = queue_of(3);
        let first = queue.take(NOW + 1, 2, 32_768).unwrap();
        queue.settle(first.id, FAILED);
        let again = queue.take(NOW + 2, 10, 32_768).unwrap();
        assert_eq!(ids(&again.body), ["m0", "m1", "m2"]);
    }

    #[test]
    fn batches_shrink_to_fit_the_byte_limit() {
        let mut queue = Queue::new(Limits::default());
        for n in 0..40 {
            queue.push(Record::from_event(&event_with(n, Some(format!("{n:0>500}")))));
        }
        let outgoing = queue.take(NOW + 1, 40, 4_096).unwrap();
        assert!(outgoing.body.len() <= 4_096, "{}", outgoing.body.len());
        assert!(outgoing.events >= 4, "{}", outgoing.events);
        assert_eq!(ids(&outgoing.body).len(), outgoing.events);
    }

    #[test]
    fn take_all_resends_what_is_in_flight_and_late_answers_do_nothing() {
        let mut queue = queue_of(30);
        let early = queue.take(NOW + 1, 20, 32_768).unwrap();
        let all = queue.take_all(NOW + 2, 300);
        let sent: Vec<String> = all.iter().flat_map(|o| ids(&o.body)).collect();
        assert_eq!(sent, (0..30).map(|n| format!("m{n}")).collect::<Vec<_>>());
        assert!(all.iter().all(|o| o.body.len() <= 300 || o.events == 1));
        assert!(!queue.settle(early.id, DELIVERED), "the cancelled batch's answer settles nothing");
        assert!(!queue.settle(early.id, FAILED) && !queue.settle(early.id, REFUSED));
        assert_eq!((queue.len(), queue.waiting()), (30, 0));
        assert!(all.iter().all(|o| queue.settle(o.id, DELIVERED)));
        assert!(queue.is_empty());
    }

    #[test]
    fn a_refused_batch_hands_its_dropped_count_on() {
        let mut queue = Queue::new(Limits { max_events: 3, max_bytes: 1_000_000 });
        (0..5).for_each(|n| queue.push(event(n)));
        let refused = queue.take(NOW + 1, 1, 32_768).unwrap();
        assert_eq!(beacon::decode(&refused.body).unwrap().dropped, 2);
        assert!(queue.settle(refused.id, REFUSED));
        let next = queue.take(NOW + 2, 10, 32_768).unwrap();
        assert_eq!(ids(&next.body), ["m3", "m4"], "the refused event is gone");
        assert_eq!(beacon::decode(&next.body).unwrap().dropped, 2, "its dropped count is not");
    }

    #[test]
    fn removed_events_are_the_waiting_ones_picked() {
        let mut queue = Queue::default();
        (0..4).for_each(|n| queue.push(event(n)));
        let in_flight = queue.take(NOW, 1, 32_768).unwrap();
        let odd = |record: &Record| record.message_id().ends_with(['1', '3']);
        assert_eq!(queue.remove(|record| odd(record) || record.message_id() == "m0"), 2, "m0 is in flight");
        assert_eq!((queue.len(), queue.waiting()), (2, 1));
        assert!(queue.settle(in_flight.id, DELIVERED));
        assert_eq!(ids(&queue.take(NOW, 10, 32_768).unwrap().body), ["m2"]);
        let bytes: usize = queue.entries.iter().map(|entry| entry.bytes).sum();
        assert_eq!((queue.bytes, queue.waiting_bytes), (bytes, 0));
    }

    #[test]
    fn a_full_queue_drops_the_oldest_and_reports_them_once() {
        let mut queue = Queue::new(Limits { max_events: 10, max_bytes: 1_000_000 });
        (0..15).for_each(|n| queue.push(event(n)));
        assert_eq!(queue.len(), 10);
        let first = queue.take(NOW + 1, 4, 32_768).unwrap();
        assert_eq!(ids(&first.body)[0], "m5");
        assert_eq!(beacon::decode(&first.body).unwrap().dropped, 5);
        queue.settle(first.id, FAILED);
        let again = queue.take(NOW + 2, 4, 32_768).unwrap();
        assert_eq!(beacon::decode(&again.body).unwrap().dropped, 5, "reported again after a failure");
        queue.settle(again.id, DELIVERED);
        let next = queue.take(NOW + 3, 4, 32_768).unwrap();
        assert_eq!(beacon::decode(&next.body).unwrap().dropped, 0, "and only until delivered");
        // A 429 after the collector counted it (it applied other people's events): the retry,
        // split or not, does not carry it again; the events do go again.
        let mut queue = Queue::new(Limits { max_events: 4, max_bytes: 1_000_000 });
        (0..7).for_each(|n| queue.push(event(n)));
        let counted = queue.take(NOW + 4, 20, 32_768).unwrap();
        assert_eq!(beacon::decode(&counted.body).unwrap().dropped, 3);
        assert!(queue.settle(counted.id, Outcome::of(429, None, 5)));
        let parts = [queue.take(NOW + 5, 2, 32_768).unwrap(), queue.take(NOW + 5, 20, 32_768).unwrap()];
        let resent: usize = parts.iter().map(|part| part.events).sum();
        assert_eq!(resent, counted.events);
        assert!(parts.iter().all(|part| beacon::decode(&part.body).unwrap().dropped == 0));
    }

    #[test]
    fn a_full_queue_drops_waiting_events_before_those_in_flight() {
        let mut queue = Queue::new(Limits { max_events: 5, max_bytes: 1_000_000 });
        (0..5).for_each(|n| queue.push(event(n)));
        let sent = queue.take(NOW + 1, 2, 32_768).unwrap();
        (5..8).for_each(|n| queue.push(event(n)));
        assert!(queue.settle(sent.id, DELIVERED));
        let next = queue.take(NOW + 2, 10, 32_768).unwrap();
        assert_eq!(ids(&next.body), ["m5", "m6", "m7"], "m0 and m1 delivered, m2–m4 dropped");
        assert_eq!(beacon::decode(&next.body).unwrap().dropped, 3, "not the delivered ones");
    }

    #[test]
    fn appended_events_keep_their_order_and_their_dropped_count() {
        let mut held = Queue::new(Limits { max_events: 3, max_bytes: 1_000_000 });
        (5..10).for_each(|n| held.push(event(n)));
        assert_eq!(held.len(), 3, "a held queue is bounded too");
        let mut queue = queue_of(2);
        queue.append(held);
        assert_eq!((queue.len(), queue.waiting()), (5, 5));
        let batch = queue.take(NOW, 10, 32_768).unwrap();
        assert_eq!(ids(&batch.body), ["m0", "m1", "m7", "m8", "m9"]);
        assert_eq!(beacon::decode(&batch.body).unwrap().dropped, 2);
    }

    #[test]
    fn byte_limit_bounds_the_queue() {
        let mut queue = Queue::new(Limits { max_events: 1_000, max_bytes: 2_000 });
        (0..100).for_each(|n| queue.push(event(n)));
        assert!(queue.len() < 100 && queue.len() > 5, "{}", queue.len());
    }

    #[test]
    fn backoff_doubles_with_jitter_and_honours_retry_after() {
        let mut queue = queue_of(1);
        assert_eq!(queue.backoff_ms(0.5, None), 0);
        let mut ceilings = Vec::new();
        for _ in 0..8 {
            let id = queue.take(NOW + 1, 1, 32_768).unwrap().id;
            queue.settle(id, FAILED);
            let low = queue.backoff_ms(0.0, None);
            let high = queue.backoff_ms(0.999_999, None);
            assert!(low * 2 >= high - 1 && low < high, "{low} {high}");
            ceilings.push(high);
        }
        assert!(ceilings.windows(2).all(|w| w[1] >= w[0]));
        assert!(*ceilings.last().unwrap() <= MAX_BACKOFF_MS);
        assert_eq!(queue.backoff_ms(0.0, Some(120_000)), 120_000);
        // An absurd one cannot overflow the time it ends at.
        let absurd = Outcome::of(429, Some("9223372036854775"), 0);
        let Outcome::Retry { retry_after_ms, .. } = absurd else { panic!("{absurd:?}") };
        assert_eq!(Queue::default().backoff_ms(0.5, retry_after_ms), MAX_RETRY_AFTER_MS);
    }

    #[test]
    fn a_mark_is_settled_once_the_events_before_it_have_left() {
        let mut queue = queue_of(3);
        let mark = queue.pushed();
        queue.push(event(10));
        assert!(!queue.settled_up_to(mark));
        let first = queue.take(NOW, 3, 32_768).unwrap().id;
        assert!(!queue.settled_up_to(mark), "in flight is not settled");
        queue.settle(first, DELIVERED);
        assert!(queue.settled_up_to(mark), "the later event does not hold it");
        assert!(!queue.settled_up_to(queue.pushed()));
        // Adopted events came after the mark too; the queue's own keep their places.
        let mut other = queue_of(2);
        let stored = other.to_stored_text(NOW, true);
        let before_adoption = queue.pushed();
        queue.adopt_stored_text(&stored, NOW);
        assert!(!queue.settled_up_to(before_adoption), "event 10 is still there");
        let batch = queue.take(NOW, 10, 32_768).unwrap().id;
        assert_eq!(queue.first_of_batch(batch), Some(4), "event 10's place, behind the adopted events");
        other.clear();
        assert!(other.settled_up_to(other.pushed()));
    }

    #[test]
    fn the_first_dropped_place_is_told_once() {
        let mut queue = Queue::new(Limits { max_events: 2, max_bytes: 1_000_000 });
        queue.push(event(1));
        queue.push(event(2));
        assert_eq!(queue.take_first_dropped(), None);
        queue.push(event(3));
        queue.push(event(4));
        assert_eq!(queue.take_first_dropped(), Some(1), "events 1 and 2 went, 1 first");
        assert_eq!(queue.take_first_dropped(), None);
    }

    #[test]
    fn a_cleared_queue_numbers_its_batches_on() {
        let mut queue = queue_of(2);
        let before = queue.take(NOW, 1, 32_768).unwrap().id;
        queue.clear();
        assert!(queue.is_empty());
        queue.push(event(7));
        let after = queue.take(NOW, 1, 32_768).unwrap().id;
        assert_ne!(before, after, "a late answer to the first batch must not settle this one");
    }

    #[test]
    fn storage_round_trip_keeps_in_flight_events_and_skips_known_ids() {
        let mut queue = queue_of(6);
        let _in_flight = queue.take(NOW + 1, 2, 32_768).unwrap();
        let stored = queue.to_stored_text(NOW + 1, true);
        let mut next_page = Queue::new(Limits::default());
        next_page.push(event(99));
        next_page.push(event(3)); // already captured again? never twice
        assert_eq!(next_page.adopt_stored_text(&stored, NOW + 2), Adoption::Adopted(5));
        let all = next_page.take(NOW + 5, 100, 32_768).unwrap();
        assert_eq!(ids(&all.body), ["m0", "m1", "m2", "m4", "m5", "m99", "m3"]);
    }

    #[test]
    fn answers_decide_retries() {
        let retry = |status, retry_after_ms, dropped_counted| Outcome::Retry {
            status,
            retry_after_ms,
            dropped_counted,
        };
        assert_eq!(Outcome::of(200, None, 2), Outcome::Delivered { rejected: 2 });
        assert_eq!(Outcome::of(429, Some(" 3"), 5), retry(429, Some(3_000), true));
        assert_eq!(Outcome::of(429, None, 0), retry(429, None, false));
        // A 503 for a failure after other people's events were applied says it too.
        assert_eq!(Outcome::of(503, Some("soon"), 5), retry(503, None, true));
        assert_eq!(Outcome::of(500, None, 5), retry(500, None, false));
        assert_eq!(Outcome::of(0, None, 0), FAILED);
        assert_eq!(Outcome::of(408, None, 0), retry(408, None, false));
        assert_eq!(Outcome::of(400, None, 0), REFUSED);
        assert_eq!(Outcome::of(413, None, 0), Outcome::Refused { status: 413 });
    }

    #[test]
    fn only_queues_of_pages_that_are_gone_are_adopted() {
        let queue = queue_of(2);
        let open = queue.to_stored_text(NOW, false);
        let mut other = Queue::default();
        assert_eq!(other.adopt_stored_text(&open, NOW + ORPHAN_AFTER_MS), Adoption::Alive);
        assert!(other.is_empty());
        assert_eq!(
            other.adopt_stored_text(&open, NOW + ORPHAN_AFTER_MS + 1),
            Adoption::Adopted(2),
            "silent too long"
        );
        let garbage = ["", "x|1|", "1|1|\u{ff}\u{ff} garbage", "1|1|\u{100}", "no separators"];
        for text in garbage {
            assert_eq!(Queue::default().adopt_stored_text(text, NOW), Adoption::Unreadable, "{text:?}");
        }
    }

    #[test]
    fn a_stored_queue_cut_short_anywhere_is_unreadable_or_shorter_never_a_panic() {
        let stored = queue_of(3).to_stored_text(NOW, true);
        for cut in 0..stored.chars().count() {
            let text: String = stored.chars().take(cut).collect();
            let adoption = Queue::default().adopt_stored_text(&text, NOW);
            assert!(
                matches!(adoption, Adoption::Unreadable | Adoption::Adopted(0..=2)),
                "cut at {cut}: {adoption:?}"
            );
        }
        assert_eq!(Queue::default().adopt_stored_text(&stored, NOW), Adoption::Adopted(3));
    }
}
