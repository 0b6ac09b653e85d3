//! Consistent-hash xDS control plane for Envoy: YAML config to Envoy resources over ADS.
