//! The affinity filter's ECDS resource: an `envoy.extensions.filters.http.wasm.v3.Wasm` whose
//! plugin configuration is the service's `FilterConfig` JSON; the code is a local file or
//! downloaded from the agent (`remote`, checked by sha256). A configuration with a body source
//! may hold requests at their headers (`allow_on_headers_stop_iteration`).

use affinity_core::config::FilterConfig;
use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::cluster::v3::cluster::{ClusterDiscoveryType, DiscoveryType};
use envoy_types::pb::envoy::config::core::v3::async_data_source::Specifier as AsyncSpecifier;
use envoy_types::pb::envoy::config::core::v3::data_source::Specifier as DataSpecifier;
use envoy_types::pb::envoy::config::core::v3::http_uri::HttpUpstreamType;
use envoy_types::pb::envoy::config::core::v3::{
    AsyncDataSource, DataSource, HttpUri, RemoteDataSource, TypedExtensionConfig,
};
use envoy_types::pb::envoy::extensions::filters::http::wasm::v3::Wasm;
use envoy_types::pb::envoy::extensions::wasm::v3::plugin_config::Vm;
use envoy_types::pb::envoy::extensions::wasm::v3::{FailurePolicy, PluginConfig, VmConfig};
use envoy_types::pb::google::protobuf::{BoolValue, StringValue};
use envoy_types::util::pack_any;

use super::TranslateOptions;
use super::common::{duration, ip_address};
use crate::model::{WasmCode, WasmFilter};
use envoy_types::pb::envoy::config::endpoint::v3::lb_endpoint::HostIdentifier;
use envoy_types::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints,
};

/// Type URL of the ECDS resources' payload.
pub const WASM_FILTER_TYPE_URL: &str =
    "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";
/// The cluster Envoy downloads the `.wasm` from with `delivery: remote` (the agent's admin server).
pub const WASM_CLUSTER_NAME: &str = "xds-agent-wasm";
/// One VM shared by every service's filter (same id, code and VM configuration).
const VM_ID: &str = "affinity";
const RUNTIME: &str = "envoy.wasm.runtime.v8";

/// The HTTP filter and ECDS resource name of `service`'s affinity filter.
#[must_use]
pub fn filter_name(service: &str) -> String {
    format!("affinity.{service}")
}

/// The path the agent serves a `.wasm` with this sha256 at.
#[must_use]
pub fn wasm_path(sha256: &str) -> String {
    format!("/wasm/{sha256}.wasm")
}

/// The ECDS resource `affinity.<service>`.
#[must_use]
pub fn extension_config(
    service: &str,
    affinity: &FilterConfig,
    filter: &WasmFilter,
    options: &TranslateOptions,
) -> TypedExtensionConfig {
    let code = match &filter.code {
        WasmCode::Local { filename } => AsyncDataSource {
            specifier: Some(AsyncSpecifier::Local(DataSource {
                specifier: Some(DataSpecifier::Filename(
                    filename.to_string_lossy().into_owned(),
                )),
                ..DataSource::default()
            })),
        },
        WasmCode::Remote {
            sha256,
            agent_address,
            ..
        } => {
            let address = agent_address.unwrap_or(options.agent_admin_address);
            AsyncDataSource {
                specifier: Some(AsyncSpecifier::Remote(RemoteDataSource {
                    http_uri: Some(HttpUri {
                        uri: format!("http://{address}{}", wasm_path(sha256)),
                        timeout: Some(duration(std::time::Duration::from_secs(30))),
                        http_upstream_type: Some(HttpUpstreamType::Cluster(
                            WASM_CLUSTER_NAME.to_owned(),
                        )),
                    }),
                    sha256: sha256.clone(),
                    ..RemoteDataSource::default()
                })),
            }
        }
    };
    let name = filter_name(service);
    let failure_policy = if filter.fail_open {
        FailurePolicy::FailOpen
    } else {
        FailurePolicy::FailClosed
    };
    let wasm = Wasm {
        config: Some(PluginConfig {
            name: name.clone(),
            root_id: VM_ID.to_owned(),
            configuration: Some(pack_any(StringValue {
                value: affinity.to_json(),
            })),
            failure_policy: failure_policy.into(),
            // A body source holds the request at its headers until the body decides the key;
            // without this Envoy ignores the filter's StopIteration and the request hangs.
            allow_on_headers_stop_iteration: affinity
                .reads_body()
                .then_some(BoolValue { value: true }),
            vm: Some(Vm::VmConfig(VmConfig {
                vm_id: VM_ID.to_owned(),
                runtime: RUNTIME.to_owned(),
                code: Some(code),
                ..VmConfig::default()
            })),
            ..PluginConfig::default()
        }),
    };
    TypedExtensionConfig {
        name,
        typed_config: Some(pack_any(wasm)),
    }
}

/// With `delivery: remote`, the cluster pointing at the agent's admin server.
#[must_use]
pub fn wasm_cluster(filter: &WasmFilter, options: &TranslateOptions) -> Option<Cluster> {
    let WasmCode::Remote { agent_address, .. } = &filter.code else {
        return None;
    };
    let address = agent_address.unwrap_or(options.agent_admin_address);
    Some(Cluster {
        name: WASM_CLUSTER_NAME.to_owned(),
        cluster_discovery_type: Some(ClusterDiscoveryType::Type(DiscoveryType::Static.into())),
        connect_timeout: Some(duration(std::time::Duration::from_secs(5))),
        load_assignment: Some(ClusterLoadAssignment {
            cluster_name: WASM_CLUSTER_NAME.to_owned(),
            endpoints: vec![LocalityLbEndpoints {
                lb_endpoints: vec![LbEndpoint {
                    host_identifier: Some(HostIdentifier::Endpoint(Endpoint {
                        address: Some(ip_address(address)),
                        ..Endpoint::default()
                    })),
                    ..LbEndpoint::default()
                }],
                ..LocalityLbEndpoints::default()
            }],
            ..ClusterLoadAssignment::default()
        }),
        ..Cluster::default()
    })
}
