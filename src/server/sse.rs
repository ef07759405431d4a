//! Server-Sent Events of a run, for the run page (escaped HTML) and the API (text):
//! `snapshot` (the output so far), the current `status` of an unfinished run, then
//! `output` chunks and `status` changes as they happen, then one `end` event with the
//! exit code. A browser that reconnects gets a new snapshot, so it never misses or
//! repeats output. Each viewer keeps only an offset into the run's log.
//!
//! One user may have at most `--max-streams-per-user` (32) streams open at once (more
//! get 429): a stream holds a connection for as long as the run lasts, and connections
//! are a shared budget.

use std::sync::Arc;
use std::time::Duration;

use futures_util::stream;
use http::HeaderValue;
use serde_json::json;
use warp::reply::{Reply, Response};
use warp::sse::Event;

use super::download::files_json;
use super::format::{human_duration, is_problem, status_text};
use super::per_key::{PerKey, Place};
use crate::ansi::AnsiHtml;
use crate::runs::{Run, Status};

/// Pages and event streams show the last this many bytes of output; the whole output
/// is a download (`/runs/{id}/output`). A page of 10 MB of `<` would be 40 MB of HTML.
pub const PAGE_TAIL: u64 = 256 * 1024;
// The tail is read in one piece.
const _: () = assert!(PAGE_TAIL as usize <= crate::runs::CHUNK);

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

/// Event streams open, by user, and how many one user may have.
#[derive(Debug)]
pub struct Streams(PerKey);

/// One open event stream, counted until it drops.
pub struct StreamSlot {
    _place: Place,
}

impl Streams {
    pub fn new(per_user: usize) -> Streams {
        Streams(PerKey::new(per_user))
    }

    /// A place for one more stream of `user`, or 429.
    pub fn open(&self, user: &str) -> Result<StreamSlot, super::problem::Problem> {
        let place = self.0.take(user.to_string());
        let place = place.ok_or(super::problem::Problem::TooManyStreams)?;
        Ok(StreamSlot { _place: place })
    }
}

struct Viewer {
    _slot: StreamSlot,
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

/// Output that starts at byte `from` of the run's log, as escaped HTML with stderr's
/// parts in their own class.
pub fn output_html(ansi: &mut AnsiHtml, run: &Run, from: u64, bytes: &[u8]) -> String {
    let end = from + bytes.len() as u64;
    let slice = |a: u64, b: u64| &bytes[(a - from) as usize..(b - from) as usize];
    let mut html = String::new();
    let mut at = from;
    for err in run.stderr_within(from..end) {
        html.push_str(&ansi.push_stream(slice(at, err.start), false));
        html.push_str(&ansi.push_stream(slice(err.start, err.end), true));
        at = err.end;
    }
    html.push_str(&ansi.push_stream(slice(at, end), false));
    html
}

impl Viewer {
    /// `bytes` of output from byte `from`, in this stream's format.
    fn render(&mut self, from: u64, bytes: &[u8]) -> String {
        match self.format {
            Format::Html => output_html(&mut self.ansi, &self.run, from, bytes),
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
pub fn event_stream(run: Arc<Run>, base: String, format: Format, slot: StreamSlot) -> Response {
    let viewer = Viewer {
        _slot: slot,
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
                let html = v.render(start, &bytes);
                v.offset = start + bytes.len() as u64;
                // The page may have been rendered while the run was still queued: the
                // first live step always reports the status, whatever it is now.
                v.status = "";
                return Some(
                    Event::default()
                        .event("snapshot")
                        .data(sse_data(&html))
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
                    let text = v.render(v.offset, &bytes);
                    v.offset += bytes.len() as u64;
                    return Some(
                        Event::default()
                            .event("output")
                            .data(sse_data(&text))
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
        "output_bytes": snap.output_len,
        "problem": is_problem(status),
        "files": files,
    });
    Event::default().event("end").data(data.to_string())
}
