//! The per-request context: applies the policy's decision to the request (and to the response,
//! when a cookie was issued).
//!
//! A request is decided at its headers unless a body source must read the body: then the
//! headers are held (`Action::Pause`, which needs the plugin's `allow_on_headers_stop_iteration`)
//! and the body is buffered chunk by chunk until the policy decides — at the latest at
//! `maxBodyBytes` or the end of the body — and the request goes on with its body untouched.

use std::rc::Rc;

use affinity_core::{Decision, Outcome};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, BufferType};

use crate::host_request::HostRequest;
use crate::root_context::Shared;
use crate::session_id::new_session_id;

/// One HTTP request/response exchange.
pub(crate) struct AffinityHttp {
    context_id: u32,
    shared: Rc<Shared>,
    /// The `Set-Cookie` value to add to the response, when a session cookie was issued.
    set_cookie: Option<String>,
    /// The headers are held until the body decides the key.
    waiting_for_body: bool,
    /// Body bytes Envoy has buffered for this request so far.
    body_buffered: usize,
    /// The body bytes copied from Envoy so far (at most `maxBodyBytes`): each callback copies only
    /// what arrived since the last one.
    body: Vec<u8>,
}

impl AffinityHttp {
    pub(crate) fn new(context_id: u32, shared: Rc<Shared>) -> AffinityHttp {
        AffinityHttp {
            context_id,
            shared,
            set_cookie: None,
            waiting_for_body: false,
            body_buffered: 0,
            body: Vec::new(),
        }
    }

    /// Evaluates the request with the body read so far (`body_size` bytes buffered).
    fn decide_with_body(&mut self, body_size: usize, complete: bool) -> Action {
        let shared = Rc::clone(&self.shared);
        let wanted = body_size.min(shared.policy.max_body_bytes());
        if let Some(missing) = wanted.checked_sub(self.body.len()).filter(|&n| n > 0) {
            let arrived =
                hostcalls::get_buffer(BufferType::HttpRequestBody, self.body.len(), missing)
                    .ok()
                    .flatten()
                    .unwrap_or_default();
            self.body.extend_from_slice(&arrived);
        }
        let decision = shared.policy.evaluate(
            &HostRequest::with_body(&self.body, complete),
            new_session_id,
        );
        let final_window = complete || body_size >= shared.policy.max_body_bytes();
        if decision.outcome == Outcome::NeedBody && final_window {
            // Unreachable by the policy's own rule (the window is final here); never hold a
            // request past its end or the limit whatever happens.
            self.waiting_for_body = false;
            self.body = Vec::new();
            shared.metrics.key_missing();
            return Action::Continue;
        }
        self.apply(decision)
    }

    /// Applies a decision; `Action::Pause` holds the request (for the body, or after a local reply).
    fn apply(&mut self, decision: Decision<'_>) -> Action {
        let shared = Rc::clone(&self.shared);
        if decision.outcome != Outcome::NeedBody {
            self.waiting_for_body = false;
            self.body = Vec::new();
            if let Some(issue) = decision.body_issue {
                shared.metrics.body_issue(issue);
            }
        }
        let output_header = shared.policy.output_header();
        match decision.outcome {
            Outcome::NeedBody => {
                self.waiting_for_body = true;
                Action::Pause
            }
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
}

impl Context for AffinityHttp {}

impl HttpContext for AffinityHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let shared = Rc::clone(&self.shared);
        let request = HostRequest::at_headers(end_of_stream);
        let decision = shared.policy.evaluate(&request, new_session_id);
        if decision.strip_output_header {
            let output_header = shared.policy.output_header();
            // Removes every copy the client sent.
            self.set_http_request_header(output_header, None);
            shared.metrics.spoofed_header_removed();
            log::debug!("#{} removed client-sent {output_header}", self.context_id);
        }
        self.apply(decision)
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if !self.waiting_for_body {
            return Action::Continue;
        }
        self.body_buffered = body_size;
        self.decide_with_body(body_size, end_of_stream)
    }

    /// Trailers end the body.
    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        if !self.waiting_for_body {
            return Action::Continue;
        }
        self.decide_with_body(self.body_buffered, true)
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        if let Some(set_cookie) = self.set_cookie.take() {
            self.add_http_response_header("set-cookie", &set_cookie);
        }
        Action::Continue
    }
}
