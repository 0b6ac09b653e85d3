//! The agent's Kubernetes source against the fake API server with real Envoys and backends ([`agent`]), and
//! the fake API server (`e2e::kube_api`) against real clients: kubectl lists, gets, selects,
//! pages and watches through it, and raw HTTP checks what kubectl does not show (410 after compaction,
//! errors, bookmarks, many watchers over 10,000 endpoints).
//!
//! Needs kubectl on PATH (or `KUBECTL`). Run: `cargo test -p e2e --test kubernetes`.

mod support;

mod agent;
mod fake_api;
mod protocol;
mod shop;
