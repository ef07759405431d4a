//! The store in PostgreSQL, for several ftw replicas behind a load balancer sharing one
//! database (`--database postgres://...`).
//!
//! Driver: `tokio-postgres` (the async core of the `postgres` crate) with the
//! `deadpool-postgres` pool. Plain SQL and prepared statements are all ftw needs; it
//! brings no macros or build-time database, and its connection stream delivers
//! `LISTEN/NOTIFY` messages, which replicas use to wake each other. sqlx would add a
//! query macro layer and its own migration runner, which ftw already has.
//!
//! Writes keep the SQLite store's promise: queued in call order the moment a method
//! is called, committed together (one transaction for whatever queued up meanwhile) by
//! one writer task. If a batch fails, each of its writes is tried again alone, so one
//! bad write (a passkey id taken twice) fails by itself. Reads use the pool.
//!
//! Each process is a replica with a random id: a row in `replicas`, seen every few
//! seconds by a task of its own, and the owner of the runs it starts. A replica not seen
//! for `LEASE` is dead; any survivor takes its unfinished runs and closes them.

mod auth;
pub mod connect;
mod listen;
mod runs;
mod schedules;
mod schema;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio::sync::{mpsc, oneshot};

pub use connect::Target;

use super::records::*;
use super::{Pending, Store, StoreError, StoreResult};

/// Writes committed together at most.
const MAX_BATCH: usize = 512;
/// Connections for reads (the writer and the heartbeat take one each while working).
const POOL_SIZE: usize = 12;
/// How often a replica says it is alive.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(3);
/// A replica not seen for this long is dead, and its unfinished runs are closed.
pub const LEASE: Duration = Duration::from_secs(15);

/// A write, as data: the writer task applies it inside its batch's transaction.
enum Write {
    Run(Box<RunRecord>),
    Started(String, SystemTime, Option<ProcessMark>),
    Output(String, Chunk),
    Finish(Box<FinishedRun>),
    Delete(Vec<String>),
    Revoke(Revocation),
    SaveThrottle(ThrottleRecord),
    ForgetThrottle(&'static str, String),
    Totp(String, u64),
    AddPasskey(PasskeyRecord),
    PasskeyUsed(PasskeyRecord),
    RemovePasskey(String, String),
    KnownUsers(Vec<String>),
    Tidy(u64),
    Throttle(&'static str, String, ThrottleStep),
    Heartbeat,
    Leave,
    /// Someone asked to cancel a run (it may run on another replica).
    Cancel(String),
    File(String, String, Vec<u8>),
    Flush,
}

impl Write {
    /// The run this write tells other replicas about, if any.
    fn run(&self) -> Option<&str> {
        match self {
            Write::Started(id, ..) | Write::Output(id, _) | Write::Cancel(id) => Some(id),
            Write::Finish(end) => Some(&end.id),
            _ => None,
        }
    }
}

struct Job {
    write: Write,
    done: oneshot::Sender<StoreResult<()>>,
}

pub struct Postgres {
    pool: Pool,
    replica: Arc<str>,
    writer: Mutex<Option<mpsc::UnboundedSender<Job>>>,
    heartbeat: tokio::task::JoinHandle<()>,
    listener: tokio::task::JoinHandle<()>,
    changes: tokio::sync::broadcast::Sender<String>,
}

impl Postgres {
    /// Connects, brings the schema up to date (once, whichever replica comes first),
    /// joins the replicas, and starts the writer and the heartbeat.
    pub async fn open(target: Target) -> Result<Postgres, String> {
        let shown = target.shown.clone();
        let unreachable = |e: tokio_postgres::Error| {
            format!("cannot connect to the database {shown}: {}", reason(&e))
        };
        let (mut client, connection) = target
            .config
            .connect(target.tls.clone())
            .await
            .map_err(unreachable)?;
        let driver = tokio::spawn(connection);
        schema::migrate(&mut client, &shown).await?;
        drop(client);
        let _ = driver.await;
        let manager = Manager::from_config(
            target.config.clone(),
            target.tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .wait_timeout(Some(Duration::from_secs(10)))
            .create_timeout(Some(Duration::from_secs(10)))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| format!("cannot set up connections to {shown}: {e}"))?;
        let replica: Arc<str> = crate::auth::b64(&crate::auth::random::<12>()).into();
        let client = pool
            .get()
            .await
            .map_err(|e| format!("cannot connect to the database {shown}: {e}"))?;
        auth::heartbeat(&client, &replica)
            .await
            .map_err(|e| format!("cannot join the replicas in {shown}: {}", reason(&e)))?;
        drop(client);
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(write_loop(pool.clone(), Arc::clone(&replica), rx));
        let heartbeat = tokio::spawn(beat(target.clone(), Arc::clone(&replica)));
        let changes = tokio::sync::broadcast::channel(1024).0;
        let listener = tokio::spawn(listen::listen(target, changes.clone()));
        tracing::info!("state in {shown} (replica {replica})");
        Ok(Postgres {
            pool,
            replica,
            writer: Mutex::new(Some(tx)),
            heartbeat,
            listener,
            changes,
        })
    }

    /// This replica's id.
    pub fn replica(&self) -> &str {
        &self.replica
    }

    fn write(&self, write: Write) -> Pending<()> {
        let (done, answer) = oneshot::channel();
        let queued = match &*self.writer.lock().expect("store lock") {
            Some(tx) => tx.send(Job { write, done }).is_ok(),
            None => false,
        };
        super::committed(queued, answer)
    }

    /// Runs `work` (a read, or a write whose answer the caller waits for) on a pooled
    /// connection, outside the writer's queue.
    fn on_pool<T, F>(&self, work: F) -> Pending<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(
                &'c deadpool_postgres::Client,
            )
                -> futures_util::future::BoxFuture<'c, Result<T, tokio_postgres::Error>>
            + Send
            + 'static,
    {
        let pool = self.pool.clone();
        Box::pin(async move {
            let client = pool.get().await.map_err(pool_error)?;
            work(&client).await.map_err(|e| store_error(&e))
        })
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.heartbeat.abort();
        self.listener.abort();
        drop(self.writer.lock().expect("store lock").take());
    }
}

/// The heartbeat: this replica's row, every `HEARTBEAT_EVERY`, on a task and a
/// connection of its own, so neither a queue of writes nor a pool busy with reads can
/// delay it past the lease (and get a live replica's runs closed).
async fn beat(target: Target, replica: Arc<str>) {
    let mut connection: Option<tokio_postgres::Client> = None;
    loop {
        tokio::time::sleep(HEARTBEAT_EVERY).await;
        if connection.as_ref().is_none_or(|c| c.is_closed()) {
            connection = match target.config.connect(target.tls.clone()).await {
                Ok((client, driver)) => {
                    tokio::spawn(driver);
                    Some(client)
                }
                Err(e) => {
                    tracing::warn!("cannot tell the database this replica is alive: {e}");
                    None
                }
            };
        }
        let Some(client) = &connection else { continue };
        if let Err(e) = client.execute(&auth::heartbeat_sql(), &[&&*replica]).await {
            tracing::warn!("cannot tell the database this replica is alive: {e}");
        }
    }
}

/// The writer: commits queued writes in batches until every sender is gone.
async fn write_loop(pool: Pool, replica: Arc<str>, mut rx: mpsc::UnboundedReceiver<Job>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let writes: Vec<&Write> = batch.iter().map(|job| &job.write).collect();
        match commit(&pool, &replica, &writes).await {
            Ok(()) => {
                for job in batch {
                    let _ = job.done.send(Ok(()));
                }
            }
            Err(e) if batch.len() == 1 => {
                tracing::warn!("a write to the database failed: {e}");
                let _ = batch.pop().map(|job| job.done.send(Err(e)));
            }
            Err(_) => {
                // One bad write must not fail the others: each alone, in order.
                for job in batch {
                    let result = commit(&pool, &replica, &[&job.write]).await;
                    if let Err(e) = &result {
                        tracing::warn!("a write to the database failed: {e}");
                    }
                    let _ = job.done.send(result);
                }
            }
        }
    }
}

async fn commit(pool: &Pool, replica: &str, writes: &[&Write]) -> StoreResult<()> {
    let mut client = pool.get().await.map_err(pool_error)?;
    let tx = client.transaction().await.map_err(|e| store_error(&e))?;
    for write in writes {
        apply(&tx, replica, write)
            .await
            .map_err(|e| store_error(&e))?;
    }
    // Delivered on commit, once per run however many writes it had here.
    let mut runs: Vec<&str> = writes.iter().filter_map(|w| w.run()).collect();
    runs.sort_unstable();
    runs.dedup();
    for run in runs {
        tx.execute("SELECT pg_notify($1, $2)", &[&listen::CHANNEL, &run])
            .await
            .map_err(|e| store_error(&e))?;
    }
    tx.commit().await.map_err(|e| store_error(&e))
}

async fn apply(
    tx: &deadpool_postgres::Transaction<'_>,
    replica: &str,
    write: &Write,
) -> Result<(), tokio_postgres::Error> {
    match write {
        Write::Run(run) => runs::insert(tx, run, replica).await,
        Write::Started(id, at, process) => runs::started(tx, id, *at, process).await,
        Write::Output(id, chunk) => runs::append_output(tx, id, chunk).await,
        Write::Finish(end) => runs::finish(tx, end).await,
        Write::Delete(ids) => runs::delete(tx, ids).await,
        Write::Revoke(r) => auth::revoke(tx, r).await,
        Write::SaveThrottle(r) => auth::save_throttle(tx, r).await,
        Write::ForgetThrottle(table, key) => auth::forget_throttle(tx, table, key).await,
        Write::Totp(user, step) => auth::totp_used(tx, user, *step).await,
        Write::AddPasskey(r) => auth::add_passkey(tx, r).await,
        Write::PasskeyUsed(r) => auth::passkey_used(tx, r).await,
        Write::RemovePasskey(user, id) => auth::remove_passkey(tx, user, id).await,
        Write::KnownUsers(users) => auth::set_known_users(tx, users).await,
        Write::Tidy(now) => auth::tidy(tx, *now).await,
        Write::Throttle(table, key, step) => {
            auth::throttle_step(tx, table, key, *step).await.map(drop)
        }
        Write::Heartbeat => auth::heartbeat(tx, replica).await,
        Write::Leave => auth::leave(tx, replica).await,
        Write::File(id, name, bytes) => runs::add_file(tx, id, name, bytes).await,
        Write::Cancel(id) => runs::request_cancel(tx, id, super::unix_ms(SystemTime::now())).await,
        Write::Flush => Ok(()),
    }
}

/// The database's own words for a failure (its message, not the driver's summary).
fn reason(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => db.message().to_string(),
        None => e.to_string(),
    }
}

fn pool_error(e: deadpool_postgres::PoolError) -> StoreError {
    StoreError::failure(&format!("cannot reach the database: {e}"))
}

fn store_error(e: &tokio_postgres::Error) -> StoreError {
    use tokio_postgres::error::SqlState;
    let full = e.code() == Some(&SqlState::DISK_FULL);
    StoreError {
        message: if full {
            "the database server's disk is full".into()
        } else {
            format!("the database failed: {}", reason(e))
        },
        full,
    }
}

impl Store for Postgres {
    fn insert_run(&self, run: &RunRecord) -> Pending<()> {
        self.write(Write::Run(Box::new(run.clone())))
    }

    fn run_started(&self, id: &str, at: SystemTime, process: Option<ProcessMark>) -> Pending<()> {
        self.write(Write::Started(id.to_string(), at, process))
    }

    fn append_output(&self, id: &str, chunk: Chunk) -> Pending<()> {
        self.write(Write::Output(id.to_string(), chunk))
    }

    fn finish_run(&self, end: FinishedRun) -> Pending<()> {
        self.write(Write::Finish(Box::new(end)))
    }

    fn output_chunks_since(&self, id: &str, from: u64) -> Pending<Vec<Chunk>> {
        let id = id.to_string();
        self.on_pool(move |c| Box::pin(async move { runs::chunks_since(c, &id, from).await }))
    }

    fn insert_run_capped(&self, run: &RunRecord, per_user: usize) -> Pending<bool> {
        let (pool, run, me) = (self.pool.clone(), run.clone(), self.replica.to_string());
        Box::pin(async move {
            let mut client = pool.get().await.map_err(pool_error)?;
            let inserted = async {
                let tx = client.transaction().await?;
                let inserted = runs::insert_capped(&tx, &run, &me, per_user).await?;
                tx.commit().await?;
                Ok(inserted)
            };
            inserted.await.map_err(|e| store_error(&e))
        })
    }

    fn runs_kept(&self, ids: Vec<String>) -> Pending<Vec<String>> {
        self.on_pool(move |c| Box::pin(async move { runs::kept(c, &ids).await }))
    }

    fn hold_ceremony(&self, id: &str, nonce: Option<&str>, ceremony: String) -> Pending<()> {
        let (id, nonce) = (id.to_string(), nonce.map(str::to_string));
        let now = super::unix_ms(SystemTime::now());
        self.on_pool(move |c| {
            Box::pin(
                async move { auth::hold_ceremony(c, &id, nonce.as_deref(), &ceremony, now).await },
            )
        })
    }

    fn take_ceremony(&self, id: &str, since_ms: i64) -> Pending<Option<String>> {
        let id = id.to_string();
        self.on_pool(move |c| Box::pin(async move { auth::take_ceremony(c, &id, since_ms).await }))
    }

    fn add_run_file(&self, id: &str, name: &str, bytes: Vec<u8>) -> Pending<()> {
        self.write(Write::File(id.to_string(), name.to_string(), bytes))
    }

    fn run_file(&self, id: &str, name: &str) -> Pending<Option<Vec<u8>>> {
        let (id, name) = (id.to_string(), name.to_string());
        self.on_pool(move |c| Box::pin(async move { runs::file(c, &id, &name).await }))
    }

    fn request_cancel(&self, id: &str) -> Pending<()> {
        self.write(Write::Cancel(id.to_string()))
    }

    fn cancel_requests(&self) -> Pending<Vec<String>> {
        let me = self.replica.to_string();
        self.on_pool(move |c| Box::pin(async move { runs::cancel_requests(c, &me).await }))
    }

    fn run_changes(&self) -> Option<tokio::sync::broadcast::Receiver<String>> {
        Some(self.changes.subscribe())
    }

    fn run(&self, id: &str) -> Pending<Option<RunRecord>> {
        let id = id.to_string();
        self.on_pool(move |c| Box::pin(async move { runs::get(c, &id).await }))
    }

    fn output_chunks(&self, id: &str) -> Pending<Vec<Chunk>> {
        let id = id.to_string();
        self.on_pool(move |c| Box::pin(async move { runs::chunks(c, &id).await }))
    }

    fn list_runs(&self, query: RunQuery) -> Pending<Vec<RunRecord>> {
        self.on_pool(move |c| Box::pin(async move { runs::list(c, &query).await }))
    }

    fn orphaned_runs(&self) -> Pending<Vec<Orphan>> {
        let me = self.replica.to_string();
        let lease = LEASE.as_millis() as i64;
        self.on_pool(move |c| Box::pin(async move { runs::claim_orphans(c, &me, lease).await }))
    }

    fn counts(&self) -> Pending<Counts> {
        self.on_pool(|c| Box::pin(async move { runs::counts(c).await }))
    }

    fn oldest_runs(
        &self,
        limit: usize,
        ended_before: Option<SystemTime>,
    ) -> Pending<Vec<(String, u64)>> {
        self.on_pool(move |c| Box::pin(async move { runs::oldest(c, limit, ended_before).await }))
    }

    fn delete_runs(&self, ids: Vec<String>) -> Pending<()> {
        self.write(Write::Delete(ids))
    }

    fn revoke_session(&self, revocation: Revocation) -> Pending<()> {
        self.write(Write::Revoke(revocation))
    }

    fn revocations(&self, now: u64) -> Pending<Vec<Revocation>> {
        self.on_pool(move |c| Box::pin(async move { auth::revocations(c, now).await }))
    }

    fn save_throttle(&self, record: ThrottleRecord) -> Pending<()> {
        self.write(Write::SaveThrottle(record))
    }

    fn forget_throttle(&self, table: &'static str, key: &str) -> Pending<()> {
        self.write(Write::ForgetThrottle(table, key.to_string()))
    }

    fn throttle_records(&self, per_table: usize) -> Pending<Vec<ThrottleRecord>> {
        self.on_pool(move |c| Box::pin(async move { auth::throttle_records(c, per_table).await }))
    }

    fn totp_used(&self, user: &str, step: u64) -> Pending<()> {
        self.write(Write::Totp(user.to_string(), step))
    }

    fn totp_steps(&self) -> Pending<Vec<(String, u64)>> {
        self.on_pool(|c| Box::pin(async move { auth::totp_steps(c).await }))
    }

    fn heartbeat(&self, _at: SystemTime) -> Pending<()> {
        // The database's clock, not this replica's: leases compare one clock.
        self.write(Write::Heartbeat)
    }

    fn leave(&self) -> Pending<()> {
        self.heartbeat.abort();
        self.write(Write::Leave)
    }

    fn shared(&self) -> bool {
        true
    }

    fn schedule_states(&self) -> Pending<Vec<ScheduleState>> {
        self.on_pool(|c| Box::pin(async move { schedules::states(c).await }))
    }

    fn claim_tick(&self, key: &str, tick_ms: i64) -> Pending<bool> {
        let key = key.to_string();
        self.on_pool(move |c| Box::pin(async move { schedules::claim(c, &key, tick_ms).await }))
    }

    fn schedule_ran(&self, key: &str, run: &str) -> Pending<()> {
        let (key, run) = (key.to_string(), run.to_string());
        self.on_pool(move |c| Box::pin(async move { schedules::ran(c, &key, &run).await }))
    }

    fn pause_schedule(&self, key: &str, paused: bool, by: &str) -> Pending<()> {
        let (key, by) = (key.to_string(), by.to_string());
        self.on_pool(move |c| Box::pin(async move { schedules::pause(c, &key, paused, &by).await }))
    }

    fn forget_delivery(&self, key: &str) -> Pending<()> {
        let key = key.to_string();
        self.on_pool(move |c| Box::pin(async move { schedules::forget_delivery(c, &key).await }))
    }

    fn first_delivery(&self, key: &str, now_ms: i64) -> Pending<bool> {
        let key = key.to_string();
        self.on_pool(move |c| {
            Box::pin(async move { schedules::first_delivery(c, &key, now_ms).await })
        })
    }

    fn passkeys(&self, user: &str) -> Pending<Vec<PasskeyRecord>> {
        let user = user.to_string();
        self.on_pool(move |c| Box::pin(async move { auth::passkeys(c, &user).await }))
    }

    fn passkey(&self, id: &str) -> Pending<Option<PasskeyRecord>> {
        let id = id.to_string();
        self.on_pool(move |c| Box::pin(async move { auth::passkey_by_id(c, &id).await }))
    }

    fn add_passkey(&self, record: PasskeyRecord) -> Pending<()> {
        self.write(Write::AddPasskey(record))
    }

    fn passkey_used(&self, record: PasskeyRecord) -> Pending<()> {
        self.write(Write::PasskeyUsed(record))
    }

    fn bind_outside_name(
        &self,
        name: &str,
        source: &str,
        subject: &str,
    ) -> Pending<(String, String)> {
        let (name, source, subject) = (name.to_string(), source.to_string(), subject.to_string());
        let now = super::unix_ms(SystemTime::now());
        self.on_pool(move |c| {
            Box::pin(async move { auth::bind_name(c, &name, &source, &subject, now).await })
        })
    }

    fn remove_passkey(&self, user: &str, id: &str) -> Pending<()> {
        self.write(Write::RemovePasskey(user.to_string(), id.to_string()))
    }

    fn known_users(&self) -> Pending<Option<Vec<String>>> {
        self.on_pool(|c| Box::pin(async move { auth::known_users(c).await }))
    }

    fn set_known_users(&self, users: Vec<String>) -> Pending<()> {
        self.write(Write::KnownUsers(users))
    }

    fn tidy(&self, now: u64) -> Pending<()> {
        self.write(Write::Tidy(now))
    }

    fn size(&self) -> Pending<u64> {
        self.on_pool(|c| {
            Box::pin(async move {
                let row = c
                    .query_one("SELECT pg_database_size(current_database())", &[])
                    .await?;
                Ok(row.try_get::<_, i64>(0)?.max(0) as u64)
            })
        })
    }

    fn flush(&self) -> Pending<()> {
        self.write(Write::Flush)
    }

    fn ping(&self) -> Pending<()> {
        self.on_pool(|c| Box::pin(async move { c.simple_query("SELECT 1").await.map(drop) }))
    }

    fn session_revoked(&self, id: [u8; 16], user: &str, issued: u64) -> Pending<bool> {
        let user = user.to_string();
        self.on_pool(move |c| {
            Box::pin(async move { auth::session_revoked(c, &id, &user, issued).await })
        })
    }

    fn revoke_once(&self, revocation: Revocation) -> Pending<bool> {
        self.on_pool(move |c| Box::pin(async move { auth::revoke_once(c, &revocation).await }))
    }

    fn totp_accept(&self, user: &str, step: u64) -> Pending<bool> {
        let user = user.to_string();
        self.on_pool(move |c| Box::pin(async move { auth::totp_accept(c, &user, step).await }))
    }

    fn throttle_step(
        &self,
        table: &'static str,
        key: &str,
        step: ThrottleStep,
    ) -> Pending<Option<i64>> {
        match step {
            ThrottleStep::Begin { .. } => {}
            ThrottleStep::Blocked { .. } => {
                let key = key.to_string();
                return self.on_pool(move |c| {
                    Box::pin(async move { auth::throttle_step(c, table, &key, step).await })
                });
            }
            _ => {
                // Its outcome changes no answer: queued, in order after the begin.
                let written = self.write(Write::Throttle(table, key.to_string(), step));
                return Box::pin(async move { written.await.map(|()| None) });
            }
        }
        let (pool, key) = (self.pool.clone(), key.to_string());
        Box::pin(async move {
            let mut client = pool.get().await.map_err(pool_error)?;
            let begun = async {
                let tx = client.transaction().await?;
                let wait = auth::throttle_step(&tx, table, &key, step).await?;
                tx.commit().await?;
                Ok(wait)
            };
            begun.await.map_err(|e| store_error(&e))
        })
    }
}
