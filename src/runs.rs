//! Live and finished runs: their status, their output, their files, and who may see
//! them. One `Runs` per server.
//!
//! Output lives once, in the run; any number of viewers read it at their own pace. A
//! viewer waits on a version counter (`watch`) and then reads what is new, so a thousand
//! live pages of one run cost a thousand offsets, not a thousand copies. Output beyond the
//! tool's `max_output` is counted but not kept; the program still runs to its end.
//!
//! Each run has a private folder (mode 0700) for its uploads and its output files; it is
//! removed when the run leaves the history (`--keep-runs`) or the server stops.
//! Concurrency is capped per tool (`max_concurrent`) and overall (`--max-runs`); runs
//! beyond the caps wait in a short queue, and a full queue is refused.

use std::collections::HashMap;
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use indexmap::IndexMap;
use tokio::sync::{Semaphore, watch};

use crate::audit::Audit;
use crate::exec::{self, Ending, OutputSink, Plan, Stop};
use crate::metrics::Metrics;

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
    TimedOut,
    Cancelled,
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
            Status::TimedOut => "timed-out",
            Status::Cancelled => "cancelled",
            Status::Error(_) => "error",
        }
    }

    pub fn exit_code(&self) -> Option<i32> {
        match self {
            Status::Succeeded => Some(0),
            Status::Failed(code) => Some(*code),
            _ => None,
        }
    }

    pub fn signal(&self) -> Option<i32> {
        match self {
            Status::Killed(signal) => Some(*signal),
            _ => None,
        }
    }

    fn from_ending(ending: Ending) -> Status {
        match ending {
            Ending::Exited(0) => Status::Succeeded,
            Ending::Exited(code) => Status::Failed(code),
            Ending::Signalled(signal) => Status::Killed(signal),
            Ending::TimedOut => Status::TimedOut,
            Ending::Cancelled => Status::Cancelled,
            Ending::NotStarted(why) => Status::Error(why),
        }
    }
}

/// A file the tool left in its output folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputFile {
    pub name: String,
    pub size: u64,
    /// A raster image that the run page may show inline.
    pub image: bool,
}

/// A run's private folder: `uploads/` and `output/`. Removed with the run.
#[derive(Debug)]
pub struct RunDir {
    pub path: PathBuf,
    /// (device, inode) of `output/` as ftw made it. The tool runs as ftw's user and can
    /// swap the folder for a symlink; every later use checks it is still this one.
    output_id: (u64, u64),
}

impl RunDir {
    pub fn uploads(&self) -> PathBuf {
        self.path.join("uploads")
    }

    pub fn output(&self) -> PathBuf {
        self.path.join("output")
    }

    /// The output folder, opened without following a symlink, if it is still the
    /// folder ftw made.
    fn open_output(&self) -> Option<OwnedFd> {
        use std::os::unix::fs::MetadataExt;
        let path = CString::new(self.output().into_os_string().into_vec()).ok()?;
        // SAFETY: a plain open(2) of a NUL-terminated path; the result is owned below.
        let fd = unsafe {
            libc::open(
                path.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return None;
        }
        // SAFETY: fd was just opened and is owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let meta = std::fs::File::from(fd.try_clone().ok()?).metadata().ok()?;
        ((meta.dev(), meta.ino()) == self.output_id).then_some(fd)
    }

    /// Regular files directly inside the output folder: no folders, no symlinks, UTF-8
    /// names only.
    fn list_output(&self) -> Vec<OutputFile> {
        let Some(dir) = self.open_output() else {
            return Vec::new();
        };
        // Reading through the descriptor, not the path: the folder checked is the folder read.
        let Ok(entries) = std::fs::read_dir(format!("/proc/self/fd/{}", dir.as_raw_fd())) else {
            return Vec::new();
        };
        let mut files: Vec<OutputFile> = entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let (is_file, size) = stat_at(&dir, &name)?;
                if !is_file {
                    return None;
                }
                let lower = name.to_ascii_lowercase();
                let image = [".png", ".jpg", ".jpeg", ".gif", ".webp"]
                    .iter()
                    .any(|ext| lower.ends_with(ext));
                Some(OutputFile { name, size, image })
            })
            .collect();
        files.sort_by(|a, b| a.name.cmp(&b.name));
        files
    }

    /// A regular file of the output folder, opened without following symlinks.
    pub fn open_output_file(&self, name: &str) -> Option<std::fs::File> {
        let dir = self.open_output()?;
        let c_name = CString::new(name).ok()?;
        // SAFETY: openat(2) relative to a directory descriptor we own.
        let fd = unsafe {
            libc::openat(
                dir.as_raw_fd(),
                c_name.as_ptr(),
                libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return None;
        }
        // SAFETY: fd was just opened and is owned by nothing else.
        let file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        file.metadata().ok()?.is_file().then_some(file)
    }
}

/// (is a regular file, size) of `name` in `dir`, without following a symlink.
fn stat_at(dir: &OwnedFd, name: &str) -> Option<(bool, u64)> {
    let c_name = CString::new(name).ok()?;
    // SAFETY: fstatat(2) fills a plain C struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let rc = unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            c_name.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    (rc == 0).then_some((
        (st.st_mode & libc::S_IFMT) == libc::S_IFREG,
        st.st_size as u64,
    ))
}

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

#[derive(Debug)]
struct Progress {
    status: Status,
    started: Option<Instant>,
    duration: Option<Duration>,
    files: Vec<OutputFile>,
}

#[derive(Debug, Default)]
struct Output {
    /// What viewers see: the kept output, and the cut marker once the cap is reached.
    bytes: Vec<u8>,
    /// Bytes of the tool's own output kept (at most `max_output`).
    kept: usize,
    /// Bytes the tool wrote beyond `max_output`, counted, not kept.
    dropped: u64,
}

/// One run of one tool.
#[derive(Debug)]
pub struct Run {
    pub id: String,
    pub tool_id: String,
    pub tool_title: String,
    pub user: String,
    pub created: SystemTime,
    /// (label, value as shown) per argument; passwords are `***`.
    pub shown_args: Vec<(String, String)>,
    /// `?name=value...` that opens the tool's form with this run's values (no
    /// passwords, no files), for "Run again".
    pub rerun_query: String,
    pub dir: RunDir,
    max_output: u64,
    progress: Mutex<Progress>,
    output: Mutex<Output>,
    version: watch::Sender<u64>,
    stop: watch::Sender<Stop>,
}

/// What a page needs to show a run, copied out under the lock.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub status: Status,
    pub duration: Option<Duration>,
    pub files: Vec<OutputFile>,
    pub output: Vec<u8>,
    pub dropped: u64,
    /// The output version this snapshot includes.
    pub version: u64,
}

impl OutputSink for Run {
    fn push(&self, bytes: &[u8]) {
        {
            let mut out = self.output.lock().expect("output lock");
            let room = (self.max_output as usize).saturating_sub(out.kept);
            let kept = room.min(bytes.len());
            out.bytes.extend_from_slice(&bytes[..kept]);
            out.kept += kept;
            if kept < bytes.len() {
                if out.dropped == 0 {
                    out.bytes.extend_from_slice(
                        format!(
                            "\n[ftw: output cut here: it reached max_output ({} bytes); the program keeps running]\n",
                            self.max_output
                        )
                        .as_bytes(),
                    );
                }
                out.dropped += (bytes.len() - kept) as u64;
            }
        }
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
        let out = self.output.lock().expect("output lock");
        Snapshot {
            status: progress.status.clone(),
            duration: progress
                .duration
                .or_else(|| progress.started.map(|s| s.elapsed())),
            files: progress.files.clone(),
            output: out.bytes.clone(),
            dropped: out.dropped,
            version,
        }
    }

    /// Where a page starts showing output: everything, or the last `max` bytes from a
    /// line start. Returns (offset, bytes skipped).
    pub fn tail_start(&self, max: usize) -> usize {
        let out = self.output.lock().expect("output lock");
        if out.bytes.len() <= max {
            return 0;
        }
        let from = out.bytes.len() - max;
        match out.bytes[from..].iter().position(|&b| b == b'\n') {
            Some(i) => from + i + 1,
            None => from,
        }
    }

    /// Output from byte `from` on, and whether the run has finished (read together, so a
    /// viewer that sees "finished" has also seen all output).
    pub fn output_since(&self, from: usize) -> (Vec<u8>, bool) {
        let progress = self.progress.lock().expect("progress lock");
        let out = self.output.lock().expect("output lock");
        let start = from.min(out.bytes.len());
        (out.bytes[start..].to_vec(), progress.status.is_finished())
    }

    /// How long it ran (or has been running).
    pub fn duration(&self) -> Option<Duration> {
        let p = self.progress.lock().expect("progress lock");
        p.duration.or_else(|| p.started.map(|s| s.elapsed()))
    }

    pub fn dropped(&self) -> u64 {
        self.output.lock().expect("output lock").dropped
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
}

/// Everything needed to start a run.
pub struct NewRun {
    pub tool_id: String,
    pub tool_title: String,
    pub user: String,
    pub shown_args: Vec<(String, String)>,
    pub rerun_query: String,
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
        }
    }

    /// A fresh private folder for a run (before it exists: uploads land here first).
    pub fn new_dir(&self, id: &str) -> std::io::Result<RunDir> {
        let path = self.root.join(id);
        let mut builder = std::fs::DirBuilder::new();
        builder.mode(0o700);
        builder.create(&path)?;
        builder.create(path.join("uploads"))?;
        builder.create(path.join("output"))?;
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::symlink_metadata(path.join("output"))?;
        Ok(RunDir {
            path,
            output_id: (meta.dev(), meta.ino()),
        })
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

    /// Accepts a run and starts it as soon as the caps allow.
    pub fn start(self: &Arc<Self>, id: String, new: NewRun) -> Result<Arc<Run>, Refusal> {
        if self.stopping.load(Ordering::SeqCst) {
            return Err(Refusal::ShuttingDown);
        }
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
            shown_args: new.shown_args,
            rerun_query: new.rerun_query,
            dir: new.dir,
            max_output: new.max_output,
            progress: Mutex::new(Progress {
                status: Status::Queued,
                started: None,
                duration: None,
                files: Vec::new(),
            }),
            output: Mutex::new(Output::default()),
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
            runs.active.send_modify(|n| *n -= 1);
            runs.trim();
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
            run.set_status(Status::Cancelled);
            return;
        };
        run.set_status(Status::Running);
        self.running.fetch_add(1, Ordering::SeqCst);
        let ending = exec::execute(&plan, run.as_ref(), stop).await;
        self.running.fetch_sub(1, Ordering::SeqCst);
        run.set_status(Status::from_ending(ending));
        let status = run.status();
        self.metrics.run_finished(
            &run.tool_id,
            status.word(),
            run.duration().map(|d| d.as_secs_f64()),
        );
        let (kept, dropped) = {
            let out = run.output.lock().expect("output lock");
            (out.kept as u64, out.dropped)
        };
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

const ROOT_PREFIX: &str = "ftw-runs-";
const ROOT_PID_FILE: &str = "ftw.pid";

/// Makes the private folder that holds every run's folder (mode 0700, random name), and
/// removes those a crashed ftw left behind (their `ftw.pid` names a dead process).
pub fn private_root() -> std::io::Result<PathBuf> {
    remove_stale_roots(&std::env::temp_dir());
    let dir = tempfile::Builder::new()
        .prefix(ROOT_PREFIX)
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir()?
        .keep();
    std::fs::write(dir.join(ROOT_PID_FILE), std::process::id().to_string())?;
    Ok(dir)
}

fn remove_stale_roots(tmp: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with(ROOT_PREFIX) {
            continue;
        }
        let Ok(pid) = std::fs::read_to_string(entry.path().join(ROOT_PID_FILE)) else {
            continue;
        };
        let Ok(pid) = pid.trim().parse::<i32>() else {
            continue;
        };
        // SAFETY: signal 0 only asks whether the process exists.
        let alive = unsafe { libc::kill(pid, 0) } == 0
            || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
        if !alive {
            tracing::info!("removing {} left by a stopped ftw", entry.path().display());
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
