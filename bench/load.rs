//! Throughput and latency under load: raw argon2 against sign-ins over HTTP, pages
//! with the built-in client or wrk, a trivial tool end to end against spawning it
//! directly, and page latency while a login flood keeps the CPUs busy.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::client::{self, Conn};
use crate::server::{PASSWORD, Server, USER};

pub struct Latency {
    pub p50: Duration,
    pub p99: Duration,
    pub rate: f64,
}

pub fn percentiles(mut samples: Vec<Duration>, elapsed: Duration) -> Latency {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    Latency {
        p50: at(0.50),
        p99: at(0.99),
        rate: samples.len() as f64 / elapsed.as_secs_f64(),
    }
}

/// Verifications per second on `threads` threads, each reusing its working memory as
/// the server does: the floor for sign-ins.
pub fn argon2_rate(threads: usize, for_how_long: Duration) -> f64 {
    let hash = Arc::new(ftw::password::hash(PASSWORD.as_bytes()).unwrap());
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (hash, done) = (Arc::clone(&hash), Arc::clone(&done));
            std::thread::spawn(move || {
                let mut memory = Vec::new();
                while start.elapsed() < for_how_long {
                    assert!(ftw::password::verify_with_memory(
                        PASSWORD.as_bytes(),
                        &hash,
                        &mut memory
                    ));
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
pub fn login_rate(server: &Server, clients: usize, for_how_long: Duration) -> f64 {
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

pub fn page_rate(
    server: &Server,
    cookie: &str,
    path: &str,
    clients: usize,
    for_how_long: Duration,
) -> Latency {
    let start = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let (port, cookie, path) = (server.port, cookie.to_string(), path.to_string());
            std::thread::spawn(move || {
                let mut conn = Conn::open(port);
                let mut samples = Vec::new();
                while start.elapsed() < for_how_long {
                    let t = Instant::now();
                    let r = conn.request("GET", &path, &[("Cookie", &cookie)], "");
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

/// Form page latency from one client while `clients` others sign in as fast as they
/// can: (sign-ins per second, page latency).
pub fn page_during_login_flood(
    server: &Server,
    cookie: &str,
    clients: usize,
    for_how_long: Duration,
) -> (f64, Latency) {
    std::thread::scope(|scope| {
        let logins = scope.spawn(|| login_rate(server, clients, for_how_long));
        // Let the flood start before sampling.
        std::thread::sleep(Duration::from_millis(200));
        let pages = page_rate(
            server,
            cookie,
            "/tools/echo",
            1,
            for_how_long - Duration::from_millis(400),
        );
        (logins.join().unwrap(), pages)
    })
}

pub struct Wrk {
    pub rate: f64,
    pub p50: Duration,
    pub p99: Duration,
}

/// `wrk` against a signed-in page, if wrk is installed.
pub fn wrk(server: &Server, cookie: &str, path: &str, connections: usize) -> Option<Wrk> {
    let out = Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{connections}"),
            "-d5s",
            "--latency",
            "-H",
            &format!("Cookie: {cookie}"),
            &format!("http://127.0.0.1:{}{path}", server.port),
        ])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let non_2xx = text.contains("Non-2xx");
    assert!(!non_2xx, "wrk saw errors:\n{text}");
    let rate = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))?
        .trim()
        .parse()
        .ok()?;
    let percentile = |p: &str| {
        text.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(p))
            .and_then(|v| wrk_duration(v.trim()))
    };
    Some(Wrk {
        rate,
        p50: percentile("50%")?,
        p99: percentile("99%")?,
    })
}

/// "1.23ms", "456.00us", "1.02s"
fn wrk_duration(text: &str) -> Option<Duration> {
    let (number, unit) = text.split_at(text.find(|c: char| c.is_ascii_alphabetic())?);
    let n: f64 = number.parse().ok()?;
    let secs = match unit {
        "us" => n / 1e6,
        "ms" => n / 1e3,
        "s" => n,
        "m" => n * 60.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(secs))
}
