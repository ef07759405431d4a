//! The SQL of runs on PostgreSQL: the history's rows, their output chunks, paging,
//! retention, and closing the runs of a replica that died.

use std::time::SystemTime;

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::store::codec;
use crate::store::records::*;
use crate::store::{from_unix_ms, unix_ms};

type Sql = Box<dyn ToSql + Sync + Send>;
type Result<T> = std::result::Result<T, tokio_postgres::Error>;

const COLUMNS: &str = "seq, id, tool, tool_title, \"user\", via, args, status, exit_code, \
     signal, detail, created_ms, started_ms, ended_ms, duration_ms, output_len, dropped, cut, \
     in_file, stderr, files, disk_bytes, pgid, start_ticks, boot_id";

/// Statuses of a run that has not ended.
const UNFINISHED: &str = "status IN ('queued', 'running')";

pub async fn insert(c: &impl GenericClient, run: &RunRecord, owner: &str) -> Result<()> {
    let (word, code, signal, detail) = run.status.parts();
    let sql = "INSERT INTO runs (id, tool, tool_title, \"user\", via, args, status, exit_code, \
               signal, detail, created_ms, owner) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";
    c.execute(
        &c.prepare_cached(sql).await?,
        &[
            &run.id,
            &run.tool,
            &run.tool_title,
            &run.user,
            &run.via,
            &codec::args_json(&run.args),
            &word,
            &code,
            &signal,
            &detail,
            &unix_ms(run.created),
            &owner,
        ],
    )
    .await
    .map(drop)
}

/// `insert`, unless the user has `per_user` unfinished runs already; in the caller's
/// transaction, after taking the user's advisory lock (so the count sees every run
/// committed before it).
pub async fn insert_capped(
    c: &impl GenericClient,
    run: &RunRecord,
    owner: &str,
    per_user: usize,
) -> Result<bool> {
    let lock = "SELECT pg_advisory_xact_lock(hashtext('ftw runs of ' || $1))";
    c.execute(&c.prepare_cached(lock).await?, &[&run.user])
        .await?;
    let count = format!("SELECT count(*) FROM runs WHERE \"user\" = $1 AND {UNFINISHED}");
    let row = c
        .query_one(&c.prepare_cached(&count).await?, &[&run.user])
        .await?;
    if row.try_get::<_, i64>(0)? >= per_user as i64 {
        return Ok(false);
    }
    insert(c, run, owner).await?;
    Ok(true)
}

pub async fn started(
    c: &impl GenericClient,
    id: &str,
    at: SystemTime,
    process: &Option<ProcessMark>,
) -> Result<()> {
    let (pgid, ticks, boot) = match process {
        Some(p) => (
            Some(p.pgid),
            Some(p.start_ticks as i64),
            Some(p.boot_id.as_str()),
        ),
        None => (None, None, None),
    };
    let sql = "UPDATE runs SET status = 'running', started_ms = $2, pgid = $3, \
               start_ticks = $4, boot_id = $5 WHERE id = $1 AND status = 'queued'";
    c.execute(
        &c.prepare_cached(sql).await?,
        &[&id, &unix_ms(at), &pgid, &ticks, &boot],
    )
    .await
    .map(drop)
}

pub async fn append_output(c: &impl GenericClient, id: &str, chunk: &Chunk) -> Result<()> {
    let sql = "INSERT INTO output_chunks (run, \"offset\", stderr, bytes) VALUES ($1, $2, $3, $4) \
               ON CONFLICT (run, \"offset\") DO UPDATE SET stderr = excluded.stderr, \
               bytes = excluded.bytes";
    c.execute(
        &c.prepare_cached(sql).await?,
        &[&id, &(chunk.offset as i64), &chunk.stderr, &chunk.bytes],
    )
    .await
    .map(drop)
}

pub async fn finish(c: &impl GenericClient, end: &FinishedRun) -> Result<()> {
    let (word, code, signal, detail) = end.status.parts();
    let sql = "UPDATE runs SET status = $2, exit_code = $3, signal = $4, detail = $5, \
               ended_ms = $6, duration_ms = $7, output_len = $8, dropped = $9, cut = $10, \
               in_file = $11, stderr = $12, files = $13, disk_bytes = $14 WHERE id = $1";
    c.execute(
        &c.prepare_cached(sql).await?,
        &[
            &end.id,
            &word,
            &code,
            &signal,
            &detail,
            &unix_ms(end.ended),
            &end.duration.map(|d| d.as_millis() as i64),
            &(end.output_len as i64),
            &(end.dropped as i64),
            &end.cut,
            &end.in_file,
            &codec::ranges_json(&end.stderr),
            &codec::files_json(&end.files),
            &(end.disk_bytes as i64),
        ],
    )
    .await?;
    if end.in_file || end.output.is_some() {
        let sql = "DELETE FROM output_chunks WHERE run = $1";
        c.execute(&c.prepare_cached(sql).await?, &[&end.id]).await?;
    }
    if let Some(bytes) = end.output.as_ref().filter(|b| !b.is_empty()) {
        let whole = Chunk {
            offset: 0,
            stderr: false,
            bytes: bytes.clone(),
        };
        append_output(c, &end.id, &whole).await?;
    }
    Ok(())
}

pub async fn get(c: &impl GenericClient, id: &str) -> Result<Option<RunRecord>> {
    let sql = format!("SELECT {COLUMNS} FROM runs WHERE id = $1");
    let row = c.query_opt(&c.prepare_cached(&sql).await?, &[&id]).await?;
    row.map(|r| record(&r)).transpose()
}

pub async fn chunks(c: &impl GenericClient, id: &str) -> Result<Vec<Chunk>> {
    let sql = "SELECT \"offset\", stderr, bytes FROM output_chunks WHERE run = $1 \
               ORDER BY \"offset\"";
    let rows = c.query(&c.prepare_cached(sql).await?, &[&id]).await?;
    rows.iter()
        .map(|row| {
            Ok(Chunk {
                offset: row.try_get::<_, i64>(0)? as u64,
                stderr: row.try_get(1)?,
                bytes: row.try_get(2)?,
            })
        })
        .collect()
}

pub async fn chunks_since(c: &impl GenericClient, id: &str, from: u64) -> Result<Vec<Chunk>> {
    let sql = "SELECT \"offset\", stderr, bytes FROM output_chunks WHERE run = $1 \
               AND \"offset\" >= $2 ORDER BY \"offset\"";
    let rows = c
        .query(&c.prepare_cached(sql).await?, &[&id, &(from as i64)])
        .await?;
    rows.iter()
        .map(|row| {
            Ok(Chunk {
                offset: row.try_get::<_, i64>(0)? as u64,
                stderr: row.try_get(1)?,
                bytes: row.try_get(2)?,
            })
        })
        .collect()
}

pub async fn add_file(c: &impl GenericClient, id: &str, name: &str, bytes: &[u8]) -> Result<()> {
    let sql = "INSERT INTO run_files (run, name, bytes) VALUES ($1, $2, $3) \
               ON CONFLICT (run, name) DO UPDATE SET bytes = excluded.bytes";
    c.execute(&c.prepare_cached(sql).await?, &[&id, &name, &bytes])
        .await
        .map(drop)
}

pub async fn file(c: &impl GenericClient, id: &str, name: &str) -> Result<Option<Vec<u8>>> {
    let sql = "SELECT bytes FROM run_files WHERE run = $1 AND name = $2";
    let row = c
        .query_opt(&c.prepare_cached(sql).await?, &[&id, &name])
        .await?;
    row.map(|r| r.try_get(0)).transpose()
}

/// Asks for a run to be cancelled by the replica that runs it.
pub async fn request_cancel(c: &impl GenericClient, id: &str, now_ms: i64) -> Result<()> {
    let sql = format!(
        "UPDATE runs SET cancel_ms = coalesce(cancel_ms, $2) WHERE id = $1 AND {UNFINISHED}"
    );
    c.execute(&c.prepare_cached(&sql).await?, &[&id, &now_ms])
        .await
        .map(drop)
}

/// The unfinished runs of `owner` that someone asked to cancel.
pub async fn cancel_requests(c: &impl GenericClient, owner: &str) -> Result<Vec<String>> {
    let sql =
        format!("SELECT id FROM runs WHERE owner = $1 AND {UNFINISHED} AND cancel_ms IS NOT NULL");
    let rows = c.query(&c.prepare_cached(&sql).await?, &[&owner]).await?;
    rows.iter().map(|row| row.try_get(0)).collect()
}

pub async fn list(c: &impl GenericClient, q: &RunQuery) -> Result<Vec<RunRecord>> {
    if q.tools.as_ref().is_some_and(Vec::is_empty) {
        return Ok(Vec::new());
    }
    let mut sql = format!("SELECT {COLUMNS} FROM runs WHERE TRUE");
    let mut values: Vec<Sql> = Vec::new();
    let mut add = |clause: &str, value: Sql, sql: &mut String| {
        values.push(value);
        sql.push_str(&format!(" AND {clause} ${}", values.len()));
    };
    if let Some(user) = &q.user {
        add("\"user\" =", Box::new(user.clone()), &mut sql);
    }
    if let Some(tool) = &q.tool {
        add("tool =", Box::new(tool.clone()), &mut sql);
    }
    if let Some(status) = &q.status {
        add("status =", Box::new(status.clone()), &mut sql);
    }
    if let Some(before) = q.before {
        add("seq <", Box::new(before), &mut sql);
    }
    if let Some(since) = q.since {
        add("created_ms >=", Box::new(unix_ms(since)), &mut sql);
    }
    if let Some(until) = q.until {
        add("created_ms <", Box::new(unix_ms(until)), &mut sql);
    }
    if let Some(tools) = &q.tools {
        values.push(Box::new(tools.clone()));
        sql.push_str(&format!(" AND tool = ANY(${})", values.len()));
    }
    if !q.not_tools.is_empty() {
        values.push(Box::new(q.not_tools.clone()));
        sql.push_str(&format!(" AND NOT (tool = ANY(${}))", values.len()));
    }
    values.push(Box::new(q.limit as i64));
    sql.push_str(&format!(" ORDER BY seq DESC LIMIT ${}", values.len()));
    let params: Vec<&(dyn ToSql + Sync)> = values
        .iter()
        .map(|v| v.as_ref() as &(dyn ToSql + Sync))
        .collect();
    let rows = c.query(&c.prepare_cached(&sql).await?, &params).await?;
    rows.iter().map(record).collect()
}

/// Takes the unfinished runs of replicas not seen for `lease_ms` by the database's
/// clock (or of none) for `me`, and answers them with the time their replica was last
/// seen. Two survivors never take the same run: rows another one is taking are
/// skipped, and once taken they belong to a live replica.
pub async fn claim_orphans(c: &impl GenericClient, me: &str, lease_ms: i64) -> Result<Vec<Orphan>> {
    let now = super::auth::DB_NOW_MS;
    let sql = format!(
        "WITH dead AS (SELECT r.id AS run, rep.seen_ms AS seen FROM runs r \
         LEFT JOIN replicas rep ON rep.id = r.owner \
         WHERE r.{UNFINISHED} AND r.owner IS DISTINCT FROM $1 \
         AND (rep.seen_ms IS NULL OR rep.seen_ms < {now} - $2) FOR UPDATE OF r SKIP LOCKED) \
         UPDATE runs SET owner = $1 FROM dead WHERE runs.id = dead.run \
         RETURNING {COLUMNS}, dead.seen"
    );
    let rows = c
        .query(&c.prepare_cached(&sql).await?, &[&me, &lease_ms])
        .await?;
    let mut orphans = rows
        .iter()
        .map(|row| {
            Ok(Orphan {
                record: record(row)?,
                last_seen: row.try_get::<_, Option<i64>>(25)?.map(from_unix_ms),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    orphans.sort_by_key(|o| o.record.seq);
    Ok(orphans)
}

pub async fn counts(c: &impl GenericClient) -> Result<Counts> {
    let sql = format!(
        "SELECT count(*), coalesce(sum(disk_bytes), 0)::BIGINT FROM runs WHERE NOT {UNFINISHED}"
    );
    let row = c.query_one(&c.prepare_cached(&sql).await?, &[]).await?;
    Ok(Counts {
        finished: row.try_get::<_, i64>(0)? as u64,
        disk_bytes: row.try_get::<_, i64>(1)? as u64,
    })
}

pub async fn oldest(
    c: &impl GenericClient,
    limit: usize,
    ended_before: Option<SystemTime>,
) -> Result<Vec<(String, u64)>> {
    let before = ended_before.map_or(i64::MAX, unix_ms);
    let sql = format!(
        "SELECT id, disk_bytes FROM runs WHERE NOT {UNFINISHED} AND ended_ms < $1 \
         ORDER BY seq LIMIT $2"
    );
    let rows = c
        .query(&c.prepare_cached(&sql).await?, &[&before, &(limit as i64)])
        .await?;
    rows.iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get::<_, i64>(1)? as u64)))
        .collect()
}

pub async fn kept(c: &impl GenericClient, ids: &[String]) -> Result<Vec<String>> {
    let sql = "SELECT id FROM runs WHERE id = ANY($1)";
    let rows = c.query(&c.prepare_cached(sql).await?, &[&ids]).await?;
    rows.iter().map(|row| row.try_get(0)).collect()
}

pub async fn delete(c: &impl GenericClient, ids: &[String]) -> Result<()> {
    let chunks = "DELETE FROM output_chunks WHERE run = ANY($1)";
    c.execute(&c.prepare_cached(chunks).await?, &[&ids]).await?;
    let files = "DELETE FROM run_files WHERE run = ANY($1)";
    c.execute(&c.prepare_cached(files).await?, &[&ids]).await?;
    let runs = "DELETE FROM runs WHERE id = ANY($1)";
    c.execute(&c.prepare_cached(runs).await?, &[&ids]).await?;
    Ok(())
}

fn record(row: &Row) -> Result<RunRecord> {
    codec::run_record(row)
}

impl codec::RunRow for Row {
    type Error = tokio_postgres::Error;
    fn text(&self, i: usize) -> Result<String> {
        self.try_get(i)
    }
    fn maybe_text(&self, i: usize) -> Result<Option<String>> {
        self.try_get(i)
    }
    fn int(&self, i: usize) -> Result<i64> {
        self.try_get(i)
    }
    fn maybe_int(&self, i: usize) -> Result<Option<i64>> {
        // INTEGER columns (exit code, signal, process group) are i32 here.
        self.try_get::<_, Option<i64>>(i)
            .or_else(|_| Ok(self.try_get::<_, Option<i32>>(i)?.map(i64::from)))
    }
    fn flag(&self, i: usize) -> Result<bool> {
        self.try_get(i)
    }
}
