//! The stylesheet and script, embedded in the binary so ftw needs no files beside it
//! and no external assets. URLs carry a content hash (`?v=`), so browsers may cache
//! them forever and still never see a stale copy after an upgrade.

use std::sync::LazyLock;

use http::HeaderValue;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use sha2::{Digest, Sha256};
use warp::reply::Response;

const SCRIPT: &str = include_str!("../../static/app.js");

/// The stylesheet with the 256 terminal colour classes appended.
static STYLE: LazyLock<String> = LazyLock::new(|| {
    let mut css = include_str!("../../static/style.css").to_string();
    css.push_str(&crate::ansi::palette_css());
    css
});

static VERSION: LazyLock<String> = LazyLock::new(|| {
    let digest = Sha256::new()
        .chain_update(STYLE.as_bytes())
        .chain_update(SCRIPT)
        .finalize();
    digest[..6].iter().map(|b| format!("{b:02x}")).collect()
});

/// A short hash of every asset, for cache-busting URLs.
pub fn version() -> &'static str {
    &VERSION
}

/// The asset called `name`, or `None`.
pub fn get(name: &str) -> Option<Response> {
    let (body, content_type) = match name {
        "style.css" => (STYLE.as_str(), "text/css; charset=utf-8"),
        "app.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        _ => return None,
    };
    let mut r = Response::new(body.into());
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut().insert(
        CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    Some(r)
}
