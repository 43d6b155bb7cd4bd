//! Any text: an audience rule parses or gives an error located inside the text, never
//! panics; a parsed rule prints as text that parses to the same rule (when the canonical
//! text stays within the length limit: printing may add spaces and parentheses), and
//! evaluates.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portrait_core::audience::{Fact, Facts, MAX_RULE_BYTES, Rule};

/// Facts that answer every name with the same few values.
struct Some3;

impl Facts for Some3 {
    fn value(&self, name: &str) -> Fact<'_> {
        match name.len() % 4 {
            0 => Fact::Null,
            1 => Fact::Bool(true),
            2 => Fact::Number(f64::NAN),
            _ => Fact::Text(name.to_owned().into()),
        }
    }
    fn interest(&self, topic: &str) -> f64 {
        topic.len() as f64 / 10.0
    }
    fn site_tag(&self, _: &str) -> f64 {
        0.5
    }
    fn trait_value(&self, key: &str) -> Fact<'_> {
        Fact::Text(key.to_owned().into())
    }
}

fuzz_target!(|text: &str| {
    match Rule::parse(text) {
        Ok(rule) => {
            let printed = rule.to_string();
            if printed.len() <= MAX_RULE_BYTES {
                let again = Rule::parse(&printed).expect("a printed rule parses");
                assert_eq!(again, rule);
            }
            let _ = rule.eval(&Some3);
        }
        Err(error) => {
            let lines = text.split('\n').count();
            assert!(error.line >= 1 && error.line <= lines.max(1), "line {} of {lines}", error.line);
        }
    }
});
