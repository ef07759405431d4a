//! Metrics for `/metrics`, in the OpenMetrics text format Prometheus scrapes
//! (prometheus-client writes it, so ftw does not hand-format exposition text):
//! runs started and finished by tool and outcome, run durations, runs active and
//! queued, and sign-ins by result.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

pub struct Metrics {
    registry: Registry,
    runs_started: Family<Labels, Counter>,
    runs_finished: Family<Labels, Counter>,
    run_seconds: Family<Labels, Histogram, fn() -> Histogram>,
    runs_active: Gauge,
    runs_queued: Gauge,
    sign_ins: Family<Labels, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

fn duration_histogram() -> Histogram {
    // 10 ms to about 45 minutes.
    Histogram::new(exponential_buckets(0.01, 3.0, 14))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("ftw");
        let runs_started = Family::<Labels, Counter>::default();
        let runs_finished = Family::<Labels, Counter>::default();
        let run_seconds = Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(
            duration_histogram,
        );
        let runs_active = Gauge::default();
        let runs_queued = Gauge::default();
        let sign_ins = Family::<Labels, Counter>::default();
        registry.register(
            "runs_started",
            "Runs accepted, by tool",
            runs_started.clone(),
        );
        registry.register(
            "runs_finished",
            "Runs that ended, by tool and outcome",
            runs_finished.clone(),
        );
        registry.register(
            "run_duration_seconds",
            "How long runs took, by tool",
            run_seconds.clone(),
        );
        registry.register("runs_active", "Runs executing now", runs_active.clone());
        registry.register(
            "runs_queued",
            "Runs waiting for a free slot",
            runs_queued.clone(),
        );
        registry.register(
            "sign_ins",
            "Sign-in attempts by result (success, failure, throttled)",
            sign_ins.clone(),
        );
        Metrics {
            registry,
            runs_started,
            runs_finished,
            run_seconds,
            runs_active,
            runs_queued,
            sign_ins,
        }
    }
}

impl Metrics {
    pub fn run_started(&self, tool: &str) {
        self.runs_started
            .get_or_create(&vec![("tool", tool.to_string())])
            .inc();
    }

    /// A run ended with `outcome` (succeeded, failed, timed-out, ...) after `seconds`.
    pub fn run_finished(&self, tool: &str, outcome: &str, seconds: Option<f64>) {
        self.runs_finished
            .get_or_create(&vec![
                ("tool", tool.to_string()),
                ("outcome", outcome.to_string()),
            ])
            .inc();
        if let Some(seconds) = seconds {
            self.run_seconds
                .get_or_create(&vec![("tool", tool.to_string())])
                .observe(seconds);
        }
    }

    pub fn set_active(&self, active: usize, queued: usize) {
        self.runs_active.set(active as i64);
        self.runs_queued.set(queued as i64);
    }

    pub fn sign_in(&self, result: &'static str) {
        self.sign_ins
            .get_or_create(&vec![("result", result.to_string())])
            .inc();
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut text = String::new();
        encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }
}
