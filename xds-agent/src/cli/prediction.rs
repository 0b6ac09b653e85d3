//! What `explain` and `simulate` share: a service's backends and load balancer as
//! `affinity-predictor` sees them, and the request hash Envoy computes for an affinity key.
//!
//! The load-balancer settings come from [`crate::lb_defaults::effective_load_balancer`], the same
//! pure function the translator uses, so the prediction follows the agent's defaults exactly.

use std::fmt;
use std::path::Path;

use affinity_core::key::normalise;
use affinity_core::sources::source_ip::canonical_ip;
use affinity_core::{AffinityPolicy, BodyIssue, Outcome, OwnedRequest, SourceKind};
use affinity_core::{FilterConfig, hash::affinity_header_value_bytes};
use affinity_predictor::{Balancer, Host, RingHashFunction, RingHashSettings, header_hash};

use crate::config;
use crate::lb_defaults::{EffectiveLoadBalancer, effective_load_balancer};
use crate::model::{
    AffinityPlan, Endpoint, EndpointAddress, EndpointHealth, HashFunction, HashPolicy, Service,
};

/// Why a prediction cannot be made; printed as is.
#[derive(Debug)]
pub struct PredictionError(pub String);

impl fmt::Display for PredictionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Prints a command's report and exits 0, or prints the error and exits 64 (`explain` and `simulate`).
#[must_use]
pub fn print_report(report: Result<String, PredictionError>) -> std::process::ExitCode {
    match report {
        Ok(text) => {
            print!("{text}");
            std::process::ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{error}");
            std::process::ExitCode::from(super::EXIT_INVALID_CONFIG)
        }
    }
}

/// A service loaded from the agent's configuration, ready for predictions.
pub struct ServicePrediction {
    /// The service as configured.
    pub service: Service,
    /// The load balancer the agent configures for it.
    pub load_balancer: EffectiveLoadBalancer,
}

impl ServicePrediction {
    /// Loads `config_path` (file or directory) and finds `service_name` in it.
    ///
    /// # Errors
    /// The configuration's errors (file:line), or an unknown service naming the known ones.
    pub fn load(config_path: &Path, service_name: &str) -> Result<Self, PredictionError> {
        let loaded =
            config::load(config_path).map_err(|errors| PredictionError(errors.to_string()))?;
        let known: Vec<&str> = loaded
            .config
            .services
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        let service = loaded
            .config
            .services
            .iter()
            .find(|service| service.name == service_name)
            .cloned()
            .ok_or_else(|| {
                PredictionError(format!(
                    "--service: no service {service_name:?} in {} (services: {})",
                    config_path.display(),
                    known.join(", ")
                ))
            })?;
        Ok(Self::of(service))
    }

    /// The prediction for `service` as configured.
    #[must_use]
    pub fn of(service: Service) -> Self {
        let load_balancer = effective_load_balancer(&service);
        Self {
            service,
            load_balancer,
        }
    }

    /// The same service with other endpoints: its load balancer is recomputed as the agent would
    /// (a default ring size follows the endpoints).
    #[must_use]
    pub fn with_endpoints(&self, endpoints: Vec<Endpoint>) -> Self {
        let mut service = self.service.clone();
        service.endpoints = endpoints;
        Self::of(service)
    }

    /// The service's endpoints as predictor hosts.
    ///
    /// # Errors
    /// A DNS endpoint: Envoy hashes the addresses the name resolves to, unknown here.
    pub fn hosts(&self) -> Result<Vec<Host>, PredictionError> {
        // Envoy excludes DRAINING endpoints from its ring / table.
        self.service
            .endpoints
            .iter()
            .filter(|endpoint| endpoint.health == EndpointHealth::Serving)
            .map(|endpoint| match &endpoint.address {
                EndpointAddress::Ip(address) => Ok(Host {
                    address: address.to_string(),
                    hash_key: endpoint.hash_key.clone(),
                    weight: endpoint.weight,
                }),
                EndpointAddress::Dns { .. } => Err(PredictionError(format!(
                    "services[{}].endpoints: {} is a DNS name; Envoy places the addresses it \
                     resolves to, which cannot be predicted here",
                    self.service.name, endpoint.address
                ))),
            })
            .collect()
    }

    /// Envoy's ring or table over `hosts` with this service's settings.
    ///
    /// # Errors
    /// Hosts or settings the predictor cannot reproduce (e.g. two hosts with one `hashKey`).
    pub fn balancer(&self, hosts: Vec<Host>) -> Result<Balancer, PredictionError> {
        let built = match self.load_balancer {
            EffectiveLoadBalancer::RingHash {
                minimum_ring_size,
                maximum_ring_size,
                hash_function,
                ..
            } => Balancer::ring_hash(
                hosts,
                RingHashSettings {
                    min_ring_size: minimum_ring_size,
                    max_ring_size: maximum_ring_size,
                    hash_function: match hash_function {
                        HashFunction::XxHash => RingHashFunction::XxHash,
                        HashFunction::MurmurHash2 => RingHashFunction::MurmurHash2,
                    },
                },
            ),
            EffectiveLoadBalancer::Maglev { table_size, .. } => Balancer::maglev(hosts, table_size),
        };
        built.map_err(|error| PredictionError(format!("services[{}]: {error}", self.service.name)))
    }

    /// A one-line description of the load balancer, e.g. `ring hash (6144 entries, xxHash)`.
    #[must_use]
    pub fn describe_load_balancer(&self) -> String {
        let (mut text, factor) = match self.load_balancer {
            EffectiveLoadBalancer::RingHash {
                minimum_ring_size,
                maximum_ring_size,
                hash_function,
                hash_balance_factor,
            } => (
                format!(
                    "ring hash (minimum ring size {minimum_ring_size}, maximum {maximum_ring_size}, {})",
                    match hash_function {
                        HashFunction::XxHash => "xxHash",
                        HashFunction::MurmurHash2 => "MurmurHash2",
                    }
                ),
                hash_balance_factor,
            ),
            EffectiveLoadBalancer::Maglev {
                table_size,
                hash_balance_factor,
            } => (
                format!("maglev (table size {table_size})"),
                hash_balance_factor,
            ),
        };
        if let Some(factor) = factor {
            text.push_str(&format!(
                "; bounded load {factor}%: the prediction holds while that host is not over its bound"
            ));
        }
        text
    }

    /// How the service's affinity is served, e.g. `native (mode auto; every key source ...)`.
    #[must_use]
    pub fn describe_affinity(&self) -> String {
        match self.service.affinity_summary() {
            Some(summary) => format!(
                "{} (mode {}; {})",
                summary.served, summary.mode, summary.reason
            ),
            None => "none (no affinity)".to_owned(),
        }
    }

    /// How a request carrying affinity key `key` is hashed, step by step.
    ///
    /// # Errors
    /// A `--source` that is not one of the filter's kinds, or a key that normalises to nothing.
    pub fn request_hash(
        &self,
        key: &str,
        source: Option<&str>,
    ) -> Result<KeyHash, PredictionError> {
        match (
            &self.service.hash_policy,
            self.service.affinity_plan(),
            &self.service.affinity,
        ) {
            (Some(policy), _, _) => Ok(KeyHash {
                header: None,
                hashed: key.as_bytes().to_vec(),
                hashed_what: describe_policy(policy),
                hash: header_hash(key.as_bytes()),
            }),
            (None, Some(AffinityPlan::Native(policies)), Some(filter)) => {
                native_hash(filter, &policies, key, source)
            }
            (None, _, Some(filter)) => filter_hash(filter, key, source),
            (None, _, None) => Ok(KeyHash {
                header: None,
                hashed: key.as_bytes().to_vec(),
                hashed_what: "header x-affinity-key (no filter: sent by the client)".to_owned(),
                hash: header_hash(key.as_bytes()),
            }),
        }
    }
}

impl ServicePrediction {
    /// How a JSON request body is keyed: the service's whole filter configuration runs on a
    /// `POST` with `content-type: application/json`, that body and no other header.
    ///
    /// # Errors
    /// The service hashes natively (no filter reads the body), or no key source finds a key.
    pub fn body_hash(&self, body: &[u8]) -> Result<(KeyHash, SourceKind), PredictionError> {
        let Some(filter) = (self.service.hash_policy.is_none())
            .then(|| self.service.filter_affinity())
            .flatten()
        else {
            return Err(PredictionError(format!(
                "--body: service {} runs no affinity filter, so no body is read",
                self.service.name
            )));
        };
        let policy = AffinityPolicy::new(filter.clone())
            .map_err(|errors| PredictionError(format!("affinity: {errors}")))?;
        let request = OwnedRequest::new()
            .header(":method", "POST")
            .header("content-type", "application/json")
            .body(body);
        let decision = policy.evaluate(&request, || None);
        let Outcome::Keyed {
            source,
            header_value,
        } = decision.outcome
        else {
            let why = match decision.body_issue {
                Some(BodyIssue::NotJson) => " (the body is not JSON)",
                Some(BodyIssue::Truncated) => " (the body ends inside the JSON document)",
                Some(BodyIssue::TooLarge) => " (the key was not decided within maxBodyBytes)",
                None => "",
            };
            return Err(PredictionError(format!(
                "--body: no key source finds a key in this body{why}; the filter's onMissing applies"
            )));
        };
        Ok((
            KeyHash::of_filter_header(&filter.output_header, header_value),
            source,
        ))
    }
}

/// The steps from an affinity key to Envoy's request hash.
pub struct KeyHash {
    /// The filter's output header and the value it writes, when the filter runs.
    pub header: Option<(String, Vec<u8>)>,
    /// The bytes Envoy's `hash_policy` hashes.
    pub hashed: Vec<u8>,
    /// What those bytes are (which request property).
    pub hashed_what: String,
    /// The 64-bit request hash.
    pub hash: u64,
}

fn describe_policy(policy: &HashPolicy) -> String {
    match policy {
        HashPolicy::Header { name } => format!("header {name}"),
        HashPolicy::Cookie { name, .. } => format!("cookie {name}"),
        HashPolicy::SourceIp => "source IP".to_owned(),
        HashPolicy::QueryParameter { name } => format!("query parameter {name}"),
    }
}

/// The kind `--source` names, or the kind of the first key source.
fn source_kind(filter: &FilterConfig, source: Option<&str>) -> Result<SourceKind, PredictionError> {
    match source {
        Some(name) => SourceKind::from_name(name).ok_or_else(|| {
            let kinds = SourceKind::ALL.map(SourceKind::as_str);
            PredictionError(format!(
                "--source: {name:?} is not one of {}",
                kinds.join(", ")
            ))
        }),
        None => filter.keys.first().map(SourceKind::of).ok_or_else(|| {
            PredictionError("affinity.keys: the filter has no key source".to_owned())
        }),
    }
}

/// Served natively: Envoy's `hash_policy` of the first key source of that kind hashes the value
/// as Envoy reads it (not trimmed, not decoded; an address without its port) — xxHash64, seed 0.
fn native_hash(
    filter: &FilterConfig,
    policies: &[HashPolicy],
    key: &str,
    source: Option<&str>,
) -> Result<KeyHash, PredictionError> {
    let kind = source_kind(filter, source)?;
    // A native plan has one policy per key source, in the same order.
    let policy = filter
        .keys
        .iter()
        .position(|k| SourceKind::of(k) == kind)
        .and_then(|index| policies.get(index))
        .ok_or_else(|| {
            PredictionError(format!(
                "--source {}: the service has no such key source",
                kind.as_str()
            ))
        })?;
    let hashed = match policy {
        HashPolicy::SourceIp => canonical_ip(key.as_bytes())
            .map(String::into_bytes)
            .ok_or_else(|| PredictionError(format!("--key: {key:?} is not an IP address")))?,
        _ => key.as_bytes().to_vec(),
    };
    Ok(KeyHash {
        header: None,
        hash: header_hash(&hashed),
        hashed,
        hashed_what: format!(
            "{} (native hash_policy, no filter)",
            describe_policy(policy)
        ),
    })
}

fn filter_hash(
    filter: &FilterConfig,
    key: &str,
    source: Option<&str>,
) -> Result<KeyHash, PredictionError> {
    let kind = source_kind(filter, source)?;
    let empty = || {
        PredictionError("--key: empty after trimming; the filter treats it as missing".to_owned())
    };
    let value = match kind {
        SourceKind::SourceIp => canonical_ip(key.as_bytes())
            .map(String::into_bytes)
            .ok_or_else(|| PredictionError(format!("--key: {key:?} is not an IP address")))?,
        // A composite key is given already joined; only the parts are trimmed and case-folded.
        SourceKind::Composite => key.as_bytes().to_vec(),
        SourceKind::Header | SourceKind::Cookie | SourceKind::Query | SourceKind::JsonBody => {
            normalise(key.as_bytes(), filter.lowercase).ok_or_else(empty)?
        }
        // The key is a digest of the prompt: only the request body can give it.
        SourceKind::PromptPrefix => {
            return Err(PredictionError(
                "--source promptPrefix: the key is a digest of the prompt; give the request body with --body FILE".to_owned(),
            ));
        }
    };
    let header_value =
        affinity_header_value_bytes(kind.as_str(), &value, filter.hash, filter.max_key_length);
    Ok(KeyHash::of_filter_header(
        &filter.output_header,
        header_value,
    ))
}

impl KeyHash {
    /// Envoy hashing the `header` the affinity filter wrote with `value`.
    fn of_filter_header(header: &str, value: Vec<u8>) -> KeyHash {
        KeyHash {
            hash: header_hash(&value),
            hashed_what: format!("header {header} (written by the affinity filter)"),
            hashed: value.clone(),
            header: Some((header.to_owned(), value)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use affinity_core::hash::xxh64_hex;
    use affinity_predictor::xxhash64;

    use super::*;

    fn repo_file(path: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
    }

    #[test]
    fn with_the_filter_envoy_hashes_the_filters_header_value() {
        let web = ServicePrediction::load(&repo_file("examples/demo.yaml"), "web").unwrap();
        let key = web.request_hash("  Alice ", None).unwrap();
        let written = xxh64_hex("header", b"Alice");
        assert_eq!(
            key.header,
            Some(("x-affinity-key".to_owned(), written.clone().into_bytes()))
        );
        assert_eq!(key.hash, xxhash64(written.as_bytes(), 0));
        let by_cookie = web.request_hash("Alice", Some("cookie")).unwrap();
        assert_eq!(
            by_cookie.hash,
            xxhash64(xxh64_hex("cookie", b"Alice").as_bytes(), 0)
        );
        let by_ip = web.request_hash("10.0.0.7:5555", Some("sourceIp")).unwrap();
        assert_eq!(
            by_ip.hash,
            xxhash64(xxh64_hex("sourceIp", b"10.0.0.7").as_bytes(), 0)
        );
        assert!(web.request_hash("x", Some("body")).is_err());
        assert!(web.request_hash("   ", None).is_err());
    }

    #[test]
    fn served_natively_envoy_hashes_the_value_of_the_source() {
        let text = "services:\n  - name: web\n    endpoints: [{address: '10.0.0.1:80'}]\n    affinity: {keys: [{header: x-user-id}, {cookie: s}, {query: u}, {sourceIp: {}}]}\n";
        let source = crate::documents::Source {
            file: "n.yaml".into(),
            text: text.to_owned(),
        };
        let config = config::load_sources(&[source]).unwrap();
        let web = ServicePrediction::of(config.services[0].clone());
        assert!(web.describe_affinity().starts_with("native (mode auto; "));
        let key = web.request_hash("Alice", None).unwrap();
        assert_eq!(key.header, None);
        assert_eq!(key.hash, xxhash64(b"Alice", 0));
        assert_eq!(
            key.hashed_what,
            "header x-user-id (native hash_policy, no filter)"
        );
        let by_ip = web.request_hash("10.0.0.7:5555", Some("sourceIp")).unwrap();
        assert_eq!(by_ip.hash, xxhash64(b"10.0.0.7", 0));
        let by_query = web.request_hash("a%20b", Some("query")).unwrap();
        assert_eq!(by_query.hash, xxhash64(b"a%20b", 0), "not decoded");
        assert!(web.request_hash("x", Some("jsonBody")).is_err());
        assert!(web.body_hash(b"{}").is_err(), "no filter reads the body");
    }

    #[test]
    fn with_an_istio_hash_policy_envoy_hashes_the_key_itself() {
        let ledger = ServicePrediction::load(
            &repo_file("istio/agent-mode/ledger.yaml"),
            "outbound|10001||ledger.demo.internal",
        )
        .unwrap();
        let key = ledger.request_hash("acct-42", None).unwrap();
        assert_eq!(key.header, None);
        assert_eq!(key.hashed_what, "header x-account-id");
        assert_eq!(key.hash, xxhash64(b"acct-42", 0));
        assert!(ledger.describe_load_balancer().contains("bounded load"));
    }

    #[test]
    fn unknown_services_and_dns_endpoints_are_refused_by_name() {
        let error = ServicePrediction::load(&repo_file("examples/demo.yaml"), "nope")
            .err()
            .unwrap();
        assert!(error.0.contains("no service \"nope\"") && error.0.contains("web"));
        let dns = config::load(&repo_file("examples/dns-backends.yaml")).unwrap();
        let service = dns
            .config
            .services
            .into_iter()
            .find(Service::uses_dns)
            .unwrap();
        let error = ServicePrediction::of(service).hosts().err().unwrap();
        assert!(error.0.contains("is a DNS name"), "{error}");
    }
}
