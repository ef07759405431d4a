//! The audit log: one JSON object per line for every sign-in, failed sign-in, throttled
//! attempt, failed 2FA code, sign-out, run start, run end and cancel. Values a user
//! typed go through JSON string escaping, so a newline or an ANSI escape in a user name
//! cannot forge a line; passwords never appear (password arguments are `"***"`).
//!
//! With `--audit-log FILE` (or `[server] audit_log`) each record is appended to the file
//! with one write and nothing buffered in ftw, so a crash loses at most the record being
//! written. Without a file the same records go to the log (stderr) under `ftw::audit`.
//!
//! Rotation: SIGHUP reopens the file (logrotate's `postrotate`), and before each record
//! ftw checks that its path still names the file it holds, so a log moved away is
//! followed by a new one and a deleted log is made again, with a warning, instead of
//! records vanishing into an unlinked file.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::{Map, Value, json};

#[derive(Debug)]
pub struct Audit {
    file: Option<Mutex<Sink>>,
}

/// The audit file, and which file it is (device, inode).
#[derive(Debug)]
struct Sink {
    path: PathBuf,
    file: File,
    id: (u64, u64),
}

impl Sink {
    fn open(path: &Path) -> std::io::Result<Sink> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)?;
        let meta = file.metadata()?;
        Ok(Sink {
            path: path.to_path_buf(),
            file,
            id: (meta.dev(), meta.ino()),
        })
    }

    /// Opens the path again if it no longer names the file held (moved or deleted).
    fn follow(&mut self) {
        let why = match std::fs::metadata(&self.path) {
            Ok(meta) if (meta.dev(), meta.ino()) == self.id => return,
            Ok(_) => None,
            Err(_) => Some("was deleted"),
        };
        match Sink::open(&self.path) {
            Ok(fresh) => {
                match why {
                    Some(why) => tracing::warn!(
                        "the audit log {} {why}; ftw made it again",
                        self.path.display()
                    ),
                    None => tracing::info!(
                        "the audit log {} was replaced (rotated); ftw writes to the new file",
                        self.path.display()
                    ),
                }
                *self = fresh;
            }
            Err(e) => tracing::error!(
                "cannot open the audit log {} again: {}; records go to the old file",
                self.path.display(),
                crate::manifest::io_reason(&e)
            ),
        }
    }
}

impl Audit {
    /// Opens (creates, mode 0600) the audit file for appending, or logs records.
    pub fn open(path: Option<&Path>) -> Result<Audit, String> {
        let Some(path) = path else {
            return Ok(Audit { file: None });
        };
        let sink = Sink::open(path).map_err(|e| {
            format!(
                "cannot open the audit log {}: {}",
                path.display(),
                crate::manifest::io_reason(&e)
            )
        })?;
        Ok(Audit {
            file: Some(Mutex::new(sink)),
        })
    }

    /// Opens the audit file again (SIGHUP, after log rotation).
    pub fn reopen(&self) {
        let Some(sink) = &self.file else { return };
        let mut sink = sink.lock().expect("audit lock");
        match Sink::open(&sink.path) {
            Ok(fresh) => *sink = fresh,
            Err(e) => tracing::error!(
                "cannot reopen the audit log {}: {}",
                sink.path.display(),
                crate::manifest::io_reason(&e)
            ),
        }
    }

    /// Records one event with its fields.
    pub fn record(&self, event: &str, fields: Value) {
        let mut object = Map::new();
        object.insert("time".into(), json!(now_rfc3339()));
        object.insert("event".into(), json!(event));
        if let Value::Object(extra) = fields {
            object.extend(extra);
        }
        let mut record = Value::Object(object);
        cut_long_strings(&mut record);
        let mut line = record.to_string();
        match &self.file {
            Some(sink) => {
                line.push('\n');
                let mut sink = sink.lock().expect("audit lock");
                sink.follow();
                if let Err(e) = sink.file.write_all(line.as_bytes()) {
                    tracing::error!("cannot write the audit log: {e}; the record was: {line}");
                }
            }
            None => tracing::info!(target: "ftw::audit", "{line}"),
        }
    }
}

/// Characters of one string kept in a record. User names, arguments and every other
/// string a client chose are cut here, before JSON escaping (which can make a control
/// character six bytes): a request cannot make the log grow by more than a few KB.
pub const MAX_CHARS: usize = 256;

/// Cuts every string in `value` longer than `MAX_CHARS`, saying how long it was.
fn cut_long_strings(value: &mut Value) {
    match value {
        Value::String(s) => {
            if let Some((end, _)) = s.char_indices().nth(MAX_CHARS) {
                let bytes = s.len();
                s.truncate(end);
                s.push_str(&format!("…[cut: {bytes} bytes in all]"));
            }
        }
        Value::Array(items) => items.iter_mut().for_each(cut_long_strings),
        Value::Object(map) => map.values_mut().for_each(cut_long_strings),
        _ => {}
    }
}

/// An address for the log.
pub fn client(ip: IpAddr) -> Value {
    json!(ip.to_string())
}

fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| now.unix_timestamp().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_single_json_lines_with_escaped_controls() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let audit = Audit::open(Some(&path)).unwrap();
        audit.record(
            "sign-in-failed",
            json!({ "user": "evil\n{\"event\":\"sign-in\"}\u{1b}[31m" }),
        );
        audit.record("sign-in", json!({ "user": "alice" }));
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        let first: Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(first["event"], "sign-in-failed");
        assert!(lines[0].contains("\\n") && lines[0].contains("\\u001b"));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn long_strings_are_cut_before_escaping() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let audit = Audit::open(Some(&path)).unwrap();
        let name = "\u{1}".repeat(1_000_000);
        audit.record(
            "sign-in-failed",
            json!({ "user": name, "args": { "a": ["é".repeat(300), "short"] } }),
        );
        let line = std::fs::read_to_string(&path).unwrap();
        assert!(line.len() < 4000, "{} bytes", line.len());
        let record: Value = serde_json::from_str(&line).unwrap();
        let user = record["user"].as_str().unwrap();
        assert!(user.ends_with("…[cut: 1000000 bytes in all]"), "{user}");
        assert_eq!(user.chars().filter(|c| *c == '\u{1}').count(), MAX_CHARS);
        let arg = record["args"]["a"][0].as_str().unwrap();
        assert!(arg.starts_with(&"é".repeat(MAX_CHARS)) && arg.contains("[cut: 600 bytes"));
        assert_eq!(record["args"]["a"][1], "short");
    }

    #[test]
    fn a_rotated_or_deleted_log_is_followed_by_a_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let audit = Audit::open(Some(&path)).unwrap();
        audit.record("one", json!({}));
        std::fs::rename(&path, dir.path().join("audit.log.1")).unwrap();
        audit.record("two", json!({}));
        std::fs::remove_file(&path).unwrap();
        audit.record("three", json!({}));
        let lines = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
        assert!(lines("audit.log.1").contains("\"one\"") && !lines("audit.log.1").contains("two"));
        assert!(lines("audit.log").contains("\"three\""));
        // SIGHUP's reopen: records go to whatever the path names now.
        std::fs::rename(&path, dir.path().join("audit.log.2")).unwrap();
        std::fs::write(&path, "").unwrap();
        audit.reopen();
        audit.record("four", json!({}));
        assert!(lines("audit.log").contains("\"four\""));
    }
}
