//! Running a tool, exactly by manifest.md's argv rules and never through a shell.
//!
//! `Plan::new` turns checked values into the argv (one element per value, one per chosen
//! option of a lone multiselect placeholder, elements with missing values dropped) and a
//! scrubbed environment (`PATH`, `HOME`, `LANG`, the tool's `env`, `FTW_*`; nothing else
//! of the server's). `execute` spawns the program in a process group of its own with
//! stdout and stderr on one pipe, so output keeps its order; it stops the whole group on
//! timeout or cancel (SIGTERM, a grace period, SIGKILL), and when the program ends it
//! does not leave stray background children behind.

use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::process::Stdio;
use std::time::{Duration, Instant};

use indexmap::IndexMap;
use tokio::io::AsyncReadExt;
use tokio::sync::watch;

use crate::manifest::template::Template;
use crate::manifest::{Kind, Tool, Value};

/// Between SIGTERM and SIGKILL when a run is stopped.
pub const KILL_GRACE: Duration = Duration::from_secs(5);
/// How long output may keep coming after the program itself exited (from children that
/// still hold the pipe) before the rest of its group is killed.
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(1);

/// What will be run, fully decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub workdir: PathBuf,
    pub timeout: Duration,
    /// stderr on a pipe of its own (tinted), not on stdout's.
    pub separate_stderr: bool,
}

/// Facts about the run that reach the child as `FTW_*` variables.
pub struct RunInfo<'a> {
    pub id: &'a str,
    pub output_dir: &'a Path,
    /// The name each upload had on the client, by argument (for `FTW_ARG_<NAME>_FILENAME`).
    pub file_names: &'a IndexMap<String, String>,
}

impl Plan {
    /// The argv and environment for `tool` with checked `values` (by argument name;
    /// a file's value is the path of its stored copy).
    pub fn new(tool: &Tool, values: &IndexMap<String, Value>, run: &RunInfo) -> Plan {
        let args = argv(tool, &tool.args_template, values);
        let mut env = base_env();
        env.extend(tool.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        for arg in &tool.args {
            let Some(value) = values.get(&arg.name).filter(|v| **v != Value::Absent) else {
                continue;
            };
            let upper = arg.name.to_ascii_uppercase();
            env.push((format!("FTW_ARG_{upper}"), value.texts().join("\n")));
            if let Some(name) = run.file_names.get(&arg.name) {
                env.push((format!("FTW_ARG_{upper}_FILENAME"), name.clone()));
            }
        }
        env.push((
            "FTW_OUTPUT_DIR".into(),
            run.output_dir.display().to_string(),
        ));
        env.push(("FTW_RUN_ID".into(), run.id.into()));
        env.push(("FTW_TOOL".into(), tool.id.clone()));
        Plan {
            program: tool.program.clone(),
            args,
            env,
            workdir: tool.workdir.clone(),
            timeout: tool.timeout,
            separate_stderr: tool.stderr == crate::manifest::StderrMode::Separate,
        }
    }
}

/// `templates` (a command's elements after the program) filled in with `tool`'s checked
/// `values`: one element per value, one per chosen option of a lone multiselect
/// placeholder, a checkbox's flag or nothing, elements with missing values dropped.
pub fn argv(tool: &Tool, templates: &[Template], values: &IndexMap<String, Value>) -> Vec<String> {
    let fill = |name: &str| -> Vec<&str> {
        match (tool.arg(name).map(|a| &a.kind), values.get(name)) {
            // A checkbox with a flag is the flag, or nothing.
            (Some(Kind::Bool { flag: Some(flag) }), Some(Value::Bool(on))) => {
                if *on {
                    vec![flag.as_str()]
                } else {
                    Vec::new()
                }
            }
            (Some(_), Some(value)) => value.texts(),
            _ => Vec::new(),
        }
    };
    let mut args = Vec::new();
    for template in templates {
        template.expand(fill, &mut args);
    }
    args
}

/// The little of the server's environment a tool gets.
pub fn base_env() -> Vec<(String, String)> {
    let mut env = vec![(
        "PATH".to_string(),
        std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into()),
    )];
    if let Ok(home) = std::env::var("HOME") {
        env.push(("HOME".into(), home));
    }
    env.push((
        "LANG".into(),
        std::env::var("LANG").unwrap_or_else(|_| "C.UTF-8".into()),
    ));
    env
}

/// How a program that ran came to its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this code.
    Code(i32),
    /// A signal ended it.
    Signal(i32),
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The program ended on its own.
    Exited(Exit),
    /// It ran past its timeout and was stopped; how it ended then.
    TimedOut(Exit),
    /// Someone cancelled it; how it ended then.
    Cancelled(Exit),
    /// ftw shut down while it ran; how it ended then.
    ShutDown(Exit),
    /// It never started (program missing, not executable, arguments too long, ...).
    NotStarted(String),
}

/// A request to stop a run early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    Running,
    /// SIGTERM, then SIGKILL after the grace period.
    Cancel,
    /// ftw is shutting down: SIGTERM now; `Kill` follows after the shutdown grace.
    Shutdown,
    /// SIGKILL now (shutdown after its grace period).
    Kill,
}

/// Which pipe a chunk of output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Where a run's output goes, chunk by chunk, in the order ftw read it. Each stream
/// keeps its own order exactly; between the two, chunks are in the order they reached
/// ftw (the program's own writes to two pipes carry no common clock).
pub trait OutputSink: Send + Sync {
    fn push(&self, stream: Stream, bytes: &[u8]);

    /// The program started as process (and process group) `pid`. What this returns is
    /// awaited before the run's output is read (recording the process group, so a
    /// crash of ftw right after cannot leave it behind unknown).
    fn started(&self, _pid: u32) -> Option<Started> {
        None
    }
}

/// Work to finish once the program has started (see `OutputSink::started`).
pub type Started = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

/// Runs `plan` to its end; `stop` can cancel it. Returns how it ended.
pub async fn execute(
    plan: &Plan,
    sink: &dyn OutputSink,
    mut stop: watch::Receiver<Stop>,
) -> Ending {
    let (mut stdout, mut stderr, mut child) = match spawn(plan) {
        Ok(spawned) => spawned,
        Err(e) => return Ending::NotStarted(spawn_error(plan, &e)),
    };
    let pgid = child.id().map(|id| id as i32);
    if let Some(recorded) = child.id().and_then(|pid| sink.started(pid)) {
        recorded.await;
    }
    // A stop requested before the program started is acted on at once.
    if *stop.borrow() != Stop::Running {
        stop.mark_changed();
    }
    let signal_group = |signal: i32| {
        if let Some(pgid) = pgid {
            // SAFETY: killpg only sends a signal; a stale group id is answered with ESRCH.
            unsafe {
                libc::killpg(pgid, signal);
            }
        }
    };
    let mut out_buf = vec![0u8; 32 * 1024];
    let mut err_buf = vec![0u8; 32 * 1024];
    let (mut out_open, mut err_open) = (true, stderr.is_some());
    let deadline = tokio::time::sleep(plan.timeout);
    tokio::pin!(deadline);
    let kill_at = tokio::time::sleep(KILL_GRACE);
    tokio::pin!(kill_at);
    let mut kill_armed = false;
    let mut stop_open = true;
    let mut stopped: Option<fn(Exit) -> Ending> = None;
    let mut exit: Option<std::process::ExitStatus> = None;
    let mut drain_until: Option<Instant> = None;
    let mut drain_killed = false;

    while out_open || err_open || exit.is_none() {
        let eof = !out_open && !err_open;
        tokio::select! {
            read = stdout.read(&mut out_buf), if out_open => match read {
                Ok(0) | Err(_) => out_open = false,
                Ok(n) => sink.push(Stream::Stdout, &out_buf[..n]),
            },
            read = read_some(stderr.as_mut(), &mut err_buf), if err_open => match read {
                Ok(0) | Err(_) => err_open = false,
                Ok(n) => sink.push(Stream::Stderr, &err_buf[..n]),
            },
            status = child.wait(), if exit.is_none() => {
                exit = Some(status.unwrap_or_else(|_| ExitStatus::from_raw(0)));
                drain_until = Some(Instant::now() + DRAIN_AFTER_EXIT);
            },
            () = &mut deadline, if stopped.is_none() => {
                stopped = Some(Ending::TimedOut);
                signal_group(libc::SIGTERM);
                kill_at.as_mut().reset(tokio::time::Instant::now() + KILL_GRACE);
                kill_armed = true;
            },
            changed = stop.changed(), if stop_open => {
                stop_open = changed.is_ok();
                let request = if stop_open { *stop.borrow() } else { Stop::Running };
                match request {
                    Stop::Running => {}
                    Stop::Cancel => {
                        if stopped.is_none() {
                            stopped = Some(Ending::Cancelled);
                            signal_group(libc::SIGTERM);
                            kill_at.as_mut().reset(tokio::time::Instant::now() + KILL_GRACE);
                            kill_armed = true;
                        }
                    }
                    Stop::Shutdown => {
                        stopped.get_or_insert(Ending::ShutDown);
                        signal_group(libc::SIGTERM);
                    }
                    Stop::Kill => {
                        stopped.get_or_insert(Ending::ShutDown);
                        signal_group(libc::SIGKILL);
                        stop_open = false;
                    }
                }
            },
            () = &mut kill_at, if kill_armed => {
                signal_group(libc::SIGKILL);
                kill_at.as_mut().reset(tokio::time::Instant::now() + KILL_GRACE);
            },
            () = sleep_until_opt(drain_until), if drain_until.is_some() && !eof => {
                if drain_killed {
                    // Still open after the group was killed: a descendant left the group
                    // (setsid) and holds the pipe. The run is over; stop reading.
                    tracing::warn!(
                        program = %plan.program.display(),
                        "a process that left the run's process group still holds its output; ftw stopped reading it"
                    );
                    break;
                }
                // The program is done but something it started still holds the pipe.
                signal_group(libc::SIGKILL);
                drain_killed = true;
                drain_until = Some(Instant::now() + DRAIN_AFTER_EXIT);
            },
        }
    }
    // Whatever is left of the group goes too (it no longer writes to the pipe).
    signal_group(libc::SIGKILL);

    let status = exit.expect("the loop ends after the exit");
    let exit = match (status.code(), status.signal()) {
        (Some(code), _) => Exit::Code(code),
        (None, Some(signal)) => Exit::Signal(signal),
        (None, None) => Exit::Code(-1),
    };
    stopped.map_or(Ending::Exited(exit), |ending| ending(exit))
}

async fn sleep_until_opt(when: Option<Instant>) {
    match when {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}

type Pipe = tokio::net::unix::pipe::Receiver;

/// Reads from a pipe that is there (the loop only asks when it is).
async fn read_some(pipe: Option<&mut Pipe>, buf: &mut [u8]) -> std::io::Result<usize> {
    match pipe {
        Some(pipe) => pipe.read(buf).await,
        None => Ok(0),
    }
}

/// Starts the program in its own process group with stdin empty, stdout on a pipe and
/// stderr on the same pipe (one stream, in exact order) or, for tools that want it
/// told apart, on a pipe of its own.
fn spawn(plan: &Plan) -> std::io::Result<(Pipe, Option<Pipe>, tokio::process::Child)> {
    let (out_reader, out_writer) = std::io::pipe()?;
    let (err_reader, err_writer) = if plan.separate_stderr {
        let (reader, writer) = std::io::pipe()?;
        (Some(reader), writer)
    } else {
        (None, out_writer.try_clone()?)
    };
    let mut command = tokio::process::Command::new(&plan.program);
    command
        .args(&plan.args)
        .env_clear()
        .envs(plan.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&plan.workdir)
        .stdin(Stdio::null())
        .stdout(Stdio::from(out_writer))
        .stderr(Stdio::from(err_writer))
        .process_group(0)
        .kill_on_drop(false);
    let child = command.spawn()?;
    // The command holds the parent's copies of the write ends: drop them, or the pipes
    // never reach end-of-file.
    drop(command);
    let out = Pipe::from_owned_fd(OwnedFd::from(out_reader))?;
    let err = err_reader
        .map(|r| Pipe::from_owned_fd(OwnedFd::from(r)))
        .transpose()?;
    Ok((out, err, child))
}

fn spawn_error(plan: &Plan, e: &std::io::Error) -> String {
    let program = plan.program.display();
    match e.raw_os_error() {
        Some(libc::E2BIG) => {
            format!("cannot start {program}: the arguments are too long for the system")
        }
        Some(libc::ENOENT) => {
            format!("cannot start {program}: no such program (or its interpreter is missing)")
        }
        Some(libc::EACCES) => format!("cannot start {program}: permission denied"),
        _ => format!("cannot start {program}: {}", crate::manifest::io_reason(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Sink(std::sync::Mutex<Vec<u8>>);
    impl OutputSink for Sink {
        fn push(&self, _: Stream, bytes: &[u8]) {
            self.0.lock().unwrap().extend_from_slice(bytes);
        }
    }

    fn plan(program: &str, args: &[&str], timeout: Duration) -> Plan {
        Plan {
            program: program.into(),
            args: args.iter().map(|s| s.to_string()).collect(),
            env: base_env(),
            workdir: "/".into(),
            timeout,
            separate_stderr: false,
        }
    }

    #[tokio::test]
    async fn a_stop_requested_before_the_start_is_not_missed() {
        let (tx, mut rx) = watch::channel(Stop::Running);
        tx.send_replace(Stop::Cancel);
        rx.borrow_and_update();
        let sink = Sink(Default::default());
        let p = plan("/bin/sleep", &["30"], Duration::from_secs(60));
        assert_eq!(
            execute(&p, &sink, rx).await,
            Ending::Cancelled(Exit::Signal(libc::SIGTERM))
        );
    }

    #[tokio::test]
    async fn a_descendant_that_leaves_the_group_cannot_keep_the_run_going() {
        let (_tx, rx) = watch::channel(Stop::Running);
        let sink = Sink(Default::default());
        let p = plan(
            "/bin/sh",
            &["-c", "setsid sleep 30 & echo started"],
            Duration::from_secs(60),
        );
        let started = Instant::now();
        assert_eq!(execute(&p, &sink, rx).await, Ending::Exited(Exit::Code(0)));
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the run waited for the escapee"
        );
        assert_eq!(&*sink.0.lock().unwrap(), b"started\n");
    }

    #[tokio::test]
    async fn cancel_stops_a_sleeping_program() {
        let (tx, rx) = watch::channel(Stop::Running);
        let sink = Sink(Default::default());
        let p = plan("/bin/sleep", &["30"], Duration::from_secs(60));
        let run = execute(&p, &sink, rx);
        let cancel = async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            tx.send_replace(Stop::Cancel);
        };
        let (ending, ()) = tokio::join!(run, cancel);
        assert_eq!(ending, Ending::Cancelled(Exit::Signal(libc::SIGTERM)));
    }
}
