//! Building responses: rendered pages, redirects, JSON, and the headers every response
//! carries (CSP without inline script, nosniff, frame and referrer rules, HSTS over TLS,
//! `no-store` unless a response says otherwise, and a charset on every text type).

use askama::Template;
use http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION, REFERRER_POLICY, SET_COOKIE,
    STRICT_TRANSPORT_SECURITY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use http::{HeaderValue, StatusCode};
use warp::reply::Response;

use super::State;
use super::assets;
use super::identity::Authed;

pub const CSP: &str = "default-src 'self'; object-src 'none'; base-uri 'none'; \
                       frame-ancestors 'none'; form-action 'self'";

/// What every page's layout needs.
pub struct Page<'a> {
    pub app: &'a str,
    pub heading: &'a str,
    pub base: &'a str,
    pub user: Option<&'a str>,
    pub csrf: &'a str,
    pub nav: &'a str,
    pub asset_version: &'static str,
}

impl<'a> Page<'a> {
    pub fn new(
        state: &'a State,
        app: &'a str,
        heading: &'a str,
        authed: Option<&'a Authed>,
    ) -> Self {
        Page {
            app,
            heading,
            base: &state.base,
            user: authed.map(|a| a.user.name.as_str()),
            csrf: authed.map_or("", |a| a.csrf.as_str()),
            nav: "",
            asset_version: assets::version(),
        }
    }
}

/// A rendered template with a status. Rendering cannot fail for ftw's templates (their
/// values are plain strings), but if it did the user gets a 500, not a panic.
pub fn html(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(body) => {
            let mut r = Response::new(body.into());
            *r.status_mut() = status;
            r.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            r
        }
        Err(e) => {
            tracing::error!("rendering a page failed: {e}");
            text(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n")
        }
    }
}

pub fn text(status: StatusCode, body: &'static str) -> Response {
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

pub fn json(status: StatusCode, value: &serde_json::Value) -> Response {
    let mut r = Response::new(value.to_string().into());
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    r
}

/// `303 See Other` to a path of ours (already checked by the caller).
pub fn see_other(location: &str) -> Response {
    let mut r = Response::new(Default::default());
    *r.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(LOCATION, v);
    }
    r
}

pub fn add_cookie(mut r: Response, cookie: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        r.headers_mut().append(SET_COOKIE, v);
    }
    r
}

impl Authed {
    /// Attaches the refreshed session cookie, when one is due.
    pub fn finish(&self, r: Response) -> Response {
        match &self.refresh {
            Some(cookie) => add_cookie(r, cookie),
            None => r,
        }
    }
}

/// The headers every response gets, whatever produced it.
pub fn secure_headers(r: Response, tls: bool) -> Response {
    secure_headers_with(r, tls, &[])
}

/// `secure_headers`, with forms also allowed to lead to `form_origins`: the identity
/// providers a sign-in or sign-out form redirects to (browsers apply `form-action` to
/// a form's redirects too).
pub fn secure_headers_with(mut r: Response, tls: bool, form_origins: &[String]) -> Response {
    let h = r.headers_mut();
    // A response may carry a stricter policy of its own (downloads are sandboxed).
    if !h.contains_key(CONTENT_SECURITY_POLICY) {
        let policy = if form_origins.is_empty() {
            HeaderValue::from_static(CSP)
        } else {
            let value = format!("{CSP} {}", form_origins.join(" "));
            HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static(CSP))
        };
        h.insert(CONTENT_SECURITY_POLICY, policy);
    }
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    if tls {
        h.insert(
            STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    // Only the embedded assets may be cached (they say `public`); everything else,
    // event streams included, is `no-store`.
    let public = h
        .get(CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("public"));
    if !public {
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if let Some(ct) = h.get(CONTENT_TYPE).and_then(|v| v.to_str().ok())
        && needs_charset(ct)
        && let Ok(v) = HeaderValue::from_str(&format!("{ct}; charset=utf-8"))
    {
        h.insert(CONTENT_TYPE, v);
    }
    r
}

fn needs_charset(content_type: &str) -> bool {
    let lower = content_type.to_ascii_lowercase();
    !lower.contains("charset")
        && (lower.starts_with("text/")
            || lower.starts_with("application/json")
            || lower.starts_with("application/javascript"))
}
