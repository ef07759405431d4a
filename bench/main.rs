//! `cargo bench --bench ftw` (or `bench/run.sh`, which also installs wrk and records the
//! result in BENCHMARKS.md): starts the release `ftw serve` on a throwaway manifest and
//! measures it over real sockets, next to the floor it cannot beat (raw argon2, a direct
//! spawn from Rust) and against the targets of issue 7. Prints a Markdown table and
//! writes it to `target/bench.md`. Numbers, never assertions: shared machines are noisy,
//! so read each as a pair (ftw vs floor) measured the same minute.

mod client;
mod history;
mod live;
mod load;
mod replicas;
mod runs;
mod server;

use std::fmt::Write as _;
use std::time::Duration;

use server::{Server, mb};

struct Row {
    what: String,
    result: String,
    target: String,
    met: Option<bool>,
}

fn row(what: impl Into<String>, result: impl Into<String>, target: impl Into<String>) -> Row {
    Row {
        what: what.into(),
        result: result.into(),
        target: target.into(),
        met: None,
    }
}

impl Row {
    fn met(mut self, met: bool) -> Row {
        self.met = Some(met);
        self
    }
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument, if any, is ignored.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path());
    let machine = machine(cores);
    println!("ftw benchmark on {machine}\n");
    let mut rows = Vec::new();

    // ---- memory at rest ----
    if wanted("memory") {
        std::thread::sleep(Duration::from_secs(1));
        let idle = server.rss_kib();
        rows.push(row("idle RSS after start", mb(idle), "≤ 5 MB").met(idle * 1024 <= 5_000_000));
        rows.push(row(
            "of which anonymous (heap, stacks; the rest is shared file pages)",
            mb(server.anon_kib()),
            "",
        ));
        progress(&rows);
    }

    let cookie = server.sign_in();

    // ---- live output, on an otherwise idle server ----
    if wanted("live") {
        // A sign-in keeps argon2's working memory (19 MiB) for the next one for a few
        // seconds; let it go, so what follows measures the clients, not that buffer.
        std::thread::sleep(Duration::from_secs(12));
        let crowd = live::crowd(&server, &cookie, 1000);
        let grown = crowd.rss_with_clients_kib;
        rows.push(
            row(
                format!(
                    "RSS with {} live clients on one run ({} saw live output)",
                    crowd.clients, crowd.live
                ),
                format!("{} (from {})", mb(grown), mb(crowd.rss_before_kib)),
                "≤ 64 MB",
            )
            .met(grown * 1024 <= 64_000_000 && crowd.live == crowd.clients),
        );
        progress(&rows);
        let flood = live::flood(&server, &cookie);
        let rate = flood.bytes as f64 / flood.elapsed.as_secs_f64() / 1e6;
        rows.push(
            row(
                "1 GB of output to one live client",
                format!(
                    "{rate:.0} MB/s ({:.1} s; {:.0} MB of events received)",
                    flood.elapsed.as_secs_f64(),
                    flood.received as f64 / 1e6
                ),
                "≥ 100 MB/s",
            )
            .met(rate >= 100.0),
        );
        let growth = flood.rss_peak_kib.saturating_sub(flood.rss_before_kib);
        rows.push(
            row(
                "server RSS growth during that run",
                format!(
                    "{} (peak {} from {})",
                    mb(growth),
                    mb(flood.rss_peak_kib),
                    mb(flood.rss_before_kib)
                ),
                "≤ 16 MB",
            )
            .met(growth * 1024 <= 16_000_000),
        );
    }

    // ---- sign-in ----
    if wanted("sign-in") {
        let raw_one = load::argon2_rate(1, Duration::from_secs(3));
        let raw_all = load::argon2_rate(cores, Duration::from_secs(3));
        rows.push(row(
            "argon2id verify, raw (1 thread / all CPUs)",
            format!("{raw_one:.1} / {raw_all:.1} per s"),
            "the floor",
        ));
        let logins = load::login_rate(&server, cores * 2, Duration::from_secs(5));
        rows.push(
            row(
                format!("sign-ins over HTTP ({} clients)", cores * 2),
                format!(
                    "{logins:.1} per s = {:.0} % of raw",
                    100.0 * logins / raw_all
                ),
                "≥ 90 % of raw",
            )
            .met(logins >= 0.9 * raw_all),
        );
        let (_, during) =
            load::page_during_login_flood(&server, &cookie, cores * 2, Duration::from_secs(5));
        rows.push(
            row(
                "form page during that login flood (1 client)",
                format!("p50 {} / p99 {}", ms(during.p50), ms(during.p99)),
                "p99 < 20 ms",
            )
            .met(during.p99 < Duration::from_millis(20)),
        );
        progress(&rows);
    }

    // ---- pages ----
    if wanted("pages") {
        match load::wrk(&server, &cookie, "/tools/echo", 8) {
            Some(w) => rows.push(row(
                "form page, wrk, 8 connections",
                format!("{:.0} per s", w.rate),
                format!("p50 {} / p99 {}", ms(w.p50), ms(w.p99)),
            )),
            None => {
                let pages =
                    load::page_rate(&server, &cookie, "/tools/echo", 8, Duration::from_secs(5));
                rows.push(row(
                    "form page, 8 clients (wrk not installed: built-in client)",
                    format!("{:.0} per s", pages.rate),
                    format!("p50 {} / p99 {}", ms(pages.p50), ms(pages.p99)),
                ));
            }
        }
        progress(&rows);
    }

    // ---- runs: the request a user makes, against the floor, in the same minute ----
    if wanted("runs") {
        let span = Duration::from_secs(5);
        let floor_one = runs::floor(1, span);
        let floor_eight = runs::floor(8, span);
        rows.push(row(
            "spawn /bin/echo x directly from Rust (std, output captured), 1 thread / 8 threads",
            format!("p50 {} / {:.0} per s", ms(floor_one.p50), floor_eight.rate),
            "the floor",
        ));
        let session = runs::Caller::Session(cookie.clone());
        let token = runs::Caller::Token(server.token.clone());
        for (caller, how) in [
            (&session, "session cookie + X-CSRF-Token"),
            (&token, "bearer token"),
        ] {
            let one = runs::api(&server, caller, 1, span);
            rows.push(
                row(
                    format!("POST /api/tools/echo/runs?wait=true, {how}, 1 client"),
                    format!(
                        "p50 {} / p99 {} = {:.2}x the floor",
                        ms(one.latency.p50),
                        ms(one.latency.p99),
                        ratio(one.latency.p50, floor_one.p50)
                    ),
                    "p50 ≤ 1.3x the floor",
                )
                .met(ratio(one.latency.p50, floor_one.p50) <= 1.3),
            );
            let eight = runs::api(&server, caller, 8, span);
            let share = eight.latency.rate / floor_eight.rate;
            rows.push(
                row(
                    format!("the same, {how}, 8 clients"),
                    format!(
                        "{:.0} runs per s = {share:.2}x the floor; ftw's own CPU {} per run",
                        eight.latency.rate,
                        ms(eight.cpu_per_run)
                    ),
                    "≥ 0.9x the floor",
                )
                .met(share >= 0.9),
            );
            progress(&rows);
        }
        let form = runs::form(&server, &cookie, 1, span);
        rows.push(row(
            "the form, 1 client (POST, then the event stream to the exit code)",
            format!(
                "p50 {} = {:.2}x the floor",
                ms(form.p50),
                ratio(form.p50, floor_one.p50)
            ),
            "two requests",
        ));
        progress(&rows);
    }

    // ---- a long history ----
    drop(server);
    if wanted("replicas")
        && let Some(measured) = replicas::measure(Duration::from_secs(10))
    {
        let base = measured[0].runs.rate;
        for m in &measured {
            rows.push(row(
                format!(
                    "{}: session + CSRF runs, 8 clients over the replicas",
                    m.setup
                ),
                format!(
                    "{:.0} runs per s = {:.2}x SQLite (p50 {} / p99 {}); CPU per run: ftw {}, PostgreSQL {}",
                    m.runs.rate,
                    m.runs.rate / base,
                    ms(m.runs.p50),
                    ms(m.runs.p99),
                    ms(m.ftw_cpu_per_run),
                    ms(m.postgres_cpu_per_run)
                ),
                "",
            ));
            rows.push(
                row(
                    format!("{}: form page, 4 clients", m.setup),
                    format!("p50 {} / p99 {}", ms(m.page.p50), ms(m.page.p99)),
                    "p99 < 20 ms",
                )
                .met(m.page.p99 < Duration::from_millis(20)),
            );
        }
        progress(&rows);
    }
    if wanted("history") {
        let runs: u64 = std::env::var("FTW_BENCH_HISTORY")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(1_000_000);
        let long = tempfile::tempdir().expect("temp dir");
        let h = history::measure(long.path(), runs);
        rows.push(row(
            format!("{} runs written to the history through ftw's store", h.runs),
            format!(
                "{:.1} s = {:.0} runs per s",
                h.fill.as_secs_f64(),
                h.runs as f64 / h.fill.as_secs_f64()
            ),
            "",
        ));
        rows.push(
            row(
                format!("start-up with {} runs in the history", h.runs),
                ms(h.startup),
                "< 1 s",
            )
            .met(h.startup < Duration::from_secs(1)),
        );
        rows.push(row(
            "database size per run (one argument, 32 bytes of output)",
            format!(
                "{:.0} bytes ({:.0} MB in all)",
                h.database_bytes as f64 / h.runs as f64,
                h.database_bytes as f64 / 1e6
            ),
            "",
        ));
        for (what, latency) in &h.requests {
            rows.push(
                row(
                    format!("{what}, 1 client, {} runs", h.runs),
                    format!("p50 {} / p99 {}", ms(latency.p50), ms(latency.p99)),
                    "p99 < 50 ms",
                )
                .met(latency.p99 < Duration::from_millis(50)),
            );
        }
        progress(&rows);
    }

    let table = render(&machine, &rows);
    println!("{table}");
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench.md");
    std::fs::write(&out, &table).expect("write target/bench.md");
    eprintln!("(also written to {})", out.display());
}

/// Whether a section runs: all of them, unless `FTW_BENCH_ONLY` lists some
/// (`memory,live,sign-in,pages,runs,history`).
fn wanted(section: &str) -> bool {
    std::env::var("FTW_BENCH_ONLY")
        .map_or(true, |only| only.split(',').any(|s| s.trim() == section))
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64()
}

fn render(machine: &str, rows: &[Row]) -> String {
    let date = time::OffsetDateTime::now_utc().date();
    let mut t = format!("## {date}, {machine}\n\n");
    t.push_str("| measure | result | floor or target | |\n|---|---|---|---|\n");
    for r in rows {
        let verdict = match r.met {
            Some(true) => "met",
            Some(false) => "**missed**",
            None => "",
        };
        let _ = writeln!(
            t,
            "| {} | {} | {} | {verdict} |",
            r.what, r.result, r.target
        );
    }
    t
}

/// One line per finished row on stderr, so a long run shows where it is.
fn progress(rows: &[Row]) {
    if let Some(r) = rows.last() {
        eprintln!("  {}: {}", r.what, r.result);
    }
}

/// CPU model, CPUs, memory and kernel, for the record.
fn machine(cores: usize) -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let memory_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{cpu} ({cores} CPUs, {memory_gib:.0} GiB), Linux {}",
        kernel.trim()
    )
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}
