//! Shared by the agent's benchmark examples: the generated configuration, argument parsing and
//! medians.

use std::fmt::Write as _;
use std::time::Duration;

/// The benchmark configuration: one listener (`ingress` on `127.0.0.1:listen_port`) routing
/// `/s<i>/` to service `s<i>`, `services` services of `endpoints` IP endpoints each, ring hash with
/// xxHash. The endpoints are never dialled. `changed_port`, when set, is the port of service
/// `s0`'s first endpoint (a one-endpoint change).
pub fn config_yaml(
    services: usize,
    endpoints: usize,
    listen_port: u16,
    changed_port: Option<u16>,
) -> String {
    let mut yaml = format!(
        "listeners:\n  - name: ingress\n    address: 127.0.0.1:{listen_port}\n    routes:\n"
    );
    for s in 0..services {
        let _ = write!(yaml, "      - prefix: /s{s}/\n        service: s{s}\n");
    }
    yaml.push_str("services:\n");
    for s in 0..services {
        let _ = write!(yaml, "  - name: s{s}\n    endpoints:\n");
        for e in 0..endpoints {
            let port = match changed_port {
                Some(port) if s == 0 && e == 0 => port,
                _ => 20000 + u16::try_from(e % 10000).unwrap_or(0),
            };
            let _ = writeln!(
                yaml,
                "      - address: 10.{}.{}.{}:{port}",
                s / 250,
                s % 250,
                e % 250 + 1
            );
        }
        yaml.push_str("    loadBalancer:\n      ringHash: {hashFunction: xxHash}\n");
    }
    yaml
}

/// The value of `--name VALUE` in `args`, parsed, or `default`.
///
/// # Errors
/// The flag is given without a value or with one that does not parse.
pub fn flag<T>(args: &[String], name: &str, default: T) -> Result<T, String>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => {
            let value = args.get(i + 1).ok_or(format!("{name} needs a value"))?;
            value.parse().map_err(|e| format!("{name} {value:?}: {e}"))
        }
    }
}

/// Median of `samples` (the upper middle one for an even count); zero for none.
pub fn median(samples: &mut [Duration]) -> Duration {
    samples.sort_unstable();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

/// `duration` in milliseconds, rounded to microseconds.
pub fn millis(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1e6).round() / 1e3
}
