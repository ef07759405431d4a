//! A small builder that runs the real `ftw` binary in a fresh temporary folder, in the
//! spirit of just's `Test::new().justfile(..).args(..).run()`.

#![allow(dead_code)]

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub mod app;
pub mod external;
pub mod github;
pub mod idp;
pub mod postgres;
pub mod pty;
pub mod server;
pub mod slapd;
pub mod sse;

pub const BIN: &str = env!("CARGO_BIN_EXE_ftw");

/// A hash of "hunter2-but-longer" made by `ftw hash-password`.
pub const HASH_A: &str = "$argon2id$v=19$m=19456,t=2,p=1$/EEJBnVpsWX2afpbVTTbng$bj8F1ehnwR3iaG9m0RIchDoiddTOHVQeUyE7oKWO+dI";
/// A hash of "second".
pub const HASH_B: &str = "$argon2id$v=19$m=19456,t=2,p=1$4FtNCFZtpz/VOTLpg+O2rw$+CsIbK6YLi3R8ozZPT/apHMpDBGllMWIIo0rK+fzLww";

pub struct Test {
    pub dir: tempfile::TempDir,
    args: Vec<String>,
    stdin: Option<Vec<u8>>,
    env: Vec<(String, String)>,
    /// Variables the command must not see (set by the test runner or by default).
    unset: Vec<String>,
    /// A program that runs ftw (its path and arguments are appended).
    wrapper: Vec<String>,
    fd_limit: Option<u64>,
}

pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub dir: tempfile::TempDir,
}

impl Test {
    pub fn new() -> Self {
        Test {
            dir: tempfile::tempdir().expect("temp dir"),
            args: Vec::new(),
            stdin: None,
            env: Vec::new(),
            unset: Vec::new(),
            wrapper: Vec::new(),
            fd_limit: None,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file relative to the test folder (parents created).
    pub fn file(self, name: &str, contents: &str) -> Self {
        let path = self.dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, contents).unwrap();
        self
    }

    /// Writes an executable file.
    pub fn exec(self, name: &str, contents: &str) -> Self {
        let t = self.file(name, contents);
        let path = t.dir.path().join(name);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        t
    }

    /// `tools.toml` in the test folder.
    pub fn manifest(self, contents: &str) -> Self {
        self.file("tools.toml", contents)
    }

    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|s| s.to_string()));
        self
    }

    pub fn stdin(mut self, input: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(input.into());
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Runs ftw without this environment variable.
    pub fn without_env(mut self, key: &str) -> Self {
        self.unset.push(key.into());
        self
    }

    /// Runs ftw through another program: `wrapper... ftw ARGS`.
    pub fn wrapped_in(mut self, wrapper: &[&str]) -> Self {
        self.wrapper = wrapper.iter().map(|s| s.to_string()).collect();
        self
    }

    /// Starts ftw with this soft limit on open files (as a default systemd unit would).
    pub fn soft_fd_limit(mut self, limit: u64) -> Self {
        self.fd_limit = Some(limit);
        self
    }

    pub fn command(&self) -> Command {
        let mut cmd = match self.wrapper.split_first() {
            Some((program, args)) => {
                let mut cmd = Command::new(program);
                cmd.args(args).arg(BIN);
                cmd
            }
            None => Command::new(BIN),
        };
        cmd.args(&self.args)
            .current_dir(self.dir.path())
            .env_remove("FTW_SECRET_KEY")
            .env_remove("RUST_LOG")
            // Each test's state (database, runs) in its own folder, never the user's.
            .env("FTW_STATE_DIR", self.dir.path().join("state"));
        for key in &self.unset {
            cmd.env_remove(key);
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        if let Some(limit) = self.fd_limit {
            use std::os::unix::process::CommandExt;
            // SAFETY: only async-signal-safe calls between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    let mut l = libc::rlimit {
                        rlim_cur: 0,
                        rlim_max: 0,
                    };
                    libc::getrlimit(libc::RLIMIT_NOFILE, &mut l);
                    l.rlim_cur = limit;
                    libc::setrlimit(libc::RLIMIT_NOFILE, &l);
                    Ok(())
                });
            }
        }
        cmd
    }

    pub fn run(self) -> Outcome {
        let mut child = self
            .command()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ftw");
        let mut stdin = child.stdin.take().unwrap();
        if let Some(input) = &self.stdin {
            // The child may exit before reading it all (a refused flag): not our failure.
            let _ = stdin.write_all(input);
        }
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        Outcome {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            dir: self.dir,
        }
    }
}

impl Outcome {
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    #[track_caller]
    pub fn code(&self, expected: i32) -> &Self {
        assert_eq!(
            self.code, expected,
            "exit code\n--- stdout:\n{}\n--- stderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub fn success(&self) -> &Self {
        self.code(0)
    }

    #[track_caller]
    pub fn stdout_is(&self, expected: &str) -> &Self {
        assert_eq!(
            self.stdout, expected,
            "stdout (stderr was:\n{})",
            self.stderr
        );
        self
    }

    #[track_caller]
    pub fn stderr_is(&self, expected: &str) -> &Self {
        assert_eq!(self.stderr, expected, "stderr");
        self
    }

    #[track_caller]
    pub fn stderr_has(&self, part: &str) -> &Self {
        assert!(
            self.stderr.contains(part),
            "stderr lacks {part:?}:\n{}",
            self.stderr
        );
        self
    }

    #[track_caller]
    pub fn stdout_has(&self, part: &str) -> &Self {
        assert!(
            self.stdout.contains(part),
            "stdout lacks {part:?}:\n{}",
            self.stdout
        );
        self
    }
}

/// Removes the common leading indentation and the first newline, so expected outputs can
/// be written as indented raw strings.
pub fn unindent(text: &str) -> String {
    let text = text.strip_prefix('\n').unwrap_or(text);
    let indent = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    let mut out: String = text
        .lines()
        .map(|l| l.get(indent..).unwrap_or("").trim_end())
        .collect::<Vec<_>>()
        .join("\n");
    if text.ends_with('\n') {
        out.push('\n');
    }
    out
}

/// Polls `check` every 20 ms for at most 30 s.
/// Whether a process is gone (or a zombie nobody reaped yet: it runs nothing).
pub fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

pub fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !check() {
        assert!(
            std::time::Instant::now() < deadline,
            "not within 30 s: {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
