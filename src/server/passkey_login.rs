//! Signing in with a passkey: as the second step after a password (POST
//! `/login/passkey/options` then `/login/passkey`, beside the code form), or alone where
//! `[auth] passkey_sign_in` allows it. Both are JSON requests from the sign-in page's
//! script, with the page's CSRF token in `X-CSRF-Token` and this site's origin. Success
//! is the same 303 with a new session as a password sign-in; failures count for
//! throttling and are audited.

use std::sync::Arc;
use std::time::Instant;

use http::StatusCode;
use serde_json::{Value, json};
use warp::Rejection;
use warp::reply::Response;
use webauthn_rs::prelude::{AuthenticationResult, PublicKeyCredential};

use super::State;
use super::account::{password_mark, relying_party};
use super::context::Ctx;
use super::login::{SECOND_FACTOR_TTL, pending, start_session};
use super::problem::Problem;
use super::respond::json as json_reply;
use crate::audit;
use crate::auth::csrf::{self, Binding};
use crate::auth::passkeys::{self, Ceremony};
use crate::auth::session::Session;
use crate::auth::{self, next::safe_next};
use crate::store::PasskeyRecord;

fn refused(status: StatusCode, message: &str) -> Response {
    json_reply(status, &json!({ "error": message }))
}

/// POST /login/passkey/options, body `{"mode": "second-factor" | "passwordless"}`.
pub async fn options(state: Arc<State>, ctx: Ctx, body: Value) -> Result<Response, Rejection> {
    if !ctx.same_origin() {
        return Err(Problem::CrossSite.into());
    }
    let token = ctx.header("x-csrf-token").unwrap_or("");
    let key = &state.config.keys.csrf;
    let rp = relying_party(&state, &ctx)?;
    let ceremony = match body["mode"].as_str() {
        Some("second-factor") => {
            let (step, user) = pending(&state, &ctx).await.ok_or(Problem::LoginExpired)?;
            if !csrf::verify(key, Binding::Login(&step.id), token) {
                return Err(Problem::BadCsrf.into());
            }
            let keys: Vec<_> = stored(&state, &user.name)
                .await?
                .iter()
                .filter(|r| current(&state, r))
                .filter_map(passkeys::credential)
                .collect();
            if keys.is_empty() {
                return Ok(refused(StatusCode::CONFLICT, "You have no passkey."));
            }
            let (challenge, started) = rp
                .start_passkey_authentication(&keys)
                .map_err(|e| Problem::Internal(format!("cannot start a passkey check: {e}")))?;
            let id = state
                .ceremonies
                .hold(Ceremony::SecondFactor {
                    user: user.name.clone(),
                    step: step.id,
                    state: started,
                })
                .await
                .map_err(kept)?;
            (id, serde_json::to_value(challenge).unwrap_or(Value::Null))
        }
        Some("passwordless") if state.manifest().auth.passkey_sign_in => {
            let nonce = state.login_nonce(&ctx).ok_or(Problem::LoginExpired)?;
            // A blocked address starts nothing (nothing is counted here).
            state
                .throttle
                .begin_address(&state.manifest().auth.throttle, ctx.client, Instant::now())
                .await
                .map_err(Problem::Throttled)?
                .not_checked();
            if !csrf::verify(key, Binding::Login(&nonce), token) {
                return Err(Problem::BadCsrf.into());
            }
            let (challenge, started) = rp
                .start_discoverable_authentication()
                .map_err(|e| Problem::Internal(format!("cannot start a passkey check: {e}")))?;
            let id = state
                .ceremonies
                .hold(Ceremony::Passwordless {
                    nonce,
                    state: started,
                })
                .await
                .map_err(kept)?;
            (id, serde_json::to_value(challenge).unwrap_or(Value::Null))
        }
        _ => return Err(Problem::NotFound.into()),
    };
    Ok(json_reply(
        StatusCode::OK,
        &json!({ "ceremony": ceremony.0, "options": ceremony.1 }),
    ))
}

async fn stored(state: &State, user: &str) -> Result<Vec<PasskeyRecord>, Problem> {
    state
        .store
        .passkeys(user)
        .await
        .map_err(|e| Problem::Internal(format!("cannot read passkeys: {e}")))
}

/// Whether `record` was made under `user`'s current password.
fn current(state: &State, record: &PasskeyRecord) -> bool {
    password_mark(state, &record.user).as_ref() == Some(&record.fingerprint)
}

/// Saves the passkey's new signature counter and the time it was used.
async fn used(state: &State, mut record: PasskeyRecord, result: &AuthenticationResult) {
    if let Some(mut key) = passkeys::credential(&record) {
        key.update_credential(result);
        if let Ok(text) = serde_json::to_string(&key) {
            record.passkey = text;
        }
    }
    record.used_ms = Some(crate::store::unix_ms(std::time::SystemTime::now()));
    if let Err(e) = state.store.passkey_used(record).await {
        tracing::error!("cannot store a passkey's use: {e}");
    }
}

/// POST /login/passkey, body `{"ceremony", "credential", "next"}`.
pub async fn finish(state: Arc<State>, ctx: Ctx, body: Value) -> Result<Response, Rejection> {
    if !ctx.same_origin() {
        return Err(Problem::CrossSite.into());
    }
    let next = safe_next(body["next"].as_str(), &state.config.base_path);
    let token = ctx.header("x-csrf-token").unwrap_or("");
    let key = &state.config.keys.csrf;
    let ceremony = match body["ceremony"].as_str() {
        Some(id) => state.ceremonies.take(id).await,
        None => None,
    };
    let Some(ceremony) = ceremony else {
        return Ok(refused(
            StatusCode::BAD_REQUEST,
            "This passkey request expired. Try again.",
        ));
    };
    let Ok(credential) = serde_json::from_value::<PublicKeyCredential>(body["credential"].clone())
    else {
        return Ok(refused(
            StatusCode::BAD_REQUEST,
            "The browser's answer is not a passkey.",
        ));
    };
    let rp = relying_party(&state, &ctx)?;
    let manifest = state.manifest();
    let policy = manifest.auth.throttle;
    match ceremony {
        Ceremony::SecondFactor {
            user,
            step,
            state: started,
        } => {
            // The same sign-in, still pending, in this browser.
            let Some((session, account)) = pending(&state, &ctx)
                .await
                .filter(|(s, u)| s.id == step && u.name == user)
            else {
                return Err(Problem::LoginExpired.into());
            };
            if !csrf::verify(key, Binding::Login(&session.id), token) {
                return Err(Problem::BadCsrf.into());
            }
            let attempt = state
                .throttle
                .begin(&policy, &user, true, ctx.client, Instant::now())
                .await
                .map_err(Problem::Throttled)?;
            let id = auth::b64(credential.get_credential_id());
            let record = stored(&state, &user)
                .await?
                .into_iter()
                .find(|r| r.id == id && current(&state, r));
            let checked = record
                .as_ref()
                .ok_or("not one of this user's passkeys".to_string())
                .and_then(|_| {
                    rp.finish_passkey_authentication(&credential, &started)
                        .map_err(|e| e.to_string())
                });
            let result = match checked {
                Ok(result) => result,
                Err(why) => {
                    state.audit.record(
                        "2fa-failed",
                        json!({ "user": user, "client": audit::client(ctx.client), "reason": format!("passkey: {why}") }),
                    );
                    let _ = attempt.failed(Instant::now()).await;
                    return Ok(refused(
                        StatusCode::UNAUTHORIZED,
                        "That passkey did not check out.",
                    ));
                }
            };
            attempt.succeeded();
            let expires = session.issued + SECOND_FACTOR_TTL;
            if !state.revoked.use_once(&session, expires, auth::now()).await {
                return Err(Problem::LoginExpired.into());
            }
            used(&state, record.expect("checked above"), &result).await;
            let fresh = Session::new(
                &account.name,
                state.sessions.fingerprint(&account.password_hash),
                auth::now(),
            );
            Ok(start_session(&state, &ctx, fresh, &next, "password+passkey").await)
        }
        Ceremony::Passwordless {
            nonce,
            state: started,
        } => {
            if state.login_nonce(&ctx).as_deref() != Some(&nonce[..]) {
                return Err(Problem::LoginExpired.into());
            }
            if !csrf::verify(key, Binding::Login(&nonce), token) {
                return Err(Problem::BadCsrf.into());
            }
            let attempt = state
                .throttle
                .begin_address(&policy, ctx.client, Instant::now())
                .await
                .map_err(Problem::Throttled)?;
            let id = auth::b64(credential.get_credential_id());
            let record = state
                .store
                .passkey(&id)
                .await
                .map_err(|e| Problem::Internal(format!("cannot read passkeys: {e}")))?;
            let account = record
                .as_ref()
                .filter(|r| current(&state, r))
                .and_then(|r| manifest.auth.users.get(&r.user).map(|u| (r, u)));
            let checked = match (
                account,
                rp.identify_discoverable_authentication(&credential),
            ) {
                (Some((record, user)), Ok((handle, _)))
                    if handle == passkeys::user_handle(key, &user.name) =>
                {
                    passkeys::credential(record)
                        .ok_or("the stored passkey is unreadable".to_string())
                        .and_then(|key| {
                            rp.finish_discoverable_authentication_v2(&credential, started, &key)
                                .map_err(|e| e.to_string())
                        })
                }
                _ => Err("no such passkey, or not a user of the manifest".into()),
            };
            let result = match checked {
                Ok(result) => result,
                Err(why) => {
                    state.metrics.sign_in("failure");
                    state.audit.record(
                        "sign-in-failed",
                        json!({ "via": "passkey", "client": audit::client(ctx.client), "reason": why }),
                    );
                    let _ = attempt.failed(Instant::now()).await;
                    return Ok(refused(
                        StatusCode::UNAUTHORIZED,
                        "That passkey did not check out.",
                    ));
                }
            };
            attempt.succeeded();
            let record = record.expect("checked above");
            let user = manifest.auth.users[&record.user].clone();
            used(&state, record, &result).await;
            let fresh = Session::new(
                &user.name,
                state.sessions.fingerprint(&user.password_hash),
                auth::now(),
            );
            Ok(start_session(&state, &ctx, fresh, &next, "passkey").await)
        }
        Ceremony::Register { .. } => Err(Problem::NotFound.into()),
    }
}

/// A ceremony the database would not keep.
fn kept(e: String) -> Problem {
    Problem::Internal(format!("cannot keep a passkey ceremony: {e}"))
}
