//! The run path against its floor: `/bin/echo x` spawned directly from Rust with its
//! output captured (what any program that runs a tool pays), and the same tool through
//! ftw the way a user calls it: a session cookie and its CSRF token on
//! `POST /api/tools/echo/runs?wait=true` (one request from start to exit code, the
//! audit records going to the log), beside a bearer token and the form (POST, then the
//! event stream). Latency at 1 client, runs per second at 8, and the CPU ftw itself
//! spends per run.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::client::{self, Conn};
use crate::load::{Latency, percentiles};
use crate::server::Server;

/// How a benchmark client proves who it is.
#[derive(Clone)]
pub enum Caller {
    /// The browser's way: the session cookie, and the CSRF token in `X-CSRF-Token`.
    Session(String),
    /// A script's way: `Authorization: Bearer`.
    Token(String),
}

/// A run load: per-run latency and rate, and ftw's own CPU per run.
pub struct Measured {
    pub latency: Latency,
    pub cpu_per_run: Duration,
}

/// `/bin/echo x` from `threads` threads, each spawning and waiting in a loop with the
/// output captured on pipes: the floor of a run.
pub fn floor(threads: usize, for_how_long: Duration) -> Latency {
    load(threads, for_how_long, || {
        let out = Command::new("/bin/echo").arg("x").output().unwrap();
        assert!(out.status.success() && out.stdout == b"x\n");
    })
}

/// The trivial tool through the API, `?wait=true`, from `clients` clients.
pub fn api(server: &Server, caller: &Caller, clients: usize, for_how_long: Duration) -> Measured {
    let port = server.port;
    let before = server.cpu();
    let latency = load_with(clients, for_how_long, || {
        let mut conn = Conn::open(port);
        let headers: Vec<(String, String)> = match caller {
            Caller::Session(cookie) => {
                let csrf = client::csrf(&mut conn, cookie);
                vec![
                    ("Cookie".into(), cookie.clone()),
                    ("X-CSRF-Token".into(), csrf),
                ]
            }
            Caller::Token(token) => vec![("Authorization".into(), format!("Bearer {token}"))],
        };
        move || {
            let auth: Vec<(&str, &str)> = headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            client::api_run_and_wait(&mut conn, &auth);
        }
    });
    Measured {
        cpu_per_run: per_run(server.cpu() - before, &latency, for_how_long),
        latency,
    }
}

/// The trivial tool through the form: POST, then the event stream to the exit code.
pub fn form(server: &Server, cookie: &str, clients: usize, for_how_long: Duration) -> Latency {
    let port = server.port;
    load_with(clients, for_how_long, || {
        let mut conn = Conn::open(port);
        let csrf = client::csrf(&mut conn, cookie);
        let cookie = cookie.to_string();
        move || client::run_and_wait(&mut conn, &cookie, &csrf)
    })
}

fn per_run(cpu: Duration, latency: &Latency, elapsed: Duration) -> Duration {
    let runs = (latency.rate * elapsed.as_secs_f64()).max(1.0);
    cpu.div_f64(runs)
}

/// `step` in a loop on `threads` threads for `for_how_long`.
fn load(
    threads: usize,
    for_how_long: Duration,
    step: impl Fn() + Send + Sync + Copy + 'static,
) -> Latency {
    load_with(threads, for_how_long, move || step)
}

/// Like `load`, with a per-thread set-up that returns the step (a connection, say).
pub fn load_with<S, F>(threads: usize, for_how_long: Duration, setup: S) -> Latency
where
    S: Fn() -> F + Sync,
    F: FnMut() + Send,
{
    let stop = Arc::new(AtomicBool::new(false));
    let samples = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let mut step = setup();
                let stop = Arc::clone(&stop);
                scope.spawn(move || {
                    let mut samples = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let t = Instant::now();
                        step();
                        samples.push(t.elapsed());
                    }
                    samples
                })
            })
            .collect();
        std::thread::sleep(for_how_long);
        stop.store(true, Ordering::Relaxed);
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect::<Vec<_>>()
    });
    percentiles(samples, for_how_long)
}
