//! How long runs stay: at most `keep_runs` finished runs, none older than `keep_for`,
//! and the state folder (database and run files) within `max_state_size`. The oldest
//! go first, record and files together, in the background: a run that ends never
//! waits for old ones to be removed.
//!
//! The same loop keeps the database tidy: a heartbeat every few seconds (the time an
//! interrupted run is said to have ended after a crash), and once an hour expired
//! revocations and stale throttle keys are forgotten and freed pages given back.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use tokio::sync::Notify;

use super::{Sweeper, run_paths};
use crate::store::Store;

const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);
/// Heartbeats between retention checks that nothing woke.
const CHECK_EVERY: u32 = 12;
/// Heartbeats between tidy-ups of the database.
const TIDY_EVERY: u32 = 720;
/// Runs removed per database write.
const BATCH: usize = 500;

/// The limits, and what the history holds now.
#[derive(Debug, Default)]
pub struct Retention {
    /// Finished runs kept at most.
    pub keep: u64,
    /// Finished runs older than this go.
    pub keep_for: Option<Duration>,
    /// Bytes the state folder may take (database and run files).
    pub max_size: Option<u64>,
    finished: AtomicU64,
    disk_bytes: AtomicU64,
    /// The counts above have been read from the database.
    counted: AtomicBool,
    wake: Notify,
}

impl Retention {
    pub fn new(keep: u64, keep_for: Option<Duration>, max_size: Option<u64>) -> Retention {
        Retention {
            keep,
            keep_for,
            max_size,
            ..Retention::default()
        }
    }

    /// A run ended: count it, and wake the loop once the history is over a limit by a
    /// margin (1%, at least 10 runs), so old runs go in batches rather than one per run
    /// that ends: at most 10,000 runs, the 10,101st wakes it, and it removes 101.
    pub fn finished(&self, disk_bytes: u64) {
        let count = self.finished.fetch_add(1, Ordering::SeqCst) + 1;
        let bytes = self.disk_bytes.fetch_add(disk_bytes, Ordering::SeqCst) + disk_bytes;
        let slack = (self.keep / 100).max(10);
        let over =
            count > self.keep + slack || self.max_size.is_some_and(|max| bytes > max - max / 100);
        if over && self.counted.load(Ordering::SeqCst) {
            self.wake.notify_one();
        }
    }

    /// The loop: runs until ftw stops (the task is dropped with the runtime).
    pub async fn upkeep(&self, store: Arc<dyn Store>, root: PathBuf, sweeper: Arc<Sweeper>) {
        match store.counts().await {
            Ok(counts) => {
                self.finished.fetch_add(counts.finished, Ordering::SeqCst);
                self.disk_bytes
                    .fetch_add(counts.disk_bytes, Ordering::SeqCst);
                self.counted.store(true, Ordering::SeqCst);
            }
            Err(e) => tracing::error!("cannot count the runs in the history: {e}"),
        }
        let mut beats: u32 = 0;
        loop {
            if beats.is_multiple_of(CHECK_EVERY) && store.shared() {
                // Other replicas finish and remove runs too: count from the database.
                self.recount(store.as_ref()).await;
                sweep_departed(store.as_ref(), &root, &sweeper).await;
            }
            if beats.is_multiple_of(CHECK_EVERY) && self.counted.load(Ordering::SeqCst) {
                self.enforce(store.as_ref(), &root, &sweeper).await;
            }
            if beats.is_multiple_of(TIDY_EVERY)
                && let Err(e) = store.tidy(crate::auth::now()).await
            {
                tracing::warn!("cannot tidy the state database: {e}");
            }
            drop(store.heartbeat(SystemTime::now()));
            beats = beats.wrapping_add(1);
            tokio::select! {
                () = tokio::time::sleep(HEARTBEAT_EVERY) => {}
                () = self.wake.notified() => {
                    self.enforce(store.as_ref(), &root, &sweeper).await;
                }
            }
        }
    }

    /// Sets the counts to the database's (replicas: each sees only its own endings).
    async fn recount(&self, store: &dyn Store) {
        match store.counts().await {
            Ok(counts) => {
                self.finished.store(counts.finished, Ordering::SeqCst);
                self.disk_bytes.store(counts.disk_bytes, Ordering::SeqCst);
                self.counted.store(true, Ordering::SeqCst);
            }
            Err(e) => tracing::warn!("cannot count the runs in the history: {e}"),
        }
    }

    /// Removes the oldest runs while the history is over a limit.
    async fn enforce(&self, store: &dyn Store, root: &std::path::Path, sweeper: &Sweeper) {
        // By count.
        loop {
            let excess = self
                .finished
                .load(Ordering::SeqCst)
                .saturating_sub(self.keep);
            if excess == 0 {
                break;
            }
            let batch = usize::try_from(excess).unwrap_or(BATCH).min(BATCH);
            if !self.remove_oldest(store, root, sweeper, batch, None).await {
                break;
            }
        }
        // By age.
        if let Some(age) = self.keep_for {
            let before = SystemTime::now().checked_sub(age);
            while before.is_some()
                && self
                    .remove_oldest(store, root, sweeper, BATCH, before)
                    .await
            {}
        }
        // By size: the database's share of a run is its average size there.
        if let Some(max) = self.max_size {
            let database = store.size().await.unwrap_or(0);
            let files = self.disk_bytes.load(Ordering::SeqCst);
            // Over the budget: down to 99% of it, so the next runs do not each
            // remove one.
            let over = (database + files).saturating_sub(max - max / 100);
            if database + files > max {
                let runs = self.finished.load(Ordering::SeqCst).max(1);
                let per_run = database / runs;
                self.remove_for_space(store, root, sweeper, over, per_run)
                    .await;
                // Freed pages go back to the file system now.
                if let Err(e) = store.tidy(crate::auth::now()).await {
                    tracing::warn!("cannot tidy the state database: {e}");
                }
            }
        }
    }

    /// Removes up to `limit` of the oldest finished runs (that ended before
    /// `ended_before`, when given); false when there was nothing to remove.
    async fn remove_oldest(
        &self,
        store: &dyn Store,
        root: &std::path::Path,
        sweeper: &Sweeper,
        limit: usize,
        ended_before: Option<SystemTime>,
    ) -> bool {
        match store.oldest_runs(limit, ended_before).await {
            Ok(oldest) if !oldest.is_empty() => self.remove(store, root, sweeper, oldest).await,
            Ok(_) => false,
            Err(e) => {
                tracing::error!("cannot read the oldest runs: {e}");
                false
            }
        }
    }

    /// Removes the oldest runs until about `over` bytes are freed.
    async fn remove_for_space(
        &self,
        store: &dyn Store,
        root: &std::path::Path,
        sweeper: &Sweeper,
        over: u64,
        per_run: u64,
    ) {
        let mut freed = 0;
        while freed < over {
            let oldest = match store.oldest_runs(BATCH, None).await {
                Ok(oldest) if !oldest.is_empty() => oldest,
                _ => {
                    tracing::warn!(
                        "the state folder is over max_state_size and no finished run is left to remove"
                    );
                    return;
                }
            };
            let mut chosen = Vec::new();
            for (id, bytes) in oldest {
                if freed >= over {
                    break;
                }
                freed += bytes + per_run;
                chosen.push((id, bytes));
            }
            if !self.remove(store, root, sweeper, chosen).await {
                return;
            }
        }
    }

    /// Removes runs from the database, then their files; false if the database
    /// refused.
    async fn remove(
        &self,
        store: &dyn Store,
        root: &std::path::Path,
        sweeper: &Sweeper,
        runs: Vec<(String, u64)>,
    ) -> bool {
        let ids: Vec<String> = runs.iter().map(|(id, _)| id.clone()).collect();
        if let Err(e) = store.delete_runs(ids).await {
            tracing::error!("cannot remove old runs from the history: {e}");
            return false;
        }
        let bytes: u64 = runs.iter().map(|(_, b)| b).sum();
        sweeper.bury(runs.iter().flat_map(|(id, _)| run_paths(root, id)));
        sub(&self.finished, runs.len() as u64);
        sub(&self.disk_bytes, bytes);
        true
    }
}

/// With replicas, another replica's retention may remove a run whose folders are in
/// this replica's state folder: the folders of runs the history no longer has go
/// (those a few minutes old: a folder is made just before its run is recorded).
async fn sweep_departed(store: &dyn Store, root: &std::path::Path, sweeper: &Sweeper) {
    let old_enough = |meta: &std::fs::Metadata| {
        meta.modified()
            .ok()
            .and_then(|m| m.elapsed().ok())
            .is_some_and(|age| age > SWEEP_AFTER)
    };
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    let mut ids: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.metadata().is_ok_and(|m| old_enough(&m)))
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let id = name.split('.').next()?.to_string();
            super::is_id(&id).then_some(id)
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    for batch in ids.chunks(BATCH) {
        let kept = match store.runs_kept(batch.to_vec()).await {
            Ok(kept) => kept,
            Err(e) => {
                tracing::warn!("cannot tidy the runs folder: {e}");
                return;
            }
        };
        let gone = batch.iter().filter(|id| !kept.contains(id));
        sweeper.bury(gone.flat_map(|id| run_paths(root, id)));
    }
}

/// How old a run's folder must be before a replica removes it for want of its run.
const SWEEP_AFTER: Duration = Duration::from_secs(600);

fn sub(counter: &AtomicU64, n: u64) {
    let _ = counter.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| {
        Some(v.saturating_sub(n))
    });
}
