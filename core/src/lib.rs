//! Affinity key derivation: key sources, filter config schema and validation, cookie / query / X-Forwarded-For parsing, hashing. Pure: no proxy-wasm, no tokio.
