//! proxy-wasm HTTP filter: a thin host adapter over affinity-core.
