//! A long history: a state folder filled with a million finished runs (through the
//! store ftw itself uses), then ftw started on it. Measures how long it takes to start,
//! the database's size per run, and the latency of the history a user asks for: the
//! `/runs` page with the session cookie, and `GET /api/runs` with a token, unfiltered,
//! filtered and deep in the past.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ftw::runs::{RunArg, Status};
use ftw::store::{FinishedRun, RunRecord, Sqlite, Store};

use crate::client::Conn;
use crate::load::{Latency, percentiles};
use crate::server::{Server, USER};

const TOOLS: [&str; 4] = ["echo", "ticker", "flood", "echo"];

pub struct History {
    pub runs: u64,
    pub fill: Duration,
    pub startup: Duration,
    pub database_bytes: u64,
    /// (what was asked, latency), one client each.
    pub requests: Vec<(String, Latency)>,
}

/// Fills a state folder with `runs` finished runs, starts ftw on it, and measures.
pub fn measure(dir: &Path, runs: u64) -> History {
    let state = dir.join("state");
    let fill = fill(&state, runs);
    let database_bytes = ["ftw.db", "ftw.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(state.join(f)).ok())
        .map(|m| m.len())
        .sum();
    let extra = format!("[auth]\nadmins = [\"{USER}\"]\n");
    let (server, startup) = Server::launch(dir, &state, &extra, runs + 1000);
    let cookie = server.sign_in();
    let token = format!("Bearer {}", server.token);
    let asks: Vec<(String, String, &str)> = vec![
        ("/runs page, newest 50".into(), "/runs".into(), "cookie"),
        (
            "GET /api/runs, newest 50".into(),
            "/api/runs".into(),
            "token",
        ),
        (
            "GET /api/runs?status=failed (1 run in 100)".into(),
            "/api/runs?status=failed".into(),
            "token",
        ),
        (
            "GET /api/runs?user=user7 (1 run in 10)".into(),
            "/api/runs?user=user7".into(),
            "token",
        ),
        (
            "/runs?tool=ticker&before=1000 (the oldest pages)".into(),
            "/runs?tool=ticker&before=1000".into(),
            "cookie",
        ),
    ];
    let requests = asks
        .into_iter()
        .map(|(what, path, how)| {
            let header = if how == "cookie" {
                ("Cookie", cookie.as_str())
            } else {
                ("Authorization", token.as_str())
            };
            (
                what,
                latency(server.port, &path, header, Duration::from_secs(3)),
            )
        })
        .collect();
    History {
        runs,
        fill,
        startup,
        database_bytes,
        requests,
    }
}

/// Writes `runs` finished runs of ten users over four tools, a few arguments each,
/// through ftw's own store.
fn fill(state: &Path, runs: u64) -> Duration {
    std::fs::create_dir_all(state).unwrap();
    let began = Instant::now();
    let store: Arc<dyn Store> = Arc::new(Sqlite::open(state).expect("the state database"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let start = SystemTime::now() - Duration::from_secs(runs);
    runtime.block_on(async {
        let mut last = None;
        for i in 0..runs {
            let id = ftw::runs::new_id();
            let created = start + Duration::from_secs(i);
            let status = if i % 100 == 7 {
                Status::Failed(1)
            } else {
                Status::Succeeded
            };
            let user = if i % 10 == 0 {
                USER.to_string()
            } else {
                format!("user{}", i % 10)
            };
            let args = vec![RunArg {
                name: "target".into(),
                label: "Target".into(),
                shown: format!("host-{}", i % 50),
                again: Some(ftw::manifest::Value::One(format!("host-{}", i % 50))),
            }];
            let record = RunRecord::queued(
                id.clone(),
                TOOLS[(i % 4) as usize].into(),
                "A tool".into(),
                user,
                "session".into(),
                args,
                created,
            );
            drop(store.insert_run(&record));
            last = Some(store.finish_run(FinishedRun {
                id,
                status,
                ended: created + Duration::from_millis(900),
                duration: Some(Duration::from_millis(850)),
                output_len: 32,
                dropped: 0,
                cut: None,
                in_file: false,
                output: Some(b"a line of output, 32 bytes long\n".to_vec()),
                stderr: Vec::new(),
                files: Vec::new(),
                disk_bytes: 0,
            }));
            if i % 10_000 == 9_999 {
                // Let the writer catch up now and then, so the queue stays small.
                last.take().unwrap().await.expect("stored");
            }
        }
        if let Some(last) = last {
            last.await.expect("stored");
        }
    });
    drop(store);
    began.elapsed()
}

/// One client asking for `path` again and again for `for_how_long`.
fn latency(port: u16, path: &str, auth: (&str, &str), for_how_long: Duration) -> Latency {
    let mut conn = Conn::open(port);
    let mut samples = Vec::new();
    let start = Instant::now();
    while start.elapsed() < for_how_long {
        let t = Instant::now();
        let r = conn.request("GET", path, &[auth], "");
        assert_eq!(r.status, 200, "{path}");
        samples.push(t.elapsed());
    }
    percentiles(samples, start.elapsed())
}
