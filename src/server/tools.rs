//! A tool's form: GET `/tools/{id}` shows it (pre-filled from the query string), POST
//! hands the body to `intake` and answers like a form: a run page on success, the form
//! again with every message and the values kept (never passwords) when not.

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use http::StatusCode;
use warp::Rejection;
use warp::reply::Response;

use super::State;
use super::access::allowed_tool;
use super::body::BodyStream;
use super::context::Ctx;
use super::form_view::{Control, FieldView, field_view};
use super::identity::Authed;
use super::intake::{self, Bodies, Refused};
use super::pages::require;
use super::respond::{Page, html, see_other};
use crate::form::{Errors, FORM_ERROR, Submission};
use crate::manifest::{Kind, Tool};

#[derive(Template)]
#[template(path = "tool.html")]
struct ToolPage<'a> {
    page: Page<'a>,
    id: &'a str,
    title: &'a str,
    description: Option<&'a str>,
    group: Option<&'a str>,
    multipart: bool,
    /// Some field must be filled in: the form explains the `*`.
    any_required: bool,
    fields: Vec<FieldView>,
    form_error: Option<String>,
    /// (name, label) of each field with an error, linked from the notice at the top.
    errors_above: Vec<(String, String)>,
    /// Some field's options or visibility follow other fields: the page asks the server
    /// for new options as they change (or, without JavaScript, offers "Update choices").
    adapts: bool,
}

/// `given` prefills the fields; `trusted`: it may also feed options commands (it came
/// from this site, not from a link another site made someone follow).
async fn render(
    state: &State,
    authed: &Authed,
    tool: &Tool,
    status: StatusCode,
    (given, trusted): (&HashMap<String, Vec<String>>, bool),
    errors: &Errors,
) -> Response {
    let manifest = state.manifest();
    let none = HashMap::new();
    let for_options = if trusted { given } else { &none };
    let prepared =
        crate::options::prepare(&state.options, tool, for_options, &authed.user.name).await;
    let fields: Vec<FieldView> = prepared
        .tool
        .args
        .iter()
        .map(|a| {
            field_view(
                a,
                given.get(&a.name).map(Vec::as_slice),
                errors.get(&a.name),
                &prepared,
            )
        })
        .collect();
    let mut page = Page::new(state, &manifest.title, &tool.title, Some(authed));
    page.nav = "tools";
    let body = ToolPage {
        page,
        id: &tool.id,
        title: &tool.title,
        description: tool.description.as_deref(),
        group: tool.group.as_deref(),
        multipart: tool
            .args
            .iter()
            .any(|a| matches!(a.kind, Kind::File { .. })),
        any_required: fields.iter().any(|f| f.required),
        fields,
        form_error: errors.get(FORM_ERROR).cloned(),
        errors_above: tool
            .args
            .iter()
            .filter(|a| errors.contains_key(&a.name))
            .map(|a| (a.name.clone(), a.label.clone()))
            .collect(),
        adapts: tool.args.iter().any(|a| {
            a.show_if.is_some()
                || a.options_from
                    .as_ref()
                    .is_some_and(|f| !f.depends_on.is_empty())
        }),
    };
    authed.finish(html(status, &body))
}

/// GET /tools/{id}?name=value: the form, pre-filled from the query string.
pub async fn show(
    id: String,
    state: Arc<State>,
    ctx: Ctx,
    raw_query: Option<String>,
) -> Result<Response, Rejection> {
    let here = match &raw_query {
        Some(q) => format!("{}tools/{id}?{q}", state.base),
        None => format!("{}tools/{id}", state.base),
    };
    let authed = require(&state, &ctx, &here).await?;
    let tool = allowed_tool(&state, &authed, &id)?;
    let mut given: HashMap<String, Vec<String>> = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(raw_query.unwrap_or_default().as_bytes()) {
        let secret = tool
            .arg(&k)
            .is_none_or(|a| matches!(a.kind, Kind::Password(_) | Kind::File { .. }));
        if !secret {
            given
                .entry(k.into_owned())
                .or_default()
                .push(v.into_owned());
        }
    }
    // A GET runs nothing on another site's behalf: a link from elsewhere prefills the
    // fields, but options commands get the defaults (security.md 16).
    let from_elsewhere = matches!(
        ctx.header("sec-fetch-site"),
        Some("cross-site" | "same-site")
    );
    Ok(render(
        &state,
        &authed,
        &tool,
        StatusCode::OK,
        (&given, !from_elsewhere),
        &Errors::new(),
    )
    .await)
}

/// POST /tools/{id}: check and start.
pub async fn submit(
    id: String,
    state: Arc<State>,
    ctx: Ctx,
    body: impl BodyStream,
) -> Result<Response, Rejection> {
    intake::precheck(&state, &ctx)?;
    let authed = require(&state, &ctx, &format!("{}tools/{id}", state.base)).await?;
    let (status, given, errors) =
        match intake::intake(&state, &ctx, &authed, &id, body, Bodies::Form).await {
            Ok(intake) => {
                let run = super::launch::start(&state, &ctx, &authed, intake).await?;
                let page = format!("{}runs/{}", state.base, run.id);
                return Ok(authed.finish(see_other(&page)));
            }
            Err(Refused::Problem(p)) => return Err(p.into()),
            Err(Refused::TooLarge(errors)) => (StatusCode::PAYLOAD_TOO_LARGE, None, errors),
            Err(Refused::Invalid(errors, submission)) => {
                (StatusCode::UNPROCESSABLE_ENTITY, Some(submission), errors)
            }
            Err(Refused::Refresh(submission)) => (StatusCode::OK, Some(submission), Errors::new()),
        };
    // The form again, with every message and what was sent (nothing was read of a body
    // that was too large).
    let tool = allowed_tool(&state, &authed, &id)?;
    let given = given.map(|s| given_back(&tool, &s)).unwrap_or_default();
    Ok(render(&state, &authed, &tool, status, (&given, true), &errors).await)
}

/// The values to show again after a refused submission: what was sent, except
/// passwords; unchecked boxes stay unchecked (they send nothing at all).
fn given_back(tool: &Tool, submission: &Submission) -> HashMap<String, Vec<String>> {
    let mut given: HashMap<String, Vec<String>> = HashMap::new();
    for (k, v) in &submission.fields {
        if tool
            .arg(k)
            .is_some_and(|a| !matches!(a.kind, Kind::Password(_)))
        {
            given.entry(k.clone()).or_default().push(v.clone());
        }
    }
    for arg in &tool.args {
        if matches!(arg.kind, Kind::Bool { .. } | Kind::Multiselect { .. }) {
            given.entry(arg.name.clone()).or_default();
        }
    }
    given
}
