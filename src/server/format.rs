//! How runs read to people: status sentences, durations, times and sizes, written once
//! so the run page, the history, the event stream and the API say the same thing.

use std::time::{Duration, SystemTime};

use crate::exec::Exit;
use crate::runs::{Cause, RunArg, Status};

pub use crate::manifest::human_size;

pub fn status_text(status: &Status) -> String {
    match status {
        Status::Queued => "queued".into(),
        Status::Running => "running".into(),
        Status::Succeeded => "succeeded (exit code 0)".into(),
        Status::Failed(code) => format!("failed (exit code {code})"),
        Status::Killed(signal) => format!("killed by signal {signal} ({})", signal_name(*signal)),
        Status::TimedOut(exit) => format!("timed out ({})", then(*exit)),
        Status::Cancelled(None) => "cancelled before it started".into(),
        Status::Cancelled(Some(exit)) => format!("cancelled ({})", then(*exit)),
        Status::Error(why) => format!("could not start: {why}"),
        // Read after "This run" on the run page, and alone in the history.
        Status::Interrupted(None, Cause::Shutdown) => {
            "was interrupted: ftw shut down before it started".into()
        }
        Status::Interrupted(Some(exit), Cause::Shutdown) => {
            format!("was interrupted when ftw shut down ({})", then(*exit))
        }
        Status::Interrupted(_, Cause::Crash) => {
            "was interrupted: ftw stopped while it ran (its output so far is kept)".into()
        }
    }
}

/// Whether a finished run went wrong (failed, killed, timed out, could not start), so
/// its page looks like an error. A cancelled run is someone's choice, not a failure.
pub fn is_problem(status: &Status) -> bool {
    matches!(
        status,
        Status::Failed(_)
            | Status::Killed(_)
            | Status::TimedOut(_)
            | Status::Error(_)
            | Status::Interrupted(..)
    )
}

/// How a stopped program ended: "stopped by SIGTERM", "it exited with code 3".
fn then(exit: Exit) -> String {
    match exit {
        Exit::Signal(signal) => format!("stopped by {}", signal_name(signal)),
        Exit::Code(code) => format!("it exited with code {code}"),
    }
}

pub fn signal_name(signal: i32) -> &'static str {
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

/// RFC 3339, for JSON.
pub fn rfc3339(t: SystemTime) -> String {
    time::OffsetDateTime::from(t)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// `?name=value...` that opens the tool's form with a run's values again (passwords
/// and uploads are never put in a link), or nothing.
pub fn rerun_query(args: &[RunArg]) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for arg in args {
        for text in arg.again.iter().flat_map(|v| v.texts()) {
            query.append_pair(&arg.name, text);
        }
    }
    let query = query.finish();
    if query.is_empty() {
        query
    } else {
        format!("?{query}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Value;

    #[test]
    fn sizes_and_durations_read_naturally() {
        assert_eq!(human_size(999), "999 bytes");
        assert_eq!(human_size(2_000_000), "2 MB");
        assert_eq!(human_size(1_500), "1.5 KB");
        assert_eq!(human_duration(Duration::from_millis(850)), "850 ms");
        assert_eq!(human_duration(Duration::from_secs(245)), "4 min 05 s");
    }

    #[test]
    fn run_again_links_keep_values_but_never_secrets() {
        let arg = |name: &str, again: Option<Value>| RunArg {
            name: name.into(),
            label: name.into(),
            shown: String::new(),
            again,
        };
        let args = [
            arg("db", Some(Value::One("a b&c".into()))),
            arg("tags", Some(Value::Many(vec!["x".into(), "y".into()]))),
            arg("gzip", Some(Value::Bool(false))),
            arg("secret", None),
            arg("label", Some(Value::Absent)),
        ];
        assert_eq!(rerun_query(&args), "?db=a+b%26c&tags=x&tags=y&gzip=false");
        assert_eq!(rerun_query(&args[3..]), "");
    }
}
