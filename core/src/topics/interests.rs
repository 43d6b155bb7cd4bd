//! A decayed interest profile: topic scores that fade with a half-life and that add up the
//! same whatever order the evidence arrives in (a browser and the collector, or two devices,
//! converge on one profile).
//!
//! Each score is stored as `log2(Σ weightᵢ · 2^(tᵢ / half-life))`: evidence is anchored at its
//! own time, not decayed step by step, so adding is a commutative log-sum and a merge is a
//! union. The score now is `2^(stored − now / half-life)`. Logs keep it finite for any time.
//! `libm`'s functions, not the platform's: the same bits natively as in wasm.
//!
//! ```
//! use portrait_core::topics::interests::Interests;
//! const DAY: i64 = 86_400_000;
//! let mut interests = Interests::default();
//! interests.add(299, 1.0, 0);          // a read about sport, day 0
//! interests.add(5, 1.0, 14 * DAY);     // a read about computers, day 14
//! let now = interests.top(14 * DAY, 10);
//! assert_eq!(now[0].0, 5);
//! assert!((now[1].1 - 0.5).abs() < 1e-9, "one half-life later, half the score");
//! ```

/// Default half-life of an interest: 14 days.
pub const DEFAULT_HALF_LIFE_MS: i64 = 14 * 86_400_000;

/// What a profile is keyed by: topic ids (`u16`) or site tags (`String`, from
/// [`super::rules`]), each with the number of keys a profile keeps ([`Key::KEPT`]).
pub trait Key: Ord + Clone + fmt::Display + FromStr {
    /// Keys kept per profile: more than there are real ones (the taxonomy's 469 topics; a
    /// site's [`super::rules::MAX_RULES`] tag rules), so that a profile of real evidence is
    /// never cut and stays exact in any order and any merge. The bound is for made-up keys:
    /// past it, each new key drops the weakest at that moment, and a key dropped early
    /// cannot come back with what arrives for it later.
    const KEPT: usize;
}

impl Key for u16 {
    const KEPT: usize = 512;
}

impl Key for String {
    const KEPT: usize = 128;
}

/// Pairs one "Page Engaged" event carries for each of `topics` and `tags`, at most.
pub const MAX_SENT: usize = 64;

/// The event that carries what a page view added to the interests (the SDK sends one when a
/// page is hidden or left), and its two properties that do: `topics`, `[[topic id, weight],
/// …]`, and `tags`, the site's own tags the same way.
pub const ENGAGED_EVENT: &str = "Page Engaged";
pub const SENT_TOPICS: &str = "topics";
pub const SENT_TAGS: &str = "tags";

use std::fmt;
use std::str::FromStr;

/// How much one page view counts, from the attention it got: 0.1 for a bounce, 1.0 for a
/// read. `0.1 + 0.6 × min(engaged seconds, 120) / 120 + 0.3 × deepest scroll / 100`: engaged
/// time (visible, with activity in the last 5 s) carries most of it, linearly up to two
/// minutes; scrolling to the end adds the rest.
pub fn attention_weight(engaged_ms: i64, deepest_scroll_percent: f64) -> f64 {
    let engaged = engaged_ms.clamp(0, ENGAGED_CAP_MS) as f64 / ENGAGED_CAP_MS as f64;
    let scrolled = if deepest_scroll_percent.is_finite() {
        deepest_scroll_percent.clamp(0.0, 100.0) / 100.0
    } else {
        0.0
    };
    0.1 + 0.6 * engaged + 0.3 * scrolled
}

const ENGAGED_CAP_MS: i64 = 120_000;

/// A score under this is no interest any more: a two-minute read (1.0) after about 10
/// half-lives (140 days at the default), a bounce (0.1) after 6.6. Kept, as evidence to add
/// to, but not listed, shown, tagged or matched by an audience.
pub const MIN_SCORE: f64 = 0.001;

/// The attention a page view has credited so far: a page reports several times (each time it
/// is hidden, and when it is left) and each report adds only what is new.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PageCredit {
    credited: f64,
}

impl PageCredit {
    /// The weight to add now, for the page's total engaged time and deepest scroll so far.
    pub fn top_up(&mut self, engaged_ms: i64, deepest_scroll_percent: f64) -> f64 {
        let due = attention_weight(engaged_ms, deepest_scroll_percent) - self.credited;
        if due <= 0.0 {
            return 0.0;
        }
        self.credited += due;
        due
    }
}

fn is_evidence(weight: f64) -> bool {
    weight.is_finite() && weight > 0.0
}

/// Key → `log2` of its time-anchored score (see the module docs), sorted by key. Keys are
/// topic ids (`u16`) or site tags (`String`, from [`super::rules`]).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Interests<K = u16> {
    entries: Vec<(K, f64)>,
    half_life_ms: Option<i64>,
}

/// Equal keys, half-lives, and scores equal up to floating-point rounding: adding evidence
/// in another order (or merging) gives the same profile, but its `log2` sums may differ in
/// the last bits.
impl<K: PartialEq> PartialEq for Interests<K> {
    fn eq(&self, other: &Interests<K>) -> bool {
        self.half_life_ms == other.half_life_ms
            && self.entries.len() == other.entries.len()
            && self
                .entries
                .iter()
                .zip(&other.entries)
                .all(|((a, x), (b, y))| a == b && (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0))
    }
}

impl<K> Default for Interests<K> {
    fn default() -> Interests<K> {
        Interests { entries: Vec::new(), half_life_ms: None }
    }
}

impl<K: Key> Interests<K> {
    pub fn with_half_life(half_life_ms: i64) -> Interests<K> {
        Interests { entries: Vec::new(), half_life_ms: Some(half_life_ms.max(1)) }
    }

    fn half_life(&self) -> f64 {
        self.half_life_ms.unwrap_or(DEFAULT_HALF_LIFE_MS) as f64
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds `weight` of evidence for `topic` observed at `at` (ms since the epoch).
    /// Non-positive or non-finite weights are ignored.
    pub fn add(&mut self, topic: K, weight: f64, at: i64) {
        if is_evidence(weight) {
            self.add_log(topic, libm::log2(weight) + at as f64 / self.half_life());
        }
    }

    fn add_log(&mut self, topic: K, log: f64) {
        match self.entries.binary_search_by(|(t, _)| t.cmp(&topic)) {
            Ok(i) => self.entries[i].1 = log_sum(self.entries[i].1, log),
            Err(i) => self.entries.insert(i, (topic, log)),
        }
        if self.entries.len() > K::KEPT {
            let weakest = (0..self.entries.len())
                .min_by(|&a, &b| self.entries[a].1.total_cmp(&self.entries[b].1))
                .expect("more than KEPT entries");
            self.entries.remove(weakest);
        }
    }

    /// Takes back `weight` of evidence for `topic` at `at` that was added twice (a merge of
    /// two profiles that both counted one event). Only when the key holds at least twice
    /// that: evidence held once or not at all (a side dropped it, or a model of another build
    /// weighed it) is left alone, never taken from the key's other evidence.
    pub fn take_back(&mut self, topic: &K, weight: f64, at: i64) {
        if !is_evidence(weight) {
            return;
        }
        let Ok(i) = self.entries.binary_search_by(|(t, _)| t.cmp(topic)) else { return };
        let log = libm::log2(weight) + at as f64 / self.half_life();
        let held = self.entries[i].1;
        if held - log < 1.0 - 1e-9 {
            return;
        }
        // log2(2^held − 2^log): at least held − 1, so no cancellation.
        self.entries[i].1 = held + libm::log1p(-libm::exp2(log - held)) / std::f64::consts::LN_2;
    }

    /// Folds another profile in (same half-life): the result does not depend on the order of
    /// merges.
    pub fn merge(&mut self, other: &Interests<K>) {
        for (topic, log) in &other.entries {
            self.add_log(topic.clone(), *log);
        }
    }

    /// The score of `topic` at `now` (0 if it has none, or it faded under [`MIN_SCORE`]).
    pub fn score(&self, topic: &K, now: i64) -> f64 {
        match self.entries.binary_search_by(|(t, _)| t.cmp(topic)) {
            Ok(i) => Some(libm::exp2(self.entries[i].1 - now as f64 / self.half_life()))
                .filter(|&score| score >= MIN_SCORE)
                .unwrap_or(0.0),
            Err(_) => 0.0,
        }
    }

    /// The strongest `limit` topics with their scores at `now`, best first (ties by id); not
    /// those faded under [`MIN_SCORE`].
    pub fn top(&self, now: i64, limit: usize) -> Vec<(K, f64)> {
        let now_log = now as f64 / self.half_life();
        let mut scored: Vec<(K, f64)> = self
            .entries
            .iter()
            .map(|(t, log)| (t.clone(), libm::exp2(log - now_log)))
            .filter(|&(_, score)| score >= MIN_SCORE)
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        scored.truncate(limit);
        scored
    }

    /// The stored form: `h` and the half-life in ms, then `topic:log` pairs, joined by
    /// commas; the log score in fixed point (integers: formatting and parsing floats would
    /// cost the browser SDK ~20 KB of code).
    pub fn to_stored_text(&self) -> String {
        let fixed = |log: f64| (log * STORED_SCALE).round() as i64;
        let pairs = self.entries.iter().map(|(t, log)| format!("{t}:{}", fixed(*log)));
        std::iter::once(format!("h{}", self.half_life() as i64)).chain(pairs).collect::<Vec<_>>().join(",")
    }

    /// Reads [`to_stored_text`](Self::to_stored_text) into a profile with `half_life_ms`.
    /// Stored with another half-life, every score is kept as it is at `now` and fades at the
    /// new rate from then on (a text without one, from an earlier version, is taken to have
    /// this one). Unreadable pairs are skipped (a damaged entry loses one topic, not the
    /// profile), and so is what a stored text cannot hold (past [`Key::KEPT`] pairs).
    pub fn from_stored_text(text: &str, half_life_ms: i64, now: i64) -> Interests<K> {
        let mut interests = Interests::with_half_life(half_life_ms);
        let mut shift = 0.0;
        for item in text.split(',').take(1 + K::KEPT) {
            if let Some(stored) =
                item.strip_prefix('h').and_then(|h| h.parse::<i64>().ok()).filter(|&h| h > 0)
            {
                shift = now as f64 / interests.half_life() - now as f64 / stored as f64;
                continue;
            }
            // A site tag may hold `:` itself (`intent:pricing`): the score follows the last.
            let parsed =
                item.rsplit_once(':').and_then(|(t, log)| Some((t.parse().ok()?, log.parse::<i64>().ok()?)));
            if let Some((topic, fixed)) = parsed {
                let log = fixed as f64 / STORED_SCALE + shift;
                if log - now as f64 / interests.half_life() <= MAX_STORED_LOG_NOW {
                    interests.add_log(topic, log);
                }
            }
        }
        interests
    }

    /// Keeps only the keys `keep` accepts.
    pub fn retain(&mut self, keep: impl Fn(&K) -> bool) {
        self.entries.retain(|(key, _)| keep(key));
    }
}

/// The most a stored score may be worth now, as a `log2` (2^20: a million credits of a full
/// read): past it the entry was damaged or edited, and is skipped, not read as infinite.
const MAX_STORED_LOG_NOW: f64 = 20.0;

/// Stored log scores are integers in units of 10⁻⁹.
const STORED_SCALE: f64 = 1e9;

/// The evidence a browser sent: `[[key, weight], …]` (a "Page Engaged" event's `topics` or
/// `tags`), each key read by `key`. Malformed pairs are skipped, and a key's pairs after its
/// first (a page view earns a key once); at most [`MAX_SENT`] pairs are read.
pub fn sent_pairs<K: PartialEq>(
    sent: &crate::Value,
    key: impl Fn(&crate::Value) -> Option<K>,
) -> Vec<(K, f64)> {
    let crate::Value::Array(pairs) = sent else { return Vec::new() };
    let mut read: Vec<(K, f64)> = Vec::new();
    for pair in pairs.iter().take(MAX_SENT) {
        if let crate::Value::Array(pair) = pair
            && let [topic, weight] = pair.as_slice()
            && let Some(topic) = key(topic)
            && !read.iter().any(|(t, _)| *t == topic)
        {
            let weight = match weight {
                crate::Value::Float(w) => *w,
                crate::Value::Int(w) => *w as f64,
                _ => continue,
            };
            // One page view earns at most 1 per topic (the attention curve's maximum).
            if weight <= 1.0 && is_evidence(weight) {
                read.push((topic, weight));
            }
        }
    }
    read
}

/// `log2(2^a + 2^b)`, without overflow.
fn log_sum(a: f64, b: f64) -> f64 {
    let (high, low) = if a >= b { (a, b) } else { (b, a) };
    high + libm::log1p(libm::exp2(low - high)) / std::f64::consts::LN_2
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    fn close(a: &[(u16, f64)], b: &[(u16, f64)]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.0 == y.0 && (x.1 - y.1).abs() < 1e-9)
    }

    #[test]
    fn order_of_arrival_does_not_change_the_result() {
        let evidence =
            [(5u16, 0.8, 3 * DAY), (299, 0.1, DAY), (5, 0.3, 40 * DAY), (12, 1.0, 0), (299, 1.0, 20 * DAY)];
        let mut forward = Interests::default();
        evidence.iter().for_each(|&(t, w, at)| forward.add(t, w, at));
        let mut backward = Interests::default();
        evidence.iter().rev().for_each(|&(t, w, at)| backward.add(t, w, at));
        let now = 50 * DAY;
        assert!(close(&forward.top(now, 10), &backward.top(now, 10)));

        let (mut a, mut b) = (Interests::default(), Interests::default());
        evidence[..2].iter().for_each(|&(t, w, at)| a.add(t, w, at));
        evidence[2..].iter().for_each(|&(t, w, at)| b.add(t, w, at));
        let mut merged = b.clone();
        merged.merge(&a);
        a.merge(&b);
        assert!(close(&a.top(now, 10), &forward.top(now, 10)));
        assert!(close(&merged.top(now, 10), &forward.top(now, 10)));
    }

    mod laws {
        use super::*;
        use proptest::prelude::*;

        /// Evidence on as many topics as the taxonomy has (within [`Key::KEPT`]: order is
        /// exact), over ten half-lives, and where to split it between two devices.
        fn evidence() -> impl Strategy<Value = (Vec<(u16, f64, i64)>, usize)> {
            let one = (0..469u16, 0.01f64..1.0, 0..140 * DAY);
            proptest::collection::vec(one, 1..200).prop_flat_map(|e| {
                let len = e.len();
                (Just(e), 0..=len)
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
            #[test]
            fn any_order_and_any_split_give_one_profile((evidence, split) in evidence(), seed in any::<u64>()) {
                let mut forward = Interests::default();
                evidence.iter().for_each(|&(t, w, at)| forward.add(t, w, at));
                let mut shuffled = evidence.clone();
                let mut state = seed | 1;
                for i in (1..shuffled.len()).rev() {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    shuffled.swap(i, (state % (i as u64 + 1)) as usize);
                }
                let mut reordered = Interests::default();
                shuffled.iter().for_each(|&(t, w, at)| reordered.add(t, w, at));
                prop_assert_eq!(&reordered, &forward);
                let (mut a, mut b) = (Interests::default(), Interests::default());
                shuffled[..split].iter().for_each(|&(t, w, at)| a.add(t, w, at));
                shuffled[split..].iter().for_each(|&(t, w, at)| b.add(t, w, at));
                b.merge(&a);
                prop_assert_eq!(&b, &forward);
            }
        }
    }

    #[test]
    fn a_faded_interest_is_not_listed_but_still_counts_as_evidence() {
        let mut interests = Interests::with_half_life(14 * DAY);
        interests.add(299, 0.1, 0); // a bounce
        assert_eq!(interests.top(93 * DAY, 10).len(), 1, "0.1 × 2^(−93/14) ≈ 0.00100");
        assert_eq!(interests.top(94 * DAY, 10), vec![], "≈ 0.00095: faded");
        assert_eq!(interests.score(&299, 94 * DAY), 0.0);
        interests.add(299, 0.01, 94 * DAY);
        assert!((interests.score(&299, 94 * DAY) - 0.01095).abs() < 1e-4, "the old bounce still adds");
    }

    #[test]
    fn scores_halve_every_half_life_and_stay_finite_far_from_the_epoch() {
        let mut interests = Interests::with_half_life(7 * DAY);
        let far = 4_000_000_000_000; // year 2096
        interests.add(1, 2.0, far);
        assert!((interests.top(far + 7 * DAY, 1)[0].1 - 1.0).abs() < 1e-9);
        assert!((interests.top(far + 21 * DAY, 1)[0].1 - 0.25).abs() < 1e-9);
    }

    #[test]
    fn a_read_counts_ten_times_a_bounce_and_reports_add_up() {
        assert!((attention_weight(0, 0.0) - 0.1).abs() < 1e-9);
        assert!((attention_weight(120_000, 100.0) - 1.0).abs() < 1e-9);
        assert!((attention_weight(10_000_000, f64::NAN) - 0.7).abs() < 1e-9, "capped, junk scroll ignored");
        let mut credit = PageCredit::default();
        let total: f64 = [(0, 0.0), (30_000, 50.0), (30_000, 40.0), (90_000, 100.0)]
            .iter()
            .map(|&(ms, scroll)| credit.top_up(ms, scroll))
            .sum();
        assert!((total - attention_weight(90_000, 100.0)).abs() < 1e-9);
    }

    #[test]
    fn what_a_browser_sent_is_read_and_junk_is_skipped() {
        use crate::Value::{Array, Float, Int, String as Text};
        let pair = |topic: i64, weight: crate::Value| Array(vec![Int(topic), weight]);
        let sent = Array(vec![
            pair(299, Float(0.5)),
            pair(5, Int(1)),
            pair(70_000, Float(0.5)),
            pair(12, Float(7.0)),
            pair(13, Float(-1.0)),
            pair(14, Text("x".into())),
            Text("junk".into()),
            pair(299, Float(0.5)), // a key again: the page view earned it once
            pair(6, Float(7.0)),
            pair(6, Float(0.25)), // after a malformed pair of its key, still read
        ]);
        let topic_id = |v: &crate::Value| match v {
            Int(id) => u16::try_from(*id).ok(),
            _ => None,
        };
        assert_eq!(sent_pairs(&sent, topic_id), [(299, 0.5), (5, 1.0), (6, 0.25)]);
        assert_eq!(sent_pairs(&Text("not a list".into()), topic_id), []);
    }

    #[test]
    fn only_evidence_held_twice_is_taken_back() {
        let mut interests = Interests::default();
        interests.add(5, 0.5, DAY);
        interests.add(5, 0.5, DAY);
        interests.add(7, 1.0, DAY);
        interests.take_back(&5, 0.5, DAY);
        assert!(close(&interests.top(DAY, 10), &[(7, 1.0), (5, 0.5)]));
        // Held once now, or less than twice, or not at all: left alone.
        interests.take_back(&5, 0.5, DAY);
        interests.take_back(&7, 0.9, DAY);
        interests.take_back(&9, 0.1, DAY);
        assert!(close(&interests.top(DAY, 10), &[(7, 1.0), (5, 0.5)]));
    }

    #[test]
    fn bounded_and_junk_is_ignored() {
        let mut interests = Interests::default();
        for topic in 0..600u16 {
            interests.add(topic, f64::from(topic) + 1.0, 0);
        }
        interests.add(700, f64::NAN, 0);
        interests.add(701, -1.0, 0);
        let top = interests.top(0, 1000);
        assert_eq!(top.len(), u16::KEPT);
        assert_eq!(top[0].0, 599);
        assert_eq!(top.last().unwrap().0, 88, "the weakest were dropped");
        let mut tags = Interests::<String>::default();
        for tag in 0..200 {
            tags.add(format!("made-up:{tag:03}"), f64::from(tag) + 1.0, 0);
        }
        let kept = tags.top(0, 1000);
        assert_eq!(kept.len(), String::KEPT);
        assert_eq!(kept.last().unwrap().0, "made-up:072");
    }

    #[test]
    fn the_stored_form_round_trips_and_survives_damage() {
        let mut interests = Interests::default();
        interests.add(299, 0.7, 10 * DAY);
        interests.add(5, 0.2, 12 * DAY);
        let text = interests.to_stored_text();
        let back = Interests::from_stored_text(&text, DEFAULT_HALF_LIFE_MS, 13 * DAY);
        assert!(close(&back.top(13 * DAY, 10), &interests.top(13 * DAY, 10)));
        // 9: an edited score, worth 2^(10^9) now, not read as infinite.
        let damaged = Interests::<u16>::from_stored_text(
            &format!("junk,{text},7:NaN,8:1.5,x:1,h0,9:1000000000000000000"),
            DEFAULT_HALF_LIFE_MS,
            0,
        );
        assert_eq!(damaged.top(0, 10).len(), 2);
        assert!(Interests::<u16>::from_stored_text("", DEFAULT_HALF_LIFE_MS, 0).is_empty());
        let mut tags = Interests::<String>::default();
        tags.add("intent:pricing".into(), 0.5, 0);
        tags.add("h1".into(), 0.25, 0);
        let back = Interests::<String>::from_stored_text(&tags.to_stored_text(), DEFAULT_HALF_LIFE_MS, 0);
        assert!(
            close_tags(&back.top(0, 2), &[("intent:pricing", 0.5), ("h1", 0.25)]),
            "tags holding `:` or like the header round-trip"
        );
    }

    fn close_tags(a: &[(String, f64)], b: &[(&str, f64)]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.0 == y.0 && (x.1 - y.1).abs() < 1e-9)
    }

    #[test]
    fn a_new_half_life_keeps_todays_scores_and_fades_at_its_own_rate() {
        let now = 1_800_000_000_000; // 2027
        let mut interests = Interests::default();
        interests.add(299, 1.0, now - 14 * DAY);
        let text = interests.to_stored_text();
        for half_life in [7 * DAY, 30 * DAY, DEFAULT_HALF_LIFE_MS] {
            let back = Interests::<u16>::from_stored_text(&text, half_life, now);
            assert!((back.score(&299, now) - 0.5).abs() < 1e-9, "{half_life}: as it was");
            let later = 0.5 * (-(30.0 * DAY as f64) / half_life as f64).exp2();
            assert!((back.score(&299, now + 30 * DAY) - later).abs() < 1e-9, "{half_life}: its own rate");
        }
        let earlier_version = "299:1000000000"; // no `h`: read with the half-life asked for
        let back = Interests::<u16>::from_stored_text(earlier_version, 7 * DAY, now);
        assert!((back.score(&299, 7 * DAY) - 1.0).abs() < 1e-9);
    }
}
