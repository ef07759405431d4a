//! The audit log: one JSON object per line for every sign-in, failed sign-in, throttled
//! attempt, failed 2FA code, sign-out, run start, run end and cancel. Values a user
//! typed go through JSON string escaping, so a newline or an ANSI escape in a user name
//! cannot forge a line; passwords never appear (password arguments are `"***"`).
//!
//! With `--audit-log FILE` (or `[server] audit_log`) each record is appended to the file
//! with one write and nothing buffered in ftw, so a crash loses at most the record being
//! written. Without a file the same records go to the log (stderr) under `ftw::audit`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Mutex;

use serde_json::{Map, Value, json};

#[derive(Debug)]
pub struct Audit {
    file: Option<Mutex<File>>,
}

impl Audit {
    /// Opens (creates, mode 0600) the audit file for appending, or logs records.
    pub fn open(path: Option<&Path>) -> Result<Audit, String> {
        let Some(path) = path else {
            return Ok(Audit { file: None });
        };
        use std::os::unix::fs::OpenOptionsExt;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| {
                format!(
                    "cannot open the audit log {}: {}",
                    path.display(),
                    crate::manifest::io_reason(&e)
                )
            })?;
        Ok(Audit {
            file: Some(Mutex::new(file)),
        })
    }

    /// Records one event with its fields.
    pub fn record(&self, event: &str, fields: Value) {
        let mut object = Map::new();
        object.insert("time".into(), json!(now_rfc3339()));
        object.insert("event".into(), json!(event));
        if let Value::Object(extra) = fields {
            object.extend(extra);
        }
        let mut line = Value::Object(object).to_string();
        match &self.file {
            Some(file) => {
                line.push('\n');
                let mut file = file.lock().expect("audit lock");
                if let Err(e) = file.write_all(line.as_bytes()) {
                    tracing::error!("cannot write the audit log: {e}; the record was: {line}");
                }
            }
            None => tracing::info!(target: "ftw::audit", "{line}"),
        }
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
}
