//! Istio host names: short names qualified the way istiod qualifies them, and DestinationRule
//! hosts (possibly wildcards) matched to ServiceEntry hosts, most specific rule first.

/// The cluster domain istiod assumes for short names.
pub const CLUSTER_DOMAIN: &str = "svc.cluster.local";

/// `host` as istiod reads it in `namespace`: a short name (`web`) becomes
/// `web.<namespace>.svc.cluster.local`; names with a dot and wildcards stay as written.
#[must_use]
pub fn qualify(host: &str, namespace: &str) -> String {
    let host = host.trim().to_ascii_lowercase();
    if host.contains('.') || host.starts_with('*') {
        host
    } else {
        format!("{host}.{namespace}.{CLUSTER_DOMAIN}")
    }
}

/// How specifically `rule_host` matches `service_host`: `None` when it does not; higher is more
/// specific (an exact match beats every wildcard, a longer wildcard suffix beats a shorter one).
#[must_use]
pub fn match_rank(rule_host: &str, service_host: &str) -> Option<usize> {
    let service_host = service_host.to_ascii_lowercase();
    if rule_host == service_host {
        return Some(usize::MAX);
    }
    if rule_host == "*" {
        return Some(0);
    }
    let suffix = rule_host.strip_prefix('*')?;
    (service_host.ends_with(suffix) && service_host.len() > suffix.len()).then_some(suffix.len())
}

/// The Envoy cluster name istiod gives a service port: `outbound|<port>||<host>`.
#[must_use]
pub fn cluster_name(host: &str, port: u32) -> String {
    format!("outbound|{port}||{host}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualifies_short_names_only() {
        assert_eq!(qualify("web", "shop"), "web.shop.svc.cluster.local");
        assert_eq!(qualify("Web.Shop.Internal", "x"), "web.shop.internal");
        assert_eq!(qualify("*.shop.internal", "x"), "*.shop.internal");
    }

    #[test]
    fn exact_beats_longer_wildcard_beats_shorter() {
        let host = "api.eu.example.com";
        let exact = match_rank("api.eu.example.com", host).unwrap();
        let long = match_rank("*.eu.example.com", host).unwrap();
        let short = match_rank("*.example.com", host).unwrap();
        let any = match_rank("*", host).unwrap();
        assert!(exact > long && long > short && short > any);
        assert_eq!(match_rank("*.example.org", host), None);
        assert_eq!(match_rank("web.example.com", host), None);
        assert_eq!(match_rank("*.example.com", "example.com"), None);
    }
}
