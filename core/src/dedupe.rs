//! The deduplication memory: which message ids a profile has already applied.
//!
//! ```
//! use portrait_core::dedupe::{Key, MessageIds};
//! let mut seen = MessageIds::default();
//! assert!(seen.add(Key::of("0b5d0e4e-3c7a-4f5e-9a43-2f1c8d6b7a90")));
//! assert!(!seen.add(Key::of("0b5d0e4e-3c7a-4f5e-9a43-2f1c8d6b7a90")));
//! assert!(!seen.contains("0B5D0E4E-3C7A-4F5E-9A43-2F1C8D6B7A90")); // ids compare as text
//! ```

use foldhash::HashSet;
use serde::{Deserialize, Serialize};

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

/// A message id read once, then looked up in as many sets as needed, and stored as it is
/// held: a batch row keeps its ids [`encode`]d, so that a profile object reads its
/// deduplication memory back without decoding any event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Key<'a> {
    /// A lowercase, hyphenated UUID, as its 16 bytes.
    Uuid([u8; 16]),
    /// Any other id, as its text.
    Text(&'a str),
}

impl Key<'_> {
    pub fn of(id: &str) -> Key<'_> {
        match uuid_bytes(id) {
            Some(bytes) => Key::Uuid(bytes),
            None => Key::Text(id),
        }
    }
}

/// The ids as a batch row stores them (postcard: 17 bytes per UUID).
pub fn encode(keys: &[Key]) -> Vec<u8> {
    postcard::to_allocvec(keys).expect("a list of keys always encodes")
}

/// The ids of one or more lists [`encode`] stored, one after another: SQL can hand over many
/// rows' lists as one value (`group_concat`), which costs a load one value, not one per row.
/// At least one list: empty bytes are an error, as a cut list is.
pub fn decode(bytes: &[u8]) -> Result<Vec<Key<'_>>, postcard::Error> {
    let mut keys = Vec::new();
    let mut rest = bytes;
    loop {
        let (list, after) = postcard::take_from_bytes::<Vec<Key>>(rest)?;
        keys.extend(list);
        rest = after;
        if rest.is_empty() {
            return Ok(keys);
        }
    }
}

impl MessageIds {
    pub fn contains(&self, id: &str) -> bool {
        self.holds(&Key::of(id))
    }

    pub fn holds(&self, key: &Key) -> bool {
        match *key {
            Key::Uuid(bytes) => self.uuids.contains(&u128::from_be_bytes(bytes)),
            Key::Text(id) => self.others.contains(id),
        }
    }

    /// Takes `key` out; whether it was there.
    pub fn remove(&mut self, key: &Key) -> bool {
        match *key {
            Key::Uuid(bytes) => self.uuids.remove(&u128::from_be_bytes(bytes)),
            Key::Text(id) => self.others.remove(id),
        }
    }

    /// Adds `key`; false if it was there already.
    pub fn add(&mut self, key: Key) -> bool {
        match key {
            Key::Uuid(bytes) => self.uuids.insert(u128::from_be_bytes(bytes)),
            // Copies the text only when it is new.
            Key::Text(id) => !self.others.contains(id) && self.others.insert(id.into()),
        }
    }
}

impl<'a> Extend<Key<'a>> for MessageIds {
    fn extend<T: IntoIterator<Item = Key<'a>>>(&mut self, keys: T) {
        let keys = keys.into_iter();
        // Sized once: a reloading object adds thousands of ids at a time.
        self.uuids.reserve(keys.size_hint().0);
        for key in keys {
            self.add(key);
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
            assert!(seen.add(Key::of(id)), "{id}");
            assert!(seen.contains(id), "{id}");
            assert!(!seen.add(Key::of(id)), "{id}");
        }
        assert_eq!(seen.uuids.len(), 1, "only the canonical UUID is held as bytes");
        assert_eq!(seen.others.len(), cases.len() - 1);
    }

    #[test]
    fn a_batch_keeps_the_ids_neither_it_nor_the_profile_holds() {
        let mut seen = MessageIds::default();
        seen.extend(["0b5d0e4e-3c7a-4f5e-9a43-2f1c8d6b7a90", "m1"].map(Key::of));
        let batch = [
            "0b5d0e4e-3c7a-4f5e-9a43-2f1c8d6b7a90", // the profile's
            "m1",                                   // the profile's
            "1b5d0e4e-3c7a-4f5e-9a43-2f1c8d6b7a90",
            "1b5d0e4e-3c7a-4f5e-9a43-2f1c8d6b7a90", // twice in the batch
            "m2",
            "m2",
        ];
        let kept: Vec<&str> = batch.into_iter().filter(|id| seen.add(Key::of(id))).collect();
        assert_eq!(kept, ["1b5d0e4e-3c7a-4f5e-9a43-2f1c8d6b7a90", "m2"]);
        assert!(batch.iter().all(|id| seen.contains(id)));
    }

    #[test]
    fn stored_ids_read_back_as_the_same_ids() {
        let ids = ["0b5d0e4e-3c7a-4f5e-9a43-2f1c8d6b7a90", "0B5D0E4E-3C7A-4F5E-9A43-2F1C8D6B7A90", "m1", ""];
        let keys = ids.map(Key::of);
        let stored = encode(&keys);
        assert_eq!(stored.len(), 1 + 17 + (2 + 36) + (2 + 2) + 2, "a UUID takes 17 bytes");
        assert_eq!(decode(&stored).unwrap(), keys);
        let mut seen = MessageIds::default();
        seen.extend(decode(&stored).unwrap());
        assert!(ids.iter().all(|id| seen.contains(id)));
        assert!(seen.remove(&Key::of(ids[0])) && !seen.contains(ids[0]) && seen.contains(ids[1]));
        assert!(decode(&stored[..stored.len() - 1]).is_err(), "a cut list is an error");
        let two_rows = [encode(&keys[..1]), encode(&keys[1..])].concat();
        assert_eq!(decode(&two_rows).unwrap(), keys, "lists one after another read as one");
        assert!(decode(&two_rows[..two_rows.len() - 1]).is_err(), "a cut last list is an error");
        assert!(decode(&[]).is_err(), "no list at all is an error");
    }
}
