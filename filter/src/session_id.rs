//! Random session ids for issued cookies (WASI `random_get`, which Envoy provides).

/// 128 random bits as 32 lower-case hex digits; `None` if the host has no randomness to give.
pub(crate) fn new_session_id() -> Option<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).ok()?;
    Some(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::new_session_id;

    #[test]
    fn session_ids_are_32_hex_digits_and_differ() {
        let first = new_session_id().unwrap();
        let second = new_session_id().unwrap();
        assert_eq!(first.len(), 32);
        assert!(
            first
                .bytes()
                .all(|byte| byte.is_ascii_hexdigit() && !byte.is_ascii_uppercase()),
            "{first}"
        );
        assert_ne!(first, second);
    }
}
