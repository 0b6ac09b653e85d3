//! Where the binaries under test live.

use std::path::{Path, PathBuf};

/// The repository root (the workspace that holds this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The cargo target directory: `$CARGO_TARGET_DIR`, else `<repo>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                repo_root().join(dir)
            }
        }
        None => repo_root().join("target"),
    }
}

fn from_env_or(var: &str, default: PathBuf) -> PathBuf {
    std::env::var_os(var).map(PathBuf::from).unwrap_or(default)
}

fn existing(var: &str, path: PathBuf) -> PathBuf {
    assert!(
        path.exists(),
        "{} not found at {} (set {var} or run `make build` / `make setup`)",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        path.display()
    );
    path
}

/// The Envoy binary: `$ENVOY_BIN`, else `.tools/bin/envoy-$ENVOY_VERSION` (default: the version in
/// the repository's `.envoy-version`, as for `make`).
pub fn envoy_bin() -> PathBuf {
    let version = std::env::var("ENVOY_VERSION")
        .unwrap_or_else(|_| include_str!("../../.envoy-version").trim().to_string());
    let default = repo_root()
        .join(".tools/bin")
        .join(format!("envoy-{version}"));
    existing("ENVOY_BIN", from_env_or("ENVOY_BIN", default))
}

/// The filter's release .wasm: `$AFFINITY_WASM`, else `<target>/wasm32-wasip1/release/affinity_filter.wasm`.
pub fn wasm_path() -> PathBuf {
    let default = target_dir().join("wasm32-wasip1/release/affinity_filter.wasm");
    existing("AFFINITY_WASM", from_env_or("AFFINITY_WASM", default))
}

/// The agent binary: `$XDS_AGENT_BIN`, else `<target>/release/xds-agent`.
pub fn agent_bin() -> PathBuf {
    existing(
        "XDS_AGENT_BIN",
        from_env_or("XDS_AGENT_BIN", target_dir().join("release/xds-agent")),
    )
}

/// The demo backend binary: `$DEMO_BACKEND_BIN`, else `<target>/release/demo-backend`.
pub fn backend_bin() -> PathBuf {
    existing(
        "DEMO_BACKEND_BIN",
        from_env_or(
            "DEMO_BACKEND_BIN",
            target_dir().join("release/demo-backend"),
        ),
    )
}

/// A fresh scratch directory for one test's files and logs (kept after the run for inspection).
pub fn scratch_dir(label: &str) -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!(
        "envoy-affinity-e2e-{}-{label}-{n}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}
