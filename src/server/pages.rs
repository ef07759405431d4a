//! The index page (GET `/`), and what every page handler shares: form fields and the
//! "signed in, or off to the login form" rule.

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use http::StatusCode;
use warp::Rejection;
use warp::reply::Response;

use super::State;
use super::access::tools_for;
use super::context::Ctx;
use super::identity::Authed;
use super::problem::Problem;
use super::respond::{self, Page};
use crate::auth::next::safe_next;
use crate::manifest::Tool;

pub use super::body::Fields;

pub fn field<'a>(fields: &'a Fields, name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The signed-in user, or a redirect to the login form that comes back to `path`.
pub async fn require(state: &State, ctx: &Ctx, path_and_query: &str) -> Result<Authed, Rejection> {
    state.authenticate(ctx).await.ok_or_else(|| {
        let next = safe_next(Some(path_and_query), &state.config.base_path);
        let location = format!("{}login?next={}", state.base, urlencode(&next));
        Problem::SignIn { next: location }.into()
    })
}

#[derive(Template)]
#[template(path = "index.html")]
struct IndexPage<'a> {
    page: Page<'a>,
    query: &'a str,
    groups: Vec<Group<'a>>,
    shown: usize,
    total: usize,
}

struct Group<'a> {
    name: Option<&'a str>,
    tools: Vec<Card<'a>>,
}

struct Card<'a> {
    id: &'a str,
    title: &'a str,
    description: Option<&'a str>,
    /// Lower-case text the search box matches against.
    search: String,
    /// It takes no arguments, so the index can run it with one click.
    one_click: bool,
}

/// GET /: the tools this user may run, grouped, filtered by `?q=`.
pub async fn index(
    state: Arc<State>,
    ctx: Ctx,
    query: HashMap<String, String>,
) -> Result<Response, Rejection> {
    let authed = require(&state, &ctx, &state.base).await?;
    let manifest = state.manifest();
    let q = query.get("q").map(|s| s.trim()).unwrap_or("");
    let needle = q.to_lowercase();
    let mine: Vec<&Tool> = tools_for(&manifest, &authed.user).collect();
    let mut groups: Vec<Group> = Vec::new();
    let mut shown = 0;
    for tool in &mine {
        let card = Card {
            id: &tool.id,
            title: &tool.title,
            description: tool.description.as_deref(),
            search: format!(
                "{} {} {} {}",
                tool.id,
                tool.title,
                tool.description.as_deref().unwrap_or(""),
                tool.group.as_deref().unwrap_or("")
            )
            .to_lowercase(),
            one_click: tool.args.is_empty(),
        };
        if !card.search.contains(&needle) {
            continue;
        }
        shown += 1;
        let name = tool.group.as_deref();
        match groups.iter_mut().find(|g| g.name == name) {
            Some(group) => group.tools.push(card),
            None => groups.push(Group {
                name,
                tools: vec![card],
            }),
        }
    }
    // Tools without a group come first, without a heading.
    groups.sort_by_key(|g| g.name.is_some());
    let mut page = Page::new(&state, &manifest.title, "Tools", Some(&authed));
    page.nav = "tools";
    let body = IndexPage {
        page,
        query: q,
        groups,
        shown,
        total: mine.len(),
    };
    Ok(authed.finish(respond::html(StatusCode::OK, &body)))
}

pub fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}
