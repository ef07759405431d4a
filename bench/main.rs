//! `cargo bench --bench ftw`: starts the release `ftw serve` on a throwaway manifest and
//! measures it over real sockets, next to the floor it cannot beat (raw argon2, a direct
//! spawn from Rust). Prints a Markdown table. Numbers, never assertions: shared machines
//! are noisy, so read them as a pair (ftw vs floor) measured the same minute.

mod client;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use client::Conn;

const USER: &str = "bench";
const PASSWORD: &str = "correct horse battery staple";

fn main() {
    // `cargo bench` passes `--bench`; a filter argument, if any, is ignored.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path());
    println!("ftw benchmark: {} ({cores} CPUs)\n", machine());

    let mut rows: Vec<(String, String, String)> = Vec::new();

    // ---- sign-in ----
    let raw_one = argon2_rate(1, Duration::from_secs(3));
    let raw_all = argon2_rate(cores, Duration::from_secs(3));
    let logins = login_rate(&server, cores * 2, Duration::from_secs(5));
    rows.push((
        "argon2id verify, raw (1 thread / all CPUs)".into(),
        format!("{raw_one:.1} / {raw_all:.1} per s"),
        "the floor".into(),
    ));
    rows.push((
        format!("sign-ins over HTTP ({} clients)", cores * 2),
        format!("{logins:.1} per s"),
        format!("{:.0} % of raw (all CPUs)", 100.0 * logins / raw_all),
    ));

    // ---- pages ----
    let cookie = server.sign_in();
    let pages = page_rate(&server, &cookie, 8, Duration::from_secs(5));
    rows.push((
        "signed-in index page (8 clients, keep-alive)".into(),
        format!("{:.0} per s", pages.rate),
        format!("p50 {} / p99 {}", ms(pages.p50), ms(pages.p99)),
    ));

    // ---- runs ----
    let direct = direct_spawn(300);
    let one = run_latency(&server, &cookie, 200);
    rows.push((
        "spawn /bin/true directly from Rust".into(),
        format!("p50 {} / p99 {}", ms(direct.p50), ms(direct.p99)),
        "the floor".into(),
    ));
    rows.push((
        "trivial tool end to end, 1 client (POST, wait for exit code)".into(),
        format!("p50 {} / p99 {}", ms(one.p50), ms(one.p99)),
        format!(
            "{:.2}x the direct spawn (target ≤ 1.3x)",
            one.p50.as_secs_f64() / direct.p50.as_secs_f64()
        ),
    ));
    for clients in [1, 8] {
        let rate = run_rate(&server, &cookie, clients, Duration::from_secs(5));
        rows.push((
            format!("trivial tool runs, {clients} client(s)"),
            format!("{rate:.0} per s"),
            String::new(),
        ));
    }

    println!("| measure | result | note |\n|---|---|---|");
    for (what, result, note) in rows {
        println!("| {what} | {result} | {note} |");
    }
}

/// CPU model and kernel, for the record.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cpu}, Linux {}", kernel.trim())
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

struct Latency {
    p50: Duration,
    p99: Duration,
    rate: f64,
}

fn percentiles(mut samples: Vec<Duration>, elapsed: Duration) -> Latency {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    Latency {
        p50: at(0.50),
        p99: at(0.99),
        rate: samples.len() as f64 / elapsed.as_secs_f64(),
    }
}

/// Verifications per second on `threads` threads.
fn argon2_rate(threads: usize, for_how_long: Duration) -> f64 {
    let hash = Arc::new(ftw::password::hash(PASSWORD.as_bytes()).unwrap());
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (hash, done) = (Arc::clone(&hash), Arc::clone(&done));
            std::thread::spawn(move || {
                while start.elapsed() < for_how_long {
                    assert!(ftw::password::verify(PASSWORD.as_bytes(), &hash));
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

/// Successful sign-ins per second with `clients` concurrent clients.
fn login_rate(server: &Server, clients: usize, for_how_long: Duration) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let (port, done) = (server.port, Arc::clone(&done));
            std::thread::spawn(move || {
                let mut conn = Conn::open(port);
                while start.elapsed() < for_how_long {
                    if client::sign_in(&mut conn, USER, PASSWORD).is_some() {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

fn page_rate(server: &Server, cookie: &str, clients: usize, for_how_long: Duration) -> Latency {
    let start = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let (port, cookie) = (server.port, cookie.to_string());
            std::thread::spawn(move || {
                let mut conn = Conn::open(port);
                let mut samples = Vec::new();
                while start.elapsed() < for_how_long {
                    let t = Instant::now();
                    let r = conn.request("GET", "/", &[("Cookie", &cookie)], "");
                    assert_eq!(r.status, 200);
                    samples.push(t.elapsed());
                }
                samples
            })
        })
        .collect();
    let samples: Vec<Duration> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    percentiles(samples, start.elapsed())
}

fn direct_spawn(n: usize) -> Latency {
    let start = Instant::now();
    let samples = (0..n)
        .map(|_| {
            let t = Instant::now();
            let status = Command::new("/bin/true").status().unwrap();
            assert!(status.success());
            t.elapsed()
        })
        .collect();
    percentiles(samples, start.elapsed())
}

fn run_latency(server: &Server, cookie: &str, n: usize) -> Latency {
    let mut conn = Conn::open(server.port);
    let csrf = client::csrf_of(
        &conn
            .request("GET", "/tools/true", &[("Cookie", cookie)], "")
            .body,
    );
    let start = Instant::now();
    let samples = (0..n)
        .map(|_| {
            let t = Instant::now();
            client::run_and_wait(&mut conn, cookie, &csrf);
            t.elapsed()
        })
        .collect();
    percentiles(samples, start.elapsed())
}

fn run_rate(server: &Server, cookie: &str, clients: usize, for_how_long: Duration) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let (port, cookie, done, stop) = (
                server.port,
                cookie.to_string(),
                Arc::clone(&done),
                Arc::clone(&stop),
            );
            std::thread::spawn(move || {
                let mut conn = Conn::open(port);
                let csrf = client::csrf_of(
                    &conn
                        .request("GET", "/tools/true", &[("Cookie", &cookie)], "")
                        .body,
                );
                while !stop.load(Ordering::Relaxed) && start.elapsed() < for_how_long {
                    client::run_and_wait(&mut conn, &cookie, &csrf);
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

/// The release `ftw serve`, on a manifest with one user and a trivial tool.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(dir: &Path) -> Server {
        let hash = ftw::password::hash(PASSWORD.as_bytes()).unwrap();
        let manifest = format!(
            "[auth.users]\n{USER} = \"{hash}\"\n\n[tools.true]\ncommand = [\"/bin/true\"]\n"
        );
        std::fs::write(dir.join("tools.toml"), manifest).unwrap();
        std::fs::write(dir.join("ftw.secret"), "ab".repeat(32)).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_ftw"))
            .args([
                "serve",
                "tools.toml",
                "--port",
                "0",
                "--secret-key-file",
                "ftw.secret",
                "--keep-runs",
                "100",
            ])
            .current_dir(dir)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ftw serve");
        use std::io::BufRead;
        let stdout = child.stdout.take().unwrap();
        let mut lines = std::io::BufReader::new(stdout).lines();
        let port = loop {
            let line = lines.next().expect("ftw printed its address").unwrap();
            if let Some(url) = line.strip_prefix("ftw: listening on ") {
                break url
                    .rsplit(':')
                    .next()
                    .unwrap()
                    .trim_end_matches('/')
                    .parse()
                    .unwrap();
            }
        };
        Server { child, port }
    }

    fn sign_in(&self) -> String {
        client::sign_in(&mut Conn::open(self.port), USER, PASSWORD)
            .expect("the bench user signs in")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
