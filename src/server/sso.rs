//! Signing in with an identity provider: POST `/login/oidc/NAME` (or `/login/github`)
//! sends the browser to the provider, GET `.../callback` brings it back.
//!
//! The start is a form post with the login page's CSRF token, so no other site can start
//! a sign-in in the user's name. The callback checks, in order: the throttle (by client
//! address), the sign-in cookie this browser got at the start (signed, ten minutes),
//! the `state` (constant time), that this state was not used before (a replayed callback
//! URL fails even with the cookie), then the code and the ID token (`auth::oidc`), and
//! last the manifest's allowlist (`auth::outside`). Each failure is audited with its
//! reason and shown to the user as one sentence; success is an ordinary ftw session
//! whose audit records say `"via": "oidc:NAME"`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use http::StatusCode;
use serde_json::json;
use warp::Rejection;
use warp::reply::Response;

use super::State;
use super::context::Ctx;
use super::identity::{CookieName, request_cookies};
use super::login::{
    sign_in_again, sign_in_form_checks, start_session, throttled, throttled_message,
};
use super::pages::{Fields, field};
use super::problem::Problem;
use super::respond::{add_cookie, see_other};
use crate::audit;
use crate::auth::oidc::flow::FLOW_TTL;
use crate::auth::oidc::{Failure, Flow};
use crate::auth::outside::{
    ClaimRules, Denied, Identity, Source, admit, keep_groups, named_groups, usable_name,
};
use crate::auth::session::Session;
use crate::auth::{self, next::safe_next};
use crate::manifest::{GitHub, Manifest, OidcProvider};

/// Which provider a sign-in goes through, as the URL names it.
pub enum Which {
    Oidc(String),
    GitHub,
}

impl Which {
    /// The provider of the manifest in force (never the directory: it has no flow).
    fn find<'a>(&self, manifest: &'a Manifest) -> Option<Source<'a>> {
        match self {
            Which::Oidc(name) => manifest.auth.oidc_provider(name).map(Source::Oidc),
            Which::GitHub => manifest.auth.github.as_ref().map(Source::GitHub),
        }
    }

    /// The part of the URL after `login/`.
    fn path(&self) -> String {
        match self {
            Which::Oidc(name) => format!("oidc/{name}"),
            Which::GitHub => "github".into(),
        }
    }
}

/// The URL the provider sends the browser back to; register it with the provider.
fn callback_url(state: &State, ctx: &Ctx, which: &Which) -> Option<String> {
    Some(format!(
        "{}{}login/{}/callback",
        ctx.origin()?,
        state.base,
        which.path()
    ))
}

/// POST /login/oidc/NAME
pub async fn start_oidc(
    name: String,
    state: Arc<State>,
    ctx: Ctx,
    fields: Fields,
) -> Result<Response, Rejection> {
    start(Which::Oidc(name), state, ctx, fields).await
}

/// POST /login/github
pub async fn start_github(
    state: Arc<State>,
    ctx: Ctx,
    fields: Fields,
) -> Result<Response, Rejection> {
    start(Which::GitHub, state, ctx, fields).await
}

/// GET /login/oidc/NAME/callback
pub async fn callback_oidc(
    name: String,
    state: Arc<State>,
    ctx: Ctx,
    query: HashMap<String, String>,
) -> Result<Response, Rejection> {
    callback(Which::Oidc(name), state, ctx, query).await
}

/// GET /login/github/callback
pub async fn callback_github(
    state: Arc<State>,
    ctx: Ctx,
    query: HashMap<String, String>,
) -> Result<Response, Rejection> {
    callback(Which::GitHub, state, ctx, query).await
}

async fn start(
    which: Which,
    state: Arc<State>,
    ctx: Ctx,
    fields: Fields,
) -> Result<Response, Rejection> {
    sign_in_form_checks(&state, &ctx, &fields)?;
    let manifest = state.manifest();
    let provider = which.find(&manifest).ok_or(Problem::NotFound)?;
    let next = safe_next(field(&fields, "next"), &state.config.base_path);
    let redirect = callback_url(&state, &ctx, &which).ok_or(Problem::NotFound)?;
    let now = auth::now();
    let (started, label) = match provider {
        Source::Oidc(p) => (
            state.providers.begin(p, &redirect, &next, now).await,
            &p.label,
        ),
        Source::GitHub(g) => (
            crate::auth::github::begin(g, &redirect, &next, now),
            &g.label,
        ),
        Source::Ldap(_) => return Err(Problem::NotFound.into()),
    };
    match started {
        Ok(started) => {
            let cookie_name = CookieName::Provider.name(ctx.secure);
            let value = started.flow.seal(&state.sessions, cookie_name);
            let cookie = state.cookie(ctx.secure, cookie_name, &value, Some(FLOW_TTL));
            Ok(add_cookie(see_other(started.url.as_str()), &cookie))
        }
        Err(failure) => {
            tracing::warn!(
                "cannot start a sign-in with `{}`: {:?}",
                provider.key(),
                failure.to_string()
            );
            let message = format!(
                "{} cannot be reached right now. Try again in a moment, or ask your administrator.",
                label.trim_start_matches("Sign in with ")
            );
            Ok(sign_in_again(
                &state,
                &ctx,
                StatusCode::BAD_GATEWAY,
                &next,
                &message,
            ))
        }
    }
}

async fn callback(
    which: Which,
    state: Arc<State>,
    ctx: Ctx,
    query: HashMap<String, String>,
) -> Result<Response, Rejection> {
    let manifest = state.manifest();
    let provider = which.find(&manifest).ok_or(Problem::NotFound)?;
    let key = provider.key();
    let home = state.base.clone();
    let policy = manifest.auth.throttle;
    let attempt = match state
        .throttle
        .begin_address(&policy, ctx.client, Instant::now())
        .await
    {
        Ok(attempt) => attempt,
        Err(wait) => {
            state.metrics.sign_in("throttled");
            let message = throttled_message(wait);
            let page = sign_in_again(&state, &ctx, StatusCode::OK, &home, &message);
            return Ok(throttled(page, wait));
        }
    };
    let refuse = |status: StatusCode, reason: &str, message: &str, next: &str| {
        state.metrics.sign_in("failure");
        state.audit.record(
            "sign-in-failed",
            json!({ "via": key, "client": audit::client(ctx.client), "reason": reason }),
        );
        let r = sign_in_again(&state, &ctx, status, next, message);
        add_cookie(r, &state.expired_cookie(ctx.secure, CookieName::Provider))
    };
    let again = "Start again from the sign-in page.";

    let Some(flow) = this_flow(&state, &ctx, &key) else {
        // No failure counted: an old bookmark or a second tab is not an attack.
        attempt.not_checked();
        return Ok(refuse(
            StatusCode::BAD_REQUEST,
            "no sign-in in progress in this browser",
            &format!("The sign-in took too long or was not started in this browser. {again}"),
            &home,
        ));
    };
    let next = flow.next.clone();
    if !query.get("state").is_some_and(|s| flow.state_matches(s)) {
        let _ = attempt.failed(Instant::now()).await;
        return Ok(refuse(
            StatusCode::BAD_REQUEST,
            "wrong state",
            &format!("The answer from the provider does not belong to this sign-in. {again}"),
            &next,
        ));
    }
    if let Some(error) = query.get("error") {
        attempt.not_checked();
        let error: String = error.chars().take(64).collect();
        let detail = query
            .get("error_description")
            .map(|d| d.chars().take(200).collect::<String>())
            .unwrap_or_default();
        return Ok(refuse(
            StatusCode::UNAUTHORIZED,
            &format!("the provider said {error}: {detail}"),
            &format!("The provider did not sign you in ({error}). {again}"),
            &next,
        ));
    }
    // One use per state: of two requests racing with the same callback URL, one goes on.
    let used = match flow.as_used() {
        Some(s) => {
            let expires = flow.created + FLOW_TTL;
            state.revoked.use_once(&s, expires, auth::now()).await
        }
        None => false,
    };
    if !used {
        let _ = attempt.failed(Instant::now()).await;
        return Ok(refuse(
            StatusCode::BAD_REQUEST,
            "sign-in already finished (replayed callback)",
            &format!("This sign-in was already used. {again}"),
            &next,
        ));
    }
    let code = query.get("code").map(String::as_str).unwrap_or("");
    let redirect = callback_url(&state, &ctx, &which).ok_or(Problem::NotFound)?;
    let vouched = match provider {
        Source::Oidc(p) => oidc_identity(&state, &manifest, p, &redirect, &flow, code).await,
        Source::GitHub(g) => github_identity(&state, &manifest, g, &redirect, &flow, code).await,
        Source::Ldap(_) => return Err(Problem::NotFound.into()),
    };
    let vouched = match vouched {
        Ok(Ok(identity)) => Ok(state
            .claim_outside_name(&identity, &key)
            .await
            .map(|()| identity)),
        other => other,
    };
    let identity = match vouched {
        Ok(Ok(identity)) => identity,
        Ok(Err(denied)) => {
            let _ = attempt.failed(Instant::now()).await;
            return Ok(refuse(
                StatusCode::FORBIDDEN,
                &denied.to_string(),
                "Your account at the provider is not allowed to use this ftw. Ask your administrator to add you.",
                &next,
            ));
        }
        Err(failure) => {
            tracing::warn!("sign-in with `{key}` failed: {:?}", failure.to_string());
            let (status, message) = match &failure {
                Failure::Unreachable(_) => (
                    StatusCode::BAD_GATEWAY,
                    "The provider cannot be reached right now. Try again in a moment.",
                ),
                Failure::Refused(_) => {
                    let _ = attempt.failed(Instant::now()).await;
                    (
                        StatusCode::UNAUTHORIZED,
                        "The provider's answer did not pass ftw's checks, so you are not signed in.",
                    )
                }
            };
            return Ok(refuse(status, &failure.to_string(), message, &next));
        }
    };
    attempt.succeeded();
    let session = state.outside_session(&provider, identity);
    let method = match provider {
        Source::Oidc(_) => "oidc",
        _ => "github",
    };
    Ok(start_session(&state, &ctx, session, &next, method).await)
}

/// The provider's answer about the user: an identity the manifest lets in, or why
/// not (`Ok(Err)`), or why the answer itself was no good (`Err`).
type Vouched = Result<Result<Identity, Denied>, Failure>;

async fn oidc_identity(
    state: &State,
    manifest: &Manifest,
    provider: &OidcProvider,
    redirect: &str,
    flow: &Flow,
    code: &str,
) -> Vouched {
    let claims = state
        .providers
        .finish(provider, redirect, flow, code)
        .await?;
    let rules = ClaimRules {
        username_claim: provider.username_claim.as_deref(),
        groups_claim: &provider.groups_claim,
        map: &provider.map,
    };
    Ok(rules
        .identity(&claims, &named_groups(manifest))
        .and_then(|identity| {
            let admits = provider
                .admit
                .admits(identity.email.as_deref(), &identity.groups);
            admit(manifest, identity, admits)
        }))
}

async fn github_identity(
    state: &State,
    manifest: &Manifest,
    github: &GitHub,
    redirect: &str,
    flow: &Flow,
    code: &str,
) -> Vouched {
    let member =
        crate::auth::github::finish(state.providers.http(), github, redirect, flow, code).await?;
    if let Err(denied) = usable_name(&member.login) {
        return Ok(Err(denied));
    }
    let trusted = github.trusted_groups(member.groups);
    let admits = github.admits(&trusted);
    let groups = keep_groups(
        trusted.iter().map(String::as_str),
        &Default::default(),
        &named_groups(manifest),
    );
    let identity = Identity {
        subject: member.id.to_string(),
        name: member.login,
        email: None,
        groups,
    };
    Ok(admit(manifest, identity, admits))
}

/// The sign-in this browser started with provider `key`, if its cookie is good.
fn this_flow(state: &State, ctx: &Ctx, key: &str) -> Option<Flow> {
    let cookie = CookieName::Provider.name(ctx.secure);
    let provider = key;
    let now = auth::now();
    request_cookies(&ctx.headers, cookie)
        .filter_map(|value| Flow::open(&state.sessions, cookie, value, now))
        .find(|flow| flow.provider == provider)
}

/// Where a signed-out provider user goes next: the provider's end-session endpoint
/// (RP-initiated logout), which sends them back to ftw's sign-in page.
pub fn provider_logout(state: &State, ctx: &Ctx, session: &Session) -> Option<String> {
    let name = session.outside.as_ref()?.provider.strip_prefix("oidc:")?;
    let manifest = state.manifest();
    let provider = manifest.auth.oidc_provider(name)?;
    let after = format!("{}{}login", ctx.origin()?, state.base);
    Some(state.providers.logout_url(provider, &after)?.to_string())
}
