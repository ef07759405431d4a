//! The filter tree: every route under the base path, rejections turned into pages, and
//! the security headers added to whatever comes out. Each route matches its path and
//! method first and only then looks at cookies, so an unknown path is a plain 404 and a
//! signed-out request for a real page is a redirect to the login form.

use std::collections::HashMap;
use std::sync::Arc;

use http::StatusCode;
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::State;
use super::assets;
use super::login;
use super::pages;
use super::problem::{self, Problem};
use super::respond::{secure_headers, text};
use super::{api, run_pages, tools};

use super::tools::FORM_LIMIT;

/// All of ftw's routes, ready for `warp::service` or `warp::test`.
pub fn routes(state: Arc<State>) -> BoxedFilter<(Response,)> {
    let tls = state.tls;
    let for_recover = Arc::clone(&state);
    let st = {
        let state = Arc::clone(&state);
        warp::any().map(move || Arc::clone(&state))
    };
    let ctx = super::context::ctx(Arc::clone(&state));
    let query = warp::query::<HashMap<String, String>>();
    let form = super::body::form(FORM_LIMIT, state.config.client_timeout);

    let healthz = warp::path!("healthz")
        .and(warp::get())
        .map(|| text(StatusCode::OK, "ok\n"));
    let static_files =
        warp::path!("static" / String)
            .and(warp::get())
            .and_then(|name: String| async move {
                assets::get(&name).ok_or_else(|| Rejection::from(Problem::NotFound))
            });
    let login_form = warp::path!("login")
        .and(warp::get())
        .and(st.clone())
        .and(ctx.clone())
        .and(query)
        .and_then(login::form);
    let login = warp::path!("login")
        .and(warp::post())
        .and(st.clone())
        .and(ctx.clone())
        .and(form.clone())
        .and_then(login::submit);
    let code_form = warp::path!("login" / "2fa")
        .and(warp::get())
        .and(st.clone())
        .and(ctx.clone())
        .and(query)
        .and_then(login::code_form);
    let code_submit = warp::path!("login" / "2fa")
        .and(warp::post())
        .and(st.clone())
        .and(ctx.clone())
        .and(form.clone())
        .and_then(login::code_submit);
    let logout = warp::path!("logout")
        .and(warp::post())
        .and(st.clone())
        .and(ctx.clone())
        .and(form.clone())
        .and_then(login::logout);
    let tool_form = warp::path!("tools" / String)
        .and(warp::get())
        .and(st.clone())
        .and(ctx.clone())
        .and(
            warp::query::raw()
                .map(Some)
                .or(warp::any().map(|| None))
                .unify(),
        )
        .and_then(tools::show);
    let tool_submit = warp::path!("tools" / String)
        .and(warp::post())
        .and(st.clone())
        .and(ctx.clone())
        .and(warp::body::stream())
        .and_then(tools::submit);
    let run_list = warp::path!("runs")
        .and(warp::get())
        .and(st.clone())
        .and(ctx.clone())
        .and_then(run_pages::list);
    let run_page = warp::path!("runs" / String)
        .and(warp::get())
        .and(st.clone())
        .and(ctx.clone())
        .and_then(run_pages::show);
    let run_events = warp::path!("runs" / String / "events")
        .and(warp::get())
        .and(st.clone())
        .and(ctx.clone())
        .and_then(run_pages::events);
    let run_output = warp::path!("runs" / String / "output")
        .and(warp::get())
        .and(st.clone())
        .and(ctx.clone())
        .and_then(run_pages::output);
    let run_cancel = warp::path!("runs" / String / "cancel")
        .and(warp::post())
        .and(st.clone())
        .and(ctx.clone())
        .and(form.clone())
        .and_then(run_pages::cancel);
    let run_file = warp::path!("runs" / String / "files" / String)
        .and(warp::get())
        .and(st.clone())
        .and(ctx.clone())
        .and_then(run_pages::file);
    let index = warp::path::end()
        .and(warp::get())
        .and(st.clone())
        .and(ctx.clone())
        .and(query)
        .and_then(pages::index);

    // Groups are boxed: one long `.or()` chain makes rustc's type checking explode.
    let basics = healthz.or(static_files).unify().or(index).unify().boxed();
    let sign_in = login_form
        .or(login)
        .unify()
        .or(code_form)
        .unify()
        .or(code_submit)
        .unify()
        .or(logout)
        .unify()
        .boxed();
    let tools = tool_form.or(tool_submit).unify().boxed();
    let runs = run_list
        .or(run_page)
        .unify()
        .or(run_events)
        .unify()
        .or(run_output)
        .unify()
        .or(run_cancel)
        .unify()
        .or(run_file)
        .unify()
        .boxed();
    let pages = basics
        .or(sign_in)
        .unify()
        .or(tools)
        .unify()
        .or(runs)
        .unify()
        .boxed();

    // Everything under /api/ answers in JSON, errors included.
    let api_tools = warp::path!("tools")
        .and(warp::get())
        .and(st.clone())
        .and(ctx.clone())
        .and_then(api::tools);
    let api_openapi = warp::path!("openapi.json")
        .and(warp::get())
        .and(st.clone())
        .and(ctx.clone())
        .and_then(api::openapi);
    let api_create = warp::path!("tools" / String / "runs")
        .and(warp::post())
        .and(st.clone())
        .and(ctx.clone())
        .and(warp::query::<HashMap<String, String>>())
        .and(warp::body::stream())
        .and_then(api::create);
    let api_run = warp::path!("runs" / String)
        .and(warp::get())
        .and(st.clone())
        .and(ctx.clone())
        .and_then(api::get);
    let api_events = warp::path!("runs" / String / "events")
        .and(warp::get())
        .and(st.clone())
        .and(ctx.clone())
        .and_then(api::events);
    let api_output = warp::path!("runs" / String / "output")
        .and(warp::get())
        .and(st.clone())
        .and(ctx.clone())
        .and_then(api::output);
    let api_cancel = warp::path!("runs" / String / "cancel")
        .and(warp::post())
        .and(st.clone())
        .and(ctx.clone())
        .and_then(api::cancel);
    // warp's own not-found: when combined with a handler's rejection it gives way, so
    // a route that matched keeps its answer (401, 422, ...).
    let api_not_found = warp::path::tail()
        .and_then(|_| async { Err::<Response, Rejection>(warp::reject::not_found()) });
    let api_routes = api_tools
        .or(api_openapi)
        .unify()
        .or(api_create)
        .unify()
        .boxed()
        .or(api_run
            .or(api_events)
            .unify()
            .or(api_cancel)
            .unify()
            .or(api_output)
            .unify()
            .boxed())
        .unify()
        .or(api_not_found)
        .unify()
        .recover(|r: Rejection| async move { Ok::<_, std::convert::Infallible>(problem::api(&r)) })
        .unify()
        .boxed();
    let api = warp::path("api").and(api_routes);

    let metrics = warp::path!("metrics")
        .and(warp::get())
        .and(st.clone())
        .and(ctx.clone())
        .and_then(super::pages::metrics);
    let pages = pages.or(metrics).unify().boxed();

    base_prefix(&state.config.base_path)
        .and(api.or(pages).unify())
        .recover(move |r: Rejection| {
            let state = Arc::clone(&for_recover);
            async move { Ok::<_, std::convert::Infallible>(problem::page(&state, &r)) }
        })
        .unify()
        .map(move |r: Response| secure_headers(r, tls))
        .boxed()
}

/// Matches the base path's segments ("/" matches nothing, "/ops/tools" two segments).
fn base_prefix(base_path: &str) -> BoxedFilter<()> {
    let mut filter = warp::any().boxed();
    for segment in base_path.split('/').filter(|s| !s.is_empty()) {
        filter = filter.and(warp::path(segment.to_string())).boxed();
    }
    filter
}
