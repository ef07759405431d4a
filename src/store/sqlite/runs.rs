//! The SQL of runs: the history's rows, their output chunks, and the queries behind
//! paging, recovery and retention.

use std::time::SystemTime;

use rusqlite::types::Value as Sql;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};

use crate::store::codec;
use crate::store::records::*;
use crate::store::unix_ms;

const COLUMNS: &str = "seq, id, tool, tool_title, user, via, args, status, exit_code, signal, \
     detail, created_ms, started_ms, ended_ms, duration_ms, output_len, dropped, cut, in_file, \
     stderr, files, disk_bytes, pgid, start_ticks, boot_id";

pub fn insert(conn: &Connection, run: &RunRecord) -> rusqlite::Result<()> {
    let (word, code, signal, detail) = run.status.parts();
    conn.prepare_cached(
        "INSERT INTO runs (id, tool, tool_title, user, via, args, status, exit_code, signal, \
         detail, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        run.id,
        run.tool,
        run.tool_title,
        run.user,
        run.via,
        codec::args_json(&run.args),
        word,
        code,
        signal,
        detail,
        unix_ms(run.created),
    ])
    .map(drop)
}

pub fn started(
    conn: &Connection,
    id: &str,
    at: SystemTime,
    process: Option<ProcessMark>,
) -> rusqlite::Result<()> {
    let (pgid, ticks, boot) = match process {
        Some(p) => (Some(p.pgid), Some(p.start_ticks as i64), Some(p.boot_id)),
        None => (None, None, None),
    };
    conn.prepare_cached(
        "UPDATE runs SET status = 'running', started_ms = ?2, pgid = ?3, start_ticks = ?4, \
         boot_id = ?5 WHERE id = ?1 AND status = 'queued'",
    )?
    .execute(params![id, unix_ms(at), pgid, ticks, boot])
    .map(drop)
}

pub fn append_output(conn: &Connection, id: &str, chunk: &Chunk) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO output_chunks (run, offset, stderr, bytes) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![id, chunk.offset as i64, chunk.stderr, chunk.bytes])
    .map(drop)
}

pub fn finish(conn: &Connection, end: &FinishedRun) -> rusqlite::Result<()> {
    let (word, code, signal, detail) = end.status.parts();
    conn.prepare_cached(
        "UPDATE runs SET status = ?2, exit_code = ?3, signal = ?4, detail = ?5, ended_ms = ?6, \
         duration_ms = ?7, output_len = ?8, dropped = ?9, cut = ?10, in_file = ?11, \
         stderr = ?12, files = ?13, disk_bytes = ?14 WHERE id = ?1",
    )?
    .execute(params![
        end.id,
        word,
        code,
        signal,
        detail,
        unix_ms(end.ended),
        end.duration.map(|d| d.as_millis() as i64),
        end.output_len as i64,
        end.dropped as i64,
        end.cut,
        end.in_file,
        codec::ranges_json(&end.stderr),
        codec::files_json(&end.files),
        end.disk_bytes as i64,
    ])?;
    if end.in_file || end.output.is_some() {
        conn.prepare_cached("DELETE FROM output_chunks WHERE run = ?1")?
            .execute(params![end.id])?;
    }
    if let Some(bytes) = end.output.as_ref().filter(|b| !b.is_empty()) {
        append_output(
            conn,
            &end.id,
            &Chunk {
                offset: 0,
                stderr: false,
                bytes: bytes.clone(),
            },
        )?;
    }
    Ok(())
}

pub fn get(conn: &Connection, id: &str) -> rusqlite::Result<Option<RunRecord>> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM runs WHERE id = ?1"))?
        .query_row(params![id], record)
        .optional()
}

pub fn chunks(conn: &Connection, id: &str) -> rusqlite::Result<Vec<Chunk>> {
    conn.prepare_cached(
        "SELECT offset, stderr, bytes FROM output_chunks WHERE run = ?1 ORDER BY offset",
    )?
    .query_map(params![id], |row| {
        Ok(Chunk {
            offset: row.get::<_, i64>(0)? as u64,
            stderr: row.get(1)?,
            bytes: row.get(2)?,
        })
    })?
    .collect()
}

pub fn list(conn: &Connection, query: &RunQuery) -> rusqlite::Result<Vec<RunRecord>> {
    if query.tools.as_ref().is_some_and(Vec::is_empty) {
        return Ok(Vec::new());
    }
    let (sql, values) = list_sql(conn, query)?;
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(values), record)?;
    rows.collect()
}

pub fn unfinished(conn: &Connection) -> rusqlite::Result<Vec<RunRecord>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM runs WHERE status IN ('queued', 'running') ORDER BY seq"
    ))?
    .query_map([], record)?
    .collect()
}

pub fn counts(conn: &Connection) -> rusqlite::Result<Counts> {
    conn.query_row(
        "SELECT count(*), total(disk_bytes) FROM runs WHERE status NOT IN ('queued', 'running')",
        [],
        |row| {
            Ok(Counts {
                finished: row.get::<_, i64>(0)? as u64,
                disk_bytes: row.get::<_, f64>(1)? as u64,
            })
        },
    )
}

pub fn oldest(
    conn: &Connection,
    limit: usize,
    ended_before: Option<SystemTime>,
) -> rusqlite::Result<Vec<(String, u64)>> {
    let before = ended_before.map_or(i64::MAX, unix_ms);
    conn.prepare_cached(
        "SELECT id, disk_bytes FROM runs WHERE status NOT IN ('queued', 'running') \
         AND ended_ms < ?1 ORDER BY seq LIMIT ?2",
    )?
    .query_map(params![before, limit as i64], |row| {
        Ok((row.get(0)?, row.get::<_, i64>(1)? as u64))
    })?
    .collect()
}

pub fn delete(conn: &Connection, ids: &[String]) -> rusqlite::Result<()> {
    let mut chunks = conn.prepare_cached("DELETE FROM output_chunks WHERE run = ?1")?;
    let mut runs = conn.prepare_cached("DELETE FROM runs WHERE id = ?1")?;
    for id in ids {
        chunks.execute(params![id])?;
        runs.execute(params![id])?;
    }
    Ok(())
}

/// The history query: the filters that are set, newest first, `limit` rows.
fn list_sql(conn: &Connection, q: &RunQuery) -> rusqlite::Result<(String, Vec<Sql>)> {
    let mut sql = format!("SELECT {COLUMNS} FROM runs WHERE 1");
    let mut values: Vec<Sql> = Vec::new();
    let mut add = |clause: &str, value: Sql, sql: &mut String| {
        values.push(value);
        sql.push_str(&format!(" AND {clause} ?{}", values.len()));
    };
    if let Some(user) = &q.user {
        add("user =", Sql::Text(user.clone()), &mut sql);
    }
    if let Some(tool) = &q.tool {
        add("tool =", Sql::Text(tool.clone()), &mut sql);
    }
    if let Some(status) = &q.status {
        add("status =", Sql::Text(status.clone()), &mut sql);
    }
    if let Some(before) = q.before {
        add("seq <", Sql::Integer(before), &mut sql);
    }
    // Dates bound the scan by `seq` too (runs are numbered in the order they were
    // made), so an old date range does not walk every newer run first. The exact test
    // on the time stays, for clocks that went backwards.
    if let Some(since) = q.since {
        let ms = unix_ms(since);
        add("created_ms >=", Sql::Integer(ms), &mut sql);
        if let Some(first) = first_seq_from(conn, ms)? {
            add("seq >=", Sql::Integer(first), &mut sql);
        }
    }
    if let Some(until) = q.until {
        let ms = unix_ms(until);
        add("created_ms <", Sql::Integer(ms), &mut sql);
        if let Some(first) = first_seq_from(conn, ms)? {
            add("seq <", Sql::Integer(first), &mut sql);
        }
    }
    if let Some(tools) = &q.tools {
        // `+tool`: never pick the tool index for this list; the newest-first scan by
        // `seq` stops after `limit` rows, a scan by tool would sort them all.
        let marks = placeholders(&mut values, tools);
        sql.push_str(&format!(" AND +tool IN ({marks})"));
    }
    if !q.not_tools.is_empty() {
        let marks = placeholders(&mut values, &q.not_tools);
        sql.push_str(&format!(" AND +tool NOT IN ({marks})"));
    }
    values.push(Sql::Integer(q.limit as i64));
    sql.push_str(&format!(" ORDER BY seq DESC LIMIT ?{}", values.len()));
    Ok((sql, values))
}

/// `?N, ?M, ...` for `texts`, added to `values`.
fn placeholders(values: &mut Vec<Sql>, texts: &[String]) -> String {
    let marks: Vec<String> = texts
        .iter()
        .map(|t| {
            values.push(Sql::Text(t.clone()));
            format!("?{}", values.len())
        })
        .collect();
    marks.join(", ")
}

/// The first run made at or after `ms`.
fn first_seq_from(conn: &Connection, ms: i64) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT seq FROM runs WHERE created_ms >= ?1 ORDER BY created_ms LIMIT 1")?
        .query_row(params![ms], |r| r.get(0))
        .optional()
}

fn record(row: &Row) -> rusqlite::Result<RunRecord> {
    codec::run_record(row)
}

impl codec::RunRow for Row<'_> {
    type Error = rusqlite::Error;
    fn text(&self, i: usize) -> rusqlite::Result<String> {
        self.get(i)
    }
    fn maybe_text(&self, i: usize) -> rusqlite::Result<Option<String>> {
        self.get(i)
    }
    fn int(&self, i: usize) -> rusqlite::Result<i64> {
        self.get(i)
    }
    fn maybe_int(&self, i: usize) -> rusqlite::Result<Option<i64>> {
        self.get(i)
    }
    fn flag(&self, i: usize) -> rusqlite::Result<bool> {
        self.get(i)
    }
}
