//! Each request parser on arbitrary bytes: cookies, the query string, X-Forwarded-For and source
//! addresses. None may panic.
#![no_main]

use affinity_core::sources::cookie::find_cookie;
use affinity_core::sources::query::find_query_param;
use affinity_core::sources::source_ip::{canonical_ip, forwarded_for_ip};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let parts: Vec<&[u8]> = data.split(|&byte| byte == 0).collect();
    let name = String::from_utf8_lossy(parts.first().copied().unwrap_or_default());
    let _ = find_cookie(&parts, &name);
    for part in &parts {
        let _ = find_query_param(part, &name);
        let _ = canonical_ip(part);
    }
    for hops in 0..4 {
        let _ = forwarded_for_ip(&parts, hops);
    }
});
