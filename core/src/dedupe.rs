//! The deduplication memory: which message ids a profile has already applied.
//!
//! ```
//! use portrait_core::dedupe::MessageIds;
//! let mut seen = MessageIds::default();
//! assert!(seen.insert("0b5d0e4e-3c7a-4f5e-9a43-2f1c8d6b7a90"));
//! assert!(!seen.insert("0b5d0e4e-3c7a-4f5e-9a43-2f1c8d6b7a90"));
//! assert!(!seen.contains("0B5D0E4E-3C7A-4F5E-9A43-2F1C8D6B7A90")); // ids compare as text
//! ```

use foldhash::{HashSet, HashSetExt};

use crate::beacon::uuid_bytes;

/// A set of message ids. Ids in the form the SDK sends (a lowercase, hyphenated UUID) are
/// held as 16 bytes and other ids as text, so membership is exactly that of the text, while
/// the common case costs no allocation and hashes a number, not a 36-byte string (both
/// showed up in the collector's profile: a profile object adds 20 ids per batch to a set of
/// thousands).
#[derive(Clone, Debug, Default)]
pub struct MessageIds {
    uuids: HashSet<u128>,
    others: HashSet<Box<str>>,
}

/// A message id as the set holds it: read once, then looked up in as many sets as needed.
enum Key<'a> {
    Uuid(u128),
    Text(&'a str),
}

impl Key<'_> {
    fn of(id: &str) -> Key<'_> {
        match uuid_bytes(id) {
            Some(bytes) => Key::Uuid(u128::from_be_bytes(bytes)),
            None => Key::Text(id),
        }
    }
}

impl MessageIds {
    pub fn with_capacity(capacity: usize) -> MessageIds {
        MessageIds { uuids: HashSet::with_capacity(capacity), others: HashSet::new() }
    }

    pub fn contains(&self, id: &str) -> bool {
        self.holds(&Key::of(id))
    }

    /// Adds `id`; false if it was there already.
    pub fn insert(&mut self, id: &str) -> bool {
        self.add(Key::of(id))
    }

    /// Adds `id` unless `earlier` or this set holds it; whether it was added. One reading of
    /// the id serves both sets: a batch's ids, checked against its profile's.
    pub fn insert_if_new(&mut self, id: &str, earlier: &MessageIds) -> bool {
        let key = Key::of(id);
        !earlier.holds(&key) && self.add(key)
    }

    /// Adds every id of `other`.
    pub fn absorb(&mut self, other: MessageIds) {
        self.uuids.extend(other.uuids);
        self.others.extend(other.others);
    }

    fn holds(&self, key: &Key) -> bool {
        match *key {
            Key::Uuid(uuid) => self.uuids.contains(&uuid),
            Key::Text(id) => self.others.contains(id),
        }
    }

    fn add(&mut self, key: Key) -> bool {
        match key {
            Key::Uuid(uuid) => self.uuids.insert(uuid),
            // Copies the text only when it is new.
            Key::Text(id) => !self.others.contains(id) && self.others.insert(id.into()),
        }
    }
}

impl<'a> Extend<&'a str> for MessageIds {
    fn extend<T: IntoIterator<Item = &'a str>>(&mut self, ids: T) {
        for id in ids {
            self.insert(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn membership_is_that_of_the_text() {
        let lower = "0b5d0e4e-3c7a-4f5e-9a43-2f1c8d6b7a90";
        let cases = [
            lower,
            "0B5D0E4E-3C7A-4F5E-9A43-2F1C8D6B7A90", // same UUID, other text: another id
            "0b5d0e4e3c7a4f5e9a432f1c8d6b7a90",     // no hyphens
            "m1",
            "",
        ];
        let mut seen = MessageIds::default();
        for (i, id) in cases.iter().enumerate() {
            assert!(cases[i..].iter().all(|later| !seen.contains(later)), "{id}");
            assert!(seen.insert(id), "{id}");
            assert!(seen.contains(id), "{id}");
            assert!(!seen.insert(id), "{id}");
        }
        assert_eq!(seen.uuids.len(), 1, "only the canonical UUID is held as bytes");
        assert_eq!(seen.others.len(), cases.len() - 1);
    }

    #[test]
    fn a_batch_keeps_the_ids_neither_it_nor_the_profile_holds() {
        let profile: MessageIds = {
            let mut ids = MessageIds::default();
            ids.extend(["0b5d0e4e-3c7a-4f5e-9a43-2f1c8d6b7a90", "m1"]);
            ids
        };
        let batch = [
            "0b5d0e4e-3c7a-4f5e-9a43-2f1c8d6b7a90", // the profile's
            "m1",                                   // the profile's
            "1b5d0e4e-3c7a-4f5e-9a43-2f1c8d6b7a90",
            "1b5d0e4e-3c7a-4f5e-9a43-2f1c8d6b7a90", // twice in the batch
            "m2",
            "m2",
        ];
        let mut fresh = MessageIds::default();
        let kept: Vec<&str> = batch.into_iter().filter(|id| fresh.insert_if_new(id, &profile)).collect();
        assert_eq!(kept, ["1b5d0e4e-3c7a-4f5e-9a43-2f1c8d6b7a90", "m2"]);
        let mut all = profile.clone();
        all.absorb(fresh);
        assert!(batch.iter().all(|id| all.contains(id)));
    }
}
