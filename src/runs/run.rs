//! One run: its facts, its progress, its output log and its files. A live run is
//! driven by `Runs`; a run read back from the history (after it left memory, or after
//! a restart) is the same type, finished, so every page and API answer treats both
//! alike.

use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::watch;

use super::CHUNK;
use super::dir::{OutputFile, RunDir};
use super::log::OutputLog;
use super::status::Status;
use crate::exec::{OutputSink, Stop, Stream};
use crate::manifest::Value;
use crate::store::{FinishedRun, RunRecord, Store};

#[derive(Debug)]
struct Progress {
    status: Status,
    /// When it started, for a live run (its duration counts from here).
    started: Option<Instant>,
    duration: Option<Duration>,
    /// When it ended (for an interrupted run: when ftw was last seen alive).
    ended: Option<SystemTime>,
    files: Vec<OutputFile>,
}

/// One run of one tool.
pub struct Run {
    pub id: String,
    pub tool_id: String,
    pub tool_title: String,
    pub user: String,
    /// How it was started: `session`, `forward-auth`, `token:NAME`.
    pub via: String,
    pub created: SystemTime,
    /// The arguments, in the tool's order.
    pub args: Vec<RunArg>,
    pub dir: RunDir,
    progress: Mutex<Progress>,
    pub(super) output: OutputLog,
    version: watch::Sender<u64>,
    pub(super) stop: watch::Sender<Stop>,
    /// Where the process group is recorded once the program starts (live runs), or
    /// where a cancel is asked for (runs another replica runs).
    store: Option<Arc<dyn Store>>,
    /// Another replica runs it; this one follows it (see `runs::follow`).
    following: bool,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Run")
            .field("id", &self.id)
            .field("tool_id", &self.tool_id)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
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
    /// uploads, which are never put back (nor stored).
    pub again: Option<Value>,
}

/// Characters of an argument's shown value a run keeps (the history shows it).
pub const MAX_SHOWN: usize = 1000;
/// Bytes of an argument's value kept to fill the form again; a longer value is not
/// offered again (the form stays empty there).
pub const MAX_AGAIN: usize = 4096;

impl RunArg {
    /// The argument as the history keeps it: the shown value cut to `MAX_SHOWN`
    /// characters (with a marker), and no "Run again" value beyond `MAX_AGAIN` bytes,
    /// so a run's record stays small whatever was typed.
    pub fn bounded(mut self) -> RunArg {
        if let Some((cut, _)) = self.shown.char_indices().nth(MAX_SHOWN) {
            self.shown.truncate(cut);
            self.shown.push_str(" [...]");
        }
        let again_bytes: usize = self
            .again
            .as_ref()
            .map_or(0, |v| v.texts().iter().map(|t| t.len()).sum());
        if again_bytes > MAX_AGAIN {
            self.again = None;
        }
        self
    }
}

/// What a page needs to show a run, copied out under the lock.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub status: Status,
    pub duration: Option<Duration>,
    pub ended: Option<SystemTime>,
    pub files: Vec<OutputFile>,
    /// Bytes of output readers can read (kept output and any cut marker).
    pub output_len: u64,
    pub dropped: u64,
    /// Why the output was cut (`max_output`, or the disk), when it was.
    pub cut: Option<String>,
    /// The output version this snapshot includes.
    pub version: u64,
}

impl OutputSink for Run {
    fn push(&self, stream: Stream, bytes: &[u8]) {
        self.output.append(bytes, stream == Stream::Stderr);
        self.version.send_modify(|v| *v += 1);
    }

    fn started(&self, pid: u32) -> Option<crate::exec::Started> {
        let store = self.store.as_ref()?;
        let mark = super::process::mark(pid);
        let recorded = store.run_started(&self.id, SystemTime::now(), mark);
        let id = self.id.clone();
        Some(Box::pin(async move {
            if let Err(e) = recorded.await {
                tracing::error!("cannot record the process group of run {id}: {e}");
            }
        }))
    }
}

/// The facts of a new run, before it is stored.
pub(super) struct Fresh {
    pub id: String,
    pub tool_id: String,
    pub tool_title: String,
    pub user: String,
    pub via: String,
    pub args: Vec<RunArg>,
    pub dir: RunDir,
    pub output: OutputLog,
    pub store: Arc<dyn Store>,
}

impl Run {
    /// A new, queued run.
    pub(super) fn fresh(f: Fresh) -> Run {
        Run {
            id: f.id,
            tool_id: f.tool_id,
            tool_title: f.tool_title,
            user: f.user,
            via: f.via,
            created: SystemTime::now(),
            args: f.args,
            dir: f.dir,
            progress: Mutex::new(Progress {
                status: Status::Queued,
                started: None,
                duration: None,
                ended: None,
                files: Vec::new(),
            }),
            output: f.output,
            version: watch::channel(0).0,
            stop: watch::channel(Stop::Running).0,
            store: Some(f.store),
            following: false,
        }
    }

    /// A run from the history: finished (or interrupted), read-only.
    pub(super) fn restored(record: RunRecord, dir: RunDir, output: OutputLog) -> Run {
        Run {
            id: record.id,
            tool_id: record.tool,
            tool_title: record.tool_title,
            user: record.user,
            via: record.via,
            created: record.created,
            args: record.args,
            dir,
            progress: Mutex::new(Progress {
                status: record.status,
                started: None,
                duration: record.duration,
                ended: record.ended,
                files: record.files,
            }),
            output,
            version: watch::channel(0).0,
            stop: watch::channel(Stop::Running).0,
            store: None,
            following: false,
        }
    }

    /// A run another replica runs, as far as it has stored it; `followed` brings it
    /// up to date, and a cancel is asked of its replica through `store`.
    pub(super) fn following(
        record: RunRecord,
        dir: RunDir,
        output: OutputLog,
        store: Arc<dyn Store>,
    ) -> Run {
        let started = record.started;
        let run = Run {
            store: Some(store),
            following: true,
            ..Run::restored(record, dir, output)
        };
        run.progress.lock().expect("progress lock").started = since(started);
        run
    }

    /// What the replica that runs it stored since the last look: its record, and
    /// whether output was added (already in the log). Viewers wake if anything changed.
    pub(super) fn followed(&self, record: &RunRecord, output_added: bool) {
        let mut p = self.progress.lock().expect("progress lock");
        let changed = output_added || p.status != record.status;
        if p.started.is_none() {
            p.started = since(record.started);
        }
        p.status = record.status.clone();
        p.duration = record.duration;
        p.ended = record.ended;
        p.files = record.files.clone();
        drop(p);
        if changed {
            self.version.send_modify(|v| *v += 1);
        }
    }

    /// The record a new run is stored as.
    pub(super) fn record(&self) -> RunRecord {
        RunRecord {
            status: self.status(),
            ..RunRecord::queued(
                self.id.clone(),
                self.tool_id.clone(),
                self.tool_title.clone(),
                self.user.clone(),
                self.via.clone(),
                self.args.clone(),
                self.created,
            )
        }
    }

    pub fn status(&self) -> Status {
        self.progress.lock().expect("progress lock").status.clone()
    }

    pub fn snapshot(&self) -> Snapshot {
        let version = *self.version.borrow();
        let progress = self.progress.lock().expect("progress lock");
        let facts = self.output.facts();
        Snapshot {
            status: progress.status.clone(),
            duration: progress
                .duration
                .or_else(|| progress.started.map(|s| s.elapsed())),
            ended: progress.ended,
            files: progress.files.clone(),
            output_len: facts.len,
            dropped: facts.dropped,
            cut: facts.cut,
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
    pub fn stderr_within(&self, within: Range<u64>) -> Vec<Range<u64>> {
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
        self.output.facts().dropped
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
    /// A run another replica runs is asked of that replica (through the database).
    pub fn cancel(&self) {
        if self.following {
            if let Some(store) = &self.store {
                drop(store.request_cancel(&self.id));
            }
            return;
        }
        self.stop.send_if_modified(|s| {
            if *s == Stop::Running {
                *s = Stop::Cancel;
                true
            } else {
                false
            }
        });
    }

    /// ftw is stopping: SIGTERM now (`kill` follows after the grace).
    pub(super) fn shut_down(&self) {
        self.stop.send_if_modified(|s| {
            if matches!(*s, Stop::Running | Stop::Cancel) {
                *s = Stop::Shutdown;
                true
            } else {
                false
            }
        });
    }

    pub(super) fn kill(&self) {
        self.stop.send_replace(Stop::Kill);
    }

    pub(super) fn set_running(&self) {
        let mut p = self.progress.lock().expect("progress lock");
        p.started = Some(Instant::now());
        p.status = Status::Running;
        drop(p);
        self.version.send_modify(|v| *v += 1);
    }

    /// How the run ended, as it will be stored (files listed now).
    pub(super) fn ending(&self, status: Status) -> FinishedRun {
        let duration = self
            .progress
            .lock()
            .expect("progress lock")
            .started
            .map(|s| s.elapsed());
        let facts = self.output.facts();
        let files = self.dir.list_output();
        let disk_bytes =
            files.iter().map(|f| f.size).sum::<u64>() + facts.disk_bytes + self.dir.uploads_size();
        FinishedRun {
            id: self.id.clone(),
            status,
            ended: SystemTime::now(),
            duration,
            output_len: facts.len,
            dropped: facts.dropped,
            cut: facts.cut,
            in_file: facts.in_file,
            output: self.output.in_memory(),
            stderr: self.output.stderr_within(0..facts.len),
            files,
            disk_bytes,
        }
    }

    /// Puts a stored ending in force: viewers see the run finished.
    pub(super) fn set_finished(&self, end: &FinishedRun) {
        let mut p = self.progress.lock().expect("progress lock");
        p.duration = end.duration;
        p.ended = Some(end.ended);
        p.files = end.files.clone();
        p.status = end.status.clone();
        drop(p);
        self.version.send_modify(|v| *v += 1);
    }

    /// The listing of a file the run left, by name.
    pub fn listed_file(&self, name: &str) -> Option<OutputFile> {
        let p = self.progress.lock().expect("progress lock");
        p.files.iter().find(|f| f.name == name).cloned()
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

/// The instant `at` was, on this machine's monotonic clock (for a duration so far).
fn since(at: Option<SystemTime>) -> Option<Instant> {
    let ago = SystemTime::now().duration_since(at?).ok()?;
    Instant::now().checked_sub(ago)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_history_keeps_arguments_small() {
        let arg = |shown: String, again: String| RunArg {
            name: "n".into(),
            label: "N".into(),
            shown,
            again: Some(Value::One(again)),
        };
        let small = arg("ok".into(), "ok".into()).bounded();
        assert_eq!((small.shown.as_str(), small.again.is_some()), ("ok", true));
        let big = arg("é".repeat(5000), "x".repeat(MAX_AGAIN + 1)).bounded();
        assert_eq!(big.shown.chars().count(), MAX_SHOWN + " [...]".len());
        assert!(big.shown.ends_with(" [...]"));
        assert_eq!(big.again, None, "too long to fill the form again");
    }
}
