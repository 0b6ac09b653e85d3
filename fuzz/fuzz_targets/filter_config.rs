//! The filter configuration as the filter reads it (`FilterConfig::from_json`): whatever parses
//! also compiles, and its canonical JSON reads back to the same configuration.
#![no_main]

use affinity_core::{AffinityPolicy, FilterConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(config) = FilterConfig::from_json(data) {
        let again = FilterConfig::from_json(config.to_json().as_bytes());
        assert_eq!(
            again.as_ref().ok(),
            Some(&config),
            "canonical JSON does not read back"
        );
        assert!(
            AffinityPolicy::new(config).is_ok(),
            "a parsed configuration does not compile"
        );
    }
});
