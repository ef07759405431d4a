//! Live and finished runs: their status, their output, their files, and who may see
//! them. One `Runs` per server.
//!
//! Output lives once, in the run's log on disk (`log`); any number of viewers read it at
//! their own pace. A viewer waits on a version counter (`watch`) and then reads what is
//! new, at most `CHUNK` at a time, so a thousand live pages of one run cost a thousand
//! offsets, not a thousand copies, and memory stays flat whatever a tool prints. Output
//! beyond the tool's `max_output` is counted but not kept; the program still runs to its
//! end.
//!
//! Each run has a private folder (mode 0700, see `dir`) for its uploads and its output
//! files; it is removed when the run leaves the history (`--keep-runs`) or the server
//! stops.
//! Concurrency is capped per tool (`max_concurrent`) and overall (`--max-runs`); runs
//! beyond the caps wait in a short queue, and a full queue is refused.

mod dir;
mod log;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use indexmap::IndexMap;
use tokio::sync::{Semaphore, watch};

use crate::audit::Audit;
use crate::exec::{self, Ending, Exit, OutputSink, Plan, Stop, Stream};
use crate::manifest::Value;
use crate::metrics::Metrics;

pub use dir::{OutputFile, RunDir, Sweeper, private_root};
pub use log::OutputLog;

/// The most output one read hands a viewer (one event of a live stream).
pub const CHUNK: usize = 256 * 1024;

pub const DEFAULT_MAX_RUNS: u16 = 16;
pub const DEFAULT_KEEP_RUNS: u32 = 100;
/// Runs that may wait for a free slot before new ones are refused with 429.
pub const MAX_QUEUED: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Queued,
    Running,
    Succeeded,
    Failed(i32),
    Killed(i32),
    /// It ran past its timeout and was stopped; how it ended then.
    TimedOut(Exit),
    /// Someone cancelled it: how it ended, or `None` when it had not started yet.
    Cancelled(Option<Exit>),
    /// It could not start; the message says why.
    Error(String),
}

impl Status {
    pub fn is_finished(&self) -> bool {
        !matches!(self, Status::Queued | Status::Running)
    }

    /// A short word for the page and for CSS classes.
    pub fn word(&self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Running => "running",
            Status::Succeeded => "succeeded",
            Status::Failed(_) => "failed",
            Status::Killed(_) => "killed",
            Status::TimedOut(_) => "timed-out",
            Status::Cancelled(_) => "cancelled",
            Status::Error(_) => "error",
        }
    }

    /// How the program itself ended, if it ran and has ended.
    pub fn exit(&self) -> Option<Exit> {
        match self {
            Status::Succeeded => Some(Exit::Code(0)),
            Status::Failed(code) => Some(Exit::Code(*code)),
            Status::Killed(signal) => Some(Exit::Signal(*signal)),
            Status::TimedOut(exit) => Some(*exit),
            Status::Cancelled(exit) => *exit,
            Status::Queued | Status::Running | Status::Error(_) => None,
        }
    }

    pub fn exit_code(&self) -> Option<i32> {
        match self.exit() {
            Some(Exit::Code(code)) => Some(code),
            _ => None,
        }
    }

    pub fn signal(&self) -> Option<i32> {
        match self.exit() {
            Some(Exit::Signal(signal)) => Some(signal),
            _ => None,
        }
    }

    fn from_ending(ending: Ending) -> Status {
        match ending {
            Ending::Exited(Exit::Code(0)) => Status::Succeeded,
            Ending::Exited(Exit::Code(code)) => Status::Failed(code),
            Ending::Exited(Exit::Signal(signal)) => Status::Killed(signal),
            Ending::TimedOut(exit) => Status::TimedOut(exit),
            Ending::Cancelled(exit) => Status::Cancelled(Some(exit)),
            Ending::NotStarted(why) => Status::Error(why),
        }
    }
}

#[derive(Debug)]
struct Progress {
    status: Status,
    started: Option<Instant>,
    duration: Option<Duration>,
    files: Vec<OutputFile>,
}

/// One run of one tool.
#[derive(Debug)]
pub struct Run {
    pub id: String,
    pub tool_id: String,
    pub tool_title: String,
    pub user: String,
    pub created: SystemTime,
    /// The arguments, in the tool's order.
    pub args: Vec<RunArg>,
    pub dir: RunDir,
    progress: Mutex<Progress>,
    output: OutputLog,
    version: watch::Sender<u64>,
    stop: watch::Sender<Stop>,
}

/// One argument as a run keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunArg {
    pub name: String,
    pub label: String,
    /// As people see it: passwords `***`, an upload by its client name and size, lists
    /// joined by commas, checkboxes `yes`/`no`; empty when it was left out.
    pub shown: String,
    /// The value that fills the form again ("Run again"); `None` for passwords and
    /// uploads, which are never put back.
    pub again: Option<Value>,
}

/// What a page needs to show a run, copied out under the lock.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub status: Status,
    pub duration: Option<Duration>,
    pub files: Vec<OutputFile>,
    /// Bytes of output readers can read (kept output and any cut marker).
    pub output_len: u64,
    pub dropped: u64,
    /// The output version this snapshot includes.
    pub version: u64,
}

impl OutputSink for Run {
    fn push(&self, stream: Stream, bytes: &[u8]) {
        self.output.append(bytes, stream == Stream::Stderr);
        self.version.send_modify(|v| *v += 1);
    }
}

impl Run {
    pub fn status(&self) -> Status {
        self.progress.lock().expect("progress lock").status.clone()
    }

    pub fn snapshot(&self) -> Snapshot {
        let version = *self.version.borrow();
        let progress = self.progress.lock().expect("progress lock");
        Snapshot {
            status: progress.status.clone(),
            duration: progress
                .duration
                .or_else(|| progress.started.map(|s| s.elapsed())),
            files: progress.files.clone(),
            output_len: self.output.len(),
            dropped: self.output.counts().1,
            version,
        }
    }

    /// All output kept so far (at most `max_output` and a marker).
    pub fn output(&self) -> Vec<u8> {
        self.output.read_all()
    }

    /// The first `len` bytes of output (all of it if there is less): what a snapshot
    /// that saw `output_len == len` describes, even if more arrived since.
    pub fn output_upto(&self, len: u64) -> Vec<u8> {
        self.output
            .read(0, len, usize::try_from(len).unwrap_or(usize::MAX))
    }

    /// Where a page starts showing output so that it shows at most the last `max`
    /// bytes, from a line start where one is near.
    pub fn tail_start(&self, max: u64) -> u64 {
        self.output.tail_start(max)
    }

    /// Output from byte `from` on (at most `CHUNK`), and whether the run has finished
    /// and this is the last of it (read together, so a viewer that sees "finished" has
    /// also seen all output).
    pub fn output_since(&self, from: u64) -> (Vec<u8>, bool) {
        let (finished, len) = {
            let progress = self.progress.lock().expect("progress lock");
            (progress.status.is_finished(), self.output.len())
        };
        let bytes = self.output.read(from, len, CHUNK);
        let caught_up = from + bytes.len() as u64 >= len;
        (bytes, finished && caught_up)
    }

    /// Which bytes of output in `within` came from stderr.
    pub fn stderr_within(&self, within: std::ops::Range<u64>) -> Vec<std::ops::Range<u64>> {
        self.output.stderr_within(within)
    }

    /// Up to `max` bytes of output from byte `from`, no further than `until`.
    pub fn read_output(&self, from: u64, until: u64, max: usize) -> Vec<u8> {
        self.output.read(from, until, max)
    }

    /// Bytes of output readers can read now.
    pub fn output_len(&self) -> u64 {
        self.output.len()
    }

    /// How long it ran (or has been running).
    pub fn duration(&self) -> Option<Duration> {
        let p = self.progress.lock().expect("progress lock");
        p.duration.or_else(|| p.started.map(|s| s.elapsed()))
    }

    pub fn dropped(&self) -> u64 {
        self.output.counts().1
    }

    /// Returns once the run has finished (at once if it has).
    pub async fn finished(&self) {
        let mut changes = self.watch();
        while !self.status().is_finished() {
            if changes.changed().await.is_err() {
                return;
            }
        }
    }

    /// Wakes when output or status changes.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    /// Asks the run to stop: SIGTERM to its group, SIGKILL after the grace period.
    pub fn cancel(&self) {
        self.stop.send_if_modified(|s| {
            if *s == Stop::Running {
                *s = Stop::Cancel;
                true
            } else {
                false
            }
        });
    }

    fn kill(&self) {
        self.stop.send_replace(Stop::Kill);
    }

    fn set_status(&self, status: Status) {
        let mut p = self.progress.lock().expect("progress lock");
        if status == Status::Running {
            p.started = Some(Instant::now());
        }
        if status.is_finished() {
            p.duration = p.started.map(|s| s.elapsed());
            p.files = self.dir.list_output();
        }
        p.status = status;
        drop(p);
        self.version.send_modify(|v| *v += 1);
    }

    /// A file of the output folder by its listed name: only what was listed when the
    /// run ended can be fetched, never a path, and never through a symlink.
    pub fn file(&self, name: &str) -> Option<(OutputFile, std::fs::File)> {
        let listed = {
            let p = self.progress.lock().expect("progress lock");
            p.files.iter().find(|f| f.name == name)?.clone()
        };
        let file = self.dir.open_output_file(name)?;
        Some((listed, file))
    }
}

/// Why a run was not accepted.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    QueueFull,
    ShuttingDown,
    /// The output log could not be made (the disk is full or read-only).
    Storage(String),
}

/// Everything needed to start a run.
pub struct NewRun {
    pub tool_id: String,
    pub tool_title: String,
    pub user: String,
    pub args: Vec<RunArg>,
    pub dir: RunDir,
    pub max_output: u64,
    pub max_concurrent: Option<u32>,
    pub plan: Plan,
}

pub struct Runs {
    audit: Arc<Audit>,
    metrics: Arc<Metrics>,
    running: AtomicUsize,
    runs: Mutex<IndexMap<String, Arc<Run>>>,
    keep: usize,
    global: Arc<Semaphore>,
    per_tool: Mutex<HashMap<String, (u32, Arc<Semaphore>)>>,
    queued: AtomicUsize,
    /// Runs queued or running; shutdown waits for it to reach zero.
    active: watch::Sender<usize>,
    stopping: std::sync::atomic::AtomicBool,
    root: PathBuf,
    /// Removes the folders of runs that left the history.
    sweeper: Arc<Sweeper>,
}

impl Runs {
    /// `root` must exist and be private to ftw (see `private_root`).
    pub fn new(
        root: PathBuf,
        max_runs: usize,
        keep: usize,
        audit: Arc<Audit>,
        metrics: Arc<Metrics>,
    ) -> Runs {
        Runs {
            audit,
            metrics,
            running: AtomicUsize::new(0),
            runs: Mutex::new(IndexMap::new()),
            keep,
            global: Arc::new(Semaphore::new(max_runs.max(1))),
            per_tool: Mutex::new(HashMap::new()),
            queued: AtomicUsize::new(0),
            active: watch::channel(0).0,
            stopping: std::sync::atomic::AtomicBool::new(false),
            root,
            sweeper: Sweeper::start(),
        }
    }

    /// A fresh private folder for a run (before it exists: uploads land here first).
    pub fn new_dir(&self, id: &str) -> std::io::Result<RunDir> {
        RunDir::create(&self.root, id, &self.sweeper)
    }

    pub fn get(&self, id: &str) -> Option<Arc<Run>> {
        self.runs.lock().expect("runs lock").get(id).cloned()
    }

    /// Runs newest first.
    pub fn list(&self) -> Vec<Arc<Run>> {
        self.runs
            .lock()
            .expect("runs lock")
            .values()
            .rev()
            .cloned()
            .collect()
    }

    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::SeqCst)
    }

    pub fn running(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }

    /// Returns once no run is queued or running (and the history is trimmed).
    pub async fn idle(&self) {
        let _ = self.active.subscribe().wait_for(|n| *n == 0).await;
    }

    /// Accepts a run and starts it as soon as the caps allow.
    pub fn start(self: &Arc<Self>, id: String, new: NewRun) -> Result<Arc<Run>, Refusal> {
        if self.stopping.load(Ordering::SeqCst) {
            return Err(Refusal::ShuttingDown);
        }
        let output = OutputLog::create(&self.root, new.max_output).map_err(|e| {
            Refusal::Storage(format!(
                "cannot store the run's output: {}",
                crate::manifest::io_reason(&e)
            ))
        })?;
        if self.queued.fetch_add(1, Ordering::SeqCst) >= MAX_QUEUED {
            self.queued.fetch_sub(1, Ordering::SeqCst);
            return Err(Refusal::QueueFull);
        }
        let run = Arc::new(Run {
            id: id.clone(),
            tool_id: new.tool_id.clone(),
            tool_title: new.tool_title,
            user: new.user,
            created: SystemTime::now(),
            args: new.args,
            dir: new.dir,
            progress: Mutex::new(Progress {
                status: Status::Queued,
                started: None,
                duration: None,
                files: Vec::new(),
            }),
            output,
            version: watch::channel(0).0,
            stop: watch::channel(Stop::Running).0,
        });
        self.runs
            .lock()
            .expect("runs lock")
            .insert(id, Arc::clone(&run));
        self.active.send_modify(|n| *n += 1);
        let tool_slots = self.tool_slots(&new.tool_id, new.max_concurrent);
        let runs = Arc::clone(self);
        let task_run = Arc::clone(&run);
        let plan = new.plan;
        tokio::spawn(async move {
            runs.drive(task_run, plan, tool_slots).await;
            // Trimmed before the run stops counting as active, so `idle` sees the
            // history as it stays.
            runs.trim();
            runs.active.send_modify(|n| *n -= 1);
        });
        Ok(run)
    }

    async fn drive(&self, run: Arc<Run>, plan: Plan, tool_slots: Option<Arc<Semaphore>>) {
        let mut stop = run.stop.subscribe();
        let slots = async {
            let tool = match tool_slots {
                Some(s) => Some(s.acquire_owned().await.ok()?),
                None => None,
            };
            let global = Arc::clone(&self.global).acquire_owned().await.ok()?;
            Some((tool, global))
        };
        let permits = tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s != Stop::Running) => None,
            permits = slots => permits,
        };
        self.queued.fetch_sub(1, Ordering::SeqCst);
        let Some(_permits) = permits else {
            // Cancelled while it waited: it never ran, and it ends here all the same.
            run.set_status(Status::Cancelled(None));
            self.record_end(&run);
            return;
        };
        run.set_status(Status::Running);
        self.running.fetch_add(1, Ordering::SeqCst);
        let ending = exec::execute(&plan, run.as_ref(), stop).await;
        self.running.fetch_sub(1, Ordering::SeqCst);
        run.set_status(Status::from_ending(ending));
        self.record_end(&run);
    }

    /// The metrics and the audit record of a run that has ended.
    fn record_end(&self, run: &Run) {
        let status = run.status();
        self.metrics.run_finished(
            &run.tool_id,
            status.word(),
            run.duration().map(|d| d.as_secs_f64()),
        );
        let (kept, dropped) = run.output.counts();
        self.audit.record(
            "run-end",
            serde_json::json!({
                "user": run.user,
                "tool": run.tool_id,
                "run": run.id,
                "status": status.word(),
                "exit_code": status.exit_code(),
                "signal": status.signal(),
                "duration_ms": run.duration().map(|d| d.as_millis() as u64),
                "output_bytes": kept + dropped,
            }),
        );
    }

    /// The semaphore for a tool's `max_concurrent` (rebuilt if the limit changed).
    fn tool_slots(&self, tool: &str, limit: Option<u32>) -> Option<Arc<Semaphore>> {
        let limit = limit?;
        let mut map = self.per_tool.lock().expect("slots lock");
        let entry = map
            .entry(tool.to_string())
            .or_insert_with(|| (limit, Arc::new(Semaphore::new(limit as usize))));
        if entry.0 != limit {
            *entry = (limit, Arc::new(Semaphore::new(limit as usize)));
        }
        Some(Arc::clone(&entry.1))
    }

    /// Drops the oldest finished runs beyond `keep` (their folders go with them).
    fn trim(&self) {
        let mut runs = self.runs.lock().expect("runs lock");
        let finished: Vec<String> = runs
            .values()
            .filter(|r| r.status().is_finished())
            .map(|r| r.id.clone())
            .collect();
        let excess = finished.len().saturating_sub(self.keep);
        for id in finished.into_iter().take(excess) {
            runs.shift_remove(&id);
        }
    }

    /// Refuses new runs, lets running ones finish for `grace`, then kills what is left,
    /// and removes every run folder.
    pub async fn shutdown(&self, grace: Duration) {
        self.stopping.store(true, Ordering::SeqCst);
        let mut active = self.active.subscribe();
        if tokio::time::timeout(grace, active.wait_for(|n| *n == 0))
            .await
            .is_err()
        {
            let left: Vec<Arc<Run>> = self
                .list()
                .into_iter()
                .filter(|r| !r.status().is_finished())
                .collect();
            tracing::warn!(
                "the grace period ended with {} run(s) still going; killing them",
                left.len()
            );
            for run in left {
                run.kill();
            }
            let _ = tokio::time::timeout(exec::KILL_GRACE, active.wait_for(|n| *n == 0)).await;
        }
        self.runs.lock().expect("runs lock").clear();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
