//! `ftw serve`'s web server. `State` is what every handler shares; `routes` builds the
//! warp filter tree; `listen` accepts connections (plain or TLS through hyper-util, since
//! warp 0.4 has no TLS of its own) and shuts down gracefully.

mod access;
mod account;
mod adapt;
mod api;
pub use api::INLINE_OUTPUT;
mod assets;
mod body;
mod connections;
pub mod context;
mod directory;
pub use connections::default_per_client;
mod download;
mod form_view;
mod format;
mod history;
mod hosts;
pub mod identity;
mod intake;
mod launch;
mod listen;
mod login;
mod metrics;
mod notify;
mod openapi;
mod pages;
mod passkey_login;
mod per_key;
mod preview;
mod problem;
pub mod reload;
mod respond;
pub mod routes;
mod run_pages;
mod schedule_pages;
mod scheduler;
mod schema;
mod sse;
mod sso;
mod tools;
mod webhook;

use std::sync::{Arc, RwLock};

pub use context::{ClientAddr, Ctx};

use crate::audit::Audit;
use crate::auth::passwords::Verifier;
use crate::auth::revoked::{self, Revoked};
use crate::auth::session::{Codec, Policy};
use crate::auth::throttle::{self, Throttle};
use crate::auth::totp::Replays;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::manifest::Manifest;
use crate::metrics::Metrics;
use crate::runs::{Limits, Retention, Runs};
use crate::state_dir::StateDir;
use crate::store::{Postgres, Sqlite, Store, postgres};

/// Everything the handlers share, built once at start-up by `assemble`.
pub struct State {
    /// Start-up settings; they never change while serving.
    pub config: Config,
    /// The manifest in force: replaced whole by a reload, read through `manifest()`.
    manifest: RwLock<Arc<Manifest>>,
    pub runs: Arc<Runs>,
    pub audit: Arc<Audit>,
    pub metrics: Arc<Metrics>,
    pub sessions: Codec,
    pub revoked: Revoked,
    pub verifier: Verifier,
    pub throttle: Throttle,
    pub replays: Replays,
    pub store: Arc<dyn Store>,
    /// The state folder, held (locked) while this state lives.
    pub state_dir: StateDir,
    /// ftw itself serves TLS (HSTS; cookies are `Secure` and `__Host-`).
    pub tls: bool,
    /// The base path with a trailing slash: the prefix of every link.
    pub base: String,
    /// Host names answered to whatever the manifest says (see `hosts`).
    pub hosts: hosts::AllowedHosts,
    /// Live event streams open, by user.
    pub streams: sse::Streams,
    /// Identity providers' fetched settings and keys.
    pub providers: crate::auth::oidc::Providers,
    /// Passkey ceremonies waiting for the browser's answer.
    pub ceremonies: crate::auth::passkeys::Ceremonies,
    /// Options commands' answers (`options_from`), and how many run at once.
    pub options: crate::options::Options,
}

impl State {
    /// The server's state from its settings and first manifest: the state folder
    /// taken and its database opened, runs a crashed ftw left closed, what was stored
    /// (revocations, throttle blocks, TOTP steps) read back, the audit log opened, and a
    /// password verifier sized for this machine whose dummy hash costs as much as the
    /// costliest user's. `ftw serve` and the in-process tests both start here.
    pub async fn assemble(config: Config, manifest: Manifest) -> Result<State> {
        let (state_dir, warnings) = StateDir::open(&config.state_dir).map_err(Error::runtime)?;
        for warning in warnings {
            tracing::warn!("{warning}");
        }
        let store: Arc<dyn Store> = match &config.database {
            Some(db) => {
                let target = postgres::connect::target(&db.url, db.password_file.as_deref())
                    .map_err(Error::usage)?;
                Arc::new(Postgres::open(target).await.map_err(Error::runtime)?)
            }
            None => Arc::new(Sqlite::open(&state_dir.path).map_err(Error::runtime)?),
        };
        let place = match &config.database {
            Some(_) => "the database".to_string(),
            None => state_dir.path.display().to_string(),
        };
        let stored = |e: crate::store::StoreError| {
            Error::runtime(format!("cannot read ftw's state in {place}: {e}"))
        };
        let audit = Arc::new(Audit::open(config.audit_log.as_deref()).map_err(Error::runtime)?);
        let metrics = Arc::new(Metrics::default());
        let root = crate::runs::runs_root(&state_dir.path).map_err(|e| {
            Error::runtime(format!(
                "cannot make the runs folder in {}: {}",
                state_dir.path.display(),
                crate::manifest::io_reason(&e)
            ))
        })?;
        let runs = Arc::new(Runs::new(
            root,
            Arc::clone(&store),
            Limits {
                max_runs: config.max_runs,
                per_user: config.max_runs_per_user,
            },
            Retention::new(
                config.keep_runs,
                config.keep_for,
                Some(config.max_state_size),
            ),
            Arc::clone(&audit),
            Arc::clone(&metrics),
        ));
        runs.recover().await.map_err(stored)?;
        let now = crate::auth::now();
        let revoked = Revoked::restore(
            revoked::DEFAULT_CAPACITY,
            Arc::clone(&store),
            store.revocations(now).await.map_err(stored)?,
        );
        let users = manifest.auth.users.keys().cloned().collect();
        let departed = crate::auth::departed::retire_departed(store.as_ref(), &revoked, users, now)
            .await
            .map_err(stored)?;
        if !departed.is_empty() {
            tracing::info!(
                "user(s) removed from the manifest since ftw last ran: {}; their sessions stay ended even if they come back",
                departed.join(", ")
            );
        }
        let throttle = Throttle::restore(
            throttle::DEFAULT_CAPACITY,
            Arc::clone(&store),
            store
                .throttle_records(throttle::DEFAULT_CAPACITY)
                .await
                .map_err(stored)?,
        );
        let replays = Replays::restore(
            Arc::clone(&store),
            store.totp_steps().await.map_err(stored)?,
        );
        let verifier = Verifier::for_this_machine(&config.keys.csrf);
        verifier.match_cost(
            manifest
                .auth
                .users
                .values()
                .map(|u| u.password_hash.as_str()),
        );
        Ok(State {
            ceremonies: crate::auth::passkeys::Ceremonies::new(&store),
            options: crate::options::Options::default(),
            sessions: Codec::new(config.keys.session),
            revoked,
            verifier,
            throttle,
            replays,
            store,
            state_dir,
            audit,
            metrics,
            runs,
            tls: config.tls.is_some(),
            hosts: hosts::AllowedHosts::for_config(&config),
            streams: sse::Streams::new(config.max_streams_per_user),
            providers: crate::auth::oidc::Providers::new(),

            base: crate::auth::next::home(&config.base_path),
            manifest: RwLock::new(Arc::new(manifest)),
            config,
        })
    }

    /// Starts the background work of a serving ftw: retention, the heartbeat and
    /// tidying the database (see `runs::Retention`).
    pub fn start_upkeep(&self) {
        tokio::spawn(Arc::clone(&self.runs).upkeep());
    }

    /// Fetches the identity providers' settings in the background (see
    /// `Providers::warm`): at start and after a reload, never holding either up.
    pub fn warm_providers(self: &Arc<Self>) {
        let state = Arc::clone(self);
        tokio::spawn(async move {
            let manifest = state.manifest();
            state.providers.warm(&manifest.auth.oidc).await;
        });
    }

    /// The manifest in force now.
    pub fn manifest(&self) -> Arc<Manifest> {
        Arc::clone(&self.manifest.read().expect("manifest lock"))
    }

    /// Puts a new manifest in force for new requests (sessions of removed or re-hashed
    /// users end at their next request, because their fingerprint no longer matches).
    pub fn replace_manifest(&self, manifest: Manifest) {
        *self.manifest.write().expect("manifest lock") = Arc::new(manifest);
        self.options.clear();
    }

    /// Session lifetimes, from the manifest in force.
    pub fn policy(&self) -> Policy {
        let auth = &self.manifest().auth;
        Policy {
            ttl: auth.session_ttl.as_secs(),
            idle: auth.session_idle.as_secs(),
        }
    }
}

/// Runs the server until SIGINT or SIGTERM, then shuts down gracefully.
pub fn run(config: Config, manifest: Manifest) -> Result<()> {
    // Tools run as the same user as ftw; without this they could read the signing key
    // from /proc/<ftw>/environ (FTW_SECRET_KEY) or /proc/<ftw>/mem. Not dumpable: such
    // files belong to root, and no core file keeps the key either.
    // SAFETY: prctl with PR_SET_DUMPABLE only changes a flag of this process.
    unsafe {
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::runtime(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(listen::serve(config, manifest))
}
