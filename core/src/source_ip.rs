//! The client's IP address: from the connection (`source.address`) or from X-Forwarded-For.

use std::net::{IpAddr, SocketAddr};

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
