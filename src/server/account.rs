//! `/account`: who you are signed in as (and through what), your groups, this session,
//! your second factors, and your passkeys: add one (a WebAuthn ceremony in two JSON
//! requests), remove one, or sign out every session at once.
//!
//! Passkeys belong to users with a password of ftw's own (`[auth.users]`): they are the
//! second factor after that password, and the way to sign in without one where the
//! manifest allows it. Users of an identity provider or a directory set up their
//! factors there. Every write needs the session's CSRF token and this site's origin.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use askama::Template;
use http::StatusCode;
use serde_json::{Value, json};
use warp::Rejection;
use warp::reply::Response;
use webauthn_rs::prelude::RegisterPublicKeyCredential;

use super::State;
use super::context::Ctx;
use super::format::human_time;
use super::identity::{Authed, Via};
use super::pages::{Fields, field, require};
use super::problem::Problem;
use super::respond::{Page, html, json as json_reply, see_other};
use crate::audit;
use crate::auth::passkeys::{self, Ceremony, MAX_PER_USER};
use crate::auth::{self};
use crate::form::CSRF_FIELD;
use crate::store::PasskeyRecord;

/// A passkey's row on the page.
struct Row {
    id: String,
    name: String,
    created: String,
    used: String,
    /// Made before the user's password last changed: it no longer works.
    retired: bool,
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage<'a> {
    page: Page<'a>,
    user: &'a str,
    via: String,
    groups: String,
    admin: bool,
    since: String,
    /// A user of `[auth.users]`: passkeys and TOTP apply.
    local: bool,
    totp: bool,
    passkeys: Vec<Row>,
    full: bool,
    /// Signed in long ago: adding a passkey needs a fresh sign-in.
    stale: bool,
}

fn when(ms: i64) -> String {
    human_time(UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64))
}

/// WebAuthn's relying party for this request: the host the browser addressed.
pub fn relying_party(state: &State, ctx: &Ctx) -> Result<webauthn_rs::Webauthn, Problem> {
    let origin = ctx.origin().ok_or(Problem::BadRequest)?;
    passkeys::relying_party(&origin, &state.manifest().title).map_err(Problem::Internal)
}

/// Whether `authed` signed in with a password of ftw's own.
fn is_local(state: &State, authed: &Authed) -> bool {
    let local_session = match &authed.via {
        Via::Session(s) => s.outside.is_none(),
        _ => false,
    };
    local_session && state.manifest().auth.users.contains_key(&authed.user.name)
}

/// GET /account
pub async fn show(state: Arc<State>, ctx: Ctx) -> Result<Response, Rejection> {
    let authed = require(&state, &ctx, &format!("{}account", state.base)).await?;
    let manifest = state.manifest();
    let local = is_local(&state, &authed);
    let stored = if local {
        state
            .store
            .passkeys(&authed.user.name)
            .await
            .map_err(|e| Problem::Internal(format!("cannot read passkeys: {e}")))?
    } else {
        Vec::new()
    };
    let mark = password_mark(&state, &authed.user.name);
    let since = match &authed.via {
        Via::Session(s) => human_time(UNIX_EPOCH + Duration::from_secs(s.issued)),
        _ => "—".into(),
    };
    let via = match &authed.via {
        Via::Session(s) => match &s.outside {
            Some(o) => o.provider.clone(),
            None => "password".into(),
        },
        other => other.label(),
    };
    let mut page = Page::new(&state, &manifest.title, "Your account", Some(&authed));
    page.nav = "account";
    let body = AccountPage {
        page,
        user: &authed.user.name,
        via,
        groups: authed.user.groups.join(", "),
        admin: manifest.auth.is_admin(&authed.user),
        since,
        local,
        totp: authed.user.totp.is_some(),
        full: stored.len() >= MAX_PER_USER,
        stale: !fresh(&authed),
        passkeys: stored
            .into_iter()
            .map(|p| Row {
                id: p.id,
                name: p.name,
                created: when(p.created_ms),
                used: p.used_ms.map_or_else(|| "never".into(), when),
                retired: Some(&p.fingerprint) != mark.as_ref(),
            })
            .collect(),
    };
    Ok(authed.finish(html(StatusCode::OK, &body)))
}

/// The signed-in user of a JSON request, with a good CSRF header, who may have passkeys.
async fn passkey_owner(state: &State, ctx: &Ctx) -> Result<Authed, Problem> {
    let authed = state.authenticate(ctx).await.ok_or(Problem::Unauthorized)?;
    authed.may_write(state, ctx, None)?;
    if !is_local(state, &authed) {
        return Err(Problem::NotFound);
    }
    Ok(authed)
}

/// How recent the sign-in must be to add a passkey: a passkey outlives the session, so a
/// stolen session cookie alone must not be enough to make one.
pub const FRESH_SIGN_IN: u64 = 600;

/// Whether `authed` signed in (with a password) in the last ten minutes.
fn fresh(authed: &Authed) -> bool {
    matches!(&authed.via, Via::Session(s) if auth::now().saturating_sub(s.issued) < FRESH_SIGN_IN)
}

/// The password fingerprint a user's passkeys are bound to (hex).
pub fn password_mark(state: &State, user: &str) -> Option<String> {
    let manifest = state.manifest();
    let hash = &manifest.auth.users.get(user)?.password_hash;
    Some(auth::hex(&state.sessions.fingerprint(hash)))
}

/// POST /account/passkeys/options: the challenge for a new passkey.
pub async fn register_options(state: Arc<State>, ctx: Ctx) -> Result<Response, Rejection> {
    let authed = passkey_owner(&state, &ctx).await?;
    if !fresh(&authed) {
        return Ok(json_reply(
            StatusCode::FORBIDDEN,
            &json!({ "error": "To add a passkey, sign out and sign in again first (within ten minutes)." }),
        ));
    }
    let name = &authed.user.name;
    let existing = state
        .store
        .passkeys(name)
        .await
        .map_err(|e| Problem::Internal(format!("cannot read passkeys: {e}")))?;
    if existing.len() >= MAX_PER_USER {
        return Ok(json_reply(
            StatusCode::CONFLICT,
            &json!({ "error": format!("You have {MAX_PER_USER} passkeys, the most there may be. Remove one first.") }),
        ));
    }
    let exclude = existing
        .iter()
        .filter_map(passkeys::credential)
        .map(|p| p.cred_id().clone())
        .collect();
    let rp = relying_party(&state, &ctx)?;
    let handle = passkeys::user_handle(&state.config.keys.csrf, name);
    let (challenge, ceremony_state) = rp
        .start_passkey_registration(handle, name, name, Some(exclude))
        .map_err(|e| Problem::Internal(format!("cannot start a passkey: {e}")))?;
    let id = state
        .ceremonies
        .hold(Ceremony::Register {
            user: name.clone(),
            state: ceremony_state,
        })
        .await
        .map_err(|e| Problem::Internal(format!("cannot keep a passkey ceremony: {e}")))?;
    Ok(json_reply(
        StatusCode::OK,
        &json!({ "ceremony": id, "options": challenge }),
    ))
}

/// POST /account/passkeys: the browser's new passkey, checked and stored.
pub async fn register(state: Arc<State>, ctx: Ctx, body: Value) -> Result<Response, Rejection> {
    let authed = passkey_owner(&state, &ctx).await?;
    let refused = |message: &str| {
        Ok(json_reply(
            StatusCode::BAD_REQUEST,
            &json!({ "error": message }),
        ))
    };
    let ceremony = match body["ceremony"].as_str() {
        Some(id) => state.ceremonies.take(id).await,
        None => None,
    };
    let Some(Ceremony::Register {
        user,
        state: started,
    }) = ceremony
    else {
        return refused("This passkey request expired. Try again.");
    };
    if user != authed.user.name {
        return refused("This passkey request belongs to another user.");
    }
    let Ok(credential) =
        serde_json::from_value::<RegisterPublicKeyCredential>(body["credential"].clone())
    else {
        return refused("The browser's answer is not a passkey.");
    };
    let rp = relying_party(&state, &ctx)?;
    let passkey = match rp.finish_passkey_registration(&credential, &started) {
        Ok(passkey) => passkey,
        Err(e) => {
            tracing::info!("a passkey of {user} was refused: {e}");
            return refused("The passkey did not check out. Try again.");
        }
    };
    let name: String = body["name"]
        .as_str()
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .take(64)
        .collect();
    let name = if name.trim().is_empty() {
        "Passkey".to_string()
    } else {
        name.trim().to_string()
    };
    let Some(mark) = password_mark(&state, &user) else {
        return refused("Only users with a password of ftw's own can add passkeys.");
    };
    let record = PasskeyRecord {
        id: auth::b64(passkey.cred_id().as_ref()),
        user: user.clone(),
        name: name.clone(),
        fingerprint: mark,
        passkey: serde_json::to_string(&passkey)
            .map_err(|e| Problem::Internal(format!("cannot store a passkey: {e}")))?,
        created_ms: crate::store::unix_ms(std::time::SystemTime::now()),
        used_ms: None,
    };
    if let Err(e) = state.store.add_passkey(record).await {
        if e.full {
            return Err(Problem::stored("a passkey", &e).into());
        }
        tracing::info!("a passkey of {user} was not stored: {e}");
        return Ok(json_reply(
            StatusCode::CONFLICT,
            &json!({ "error": "This passkey is registered already." }),
        ));
    }
    state.audit.record(
        "passkey-added",
        json!({ "user": user, "name": name, "client": audit::client(ctx.client) }),
    );
    Ok(json_reply(StatusCode::CREATED, &json!({ "name": name })))
}

/// POST /account/passkeys/ID/remove
pub async fn remove(
    id: String,
    state: Arc<State>,
    ctx: Ctx,
    fields: Fields,
) -> Result<Response, Rejection> {
    let authed = require(&state, &ctx, &format!("{}account", state.base)).await?;
    authed.may_write(&state, &ctx, field(&fields, CSRF_FIELD))?;
    state
        .store
        .remove_passkey(&authed.user.name, &id)
        .await
        .map_err(|e| Problem::stored("a passkey", &e))?;
    state.audit.record(
        "passkey-removed",
        json!({ "user": authed.user.name, "client": audit::client(ctx.client) }),
    );
    Ok(see_other(&format!("{}account", state.base)))
}

/// POST /account/sign-out-everywhere: every session of this user ends, this one too.
pub async fn sign_out_everywhere(
    state: Arc<State>,
    ctx: Ctx,
    fields: Fields,
) -> Result<Response, Rejection> {
    let authed = require(&state, &ctx, &format!("{}account", state.base)).await?;
    authed.may_write(&state, &ctx, field(&fields, CSRF_FIELD))?;
    if !matches!(authed.via, Via::Session(_)) {
        return Err(Problem::NotFound.into());
    }
    let now = auth::now();
    let ttl = state.policy().ttl;
    if let Err(e) = state
        .revoked
        .end_all_before(&authed.user.name, now, now + ttl)
        .await
    {
        // With replicas the database is the only way the others learn of it: say it
        // failed rather than pretend.
        if state.store.shared() {
            return Err(Problem::stored("a sign-out everywhere", &e).into());
        }
        tracing::error!("cannot store a sign-out everywhere: {e}");
    }
    state.audit.record(
        "sign-out-everywhere",
        json!({ "user": authed.user.name, "client": audit::client(ctx.client) }),
    );
    Ok(see_other(&format!("{}login", state.base)))
}
