//! The root context: parses the plugin configuration once and hands the compiled policy to every
//! HTTP context.

use std::rc::Rc;

use affinity_core::{AffinityPolicy, ConfigErrors, FilterConfig, SourceKind};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;

use crate::http_context::AffinityHttp;
use crate::metrics::Metrics;

/// What every HTTP context of one plugin configuration shares.
pub(crate) struct Shared {
    pub(crate) policy: AffinityPolicy,
    pub(crate) metrics: Metrics,
}

/// One plugin configuration.
pub(crate) struct AffinityRoot {
    context_id: u32,
    shared: Option<Rc<Shared>>,
}

impl AffinityRoot {
    pub(crate) fn new(context_id: u32) -> AffinityRoot {
        AffinityRoot {
            context_id,
            shared: None,
        }
    }

    /// Parses, validates and compiles the configuration; returns it with a one-line summary.
    fn load(&self) -> Result<(Shared, String), String> {
        let bytes = self.get_plugin_configuration().unwrap_or_default();
        if bytes.is_empty() {
            return Err("no configuration: the plugin needs at least {\"keys\": [...]}".to_owned());
        }
        let config = FilterConfig::from_json(&bytes).map_err(one_line)?;
        let summary = summary(&config);
        let policy = AffinityPolicy::new(config).map_err(one_line)?;
        Ok((
            Shared {
                policy,
                metrics: Metrics::define()?,
            },
            summary,
        ))
    }
}

/// The key sources in order and whether the body is read, e.g. `keys header, jsonBody, sourceIp;
/// reads bodies up to 262144 bytes`. (Not the canonical JSON: serializing it would pull serde_json's
/// writer into the `.wasm`.)
fn summary(config: &FilterConfig) -> String {
    // Owned names: `join` over `[String]` is already in the module (for the errors), over `[&str]` it would be
    // another copy of it.
    let kinds: Vec<String> = config
        .keys
        .iter()
        .map(|source| SourceKind::of(source).as_str().to_owned())
        .collect();
    let mut summary = format!("keys {}", kinds.join(", "));
    if config.reads_body() {
        summary.push_str(&format!(
            "; reads bodies up to {} bytes",
            config.max_body_bytes
        ));
    }
    summary
}

/// Every error on one log line, `; `-separated (`ConfigErrors`' `Display` puts one per line).
fn one_line(errors: ConfigErrors) -> String {
    errors
        .0
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl Context for AffinityRoot {}

impl RootContext for AffinityRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        match self.load() {
            Ok((shared, summary)) => {
                log::info!("#{} affinity filter configured: {summary}", self.context_id);
                self.shared = Some(Rc::new(shared));
                true
            }
            Err(message) => {
                log::error!(
                    "#{} invalid affinity filter configuration: {message}",
                    self.context_id
                );
                false
            }
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        let shared = self.shared.clone()?;
        Some(Box::new(AffinityHttp::new(context_id, shared)))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
