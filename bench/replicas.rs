//! Several replicas on one PostgreSQL (issue 14): a throwaway cluster (Debian's
//! `postgresql`, started here in a temporary folder), then 1, 2 and 3 release `ftw
//! serve` on it sharing one manifest and key, and, beside them, one ftw on SQLite. For
//! each: runs per second of the request a user makes (session cookie and CSRF token,
//! `POST /api/tools/echo/runs?wait=true`, default logging) from 8 clients spread over
//! the replicas as a load balancer would, and the form page's p99 from 4 clients.
//! Skipped (with a line saying so) when PostgreSQL is not installed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::client::{self, Conn};
use crate::load::Latency;
use crate::runs::load_with;
use crate::server::Server;

/// A PostgreSQL cluster in a temporary folder, stopped on drop.
struct Postgres {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // SIGINT: PostgreSQL's fast shutdown.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGINT);
        }
        let _ = self.child.wait();
    }
}

fn bin_dir() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| Some(e.ok()?.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    found.sort();
    found.pop()
}

/// `program`, as `nobody` when this is root (PostgreSQL refuses to run as root).
fn as_owner(program: &Path) -> Command {
    if unsafe { libc::geteuid() } == 0 {
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

impl Postgres {
    fn start() -> Option<Postgres> {
        let bin = bin_dir()?;
        let dir = tempfile::tempdir().unwrap();
        if unsafe { libc::geteuid() } == 0 {
            let path = std::ffi::CString::new(dir.path().as_os_str().as_encoded_bytes()).unwrap();
            assert_eq!(unsafe { libc::chown(path.as_ptr(), 65534, 65534) }, 0);
        }
        let data = dir.path().join("data");
        let init = as_owner(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", "ftw", "-E", "UTF8"])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(init.success(), "initdb failed");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // Durable commits, as a production database would run (fsync on).
        let child = as_owner(&bin.join("postgres"))
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-h", "127.0.0.1", "-k"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "PostgreSQL did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(Duration::from_millis(500));
        Some(Postgres {
            child,
            url: format!("postgres://ftw@127.0.0.1:{port}/postgres"),
            _dir: dir,
        })
    }
}

/// One setting measured: what it is, runs per second and the form page's latency, and
/// the CPU each run cost ftw (all replicas) and PostgreSQL (all its processes).
pub struct Measured {
    pub setup: String,
    pub runs: Latency,
    pub page: Latency,
    pub ftw_cpu_per_run: Duration,
    pub postgres_cpu_per_run: Duration,
}

/// CPU time of every `postgres` process on the machine (the cluster's backends).
fn postgres_cpu() -> Duration {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Duration::ZERO;
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|stat| stat.contains("(postgres)"))
        .map(|stat| crate::server::own_cpu(&stat))
        .sum()
}

/// SQLite with one ftw, then PostgreSQL with 1, 2 and 3 replicas.
pub fn measure(span: Duration) -> Option<Vec<Measured>> {
    let Some(pg) = Postgres::start() else {
        eprintln!("  replicas: SKIPPED (PostgreSQL is not installed: apt-get install postgresql)");
        return None;
    };
    let mut results = vec![run_setup("SQLite, 1 ftw", 1, None, span)];
    for n in 1..=3 {
        let setup = format!("PostgreSQL, {n} replica{}", if n > 1 { "s" } else { "" });
        results.push(run_setup(&setup, n, Some(&pg.url), span));
    }
    Some(results)
}

fn run_setup(setup: &str, replicas: usize, database: Option<&str>, span: Duration) -> Measured {
    let dir = tempfile::tempdir().unwrap();
    let token = Server::write_manifest(dir.path(), "");
    let servers: Vec<Server> = (0..replicas)
        .map(|i| {
            let state = dir.path().join(format!("state{i}"));
            let log = format!("ftw{i}.log");
            let args: Vec<&str> = match database {
                Some(url) => vec!["--database", url],
                None => Vec::new(),
            };
            Server::spawn(dir.path(), &state, 100, &token, &log, &args).0
        })
        .collect();
    // One sign-in; the cookie is good on every replica (one key, one manifest).
    let cookie = servers[0].sign_in();
    let ports: Vec<u16> = servers.iter().map(|s| s.port).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let ftw_cpu = || servers.iter().map(Server::cpu).sum::<Duration>();
    let (ftw_before, postgres_before) = (ftw_cpu(), postgres_cpu());
    let pick = || ports[next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % ports.len()];
    let runs = load_with(8, span, || {
        let mut conn = Conn::open(pick());
        let csrf = client::csrf(&mut conn, &cookie);
        let cookie = cookie.clone();
        move || {
            let auth = [("Cookie", cookie.as_str()), ("X-CSRF-Token", csrf.as_str())];
            client::api_run_and_wait(&mut conn, &auth);
        }
    });
    let runs_done = (runs.rate * span.as_secs_f64()).max(1.0);
    let ftw_cpu_per_run = (ftw_cpu() - ftw_before).div_f64(runs_done);
    let postgres_cpu_per_run = (postgres_cpu() - postgres_before).div_f64(runs_done);
    let page = load_with(4, span, || {
        let mut conn = Conn::open(pick());
        let cookie = cookie.clone();
        move || {
            let r = conn.request("GET", "/tools/echo", &[("Cookie", &cookie)], "");
            assert_eq!(r.status, 200);
        }
    });
    eprintln!(
        "  {setup}: {:.0} runs per s, form page p99 {:.2} ms",
        runs.rate,
        page.p99.as_secs_f64() * 1000.0
    );
    Measured {
        setup: setup.to_string(),
        runs,
        page,
        ftw_cpu_per_run,
        postgres_cpu_per_run,
    }
}
