//! The predictor and `xds-agent explain` / `simulate` against the real Envoy: every key lands
//! where they say.
//!
//! Build first: `make build` and `make setup`. Run: `cargo test -p e2e --test predictor`.

mod agreement;
mod explain;
mod ring_size;
