//! The store in an embedded SQLite database (`ftw.db` in the state folder), with
//! rusqlite and SQLite built in, so ftw needs no database server and no system library.
//!
//! WAL journal with `synchronous = NORMAL`: a commit is a write to the log, and survives
//! ftw being killed at any moment (only a power cut can lose the last commits). One
//! thread owns the connection that writes; it takes every write queued since its last
//! commit and commits them together (group commit), each inside a savepoint so one
//! failing write does not take the others down. Reads run on tokio's blocking pool over
//! a few read-only connections, which WAL lets proceed while the writer commits, and
//! checkpoints (the only `fsync`s) on a thread of their own (`checkpoint`).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, SystemTime};

use rusqlite::{Connection, OpenFlags};
use tokio::sync::oneshot;

use super::records::*;
use super::{Pending, Store, StoreError, StoreResult, schema};

mod auth;
mod checkpoint;

mod passkeys;
mod runs;
mod schedules;

/// The database file's name in the state folder.
pub const FILE_NAME: &str = "ftw.db";
/// Writes committed together at most.
const MAX_BATCH: usize = 512;
/// Read connections kept open between reads.
const IDLE_READERS: usize = 4;

type Write = Box<dyn FnOnce(&Connection) -> rusqlite::Result<()> + Send>;

/// Where a write's outcome goes once it is committed (or failed).
type Ack = oneshot::Sender<StoreResult<()>>;

struct Job {
    write: Write,
    done: Option<Ack>,
}

pub struct Sqlite {
    path: PathBuf,
    writer: Mutex<Option<mpsc::Sender<Job>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    readers: Arc<Mutex<Vec<Connection>>>,
    checkpoints: Mutex<Option<checkpoint::Checkpointer>>,
}

impl Sqlite {
    /// Opens (or creates, mode 0600) the database in `dir`, brings its schema up to
    /// date, and starts the writer thread.
    pub fn open(dir: &Path) -> Result<Sqlite, String> {
        let path = dir.join(FILE_NAME);
        create_private(&path)?;
        let mut conn = Connection::open(&path).map_err(|e| open_error(&path, &e))?;
        configure(&conn, &path)?;
        schema::migrate(&mut conn, &path)?;
        let (tx, rx) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("ftw-store".into())
            .spawn(move || write_loop(conn, rx))
            .map_err(|e| format!("cannot start the database thread: {e}"))?;
        let checkpoints = checkpoint::Checkpointer::start(&path)?;
        Ok(Sqlite {
            path,
            writer: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
            readers: Arc::new(Mutex::new(Vec::new())),
            checkpoints: Mutex::new(Some(checkpoints)),
        })
    }

    /// Commits what is queued and stops the writer (ftw is stopping).
    pub fn close(&self) {
        drop(self.checkpoints.lock().expect("store lock").take());
        let sender = self.writer.lock().expect("store lock").take();
        drop(sender);
        if let Some(thread) = self.thread.lock().expect("store lock").take() {
            let _ = thread.join();
        }
    }

    /// Queues a write; the future resolves once it is committed.
    fn write(&self, write: Write) -> Pending<()> {
        let (done, answer) = oneshot::channel();
        let queued = match &*self.writer.lock().expect("store lock") {
            Some(tx) => tx
                .send(Job {
                    write,
                    done: Some(done),
                })
                .is_ok(),
            None => false,
        };
        super::committed(queued, answer)
    }

    /// Queues a write whose answer the caller needs (a claim: did this call win?); the
    /// answer comes once the write is committed. The writer thread takes writes one by
    /// one, so the check and the change inside `work` are one step.
    fn write_answered<T, F>(&self, work: F) -> Pending<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let answer = Arc::new(Mutex::new(None));
        let slot = Arc::clone(&answer);
        let written = self.write(Box::new(move |c| {
            *slot.lock().expect("answer lock") = Some(work(c)?);
            Ok(())
        }));
        Box::pin(async move {
            written.await?;
            answer
                .lock()
                .expect("answer lock")
                .take()
                .ok_or_else(|| StoreError::failure("a committed write left no answer"))
        })
    }

    /// Runs a read on the blocking pool over a read-only connection.
    fn read<T, F>(&self, read: F) -> Pending<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let readers = Arc::clone(&self.readers);
        let path = self.path.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let conn = match readers.lock().expect("store lock").pop() {
                    Some(conn) => conn,
                    None => open_reader(&path)?,
                };
                let result = read(&conn).map_err(|e| store_error(&e));
                let mut idle = readers.lock().expect("store lock");
                if idle.len() < IDLE_READERS {
                    idle.push(conn);
                }
                result
            })
            .await
            .unwrap_or_else(|e| Err(StoreError::failure(&format!("a database read failed: {e}"))))
        })
    }
}

impl Drop for Sqlite {
    fn drop(&mut self) {
        self.close();
    }
}

/// Makes the database file (0600) if it is not there, and checks the one that is: a
/// regular file (not a symlink) of ftw's own, narrowed to 0600 if it was wider. SQLite
/// then opens it by name, and its `-wal` and `-shm` files take the same mode.
fn create_private(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
    let fail = |e: std::io::Error| {
        format!(
            "cannot open the state database {}: {}",
            path.display(),
            crate::manifest::io_reason(&e)
        )
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(fail)?;
    let meta = file.metadata().map_err(fail)?;
    // SAFETY: geteuid(2) only reads this process's user id.
    if !meta.is_file() || meta.uid() != unsafe { libc::geteuid() } {
        return Err(format!(
            "the state database {} is not a file of ftw's own; move it away",
            path.display()
        ));
    }
    if meta.mode() & 0o077 != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(fail)?;
    }
    Ok(())
}

fn open_error(path: &Path, e: &rusqlite::Error) -> String {
    format!("cannot open the state database {}: {e}", path.display())
}

fn configure(conn: &Connection, path: &Path) -> Result<(), String> {
    let setup = || -> rusqlite::Result<String> {
        conn.busy_timeout(Duration::from_secs(5))?;
        // Only takes effect on a new, empty database: freed pages can then be handed
        // back to the file system (retention's disk budget).
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // Checkpoints run on a thread of their own (see `checkpoint`); the log is cut
        // back to 64 MiB after one, whatever a burst made it grow to.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        conn.pragma_update(None, "journal_size_limit", 64 << 20)?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(mode)
    };
    let mode = setup().map_err(|e| {
        let not_ours = matches!(&e, rusqlite::Error::SqliteFailure(f, _)
            if f.code == rusqlite::ErrorCode::NotADatabase);
        let hint = if not_ours {
            "; it is not an ftw database (move it away, or pick another --state-dir)"
        } else {
            ""
        };
        format!(
            "cannot use the state database {}: {e}{hint}",
            path.display()
        )
    })?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(format!(
            "the state database {} cannot use a write-ahead log (journal mode stays {mode}); \
             put the state folder on a local file system with --state-dir",
            path.display()
        ));
    }
    Ok(())
}

fn open_reader(path: &Path) -> StoreResult<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| store_error(&e))?;
    conn.busy_timeout(Duration::from_secs(5))
        .map_err(|e| store_error(&e))?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(conn)
}

/// The writer thread: commits queued writes in batches until every sender is gone.
fn write_loop(conn: Connection, rx: mpsc::Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        commit_batch(&conn, batch);
    }
    // A tidy file for backups and the next start: the log folded into the database.
    let _ = conn.pragma_update(None, "wal_checkpoint", "TRUNCATE");
}

fn commit_batch(conn: &Connection, batch: Vec<Job>) {
    let mut pending: std::collections::VecDeque<Job> = batch.into();
    while !pending.is_empty() {
        commit_some(conn, &mut pending);
    }
}

/// Commits queued jobs in one transaction, each in a savepoint, until they are all
/// done or SQLite rolled the whole transaction back (it may, on a full disk): then the
/// jobs run so far fail with that error, and the rest go into the next transaction.
fn commit_some(conn: &Connection, pending: &mut std::collections::VecDeque<Job>) {
    let fail_all = |jobs: Vec<Option<Ack>>, error: &StoreError| {
        for done in jobs.into_iter().flatten() {
            let _ = done.send(Err(error.clone()));
        }
    };
    if let Err(e) = sql(conn, "BEGIN IMMEDIATE") {
        let error = store_error(&e);
        tracing::error!("cannot write the state database: {error}");
        fail_all(pending.drain(..).map(|job| job.done).collect(), &error);
        return;
    }
    // A job alone needs no savepoint: the transaction is its own.
    let alone = pending.len() == 1;
    let mut results: Vec<(Option<Ack>, StoreResult<()>)> = Vec::new();
    while let Some(job) = pending.pop_front() {
        let result = if alone {
            (job.write)(conn)
        } else {
            sql(conn, "SAVEPOINT job")
                .and_then(|()| (job.write)(conn))
                .and_then(|()| sql(conn, "RELEASE job"))
        };
        match result {
            Ok(()) => results.push((job.done, Ok(()))),
            Err(e) if conn.is_autocommit() => {
                // The transaction is gone, with every job of it.
                let error = store_error(&e);
                tracing::error!("the state database rolled back a batch of writes: {error}");
                let mut lost: Vec<Option<Ack>> = results.into_iter().map(|(d, _)| d).collect();
                lost.push(job.done);
                fail_all(lost, &error);
                return;
            }
            Err(e) => {
                if !alone {
                    let _ = conn.execute_batch("ROLLBACK TO job; RELEASE job");
                }
                let error = store_error(&e);
                tracing::warn!("a write to the state database failed: {error}");
                results.push((job.done, Err(error)));
            }
        }
    }
    let all_failed = !results.is_empty() && results.iter().all(|(_, r)| r.is_err());
    let end = if all_failed { "ROLLBACK" } else { "COMMIT" };
    let committed = sql(conn, end).map_err(|e| {
        let _ = conn.execute_batch("ROLLBACK");
        store_error(&e)
    });
    if let Err(e) = &committed {
        tracing::error!("cannot commit to the state database: {e}");
    }
    for (done, result) in results {
        if let Some(done) = done {
            let _ = done.send(committed.clone().and(result));
        }
    }
}

/// A statement without parameters or rows, parsed once per connection.
fn sql(conn: &Connection, text: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(text)?.execute([]).map(drop)
}

fn store_error(e: &rusqlite::Error) -> StoreError {
    let full = matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::DiskFull);
    StoreError {
        message: if full {
            "the disk that holds ftw's state folder is full".into()
        } else {
            format!("the state database failed: {e}")
        },
        full,
    }
}

impl Store for Sqlite {
    fn insert_run(&self, run: &RunRecord) -> Pending<()> {
        let run = run.clone();
        self.write(Box::new(move |c| runs::insert(c, &run)))
    }

    fn run_started(&self, id: &str, at: SystemTime, process: Option<ProcessMark>) -> Pending<()> {
        let id = id.to_string();
        self.write(Box::new(move |c| runs::started(c, &id, at, process)))
    }

    fn append_output(&self, id: &str, chunk: Chunk) -> Pending<()> {
        let id = id.to_string();
        self.write(Box::new(move |c| runs::append_output(c, &id, &chunk)))
    }

    fn finish_run(&self, end: FinishedRun) -> Pending<()> {
        self.write(Box::new(move |c| runs::finish(c, &end)))
    }

    fn run(&self, id: &str) -> Pending<Option<RunRecord>> {
        let id = id.to_string();
        self.read(move |c| runs::get(c, &id))
    }

    fn output_chunks(&self, id: &str) -> Pending<Vec<Chunk>> {
        let id = id.to_string();
        self.read(move |c| runs::chunks(c, &id))
    }

    fn list_runs(&self, query: RunQuery) -> Pending<Vec<RunRecord>> {
        self.read(move |c| runs::list(c, &query))
    }

    fn orphaned_runs(&self) -> Pending<Vec<Orphan>> {
        // The state folder's lock keeps any other ftw out: every unfinished run is a
        // crashed ftw's.
        self.read(|c| {
            let last_seen = auth::last_heartbeat(c)?;
            Ok(runs::unfinished(c)?
                .into_iter()
                .map(|record| Orphan { record, last_seen })
                .collect())
        })
    }

    fn counts(&self) -> Pending<Counts> {
        self.read(runs::counts)
    }

    fn oldest_runs(
        &self,
        limit: usize,
        ended_before: Option<SystemTime>,
    ) -> Pending<Vec<(String, u64)>> {
        self.read(move |c| runs::oldest(c, limit, ended_before))
    }

    fn delete_runs(&self, ids: Vec<String>) -> Pending<()> {
        self.write(Box::new(move |c| runs::delete(c, &ids)))
    }

    fn revoke_session(&self, revocation: Revocation) -> Pending<()> {
        self.write(Box::new(move |c| auth::revoke(c, &revocation)))
    }

    fn revocations(&self, now: u64) -> Pending<Vec<Revocation>> {
        self.read(move |c| auth::revocations(c, now))
    }

    fn save_throttle(&self, record: ThrottleRecord) -> Pending<()> {
        self.write(Box::new(move |c| auth::save_throttle(c, &record)))
    }

    fn forget_throttle(&self, table: &'static str, key: &str) -> Pending<()> {
        let key = key.to_string();
        self.write(Box::new(move |c| auth::forget_throttle(c, table, &key)))
    }

    fn throttle_records(&self, per_table: usize) -> Pending<Vec<ThrottleRecord>> {
        self.read(move |c| auth::throttle_records(c, per_table))
    }

    fn totp_used(&self, user: &str, step: u64) -> Pending<()> {
        let user = user.to_string();
        self.write(Box::new(move |c| auth::totp_used(c, &user, step)))
    }

    fn totp_steps(&self) -> Pending<Vec<(String, u64)>> {
        self.read(auth::totp_steps)
    }

    fn heartbeat(&self, at: SystemTime) -> Pending<()> {
        self.write(Box::new(move |c| auth::heartbeat(c, at)))
    }

    fn leave(&self) -> Pending<()> {
        Box::pin(async { Ok(()) })
    }

    fn shared(&self) -> bool {
        false
    }

    fn schedule_states(&self) -> Pending<Vec<ScheduleState>> {
        self.read(schedules::states)
    }

    fn claim_tick(&self, key: &str, tick_ms: i64) -> Pending<bool> {
        let key = key.to_string();
        self.write_answered(move |c| schedules::claim(c, &key, tick_ms))
    }

    fn schedule_ran(&self, key: &str, run: &str) -> Pending<()> {
        let (key, run) = (key.to_string(), run.to_string());
        self.write(Box::new(move |c| schedules::ran(c, &key, &run)))
    }

    fn pause_schedule(&self, key: &str, paused: bool, by: &str) -> Pending<()> {
        let (key, by) = (key.to_string(), by.to_string());
        self.write(Box::new(move |c| schedules::pause(c, &key, paused, &by)))
    }

    fn forget_delivery(&self, key: &str) -> Pending<()> {
        let key = key.to_string();
        self.write(Box::new(move |c| schedules::forget_delivery(c, &key)))
    }

    fn first_delivery(&self, key: &str, now_ms: i64) -> Pending<bool> {
        let key = key.to_string();
        self.write_answered(move |c| schedules::first_delivery(c, &key, now_ms))
    }

    fn passkeys(&self, user: &str) -> Pending<Vec<PasskeyRecord>> {
        let user = user.to_string();
        self.read(move |c| passkeys::of_user(c, &user))
    }

    fn passkey(&self, id: &str) -> Pending<Option<PasskeyRecord>> {
        let id = id.to_string();
        self.read(move |c| passkeys::by_id(c, &id))
    }

    fn add_passkey(&self, record: PasskeyRecord) -> Pending<()> {
        self.write(Box::new(move |c| passkeys::add(c, &record)))
    }

    fn passkey_used(&self, record: PasskeyRecord) -> Pending<()> {
        self.write(Box::new(move |c| passkeys::used(c, &record)))
    }

    fn bind_outside_name(
        &self,
        name: &str,
        source: &str,
        subject: &str,
    ) -> Pending<(String, String)> {
        let (name, source, subject) = (name.to_string(), source.to_string(), subject.to_string());
        let now = crate::store::unix_ms(SystemTime::now());
        let written = {
            let (name, source, subject) = (name.clone(), source.clone(), subject.clone());
            self.write(Box::new(move |c| {
                passkeys::bind_name(c, &name, &source, &subject, now)
            }))
        };
        let store = self.read(move |c| {
            passkeys::name_binding(c, &name).map(|b| b.unwrap_or((source, subject)))
        });
        Box::pin(async move {
            written.await?;
            store.await
        })
    }

    fn remove_passkey(&self, user: &str, id: &str) -> Pending<()> {
        let (user, id) = (user.to_string(), id.to_string());
        self.write(Box::new(move |c| passkeys::remove(c, &user, &id)))
    }

    fn ping(&self) -> Pending<()> {
        // A fresh connection, not a pooled one: open descriptors keep working on a file
        // that was deleted or a folder that was unmounted, and that is what to notice.
        let path = self.path.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let conn = open_reader(&path)?;
                conn.query_row("SELECT count(*) FROM meta", [], |_| Ok(()))
                    .map_err(|e| store_error(&e))
            })
            .await
            .unwrap_or_else(|e| Err(StoreError::failure(&format!("a database read failed: {e}"))))
        })
    }

    fn known_users(&self) -> Pending<Option<Vec<String>>> {
        self.read(auth::known_users)
    }

    fn set_known_users(&self, users: Vec<String>) -> Pending<()> {
        self.write(Box::new(move |c| auth::set_known_users(c, &users)))
    }

    fn tidy(&self, now: u64) -> Pending<()> {
        self.write(Box::new(move |c| auth::tidy(c, now)))
    }

    fn size(&self) -> Pending<u64> {
        let files = [
            self.path.clone(),
            PathBuf::from(format!("{}-wal", self.path.display())),
        ];
        Box::pin(async move {
            Ok(files
                .iter()
                .filter_map(|p| std::fs::metadata(p).ok())
                .map(|m| m.len())
                .sum())
        })
    }

    fn flush(&self) -> Pending<()> {
        self.write(Box::new(|_| Ok(())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_tick_is_claimed_once_even_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let store = Sqlite::open(dir.path()).unwrap();
        let (a, b) = tokio::join!(store.claim_tick("t/s", 1000), store.claim_tick("t/s", 1000));
        assert_eq!(
            (a.unwrap(), b.unwrap()),
            (true, false),
            "two claims at once: one wins"
        );
        assert!(
            !store.claim_tick("t/s", 999).await.unwrap(),
            "an older tick"
        );
        store.schedule_ran("t/s", "run1").await.unwrap();
        store.pause_schedule("t/s", true, "alice").await.unwrap();
        drop(store);
        let store = Sqlite::open(dir.path()).unwrap();
        assert!(
            !store.claim_tick("t/s", 1000).await.unwrap(),
            "claimed before the restart"
        );
        assert!(store.claim_tick("t/s", 2000).await.unwrap());
        let states = store.schedule_states().await.unwrap();
        assert_eq!(
            states,
            [ScheduleState {
                key: "t/s".into(),
                paused: true,
                paused_by: Some("alice".into()),
                last_tick_ms: Some(2000),
                last_run: Some("run1".into()),
            }]
        );
    }

    #[tokio::test]
    async fn a_newer_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(Sqlite::open(dir.path()).unwrap());
        let conn = Connection::open(dir.path().join(FILE_NAME)).unwrap();
        conn.pragma_update(None, "user_version", schema::current() + 1)
            .unwrap();
        drop(conn);
        let err = Sqlite::open(dir.path()).err().unwrap();
        assert!(err.contains("written by a newer ftw"), "{err}");
    }

    fn passkey(id: &str, user: &str, counter: &str) -> PasskeyRecord {
        PasskeyRecord {
            id: id.into(),
            user: user.into(),
            name: "laptop".into(),
            passkey: counter.into(),
            fingerprint: "ab".into(),
            created_ms: 1,
            used_ms: None,
        }
    }

    #[tokio::test]
    async fn a_passkey_id_is_taken_once_and_a_use_never_revives_a_removed_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = Sqlite::open(dir.path()).unwrap();
        store
            .add_passkey(passkey("k1", "alice", "1"))
            .await
            .unwrap();
        assert!(
            store
                .add_passkey(passkey("k1", "mallory", "9"))
                .await
                .is_err(),
            "a second registration of the same credential id took it over"
        );
        let mut used = passkey("k1", "alice", "2");
        used.used_ms = Some(5);
        store.passkey_used(used).await.unwrap();
        let kept = store.passkey("k1").await.unwrap().unwrap();
        assert_eq!(
            (kept.user.as_str(), kept.passkey.as_str(), kept.used_ms),
            ("alice", "2", Some(5))
        );
        store.remove_passkey("alice", "k1").await.unwrap();
        store
            .passkey_used(passkey("k1", "alice", "3"))
            .await
            .unwrap();
        assert_eq!(store.passkey("k1").await.unwrap(), None);
        assert!(store.passkeys("alice").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn an_outside_name_stays_with_the_account_that_took_it_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = Sqlite::open(dir.path()).unwrap();
        let first = ("oidc:corp".to_string(), "sub-1".to_string());
        assert_eq!(
            store
                .bind_outside_name("alice", "oidc:corp", "sub-1")
                .await
                .unwrap(),
            first
        );
        assert_eq!(
            store
                .bind_outside_name("alice", "github", "42")
                .await
                .unwrap(),
            first
        );
        assert_eq!(
            store
                .bind_outside_name("alice", "oidc:corp", "sub-2")
                .await
                .unwrap(),
            first
        );
        assert_eq!(
            store
                .bind_outside_name("bob", "github", "42")
                .await
                .unwrap(),
            ("github".to_string(), "42".to_string())
        );
    }
}
