//! Runs in the browser: the history (`/runs`), one run's page with its output so far
//! (`/runs/{id}`), its live output (`/runs/{id}/events`), cancel, the whole output and
//! the files it wrote. Who may see which run is `access`'s rule; the event stream,
//! downloads and wording are their own modules.

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use http::StatusCode;
use warp::Rejection;
use warp::reply::Response;

use super::State;
use super::access::{may_run, visible_run};
use super::context::Ctx;
use super::download;
use super::format::{human_duration, human_time, is_problem, rerun_query, status_text};
use super::history::{self, Filters};
use super::identity::Authed;
use super::pages::{Fields, field, require};
use super::preview::{FileView, Preview};
use super::respond::{Page, html, see_other};
use super::sse::{self, Format, PAGE_TAIL};
use crate::ansi::AnsiHtml;
use crate::form::CSRF_FIELD;
use crate::runs::{Run, Status};

/// A signed-in user and a run they may see, or the login redirect / 404.
async fn signed_in_run(
    state: &State,
    ctx: &Ctx,
    id: &str,
) -> Result<(Authed, Arc<Run>), Rejection> {
    let authed = require(state, ctx, &format!("{}runs/{id}", state.base)).await?;
    let run = visible_run(state, &authed, id).await?;
    Ok((authed, run))
}

#[derive(Template)]
#[template(path = "run.html")]
struct RunPage<'a> {
    page: Page<'a>,
    id: &'a str,
    tool_id: &'a str,
    tool_title: &'a str,
    user: &'a str,
    started: String,
    /// When it ended, for runs that were interrupted (the page says so beside it).
    ended: Option<String>,
    /// How long it has been running, in milliseconds, for the live timer (the browser
    /// counts on from here, so its clock does not matter).
    running_ms: Option<u128>,
    /// "took 2.1 s" once finished, "running for 12 s" while it runs.
    duration: Option<String>,
    status_word: &'static str,
    status_text: String,
    finished: bool,
    /// It went wrong: the page looks like an error.
    problem: bool,
    /// Why it could not start, if it could not.
    error: Option<&'a str>,
    /// No output at all (yet).
    no_output: bool,
    /// (label, value as shown) of each argument.
    shown_args: Vec<(&'a str, &'a str)>,
    /// Bytes of output before the part shown (only the last `PAGE_TAIL` are).
    skipped: u64,
    rerun_query: String,
    /// The viewer may run this tool now (else no "Run again").
    may_run_again: bool,
    /// Escaped by the ANSI converter, which never passes markup through.
    output_html: String,
    dropped: u64,
    /// Why the output was cut, when it was.
    cut: Option<String>,
    files: Vec<FileView>,
}

/// GET /runs/{id}
pub async fn show(id: String, state: Arc<State>, ctx: Ctx) -> Result<Response, Rejection> {
    let (authed, run) = signed_in_run(&state, &ctx, &id).await?;
    let tail = run.tail_start(PAGE_TAIL);
    let snap = run.snapshot();
    let manifest = state.manifest();
    let mut page = Page::new(&state, &manifest.title, &run.tool_title, Some(&authed));
    page.nav = "runs";
    let finished = snap.status.is_finished();
    let duration = snap.duration.map(|d| {
        let d = human_duration(d);
        if finished {
            format!("took {d}")
        } else {
            format!("running for {d}")
        }
    });
    let error = match &snap.status {
        Status::Error(why) => Some(why.as_str()),
        _ => None,
    };
    let body = RunPage {
        page,
        id: &run.id,
        tool_id: &run.tool_id,
        tool_title: &run.tool_title,
        user: &run.user,
        started: human_time(run.created),
        ended: matches!(snap.status, Status::Interrupted(..))
            .then_some(snap.ended)
            .flatten()
            .map(human_time),
        running_ms: (!finished)
            .then_some(snap.duration)
            .flatten()
            .map(|d| d.as_millis()),
        duration,
        status_word: snap.status.word(),
        status_text: status_text(&snap.status),
        finished,
        problem: is_problem(&snap.status),
        error,
        no_output: snap.output_len == 0,
        shown_args: run
            .args
            .iter()
            .map(|a| (a.label.as_str(), a.shown.as_str()))
            .collect(),
        skipped: tail,
        rerun_query: rerun_query(&run.args),
        may_run_again: may_run(&state.manifest(), &authed.user, &run.tool_id),
        output_html: sse::output_html(&mut AnsiHtml::new(), &run, tail, &run.output_since(tail).0),
        dropped: snap.dropped,
        cut: snap.cut,
        files: super::preview::views(&state, &run, snap.files).await,
    };
    Ok(authed.finish(html(StatusCode::OK, &body)))
}

/// GET /runs/{id}/events: the live output as escaped HTML (see `sse`).
pub async fn events(id: String, state: Arc<State>, ctx: Ctx) -> Result<Response, Rejection> {
    let (authed, run) = signed_in_run(&state, &ctx, &id).await?;
    let slot = state.streams.open(&authed.user.name)?;
    let r = sse::event_stream(run, state.base.clone(), Format::Html, slot);
    Ok(authed.finish(r))
}

/// GET /runs/{id}/output: everything the tool printed (up to `max_output`).
pub async fn output(id: String, state: Arc<State>, ctx: Ctx) -> Result<Response, Rejection> {
    let (authed, run) = signed_in_run(&state, &ctx, &id).await?;
    Ok(authed.finish(download::output(run)))
}

/// GET /runs/{id}/files/{name}: a file the run wrote.
pub async fn file(
    id: String,
    name: String,
    state: Arc<State>,
    ctx: Ctx,
) -> Result<Response, Rejection> {
    let (authed, run) = signed_in_run(&state, &ctx, &id).await?;
    let name = percent_encoding::percent_decode_str(&name)
        .decode_utf8()
        .map_err(|_| super::problem::Problem::NotFound)?;
    let (listed, file) = state
        .runs
        .file(&run, &name)
        .await
        .ok_or(super::problem::Problem::NotFound)?;
    Ok(authed.finish(download::file(&name, listed, file)?))
}

/// POST /runs/{id}/cancel
pub async fn cancel(
    id: String,
    state: Arc<State>,
    ctx: Ctx,
    fields: Fields,
) -> Result<Response, Rejection> {
    let (authed, run) = signed_in_run(&state, &ctx, &id).await?;
    authed.may_write(&state, &ctx, field(&fields, CSRF_FIELD))?;
    super::launch::cancel(&state, &ctx, &authed, &run).await;
    Ok(authed.finish(see_other(&format!("{}runs/{}", state.base, run.id))))
}

#[derive(Template)]
#[template(path = "runs.html")]
struct RunsPage<'a> {
    page: Page<'a>,
    admin: bool,
    rows: Vec<Row>,
    filters: Filters,
    /// (id, title) of the tools the filter offers.
    tools: Vec<(String, String)>,
    statuses: &'static [&'static str],
    /// The link to the next (older) page, if there is one.
    older: Option<String>,
    /// The link back to the newest page when this one is not it.
    newest: Option<String>,
}

struct Row {
    id: String,
    tool: String,
    user: String,
    /// "label: value" for each argument given.
    args: Vec<String>,
    status_word: &'static str,
    status_text: String,
    started: String,
    took: String,
}

/// GET /runs: this user's runs (an admin's: everyone's), newest first, filtered and in
/// pages.
pub async fn list(
    state: Arc<State>,
    ctx: Ctx,
    query: HashMap<String, String>,
) -> Result<Response, Rejection> {
    let authed = require(&state, &ctx, &format!("{}runs", state.base)).await?;
    let history = history::page(&state, &authed, &query, "before").await?;
    let manifest = state.manifest();
    let rows = history
        .rows
        .iter()
        .map(|r| Row {
            id: r.id.clone(),
            tool: r.tool_title.clone(),
            user: r.user.clone(),
            args: r
                .args
                .iter()
                .filter(|a| !a.shown.is_empty())
                .map(|a| format!("{}: {}", a.label, a.shown))
                .collect(),
            status_word: r.status.word(),
            status_text: status_text(&r.status),
            started: human_time(r.created),
            took: r.duration.map(human_duration).unwrap_or_default(),
        })
        .collect();
    let filters_query = history.filters.query_string();
    let link = |extra: &str| {
        let joined: Vec<&str> = [filters_query.as_str(), extra]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect();
        format!("{}runs?{}", state.base, joined.join("&"))
    };
    let older = history.next.as_ref().map(|c| link(&format!("before={c}")));
    let newest = query
        .get("before")
        .filter(|b| !b.is_empty())
        .map(|_| link(""));
    // Admins filter by any tool; others by the tools they may run.
    let tools = manifest
        .tools
        .values()
        .filter(|t| history.admin || t.allows(&authed.user.name, &authed.user.groups))
        .map(|t| (t.id.clone(), t.title.clone()))
        .collect();
    let mut page = Page::new(
        &state,
        &manifest.title,
        if history.admin { "All runs" } else { "My runs" },
        Some(&authed),
    );
    page.nav = "runs";
    let body = RunsPage {
        page,
        admin: history.admin,
        rows,
        filters: history.filters,
        tools,
        statuses: Status::WORDS,
        older,
        newest,
    };
    Ok(authed.finish(html(StatusCode::OK, &body)))
}
