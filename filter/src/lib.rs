//! The envoy-affinity HTTP filter: a thin proxy-wasm adapter over `affinity-core`.
//!
//! The root context parses and validates the plugin configuration once (`on_configure` refuses an
//! invalid one with a single log line naming the field) and shares the compiled policy with every
//! HTTP context. Per request, the HTTP context reads the request headers as bytes, asks the policy
//! for a decision, strips every client-sent copy of the output header, writes the key, answers a
//! rejection locally, or adds the issued `Set-Cookie` to the response.

mod host_request;
mod http_context;
mod metrics;
mod root_context;
mod session_id;

/// The module's entry point. `proxy_wasm::main!` expands to an exported `#[no_mangle]` function
/// (`_initialize`), which the `unsafe_code` lint flags: that export is the one place unsafe code is
/// allowed in this crate.
#[allow(unsafe_code)]
mod entry_point {
    use proxy_wasm::types::LogLevel;

    use crate::root_context::AffinityRoot;

    proxy_wasm::main! {{
        // First, so the SDK's panic hook logs through Envoy before anything else can fail.
        proxy_wasm::set_log_level(LogLevel::Info);
        proxy_wasm::set_root_context(|context_id| Box::new(AffinityRoot::new(context_id)));
    }}
}
