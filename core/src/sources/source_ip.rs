//! `{"sourceIp": {"trustedHops": 0}}`: the client's IP address, from the connection
//! (`source.address`) or from X-Forwarded-For, in canonical form.

use std::net::{IpAddr, SocketAddr};

use serde::Serialize;

use super::{Extraction, KeySource};
use crate::body::Lookup;
use crate::config::decode::{Decoded, Fields, unsigned};
use crate::config::json::Value;
use crate::request::RequestView;

/// Where the client's IP address is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceIp {
    /// 0: the connection's address (`source.address`). N > 0: skip N entries from the right of
    /// X-Forwarded-For and use the next one (Envoy's `xff_num_trusted_hops` meaning), falling back
    /// to the connection's address when the header has no such entry or it is not an IP address.
    pub trusted_hops: u32,
}

pub(crate) fn decode(inner: &Value, path: &str) -> Decoded<KeySource> {
    let mut fields = Fields::of(inner, path, "an object")?;
    let trusted_hops = fields.field(
        "trustedHops",
        |value, path| unsigned(value, path, u64::from(u32::MAX)),
        || 0,
    )?;
    fields.finish(&["trustedHops"])?;
    Ok(KeySource::SourceIp(SourceIp {
        trusted_hops: trusted_hops as u32,
    }))
}

/// The address is never case-folded: its canonical form is already unique.
pub(crate) fn value<R: RequestView>(
    source_ip: &SourceIp,
    extraction: &Extraction<'_, R>,
) -> Lookup {
    let request = extraction.request;
    let forwarded = match source_ip.trusted_hops {
        0 => None,
        hops => forwarded_for_ip(&request.header_values("x-forwarded-for"), hops),
    };
    forwarded
        .or_else(|| canonical_ip(&request.source_address()?))
        .map_or(Lookup::Missing, |ip| Lookup::Found(ip.into_bytes()))
}

/// Parses an address with or without a port (`10.0.0.1`, `10.0.0.1:80`, `::1`, `[::1]:80`) into
/// its canonical text form (IPv4-mapped IPv6 becomes IPv4). `None` if it is not an IP address.
pub fn canonical_ip(address: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(address).ok()?.trim();
    let ip = text
        .parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<SocketAddr>().ok().map(|socket| socket.ip()))?;
    Some(ip.to_canonical().to_string())
}

/// The X-Forwarded-For entry `trusted_hops` entries from the right (skipping `trusted_hops`
/// entries, as Envoy's `xff_num_trusted_hops` does), over all header copies joined in order,
/// as a canonical IP. `None` when there is no such entry or it is not an IP address.
pub fn forwarded_for_ip(xff_headers: &[&[u8]], trusted_hops: u32) -> Option<String> {
    let hops = usize::try_from(trusted_hops).ok()?;
    let entry = xff_headers
        .iter()
        .rev()
        .flat_map(|header| header.rsplit(|&byte| byte == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|entry| !entry.is_empty())
        .nth(hops)?;
    canonical_ip(entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_ip_strips_ports_and_normalises() {
        assert_eq!(canonical_ip(b"10.1.2.3:5678").as_deref(), Some("10.1.2.3"));
        assert_eq!(canonical_ip(b"10.1.2.3").as_deref(), Some("10.1.2.3"));
        assert_eq!(canonical_ip(b"[::1]:80").as_deref(), Some("::1"));
        assert_eq!(canonical_ip(b"0:0:0:0:0:0:0:1").as_deref(), Some("::1"));
        assert_eq!(
            canonical_ip(b"[2001:DB8::1]:443").as_deref(),
            Some("2001:db8::1")
        );
        assert_eq!(
            canonical_ip(b"[::ffff:10.0.0.1]:80").as_deref(),
            Some("10.0.0.1")
        );
    }

    #[test]
    fn canonical_ip_rejects_non_addresses() {
        for bad in [
            &b""[..],
            b"pipe",
            b"unix:/tmp/x",
            b"10.0.0",
            b"10.0.0.1:",
            b"\xff",
            b"::1:80x",
            b"[::1]",
        ] {
            assert_eq!(canonical_ip(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn forwarded_for_skips_trusted_hops_from_the_right() {
        let xff: &[&[u8]] = &[b"203.0.113.7, 198.51.100.1, 10.0.0.2"];
        assert_eq!(forwarded_for_ip(xff, 0).as_deref(), Some("10.0.0.2"));
        assert_eq!(forwarded_for_ip(xff, 1).as_deref(), Some("198.51.100.1"));
        assert_eq!(forwarded_for_ip(xff, 2).as_deref(), Some("203.0.113.7"));
        assert_eq!(forwarded_for_ip(xff, 3), None);
        assert_eq!(forwarded_for_ip(xff, u32::MAX), None);
    }

    #[test]
    fn forwarded_for_joins_header_copies_in_order() {
        let xff: &[&[u8]] = &[b"203.0.113.7", b"198.51.100.1,10.0.0.2"];
        assert_eq!(forwarded_for_ip(xff, 2).as_deref(), Some("203.0.113.7"));
        assert_eq!(forwarded_for_ip(xff, 1).as_deref(), Some("198.51.100.1"));
    }

    #[test]
    fn forwarded_for_tolerates_ports_spaces_and_empty_entries() {
        let xff: &[&[u8]] = &[b" [2001:db8::7]:1234 ,, 10.0.0.2:80 , "];
        assert_eq!(forwarded_for_ip(xff, 0).as_deref(), Some("10.0.0.2"));
        assert_eq!(forwarded_for_ip(xff, 1).as_deref(), Some("2001:db8::7"));
    }

    #[test]
    fn forwarded_for_garbage_is_none() {
        let xff: &[&[u8]] = &[b"unknown, \xff\xfe, 10.0.0.1"];
        assert_eq!(forwarded_for_ip(xff, 1), None);
        assert_eq!(forwarded_for_ip(xff, 2), None);
        assert_eq!(forwarded_for_ip(&[b""], 0), None);
        assert_eq!(forwarded_for_ip(&[], 0), None);
    }
}
