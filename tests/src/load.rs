//! Bounded steady load: N threads sending at a fixed total rate until stopped or a maximum duration passes,
//! counting every response that is not 200 and every transport error.

use crate::http;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How many failure descriptions a report keeps (the count is always exact).
const KEPT_FAILURES: usize = 20;

/// What load to send.
#[derive(Debug, Clone, Copy)]
pub struct LoadSpec {
    /// The Envoy listener port on 127.0.0.1.
    pub port: u16,
    /// Sending threads (each sends one request at a time).
    pub threads: usize,
    /// Total requests per second over all threads.
    pub rate_per_sec: u32,
    /// The load stops by itself after this long, even if [`SteadyLoad::stop`] is never called.
    pub max_duration: Duration,
}

/// A load running in background threads.
pub struct SteadyLoad {
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<Tally>>,
}

/// What a load saw.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// Requests sent.
    pub sent: u64,
    /// Responses with status 200.
    pub ok: u64,
    /// Responses with another status plus transport errors.
    pub failed: u64,
    /// The first few failures, described.
    pub failures: Vec<String>,
}

#[derive(Default)]
struct Tally {
    sent: u64,
    ok: u64,
    failed: u64,
    failures: Vec<String>,
}

impl SteadyLoad {
    /// Starts sending. `request(i)` builds the i-th request (numbered across all threads), so a test can cycle
    /// through a set of keys.
    pub fn start(
        spec: LoadSpec,
        request: impl Fn(u64) -> http::Request + Send + Sync + 'static,
    ) -> SteadyLoad {
        let threads = spec.threads.max(1);
        let interval =
            Duration::from_secs_f64(threads as f64 / f64::from(spec.rate_per_sec.max(1)));
        let stop = Arc::new(AtomicBool::new(false));
        let request = Arc::new(request);
        let deadline = Instant::now() + spec.max_duration;
        let workers = (0..threads)
            .map(|thread| {
                let stop = Arc::clone(&stop);
                let request = Arc::clone(&request);
                std::thread::spawn(move || {
                    send_steadily(spec.port, interval, deadline, &stop, |n| {
                        request(n * threads as u64 + thread as u64)
                    })
                })
            })
            .collect();
        SteadyLoad { stop, workers }
    }

    /// Stops the load, waits for in-flight requests, and reports.
    pub fn stop(mut self) -> LoadReport {
        self.stop.store(true, Ordering::SeqCst);
        let mut report = LoadReport::default();
        for worker in std::mem::take(&mut self.workers) {
            let tally = worker
                .join()
                .unwrap_or_else(|_| panic!("a load thread panicked"));
            report.sent += tally.sent;
            report.ok += tally.ok;
            report.failed += tally.failed;
            for failure in tally.failures {
                if report.failures.len() < KEPT_FAILURES {
                    report.failures.push(failure);
                }
            }
        }
        report
    }
}

impl Drop for SteadyLoad {
    /// A test that fails before [`SteadyLoad::stop`] still ends its load.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

impl LoadReport {
    /// Asserts that at least `min_sent` requests were sent (the load really ran) and none failed.
    pub fn assert_no_failures(&self, min_sent: u64) {
        assert!(
            self.sent >= min_sent,
            "the load sent only {} requests (expected at least {min_sent})",
            self.sent
        );
        assert_eq!(
            self.failed,
            0,
            "{} of {} requests failed; first failures:\n{}",
            self.failed,
            self.sent,
            self.failures.join("\n")
        );
    }
}

fn send_steadily(
    port: u16,
    interval: Duration,
    deadline: Instant,
    stop: &AtomicBool,
    request: impl Fn(u64) -> http::Request,
) -> Tally {
    let mut tally = Tally::default();
    let mut next = Instant::now();
    let mut n = 0;
    while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
        let outcome = request(n).send(port);
        n += 1;
        tally.sent += 1;
        let failure = match outcome {
            Ok(response) if response.status == 200 => None,
            Ok(response) => Some(format!(
                "status {} (x-backend {:?}): {}",
                response.status,
                response.backend(),
                response.body.chars().take(200).collect::<String>()
            )),
            Err(error) => Some(format!("transport error: {error}")),
        };
        match failure {
            None => tally.ok += 1,
            Some(description) => {
                tally.failed += 1;
                if tally.failures.len() < KEPT_FAILURES {
                    tally.failures.push(description);
                }
            }
        }
        // A fixed schedule; when behind, carry on from now instead of bursting to catch up.
        next = (next + interval).max(Instant::now());
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    tally
}
