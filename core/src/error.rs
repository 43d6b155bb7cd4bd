//! Typed rejections. Every error has a stable machine code ([`ErrorKind::code`]), the path of
//! the offending field in Segment's JSON vocabulary (`batch[3].properties.items[2]`) and a
//! message that names the limit it broke.

use std::fmt;

use crate::limits;

#[derive(Clone, Debug, PartialEq)]
pub struct Error {
    /// Where, e.g. `batch[3].properties.items[2]`; empty for the whole body.
    pub path: String,
    pub kind: ErrorKind,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ErrorKind {
    /// The body is not valid JSON / not a valid beacon; the detail says where it broke.
    Malformed(String),
    /// The beacon does not start with the magic bytes.
    NotABeacon,
    UnsupportedVersion(u8),
    WrongType {
        expected: &'static str,
        found: &'static str,
    },
    Missing,
    /// `anonymousId` and `userId` are both absent.
    NoIdentity,
    /// Every id of the event is a placeholder (`null`, `0`, …) that must not link anyone.
    PlaceholderIdentity,
    UnknownType(String),
    /// `size` in bytes: a declared length may pass what `usize` holds on wasm32.
    BodyTooLarge {
        size: u64,
    },
    TooManyEvents {
        count: usize,
    },
    EventTooLarge {
        size: usize,
    },
    TooDeep,
    KeyTooLong {
        len: usize,
    },
    /// `__proto__`: a JavaScript consumer of the data (a dashboard, a webhook receiver) could
    /// take it for an object's prototype.
    ForbiddenKey,
    StringTooLong {
        len: usize,
    },
    IdTooLong {
        len: usize,
    },
    BadTimestamp,
    TimestampOutOfRange,
    /// Older than the collector's deduplication window.
    TooOld,
    NonFiniteNumber,
    /// A beacon reference points outside its table.
    BadReference {
        table: &'static str,
        index: u32,
    },
}

impl ErrorKind {
    /// Stable code for APIs and logs; never renamed once published.
    pub fn code(&self) -> &'static str {
        match self {
            ErrorKind::Malformed(_) => "malformed",
            ErrorKind::NotABeacon => "not_a_beacon",
            ErrorKind::UnsupportedVersion(_) => "unsupported_version",
            ErrorKind::WrongType { .. } => "wrong_type",
            ErrorKind::Missing => "missing_field",
            ErrorKind::NoIdentity => "no_identity",
            ErrorKind::PlaceholderIdentity => "placeholder_identity",
            ErrorKind::UnknownType(_) => "unknown_type",
            ErrorKind::BodyTooLarge { .. } => "body_too_large",
            ErrorKind::TooManyEvents { .. } => "too_many_events",
            ErrorKind::EventTooLarge { .. } => "event_too_large",
            ErrorKind::TooDeep => "too_deep",
            ErrorKind::KeyTooLong { .. } => "key_too_long",
            ErrorKind::ForbiddenKey => "forbidden_key",
            ErrorKind::StringTooLong { .. } => "string_too_long",
            ErrorKind::IdTooLong { .. } => "id_too_long",
            ErrorKind::BadTimestamp => "bad_timestamp",
            ErrorKind::TimestampOutOfRange => "timestamp_out_of_range",
            ErrorKind::TooOld => "too_old",
            ErrorKind::NonFiniteNumber => "non_finite_number",
            ErrorKind::BadReference { .. } => "bad_reference",
        }
    }

    /// Whether the whole request is too big (HTTP 413) rather than wrong (400).
    pub fn is_size_limit(&self) -> bool {
        matches!(self, ErrorKind::BodyTooLarge { .. } | ErrorKind::TooManyEvents { .. })
    }
}

impl Error {
    pub fn new(path: impl Into<String>, kind: ErrorKind) -> Error {
        Error { path: path.into(), kind }
    }

    /// The same error seen from one level up: `prefix` is prepended to the path.
    pub fn within(mut self, prefix: &str) -> Error {
        self.path = match self.path.is_empty() {
            true => prefix.to_owned(),
            false if self.path.starts_with('[') => format!("{prefix}{}", self.path),
            false => format!("{prefix}.{}", self.path),
        };
        self
    }

    /// The message without the path.
    pub fn message(&self) -> String {
        use ErrorKind::*;
        match &self.kind {
            Malformed(detail) => format!("malformed body: {detail}"),
            NotABeacon => "not a Portrait beacon (bad magic bytes)".to_owned(),
            UnsupportedVersion(v) => format!(
                "beacon format version {v} is not supported (this collector reads version {})",
                crate::beacon::VERSION
            ),
            WrongType { expected, found } => format!("expected {expected}, found {found}"),
            Missing => "required field is missing".to_owned(),
            NoIdentity => "one of anonymousId or userId is required".to_owned(),
            PlaceholderIdentity => "every id of this event is a placeholder (such as `null`, `0` or `anonymous`) that must not link anyone: send a real anonymousId or userId".to_owned(),
            UnknownType(t) => {
                format!("unknown call type `{t}` (expected page, screen, track, identify, group or alias)")
            }
            BodyTooLarge { size } => {
                format!("body of {size} bytes exceeds the limit of {} bytes", limits::MAX_BATCH_BYTES)
            }
            TooManyEvents { count } => {
                format!("{count} events exceed the limit of {} per batch", limits::MAX_BATCH_EVENTS)
            }
            EventTooLarge { size } => {
                format!("event of {size} bytes exceeds the limit of {} bytes", limits::MAX_EVENT_BYTES)
            }
            TooDeep => format!("nesting deeper than {}", limits::MAX_DEPTH),
            KeyTooLong { len } => {
                format!("key of {len} bytes exceeds the limit of {} bytes", limits::MAX_KEY_BYTES)
            }
            ForbiddenKey => "`__proto__` is not accepted as a key (JavaScript would read it as a prototype)".to_owned(),
            StringTooLong { len } => {
                format!("string of {len} bytes exceeds the limit of {} bytes", limits::MAX_STRING_BYTES)
            }
            IdTooLong { len } => {
                format!("value of {len} bytes exceeds the limit of {} bytes", limits::MAX_ID_BYTES)
            }
            BadTimestamp => "expected an ISO-8601 timestamp with a time zone".to_owned(),
            TimestampOutOfRange => format!(
                "timestamp outside {} .. {}",
                crate::Timestamp(limits::MIN_TIMESTAMP_MS),
                crate::Timestamp(limits::MAX_TIMESTAMP_MS)
            ),
            TooOld => format!(
                "older than {} days: outside the deduplication window",
                crate::enrich::MAX_EVENT_AGE_MS / 86_400_000
            ),
            NonFiniteNumber => "NaN and infinite numbers are not allowed".to_owned(),
            BadReference { table, index } => format!("reference {index} outside the {table} table"),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.path.is_empty() {
            true => f.write_str(&self.message()),
            false => write!(f, "{}: {}", self.path, self.message()),
        }
    }
}

impl std::error::Error for Error {}
