//! The agent's loader on arbitrary text: agent YAML and Istio documents (`---`-separated) go
//! through parsing, both front ends and validation. It may refuse anything, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xds_agent::config::{Source, load_sources};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = load_sources(&[Source {
        file: "fuzz.yaml".into(),
        text: text.to_owned(),
    }]);
});
