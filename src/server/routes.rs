//! The filter tree: every route under the base path, rejections turned into pages (or
//! JSON under `/api/`), and the security headers added to whatever comes out. Each route
//! matches its path and method first and only then looks at cookies, so an unknown path
//! is a plain 404 and a signed-out request for a real page is a redirect to the login
//! form.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use http::StatusCode;
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::intake::FORM_LIMIT;
use super::problem::{self, Problem};
use super::respond::{secure_headers, secure_headers_with, text};
use super::{
    State, account, adapt, api, assets, login, metrics, pages, passkey_login, run_pages,
    schedule_pages, sso, tools, webhook,
};

/// `METHOD path`, then the shared state and the request's context: the start of every
/// route that answers for a user.
macro_rules! on {
    ($state:expr, $method:ident) => {
        warp::path::end()
            .and(warp::$method())
            .and(with_state(&$state))
            .and(super::context::ctx(Arc::clone(&$state)))
    };
    ($state:expr, $method:ident, $($path:tt)+) => {
        warp::path!($($path)+)
            .and(warp::$method())
            .and(with_state(&$state))
            .and(super::context::ctx(Arc::clone(&$state)))
    };
}

/// Routes tried in order, as one boxed filter (one long `.or()` chain of unboxed
/// filters makes rustc's type checking explode).
macro_rules! any_of {
    ($first:expr $(, $rest:expr)* $(,)?) => {
        $first$(.or($rest).unify())*.boxed()
    };
}

fn with_state(
    state: &Arc<State>,
) -> impl Filter<Extract = (Arc<State>,), Error = Infallible> + Clone + use<> {
    let state = Arc::clone(state);
    warp::any().map(move || Arc::clone(&state))
}

/// All of ftw's routes, ready for `warp::service` or `warp::test`.
pub fn routes(state: Arc<State>) -> BoxedFilter<(Response,)> {
    let tls = state.tls;
    let query = || warp::query::<HashMap<String, String>>();
    let form = || super::body::form(FORM_LIMIT, state.config.client_timeout);
    let raw_query = warp::query::raw()
        .map(Some)
        .or(warp::any().map(|| None))
        .unify();

    let healthz = warp::path!("healthz")
        .and(warp::get())
        .map(|| text(StatusCode::OK, "ok\n"));
    let static_files =
        warp::path!("static" / String)
            .and(warp::get())
            .and_then(|name: String| async move {
                assets::get(&name).ok_or_else(|| Rejection::from(Problem::NotFound))
            });
    let readyz = warp::path!("readyz")
        .and(warp::get())
        .and(with_state(&state))
        .then(|state: Arc<State>| async move { ready(&state).await });
    let pages = any_of![
        healthz,
        readyz,
        static_files,
        on!(state, get).and(query()).and_then(pages::index),
        on!(state, get, "metrics").and_then(metrics::scrape),
    ];
    let sign_in = any_of![
        on!(state, get, "login")
            .and(login::next_param(&state))
            .and_then(login::form),
        on!(state, post, "login")
            .and(form())
            .and_then(login::submit),
        on!(state, get, "login" / "2fa")
            .and(login::next_param(&state))
            .and_then(login::code_form),
        on!(state, post, "login" / "2fa")
            .and(form())
            .and_then(login::code_submit),
        on!(state, post, "logout")
            .and(form())
            .and_then(login::logout),
        on!(state, post, "login" / "oidc" / String)
            .and(form())
            .and_then(sso::start_oidc),
        on!(state, get, "login" / "oidc" / String / "callback")
            .and(query())
            .and_then(sso::callback_oidc),
        on!(state, post, "login" / "github")
            .and(form())
            .and_then(sso::start_github),
        on!(state, get, "login" / "github" / "callback")
            .and(query())
            .and_then(sso::callback_github),
    ];
    let tool_pages = any_of![
        on!(state, get, "tools" / String)
            .and(raw_query)
            .and_then(tools::show),
        on!(state, post, "tools" / String)
            .and(warp::body::stream())
            .and_then(tools::submit),
    ];
    let run_pages = any_of![
        on!(state, get, "runs")
            .and(query())
            .and_then(run_pages::list),
        on!(state, get, "runs" / String).and_then(run_pages::show),
        on!(state, get, "runs" / String / "events").and_then(run_pages::events),
        on!(state, get, "runs" / String / "output").and_then(run_pages::output),
        on!(state, post, "runs" / String / "cancel")
            .and(form())
            .and_then(run_pages::cancel),
        on!(state, get, "runs" / String / "files" / String).and_then(run_pages::file),
    ];
    let schedule_pages = any_of![
        on!(state, get, "schedules").and_then(schedule_pages::list),
        on!(state, post, "schedules" / String / String)
            .and(form())
            .and_then(schedule_pages::pause),
    ];
    let json_body = || super::body::json(FORM_LIMIT, state.config.client_timeout);
    let account_pages = any_of![
        on!(state, get, "account").and_then(account::show),
        on!(state, post, "account" / "passkeys" / "options").and_then(account::register_options),
        on!(state, post, "account" / "passkeys")
            .and(json_body())
            .and_then(account::register),
        on!(state, post, "account" / "passkeys" / String / "remove")
            .and(form())
            .and_then(account::remove),
        on!(state, post, "account" / "sign-out-everywhere")
            .and(form())
            .and_then(account::sign_out_everywhere),
    ];
    let passkey_sign_in = any_of![
        on!(state, post, "login" / "passkey" / "options")
            .and(json_body())
            .and_then(passkey_login::options),
        on!(state, post, "login" / "passkey")
            .and(json_body())
            .and_then(passkey_login::finish),
    ];
    let pages = any_of![
        pages,
        sign_in,
        tool_pages,
        run_pages,
        schedule_pages,
        account_pages,
        passkey_sign_in
    ];

    // Everything under /api/ answers in JSON, errors included. warp's own not-found
    // gives way to a handler's rejection, so a route that matched keeps its answer.
    let api_not_found = warp::path::tail()
        .and_then(|_| async { Err::<Response, Rejection>(warp::reject::not_found()) });
    let api_tools = any_of![
        on!(state, get, "tools").and_then(api::tools),
        on!(state, get, "openapi.json").and_then(api::openapi),
        on!(state, post, "tools" / String / "runs")
            .and(query())
            .and(warp::body::stream())
            .and_then(api::create),
        on!(state, post, "tools" / String / "options")
            .and(warp::body::stream())
            .and_then(adapt::options),
        on!(state, post, "hooks" / String)
            .and(query())
            .and(warp::body::stream())
            .and_then(webhook::deliver),
    ];
    let api_runs = any_of![
        on!(state, get, "runs").and(query()).and_then(api::list),
        on!(state, get, "runs" / String).and_then(api::get),
        on!(state, get, "runs" / String / "events").and_then(api::events),
        on!(state, post, "runs" / String / "cancel").and_then(api::cancel),
        on!(state, get, "runs" / String / "output").and_then(api::output),
    ];
    let api = warp::path("api").and(
        any_of![api_tools, api_runs, api_not_found]
            .recover(|r: Rejection| async move { Ok::<_, Infallible>(problem::api(&r)) })
            .unify(),
    );

    let for_recover = Arc::clone(&state);
    base_prefix(&state.config.base_path)
        .and(api.or(pages).unify())
        .recover(move |r: Rejection| {
            let state = Arc::clone(&for_recover);
            async move { Ok::<_, Infallible>(problem::page(&state, &r)) }
        })
        .unify()
        .map(move |r: Response| {
            let manifest = state.manifest();
            if manifest.auth.oidc.is_empty() && manifest.auth.github.is_none() {
                return secure_headers(r, tls);
            }
            let origins = state.providers.form_origins(&manifest.auth);
            secure_headers_with(r, tls, &origins)
        })
        .boxed()
}

/// GET /readyz: 200 when ftw can serve (its database answers within two seconds),
/// 503 otherwise. `/healthz` stays liveness: the process answers.
async fn ready(state: &State) -> Response {
    let answered =
        tokio::time::timeout(std::time::Duration::from_secs(2), state.store.ping()).await;
    match answered {
        Ok(Ok(())) if !state.runs.is_stopping() => text(StatusCode::OK, "ready\n"),
        Ok(Ok(())) => text(StatusCode::SERVICE_UNAVAILABLE, "stopping\n"),
        Ok(Err(e)) => {
            tracing::warn!("not ready: the database does not answer: {e}");
            text(StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n")
        }
        Err(_) => text(StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n"),
    }
}

/// Matches the base path's segments ("/" matches nothing, "/ops/tools" two segments).
fn base_prefix(base_path: &str) -> BoxedFilter<()> {
    let mut filter = warp::any().boxed();
    for segment in base_path.split('/').filter(|s| !s.is_empty()) {
        filter = filter.and(warp::path(segment.to_string())).boxed();
    }
    filter
}
