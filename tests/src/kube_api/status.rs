//! Errors as the API server reports them: a `Status` object with the HTTP code, a reason and a message.

use serde_json::{Value, json};

/// A failed request, sent as a `Status` body with `code` as the HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status code, repeated in the body.
    pub code: u16,
    /// `reason`: NotFound, BadRequest, MethodNotAllowed, Expired…
    pub reason: &'static str,
    /// Human-readable `message`.
    pub message: String,
}

impl ApiError {
    /// 404 for a path or resource the server does not have.
    pub fn unknown_path() -> ApiError {
        ApiError::not_found("the server could not find the requested resource".into())
    }

    /// 404 with a message such as `services "web" not found`.
    pub fn not_found(message: String) -> ApiError {
        ApiError {
            code: 404,
            reason: "NotFound",
            message,
        }
    }

    /// 400 for a parameter the server cannot read.
    pub fn bad_request(message: String) -> ApiError {
        ApiError {
            code: 400,
            reason: "BadRequest",
            message,
        }
    }

    /// 405 for writes, which this server does not take over HTTP.
    pub fn method_not_allowed(method: &str) -> ApiError {
        ApiError {
            code: 405,
            reason: "MethodNotAllowed",
            message: format!(
                "the server does not allow this method on the requested resource ({method}: this fake API server is read-only over HTTP)"
            ),
        }
    }

    /// 410 Expired for a watch from a resourceVersion older than the history kept.
    pub fn too_old(requested: u64, oldest: u64) -> ApiError {
        ApiError {
            code: 410,
            reason: "Expired",
            message: format!("too old resource version: {requested} ({oldest})"),
        }
    }

    /// 410 Expired for a `continue` token older than the history kept.
    pub fn continue_expired() -> ApiError {
        ApiError {
            code: 410,
            reason: "Expired",
            message: "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.".into(),
        }
    }

    /// The `Status` object.
    pub fn to_status(&self) -> Value {
        json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_objects_carry_code_reason_and_message() {
        let status = ApiError::too_old(3, 9).to_status();
        assert_eq!(status["kind"], "Status");
        assert_eq!(status["status"], "Failure");
        assert_eq!(status["reason"], "Expired");
        assert_eq!(status["code"], 410);
        assert_eq!(status["message"], "too old resource version: 3 (9)");
        assert_eq!(ApiError::unknown_path().to_status()["code"], 404);
        assert_eq!(ApiError::method_not_allowed("POST").code, 405);
    }
}
