//! Signing in and out: GET/POST `/login`, the second step for TOTP users
//! (GET/POST `/login/2fa`), POST `/logout`.
//!
//! Sign-in checks, in order: same origin, the login form's CSRF token (bound to a
//! pre-login cookie), the throttle (name and address), the password (off the async
//! threads; unknown names cost the same), then for TOTP users a short-lived signed
//! "password done" cookie and a code. Every outcome is audited. Success starts a new
//! session and clears every pre-login cookie: nothing from before sign-in survives.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use askama::Template;
use http::header::RETRY_AFTER;
use http::{HeaderValue, StatusCode};
use serde_json::json;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::State;
use super::context::Ctx;
use super::directory::{self, Refusal};
use super::identity::{Authed, CookieName, Via, request_cookies};
use super::pages::{Fields, field};
use super::problem::Problem;
use super::respond::{Page, add_cookie, html, see_other};
use crate::audit;
use crate::auth::csrf::{self, Binding};
use crate::auth::next::safe_next;
use crate::auth::session::Session;
use crate::auth::{self, b64, totp};
use crate::form::CSRF_FIELD;
use crate::manifest::User;

/// The one message for every failed sign-in, whatever failed.
pub const LOGIN_FAILED: &str = "Wrong user name or password.";
/// How long the code step may take after the password step.
pub(super) const SECOND_FACTOR_TTL: u64 = 300;

/// Which step of signing in a page shows.
enum Step<'a> {
    /// Name and password. The name typed last time is kept, so a mistyped password does
    /// not cost the name too.
    Password { username: &'a str },
    /// The second factor: the six-digit code (`totp`) and/or a passkey.
    Code { totp: bool, passkey: bool },
}

#[derive(Template)]
#[template(path = "login.html")]
struct SignInPage<'a> {
    page: Page<'a>,
    step: Step<'a>,
    next: &'a str,
    message: Option<&'a str>,
    /// Identity providers' buttons: the path after `login/`, the button's id, its label.
    providers: Vec<(String, String, &'a str)>,
    /// Whether the page has the password (or code) form: someone signs in with a
    /// password of ftw's own, or this is the code step of a TOTP user.
    show_form: bool,
    /// The manifest lets users sign in with a passkey alone.
    passkey_sign_in: bool,
}

/// A sign-in step. Its form's CSRF token is bound to `binding`: the pre-login nonce,
/// or the pending session of the code step.
fn sign_in_page(
    state: &State,
    status: StatusCode,
    step: Step,
    binding: &[u8],
    next: &str,
    message: Option<&str>,
) -> Response {
    let manifest = state.manifest();
    let csrf = csrf::token(&state.config.keys.csrf, Binding::Login(binding));
    let heading = match step {
        Step::Password { .. } => "Sign in",
        Step::Code { .. } => "Second step",
    };
    let mut page = Page::new(state, &manifest.title, heading, None);
    page.csrf = &csrf;
    let show_form = match step {
        Step::Password { .. } => !manifest.auth.users.is_empty() || manifest.auth.ldap.is_some(),
        Step::Code { totp, .. } => totp,
    };
    let body = SignInPage {
        page,
        step,
        next,
        message,
        providers: manifest
            .auth
            .oidc
            .iter()
            .map(|p| {
                let id = format!("provider-{}", p.name);
                (format!("oidc/{}", p.name), id, p.label.as_str())
            })
            .chain(manifest.auth.github.iter().map(|g| {
                (
                    "github".to_string(),
                    "provider-github".into(),
                    g.label.as_str(),
                )
            }))
            .collect(),
        show_form,
        passkey_sign_in: manifest.auth.passkey_sign_in,
    };
    html(status, &body)
}

/// The pre-login nonce of this browser, or a new one with the cookie that sets it.
pub(super) fn login_nonce_or_new(state: &State, ctx: &Ctx) -> (Vec<u8>, Option<String>) {
    match state.login_nonce(ctx) {
        Some(nonce) => (nonce, None),
        None => {
            let nonce = auth::random::<16>().to_vec();
            let name = CookieName::Login.name(ctx.secure);
            let cookie = state.cookie(ctx.secure, name, &b64(&nonce), None);
            (nonce, Some(cookie))
        }
    }
}

/// The sign-in page with `message`, ready for another try.
pub(super) fn sign_in_again(
    state: &State,
    ctx: &Ctx,
    status: StatusCode,
    next: &str,
    message: &str,
) -> Response {
    let (nonce, cookie) = login_nonce_or_new(state, ctx);
    let step = Step::Password { username: "" };
    let r = sign_in_page(state, status, step, &nonce, next, Some(message));
    match cookie {
        Some(c) => add_cookie(r, &c),
        None => r,
    }
}

/// Where to go after signing in: `next` from the query or the form, if it is a
/// same-site path; the start page otherwise.
fn next_from(state: &State, raw: Option<&str>) -> String {
    safe_next(raw, &state.config.base_path)
}

/// `next` of a sign-in page's query string, already made safe.
pub fn next_param(
    state: &Arc<State>,
) -> impl Filter<Extract = (String,), Error = std::convert::Infallible> + Clone + use<> {
    let state = Arc::clone(state);
    warp::query::<HashMap<String, String>>()
        .or(warp::any().map(HashMap::new))
        .unify()
        .map(move |query: HashMap<String, String>| {
            next_from(&state, query.get("next").map(String::as_str))
        })
}

/// Audits that a name or an address is blocked (refused now, or by this failure).
fn audit_throttled(state: &State, ctx: &Ctx, user: &str, wait: Duration) {
    state.audit.record(
        "throttled",
        json!({ "user": user, "client": audit::client(ctx.client), "retry_after": wait.as_secs() }),
    );
}

/// 429 with `Retry-After`, on the page the user was on.
pub(super) fn throttled(mut r: Response, wait: Duration) -> Response {
    *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    let seconds = wait.as_secs().max(1);
    r.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(seconds));
    r
}

pub(super) fn throttled_message(wait: Duration) -> String {
    let minutes = wait.as_secs().div_ceil(60).max(1);
    format!(
        "Too many failed sign-ins. Try again in {minutes} minute{}.",
        if minutes == 1 { "" } else { "s" }
    )
}

/// GET /login: the form, with a fresh pre-login nonce unless the browser has one.
pub async fn form(state: Arc<State>, ctx: Ctx, next: String) -> Result<Response, Rejection> {
    if state.authenticate(&ctx).await.is_some() {
        return Ok(see_other(&next));
    }
    let (nonce, cookie) = login_nonce_or_new(&state, &ctx);
    let r = sign_in_page(
        &state,
        StatusCode::OK,
        Step::Password { username: "" },
        &nonce,
        &next,
        None,
    );
    Ok(match cookie {
        Some(c) => add_cookie(r, &c),
        None => r,
    })
}

/// The checks of every form on the sign-in page: this site's origin, the pre-login
/// cookie, and the form's CSRF token bound to it. The pre-login nonce.
pub(super) fn sign_in_form_checks(
    state: &State,
    ctx: &Ctx,
    fields: &Fields,
) -> Result<Vec<u8>, Problem> {
    if !ctx.same_origin() {
        return Err(Problem::CrossSite);
    }
    let nonce = state.login_nonce(ctx).ok_or(Problem::LoginExpired)?;
    if !state.login_csrf_ok(&nonce, field(fields, "_csrf").unwrap_or("")) {
        return Err(Problem::BadCsrf);
    }
    Ok(nonce)
}

/// POST /login
pub async fn submit(state: Arc<State>, ctx: Ctx, fields: Fields) -> Result<Response, Rejection> {
    let nonce = sign_in_form_checks(&state, &ctx, &fields)?;
    let next = next_from(&state, field(&fields, "next"));
    let username = field(&fields, "username").unwrap_or("");
    let password = field(&fields, "password").unwrap_or("");
    let manifest = state.manifest();
    let policy = manifest.auth.throttle;
    let known = manifest.auth.users.contains_key(username);
    // A directory matches `Alice`, `alice` and ` alice ` alike: one throttle count for
    // all of them. Names of the manifest are exact.
    let throttle_name = if known || manifest.auth.ldap.is_none() {
        username.to_string()
    } else {
        username.trim().to_lowercase()
    };

    let attempt = match state
        .throttle
        .begin(&policy, &throttle_name, known, ctx.client, Instant::now())
        .await
    {
        Ok(attempt) => attempt,
        Err(wait) => {
            audit_throttled(&state, &ctx, username, wait);
            state.metrics.sign_in("throttled");
            let page = sign_in_page(
                &state,
                StatusCode::OK,
                Step::Password { username },
                &nonce,
                &next,
                Some(&throttled_message(wait)),
            );
            return Ok(throttled(page, wait));
        }
    };

    let user = manifest.auth.users.get(username);
    if user.is_none()
        && let Some(ldap) = &manifest.auth.ldap
    {
        let checked = directory::sign_in(&state, &ctx, &manifest, ldap, username, password).await;
        let (status, message) = match checked {
            Ok(session) => {
                attempt.succeeded();
                return Ok(start_session(&state, &ctx, session, &next, "ldap").await);
            }
            Err(Refusal::Failed) => {
                if let Err(wait) = attempt.failed(Instant::now()).await {
                    audit_throttled(&state, &ctx, username, wait);
                }
                (StatusCode::UNAUTHORIZED, LOGIN_FAILED)
            }
            Err(Refusal::Unreachable) => {
                attempt.not_checked();
                (
                    StatusCode::BAD_GATEWAY,
                    "The directory cannot be reached right now. Try again in a moment.",
                )
            }
        };
        let step = Step::Password { username };
        return Ok(sign_in_page(
            &state,
            status,
            step,
            &nonce,
            &next,
            Some(message),
        ));
    }
    let hash = user.map(|u| u.password_hash.as_str());
    let ok = match state.verifier.verify(hash, username, password).await {
        Ok(ok) => ok,
        Err(_) => {
            // Too many sign-ins queued: nothing was checked, so nothing counts.
            attempt.not_checked();
            return Err(Problem::Busy.into());
        }
    };
    let Some(user) = user.filter(|_| ok) else {
        state.metrics.sign_in("failure");
        state.audit.record(
            "sign-in-failed",
            json!({ "user": username, "client": audit::client(ctx.client), "known_user": user.is_some() }),
        );
        if let Err(wait) = attempt.failed(Instant::now()).await {
            audit_throttled(&state, &ctx, username, wait);
        }
        return Ok(sign_in_page(
            &state,
            StatusCode::UNAUTHORIZED,
            Step::Password { username },
            &nonce,
            &next,
            Some(LOGIN_FAILED),
        ));
    };
    attempt.succeeded();

    if user.totp.is_some() || has_passkeys(&state, &user.name).await {
        // Password done; the code (or passkey) comes next, within five minutes, from this browser:
        // the step's id is this sign-in's nonce (the login cookie), so the cookie is
        // good only beside that one, and it is revoked once used.
        let now = auth::now();
        let mut pending = Session::new(
            &user.name,
            state.sessions.fingerprint(&user.password_hash),
            now,
        );
        pending.id.copy_from_slice(&nonce);
        let name = CookieName::SecondFactor.name(ctx.secure);
        let cookie = state.cookie(
            ctx.secure,
            name,
            &state.sessions.seal(name, &pending),
            Some(SECOND_FACTOR_TTL),
        );
        let location = format!(
            "{}login/2fa?next={}",
            state.base,
            super::pages::urlencode(&next)
        );
        return Ok(add_cookie(see_other(&location), &cookie));
    }
    let session = password_session(&state, user);
    Ok(start_session(&state, &ctx, session, &next, "password").await)
}

fn password_session(state: &State, user: &User) -> Session {
    Session::new(
        &user.name,
        state.sessions.fingerprint(&user.password_hash),
        auth::now(),
    )
}

/// `session` started: a session this browser had before is revoked, the sign-in is
/// audited (`method`: `password`, `password+totp`, `oidc`), and every pre-login cookie
/// is gone, so nothing from before sign-in survives.
pub(super) async fn start_session(
    state: &State,
    ctx: &Ctx,
    session: Session,
    next: &str,
    method: &str,
) -> Response {
    // A session this browser still had ends here: one browser, one session.
    if let Some(Authed {
        via: Via::Session(old),
        ..
    }) = state.authenticate(ctx).await
    {
        drop(
            state
                .revoked
                .revoke(&old, old.expires(&state.policy()), auth::now()),
        );
    }
    state.throttle.succeed(&session.user);
    state.metrics.sign_in("success");
    let mut record =
        json!({ "user": session.user, "client": audit::client(ctx.client), "method": method });
    if let Some(outside) = &session.outside {
        record["via"] = json!(outside.provider);
        record["groups"] = json!(outside.groups);
    }
    state.audit.record("sign-in", record);
    let now = auth::now();
    let mut r = add_cookie(
        see_other(next),
        &state.session_cookie(ctx.secure, &session, now),
    );
    for which in [
        CookieName::Login,
        CookieName::SecondFactor,
        CookieName::Provider,
    ] {
        r = add_cookie(r, &state.expired_cookie(ctx.secure, which));
    }
    r
}

/// The password step of a TOTP user, if this browser finished it in the last five
/// minutes, still has that sign-in's login cookie, has not used the step yet, and the
/// user's password has not changed since.
pub(super) async fn pending(state: &State, ctx: &Ctx) -> Option<(Session, User)> {
    let name = CookieName::SecondFactor.name(ctx.secure);
    let now = auth::now();
    let manifest = state.manifest();
    let nonce = state.login_nonce(ctx)?;
    for value in request_cookies(&ctx.headers, name) {
        let Ok(session) = state.sessions.open(name, value) else {
            continue;
        };
        if session.id[..] != nonce[..] || state.revoked.check(&session).await {
            continue;
        }
        let fresh =
            session.issued <= now + 5 && now.saturating_sub(session.issued) < SECOND_FACTOR_TTL;
        let Some(user) = manifest.auth.users.get(&session.user) else {
            continue;
        };
        let same_password = state.sessions.fingerprint(&user.password_hash) == session.fingerprint;
        if fresh && same_password {
            return Some((session, user.clone()));
        }
    }
    None
}

/// Whether `user` has a passkey (a failed read counts as yes: the step then shows
/// the button, and the passkey check itself fails safely).
pub(super) async fn has_passkeys(state: &State, user: &str) -> bool {
    state
        .store
        .passkeys(user)
        .await
        .map_or(true, |list| !list.is_empty())
}

/// The second step `user` can take: their code, their passkey, or either.
async fn second_step<'a>(state: &State, user: &User) -> Step<'a> {
    Step::Code {
        totp: user.totp.is_some(),
        passkey: has_passkeys(state, &user.name).await,
    }
}

/// GET /login/2fa
pub async fn code_form(state: Arc<State>, ctx: Ctx, next: String) -> Result<Response, Rejection> {
    let Some((session, user)) = pending(&state, &ctx).await else {
        return Ok(see_other(&format!("{}login", state.base)));
    };
    let step = second_step(&state, &user).await;
    Ok(sign_in_page(
        &state,
        StatusCode::OK,
        step,
        &session.id,
        &next,
        None,
    ))
}

/// POST /login/2fa
pub async fn code_submit(
    state: Arc<State>,
    ctx: Ctx,
    fields: Fields,
) -> Result<Response, Rejection> {
    if !ctx.same_origin() {
        return Err(Problem::CrossSite.into());
    }
    let Some((session, user)) = pending(&state, &ctx).await else {
        return Err(Problem::LoginExpired.into());
    };
    let token = field(&fields, "_csrf").unwrap_or("");
    if !csrf::verify(&state.config.keys.csrf, Binding::Login(&session.id), token) {
        return Err(Problem::BadCsrf.into());
    }
    let next = next_from(&state, field(&fields, "next"));
    let policy = state.manifest().auth.throttle;
    let attempt = match state
        .throttle
        .begin(&policy, &user.name, true, ctx.client, Instant::now())
        .await
    {
        Ok(attempt) => attempt,
        Err(wait) => {
            audit_throttled(&state, &ctx, &user.name, wait);
            let message = throttled_message(wait);
            let page = sign_in_page(
                &state,
                StatusCode::OK,
                second_step(&state, &user).await,
                &session.id,
                &next,
                Some(&message),
            );
            return Ok(throttled(page, wait));
        }
    };
    let code = field(&fields, "code").unwrap_or("");
    let secret = user.totp.as_deref().unwrap_or_default();
    let step = totp::check(secret, code, auth::now());
    let fresh = match step {
        Some(step) => state.replays.accept(&user.name, step).await,
        None => false,
    };
    if !fresh {
        let (reason, message) = if step.is_some() {
            (
                "code already used",
                "That code was already used. Wait for the next code in your authenticator app, then enter it.",
            )
        } else {
            (
                "wrong code",
                "That code is not valid. Enter the current code from your authenticator app.",
            )
        };
        state.audit.record(
            "2fa-failed",
            json!({ "user": user.name, "client": audit::client(ctx.client), "reason": reason }),
        );
        if let Err(wait) = attempt.failed(Instant::now()).await {
            audit_throttled(&state, &ctx, &user.name, wait);
        }
        let status = StatusCode::UNAUTHORIZED;
        return Ok(sign_in_page(
            &state,
            status,
            second_step(&state, &user).await,
            &session.id,
            &next,
            Some(message),
        ));
    }
    attempt.succeeded();
    // The step is done: its cookie never works again, whoever kept a copy; of two
    // requests racing with it, only one gets past this line.
    let expires = session.issued + SECOND_FACTOR_TTL;
    if !state.revoked.use_once(&session, expires, auth::now()).await {
        return Err(Problem::LoginExpired.into());
    }
    let session = password_session(&state, &user);
    Ok(start_session(&state, &ctx, session, &next, "password+totp").await)
}

/// POST /logout: revoke this session id and clear the cookie.
pub async fn logout(state: Arc<State>, ctx: Ctx, fields: Fields) -> Result<Response, Rejection> {
    let login = format!("{}login", state.base);
    let expired = state.expired_cookie(ctx.secure, CookieName::Session);
    let Some(authed) = state.authenticate(&ctx).await else {
        if !ctx.same_origin() {
            return Err(Problem::CrossSite.into());
        }
        return Ok(add_cookie(see_other(&login), &expired));
    };
    authed.may_write(&state, &ctx, field(&fields, CSRF_FIELD))?;
    let Via::Session(session) = &authed.via else {
        // The proxy in front signed this user in; only it can sign them out.
        return Ok(see_other(&state.base));
    };
    let stored = state
        .revoked
        .revoke(session, session.expires(&state.policy()), auth::now());
    if let Err(e) = stored.await {
        // With replicas the database is the only way the others learn of it: say it
        // failed rather than pretend.
        if state.store.shared() {
            return Err(Problem::stored("a sign-out", &e).into());
        }
        // Refused from now on all the same; only a restart would forget it.
        tracing::error!("cannot store a sign-out: {e}");
    }
    state.audit.record(
        "sign-out",
        json!({ "user": authed.user.name, "client": audit::client(ctx.client) }),
    );
    // A provider's user is signed out there too, where the provider allows it.
    let after = super::sso::provider_logout(&state, &ctx, session).unwrap_or(login);
    Ok(add_cookie(see_other(&after), &expired))
}
