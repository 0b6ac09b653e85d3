//! Random session ids for issued cookies (WASI `random_get`, which Envoy provides).

/// 128 random bits as 32 lower-case hex digits; `None` if the host has no randomness to give.
pub(crate) fn new_session_id() -> Option<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).ok()?;
    Some(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
}
