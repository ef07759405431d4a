//! The release `ftw serve` for the benchmark: a throwaway manifest with one user and the
//! tools the measurements need, its address read from stdout, and its memory read from
//! `/proc` (resident set size, in KiB).

use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::client::{self, Conn};

pub const USER: &str = "bench";
pub const PASSWORD: &str = "correct horse battery staple";

/// Bytes the `flood` tool writes.
pub const FLOOD_BYTES: u64 = 1_000_000_000;

pub struct Server {
    child: Child,
    pub port: u16,
    /// An API token for the bench user.
    pub token: String,
}

impl Server {
    /// ftw on a fresh manifest in `dir`, its state in `dir/state`.
    pub fn start(dir: &Path) -> Server {
        Server::launch(dir, &dir.join("state"), "", 100).0
    }

    /// ftw on a fresh manifest in `dir` (with `extra` TOML appended), its state in
    /// `state`; also how long it took from the spawn to its `listening on` line.
    /// `FTW_BENCH_BIN` names another ftw binary to measure (an older build, say).
    pub fn launch(
        dir: &Path,
        state: &Path,
        extra: &str,
        keep_runs: u64,
    ) -> (Server, std::time::Duration) {
        let token = Server::write_manifest(dir, extra);
        Server::spawn(dir, state, keep_runs, &token, "ftw.log", &[])
    }

    /// Writes the manifest (with `extra` TOML appended) and the signing key into `dir`;
    /// returns the API token it names. Replicas share one folder's manifest and key.
    pub fn write_manifest(dir: &Path, extra: &str) -> String {
        let hash = ftw::password::hash(PASSWORD.as_bytes()).unwrap();
        let (token, token_hash) = ftw::auth::tokens::generate();
        let token_hash = ftw::auth::tokens::manifest_form(&token_hash);
        let manifest = format!(
            r#"[auth.users]
{USER} = "{hash}"

[auth.tokens.bench]
hash = "{token_hash}"
user = "{USER}"

# The trivial tool of every run measure.
[tools.echo]
command = ["/bin/echo", "x"]

# One line every 100 ms for a minute: the run 1,000 live pages watch.
[tools.ticker]
command = ["/bin/sh", "-c", "i=0; while [ $i -lt 600 ]; do echo \"tick $i\"; i=$((i+1)); sleep 0.1; done"]

# 1 GB of text as fast as the pipe takes it.
[tools.flood]
command = ["/bin/sh", "-c", "yes 'the quick brown fox jumps over the lazy dog 0123456789' | head -c {FLOOD_BYTES}"]
max_output = "1100MB"

{extra}
"#
        );
        std::fs::write(dir.join("tools.toml"), manifest).unwrap();
        std::fs::write(dir.join("ftw.secret"), "ab".repeat(32)).unwrap();
        token
    }

    /// `ftw serve` on the manifest in `dir`, its state in `state`, its log in `dir/log`,
    /// with `args` added (`--database URL`, say).
    pub fn spawn(
        dir: &Path,
        state: &Path,
        keep_runs: u64,
        token: &str,
        log: &str,
        args: &[&str],
    ) -> (Server, std::time::Duration) {
        let binary =
            std::env::var_os("FTW_BENCH_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_ftw").into());
        let started = std::time::Instant::now();
        let mut child = Command::new(binary)
            .args([
                "serve",
                "tools.toml",
                "--port",
                "0",
                "--secret-key-file",
                "ftw.secret",
                "--keep-runs",
                &keep_runs.to_string(),
            ])
            .args(args)
            .current_dir(dir)
            // By the environment, which an older ftw without a state folder ignores.
            .env("FTW_STATE_DIR", state)
            // Every benchmark client comes from 127.0.0.1 as one user: lift the
            // per-client and per-user caps (older builds ignore these variables).
            .env("FTW_MAX_CONNECTIONS_PER_CLIENT", "4096")
            .env("FTW_MAX_STREAMS_PER_USER", "4096")
            // Default logging: the audit records go to the log (stderr), here a file,
            // as journald would keep them.
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.join(log)).expect("the log file"))
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
        let token = token.to_string();
        (Server { child, port, token }, started.elapsed())
    }

    pub fn sign_in(&self) -> String {
        client::sign_in(&mut Conn::open(self.port), USER, PASSWORD)
            .expect("the bench user signs in")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU time ftw itself has used (user and system, not its tools').
    pub fn cpu(&self) -> std::time::Duration {
        own_cpu(&std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap_or_default())
    }

    /// Resident set size now, in KiB.
    pub fn rss_kib(&self) -> u64 {
        status_kib(self.pid(), "VmRSS:")
    }

    /// The anonymous part of it (heap, stacks: memory only this process holds), in KiB;
    /// the rest is pages of the executable and libraries, shared and reclaimable.
    pub fn anon_kib(&self) -> u64 {
        status_kib(self.pid(), "RssAnon:")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A memory line of `/proc/PID/status` (`VmRSS:`, `RssAnon:`), in KiB.
pub fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// utime + stime of a `/proc/PID/stat` line (fields 14 and 15, after the name in
/// parentheses), at 100 ticks per second.
pub fn own_cpu(stat: &str) -> std::time::Duration {
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<u64> = after_name
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let ticks = fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0);
    std::time::Duration::from_millis(ticks * 10)
}

/// KiB as MB with one decimal.
pub fn mb(kib: u64) -> String {
    format!("{:.1} MB", kib as f64 * 1024.0 / 1e6)
}
