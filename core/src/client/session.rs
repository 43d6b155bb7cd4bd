//! The visitor's session, as the SDK keeps it: a new one after [`SESSION_GAP_MS`] without
//! activity (the same gap the collector uses) or when the visitor arrives from a new campaign.
//!
//! The id is the session's start time in milliseconds, like Amplitude's: unique per visitor,
//! ordered, and free of randomness.

use super::url;
use crate::profile::SESSION_GAP_MS;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Session {
    pub id: i64,
    /// Sessions this visitor has had on this device, this one included.
    pub count: u32,
    pub last_activity: i64,
    /// [`super::campaign::fingerprint`] of the campaign that started it, 0 if none.
    pub campaign: u64,
}

impl Session {
    /// A new visitor's first session, begun at `now`.
    pub fn first(now: i64) -> Session {
        let mut session = Session::default();
        session.touch(now, None);
        session
    }

    /// Records activity at `now`; `campaign` is the fingerprint of a campaign in the current
    /// landing URL, if any. Returns whether a new session started.
    pub fn touch(&mut self, now: i64, campaign: Option<u64>) -> bool {
        // A last activity far ahead of now (the clock was set back) ends the session too:
        // otherwise it would last until the clock caught up.
        let gap = now.saturating_sub(self.last_activity);
        let expired = self.count == 0 || !(-SESSION_GAP_MS..=SESSION_GAP_MS).contains(&gap);
        let new_campaign = campaign.is_some_and(|c| c != self.campaign);
        let starts = expired || new_campaign;
        if starts {
            self.id = now.max(self.id.saturating_add(1));
            self.count = self.count.saturating_add(1);
            self.campaign = campaign.unwrap_or(0);
            self.last_activity = now;
        }
        self.last_activity = now.max(self.last_activity);
        starts
    }

    /// When to date a report of past activity (the engaged time a page sends when it is left):
    /// now, or, once the session has expired, its last activity, so that a tab left idle for an
    /// hour and then closed does not count a session of its own. (The collector's runs see
    /// only events: activity without any, input alone, may still leave a gap there.)
    pub fn report_time(&self, now: i64) -> i64 {
        match now.saturating_sub(self.last_activity) > SESSION_GAP_MS {
            true => self.last_activity,
            false => now,
        }
    }

    /// Follows another tab's copy of the session (what the store holds): a later session, or
    /// this one with later activity. A site's tabs share one session, so a tab left in the
    /// background does not start a new one while the visitor reads in another; an older
    /// session is never taken back.
    pub fn follow(&mut self, stored: &Session) {
        if (stored.id, stored.last_activity) > (self.id, self.last_activity) {
            // Counts kept apart (another subdomain's, before it shared its session) never
            // go back.
            let count = self.count.max(stored.count);
            *self = *stored;
            self.count = count;
        }
    }

    /// The stored form: `id.count.last_activity.campaign`.
    pub fn to_storage(&self) -> String {
        let mut text = String::with_capacity(48);
        for n in [self.id, self.count.into(), self.last_activity] {
            super::push_integer(&mut text, n, 10);
            text.push('.');
        }
        super::push_unsigned(&mut text, self.campaign, 16);
        text
    }

    /// Reads [`Session::to_storage`]'s form; anything else is no session.
    pub fn from_storage(text: &str) -> Option<Session> {
        let mut parts = text.split('.');
        let session = Session {
            id: super::parse_integer(parts.next()?, 10)?,
            count: u32::try_from(super::parse_unsigned(parts.next()?, 10)?).ok()?,
            last_activity: super::parse_integer(parts.next()?, 10)?,
            campaign: super::parse_unsigned(parts.next()?, 16)?,
        };
        parts.next().is_none().then_some(session)
    }
}

/// What a page shares with the site's other subdomains, whose `localStorage` is their own:
/// the visitor's session, its channel and campaign, and the first touch (the stored forms of
/// each, empty for none). One cookie, so that a visitor moving from `www.` to `app.` stays
/// in their session, with its attribution; whose it is (the anonymous id) decides who may
/// take it, so that a visitor a `reset()` forgot hands nothing to the next.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Visit {
    pub anonymous_id: String,
    pub session: Session,
    pub channel: String,
    pub campaign: String,
    pub first: String,
}

impl Visit {
    /// The largest visit cookie value, percent-encoded ([`Visit::to_cookie`]): a cookie holds
    /// 4 KB, and every request to the site carries it.
    pub const MAX_COOKIE_BYTES: usize = 1_500;

    /// [`Visit::to_storage`] in at most [`Visit::MAX_COOKIE_BYTES`] once percent-encoded: past
    /// them the first touch stays out, then the campaign (long UTM values). What is left is
    /// short: two ids, a session and a channel name.
    pub fn to_cookie(mut self) -> String {
        // Encoded byte by byte: a part's encoded length leaves the whole's with it.
        let len = url::percent_encoded_len(&self.to_storage());
        if len > Visit::MAX_COOKIE_BYTES {
            if len - url::percent_encoded_len(&self.first) > Visit::MAX_COOKIE_BYTES {
                self.campaign.clear();
            }
            self.first.clear();
        }
        self.to_storage()
    }

    /// The stored form: the five parts on lines of their own (none holds a line break: ids
    /// are printable, the campaign and first touch percent-encoded queries).
    pub fn to_storage(&self) -> String {
        let session = self.session.to_storage();
        [&self.anonymous_id, &session, &self.channel, &self.campaign, &self.first]
            .map(String::as_str)
            .join("\n")
    }

    /// Reads [`Visit::to_storage`]'s form; anything else is no visit.
    pub fn from_storage(text: &str) -> Option<Visit> {
        let mut lines = text.split('\n');
        let visit = Visit {
            anonymous_id: lines.next()?.to_owned(),
            session: Session::from_storage(lines.next()?)?,
            channel: lines.next()?.to_owned(),
            campaign: lines.next()?.to_owned(),
            first: lines.next()?.to_owned(),
        };
        lines.next().is_none().then_some(visit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_visit_reads_back_and_nothing_else_is_one() {
        let visit = Visit {
            anonymous_id: "a-1".into(),
            session: Session { id: 7, count: 2, last_activity: 9, campaign: 0xab },
            channel: "email".into(),
            campaign: "utm_source=news&utm_campaign=Spring".into(),
            first: "email|utm_source=news".into(),
        };
        assert_eq!(Visit::from_storage(&visit.to_storage()), Some(visit));
        let none = Visit { session: Session::first(5), ..Visit::default() };
        assert_eq!(Visit::from_storage(&none.to_storage()), Some(none));
        for text in ["", "a\n7.2.9.ab", "a\n7.2.9.ab\nemail\n", "a\nx\n\n\n\n", "a\n7.2.9.ab\n\n\n\n\n"] {
            assert_eq!(Visit::from_storage(text), None, "{text:?}");
        }
    }

    #[test]
    fn a_long_first_touch_then_a_long_campaign_stay_out_of_the_cookie() {
        let visit = |campaign: usize, first: usize| Visit {
            anonymous_id: "a-1".into(),
            session: Session { id: 7, count: 2, last_activity: 9, campaign: 0xab },
            channel: "paid".into(),
            campaign: "c".repeat(campaign),
            first: "é".repeat(first),
        };
        // (campaign, first touch) lengths → what the cookie keeps of them. Each `é` is six
        // bytes encoded.
        let cases = [
            ((10, 10), (10, 10)),
            ((10, 240), (10, 240)),
            ((10, 250), (10, 0)),
            ((1_200, 20), (1_200, 20)),
            ((1_200, 60), (1_200, 0)),
            ((1_600, 0), (0, 0)),
        ];
        for ((campaign, first), kept) in cases {
            let cookie = visit(campaign, first).to_cookie();
            assert!(url::percent_encoded_len(&cookie) <= Visit::MAX_COOKIE_BYTES, "{campaign}, {first}");
            let read = Visit::from_storage(&cookie).unwrap();
            assert_eq!((read.campaign.len(), read.first.chars().count()), kept, "{campaign}, {first}");
            assert_eq!((read.anonymous_id.as_str(), read.session), ("a-1", visit(0, 0).session));
        }
    }

    const MINUTE: i64 = 60_000;

    #[test]
    fn a_new_session_after_thirty_minutes_or_a_new_campaign() {
        let mut session = Session::default();
        assert!(session.touch(1_000 * MINUTE, None));
        assert_eq!((session.id, session.count), (1_000 * MINUTE, 1));
        assert!(!session.touch(1_029 * MINUTE, None));
        assert!(!session.touch(1_059 * MINUTE, None), "the gap counts from the last activity");
        assert!(session.touch(1_090 * MINUTE, None));
        assert_eq!((session.id, session.count), (1_090 * MINUTE, 2));
        assert!(session.touch(1_091 * MINUTE, Some(7)), "a new campaign");
        assert!(!session.touch(1_092 * MINUTE, Some(7)), "the same campaign on a later page");
        assert_eq!(session.count, 3);
    }

    #[test]
    fn a_report_after_the_session_expired_is_dated_in_it() {
        let mut session = Session::default();
        session.touch(1_000 * MINUTE, None);
        assert_eq!(session.report_time(1_010 * MINUTE), 1_010 * MINUTE);
        assert_eq!(session.report_time(1_030 * MINUTE), 1_030 * MINUTE);
        assert_eq!(session.report_time(1_095 * MINUTE), 1_000 * MINUTE);
        let reported = session.report_time(1_095 * MINUTE);
        assert!(!session.clone().touch(reported, None), "the report's time is in the session");
        assert_eq!(Session { last_activity: i64::MAX, ..session }.report_time(5), 5);
    }

    #[test]
    fn a_background_tab_follows_the_session_another_tab_kept_alive() {
        let mut background = Session::default();
        background.touch(1_000 * MINUTE, None);
        let mut active = background;
        for minute in [1_010, 1_030, 1_050] {
            active.touch(minute * MINUTE, None);
        }
        background.follow(&active);
        assert!(!background.touch(1_060 * MINUTE, None), "the visitor was active 10 minutes ago");
        assert_eq!(background, Session { last_activity: 1_060 * MINUTE, ..active });
        // An older copy changes nothing, nor does an older session with later activity (a
        // tab that began a campaign's session keeps it).
        let stale = Session { last_activity: 1_000 * MINUTE, count: 9, ..background };
        background.follow(&stale);
        assert_eq!(background.count, 1);
        let older = Session { id: background.id - 1, last_activity: 2_000 * MINUTE, ..background };
        background.follow(&older);
        assert_eq!(background.last_activity, 1_060 * MINUTE);
        let newer = Session { id: background.id + 1, count: 2, last_activity: 1_061 * MINUTE, campaign: 0 };
        background.follow(&newer);
        assert_eq!(background, newer);
        // A count kept apart (another subdomain's, before sessions were shared) never goes back.
        let elsewhere = Session { id: newer.id + 1, count: 1, ..newer };
        background.follow(&elsewhere);
        assert_eq!((background.id, background.count), (elsewhere.id, 2));
    }

    #[test]
    fn ids_stay_unique_when_the_clock_goes_back() {
        let mut session = Session::default();
        session.touch(5_000 * MINUTE, None);
        session.touch(5_001 * MINUTE, Some(1));
        assert!(session.id > 5_000 * MINUTE);
        // The clock set back an hour: a new session (not one lasting until the clock catches
        // up), with a new id; then the gap counts from the new now.
        let before = session.id;
        assert!(!session.touch(4_990 * MINUTE, None), "a few minutes back is the same session");
        assert!(session.touch(4_900 * MINUTE, None));
        assert!(session.id > before);
        assert!(!session.touch(4_920 * MINUTE, None));
        assert!(session.touch(4_951 * MINUTE, None));
    }

    #[test]
    fn storage_round_trip_and_garbage() {
        let mut session = Session::default();
        session.touch(1_700_000_000_000, Some(0xabc));
        assert_eq!(Session::from_storage(&session.to_storage()), Some(session));
        for garbage in ["", "1.2.3", "a.b.c.d", "1.2.3.4.5", "1.2.3.zz"] {
            assert_eq!(Session::from_storage(garbage), None, "{garbage}");
        }
    }
}
