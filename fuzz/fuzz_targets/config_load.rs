//! Any text: the configuration loader answers a configuration or a located error, never
//! panics; a configuration it accepts names every audience rule parsed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portrait_core::config::Config;

fuzz_target!(|text: &str| {
    if let Ok(config) = Config::parse(text) {
        for workspace in &config.workspaces {
            assert!(workspace.audiences.iter().all(|a| a.parsed.is_some()));
        }
    }
});
