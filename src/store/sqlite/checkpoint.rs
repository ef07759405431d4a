//! Checkpoints off the write path. A WAL checkpoint copies committed pages into the
//! database file and makes both durable with `fsync`, which on a busy or slow disk
//! takes milliseconds to tens of them. Done by the writer (SQLite's default), every
//! run whose commit came next would wait for it; here a thread of its own runs a
//! PASSIVE checkpoint once a second, which never blocks the writer or readers.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::Connection;

const EVERY: Duration = Duration::from_secs(1);

/// The checkpoint thread; it stops (after a last checkpoint) when this is dropped.
pub struct Checkpointer {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Checkpointer {
    pub fn start(path: &Path) -> Result<Checkpointer, String> {
        let (stop, stopped) = mpsc::channel::<()>();
        let path: PathBuf = path.to_path_buf();
        let thread = std::thread::Builder::new()
            .name("ftw-checkpoint".into())
            .spawn(move || run(&path, &stopped))
            .map_err(|e| format!("cannot start the database's checkpoint thread: {e}"))?;
        Ok(Checkpointer {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(path: &Path, stopped: &mpsc::Receiver<()>) {
    let conn = match Connection::open(path) {
        Ok(conn) => conn,
        Err(e) => {
            tracing::error!("cannot open the state database for checkpoints: {e}");
            return;
        }
    };
    let _ = conn.busy_timeout(Duration::from_secs(5));
    loop {
        let last = matches!(
            stopped.recv_timeout(EVERY),
            Err(mpsc::RecvTimeoutError::Disconnected) | Ok(())
        );
        if let Err(e) = conn.pragma_update(None, "wal_checkpoint", "PASSIVE") {
            tracing::warn!("a checkpoint of the state database failed: {e}");
        }
        if last {
            return;
        }
    }
}
