//! `ftw serve`'s web server. `State` is what every handler shares; `routes` builds the
//! warp filter tree; `listen` accepts connections (plain or TLS through hyper-util, since
//! warp 0.4 has no TLS of its own) and shuts down gracefully.

mod api;
pub use api::INLINE_OUTPUT;
mod assets;
mod body;
pub mod context;
mod identity;
mod launch;
mod listen;
mod login;
mod openapi;
mod pages;
mod problem;
pub mod reload;
mod respond;
pub mod routes;
mod run_pages;
mod tools;

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
use crate::runs::Runs;

/// Everything the handlers share, built once at start-up.
pub struct State {
    pub config: Config,
    manifest: RwLock<Arc<Manifest>>,
    pub sessions: Codec,
    pub revoked: Revoked,
    pub verifier: Verifier,
    pub throttle: Throttle,
    pub replays: Replays,
    pub audit: Arc<Audit>,
    pub metrics: Arc<Metrics>,
    pub runs: Arc<Runs>,
    /// ftw itself serves TLS (HSTS; cookies are `Secure` and `__Host-`).
    pub tls: bool,
    /// The base path with a trailing slash: the prefix of every link.
    pub base: String,
}

pub const SESSION_COOKIE: &str = "ftw_session";
pub const SESSION_COOKIE_SECURE: &str = "__Host-ftw_session";
pub const LOGIN_COOKIE: &str = "ftw_login";
pub const LOGIN_COOKIE_SECURE: &str = "__Host-ftw_login";
pub const SECOND_FACTOR_COOKIE: &str = "ftw_2fa";
pub const SECOND_FACTOR_COOKIE_SECURE: &str = "__Host-ftw_2fa";

impl State {
    pub fn new(
        config: Config,
        verifier: Verifier,
        runs: Arc<Runs>,
        audit: Arc<Audit>,
        metrics: Arc<Metrics>,
    ) -> State {
        let manifest = config.manifest.clone();
        State {
            sessions: Codec::new(config.keys.session),
            revoked: Revoked::new(revoked::DEFAULT_CAPACITY),
            verifier,
            throttle: Throttle::new(throttle::DEFAULT_CAPACITY),
            replays: Replays::default(),
            audit,
            metrics,
            runs,
            tls: config.tls.is_some(),
            base: crate::auth::next::home(&config.base_path),
            manifest: RwLock::new(Arc::new(manifest)),
            config,
        }
    }

    /// The manifest in force now.
    pub fn manifest(&self) -> Arc<Manifest> {
        Arc::clone(&self.manifest.read().expect("manifest lock"))
    }

    /// Puts a new manifest in force for new requests (sessions of removed or re-hashed
    /// users end at their next request, because their fingerprint no longer matches).
    pub fn replace_manifest(&self, manifest: Manifest) {
        *self.manifest.write().expect("manifest lock") = Arc::new(manifest);
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
pub fn run(config: Config) -> Result<()> {
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
    runtime.block_on(listen::serve(config))
}
