//! Timestamps: milliseconds since the Unix epoch, UTC, with ISO-8601 parsing and formatting.
//!
//! `core` never reads a clock; callers pass the time in.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Milliseconds since 1970-01-01T00:00:00Z.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Timestamp(pub i64);

const MS_PER_DAY: i64 = 86_400_000;

impl Timestamp {
    /// Parses the ISO-8601 forms that Segment's libraries and browsers produce:
    /// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM|±HHMM)`. `T` may be a space; fractions
    /// beyond milliseconds are truncated. A missing offset is an error: the time would be ambiguous.
    pub fn parse_iso8601(text: &str) -> Option<Timestamp> {
        let b = text.as_bytes();
        if b.len() < 20 || b.len() > 40 {
            return None;
        }
        let year = digits(&b[0..4])?;
        let month = digits(&b[5..7])?;
        let day = digits(&b[8..10])?;
        let hour = digits(&b[11..13])?;
        let minute = digits(&b[14..16])?;
        let second = digits(&b[17..19])?;
        let separators_ok = b[4] == b'-'
            && b[7] == b'-'
            && matches!(b[10], b'T' | b't' | b' ')
            && b[13] == b':'
            && b[16] == b':';
        if !separators_ok
            || !(1..=12).contains(&month)
            || day < 1
            || day > days_in_month(year, month)
            || hour > 23
            || minute > 59
            || second > 60
        {
            return None;
        }
        let mut rest = &b[19..];
        let mut millis = 0;
        if let [b'.', fraction @ ..] = rest {
            let len = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
            if len == 0 {
                return None;
            }
            for (i, c) in fraction[..len.min(3)].iter().enumerate() {
                millis += i64::from(c - b'0') * [100, 10, 1][i];
            }
            rest = &fraction[len..];
        }
        let offset_minutes = match rest {
            [b'Z' | b'z'] => 0,
            [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] | [sign @ (b'+' | b'-'), h1, h2, m1, m2] => {
                let hours = digits(&[*h1, *h2])?;
                let minutes = digits(&[*m1, *m2])?;
                if hours > 23 || minutes > 59 {
                    return None;
                }
                let total = hours * 60 + minutes;
                if *sign == b'-' { -total } else { total }
            }
            _ => return None,
        };
        // A leap second (:60) is folded into the next second, as JavaScript's Date does.
        let seconds_of_day = hour * 3600 + minute * 60 + second - offset_minutes * 60;
        let day_number = days_from_civil(year, month, day);
        Some(Timestamp(day_number * MS_PER_DAY + seconds_of_day * 1000 + millis))
    }
}

/// Formats as `YYYY-MM-DDTHH:MM:SS.mmmZ` (what JavaScript's `toISOString` produces).
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.0.div_euclid(MS_PER_DAY);
        let ms_of_day = self.0.rem_euclid(MS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        let (hours, ms) = (ms_of_day / 3_600_000, ms_of_day % 3_600_000);
        let (minutes, ms) = (ms / 60_000, ms % 60_000);
        let (seconds, ms) = (ms / 1000, ms % 1000);
        if (0..=9999).contains(&year) {
            write!(f, "{year:04}-{month:02}-{day:02}T{hours:02}:{minutes:02}:{seconds:02}.{ms:03}Z")
        } else {
            // ISO-8601 expanded years; never produced for timestamps that passed validation.
            write!(f, "{year:+07}-{month:02}-{day:02}T{hours:02}:{minutes:02}:{seconds:02}.{ms:03}Z")
        }
    }
}

fn digits(bytes: &[u8]) -> Option<i64> {
    bytes.iter().try_fold(0i64, |acc, &c| c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0')))
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_libraries_send() {
        let cases = [
            ("1970-01-01T00:00:00Z", 0),
            ("1970-01-01T00:00:00.000Z", 0),
            ("2026-11-28T19:04:06.123Z", 1_795_892_646_123),
            ("2026-11-28T19:04:06.123456789Z", 1_795_892_646_123),
            ("2026-11-28 20:04:06.1+01:00", 1_795_892_646_100),
            ("2026-11-28T14:04:06-0500", 1_795_892_646_000),
            ("2000-02-29T00:00:00z", 951_782_400_000),
        ];
        for (text, ms) in cases {
            assert_eq!(Timestamp::parse_iso8601(text), Some(Timestamp(ms)), "{text}");
        }
    }

    #[test]
    fn rejects_what_is_not_a_full_timestamp() {
        for text in [
            "",
            "2026-11-28",
            "2026-11-28T19:04:06",
            "2026-13-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-11-28T24:00:00Z",
            "2026-11-28T19:04:06.Z",
            "2026-11-28T19:04:06+25:00",
            "2026-11-28T19:04:06Zjunk",
            "２026-11-28T19:04:06Z",
        ] {
            assert_eq!(Timestamp::parse_iso8601(text), None, "{text}");
        }
    }

    #[test]
    fn formats_like_to_iso_string_and_round_trips() {
        assert_eq!(Timestamp(1_795_892_646_123).to_string(), "2026-11-28T19:04:06.123Z");
        assert_eq!(Timestamp(-1).to_string(), "1969-12-31T23:59:59.999Z");
        for ms in [0, 951_782_400_000, 1_795_892_646_123, 4_102_444_799_999, -86_400_001] {
            let text = Timestamp(ms).to_string();
            assert_eq!(Timestamp::parse_iso8601(&text), Some(Timestamp(ms)), "{text}");
        }
    }
}
