//! The per-request context: applies the policy's decision to the request (and to the response,
//! when a cookie was issued).

use std::rc::Rc;

use affinity_core::Outcome;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use crate::host_request::HostRequest;
use crate::root_context::Shared;
use crate::session_id::new_session_id;

/// One HTTP request/response exchange.
pub(crate) struct AffinityHttp {
    context_id: u32,
    shared: Rc<Shared>,
    /// The `Set-Cookie` value to add to the response, when a session cookie was issued.
    set_cookie: Option<String>,
}

impl AffinityHttp {
    pub(crate) fn new(context_id: u32, shared: Rc<Shared>) -> AffinityHttp {
        AffinityHttp {
            context_id,
            shared,
            set_cookie: None,
        }
    }
}

impl Context for AffinityHttp {}

impl HttpContext for AffinityHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let shared = Rc::clone(&self.shared);
        let request = HostRequest::new();
        let decision = shared.policy.evaluate(&request, new_session_id);
        let output_header = shared.policy.output_header();
        if decision.strip_output_header {
            // Removes every copy the client sent.
            self.set_http_request_header(output_header, None);
            shared.metrics.spoofed_header_removed();
            log::debug!("#{} removed client-sent {output_header}", self.context_id);
        }
        match decision.outcome {
            Outcome::Keyed {
                source,
                header_value,
            } => {
                shared.metrics.keyed(source);
                self.set_http_request_header_bytes(output_header, Some(&header_value));
                Action::Continue
            }
            Outcome::Missing => {
                shared.metrics.key_missing();
                Action::Continue
            }
            Outcome::Issued {
                header_value,
                set_cookie,
            } => {
                shared.metrics.key_missing();
                shared.metrics.cookie_issued();
                self.set_http_request_header_bytes(output_header, Some(&header_value));
                self.set_cookie = Some(set_cookie);
                Action::Continue
            }
            Outcome::Reject { status, body } => {
                shared.metrics.key_missing();
                shared.metrics.rejected();
                self.send_http_response(
                    u32::from(status),
                    vec![("content-type", "text/plain; charset=utf-8")],
                    Some(body.as_bytes()),
                );
                Action::Pause
            }
        }
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        if let Some(set_cookie) = self.set_cookie.take() {
            self.add_http_response_header("set-cookie", &set_cookie);
        }
        Action::Continue
    }
}
