//! `xds-agent explain` against the real system: the real agent serving a config to a real Envoy
//! running our wasm filter — or, for a service served natively, no filter: Envoy's route
//! `hash_policy` hashes the value itself — N real backends. For every key, the backend that answers a request
//! carrying `x-user-id: <key>` must be the one `xds-agent explain` prints for that key — ring hash
//! at the agent's default size and Maglev, several backend counts, weights and `hashKey`s.
//!
//! `xds-agent simulate` is checked against the same traffic: its per-backend key counts must equal
//! what the real Envoy did.

use std::collections::HashMap;
use std::process::Command;

use e2e::agent::Agent;
use e2e::{Backend, free_port, http, paths};

const KEYS: usize = 1_500;

struct Service {
    name: &'static str,
    /// (backend index, weight, hashKey)
    members: Vec<(usize, u32, Option<String>)>,
    load_balancer: &'static str,
}

fn services() -> Vec<Service> {
    vec![
        Service {
            name: "ring3",
            members: (0..3).map(|i| (i, 1, None)).collect(),
            load_balancer: "ringHash: {hashFunction: xxHash}",
        },
        Service {
            name: "ring6wk",
            members: (0..6)
                .map(|i| {
                    (
                        i,
                        1 + (i % 3) as u32,
                        (i % 2 == 1).then(|| format!("pod-{i}")),
                    )
                })
                .collect(),
            load_balancer: "ringHash: {hashFunction: xxHash}",
        },
        Service {
            name: "maglev7wk",
            members: (0..7)
                .map(|i| {
                    (
                        i,
                        1 + (i % 2) as u32,
                        (i % 3 == 0).then(|| format!("pod-{i}")),
                    )
                })
                .collect(),
            load_balancer: "maglev: {}",
        },
    ]
}

/// The filter on the `x-user-id` header.
const FILTER_HEADER: &str = "{mode: filter, keys: [{header: x-user-id}], onMissing: passThrough}";
/// The same header, served natively by Envoy's route `hash_policy` (`auto`).
const NATIVE_HEADER: &str = "{keys: [{header: x-user-id}], onMissing: passThrough}";
/// Every native source in a fallback chain, served natively.
const NATIVE_CHAIN: &str =
    "{keys: [{header: x-user-id}, {cookie: session}, {query: user}, {sourceIp: {}}]}";

fn config(listen_port: u16, services: &[Service], backends: &[Backend], affinity: &str) -> String {
    let mut yaml = format!(
        "listeners:\n  - name: ingress\n    address: 127.0.0.1:{listen_port}\n    routes:\n"
    );
    for service in services {
        yaml.push_str(&format!(
            "      - prefix: /{name}/\n        service: {name}\n",
            name = service.name
        ));
    }
    yaml.push_str("services:\n");
    for service in services {
        yaml.push_str(&format!("  - name: {}\n    endpoints:\n", service.name));
        for (index, weight, hash_key) in &service.members {
            yaml.push_str(&format!(
                "      - address: {}\n        weight: {weight}\n",
                backends[*index].address()
            ));
            if let Some(key) = hash_key {
                yaml.push_str(&format!("        hashKey: {key}\n"));
            }
        }
        yaml.push_str(&format!(
            "    affinity: {affinity}\n    loadBalancer:\n      {}\n",
            service.load_balancer
        ));
    }
    yaml.push_str(&format!(
        "filter:\n  wasm: {}\n",
        paths::wasm_path().display()
    ));
    yaml
}

fn agent_cli(args: &[&str]) -> String {
    let output = Command::new(paths::agent_bin())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run xds-agent: {e}"));
    assert!(
        output.status.success(),
        "xds-agent {args:?} failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// `key -> backend address` from `xds-agent explain` output.
fn explained(output: &str) -> HashMap<String, String> {
    let mut result = HashMap::new();
    let mut key = None;
    for line in output.lines() {
        if let Some(value) = line.strip_prefix("key:") {
            key = Some(value.trim().to_owned());
        } else if let Some(value) = line.strip_prefix("backend:") {
            let address = value.split_whitespace().next().unwrap().to_owned();
            result.insert(key.take().unwrap(), address);
        }
    }
    result
}

/// `address -> keys` from the table `xds-agent simulate` prints.
fn simulated(output: &str) -> HashMap<String, u64> {
    output
        .lines()
        .filter(|line| line.starts_with("127.0.0.1:"))
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields[0].to_owned(), fields[3].parse().unwrap())
        })
        .collect()
}

#[test]
fn envoy_with_the_agent_and_filter_picks_what_explain_prints() {
    envoy_picks_what_explain_prints(FILTER_HEADER, "filter");
}

/// Served natively, Envoy hashes the header's value itself: `explain` and `simulate` must model that.
#[test]
fn envoy_serving_natively_picks_what_explain_prints() {
    envoy_picks_what_explain_prints(NATIVE_HEADER, "native");
}

fn envoy_picks_what_explain_prints(affinity: &str, served: &str) {
    let backends: Vec<Backend> = (0..7).map(|i| Backend::start(&format!("e{i}"))).collect();
    let services = services();
    let listen_port = free_port();
    let agent = Agent::start(&config(listen_port, &services, &backends, affinity));
    let _envoy = agent.start_envoy(&format!("predictor-explain-{served}"));
    let config_path = agent.config_path.to_string_lossy().into_owned();
    let name_of: HashMap<String, &str> = backends
        .iter()
        .map(|b| (b.address(), b.name.as_str()))
        .collect();

    for service in &services {
        let keys: Vec<String> = (0..KEYS).map(|i| format!("key-{i}")).collect();
        let mut args = vec![
            "explain",
            "--config",
            &config_path,
            "--service",
            service.name,
        ];
        for key in &keys {
            args.extend(["--key", key.as_str()]);
        }
        let output = agent_cli(&args);
        assert!(
            output.contains(&format!("affinity:      {served} (")),
            "{}",
            &output[..output.len().min(600)]
        );
        let predictions = explained(&output);
        assert_eq!(
            predictions.len(),
            KEYS,
            "{}: one backend per key",
            service.name
        );

        // Wait until the route and cluster are live (the first request after start may race).
        let path = format!("/{}/x", service.name);
        let ready = e2e::wait_until(std::time::Duration::from_secs(20), || {
            http::get(&path)
                .header("x-user-id", "warm-up")
                .send(listen_port)
                .map(|r| r.status == 200)
                .unwrap_or(false)
        });
        assert!(ready, "{}: route never answered 200", service.name);

        let mut actual_counts: HashMap<String, u64> = HashMap::new();
        let mut mismatches = Vec::new();
        for key in &keys {
            let response = http::get(&path)
                .header("x-user-id", key)
                .send_ok(listen_port);
            assert_eq!(response.status, 200, "{}: {response:?}", service.name);
            let actual = response.backend().unwrap_or_default().to_owned();
            let predicted = name_of[&predictions[key]];
            if actual != predicted {
                mismatches.push((key.clone(), predicted, actual.clone()));
            }
            let address = backends
                .iter()
                .find(|b| b.name == actual)
                .map(|b| b.address());
            *actual_counts.entry(address.unwrap_or(actual)).or_default() += 1;
        }
        assert!(
            mismatches.is_empty(),
            "{}: {} of {KEYS} keys went elsewhere than explained, e.g. {:?}",
            service.name,
            mismatches.len(),
            &mismatches[..mismatches.len().min(5)]
        );
        assert_eq!(
            actual_counts.len(),
            service.members.len(),
            "{}: every backend used",
            service.name
        );

        // simulate --keys N uses the same keys (key-0 .. key-N-1): its table is what Envoy did.
        let keys_arg = KEYS.to_string();
        let table = simulated(&agent_cli(&[
            "simulate",
            "--config",
            &config_path,
            "--service",
            service.name,
            "--keys",
            &keys_arg,
        ]));
        assert_eq!(table, actual_counts, "{}: simulate vs Envoy", service.name);
    }
}

/// Served natively, every source of a fallback chain: for keys given with `--source cookie`, `query` and
/// `sourceIp`, the backend the real Envoy picks for a request carrying only that source is the one `explain`
/// prints.
#[test]
fn envoy_serving_a_native_chain_picks_what_explain_prints_for_every_source() {
    const PER_SOURCE: usize = 200;
    let backends: Vec<Backend> = (0..7).map(|i| Backend::start(&format!("n{i}"))).collect();
    let services: Vec<Service> = services()
        .into_iter()
        .filter(|s| s.name != "ring3")
        .collect();
    let listen_port = free_port();
    let agent = Agent::start(&config(listen_port, &services, &backends, NATIVE_CHAIN));
    let _envoy = agent.start_envoy("predictor-explain-native-chain");
    let config_path = agent.config_path.to_string_lossy().into_owned();
    let name_of: HashMap<String, &str> = backends
        .iter()
        .map(|b| (b.address(), b.name.as_str()))
        .collect();
    let address = |i: usize| format!("127.0.{}.{}", 3 + i / 200, 1 + i % 200);
    for service in &services {
        let path = format!("/{}/x", service.name);
        let ready = e2e::wait_until(std::time::Duration::from_secs(20), || {
            http::get(&path)
                .send(listen_port)
                .map(|r| r.status == 200)
                .unwrap_or(false)
        });
        assert!(ready, "{}: route never answered 200", service.name);
        for source in ["header", "cookie", "query", "sourceIp"] {
            let keys: Vec<String> = (0..PER_SOURCE)
                .map(|i| match source {
                    "sourceIp" => address(i),
                    _ => format!("{source}-key-{i}"),
                })
                .collect();
            let mut args = vec![
                "explain",
                "--config",
                &config_path,
                "--service",
                service.name,
                "--source",
                source,
            ];
            for key in &keys {
                args.extend(["--key", key.as_str()]);
            }
            let output = agent_cli(&args);
            assert!(
                output.contains("(native hash_policy, no filter)"),
                "{output}"
            );
            let predictions = explained(&output);
            let mut mismatches = Vec::new();
            let mut used = std::collections::BTreeSet::new();
            for key in &keys {
                let request = match source {
                    "header" => http::get(&path).header("x-user-id", key),
                    "cookie" => http::get(&path).header("cookie", &format!("a=1; session={key}")),
                    "query" => http::get(&format!("{path}?x=1&user={key}")),
                    _ => http::get(&path).from_source(key.parse().unwrap()),
                };
                let response = request.send_ok(listen_port);
                assert_eq!(response.status, 200, "{}: {response:?}", service.name);
                let actual = response.backend().unwrap_or_default().to_owned();
                used.insert(actual.clone());
                if actual != name_of[&predictions[key]] {
                    mismatches.push((key.clone(), predictions[key].clone(), actual));
                }
            }
            assert!(
                mismatches.is_empty(),
                "{} --source {source}: {} of {PER_SOURCE} keys went elsewhere than explained, e.g. {:?}",
                service.name,
                mismatches.len(),
                &mismatches[..mismatches.len().min(5)]
            );
            assert!(used.len() >= 3, "{} {source}: {used:?}", service.name);
        }
    }
}

/// `explain --body` for body keys: for JSON bodies keyed by a `user` field and by the prompt
/// prefix, the backend the real Envoy picks is the one `explain --body` prints.
#[test]
fn envoy_picks_what_explain_prints_for_json_bodies() {
    let backends: Vec<Backend> = (0..5).map(|i| Backend::start(&format!("j{i}"))).collect();
    let listen_port = free_port();
    let endpoints: String = backends
        .iter()
        .map(|backend| format!("      - address: {}\n", backend.address()))
        .collect();
    let config = format!(
        "listeners:\n  - name: ingress\n    address: 127.0.0.1:{listen_port}\n    routes: [{{prefix: /, service: llm}}]\n\
         services:\n  - name: llm\n    endpoints:\n{endpoints}    affinity:\n      keys: [{{jsonBody: /user}}, {{promptPrefix: {{}}}}]\n\
         \x20   loadBalancer: {{maglev: {{}}}}\nfilter:\n  wasm: {}\n",
        paths::wasm_path().display()
    );
    let agent = Agent::start(&config);
    let _envoy = agent.start_envoy("predictor-explain-body");
    let config_path = agent.config_path.to_string_lossy().into_owned();
    let name_of: HashMap<String, &str> = backends
        .iter()
        .map(|b| (b.address(), b.name.as_str()))
        .collect();
    let post = |body: &str| {
        http::get("/v1/chat/completions")
            .method("POST")
            .header("content-type", "application/json")
            .body(body.as_bytes().to_vec())
            .send(listen_port)
    };
    let ready = e2e::wait_until(std::time::Duration::from_secs(20), || {
        post(r#"{"user":"warm-up"}"#)
            .map(|r| r.status == 200)
            .unwrap_or(false)
    });
    assert!(ready, "the route never answered 200");
    let body_file = agent.config_path.with_file_name("body.json");
    let mut backends_used = std::collections::BTreeSet::new();
    for index in 0..60 {
        let body = if index % 2 == 0 {
            format!(
                r#"{{"model":"m","messages":[{{"role":"user","content":"hi"}}],"user":"user-{index}"}}"#
            )
        } else {
            format!(
                r#"{{"model":"m","messages":[{{"role":"system","content":"Be brief."}},{{"role":"user","content":"question {index}"}},{{"role":"assistant","content":"a"}},{{"role":"user","content":"more"}}]}}"#
            )
        };
        std::fs::write(&body_file, &body).unwrap();
        let output = agent_cli(&[
            "explain",
            "--config",
            &config_path,
            "--service",
            "llm",
            "--body",
            &body_file.to_string_lossy(),
        ]);
        let expected_source = if index % 2 == 0 {
            "jsonBody"
        } else {
            "promptPrefix"
        };
        assert!(
            output.contains(&format!("source {expected_source}")),
            "{output}"
        );
        let predicted = explained(&output).into_values().next().unwrap();
        let actual = post(&body)
            .unwrap()
            .backend()
            .unwrap_or_default()
            .to_owned();
        assert_eq!(
            actual, name_of[&predicted],
            "body {index}: {body}\n{output}"
        );
        backends_used.insert(actual);
    }
    assert!(backends_used.len() >= 4, "{backends_used:?}");
}
