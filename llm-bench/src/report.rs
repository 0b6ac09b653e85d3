//! Tables (Markdown) and JSON records for simulator and replay results.

use std::fmt::Write as _;

use crate::sim::Outcome;

/// One measured setting.
#[derive(Debug, Clone)]
pub struct Record {
    /// `sim` or `replay`.
    pub kind: &'static str,
    /// Strategy name.
    pub strategy: String,
    /// Backends.
    pub backends: usize,
    /// Router replicas (Envoys in the replay).
    pub replicas: usize,
    /// What was measured.
    pub outcome: Outcome,
}

impl Record {
    /// The record as one JSON object.
    #[must_use]
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "kind": self.kind,
            "strategy": self.strategy,
            "backends": self.backends,
            "replicas": self.replicas,
            "requests": self.outcome.requests,
            "prompt_tokens": self.outcome.prompt_tokens,
            "cached_tokens": self.outcome.cached_tokens,
            "hit_rate": self.outcome.hit_rate(),
            "requests_per_backend": self.outcome.per_backend,
            "max_over_mean": self.outcome.max_over_mean(),
            "continuations": self.outcome.continuations,
            "moved": self.outcome.moved,
            "moved_share": self.outcome.moved_share(),
            "keyless": self.outcome.keyless,
        })
    }
}

/// A Markdown table per backend count: one row per strategy, for each replica count the hit
/// rate, max/mean requests per backend and the share of continuations that moved.
#[must_use]
pub fn tables(records: &[Record]) -> String {
    let mut out = String::new();
    let mut backends: Vec<usize> = records.iter().map(|r| r.backends).collect();
    backends.dedup();
    backends.sort_unstable();
    backends.dedup();
    for n in backends {
        let of_n: Vec<&Record> = records.iter().filter(|r| r.backends == n).collect();
        let mut replicas: Vec<usize> = of_n.iter().map(|r| r.replicas).collect();
        replicas.sort_unstable();
        replicas.dedup();
        let mut strategies: Vec<&str> = Vec::new();
        for record in &of_n {
            if !strategies.contains(&record.strategy.as_str()) {
                strategies.push(&record.strategy);
            }
        }
        let _ = writeln!(
            out,
            "\n{n} backends — hit rate / max÷mean requests per backend / conversations moved, per replica count\n"
        );
        let mut header = String::from("| strategy |");
        let mut rule = String::from("|---|");
        for r in &replicas {
            let _ = write!(header, " R={r} hit | R={r} max/mean | R={r} moved |");
            rule.push_str("---:|---:|---:|");
        }
        let _ = writeln!(out, "{header}\n{rule}");
        for strategy in strategies {
            let mut row = format!("| {strategy} |");
            for r in &replicas {
                match of_n
                    .iter()
                    .find(|x| x.strategy == strategy && x.replicas == *r)
                {
                    Some(x) => {
                        let _ = write!(
                            row,
                            " {:.1}% | {:.2} | {:.1}% |",
                            100.0 * x.outcome.hit_rate(),
                            x.outcome.max_over_mean(),
                            100.0 * x.outcome.moved_share()
                        );
                    }
                    None => row.push_str(" – | – | – |"),
                }
            }
            let _ = writeln!(out, "{row}");
        }
    }
    out
}
