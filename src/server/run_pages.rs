//! Runs in the browser: the history (`/runs`), one run's page with its output so far
//! (`/runs/{id}`), its live output as Server-Sent Events (`/runs/{id}/events`), cancel,
//! and the files it wrote (`/runs/{id}/files/{name}`).
//!
//! A user sees, cancels and downloads only their own runs (admins: everyone's), and
//! only of tools they may still run; anything else is 404, exactly like a run that
//! does not exist.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use askama::Template;
use futures_util::stream;
use http::header::{CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use http::{HeaderValue, StatusCode};
use serde_json::json;
use warp::Rejection;
use warp::reply::{Reply, Response};
use warp::sse::Event;

use super::State;
use super::context::Ctx;
use super::identity::Authed;
use super::pages::{Fields, require};
use super::problem::Problem;
use super::respond::{Page, html, see_other};
use crate::ansi::AnsiHtml;
use crate::runs::{OutputFile, Run, Status};

/// Pages and event streams show the last this many bytes of output; the whole output
/// is a download (`/runs/{id}/output`). A page of 10 MB of `<` would be 40 MB of HTML.
pub const PAGE_TAIL: u64 = 256 * 1024;
// The tail is read in one piece.
const _: () = assert!(PAGE_TAIL as usize <= crate::runs::CHUNK);

/// The run, if this user may see it.
pub fn visible(state: &State, authed: &Authed, id: &str) -> Result<Arc<Run>, Rejection> {
    let run = state.runs.get(id).ok_or(Problem::NotFound)?;
    if may_see(state, authed, &run) {
        Ok(run)
    } else {
        Err(Problem::NotFound.into())
    }
}

fn may_see(state: &State, authed: &Authed, run: &Run) -> bool {
    let manifest = state.manifest();
    let user = &authed.user;
    let tool_ok = manifest
        .tools
        .get(&run.tool_id)
        .is_some_and(|t| t.allows(&user.name, &user.groups));
    tool_ok && (run.user == user.name || manifest.auth.is_admin(user))
}

pub fn status_text(status: &Status) -> String {
    match status {
        Status::Queued => "queued".into(),
        Status::Running => "running".into(),
        Status::Succeeded => "succeeded (exit code 0)".into(),
        Status::Failed(code) => format!("failed (exit code {code})"),
        Status::Killed(signal) => format!("killed by signal {signal} ({})", signal_name(*signal)),
        Status::TimedOut => "timed out".into(),
        Status::Cancelled => "cancelled".into(),
        Status::Error(why) => format!("could not start: {why}"),
    }
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGABRT => "SIGABRT",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGTERM => "SIGTERM",
        _ => "signal",
    }
}

/// "850 ms", "12.3 s", "4 min 05 s".
pub fn human_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", d.as_secs_f64())
    } else {
        let s = d.as_secs();
        format!("{} min {:02} s", s / 60, s % 60)
    }
}

/// UTC time of day and date, e.g. "2026-11-22 14:05:09 UTC".
pub fn human_time(t: SystemTime) -> String {
    let odt = time::OffsetDateTime::from(t);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        odt.year(),
        u8::from(odt.month()),
        odt.day(),
        odt.hour(),
        odt.minute(),
        odt.second()
    )
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
    duration: Option<String>,
    status_word: &'static str,
    status_text: String,
    finished: bool,
    shown_args: &'a [(String, String)],
    /// Bytes of output before the part shown (only the last `PAGE_TAIL` are).
    skipped: u64,
    rerun_query: &'a str,
    /// Escaped by the ANSI converter, which never passes markup through.
    output_html: String,
    dropped: u64,
    files: Vec<OutputFile>,
}

/// GET /runs/{id}
pub async fn show(id: String, state: Arc<State>, ctx: Ctx) -> Result<Response, Rejection> {
    let authed = require(&state, &ctx, &format!("{}runs/{id}", state.base))?;
    let run = visible(&state, &authed, &id)?;
    let tail = run.tail_start(PAGE_TAIL);
    let snap = run.snapshot();
    let manifest = state.manifest();
    let mut page = Page::new(&state, &manifest.title, &run.tool_title, Some(&authed));
    page.nav = "runs";
    let body = RunPage {
        page,
        id: &run.id,
        tool_id: &run.tool_id,
        tool_title: &run.tool_title,
        user: &run.user,
        started: human_time(run.created),
        duration: snap
            .status
            .is_finished()
            .then_some(snap.duration)
            .flatten()
            .map(human_duration),
        status_word: snap.status.word(),
        status_text: status_text(&snap.status),
        finished: snap.status.is_finished(),
        shown_args: &run.shown_args,
        skipped: tail,
        rerun_query: &run.rerun_query,
        output_html: AnsiHtml::convert(&run.output_since(tail).0),
        dropped: snap.dropped,
        files: snap.files,
    };
    Ok(authed.finish(html(StatusCode::OK, &body)))
}

/// Where an event stream is.
enum Phase {
    /// Nothing sent yet: send everything so far.
    Start,
    Live,
    Done,
}

/// How output travels in an event stream.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Escaped HTML with colour classes, for the run page; starts at the page's tail.
    Html,
    /// The text itself (UTF-8, invalid bytes replaced), for API clients; starts at 0.
    Text,
}

struct Viewer {
    run: Arc<Run>,
    changes: tokio::sync::watch::Receiver<u64>,
    offset: u64,
    format: Format,
    ansi: AnsiHtml,
    /// Bytes of a UTF-8 character split across chunks (text format).
    carry: Vec<u8>,
    status: &'static str,
    phase: Phase,
    base: String,
}

impl Viewer {
    fn render(&mut self, bytes: &[u8]) -> String {
        match self.format {
            Format::Html => self.ansi.push(bytes),
            Format::Text => {
                self.carry.extend_from_slice(bytes);
                let valid = match std::str::from_utf8(&self.carry) {
                    Ok(_) => self.carry.len(),
                    // Keep an incomplete last character for the next chunk.
                    Err(e) if e.error_len().is_none() => e.valid_up_to(),
                    Err(_) => self.carry.len(),
                };
                let rest = self.carry.split_off(valid);
                let text = String::from_utf8_lossy(&self.carry).into_owned();
                self.carry = rest;
                text
            }
        }
    }
}

/// An event stream of a run: `snapshot` (the output so far), then `output` chunks and
/// `status` changes as they happen, then one `end` event (JSON with the exit code).
pub fn event_stream(run: Arc<Run>, base: String, format: Format) -> Response {
    let viewer = Viewer {
        changes: run.watch(),
        run,
        offset: 0,
        format,
        ansi: AnsiHtml::new(),
        carry: Vec::new(),
        status: "",
        phase: Phase::Start,
        base,
    };
    let events = stream::unfold(viewer, |mut v| async move {
        let event = next_event(&mut v).await?;
        Some((Ok::<_, std::convert::Infallible>(event), v))
    });
    let keep_alive = warp::sse::keep_alive().interval(Duration::from_secs(15));
    let mut r = warp::sse::reply(keep_alive.stream(events)).into_response();
    r.headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    r
}

/// GET /runs/{id}/events: `snapshot` (everything so far, as HTML), then the current
/// `status` of an unfinished run, `output` chunks and `status` changes as they happen,
/// then one `end` event with the exit code. A
/// browser that reconnects gets a new snapshot, so it never misses or repeats output.
pub async fn events(id: String, state: Arc<State>, ctx: Ctx) -> Result<Response, Rejection> {
    let authed = require(&state, &ctx, &format!("{}runs/{id}", state.base))?;
    let run = visible(&state, &authed, &id)?;
    let r = event_stream(run, state.base.clone(), Format::Html);
    Ok(authed.finish(r))
}

/// Text as an event's data, exactly as a client will read it back. warp writes each
/// line as `data:LINE`, and a client drops one space after the colon, so every line
/// gets a space of its own (or an indented line loses one). A carriage return ends a
/// line in the event-stream format, so one in the text could start a forged `event:`
/// or `id:` field: CR LF and lone CRs become line breaks, as they do on the page.
fn sse_data(text: &str) -> String {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut data = String::with_capacity(text.len() + 8);
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            data.push('\n');
        }
        data.push(' ');
        data.push_str(line);
    }
    data
}

async fn next_event(v: &mut Viewer) -> Option<Event> {
    loop {
        match v.phase {
            Phase::Done => return None,
            Phase::Start => {
                v.phase = Phase::Live;
                let start = match v.format {
                    Format::Html => v.run.tail_start(PAGE_TAIL),
                    Format::Text => 0,
                };
                let (bytes, _) = v.run.output_since(start);
                v.offset = start + bytes.len() as u64;
                // The page may have been rendered while the run was still queued: the
                // first live step always reports the status, whatever it is now.
                v.status = "";
                return Some(
                    Event::default()
                        .event("snapshot")
                        .data(sse_data(&v.render(&bytes)))
                        .id(v.offset.to_string()),
                );
            }
            Phase::Live => {
                // A status change goes out before the output that follows it, so a
                // page never shows live output under a stale "queued".
                let status = v.run.status();
                if !status.is_finished() && status.word() != v.status {
                    v.status = status.word();
                    return Some(
                        Event::default().event("status").data(
                            json!({ "status": status.word(), "text": status_text(&status) })
                                .to_string(),
                        ),
                    );
                }
                let (bytes, finished) = v.run.output_since(v.offset);
                if !bytes.is_empty() {
                    v.offset += bytes.len() as u64;
                    return Some(
                        Event::default()
                            .event("output")
                            .data(sse_data(&v.render(&bytes)))
                            .id(v.offset.to_string()),
                    );
                }
                if finished {
                    v.phase = Phase::Done;
                    return Some(end_event(&v.run, &v.run.status(), &v.base));
                }
                if v.changes.changed().await.is_err() {
                    // The run is gone (dropped from history): nothing more will come.
                    v.phase = Phase::Done;
                    return None;
                }
            }
        }
    }
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

fn end_event(run: &Run, status: &Status, base: &str) -> Event {
    let snap = run.snapshot();
    let files = files_json(run, &snap.files, base);
    let data = json!({
        "status": status.word(),
        "text": status_text(status),
        "exit_code": status.exit_code(),
        "signal": status.signal(),
        "duration_ms": snap.duration.map(|d| d.as_millis() as u64),
        "duration": snap.duration.map(human_duration),
        "dropped": snap.dropped,
        "files": files,
    });
    Event::default().event("end").data(data.to_string())
}

/// GET /runs/{id}/output: everything the tool printed (up to `max_output`), as a plain
/// text download.
pub async fn output(id: String, state: Arc<State>, ctx: Ctx) -> Result<Response, Rejection> {
    let authed = require(&state, &ctx, &format!("{}runs/{id}", state.base))?;
    let run = visible(&state, &authed, &id)?;
    Ok(authed.finish(output_download(&run)?))
}

/// The run's output as it is now, streamed from its log in chunks (a long output is
/// never held in memory), as an attachment.
pub fn output_download(run: &Run) -> Result<Response, Problem> {
    let (file, len) = run
        .output_reader()
        .map_err(|e| Problem::Internal(format!("cannot read the run's output: {e}")))?;
    let file = Arc::new(file);
    let chunks = stream::unfold(0u64, move |at| {
        let file = Arc::clone(&file);
        async move {
            if at >= len {
                return None;
            }
            let want = (len - at).min(crate::runs::CHUNK as u64) as usize;
            let read = tokio::task::spawn_blocking(move || {
                use std::os::unix::fs::FileExt;
                let mut buf = vec![0u8; want];
                file.read_exact_at(&mut buf, at).map(|()| buf)
            })
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
            Some(match read {
                Ok(buf) => (Ok::<_, std::io::Error>(buf), at + want as u64),
                Err(e) => (Err(e), len),
            })
        }
    });
    let mut r = warp::reply::stream(chunks).into_response();
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(CONTENT_LENGTH, HeaderValue::from(len));
    let name = format!("{}-{}.txt", run.tool_id, run.id);
    h.insert(
        CONTENT_DISPOSITION,
        HeaderValue::from_str(&content_disposition(&name, false))
            .unwrap_or(HeaderValue::from_static("attachment")),
    );
    h.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    Ok(r)
}

/// POST /runs/{id}/cancel
pub async fn cancel(
    id: String,
    state: Arc<State>,
    ctx: Ctx,
    fields: Fields,
) -> Result<Response, Rejection> {
    if !ctx.same_origin() {
        return Err(Problem::CrossSite.into());
    }
    let authed = require(&state, &ctx, &format!("{}runs/{id}", state.base))?;
    let run = visible(&state, &authed, &id)?;
    let header_token = ctx
        .headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok());
    let token = fields
        .iter()
        .find(|(k, _)| k == crate::form::CSRF_FIELD)
        .map(|(_, v)| v.as_str())
        .or(header_token)
        .unwrap_or("");
    if !authed.csrf_ok(&state, token) {
        return Err(Problem::BadCsrf.into());
    }
    run.cancel();
    state.audit.record(
        "cancel",
        json!({
            "user": authed.user.name,
            "client": crate::audit::client(ctx.client),
            "tool": run.tool_id,
            "run": run.id,
        }),
    );
    Ok(authed.finish(see_other(&format!("{}runs/{}", state.base, run.id))))
}

/// GET /runs/{id}/files/{name}: only files listed when the run ended, opened without
/// following symlinks; attachments unless a raster image; sandboxed by CSP either way.
pub async fn file(
    id: String,
    name: String,
    state: Arc<State>,
    ctx: Ctx,
) -> Result<Response, Rejection> {
    let authed = require(&state, &ctx, &format!("{}runs/{id}", state.base))?;
    let run = visible(&state, &authed, &id)?;
    let name = percent_encoding::percent_decode_str(&name)
        .decode_utf8()
        .map_err(|_| Problem::NotFound)?
        .into_owned();
    let (listed, file) = run.file(&name).ok_or(Problem::NotFound)?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(listed.size);
    let content_type = if listed.image {
        mime_guess::from_path(&name)
            .first_raw()
            .unwrap_or("application/octet-stream")
    } else {
        "application/octet-stream"
    };
    let chunks = stream::unfold(tokio::fs::File::from_std(file), |mut f| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 64 * 1024];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(buf), f))
            }
            Err(e) => Some((Err(e), f)),
        }
    });
    let mut r = warp::reply::stream(chunks).into_response();
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(CONTENT_LENGTH, HeaderValue::from(size));
    h.insert(
        CONTENT_DISPOSITION,
        HeaderValue::from_str(&content_disposition(&name, listed.image))
            .unwrap_or(HeaderValue::from_static("attachment")),
    );
    h.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    Ok(authed.finish(r))
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
    let exact: String =
        percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC).collect();
    let kind = if inline { "inline" } else { "attachment" };
    format!("{kind}; filename=\"{fallback}\"; filename*=UTF-8''{exact}")
}

/// A file name as one URL path segment.
pub fn path_segment(name: &str) -> String {
    percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC).collect()
}

#[derive(Template)]
#[template(path = "runs.html")]
struct RunsPage<'a> {
    page: Page<'a>,
    admin: bool,
    rows: Vec<Row>,
}

struct Row {
    id: String,
    tool: String,
    user: String,
    status_word: &'static str,
    status_text: String,
    started: String,
    took: String,
}

/// GET /runs: this user's runs (an admin's: everyone's), newest first.
pub async fn list(state: Arc<State>, ctx: Ctx) -> Result<Response, Rejection> {
    let authed = require(&state, &ctx, &format!("{}runs", state.base))?;
    let manifest = state.manifest();
    let admin = manifest.auth.is_admin(&authed.user);
    let rows = state
        .runs
        .list()
        .into_iter()
        .filter(|r| may_see(&state, &authed, r))
        .map(|r| {
            let snap_status = r.status();
            let took = r.duration().map(human_duration).unwrap_or_default();
            Row {
                id: r.id.clone(),
                tool: r.tool_title.clone(),
                user: r.user.clone(),
                status_word: snap_status.word(),
                status_text: status_text(&snap_status),
                started: human_time(r.created),
                took,
            }
        })
        .collect();
    let mut page = Page::new(
        &state,
        &manifest.title,
        if admin { "All runs" } else { "My runs" },
        Some(&authed),
    );
    page.nav = "runs";
    Ok(authed.finish(html(StatusCode::OK, &RunsPage { page, admin, rows })))
}
