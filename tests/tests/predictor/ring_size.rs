//! The agent's default ring size, end to end: for clusters of 1 to 200 backends (equal and mixed
//! weights), `xds-agent simulate` reports the minimum ring size the agent configures, which must
//! be `affinity_predictor::recommended_min_ring_size` (the documented rule), and the exact balance
//! of the resulting ring, which must stay within max/mean ≤ 1.10.

use std::process::Command;

use affinity_predictor::{Host, recommended_min_ring_size};
use e2e::paths;

fn config(weights: &[u32]) -> String {
    let mut yaml = String::from(
        "listeners:\n  - name: ingress\n    address: 127.0.0.1:10000\n    routes:\n      - prefix: /\n        service: web\nservices:\n  - name: web\n    endpoints:\n",
    );
    for (i, weight) in weights.iter().enumerate() {
        yaml.push_str(&format!(
            "      - address: 10.0.{}.{}:8080\n        weight: {weight}\n",
            i / 250,
            i % 250 + 1
        ));
    }
    yaml.push_str("    loadBalancer:\n      ringHash: {hashFunction: xxHash}\n");
    yaml
}

/// (minimum ring size, exact max/fair) as `xds-agent simulate` prints them.
fn simulate(weights: &[u32], dir: &std::path::Path) -> (u64, f64) {
    let path = dir.join(format!(
        "ring-{}-{}.yaml",
        weights.len(),
        weights.iter().sum::<u32>()
    ));
    std::fs::write(&path, config(weights)).unwrap();
    let output = Command::new(paths::agent_bin())
        .args(["simulate", "--service", "web", "--keys", "1", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "simulate failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let ring = stdout
        .split("minimum ring size ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no ring size in:\n{stdout}"));
    let exact = stdout
        .lines()
        .find_map(|line| line.strip_prefix("exact max/fair:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exact max/fair in:\n{stdout}"));
    (ring, exact)
}

#[test]
fn the_agents_default_ring_keeps_max_over_mean_within_1_10() {
    let dir = paths::scratch_dir("predictor-ring-size");
    let counts: Vec<usize> = (1..=40).chain((45..=200).step_by(5)).collect();
    for count in counts {
        for weights in [
            vec![1; count],
            (0..count).map(|i| 1 + (i % 4) as u32).collect(),
        ] {
            let hosts: Vec<Host> = weights
                .iter()
                .enumerate()
                .map(|(i, w)| Host::new(format!("h{i}")).with_weight(*w))
                .collect();
            let (ring, exact) = simulate(&weights, &dir);
            assert_eq!(
                ring,
                recommended_min_ring_size(&hosts),
                "N={count} weights {:?}...: agent's default differs from the rule",
                &weights[..weights.len().min(4)]
            );
            assert!(exact <= 1.10, "N={count}: exact max/fair {exact} > 1.10");
        }
    }
}
