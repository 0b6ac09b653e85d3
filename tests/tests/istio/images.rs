//! The container images `make image` writes to `<target>/images/` (built by `images/build.py`): two builds
//! from one commit give identical digests and archives; every image goes through a real registry (Debian's
//! `docker-registry` on 127.0.0.1, its own port and storage) with `skopeo` and comes back with the same
//! digest; the agent and demo-backend root file systems, unpacked by `umoci`, run with their own entrypoint
//! and user; the filter image is the Istio "compat" Wasm variant whose `plugin.wasm` is the built module,
//! which the real Envoy loads from there; the Istio examples pin its digest.
//!
//! Needs `make image` (musl binaries, skopeo, umoci, docker-registry); without it every test here prints why
//! it skips and passes. `make test-image` builds the images and runs these tests.

use e2e::{Envoy, Process, StaticBootstrap, free_port, http, paths, wait_until};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

const VERSION: &str = env!("CARGO_PKG_VERSION");
const IMAGES: [&str; 3] = ["xds-agent", "demo-backend", "affinity-filter"];
const WASM_IN_IMAGE: &str = "usr/local/share/envoy-affinity/affinity_filter.wasm";

/// `<target>/images` when `make image` has written it and the tools are installed; else why not.
fn images_dir() -> Result<PathBuf, String> {
    let dir = paths::target_dir().join("images");
    for name in IMAGES {
        if !dir.join(name).join("index.json").exists() {
            return Err(format!("{}/{name} not built", dir.display()));
        }
    }
    for tool in [
        "skopeo",
        "umoci",
        "docker-registry",
        "python3",
        "tar",
        "sha256sum",
    ] {
        if !on_path(tool) {
            return Err(format!("{tool} not installed"));
        }
    }
    Ok(dir)
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false)
}

/// The images directory, or `None` after printing why the test skips.
fn images_or_skip(test: &str) -> Option<PathBuf> {
    match images_dir() {
        Ok(dir) => Some(dir),
        Err(reason) => {
            eprintln!("skipping {test}: {reason} (run `make test-image`)");
            None
        }
    }
}

fn run(command: &mut Command) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn blob(layout: &Path, digest: &str) -> PathBuf {
    layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

/// The manifest digest of the layout's only image, checking it is tagged with the crate version.
fn manifest_digest(layout: &Path) -> String {
    let index = read_json(&layout.join("index.json"));
    let manifests = index["manifests"].as_array().cloned().unwrap_or_default();
    assert_eq!(manifests.len(), 1, "{}: {index}", layout.display());
    assert_eq!(
        manifests[0]["annotations"]["org.opencontainers.image.ref.name"],
        VERSION,
        "{}",
        layout.display()
    );
    manifests[0]["digest"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn sha256_file(path: &Path) -> String {
    let output = run(Command::new("sha256sum").arg(path));
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// Runs `images/build.py` into `out` (same inputs as `make image`).
fn build_images(out: &Path) -> String {
    let output = run(Command::new("python3")
        .arg(paths::repo_root().join("images/build.py"))
        .arg("--out")
        .arg(out)
        .env("CARGO_TARGET_DIR", paths::target_dir()));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn two_image_builds_from_one_commit_are_identical() {
    let Some(_) = images_or_skip("two_image_builds_from_one_commit_are_identical") else {
        return;
    };
    let scratch = paths::scratch_dir("images-repro");
    let (a, b) = (scratch.join("a"), scratch.join("b"));
    let printed_a = build_images(&a);
    let printed_b = build_images(&b);
    eprintln!("build 1:\n{printed_a}build 2:\n{printed_b}");
    assert_eq!(printed_a, printed_b);
    for name in IMAGES {
        assert_eq!(
            manifest_digest(&a.join(name)),
            manifest_digest(&b.join(name)),
            "{name}"
        );
        for suffix in ["oci.tar", "docker.tar"] {
            let file = format!("{name}-{VERSION}.{suffix}");
            assert_eq!(
                sha256_file(&a.join(&file)),
                sha256_file(&b.join(&file)),
                "{file}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
}

/// Debian's `docker-registry` on a free 127.0.0.1 port with its own storage; stopped on drop.
struct Registry {
    port: u16,
    _process: Process,
}

impl Registry {
    fn start(dir: &Path) -> Registry {
        let port = free_port();
        let config = dir.join("registry.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog: {{level: error, accesslog: {{disabled: true}}}}\nstorage: {{filesystem: {{rootdirectory: {}}}}}\n\
                 http: {{addr: 127.0.0.1:{port}}}\n",
                dir.join("storage").display()
            ),
        )
        .expect("write registry config");
        let mut command = Command::new("docker-registry");
        command.arg("serve").arg(&config);
        let mut process = Process::spawn("docker-registry", command, dir);
        let up = wait_until(Duration::from_secs(20), || {
            http::get("/v2/")
                .send(port)
                .map(|r| r.status == 200)
                .unwrap_or(false)
        });
        assert!(
            up,
            "docker-registry did not answer on 127.0.0.1:{port}:\n{}",
            process.log()
        );
        assert!(process.is_running());
        Registry {
            port,
            _process: process,
        }
    }

    fn reference(&self, name: &str) -> String {
        format!(
            "docker://127.0.0.1:{}/envoy-affinity/{name}:{VERSION}",
            self.port
        )
    }
}

/// The command that runs `program` as `uid:gid`: directly when we are that user already (or not root),
/// through util-linux `setpriv` (drop to the image's user, no extra groups) when we are root.
fn as_user(uid: u64, gid: u64, program: &Path) -> Command {
    let me = String::from_utf8_lossy(&run(Command::new("id").arg("-u")).stdout)
        .trim()
        .to_owned();
    if me == "0" && uid != 0 {
        let mut command = Command::new("setpriv");
        command
            .arg(format!("--reuid={uid}"))
            .arg(format!("--regid={gid}"))
            .arg("--clear-groups")
            .arg("--")
            .arg(program);
        command
    } else {
        Command::new(program)
    }
}

/// A bundle unpacked by `umoci`: the root file system, the entrypoint and the user from its runtime config.
struct Bundle {
    rootfs: PathBuf,
    args: Vec<String>,
    uid: u64,
    gid: u64,
}

impl Bundle {
    fn unpack(layout: &Path, dir: &Path) -> Bundle {
        run(Command::new("umoci")
            .args(["unpack", "--rootless", "--image"])
            .arg(format!("{}:{VERSION}", layout.display()))
            .arg(dir));
        // umoci makes the bundle private to its owner; the image's user must reach its rootfs.
        run(Command::new("chmod").arg("755").arg(dir));
        let spec = read_json(&dir.join("config.json"));
        let args: Vec<String> = spec["process"]["args"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        assert!(!args.is_empty(), "no entrypoint in {}", dir.display());
        Bundle {
            rootfs: dir.join("rootfs"),
            args,
            uid: spec["process"]["user"]["uid"].as_u64().unwrap_or(0),
            gid: spec["process"]["user"]["gid"].as_u64().unwrap_or(0),
        }
    }

    /// The entrypoint (inside the rootfs) as the image's user, with the entrypoint's own arguments.
    fn command(&self) -> Command {
        let program = self.rootfs.join(self.args[0].trim_start_matches('/'));
        let mut command = as_user(self.uid, self.gid, &program);
        command.args(&self.args[1..]);
        command
    }
}

fn manifests_agent_config() -> String {
    let path = paths::repo_root().join("manifests/agent-configmap.yaml");
    let text = std::fs::read_to_string(&path).expect("read agent-configmap.yaml");
    let value: Value = serde_saphyr::from_str(&text).expect("agent-configmap.yaml parses");
    value["data"]["config.yaml"]
        .as_str()
        .expect("config.yaml key")
        .to_owned()
}

#[test]
fn images_go_through_a_registry_and_run() {
    let Some(images) = images_or_skip("images_go_through_a_registry_and_run") else {
        return;
    };
    let scratch = paths::scratch_dir("images-registry");
    let registry = Registry::start(&scratch);
    let pulled = scratch.join("pulled");
    std::fs::create_dir_all(&pulled).expect("pulled dir");

    for name in IMAGES {
        let layout = images.join(name);
        let built = manifest_digest(&layout);
        run(Command::new("skopeo")
            .args(["copy", "-q", "--dest-tls-verify=false"])
            .arg(format!("oci:{}:{VERSION}", layout.display()))
            .arg(registry.reference(name)));
        let inspected = run(Command::new("skopeo")
            .args(["inspect", "--tls-verify=false", "--format", "{{.Digest}}"])
            .arg(registry.reference(name)));
        let in_registry = String::from_utf8_lossy(&inspected.stdout).trim().to_owned();
        run(Command::new("skopeo")
            .args(["copy", "-q", "--src-tls-verify=false"])
            .arg(registry.reference(name))
            .arg(format!("oci:{}:{VERSION}", pulled.join(name).display())));
        let back = manifest_digest(&pulled.join(name));
        eprintln!("{name}:{VERSION} built {built} registry {in_registry} pulled {back}");
        assert_eq!(in_registry, built, "{name}: registry digest");
        assert_eq!(back, built, "{name}: pulled digest");
    }

    // The agent's rootfs: entrypoint and user from the image, the manifests' config validates, the module
    // sits where the manifests' config and the gateway's init container expect it, and `cp` works.
    let agent = Bundle::unpack(&pulled.join("xds-agent"), &scratch.join("agent-bundle"));
    assert_eq!(agent.args, ["/usr/local/bin/xds-agent"]);
    assert_eq!((agent.uid, agent.gid), (65532, 65532), "non-root user");
    let version = run(agent.command().arg("--version"));
    let version = String::from_utf8_lossy(&version.stdout).into_owned();
    eprintln!("image xds-agent --version (uid {}): {version}", agent.uid);
    assert!(version.contains(VERSION), "{version}");
    let config_dir = scratch.join("config");
    std::fs::create_dir_all(&config_dir).expect("config dir");
    std::fs::write(config_dir.join("config.yaml"), manifests_agent_config()).expect("write config");
    let validated = run(agent
        .command()
        .arg("validate")
        .arg(config_dir.join("config.yaml")));
    eprintln!(
        "image xds-agent validate: {}",
        String::from_utf8_lossy(&validated.stdout).trim()
    );
    assert!(manifests_agent_config().contains(&format!("/{WASM_IN_IMAGE}")));
    let wasm = std::fs::read(paths::wasm_path()).expect("read the built .wasm");
    let in_rootfs = std::fs::read(agent.rootfs.join(WASM_IN_IMAGE)).expect("module in rootfs");
    assert!(
        in_rootfs == wasm,
        "the agent image's module differs from the built .wasm"
    );
    let shared = scratch.join("shared-volume");
    std::fs::create_dir_all(&shared).expect("shared dir");
    run(Command::new("chmod").arg("777").arg(&shared));
    run(as_user(agent.uid, agent.gid, &agent.rootfs.join("bin/cp"))
        .arg(agent.rootfs.join(WASM_IN_IMAGE))
        .arg(shared.join("affinity_filter.wasm")));
    assert!(std::fs::read(shared.join("affinity_filter.wasm")).expect("copied") == wasm);

    // The demo backend's rootfs, run as the image's user, serves behind the real Envoy, which loads the
    // filter from the pulled filter image's `plugin.wasm`.
    let backend = Bundle::unpack(
        &pulled.join("demo-backend"),
        &scratch.join("backend-bundle"),
    );
    assert_eq!((backend.uid, backend.gid), (65532, 65532), "non-root user");
    let backend_port = free_port();
    let mut command = backend.command();
    command.args([
        "--listen",
        &format!("127.0.0.1:{backend_port}"),
        "--name",
        "image-backend",
    ]);
    let _backend = Process::spawn("image-demo-backend", command, &scratch);
    let up = wait_until(Duration::from_secs(20), || {
        http::get("/healthz").send(backend_port).is_ok()
    });
    assert!(up, "the image's demo-backend did not answer");

    let filter_layout = pulled.join("affinity-filter");
    let manifest = read_json(&blob(&filter_layout, &manifest_digest(&filter_layout)));
    assert_eq!(
        manifest["annotations"]["module.wasm.image/variant"],
        "compat"
    );
    let layers = manifest["layers"].as_array().cloned().unwrap_or_default();
    assert_eq!(layers.len(), 1, "{manifest}");
    assert_eq!(
        layers[0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    let layer = blob(
        &filter_layout,
        layers[0]["digest"].as_str().unwrap_or_default(),
    );
    let listing = run(Command::new("tar").arg("-tzf").arg(&layer));
    assert_eq!(
        String::from_utf8_lossy(&listing.stdout).trim(),
        "plugin.wasm"
    );
    let extracted = scratch.join("from-image");
    std::fs::create_dir_all(&extracted).expect("dir");
    run(Command::new("tar")
        .arg("-xzf")
        .arg(&layer)
        .arg("-C")
        .arg(&extracted));
    let plugin = extracted.join("plugin.wasm");
    assert!(
        std::fs::read(&plugin).expect("plugin.wasm") == wasm,
        "plugin.wasm differs from the built .wasm"
    );

    let (listen, admin) = (free_port(), free_port());
    let yaml = StaticBootstrap::new(listen, admin)
        .affinity_filter_from(&plugin, r#"{"keys": [{"header": "x-user-id"}]}"#)
        .hashed_route("/", "backends", "x-affinity-key")
        .cluster("backends", "RING_HASH", &[backend_port])
        .yaml();
    let envoy = Envoy::start(&yaml, admin);
    assert!(
        envoy.bootstrap_path.exists()
            && std::fs::read_to_string(&envoy.bootstrap_path)
                .unwrap_or_default()
                .contains(&plugin.display().to_string())
    );
    let response = http::get("/")
        .header("x-user-id", "alice")
        .header("x-affinity-key", "spoofed")
        .send_ok(listen);
    eprintln!(
        "through Envoy + the image's filter: {}",
        response.body.trim()
    );
    assert_eq!(response.header("x-backend"), Some("image-backend"));
    assert!(!response.body.contains("spoofed") && !response.body.contains("alice"));
    let stats = envoy.admin("/stats").expect("stats");
    assert!(stats.body.contains("wasmcustom."), "no filter counters");
    drop(envoy);
    drop(registry);
    let _ = std::fs::remove_dir_all(&scratch);
}

/// The Istio examples that pull the filter over `oci://` pin the built image's manifest digest (what Istio
/// compares `sha256` with for an OCI image).
#[test]
fn the_istio_examples_pin_the_filter_image_digest() {
    let Some(images) = images_or_skip("the_istio_examples_pin_the_filter_image_digest") else {
        return;
    };
    let digest = manifest_digest(&images.join("affinity-filter"));
    for file in [
        "istio/header-ringhash.yaml",
        "istio/issue-cookie-maglev.yaml",
    ] {
        let text = std::fs::read_to_string(paths::repo_root().join(file)).expect("read example");
        assert!(
            text.contains(&format!("/envoy-affinity/affinity-filter:{VERSION}")),
            "{file}: no oci:// reference to the filter image"
        );
        assert!(
            text.contains(&format!("sha256: {}", digest.trim_start_matches("sha256:"))),
            "{file} does not pin {digest} (the built filter image): update its sha256"
        );
    }
}

/// `overlays/my-registry` is a kustomization over `manifests/` that renames exactly the base's own images
/// (and, where `kubectl` is installed, `kubectl kustomize` renders it with the new names).
#[test]
fn the_registry_overlay_renames_the_manifests_images() {
    let root = paths::repo_root();
    let read = |file: &str| -> Value {
        let text = std::fs::read_to_string(root.join(file)).expect("read kustomization");
        serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"))
    };
    let base = read("manifests/kustomization.yaml");
    let overlay = read("overlays/my-registry/kustomization.yaml");
    assert_eq!(overlay["kind"], "Kustomization");
    assert_eq!(overlay["resources"], serde_json::json!(["../../manifests"]));
    let names = |k: &Value| -> Vec<String> {
        k["images"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|i| i["name"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let ours: Vec<String> = names(&base)
        .into_iter()
        .filter(|n| n.starts_with("envoy-affinity/"))
        .collect();
    assert_eq!(names(&overlay), ours);
    if !on_path("kubectl") {
        eprintln!("kubectl not installed: the overlay was checked structurally only");
        return;
    }
    let rendered = run(Command::new("kubectl")
        .arg("kustomize")
        .arg(root.join("overlays/my-registry")));
    let rendered = String::from_utf8_lossy(&rendered.stdout);
    for name in &ours {
        assert!(
            rendered.contains(&format!("image: registry.example.com/{name}:{VERSION}")),
            "{name} not renamed:\n{rendered}"
        );
        assert!(
            !rendered.contains(&format!("image: {name}:")),
            "{name} left as is"
        );
    }
}
