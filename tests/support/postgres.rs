//! A throwaway PostgreSQL cluster (Debian's `postgresql`) in a temporary folder, on a
//! loopback port, with trust authentication for the user `ftw`: for the replica tests
//! of issue 14. PostgreSQL refuses to run as root, so as root (CI) the cluster belongs
//! to `nobody` and its programs run through `setpriv`. Stopped on drop.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::external;
use super::idp::free_port;

pub struct Postgres {
    child: Child,
    pub port: u16,
    /// `postgres://ftw@127.0.0.1:PORT/postgres`
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // SIGINT: "fast shutdown", so no server outlives the test.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGINT);
        }
        let _ = super::server::wait_at_most(&mut self.child, Duration::from_secs(10));
    }
}

/// The folder with `initdb` and `postgres`: `$FTW_PG_BIN`, else Debian's newest.
fn bin_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("FTW_PG_BIN") {
        return Some(dir.into());
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| Some(e.ok()?.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists() && bin.join("postgres").exists())
        .collect();
    found.sort();
    found.pop()
}

/// `program` run as `nobody` when this process is root.
fn as_cluster_owner(program: &Path) -> Command {
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
    /// A new cluster, running; `None` (after a visible SKIPPED line) when PostgreSQL is
    /// not installed.
    pub fn start() -> Option<Postgres> {
        let bin = bin_dir();
        if !external::available(
            "postgresql",
            bin.is_some(),
            "sudo apt-get install postgresql",
        ) {
            return None;
        }
        let bin = bin.unwrap();
        let dir = tempfile::tempdir().unwrap();
        if unsafe { libc::geteuid() } == 0 {
            let path = std::ffi::CString::new(dir.path().as_os_str().as_encoded_bytes()).unwrap();
            assert_eq!(unsafe { libc::chown(path.as_ptr(), 65534, 65534) }, 0);
        }
        let data = dir.path().join("data");
        let init = as_cluster_owner(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", "ftw", "-E", "UTF8", "--no-sync"])
            .stdout(Stdio::null())
            .output()
            .expect("run initdb");
        assert!(
            init.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&init.stderr)
        );
        let port = free_port();
        let child = as_cluster_owner(&bin.join("postgres"))
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-h", "127.0.0.1", "-F"])
            .arg("-k")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start postgres");
        let server = Postgres {
            child,
            port,
            url: format!("postgres://ftw@127.0.0.1:{port}/postgres"),
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !server.accepts() {
            assert!(Instant::now() < deadline, "PostgreSQL did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(server)
    }

    /// Whether the server takes connections (`pg_isready`, else a TCP connect).
    fn accepts(&self) -> bool {
        match Command::new("pg_isready")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .stdout(Stdio::null())
            .status()
        {
            Ok(status) => status.success(),
            Err(_) => TcpStream::connect(("127.0.0.1", self.port)).is_ok(),
        }
    }

    /// Runs SQL with `psql`; its output.
    pub fn psql(&self, sql: &str) -> String {
        let out = Command::new("psql")
            .arg(&self.url)
            .args(["-At", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}
