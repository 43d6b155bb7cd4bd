//! The limits every event and batch must respect, in either wire format. Documented in
//! ARCHITECTURE.md ("Limits"); tests pin each one at its boundary.

/// One event, measured as its canonical Segment JSON encoding.
pub const MAX_EVENT_BYTES: usize = 32 * 1024;
/// One request body, either format.
pub const MAX_BATCH_BYTES: usize = 500 * 1024;
pub const MAX_BATCH_EVENTS: usize = 500;
/// Containers below `properties`, `traits` or `context`: `properties` itself is level 1.
pub const MAX_DEPTH: usize = 8;
/// Object keys anywhere in properties, traits and context.
pub const MAX_KEY_BYTES: usize = 255;
/// String values anywhere in properties, traits and context.
pub const MAX_STRING_BYTES: usize = 8 * 1024;
/// `text` cut to at most `max_bytes` bytes, at a character boundary.
pub fn cut_at_char(text: &str, max_bytes: usize) -> &str {
    let mut end = max_bytes.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Identifiers and names: messageId, anonymousId, userId, groupId, previousId, event, name, category.
pub const MAX_ID_BYTES: usize = 255;
/// Event times outside `[2000-01-01, 2100-01-01)` are rejected as clock garbage.
/// (Times in the near future are clamped by the collector, see `enrich`.)
pub const MIN_TIMESTAMP_MS: i64 = 946_684_800_000;
pub const MAX_TIMESTAMP_MS: i64 = 4_102_444_800_000;
