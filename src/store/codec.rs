//! How the history's structured columns are written: arguments, stderr ranges and
//! output files as small JSON texts (read back leniently: a damaged value reads as
//! empty, never as a failure of the whole history); and how a history row, from
//! either database, becomes a `RunRecord` (`run_record`).

use std::ops::Range;
use std::time::{Duration, SystemTime};

use serde_json::{Value as Json, json};

use super::from_unix_ms;
use super::records::{ProcessMark, RunRecord};
use crate::manifest::Value;
use crate::runs::{OutputFile, RunArg, Status};

pub fn args_json(args: &[RunArg]) -> String {
    let list: Vec<Json> = args
        .iter()
        .map(|a| {
            let mut o = json!({ "name": a.name, "label": a.label, "shown": a.shown });
            if let Some(again) = &a.again {
                o["again"] = again.to_json();
            }
            o
        })
        .collect();
    Json::Array(list).to_string()
}

pub fn args_from_json(text: &str) -> Vec<RunArg> {
    let Ok(Json::Array(list)) = serde_json::from_str::<Json>(text) else {
        return Vec::new();
    };
    let text_of = |v: &Json, key: &str| v[key].as_str().unwrap_or_default().to_string();
    list.iter()
        .map(|a| RunArg {
            name: text_of(a, "name"),
            label: text_of(a, "label"),
            shown: text_of(a, "shown"),
            again: a.get("again").map(value_from_json),
        })
        .collect()
}

fn value_from_json(v: &Json) -> Value {
    match v {
        Json::String(s) => Value::One(s.clone()),
        Json::Bool(b) => Value::Bool(*b),
        Json::Array(items) => Value::Many(
            items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_string))
                .collect(),
        ),
        _ => Value::Absent,
    }
}

pub fn ranges_json(ranges: &[Range<u64>]) -> String {
    let list: Vec<[u64; 2]> = ranges.iter().map(|r| [r.start, r.end]).collect();
    json!(list).to_string()
}

pub fn ranges_from_json(text: &str) -> Vec<Range<u64>> {
    serde_json::from_str::<Vec<[u64; 2]>>(text)
        .unwrap_or_default()
        .into_iter()
        .map(|[a, b]| a..b)
        .collect()
}

pub fn files_json(files: &[OutputFile]) -> String {
    let list: Vec<Json> = files
        .iter()
        .map(|f| json!({ "name": f.name, "size": f.size, "image": f.image }))
        .collect();
    Json::Array(list).to_string()
}

pub fn files_from_json(text: &str) -> Vec<OutputFile> {
    let Ok(Json::Array(list)) = serde_json::from_str::<Json>(text) else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|f| {
            Some(OutputFile {
                name: f["name"].as_str()?.to_string(),
                size: f["size"].as_u64().unwrap_or(0),
                image: f["image"].as_bool().unwrap_or(false),
            })
        })
        .collect()
}

/// A row of the history's columns (the stores' `COLUMNS`, in that order), whichever
/// database read it: `run_record` makes it a `RunRecord` in one place.
pub trait RunRow {
    type Error;
    fn text(&self, i: usize) -> Result<String, Self::Error>;
    fn maybe_text(&self, i: usize) -> Result<Option<String>, Self::Error>;
    fn int(&self, i: usize) -> Result<i64, Self::Error>;
    fn maybe_int(&self, i: usize) -> Result<Option<i64>, Self::Error>;
    fn flag(&self, i: usize) -> Result<bool, Self::Error>;
}

/// The run a history row describes (damaged structured columns read as empty).
pub fn run_record<R: RunRow>(row: &R) -> Result<RunRecord, R::Error> {
    let ms = |i: usize| -> Result<Option<SystemTime>, R::Error> {
        Ok(row.maybe_int(i)?.map(from_unix_ms))
    };
    let small = |i: usize| -> Result<Option<i32>, R::Error> {
        Ok(row.maybe_int(i)?.and_then(|v| i32::try_from(v).ok()))
    };
    let count = |i: usize| -> Result<u64, R::Error> { Ok(row.int(i)?.max(0) as u64) };
    let process = match (small(22)?, row.maybe_int(23)?, row.maybe_text(24)?) {
        (Some(pgid), Some(ticks), Some(boot_id)) => Some(ProcessMark {
            pgid,
            start_ticks: ticks.max(0) as u64,
            boot_id,
        }),
        _ => None,
    };
    Ok(RunRecord {
        seq: row.int(0)?,
        id: row.text(1)?,
        tool: row.text(2)?,
        tool_title: row.text(3)?,
        user: row.text(4)?,
        via: row.text(5)?,
        args: args_from_json(&row.text(6)?),
        status: Status::from_parts(&row.text(7)?, small(8)?, small(9)?, row.maybe_text(10)?),
        created: from_unix_ms(row.int(11)?),
        started: ms(12)?,
        ended: ms(13)?,
        duration: row
            .maybe_int(14)?
            .map(|d| Duration::from_millis(d.max(0) as u64)),
        output_len: count(15)?,
        dropped: count(16)?,
        cut: row.maybe_text(17)?,
        in_file: row.flag(18)?,
        stderr: ranges_from_json(&row.text(19)?),
        files: files_from_json(&row.text(20)?),
        disk_bytes: count(21)?,
        process,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_keep_their_values_to_run_again() {
        let args = vec![
            RunArg {
                name: "db".into(),
                label: "Database".into(),
                shown: "main".into(),
                again: Some(Value::One("main".into())),
            },
            RunArg {
                name: "pw".into(),
                label: "Password".into(),
                shown: "***".into(),
                again: None,
            },
            RunArg {
                name: "tags".into(),
                label: "Tags".into(),
                shown: "a, b".into(),
                again: Some(Value::Many(vec!["a".into(), "b".into()])),
            },
            RunArg {
                name: "opt".into(),
                label: "Opt".into(),
                shown: String::new(),
                again: Some(Value::Absent),
            },
        ];
        assert_eq!(args_from_json(&args_json(&args)), args);
    }
}
