//! The browser SDK's rules, without a browser: everything `sdk/` decides, as plain functions
//! and state machines over values, so it is tested natively and shared byte for byte.
//!
//! - [`url`]: the parts of a URL the SDK reads (host, path, query, extension).
//! - [`campaign`]: UTM parameters and ad click ids from a landing URL; referrer channels.
//! - [`session`]: session id and count (30 minutes of inactivity or a new campaign).
//! - [`consent`]: consent categories and what each decision allows.
//! - [`queue`]: the persisted, bounded event queue: batches, acks, retries with backoff.
//! - [`capture`]: autocapture rules: link kinds, scroll milestones, element text.

pub mod campaign;
pub mod capture;
pub mod consent;
pub mod queue;
pub mod session;
pub mod url;

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

#[cfg(test)]
mod tests {
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
