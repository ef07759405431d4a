//! What leaves ftw as a file: a run's whole output and the files it wrote. Both stream
//! from disk in chunks through one helper (a long output or a large file is never held
//! in memory), are attachments with an RFC 6266 name unless they are images shown
//! inline, and are sandboxed by their own CSP, so nothing a tool wrote can run as a
//! page of this site.

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
pub fn output(run: Arc<Run>) -> Response {
    let len = run.output_len();
    let name = format!("{}-{}.txt", run.tool_id, run.id);
    let read = move |at: u64, want: usize| Ok(run.read_output(at, len, want));
    attachment(
        read,
        len,
        "text/plain; charset=utf-8",
        &content_disposition(&name, false),
    )
}

/// GET .../files/{name}: a file the run left, by its listed name only (never a path),
/// opened without following symlinks (see `Runs::file`).
pub fn file(name: &str, listed: OutputFile, file: std::fs::File) -> Result<Response, Problem> {
    let len = file.metadata().map(|m| m.len()).unwrap_or(listed.size);
    let content_type = if listed.image {
        mime_guess::from_path(name)
            .first_raw()
            .unwrap_or("application/octet-stream")
    } else {
        "application/octet-stream"
    };
    let read = move |at: u64, want: usize| {
        let mut buf = vec![0u8; want];
        file.read_exact_at(&mut buf, at).map(|()| buf)
    };
    Ok(attachment(
        read,
        len,
        content_type,
        &content_disposition(name, listed.image),
    ))
}

/// `len` bytes from `read(at, want)`, a chunk at a time on the blocking pool.
fn attachment<R>(read: R, len: u64, content_type: &'static str, disposition: &str) -> Response
where
    R: Fn(u64, usize) -> std::io::Result<Vec<u8>> + Send + Sync + 'static,
{
    let read = Arc::new(read);
    let chunks = stream::unfold(0u64, move |at| {
        let read = Arc::clone(&read);
        async move {
            if at >= len {
                return None;
            }
            let want = (len - at).min(crate::runs::CHUNK as u64) as usize;
            let chunk = tokio::task::spawn_blocking(move || read(at, want))
                .await
                .unwrap_or_else(|e| Err(std::io::Error::other(e)));
            Some(match chunk {
                Ok(buf) if buf.len() == want => (Ok::<_, std::io::Error>(buf), at + want as u64),
                // The source shrank or the disk failed: end the body (its length says
                // it was cut short).
                Ok(_) => (Err(std::io::ErrorKind::UnexpectedEof.into()), len),
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
