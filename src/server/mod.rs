//! `ftw serve`'s web server. `State` is what every handler shares; `routes` builds the
//! warp filter tree; `listen` accepts connections (plain or TLS through hyper-util, since
//! warp 0.4 has no TLS of its own) and shuts down gracefully.

mod assets;
mod identity;
mod listen;
mod pages;
mod problem;
mod respond;
pub mod routes;
mod run_pages;
mod tools;

use std::sync::{Arc, RwLock};

pub use identity::ClientAddr;

use crate::auth::passwords::Verifier;
use crate::auth::revoked::{self, Revoked};
use crate::auth::session::{Codec, Policy};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::manifest::Manifest;
use crate::runs::Runs;

/// Everything the handlers share, built once at start-up.
pub struct State {
    pub config: Config,
    manifest: RwLock<Arc<Manifest>>,
    pub sessions: Codec,
    pub revoked: Revoked,
    pub verifier: Verifier,
    pub runs: Arc<Runs>,
    pub policy: Policy,
    /// Cookies get `Secure` and the `__Host-` prefix (ftw serves TLS).
    pub secure: bool,
    /// The base path with a trailing slash: the prefix of every link.
    pub base: String,
}

pub const SESSION_COOKIE: &str = "ftw_session";
pub const SESSION_COOKIE_SECURE: &str = "__Host-ftw_session";
pub const LOGIN_COOKIE: &str = "ftw_login";
pub const LOGIN_COOKIE_SECURE: &str = "__Host-ftw_login";

impl State {
    pub fn new(config: Config, verifier: Verifier, runs: Arc<Runs>) -> State {
        let secure = config.tls.is_some();
        let name = if secure {
            SESSION_COOKIE_SECURE
        } else {
            SESSION_COOKIE
        };
        let manifest = config.manifest.clone();
        let policy = Policy {
            ttl: manifest.auth.session_ttl.as_secs(),
            idle: manifest.auth.session_idle.as_secs(),
        };
        State {
            sessions: Codec::new(config.keys.session, name),
            revoked: Revoked::new(revoked::DEFAULT_CAPACITY),
            verifier,
            runs,
            policy,
            secure,
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

    pub fn login_cookie_name(&self) -> &'static str {
        if self.secure {
            LOGIN_COOKIE_SECURE
        } else {
            LOGIN_COOKIE
        }
    }

    /// Cookie `Path`: `/` for `__Host-` cookies (the prefix requires it), else the base.
    pub fn cookie_path(&self) -> &str {
        if self.secure {
            "/"
        } else {
            &self.config.base_path
        }
    }
}

/// Runs the server until SIGINT or SIGTERM, then shuts down gracefully.
pub fn run(config: Config) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::runtime(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(listen::serve(config))
}
