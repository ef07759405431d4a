//! ftw's durable state behind one small interface: runs and their output, revoked
//! sessions, throttle counts and blocks, and TOTP steps already used. Everything a
//! restart must not lose goes through `Store`; nothing else in ftw knows how it is kept.
//!
//! Two implementations: SQLite in the state folder (`sqlite`, the default), and
//! PostgreSQL (`postgres`) for several replicas sharing one database. Every method returns a future,
//! and a write is *queued when the method is called* (in call order), so a caller that
//! does not need to wait (output chunks, throttle counts) can drop the future and the
//! write still happens; awaiting it waits until the write is committed. `flush` waits
//! for everything queued before it.

mod codec;
pub mod postgres;
mod records;
mod schema;
mod sqlite;

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use postgres::Postgres;
pub use records::{
    Chunk, Counts, FinishedRun, Orphan, PasskeyRecord, ProcessMark, Revocation, RunQuery,
    RunRecord, ScheduleState, ThrottleRecord, ThrottleStep,
};
pub use sqlite::Sqlite;

/// Why the state could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError {
    pub message: String,
    /// The disk (or the database's quota) is full: tell the client 507, not 500.
    pub full: bool,
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StoreError {}

impl StoreError {
    /// A failure that is not about the disk.
    pub fn failure(message: &str) -> StoreError {
        StoreError {
            message: message.to_string(),
            full: false,
        }
    }
}

/// The future of a write handed (`queued`) or not to a store's writer, resolving with
/// the writer's answer once it committed.
fn committed<T: Send + 'static>(
    queued: bool,
    answer: tokio::sync::oneshot::Receiver<StoreResult<T>>,
) -> Pending<T> {
    Box::pin(async move {
        if !queued {
            return Err(StoreError::failure(
                "the database is closed (ftw is stopping)",
            ));
        }
        answer
            .await
            .unwrap_or_else(|_| Err(StoreError::failure("the database writer stopped")))
    })
}

pub type StoreResult<T> = Result<T, StoreError>;
/// A queued read or write; see the module notes for when the work happens.
pub type Pending<T> = Pin<Box<dyn Future<Output = StoreResult<T>> + Send>>;

/// The durable state of one ftw (or, later, of several sharing a database).
pub trait Store: Send + Sync {
    // Runs.
    /// Records a new run (queued).
    fn insert_run(&self, run: &RunRecord) -> Pending<()>;
    /// The run has started: when, and which process group is its.
    fn run_started(&self, id: &str, at: SystemTime, process: Option<ProcessMark>) -> Pending<()>;
    /// Output the run printed while its log is small (see `runs::log`).
    fn append_output(&self, id: &str, chunk: Chunk) -> Pending<()>;
    /// The run has ended; its chunks are dropped when its output went to a file.
    fn finish_run(&self, end: FinishedRun) -> Pending<()>;
    fn run(&self, id: &str) -> Pending<Option<RunRecord>>;
    /// The output chunks a run stored, in order.
    fn output_chunks(&self, id: &str) -> Pending<Vec<Chunk>>;
    /// The chunks at or after byte `from`, in order (a replica following a run).
    fn output_chunks_since(&self, id: &str, from: u64) -> Pending<Vec<Chunk>> {
        let all = self.output_chunks(id);
        Box::pin(async move {
            let mut chunks = all.await?;
            chunks.retain(|c| c.offset >= from);
            Ok(chunks)
        })
    }
    /// A page of the history, newest first.
    fn list_runs(&self, query: RunQuery) -> Pending<Vec<RunRecord>>;
    /// Runs still queued or running whose ftw is gone, taken for this one to close
    /// (see `Orphan`). With one ftw on the database that is every unfinished run at
    /// start-up; with several, those of a replica whose heartbeat stopped a lease ago.
    fn orphaned_runs(&self) -> Pending<Vec<Orphan>>;
    /// How many finished runs there are and the disk their files take.
    fn counts(&self) -> Pending<Counts>;
    /// Up to `limit` of the oldest finished runs, oldest first (id, disk bytes), that
    /// ended before `ended_before` when it is given.
    fn oldest_runs(
        &self,
        limit: usize,
        ended_before: Option<SystemTime>,
    ) -> Pending<Vec<(String, u64)>>;
    fn delete_runs(&self, ids: Vec<String>) -> Pending<()>;

    // Sessions, throttling, TOTP.
    fn revoke_session(&self, revocation: Revocation) -> Pending<()>;
    /// Revocations that have not expired at `now` (Unix seconds).
    fn revocations(&self, now: u64) -> Pending<Vec<Revocation>>;
    fn save_throttle(&self, record: ThrottleRecord) -> Pending<()>;
    fn forget_throttle(&self, table: &'static str, key: &str) -> Pending<()>;
    /// The throttle keys kept, at most `per_table` of each table: those blocked
    /// longest first, then those that failed last.
    fn throttle_records(&self, per_table: usize) -> Pending<Vec<ThrottleRecord>>;
    fn totp_used(&self, user: &str, step: u64) -> Pending<()>;
    fn totp_steps(&self) -> Pending<Vec<(String, u64)>>;

    // Housekeeping.
    /// Notes that this ftw is alive (the time an interrupted run is said to have ended).
    fn heartbeat(&self, at: SystemTime) -> Pending<()>;
    /// This ftw stops, its runs all ended: other replicas need not wait for its lease.
    fn leave(&self) -> Pending<()>;
    /// Other ftw processes may share this database (several replicas): what one of them
    /// keeps in memory is not the whole truth, and runs it finds unfinished may be
    /// another's.
    fn shared(&self) -> bool;
    /// The user names the manifest had when ftw last looked (`None`: never stored).
    fn passkeys(&self, user: &str) -> Pending<Vec<PasskeyRecord>>;
    fn passkey(&self, id: &str) -> Pending<Option<PasskeyRecord>>;
    /// A new passkey; fails if its credential id exists.
    fn add_passkey(&self, record: PasskeyRecord) -> Pending<()>;
    /// A passkey's counter and last use, unless it was removed.
    fn passkey_used(&self, record: PasskeyRecord) -> Pending<()>;
    /// Binds an outside user name to the account (`source`, `subject`) that first
    /// signed in with it, and answers the binding in force.
    fn bind_outside_name(
        &self,
        name: &str,
        source: &str,
        subject: &str,
    ) -> Pending<(String, String)>;
    fn remove_passkey(&self, user: &str, id: &str) -> Pending<()>;
    fn known_users(&self) -> Pending<Option<Vec<String>>>;
    fn set_known_users(&self, users: Vec<String>) -> Pending<()>;
    /// Forgets what has expired by `now` (Unix seconds) and gives freed pages back.
    fn tidy(&self, now: u64) -> Pending<()>;
    /// Bytes the database takes on disk.
    fn size(&self) -> Pending<u64>;
    /// Waits until every write queued before this call is committed.
    fn flush(&self) -> Pending<()>;
    /// A trivial read: whether the database answers at all (`/readyz`).
    fn ping(&self) -> Pending<()>;

    // Schedules.
    fn schedule_states(&self) -> Pending<Vec<ScheduleState>>;
    /// Claims tick `tick_ms` of schedule `key` unless it or a later one was claimed:
    /// true for the one caller (of any replica, before or after a restart) that did.
    /// Resolves once committed.
    fn claim_tick(&self, key: &str, tick_ms: i64) -> Pending<bool>;
    /// The run the schedule's last tick started.
    fn schedule_ran(&self, key: &str, run: &str) -> Pending<()>;
    /// Pauses (`by` an admin) or resumes a schedule.
    fn pause_schedule(&self, key: &str, paused: bool, by: &str) -> Pending<()>;
    /// Records a webhook delivery: true the first time `key` is seen. Keys of signed
    /// timestamps (`TOOL/t:...`) go after a week; the others are kept.
    fn first_delivery(&self, key: &str, now_ms: i64) -> Pending<bool>;
    /// Forgets a delivery that did not start its run, so a retry may.
    fn forget_delivery(&self, key: &str) -> Pending<()>;

    // Asked only of a `shared` store, on every request it concerns: another replica
    // may have changed the answer a moment ago. (One ftw alone answers these from
    // memory, which the writes above keep durable.)
    /// Whether this session was revoked: by id, or by a floor for its user.
    fn session_revoked(&self, _id: [u8; 16], _user: &str, _issued: u64) -> Pending<bool> {
        not_shared()
    }
    /// Revokes a single-use session unless it is revoked already: true for the one
    /// caller that did, of any number racing on any replica.
    fn revoke_once(&self, _revocation: Revocation) -> Pending<bool> {
        not_shared()
    }
    /// Records a TOTP step for a user unless it (or a later one) was used: true if
    /// this call recorded it.
    fn totp_accept(&self, _user: &str, _step: u64) -> Pending<bool> {
        not_shared()
    }
    /// Counts an attempt against a throttle key (see `ThrottleStep`); for `Begin`, the
    /// wait when the key is blocked or its attempts already reach the limit.
    fn throttle_step(
        &self,
        _table: &'static str,
        _key: &str,
        _step: ThrottleStep,
    ) -> Pending<Option<i64>> {
        not_shared()
    }
    /// Records a new run unless its user already has `per_user` runs queued or running
    /// on any replica: false then. Decided under a lock per user, so replicas starting
    /// runs of one user at once take turns. Not queued: resolves once committed.
    fn insert_run_capped(&self, _run: &RunRecord, _per_user: usize) -> Pending<bool> {
        not_shared()
    }
    /// Which of `ids` the history still has (a replica tidying its state folder after
    /// another replica's retention removed runs).
    fn runs_kept(&self, _ids: Vec<String>) -> Pending<Vec<String>> {
        not_shared()
    }
    /// Keeps a passkey ceremony (webauthn-rs's state as JSON) until its answer, which
    /// may reach any replica; one with the same `nonce` (a browser's passwordless
    /// sign-in) gives way. Resolves once committed.
    fn hold_ceremony(&self, _id: &str, _nonce: Option<&str>, _ceremony: String) -> Pending<()> {
        not_shared()
    }
    /// The ceremony `id`, once (whoever asks first, on any replica), if it was made
    /// after `since_ms`.
    fn take_ceremony(&self, _id: &str, _since_ms: i64) -> Pending<Option<String>> {
        not_shared()
    }
    /// Keeps a file a run wrote, so other replicas can serve it (queued).
    fn add_run_file(&self, _id: &str, _name: &str, _bytes: Vec<u8>) -> Pending<()> {
        not_shared()
    }
    /// A file a run wrote, as `add_run_file` kept it.
    fn run_file(&self, _id: &str, _name: &str) -> Pending<Option<Vec<u8>>> {
        not_shared()
    }
    /// Asks the replica that runs `id` to cancel it.
    fn request_cancel(&self, _id: &str) -> Pending<()> {
        not_shared()
    }
    /// This replica's unfinished runs that another replica asked to cancel.
    fn cancel_requests(&self) -> Pending<Vec<String>> {
        not_shared()
    }
    /// Wakes with a run's id when a replica stored something about it (output, start,
    /// end, a cancel): followers need not wait for their next look.
    fn run_changes(&self) -> Option<tokio::sync::broadcast::Receiver<String>> {
        None
    }
}

fn not_shared<T: Send + 'static>() -> Pending<T> {
    Box::pin(async {
        Err(StoreError::failure(
            "this store is not shared; ftw answers from memory",
        ))
    })
}

/// Milliseconds since the Unix epoch (0 before it).
pub fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

pub fn from_unix_ms(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}
