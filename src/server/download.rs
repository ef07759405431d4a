//! What leaves ftw as a file: a run's whole output and the files it wrote. Both stream
//! from disk in chunks through one helper (a long output or a large file is never held
//! in memory), are attachments with an RFC 6266 name unless they are images shown
//! inline, and are sandboxed by their own CSP, so nothing a tool wrote can run as a
//! page of this site.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use futures_util::stream;
use http::HeaderValue;
use http::header::{CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use serde_json::json;
use warp::reply::{Reply, Response};

use super::problem::Problem;
use crate::runs::{OutputFile, Run};

/// GET .../output: the run's output as it is now, as a text attachment.
pub fn output(run: &Run) -> Result<Response, Problem> {
    let (file, len) = run
        .output_reader()
        .map_err(|e| Problem::Internal(format!("cannot read the run's output: {e}")))?;
    let name = format!("{}-{}.txt", run.tool_id, run.id);
    Ok(attachment(
        file,
        len,
        "text/plain; charset=utf-8",
        &content_disposition(&name, false),
    ))
}

/// GET .../files/{name}: a file the run left, by its listed name only (never a path),
/// opened without following symlinks.
pub fn file(run: &Run, name: &str) -> Result<Response, Problem> {
    let (listed, file) = run.file(name).ok_or(Problem::NotFound)?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(listed.size);
    let content_type = if listed.image {
        mime_guess::from_path(name)
            .first_raw()
            .unwrap_or("application/octet-stream")
    } else {
        "application/octet-stream"
    };
    Ok(attachment(
        file,
        len,
        content_type,
        &content_disposition(name, listed.image),
    ))
}

/// The first `len` bytes of `file`, read on the blocking pool a chunk at a time.
fn attachment(file: File, len: u64, content_type: &'static str, disposition: &str) -> Response {
    let file = Arc::new(file);
    let chunks = stream::unfold(0u64, move |at| {
        let file = Arc::clone(&file);
        async move {
            if at >= len {
                return None;
            }
            let want = (len - at).min(crate::runs::CHUNK as u64) as usize;
            let read = tokio::task::spawn_blocking(move || {
                let mut buf = vec![0u8; want];
                file.read_exact_at(&mut buf, at).map(|()| buf)
            })
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
            Some(match read {
                Ok(buf) => (Ok::<_, std::io::Error>(buf), at + want as u64),
                // The file shrank or the disk failed: end the body (its length says it
                // was cut short).
                Err(e) => (Err(e), len),
            })
        }
    });
    let mut r = warp::reply::stream(chunks).into_response();
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(
        CONTENT_DISPOSITION,
        HeaderValue::from_str(disposition).unwrap_or(HeaderValue::from_static("attachment")),
    );
    h.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    r
}

/// The files a run left, as JSON (the run page's `end` event and the API's run).
pub fn files_json(run: &Run, files: &[OutputFile], base: &str) -> Vec<serde_json::Value> {
    files
        .iter()
        .map(|f| {
            json!({
                "name": f.name,
                "size": f.size,
                "image": f.image,
                "url": format!("{base}runs/{}/files/{}", run.id, path_segment(&f.name)),
            })
        })
        .collect()
}

/// RFC 6266: an ASCII fallback name and the exact UTF-8 name.
pub fn content_disposition(name: &str, inline: bool) -> String {
    let fallback: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let kind = if inline { "inline" } else { "attachment" };
    format!(
        "{kind}; filename=\"{fallback}\"; filename*=UTF-8''{}",
        path_segment(name)
    )
}

/// A file name as one URL path segment.
pub fn path_segment(name: &str) -> String {
    percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC).collect()
}
