//! Runs another replica runs, watched from this one. When a page or the API asks
//! this replica for a run that the shared database says is still queued or running,
//! and it is not in this replica's memory, another replica runs it. This replica then
//! follows it: one `Run` per run (however many viewers), made from what the owner
//! stored so far, and a task that looks again whenever the owner stores something
//! about it (its notification, see `store::postgres::listen`) and at least every
//! second: new output chunks, its status, and at the end its files and how it ended.
//! The task stops when the run ends or when no viewer holds the run any more.
//!
//! The owner stores output a few times a second (`Runs::save_output`), so a viewer on
//! another replica sees output at most about half a second after the tool printed it.

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::broadcast;

use super::{OutputLog, Run, RunDir, Runs};
use crate::store::{Chunk, RunRecord, Store};

/// The longest a follower waits without a notification before it looks anyway.
const LOOK_EVERY: Duration = Duration::from_secs(1);

impl Runs {
    /// The run `record` describes, followed here: the one already followed, or a new
    /// one with its follower started.
    pub(super) async fn follow(&self, record: RunRecord) -> Arc<Run> {
        if let Some(run) = self.followed(&record.id) {
            return run;
        }
        let chunks = self
            .store
            .output_chunks(&record.id)
            .await
            .unwrap_or_default();
        let output = OutputLog::following(chunks, record.dropped, record.cut.clone());
        let dir = RunDir::existing(&self.root, &record.id, &self.sweeper);
        let id = record.id.clone();
        let run = Arc::new(Run::following(record, dir, output, Arc::clone(&self.store)));
        let mut remote = self.remote.lock().expect("runs lock");
        if let Some(other) = remote.get(&id).and_then(Weak::upgrade) {
            // Another viewer started following it meanwhile.
            return other;
        }
        remote.retain(|_, run| run.strong_count() > 0);
        remote.insert(id, Arc::downgrade(&run));
        tokio::spawn(follow(
            Arc::clone(&self.store),
            Arc::downgrade(&run),
            self.store.run_changes(),
        ));
        run
    }

    /// The run with this id if this replica follows it now.
    pub(super) fn followed(&self, id: &str) -> Option<Arc<Run>> {
        let remote = self.remote.lock().expect("runs lock");
        remote.get(id).and_then(Weak::upgrade)
    }
}

/// Keeps `run` up to date until it ends or nobody holds it.
async fn follow(
    store: Arc<dyn Store>,
    run: Weak<Run>,
    mut changes: Option<broadcast::Receiver<String>>,
) {
    let Some(id) = run.upgrade().map(|r| r.id.clone()) else {
        return;
    };
    loop {
        wait_for(&mut changes, &id).await;
        let Some(run) = run.upgrade() else { return };
        let record = match store.run(&id).await {
            Ok(Some(record)) => record,
            // Gone from the history (retention): nothing more will come.
            Ok(None) => return,
            Err(e) => {
                tracing::warn!("cannot follow run {id}: {e}");
                continue;
            }
        };
        let finished = record.status.is_finished();
        // At its end the owner may store the whole output as one chunk in place of
        // the pieces: read it all then, and take what is new.
        let chunks = if finished {
            store.output_chunks(&id).await
        } else {
            store.output_chunks_since(&id, run.output_len()).await
        };
        let mut added = false;
        for chunk in chunks.unwrap_or_default() {
            if let Some(new) = new_part(&chunk, run.output_len()) {
                added |= run.output.follow(&new);
            }
        }
        if finished {
            run.output.follow_end(record.dropped, record.cut.clone());
        }
        run.followed(&record, added);
        if finished {
            return;
        }
    }
}

/// The part of `chunk` at or after byte `len`, if any.
fn new_part(chunk: &Chunk, len: u64) -> Option<Chunk> {
    let end = chunk.offset + chunk.bytes.len() as u64;
    if end <= len || chunk.offset > len {
        return None;
    }
    let skip = (len - chunk.offset) as usize;
    Some(Chunk {
        offset: len,
        stderr: chunk.stderr,
        bytes: chunk.bytes[skip..].to_vec(),
    })
}

/// Waits until the store says something about run `id`, or `LOOK_EVERY` passed.
async fn wait_for(changes: &mut Option<broadcast::Receiver<String>>, id: &str) {
    let Some(rx) = changes else {
        tokio::time::sleep(LOOK_EVERY).await;
        return;
    };
    let _ = tokio::time::timeout(LOOK_EVERY, async {
        loop {
            match rx.recv().await {
                Ok(changed) if changed == id => return,
                Ok(_) => {}
                // Missed some: one of them may have been this run's.
                Err(broadcast::error::RecvError::Lagged(_)) => return,
                Err(broadcast::error::RecvError::Closed) => {
                    std::future::pending::<()>().await;
                }
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_is_new_of_a_chunk_is_taken() {
        let chunk = Chunk {
            offset: 10,
            stderr: true,
            bytes: b"abcdef".to_vec(),
        };
        assert_eq!(new_part(&chunk, 10).unwrap().bytes, b"abcdef");
        let tail = new_part(&chunk, 13).unwrap();
        assert_eq!(
            (tail.offset, tail.bytes.as_slice(), tail.stderr),
            (13, &b"def"[..], true)
        );
        assert!(new_part(&chunk, 16).is_none(), "all of it is here");
        assert!(new_part(&chunk, 5).is_none(), "a gap before it");
    }
}
