//! The fake Kubernetes API server (`e2e::kube_api`) against real clients: kubectl lists, gets, selects,
//! pages and watches through it, and raw HTTP checks what kubectl does not show (410 after compaction,
//! errors, bookmarks, many watchers over 10,000 endpoints).
//!
//! Needs kubectl on PATH (or `KUBECTL`). Run: `cargo test -p e2e --test kubernetes`.

mod support;

mod fake_api;
mod protocol;
