//! Live and finished runs: starting them within the caps, driving them to their end,
//! and finding them again, whether they are running now or in the stored history.
//!
//! Every run is in the state database from the moment it is accepted (`store`), and
//! the answer that names its id is only sent once that record is committed. While a
//! run is queued or running it is also in memory (`live`), where its output grows;
//! how it ended is committed before anyone is told it ended, and then it leaves
//! memory. A run asked for later, or after a restart, is read back from the database
//! as the same `Run` type, so pages and the API treat both alike.
//!
//! Output lives once, in the run's log (`log`); any number of viewers read it at their
//! own pace, each waiting on a version counter (`watch`), so a thousand live pages of
//! one run cost a thousand offsets, not a thousand copies.
//!
//! Caps: `--max-runs` overall, `max_concurrent` per tool, `max_runs_per_user` runs
//! queued or running per user, and `MAX_QUEUED` waiting per tool. A run waiting for
//! its own tool's slot holds no overall slot, so one tool's backlog never keeps other
//! tools waiting while slots are free.

mod dir;
mod follow;
mod log;
mod process;
mod recover;
mod retention;
mod run;
mod space;
mod status;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Semaphore, watch};

use crate::audit::Audit;
use crate::exec::{self, Plan, Stop};
use crate::metrics::Metrics;
use crate::store::{FinishedRun, RunQuery, RunRecord, Store, StoreError};

pub use dir::{OutputFile, RunDir, Sweeper, run_paths, runs_root};
pub use log::OutputLog;
pub use retention::Retention;
pub use run::{Run, RunArg, Snapshot};
pub use space::nearly_full;
pub use status::{Cause, Status};

/// The most output one read hands a viewer (one event of a live stream).
pub const CHUNK: usize = 256 * 1024;

pub const DEFAULT_MAX_RUNS: u16 = 16;
pub const DEFAULT_KEEP_RUNS: u32 = 10_000;
pub const DEFAULT_MAX_RUNS_PER_USER: u16 = 8;
/// Runs of one tool that may wait for a free slot before new ones are refused (429).
pub const MAX_QUEUED: usize = 32;
/// With replicas, the most bytes of a run's files copied into the shared database.
pub const SHARED_FILES_MAX: u64 = 64 << 20;

/// A new run id: 128 random bits, URL-safe base64 (22 characters).
pub fn new_id() -> String {
    crate::auth::b64(&crate::auth::random::<16>())
}

/// Whether `text` has the shape of a run id (so nothing else reaches the database or
/// becomes a file name).
pub fn is_id(text: &str) -> bool {
    text.len() == 22
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Why a run was not accepted.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The tool's queue is full.
    QueueFull,
    /// The user has this many runs queued or running already.
    UserBusy(usize),
    ShuttingDown,
    /// The run could not be recorded (the disk is full or the database failed).
    Storage(StoreError),
}

/// Everything needed to start a run.
pub struct NewRun {
    pub tool_id: String,
    pub tool_title: String,
    pub user: String,
    /// How it was started: `session`, `forward-auth`, `token:NAME`.
    pub via: String,
    pub args: Vec<RunArg>,
    pub dir: RunDir,
    pub max_output: u64,
    pub max_concurrent: Option<u32>,
    pub plan: Plan,
}

/// The caps on runs.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Runs executing at once, over all tools.
    pub max_runs: usize,
    /// Runs queued or running at once, per user.
    pub per_user: usize,
}

/// Runs waiting and running, by tool and by user.
#[derive(Debug, Default)]
struct Counters {
    queued: usize,
    running: usize,
    queued_by_tool: HashMap<String, usize>,
    active_by_user: HashMap<String, usize>,
}

pub struct Runs {
    store: Arc<dyn Store>,
    audit: Arc<Audit>,
    metrics: Arc<Metrics>,
    /// Runs queued or running, by id.
    live: Mutex<HashMap<String, Arc<Run>>>,
    /// Runs another replica runs that this one follows for its viewers (`follow`).
    remote: Mutex<HashMap<String, std::sync::Weak<Run>>>,
    /// Files read from the shared database at once, at most (`file`).
    file_reads: Semaphore,
    limits: Limits,
    global: Arc<Semaphore>,
    per_tool: Mutex<HashMap<String, (u32, Arc<Semaphore>)>>,
    counters: Mutex<Counters>,
    /// Runs queued or running; shutdown waits for it to reach zero.
    active: watch::Sender<usize>,
    stopping: AtomicBool,
    root: PathBuf,
    sweeper: Arc<Sweeper>,
    retention: Arc<Retention>,
    /// Endings the database refused (a full disk): kept, with their runs in `live`,
    /// until a later try stores them.
    unsaved: Mutex<Vec<Ended>>,
}

/// How often endings the database refused are tried again.
const RETRY_EVERY: Duration = Duration::from_secs(5);
/// How often new output of running runs (while it is small enough for memory) is
/// stored: the most a crash can lose of it.
const SAVE_OUTPUT_EVERY: Duration = Duration::from_millis(250);

impl Runs {
    /// `root` is `runs/` in the state folder (see `runs_root`).
    pub fn new(
        root: PathBuf,
        store: Arc<dyn Store>,
        limits: Limits,
        retention: Retention,
        audit: Arc<Audit>,
        metrics: Arc<Metrics>,
    ) -> Runs {
        Runs {
            store,
            audit,
            metrics,
            live: Mutex::new(HashMap::new()),
            remote: Mutex::new(HashMap::new()),
            file_reads: Semaphore::new(2),
            limits,
            global: Arc::new(Semaphore::new(limits.max_runs.max(1))),
            per_tool: Mutex::new(HashMap::new()),
            counters: Mutex::new(Counters::default()),
            active: watch::channel(0).0,
            stopping: AtomicBool::new(false),
            root,
            sweeper: Sweeper::start(),
            retention: Arc::new(retention),
            unsaved: Mutex::new(Vec::new()),
        }
    }

    /// A fresh private folder for a run (before it exists: uploads land here first).
    pub fn new_dir(&self, id: &str) -> std::io::Result<RunDir> {
        RunDir::create(&self.root, id, &self.sweeper)
    }

    /// A run by id: live, followed (another replica runs it), or from the history.
    pub async fn get(&self, id: &str) -> Option<Arc<Run>> {
        if let Some(run) = self.live.lock().expect("runs lock").get(id) {
            return Some(Arc::clone(run));
        }
        if let Some(run) = self.followed(id) {
            return Some(run);
        }
        let record = match self.store.run(id).await {
            Ok(record) => record?,
            Err(e) => {
                tracing::error!("cannot read run {id} from the history: {e}");
                return None;
            }
        };
        if self.store.shared() && !record.status.is_finished() {
            return Some(self.follow(record).await);
        }
        Some(Arc::new(self.restore(record).await))
    }

    /// A run from the history as a `Run`: its folder, and its output from the log file
    /// or the stored chunks.
    async fn restore(&self, record: RunRecord) -> Run {
        let dir = RunDir::existing(&self.root, &record.id, &self.sweeper);
        let output = if record.in_file {
            match open_private(&dir.log_path()) {
                Some(file) => OutputLog::from_file(
                    file,
                    record.output_len,
                    record.dropped,
                    record.cut.clone(),
                    record.stderr.clone(),
                ),
                None => OutputLog::from_chunks(
                    Vec::new(),
                    record.dropped,
                    record.cut.clone(),
                    Vec::new(),
                ),
            }
        } else {
            let chunks = self
                .store
                .output_chunks(&record.id)
                .await
                .unwrap_or_else(|e| {
                    tracing::error!("cannot read the output of run {}: {e}", record.id);
                    Vec::new()
                });
            OutputLog::from_chunks(
                chunks,
                record.dropped,
                record.cut.clone(),
                record.stderr.clone(),
            )
        };
        Run::restored(record, dir, output)
    }

    /// A page of the history, newest first; runs that are live show their status now.
    pub async fn list(&self, query: RunQuery) -> Result<Vec<RunRecord>, StoreError> {
        let mut rows = self.store.list_runs(query).await?;
        let live = self.live.lock().expect("runs lock");
        for row in &mut rows {
            if let Some(run) = live.get(&row.id) {
                row.status = run.status();
                row.duration = run.duration();
            }
        }
        Ok(rows)
    }

    pub fn queued(&self) -> usize {
        self.counters.lock().expect("counters lock").queued
    }

    pub fn running(&self) -> usize {
        self.counters.lock().expect("counters lock").running
    }

    /// Returns once no run is queued or running.
    pub async fn idle(&self) {
        let _ = self.active.subscribe().wait_for(|n| *n == 0).await;
    }

    /// Accepts a run, records it, and starts it as soon as the caps allow.
    pub async fn start(self: &Arc<Self>, id: String, new: NewRun) -> Result<Arc<Run>, Refusal> {
        if self.stopping.load(Ordering::SeqCst) {
            return Err(Refusal::ShuttingDown);
        }
        self.reserve(&new.user, &new.tool_id)?;
        let output = OutputLog::create(new.dir.log_path(), new.max_output);
        let run = Arc::new(Run::fresh(run::Fresh {
            id: id.clone(),
            tool_id: new.tool_id.clone(),
            tool_title: new.tool_title,
            user: new.user.clone(),
            via: new.via,
            args: new.args.into_iter().map(RunArg::bounded).collect(),
            dir: new.dir,
            output,
            store: Arc::clone(&self.store),
        }));
        let recorded = if self.store.shared() {
            // The cap counts the user's runs on every replica.
            let per_user = self.limits.per_user;
            match self.store.insert_run_capped(&run.record(), per_user).await {
                Ok(true) => Ok(()),
                Ok(false) => Err(Refusal::UserBusy(per_user)),
                Err(e) => Err(Refusal::Storage(e)),
            }
        } else {
            self.store
                .insert_run(&run.record())
                .await
                .map_err(Refusal::Storage)
        };
        if let Err(refusal) = recorded {
            self.release(&new.user, Some(&new.tool_id));
            return Err(refusal);
        }
        run.dir.keep();
        self.live
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
        });
        Ok(run)
    }

    /// Counts a new run against its user's and its tool's caps, or refuses it.
    fn reserve(&self, user: &str, tool: &str) -> Result<(), Refusal> {
        let mut c = self.counters.lock().expect("counters lock");
        let active = c.active_by_user.get(user).copied().unwrap_or(0);
        if active >= self.limits.per_user {
            return Err(Refusal::UserBusy(active));
        }
        if c.queued_by_tool.get(tool).copied().unwrap_or(0) >= MAX_QUEUED {
            return Err(Refusal::QueueFull);
        }
        *c.active_by_user.entry(user.to_string()).or_default() += 1;
        *c.queued_by_tool.entry(tool.to_string()).or_default() += 1;
        c.queued += 1;
        Ok(())
    }

    /// Gives back a user's place (and the tool's queue place, when still queued).
    fn release(&self, user: &str, queued_tool: Option<&str>) {
        let mut c = self.counters.lock().expect("counters lock");
        decrement(&mut c.active_by_user, user);
        if let Some(tool) = queued_tool {
            decrement(&mut c.queued_by_tool, tool);
            c.queued -= 1;
        }
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
        // A slot freed by a run that shutdown stopped is not for a queued run: it
        // would start only to be stopped.
        let permits = permits.filter(|_| !self.stopping.load(Ordering::SeqCst));
        {
            let mut c = self.counters.lock().expect("counters lock");
            decrement(&mut c.queued_by_tool, &run.tool_id);
            c.queued -= 1;
            if permits.is_some() {
                c.running += 1;
            }
        }
        let status = match permits {
            // Stopped while it waited: it never ran, and it ends here all the same.
            None if *stop.borrow() == Stop::Cancel => Status::Cancelled(None),
            None => Status::Interrupted(None, Cause::Shutdown),
            Some(_permits) => {
                run.set_running();
                let ending = exec::execute(&plan, run.as_ref(), stop).await;
                self.counters.lock().expect("counters lock").running -= 1;
                Status::from_ending(ending)
            }
        };
        self.finish(&run, status).await;
    }

    /// Commits how a run ended, then lets viewers see it, audits it, and lets it go.
    /// If the database refuses (a full disk), the run stays in memory, as it ended,
    /// until a later try stores it.
    async fn finish(&self, run: &Run, status: Status) {
        let mut end = run.ending(status);
        if self.store.shared() && end.in_file {
            // Other replicas read output from the database, never from this replica's
            // file: the rest of it goes there first (queued before the ending).
            for chunk in run.output.unsaved_chunks(true) {
                drop(self.store.append_output(&run.id, chunk));
            }
            end.in_file = false;
        }
        if self.store.shared() {
            self.share_files(run, &end.files).await;
        }
        let saved = self.store.finish_run(end.clone()).await;
        // The user's place is free before anyone hears the run ended: a client that
        // starts the next run on that answer must not find it still taken.
        self.release(&run.user, None);
        run.set_finished(&end);
        self.metrics.run_finished(
            &run.tool_id,
            end.status.word(),
            end.duration.map(|d| d.as_secs_f64()),
        );
        let facts = run.output.facts();
        let ended = Ended {
            user: run.user.clone(),
            tool: run.tool_id.clone(),
            output_bytes: facts.kept + facts.dropped,
            end,
        };
        self.retention.finished(ended.end.disk_bytes);
        match saved {
            Ok(()) => {
                audit_end(&self.audit, &ended);
                self.live.lock().expect("runs lock").remove(&run.id);
            }
            Err(e) => {
                // Its run-end is audited once it is stored: a crash before that leaves
                // it unfinished in the database, and the next start audits it then.
                tracing::error!(
                    "cannot record how run {} ended ({e}); ftw keeps it in memory and tries again",
                    run.id
                );
                self.unsaved.lock().expect("unsaved lock").push(ended);
            }
        }
        self.active.send_modify(|n| *n -= 1);
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

    /// Keeps the history within its limits and the database tidy, and stores
    /// endings the database refused earlier, until ftw stops (see `retention`).
    pub async fn upkeep(self: Arc<Self>) {
        let retention = Arc::clone(&self.retention);
        let retries = async {
            loop {
                tokio::time::sleep(RETRY_EVERY).await;
                self.save_unsaved().await;
            }
        };
        let output = async {
            loop {
                tokio::time::sleep(SAVE_OUTPUT_EVERY).await;
                self.save_output();
            }
        };
        let replicas = self.replica_upkeep();
        let root = self.root.clone();
        let housekeeping =
            retention.upkeep(Arc::clone(&self.store), root, Arc::clone(&self.sweeper));
        tokio::join!(housekeeping, retries, output, replicas);
    }

    /// With replicas: cancels asked on other replicas reach this one's runs (at once
    /// when notified, else within a second), and the runs of replicas that died are
    /// closed. Returns at once with a store of its own.
    async fn replica_upkeep(&self) {
        if !self.store.shared() {
            return;
        }
        let mut changes = self.store.run_changes();
        let mut recovered = std::time::Instant::now();
        loop {
            let wake = async {
                match changes.as_mut() {
                    Some(rx) => loop {
                        match rx.recv().await {
                            Ok(id) if self.live.lock().expect("runs lock").contains_key(&id) => {
                                return;
                            }
                            Ok(_) => {}
                            Err(_) => return,
                        }
                    },
                    None => std::future::pending().await,
                }
            };
            let _ = tokio::time::timeout(Duration::from_secs(1), wake).await;
            // This replica's own output wakes it too: look at most five times a second.
            tokio::time::sleep(Duration::from_millis(200)).await;
            match self.store.cancel_requests().await {
                Ok(ids) => {
                    for id in ids {
                        let run = self.live.lock().expect("runs lock").get(&id).cloned();
                        if let Some(run) = run {
                            run.cancel();
                        }
                    }
                }
                Err(e) => tracing::warn!("cannot read cancels asked of this replica: {e}"),
            }
            if recovered.elapsed() >= crate::store::postgres::HEARTBEAT_EVERY {
                recovered = std::time::Instant::now();
                if let Err(e) = self.recover().await {
                    tracing::warn!("cannot look for runs of replicas that died: {e}");
                }
            }
        }
    }

    /// With replicas: copies the files a run wrote into the database (queued before its
    /// ending), up to `SHARED_FILES_MAX` bytes a run; larger ones stay in this
    /// replica's state folder, and only this replica serves them.
    async fn share_files(&self, run: &Run, files: &[OutputFile]) {
        let mut budget = SHARED_FILES_MAX;
        let mut opened = Vec::new();
        for listed in files {
            if listed.size > budget {
                tracing::warn!(
                    "run {}: {:?} is too large to share with other replicas ({} bytes); only this replica serves it",
                    run.id,
                    listed.name,
                    listed.size
                );
                continue;
            }
            // Not `run.file`: the run's listing is put in force after this.
            if let Some(file) = run.dir.open_output_file(&listed.name) {
                budget -= listed.size;
                opened.push((listed.clone(), file));
            }
        }
        // Read off the async threads: up to 64 MiB of disk reads.
        let read = tokio::task::spawn_blocking(move || {
            use std::io::Read;
            opened
                .into_iter()
                .filter_map(|(listed, file)| {
                    let mut bytes = Vec::new();
                    (&file).take(listed.size).read_to_end(&mut bytes).ok()?;
                    Some((listed.name, bytes))
                })
                .collect::<Vec<_>>()
        });
        for (name, bytes) in read.await.unwrap_or_default() {
            drop(self.store.add_run_file(&run.id, &name, bytes));
        }
    }

    /// A file a run wrote, by its listed name: from this replica's state folder, or,
    /// with replicas, from the database (through an unnamed temporary file, so it is
    /// streamed like any other).
    pub async fn file(&self, run: &Run, name: &str) -> Option<(OutputFile, std::fs::File)> {
        if let Some(found) = run.file(name) {
            return Some(found);
        }
        let listed = run.listed_file(name)?;
        if !self.store.shared() {
            return None;
        }
        // Each read holds the whole file (up to 64 MiB) for a moment: a few at a time.
        let _turn = self.file_reads.acquire().await.ok()?;
        let bytes = match self.store.run_file(&run.id, name).await {
            Ok(bytes) => bytes?,
            Err(e) => {
                tracing::error!(
                    "cannot read {name:?} of run {} from the database: {e}",
                    run.id
                );
                return None;
            }
        };
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || {
            use std::io::Write;
            let mut file = tempfile::tempfile_in(root).ok()?;
            file.write_all(&bytes).ok()?;
            Some((listed, file))
        })
        .await
        .ok()?
    }

    /// The runs in memory now (queued, running, or ended and not yet stored).
    fn live_runs(&self) -> Vec<Arc<Run>> {
        let live = self.live.lock().expect("runs lock");
        live.values().cloned().collect()
    }

    /// Stores what running runs printed since the last time (while their output is in
    /// memory; a log file needs no copy).
    fn save_output(&self) {
        let live = self.live_runs();
        for run in live.iter().filter(|r| !r.status().is_finished()) {
            for chunk in run.output.unsaved_chunks(self.store.shared()) {
                drop(self.store.append_output(&run.id, chunk));
            }
        }
    }

    /// Tries again to store the endings the database refused; the runs stored leave
    /// memory.
    async fn save_unsaved(&self) {
        let waiting = std::mem::take(&mut *self.unsaved.lock().expect("unsaved lock"));
        for ended in waiting {
            match self.store.finish_run(ended.end.clone()).await {
                Ok(()) => {
                    tracing::info!("recorded how run {} ended, after all", ended.end.id);
                    audit_end(&self.audit, &ended);
                    self.live.lock().expect("runs lock").remove(&ended.end.id);
                }
                Err(_) => self.unsaved.lock().expect("unsaved lock").push(ended),
            }
        }
    }

    /// Whether shutdown has begun (new runs are refused).
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Refuses new runs, sends SIGTERM to every running tool (queued runs end at once),
    /// gives them `grace` to exit, then SIGKILL, and commits what is left to write.
    pub async fn shutdown(&self, grace: Duration) {
        self.stopping.store(true, Ordering::SeqCst);
        let live = self.live_runs();
        for run in &live {
            run.shut_down();
        }
        let mut active = self.active.subscribe();
        if tokio::time::timeout(grace, active.wait_for(|n| *n == 0))
            .await
            .is_err()
        {
            let left = self.live_runs();
            tracing::warn!(
                "the grace period ended with {} run(s) still going; killing them",
                left.len()
            );
            for run in left {
                run.kill();
            }
            let _ = tokio::time::timeout(exec::KILL_GRACE, active.wait_for(|n| *n == 0)).await;
        }
        self.save_unsaved().await;
        if let Err(e) = self.store.flush().await {
            tracing::error!("cannot commit the last records: {e}");
        }
        if let Err(e) = self.store.leave().await {
            tracing::warn!("cannot tell the other replicas that this one stops: {e}");
        }
    }
}

fn decrement(map: &mut HashMap<String, usize>, key: &str) {
    if let Some(n) = map.get_mut(key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            map.remove(key);
        }
    }
}

/// Opens a run's log file read-only, never through a symlink.
fn open_private(path: &std::path::Path) -> Option<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .ok()
}

/// How a run ended, with what its audit `run-end` record says besides.
struct Ended {
    user: String,
    tool: String,
    output_bytes: u64,
    end: FinishedRun,
}

/// Writes the one `run-end` record of a run, however it ended.
fn audit_end(audit: &Audit, ended: &Ended) {
    let end = &ended.end;
    let mut fields = serde_json::json!({
        "user": ended.user,
        "tool": ended.tool,
        "run": end.id,
        "status": end.status.word(),
        "exit_code": end.status.exit_code(),
        "signal": end.status.signal(),
        "duration_ms": end.duration.map(|d| d.as_millis() as u64),
        "output_bytes": ended.output_bytes,
    });
    if let Status::Interrupted(_, cause) = end.status {
        fields["reason"] = serde_json::json!(cause.word());
    }
    audit.record("run-end", fields);
}
