//! Live output under load: a thousand browsers watching one run, and one browser
//! watching a tool that prints a gigabyte. Each client reads the run page's event
//! stream (`/runs/ID/events`, the HTML one a browser gets) over its own connection.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use crate::client::{self, Conn};
use crate::server::{FLOOD_BYTES, Server};

pub struct Crowd {
    pub clients: usize,
    /// Clients that got their snapshot and then at least one live `output` event.
    pub live: usize,
    pub rss_before_kib: u64,
    pub rss_with_clients_kib: u64,
}

/// Opens `clients` event streams on one `ticker` run and measures the server's memory
/// once all of them receive live output.
pub fn crowd(server: &Server, cookie: &str, clients: usize) -> Crowd {
    let mut conn = Conn::open(server.port);
    let csrf = client::csrf(&mut conn, cookie);
    let run = client::start(&mut conn, cookie, &csrf, "ticker");
    std::thread::sleep(Duration::from_millis(300));
    let rss_before_kib = server.rss_kib();

    let connected = Arc::new(Barrier::new(clients + 1));
    let live = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let (port, cookie, run) = (server.port, cookie.to_string(), run.clone());
            let (connected, live, stop) =
                (Arc::clone(&connected), Arc::clone(&live), Arc::clone(&stop));
            std::thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn(move || {
                    let mut conn = Conn::open(port);
                    conn.send("GET", &format!("{run}/events"), &[("Cookie", &cookie)], "")
                        .unwrap();
                    let head = conn.read_head().expect("an event stream");
                    assert_eq!(head.status, 200);
                    connected.wait();
                    let mut counted = false;
                    while let Some(Some(chunk)) = conn.next_chunk() {
                        if !counted && chunk.windows(12).any(|w| w == b"event:output") {
                            live.fetch_add(1, Ordering::Relaxed);
                            counted = true;
                        }
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                    }
                })
                .unwrap()
        })
        .collect();
    connected.wait();
    // Every client is connected; give the ticker a second to reach all of them.
    let deadline = Instant::now() + Duration::from_secs(10);
    while live.load(Ordering::Relaxed) < clients && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let rss_with_clients_kib = server.rss_kib();
    stop.store(true, Ordering::Relaxed);
    let r = conn.request(
        "POST",
        &format!("{run}/cancel"),
        &[("Cookie", cookie)],
        &format!("_csrf={csrf}"),
    );
    assert_eq!(r.status, 303);
    for w in workers {
        let _ = w.join();
    }
    Crowd {
        clients,
        live: live.load(Ordering::Relaxed),
        rss_before_kib,
        rss_with_clients_kib,
    }
}

pub struct Flood {
    pub bytes: u64,
    pub elapsed: Duration,
    /// Bytes of event stream the client received (escaped HTML and SSE framing).
    pub received: u64,
    pub rss_before_kib: u64,
    pub rss_peak_kib: u64,
}

/// Runs the `flood` tool with one live client reading its page's event stream from the
/// start, and samples the server's memory while it runs.
pub fn flood(server: &Server, cookie: &str) -> Flood {
    let mut conn = Conn::open(server.port);
    let csrf = client::csrf(&mut conn, cookie);
    let rss_before_kib = server.rss_kib();
    let peak = Arc::new(AtomicU64::new(rss_before_kib));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (Arc::clone(&peak), Arc::clone(&done));
        let pid = server.pid();
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(crate::server::status_kib(pid, "VmRSS:"), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let start = Instant::now();
    let run = client::start(&mut conn, cookie, &csrf, "flood");
    conn.send("GET", &format!("{run}/events"), &[("Cookie", cookie)], "")
        .unwrap();
    let head = conn.read_head().expect("an event stream");
    assert_eq!(head.status, 200);
    let mut received = 0u64;
    let mut tail = Vec::new();
    while let Some(Some(chunk)) = conn.next_chunk() {
        received += chunk.len() as u64;
        tail = chunk;
    }
    let elapsed = start.elapsed();
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let end = String::from_utf8_lossy(&tail);
    assert!(end.contains("\"exit_code\":0"), "the flood ended: {end}");
    Flood {
        bytes: FLOOD_BYTES,
        elapsed,
        received,
        rss_before_kib,
        rss_peak_kib: peak.load(Ordering::Relaxed),
    }
}
