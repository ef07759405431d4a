//! Hot reload: when the manifest (or its users file) changes on disk, or on SIGHUP, ftw
//! reads and checks it again (SIGHUP also reopens the audit log, for log rotation). A valid manifest takes effect for new requests at once;
//! running tools keep the plan they started with. An invalid one is refused with the
//! same report as `ftw check`, and the old one keeps serving. Users removed or given a
//! new hash lose their sessions at their next request (their fingerprint no longer
//! matches).
//!
//! Changes are found by polling the files' size, mtime and inode every two seconds:
//! editors that save by renaming a new file into place are seen too, and no watcher
//! crate or inotify limit is involved.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{Signal, SignalKind, signal};

use super::State;
use crate::auth::keys::KeySource;
use crate::manifest::{self, Manifest, ZERO_CONFIG_USER};

const POLL: Duration = Duration::from_secs(2);

/// What identifies a file's version.
type Stamp = Option<(u64, i64, i64, u64)>;

fn stamp(path: &Path) -> Stamp {
    let m = std::fs::metadata(path).ok()?;
    Some((m.len(), m.mtime(), m.mtime_nsec(), m.ino()))
}

fn watched(state: &State) -> Vec<PathBuf> {
    let mut files = vec![state.config.manifest_path.clone()];
    files.extend(state.manifest().auth.users_file.clone());
    files
}

/// Registers the SIGHUP handler now (before ftw announces itself, so an early SIGHUP
/// reloads instead of killing the process).
pub fn hangups() -> Option<Signal> {
    match signal(SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!("cannot listen for SIGHUP ({e}); reloading on file changes only");
            None
        }
    }
}

/// The signing-key file, when the key comes from one.
fn key_file(state: &State) -> Option<PathBuf> {
    match &state.config.keys.source {
        KeySource::Flag(path) | KeySource::Manifest(path) => Some(path.clone()),
        KeySource::Env | KeySource::Ephemeral => None,
    }
}

/// Runs until the process ends: reloads on change or SIGHUP.
pub async fn watch(state: Arc<State>, mut hangup: Option<Signal>) {
    let mut stamps: Vec<Stamp> = watched(&state).iter().map(|p| stamp(p)).collect();
    let key_file = key_file(&state);
    let mut key_stamp = key_file.as_deref().map(stamp);
    loop {
        let by_signal = tokio::select! {
            () = tokio::time::sleep(POLL) => false,
            Some(()) = async { match hangup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => true,
        };
        // The signing key is read once: sessions signed with it must keep working.
        // A new key on disk is not taken silently; the log says what to do.
        if let Some(path) = &key_file {
            let now = Some(stamp(path));
            if now != key_stamp {
                key_stamp = now;
                tracing::warn!(
                    "the signing key file {} changed; ftw keeps signing with the key it started with. Restart ftw to use the new key (that ends every session)",
                    path.display()
                );
            }
        }
        if by_signal {
            // SIGHUP is also what log rotation sends.
            state.audit.reopen();
        }
        let now: Vec<Stamp> = watched(&state).iter().map(|p| stamp(p)).collect();
        if by_signal || now != stamps {
            // A save can be caught half-written; a moment later it is whole.
            if !by_signal {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            reload(&state).await;
            state.warm_providers();
            stamps = watched(&state).iter().map(|p| stamp(p)).collect();
        }
    }
}

/// Reads and checks the manifest again; puts it in force if it is valid.
pub async fn reload(state: &State) {
    let path = &state.config.manifest_path;
    let loaded = match manifest::load(path) {
        Ok(loaded) => loaded,
        Err(report) => {
            tracing::error!(
                "{} changed but is not valid; ftw keeps serving the previous version:\n{report}",
                path.display()
            );
            return;
        }
    };
    for warning in &loaded.warnings {
        tracing::warn!("{warning}");
    }
    let mut next = loaded.manifest;
    let current = state.manifest();
    if let Err(why) = keep_zero_config_user(state, &current, &mut next) {
        tracing::error!(
            "{} changed, but {why}; ftw keeps serving the previous version",
            path.display()
        );
        return;
    }
    for what in needs_restart(&current, &next) {
        tracing::warn!(
            "`{what}` changed in {}; restart ftw to apply it",
            path.display()
        );
    }
    state
        .verifier
        .match_cost(next.auth.users.values().map(|u| u.password_hash.as_str()));
    let tools = next.tools.len();
    let users = next.auth.users.keys().cloned().collect();
    state.replace_manifest(next);
    // Users who left stay signed out should they come back with the same hash.
    match crate::auth::departed::retire_departed(
        state.store.as_ref(),
        &state.revoked,
        users,
        crate::auth::now(),
    )
    .await
    {
        Ok(departed) if !departed.is_empty() => tracing::info!(
            "user(s) removed: {}; their sessions are ended for good",
            departed.join(", ")
        ),
        Ok(_) => {}
        Err(e) => tracing::error!("cannot store which users were removed: {e}"),
    }
    tracing::info!("reloaded {}: {tools} tool(s)", path.display());
}

/// A server started without users has a one-time `admin`; it stays while the manifest
/// still has no users. Going from users to none needs a restart, because that is when
/// ftw prints a one-time password.
fn keep_zero_config_user(
    state: &State,
    current: &Manifest,
    next: &mut Manifest,
) -> Result<(), String> {
    let no_users = next.auth.users.is_empty() && !next.auth.has_outside_users();
    if !no_users {
        return Ok(());
    }
    match (
        &state.config.one_time_password,
        current.auth.users.get(ZERO_CONFIG_USER),
    ) {
        (Some(_), Some(admin)) => {
            next.auth
                .users
                .insert(ZERO_CONFIG_USER.into(), admin.clone());
            Ok(())
        }
        _ => Err("it has no users any more (restart ftw to get a one-time password)".into()),
    }
}

/// Settings that only take effect at start-up.
fn needs_restart(current: &Manifest, next: &Manifest) -> Vec<&'static str> {
    let (a, b) = (&current.server, &next.server);
    let mut changed = Vec::new();
    if a.host != b.host {
        changed.push("host");
    }
    if a.port != b.port {
        changed.push("port");
    }
    if a.base_path != b.base_path {
        changed.push("base_path");
    }
    if a.tls != b.tls {
        changed.push("tls_cert/tls_key");
    }
    if a.audit_log != b.audit_log {
        changed.push("audit_log");
    }
    if current.auth.secret_key_file != next.auth.secret_key_file {
        changed.push("secret_key_file");
    }
    changed
}
