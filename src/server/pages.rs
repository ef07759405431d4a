//! The sign-in pages and the index: GET/POST `/login`, POST `/logout`, GET `/`.

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use http::{HeaderMap, StatusCode};
use warp::Rejection;
use warp::reply::Response;

use super::State;
use super::identity::{Authed, same_origin};
use super::problem::Problem;
use super::respond::{self, Page, add_cookie, html, see_other};
use crate::auth::next::safe_next;
use crate::auth::session::Session;
use crate::auth::{self, b64};
use crate::manifest::Tool;

/// Form fields of one request body, by name (a name can repeat).
pub type Fields = Vec<(String, String)>;

fn field<'a>(fields: &'a Fields, name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The one message for every failed sign-in, whatever failed.
pub const LOGIN_FAILED: &str = "Wrong user name or password.";

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    page: Page<'a>,
    next: &'a str,
    message: Option<&'a str>,
}

fn login_page(
    state: &State,
    status: StatusCode,
    nonce: &[u8],
    next: &str,
    message: Option<&str>,
) -> Response {
    let manifest = state.manifest();
    let csrf = state.login_csrf(nonce);
    let mut page = Page::new(state, &manifest.title, "Sign in", None);
    page.csrf = &csrf;
    html(
        status,
        &LoginPage {
            page,
            next,
            message,
        },
    )
}

/// GET /login: the form, with a fresh pre-login nonce unless the browser has one.
pub async fn login_form(
    state: Arc<State>,
    headers: HeaderMap,
    query: HashMap<String, String>,
) -> Result<Response, Rejection> {
    let next = safe_next(
        query.get("next").map(String::as_str),
        &state.config.base_path,
    );
    if state.authenticate(&headers).is_some() {
        return Ok(see_other(&next));
    }
    let (nonce, cookie) = match state.login_nonce(&headers) {
        Some(nonce) => (nonce, None),
        None => {
            let nonce = auth::random::<16>().to_vec();
            let cookie = state.cookie(state.login_cookie_name(), &b64(&nonce), None);
            (nonce, Some(cookie))
        }
    };
    let r = login_page(&state, StatusCode::OK, &nonce, &next, None);
    Ok(match cookie {
        Some(c) => add_cookie(r, &c),
        None => r,
    })
}

/// POST /login: check the form's CSRF token, then the password (off the async threads).
/// Success starts a brand-new session and drops the pre-login cookie.
pub async fn login(
    state: Arc<State>,
    headers: HeaderMap,
    fields: Fields,
) -> Result<Response, Rejection> {
    if !same_origin(&headers, state.secure) {
        return Err(Problem::CrossSite.into());
    }
    let Some(nonce) = state.login_nonce(&headers) else {
        return Err(Problem::LoginExpired.into());
    };
    if !state.login_csrf_ok(&nonce, field(&fields, "_csrf").unwrap_or("")) {
        return Err(Problem::BadCsrf.into());
    }
    let next = safe_next(field(&fields, "next"), &state.config.base_path);
    let username = field(&fields, "username").unwrap_or("");
    let password = field(&fields, "password").unwrap_or("");

    let manifest = state.manifest();
    let user = manifest.auth.users.get(username);
    let hash = user.map(|u| u.password_hash.as_str());
    let ok = state
        .verifier
        .verify(hash, password)
        .await
        .map_err(|_| Problem::Busy)?;
    let Some(user) = user.filter(|_| ok) else {
        tracing::info!(user = %escape(username), "sign-in failed");
        return Ok(login_page(
            &state,
            StatusCode::UNAUTHORIZED,
            &nonce,
            &next,
            Some(LOGIN_FAILED),
        ));
    };
    tracing::info!(user = %user.name, "signed in");
    let now = auth::now();
    let fingerprint = state.sessions.fingerprint(&user.password_hash);
    let session = Session::new(&user.name, fingerprint, now);
    let r = see_other(&next);
    let r = add_cookie(r, &state.session_cookie(&session, now));
    Ok(add_cookie(
        r,
        &state.expired_cookie(state.login_cookie_name()),
    ))
}

/// POST /logout: revoke this session id and clear the cookie.
pub async fn logout(
    state: Arc<State>,
    headers: HeaderMap,
    fields: Fields,
) -> Result<Response, Rejection> {
    if !same_origin(&headers, state.secure) {
        return Err(Problem::CrossSite.into());
    }
    let login = format!("{}login", state.base);
    let Some(authed) = state.authenticate(&headers) else {
        return Ok(add_cookie(
            see_other(&login),
            &state.expired_cookie(state.sessions.name),
        ));
    };
    if !authed.csrf_ok(&state, field(&fields, "_csrf").unwrap_or("")) {
        return Err(Problem::BadCsrf.into());
    }
    let session = &authed.session;
    state
        .revoked
        .revoke(session, session.expires(&state.policy), auth::now());
    tracing::info!(user = %authed.user.name, "signed out");
    Ok(add_cookie(
        see_other(&login),
        &state.expired_cookie(state.sessions.name),
    ))
}

/// The signed-in user, or a redirect to the login form that comes back to `path`.
pub fn require(
    state: &State,
    headers: &HeaderMap,
    path_and_query: &str,
) -> Result<Authed, Rejection> {
    state.authenticate(headers).ok_or_else(|| {
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
}

/// GET /: the tools this user may run, grouped, filtered by `?q=`.
pub async fn index(
    state: Arc<State>,
    headers: HeaderMap,
    query: HashMap<String, String>,
) -> Result<Response, Rejection> {
    let authed = require(&state, &headers, &state.base)?;
    let manifest = state.manifest();
    let q = query.get("q").map(|s| s.trim()).unwrap_or("");
    let needle = q.to_lowercase();
    let mine: Vec<&Tool> = manifest
        .tools
        .values()
        .filter(|t| t.allows(&authed.user.name, &authed.user.groups))
        .collect();
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

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// A user-supplied string made safe for one log line (control characters escaped).
pub fn escape(text: &str) -> String {
    text.chars()
        .take(128)
        .flat_map(char::escape_default)
        .collect()
}
