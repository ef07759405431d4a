//! After a crash: runs the database still calls queued or running were interrupted
//! when the last ftw died. Before serving, the next start kills what is left of their
//! process groups (only processes provably theirs, see `process`), keeps the output
//! they wrote so far, marks them `interrupted` with the time ftw was last seen alive,
//! and writes the `run-end` audit record that the dead ftw never wrote.

use std::time::SystemTime;

use super::{Cause, RunDir, process};
use super::{Ended, Runs, Status, audit_end};
use crate::store::{FinishedRun, Orphan, RunRecord, StoreError};

impl Runs {
    /// Closes the runs a previous ftw left unfinished; returns how many there were.
    /// Only reading them can fail: an ending the database refuses is kept and stored
    /// later, as for a run that ends while the disk is full.
    pub async fn recover(&self) -> Result<usize, StoreError> {
        let orphans = self.store.orphaned_runs().await?;
        if orphans.is_empty() {
            return Ok(0);
        }
        for Orphan { record, last_seen } in &orphans {
            let last_seen = *last_seen;
            if let Some(mark) = &record.process {
                let killed = process::kill_leftovers(mark, &record.id);
                if killed > 0 {
                    tracing::warn!(
                        "killed {killed} process(es) left running by interrupted run {} ({})",
                        record.id,
                        record.tool
                    );
                }
            }
            let end = self.interrupted(record, last_seen).await;
            let ended = Ended {
                user: record.user.clone(),
                tool: record.tool.clone(),
                output_bytes: end.output_len,
                end,
            };
            match self.store.finish_run(ended.end.clone()).await {
                Ok(()) => audit_end(&self.audit, &ended),
                Err(e) => {
                    // Serve all the same; upkeep stores it (and audits it) later.
                    tracing::error!("cannot record that run {} was interrupted: {e}", record.id);
                    self.unsaved.lock().expect("unsaved lock").push(ended);
                }
            }
        }
        if self.store.shared() {
            tracing::warn!(
                "{} run(s) of a replica that stopped answering are marked interrupted",
                orphans.len()
            );
        } else {
            tracing::warn!(
                "{} run(s) were still going when ftw last stopped; they are marked interrupted",
                orphans.len()
            );
        }
        Ok(orphans.len())
    }

    /// How an unfinished run is closed: its output as far as it got (the log file if
    /// it had one, else its stored chunks), its files, and the time ftw was last seen.
    async fn interrupted(&self, record: &RunRecord, last_seen: Option<SystemTime>) -> FinishedRun {
        let dir = RunDir::existing(&self.root, &record.id, &self.sweeper);
        let chunks = self
            .store
            .output_chunks(&record.id)
            .await
            .unwrap_or_default();
        let stored: u64 = chunks.iter().map(|c| c.bytes.len() as u64).sum();
        let file_len = std::fs::symlink_metadata(dir.log_path())
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len());
        let (output_len, in_file) = match file_len {
            Some(len) if len >= stored => (len, true),
            _ => (stored, false),
        };
        let start = record.started.unwrap_or(record.created);
        let ended = last_seen.map_or(start, |seen| seen.max(start));
        let files = dir.list_output();
        let disk_bytes = files.iter().map(|f| f.size).sum::<u64>()
            + if in_file { output_len } else { 0 }
            + dir.uploads_size();
        let stderr = if in_file {
            let mut ranges = Vec::new();
            let mut at = 0;
            for c in &chunks {
                let len = c.bytes.len() as u64;
                if c.stderr && c.offset == at {
                    ranges.push(at..at + len);
                }
                at = c.offset + len;
            }
            ranges
        } else {
            Vec::new()
        };
        FinishedRun {
            id: record.id.clone(),
            status: Status::Interrupted(None, Cause::Crash),
            ended,
            duration: record.started.and_then(|s| ended.duration_since(s).ok()),
            output_len,
            dropped: 0,
            cut: None,
            in_file,
            output: None,
            stderr,
            files,
            disk_bytes,
        }
    }
}
