//! Structural checks of the Kubernetes manifests in `manifests/` (no API server here):
//! names, selectors that match pod templates, probes and Services that reference
//! real container ports, volumes that reference real ConfigMaps, a restricted-PSS
//! security context and resource requests on every container, a kustomization
//! that lists exactly the files present — plus the agent's and the gateway's own
//! contracts (the agent's serve command, probes on its admin port; the gateway's
//! bootstrap accepted by the real Envoy in `--mode validate`).
//! Negative cases prove each check rejects a broken object.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::yaml_docs::{self, YamlDoc};
use serde_json::{Value, json};

const WORKLOAD_KINDS: [&str; 3] = ["Deployment", "StatefulSet", "DaemonSet"];

fn manifests_dir() -> PathBuf {
    yaml_docs::repo_root().join("manifests")
}

fn is_kustomization(doc: &YamlDoc) -> bool {
    doc.kind() == "Kustomization"
}

/// Every Kubernetes object in `manifests/` (the kustomization excluded).
fn objects() -> Vec<YamlDoc> {
    let docs: Vec<YamlDoc> = yaml_docs::load_dir(&manifests_dir())
        .into_iter()
        .filter(|d| !is_kustomization(d))
        .collect();
    assert!(
        docs.len() >= 9,
        "expected the manifests, found {} objects",
        docs.len()
    );
    docs
}

fn find<'a>(docs: &'a [YamlDoc], kind: &str, name: &str) -> &'a YamlDoc {
    docs.iter()
        .find(|d| d.kind() == kind && d.name() == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in manifests/"))
}

fn find_mut<'a>(docs: &'a mut [YamlDoc], kind: &str, name: &str) -> &'a mut Value {
    &mut docs
        .iter_mut()
        .find(|d| d.kind() == kind && d.name() == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in manifests/"))
        .value
}

fn as_array(value: &Value) -> &[Value] {
    value.as_array().map(Vec::as_slice).unwrap_or_default()
}

fn labels_match(selector: &Value, labels: &Value) -> bool {
    let Some(selector) = selector.as_object() else {
        return false;
    };
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

// ---- the checks: each returns every problem it finds ----

fn check_metadata(doc: &YamlDoc, errors: &mut Vec<String>) {
    if doc.api_version().is_empty() || doc.kind().is_empty() {
        errors.push(format!("{doc}: apiVersion and kind are required"));
    }
    let name = doc.name();
    let valid = if doc.kind() == "Service" {
        is_dns_label(name) && name.starts_with(|c: char| c.is_ascii_lowercase())
    } else {
        name.len() <= 253 && name.split('.').all(is_dns_label)
    };
    if !valid {
        errors.push(format!(
            "{doc}: metadata.name {name:?} is not a valid {} name",
            doc.kind()
        ));
    }
    if doc.kind() != "Namespace" && doc.value["metadata"].get("namespace").is_some() {
        errors.push(format!(
            "{doc}: metadata.namespace is set; kustomization.yaml owns the namespace"
        ));
    }
}

fn workloads(docs: &[YamlDoc]) -> impl Iterator<Item = &YamlDoc> {
    docs.iter().filter(|d| WORKLOAD_KINDS.contains(&d.kind()))
}

fn pod_containers(pod: &Value) -> impl Iterator<Item = &Value> {
    as_array(&pod["initContainers"])
        .iter()
        .chain(as_array(&pod["containers"]))
}

fn check_workload(doc: &YamlDoc, docs: &[YamlDoc], errors: &mut Vec<String>) {
    let spec = &doc.value["spec"];
    let template_labels = &spec["template"]["metadata"]["labels"];
    if !labels_match(&spec["selector"]["matchLabels"], template_labels) {
        errors.push(format!(
            "{doc}: spec.selector.matchLabels does not match spec.template.metadata.labels"
        ));
    }
    if doc.kind() == "StatefulSet" {
        let service = spec["serviceName"].as_str().unwrap_or_default();
        let headless = docs.iter().any(|d| {
            d.kind() == "Service"
                && d.name() == service
                && d.value["spec"]["clusterIP"] == json!("None")
        });
        if !headless {
            errors.push(format!(
                "{doc}: spec.serviceName {service:?} is not a headless Service in manifests/"
            ));
        }
    }
    let pod = &spec["template"]["spec"];
    if as_array(&pod["containers"]).is_empty() {
        errors.push(format!("{doc}: no containers"));
    }
    let pod_non_root = pod["securityContext"]["runAsNonRoot"] == json!(true);
    let mut container_names = BTreeSet::new();
    let mut port_names = BTreeSet::new();
    let volumes: BTreeSet<&str> = as_array(&pod["volumes"])
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    for container in pod_containers(pod) {
        let name = container["name"].as_str().unwrap_or_default();
        let at = format!("{doc}: container {name:?}");
        if !is_dns_label(name) || !container_names.insert(name) {
            errors.push(format!("{at}: name missing, invalid or duplicated"));
        }
        if container["image"].as_str().unwrap_or_default().is_empty() {
            errors.push(format!("{at}: no image"));
        }
        for resource in ["cpu", "memory"] {
            if container["resources"]["requests"].get(resource).is_none() {
                errors.push(format!("{at}: resources.requests.{resource} missing"));
            }
        }
        let security = &container["securityContext"];
        if security["allowPrivilegeEscalation"] != json!(false) {
            errors.push(format!(
                "{at}: securityContext.allowPrivilegeEscalation must be false"
            ));
        }
        if !as_array(&security["capabilities"]["drop"]).contains(&json!("ALL")) {
            errors.push(format!(
                "{at}: securityContext.capabilities.drop must contain ALL"
            ));
        }
        if !pod_non_root && security["runAsNonRoot"] != json!(true) {
            errors.push(format!("{at}: runs as root (set runAsNonRoot)"));
        }
        check_ports(container, &at, &mut port_names, errors);
        check_probes(container, &at, errors);
        check_env_references(container, &at, errors);
        for mount in as_array(&container["volumeMounts"]) {
            let volume = mount["name"].as_str().unwrap_or_default();
            if !volumes.contains(volume) {
                errors.push(format!(
                    "{at}: volumeMount {volume:?} names no volume of the pod"
                ));
            }
        }
    }
    for volume in as_array(&pod["volumes"]) {
        if let Some(config_map) = volume["configMap"]["name"].as_str()
            && !docs
                .iter()
                .any(|d| d.kind() == "ConfigMap" && d.name() == config_map)
        {
            errors.push(format!(
                "{doc}: volume {} references missing ConfigMap {config_map:?}",
                volume["name"]
            ));
        }
    }
}

fn check_ports<'a>(
    container: &'a Value,
    at: &str,
    pod_port_names: &mut BTreeSet<&'a str>,
    errors: &mut Vec<String>,
) {
    for port in as_array(&container["ports"]) {
        let number = port["containerPort"].as_u64().unwrap_or(0);
        if !(1..=65535).contains(&number) {
            errors.push(format!(
                "{at}: containerPort {} out of range",
                port["containerPort"]
            ));
        }
        if let Some(name) = port["name"].as_str()
            && (name.len() > 15 || !is_dns_label(name) || !pod_port_names.insert(name))
        {
            errors.push(format!(
                "{at}: port name {name:?} invalid or duplicated in the pod"
            ));
        }
    }
}

/// Does `container` expose `port` (a name or a number)?
fn container_has_port(container: &Value, port: &Value) -> bool {
    as_array(&container["ports"]).iter().any(|p| match port {
        Value::String(name) => p["name"].as_str() == Some(name.as_str()),
        Value::Number(_) => &p["containerPort"] == port,
        _ => false,
    })
}

fn check_probes(container: &Value, at: &str, errors: &mut Vec<String>) {
    for probe in ["readinessProbe", "livenessProbe", "startupProbe"] {
        let spec = &container[probe];
        if spec.is_null() {
            continue;
        }
        let port = if spec["httpGet"].is_object() {
            if !spec["httpGet"]["path"]
                .as_str()
                .unwrap_or_default()
                .starts_with('/')
            {
                errors.push(format!("{at}: {probe}.httpGet.path must start with /"));
            }
            &spec["httpGet"]["port"]
        } else {
            &spec["tcpSocket"]["port"]
        };
        if !container_has_port(container, port) {
            errors.push(format!(
                "{at}: {probe} uses port {port}, which the container does not expose"
            ));
        }
    }
}

/// `$(NAME)` in command/args expands only from the container's own env.
fn check_env_references(container: &Value, at: &str, errors: &mut Vec<String>) {
    let env: BTreeSet<&str> = as_array(&container["env"])
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    let words = as_array(&container["command"])
        .iter()
        .chain(as_array(&container["args"]));
    for word in words.filter_map(Value::as_str) {
        let mut rest = word;
        while let Some(start) = rest.find("$(") {
            let after = &rest[start + 2..];
            let Some(end) = after.find(')') else { break };
            let name = &after[..end];
            if !env.contains(name) {
                errors.push(format!(
                    "{at}: $({name}) is not an env var of the container"
                ));
            }
            rest = &after[end..];
        }
    }
}

fn check_service(doc: &YamlDoc, docs: &[YamlDoc], errors: &mut Vec<String>) {
    let selector = &doc.value["spec"]["selector"];
    let targets: Vec<&YamlDoc> = workloads(docs)
        .filter(|w| labels_match(selector, &w.value["spec"]["template"]["metadata"]["labels"]))
        .collect();
    if targets.is_empty() {
        errors.push(format!(
            "{doc}: spec.selector {selector} matches no workload in manifests/"
        ));
    }
    let mut names = BTreeSet::new();
    for port in as_array(&doc.value["spec"]["ports"]) {
        let name = port["name"].as_str().unwrap_or_default();
        if !names.insert(name) {
            errors.push(format!("{doc}: duplicate port name {name:?}"));
        }
        let target = if port["targetPort"].is_null() {
            &port["port"]
        } else {
            &port["targetPort"]
        };
        for workload in &targets {
            let pod = &workload.value["spec"]["template"]["spec"];
            if !as_array(&pod["containers"])
                .iter()
                .any(|c| container_has_port(c, target))
            {
                errors.push(format!(
                    "{doc}: port {name:?} targets {target}, which {workload} does not expose"
                ));
            }
        }
    }
}

fn check_disruption_budget(doc: &YamlDoc, docs: &[YamlDoc], errors: &mut Vec<String>) {
    let selector = &doc.value["spec"]["selector"]["matchLabels"];
    if !workloads(docs)
        .any(|w| labels_match(selector, &w.value["spec"]["template"]["metadata"]["labels"]))
    {
        errors.push(format!("{doc}: spec.selector matches no workload"));
    }
}

fn check_config_map(doc: &YamlDoc, errors: &mut Vec<String>) {
    for (key, value) in doc.value["data"].as_object().into_iter().flatten() {
        let Some(text) = value.as_str() else {
            errors.push(format!("{doc}: data.{key} is not a string"));
            continue;
        };
        if (key.ends_with(".yaml") || key.ends_with(".yml"))
            && let Err(e) = yaml_docs::parse_documents(Path::new(key), text)
        {
            errors.push(format!("{doc}: data.{key} is not valid YAML: {e}"));
        }
    }
}

fn structural_errors(docs: &[YamlDoc]) -> Vec<String> {
    let mut errors = Vec::new();
    for doc in docs {
        check_metadata(doc, &mut errors);
        match doc.kind() {
            kind if WORKLOAD_KINDS.contains(&kind) => check_workload(doc, docs, &mut errors),
            "Service" => check_service(doc, docs, &mut errors),
            "PodDisruptionBudget" => check_disruption_budget(doc, docs, &mut errors),
            "ConfigMap" => check_config_map(doc, &mut errors),
            _ => {}
        }
    }
    errors
}

/// `resources` must list exactly the YAML files next to it; `images` must name images in use.
fn kustomization_errors(kustomization: &Value, dir: &Path, docs: &[YamlDoc]) -> Vec<String> {
    let mut errors = Vec::new();
    let listed: BTreeSet<PathBuf> = as_array(&kustomization["resources"])
        .iter()
        .filter_map(Value::as_str)
        .map(|r| dir.join(r))
        .collect();
    for file in &listed {
        if !file.is_file() {
            errors.push(format!(
                "kustomization.yaml lists {}, which does not exist",
                file.display()
            ));
        }
    }
    for file in yaml_docs::yaml_files(dir) {
        let is_self = file.file_name().is_some_and(|n| n == "kustomization.yaml");
        if !is_self && !listed.contains(&file) {
            errors.push(format!(
                "{} is not listed in kustomization.yaml resources",
                file.display()
            ));
        }
    }
    let images: BTreeSet<&str> = workloads(docs)
        .flat_map(|w| pod_containers(&w.value["spec"]["template"]["spec"]))
        .filter_map(|c| c["image"].as_str())
        .collect();
    for image in as_array(&kustomization["images"]) {
        let name = image["name"].as_str().unwrap_or_default();
        if !images.contains(name) {
            errors.push(format!(
                "kustomization.yaml images: {name:?} is used by no container"
            ));
        }
    }
    errors
}

fn kustomization() -> Value {
    let file = manifests_dir().join("kustomization.yaml");
    let text = std::fs::read_to_string(&file).expect("manifests/kustomization.yaml");
    let docs = yaml_docs::parse_documents(&file, &text).expect("kustomization parses");
    assert!(
        docs.len() == 1 && is_kustomization(&docs[0]),
        "one Kustomization document"
    );
    docs[0].value.clone()
}

// ---- the repository's manifests pass ----

#[test]
fn manifests_are_structurally_sound() {
    let errors = structural_errors(&objects());
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

#[test]
fn kustomization_lists_exactly_the_manifests() {
    let errors = kustomization_errors(&kustomization(), &manifests_dir(), &objects());
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

#[test]
fn the_agent_runs_two_replicas_of_the_serve_command_with_probes_on_its_admin_port() {
    let docs = objects();
    let agent = &find(&docs, "Deployment", "xds-agent").value;
    assert_eq!(agent["spec"]["replicas"], json!(2));
    let container = &agent["spec"]["template"]["spec"]["containers"][0];
    let args: Vec<&str> = as_array(&container["args"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        args,
        [
            "serve",
            "--config",
            "/etc/xds-agent/config.yaml",
            "--grpc",
            "0.0.0.0:18000",
            "--admin",
            "0.0.0.0:19000",
            "--debug-admin",
            "127.0.0.1:19001"
        ]
    );
    // /debug/* stays off the network: loopback only, and no container or Service port for it.
    assert!(
        as_array(&container["ports"])
            .iter()
            .all(|p| p["containerPort"] != json!(19001)),
        "the debug port is declared as a container port"
    );
    let service = &find(&docs, "Service", "xds-agent").value;
    assert!(
        as_array(&service["spec"]["ports"])
            .iter()
            .all(|p| p["port"] != json!(19001) && p["targetPort"] != json!(19001)),
        "the Service exposes the debug port"
    );
    let admin_port = as_array(&container["ports"])
        .iter()
        .find(|p| p["containerPort"] == json!(19000))
        .and_then(|p| p["name"].as_str())
        .expect("a named container port 19000");
    assert_eq!(
        container["readinessProbe"]["httpGet"]["path"],
        json!("/readyz")
    );
    assert_eq!(
        container["readinessProbe"]["httpGet"]["port"],
        json!(admin_port)
    );
    assert_eq!(
        container["livenessProbe"]["httpGet"]["path"],
        json!("/healthz")
    );
    assert_eq!(
        container["livenessProbe"]["httpGet"]["port"],
        json!(admin_port)
    );
    assert!(container["resources"]["requests"].is_object());
    assert_eq!(
        agent["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"],
        json!(true)
    );

    // The config directory is the ConfigMap, mounted whole (no subPath) so updates reach the agent.
    let mount = as_array(&container["volumeMounts"])
        .iter()
        .find(|m| m["mountPath"] == json!("/etc/xds-agent"))
        .expect("config mount at /etc/xds-agent");
    assert!(
        mount.get("subPath").is_none(),
        "subPath mounts never see ConfigMap updates"
    );
    let volume = as_array(&agent["spec"]["template"]["spec"]["volumes"])
        .iter()
        .find(|v| v["name"] == mount["name"])
        .expect("the mounted volume");
    let config_map = find(
        &docs,
        "ConfigMap",
        volume["configMap"]["name"]
            .as_str()
            .expect("configMap volume"),
    );
    let config = config_map.value["data"]["config.yaml"]
        .as_str()
        .expect("config.yaml key");
    let parsed =
        yaml_docs::parse_documents(Path::new("config.yaml"), config).expect("agent config parses");
    assert!(
        parsed[0].value["services"]
            .as_array()
            .is_some_and(|s| !s.is_empty())
    );
}

/// The gateway's ADS cluster must reach the agent Service's gRPC port, and Envoy
/// itself must accept the bootstrap.
#[test]
fn the_gateway_bootstrap_points_at_the_agent_and_envoy_accepts_it() {
    let docs = objects();
    let bootstrap_text =
        find(&docs, "ConfigMap", "envoy-gateway-bootstrap").value["data"]["bootstrap.yaml"]
            .as_str()
            .expect("bootstrap.yaml key")
            .to_string();
    let bootstrap =
        yaml_docs::parse_documents(Path::new("bootstrap.yaml"), &bootstrap_text).expect("parses");
    let bootstrap = &bootstrap[0].value;
    let ads_cluster = &bootstrap["dynamic_resources"]["ads_config"]["grpc_services"][0]["envoy_grpc"]
        ["cluster_name"];
    let cluster = as_array(&bootstrap["static_resources"]["clusters"])
        .iter()
        .find(|c| &c["name"] == ads_cluster)
        .expect("the ADS cluster is defined");
    let address = &cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
        ["socket_address"];
    let agent_service = find(
        &docs,
        "Service",
        address["address"].as_str().expect("ADS address"),
    );
    assert!(
        as_array(&agent_service.value["spec"]["ports"])
            .iter()
            .any(|p| p["port"] == address["port_value"]),
        "the ADS port is not a port of Service {}",
        agent_service.name()
    );

    let dir = std::env::temp_dir().join(format!("manifests-bootstrap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("bootstrap.yaml");
    std::fs::write(&path, &bootstrap_text).expect("write bootstrap");
    let output = Command::new(e2e::paths::envoy_bin())
        .args([
            "--mode",
            "validate",
            "--service-node",
            "gateway-0",
            "--disable-hot-restart",
            "-c",
        ])
        .arg(&path)
        .output()
        .expect("run envoy --mode validate");
    let log = String::from_utf8_lossy(&output.stderr).into_owned()
        + &String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "envoy rejected the gateway bootstrap:\n{log}"
    );
    assert!(log.contains("OK"), "{log}");
    let _ = std::fs::remove_dir_all(&dir);
}

// ---- negative cases: each check rejects a broken object ----

fn errors_after(mutate: impl FnOnce(&mut Vec<YamlDoc>)) -> Vec<String> {
    let mut docs = objects();
    mutate(&mut docs);
    structural_errors(&docs)
}

fn assert_one_error_containing(errors: &[String], needle: &str) {
    assert_eq!(
        errors.len(),
        1,
        "expected exactly one error containing {needle:?}, got {errors:#?}"
    );
    assert!(
        errors[0].contains(needle),
        "expected {needle:?} in {errors:#?}"
    );
}

#[test]
fn a_selector_that_misses_the_template_is_rejected() {
    let errors = errors_after(|docs| {
        let gateway = find_mut(docs, "Deployment", "envoy-gateway");
        gateway["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] = json!("envoy-gw");
    });
    assert_one_error_containing(&errors, "spec.selector.matchLabels does not match");
}

#[test]
fn a_probe_on_a_port_the_container_lacks_is_rejected() {
    let errors = errors_after(|docs| {
        let agent = find_mut(docs, "Deployment", "xds-agent");
        agent["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["port"] =
            json!("admin");
    });
    assert_one_error_containing(&errors, "readinessProbe uses port \"admin\"");
}

#[test]
fn a_service_that_selects_nothing_or_targets_a_missing_port_is_rejected() {
    let errors = errors_after(|docs| {
        find_mut(docs, "Service", "xds-agent")["spec"]["selector"] = json!({"app": "nobody"});
    });
    assert_one_error_containing(&errors, "matches no workload");
    let errors = errors_after(|docs| {
        find_mut(docs, "Service", "demo-backend")["spec"]["ports"][0]["targetPort"] = json!(9090);
    });
    assert_one_error_containing(&errors, "targets 9090");
}

#[test]
fn a_missing_config_map_an_unknown_env_var_and_a_root_container_are_rejected() {
    let errors = errors_after(|docs| {
        let gateway = find_mut(docs, "Deployment", "envoy-gateway");
        gateway["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"] = json!("missing");
    });
    assert_one_error_containing(&errors, "missing ConfigMap \"missing\"");
    let errors = errors_after(|docs| {
        let backends = find_mut(docs, "StatefulSet", "demo-backend");
        backends["spec"]["template"]["spec"]["containers"][0]["args"][3] = json!("$(HOSTNAME)");
    });
    assert_one_error_containing(&errors, "$(HOSTNAME) is not an env var");
    let errors = errors_after(|docs| {
        let pod = &mut find_mut(docs, "StatefulSet", "demo-backend")["spec"]["template"]["spec"];
        pod["securityContext"]["runAsNonRoot"] = json!(false);
    });
    assert_one_error_containing(&errors, "runs as root");
}

#[test]
fn a_kustomization_with_a_missing_or_unlisted_file_is_rejected() {
    let docs = objects();
    let mut kustomization = kustomization();
    let resources = kustomization["resources"]
        .as_array_mut()
        .expect("resources");
    let dropped = resources.pop().expect("at least one resource");
    resources.push(json!("no-such-file.yaml"));
    let errors = kustomization_errors(&kustomization, &manifests_dir(), &docs);
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(
        errors
            .iter()
            .any(|e| e.contains("no-such-file.yaml, which does not exist"))
    );
    let dropped = dropped.as_str().expect("file name");
    assert!(
        errors
            .iter()
            .any(|e| e.contains(dropped) && e.contains("not listed")),
        "{errors:#?}"
    );
}

/// The agent's config in the ConfigMap passes the agent's own validator (`xds-agent validate`).
#[test]
fn the_agent_config_map_passes_xds_agent_validate() {
    let docs = objects();
    let config = find(&docs, "ConfigMap", "xds-agent-config").value["data"]["config.yaml"]
        .as_str()
        .expect("config.yaml key")
        .to_string();
    let dir = std::env::temp_dir().join(format!("manifests-agent-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("config.yaml");
    std::fs::write(&path, config).expect("write config");
    let output = Command::new(e2e::paths::agent_bin())
        .arg("validate")
        .arg(&path)
        .output()
        .expect("run xds-agent validate");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        output.status.success(),
        "xds-agent validate rejected the ConfigMap's config.yaml:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
