//! The SQL of sessions, throttling, TOTP, passkeys, outside names and housekeeping on
//! PostgreSQL: the same rows as SQLite's (`store::sqlite::auth`, `passkeys`).

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use crate::store::records::{PasskeyRecord, Revocation, ThrottleRecord, ThrottleStep};

type Result<T> = std::result::Result<T, tokio_postgres::Error>;

pub async fn revoke(c: &impl GenericClient, r: &Revocation) -> Result<()> {
    let (issued, expires) = (r.issued as i64, r.expires as i64);
    match r.id {
        Some(id) => {
            let sql = "INSERT INTO revoked_sessions (id, \"user\", issued, expires) \
                       VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO UPDATE SET \
                       expires = greatest(revoked_sessions.expires, excluded.expires)";
            c.execute(
                &c.prepare_cached(sql).await?,
                &[&&id[..], &r.user, &issued, &expires],
            )
            .await?;
        }
        None => {
            let sql = "DELETE FROM revoked_sessions WHERE \"user\" = $1 AND issued <= $2";
            c.execute(&c.prepare_cached(sql).await?, &[&r.user, &issued])
                .await?;
            let sql = "INSERT INTO revoked_before (\"user\", issued, expires) VALUES ($1, $2, $3) \
                       ON CONFLICT (\"user\") DO UPDATE SET \
                       issued = greatest(revoked_before.issued, excluded.issued), \
                       expires = greatest(revoked_before.expires, excluded.expires)";
            c.execute(&c.prepare_cached(sql).await?, &[&r.user, &issued, &expires])
                .await?;
        }
    }
    Ok(())
}

pub async fn revocations(c: &impl GenericClient, now: u64) -> Result<Vec<Revocation>> {
    let now = now as i64;
    let sql = "SELECT id, \"user\", issued, expires FROM revoked_sessions WHERE expires > $1";
    let mut all = Vec::new();
    for row in c.query(&c.prepare_cached(sql).await?, &[&now]).await? {
        let id: Vec<u8> = row.try_get(0)?;
        if let Ok(id) = id.try_into() {
            all.push(Revocation {
                id: Some(id),
                user: row.try_get(1)?,
                issued: row.try_get::<_, i64>(2)? as u64,
                expires: row.try_get::<_, i64>(3)? as u64,
            });
        }
    }
    let sql = "SELECT \"user\", issued, expires FROM revoked_before WHERE expires > $1";
    for row in c.query(&c.prepare_cached(sql).await?, &[&now]).await? {
        all.push(Revocation {
            id: None,
            user: row.try_get(0)?,
            issued: row.try_get::<_, i64>(1)? as u64,
            expires: row.try_get::<_, i64>(2)? as u64,
        });
    }
    Ok(all)
}

pub async fn save_throttle(c: &impl GenericClient, r: &ThrottleRecord) -> Result<()> {
    let sql = "INSERT INTO throttle (tbl, key, failures, blocked_until_ms) VALUES ($1, $2, $3, $4) \
               ON CONFLICT (tbl, key) DO UPDATE SET failures = excluded.failures, \
               blocked_until_ms = excluded.blocked_until_ms";
    c.execute(
        &c.prepare_cached(sql).await?,
        &[&r.table, &r.key, &r.failures, &r.blocked_until],
    )
    .await
    .map(drop)
}

pub async fn forget_throttle(c: &impl GenericClient, table: &str, key: &str) -> Result<()> {
    let sql = "DELETE FROM throttle WHERE tbl = $1 AND key = $2";
    c.execute(&c.prepare_cached(sql).await?, &[&table, &key])
        .await
        .map(drop)
}

pub async fn throttle_records(
    c: &impl GenericClient,
    per_table: usize,
) -> Result<Vec<ThrottleRecord>> {
    let sql = "SELECT tbl, key, failures, blocked_until_ms FROM throttle WHERE tbl = $1 \
               ORDER BY coalesce(blocked_until_ms, 0) DESC, \
               coalesce((SELECT max(f) FROM unnest(failures) f), 0) DESC LIMIT $2";
    let statement = c.prepare_cached(sql).await?;
    let mut all = Vec::new();
    for table in ["users", "addresses"] {
        for row in c.query(&statement, &[&table, &(per_table as i64)]).await? {
            all.push(throttle_record(&row)?);
        }
    }
    Ok(all)
}

fn throttle_record(row: &Row) -> Result<ThrottleRecord> {
    let mut failures: Vec<i64> = row.try_get(2)?;
    // Negative stamps are attempts being checked (see `ThrottleStep`), not failures.
    failures.retain(|t| *t > 0);
    Ok(ThrottleRecord {
        table: row.try_get(0)?,
        key: row.try_get(1)?,
        failures,
        blocked_until: row.try_get(3)?,
    })
}

pub async fn totp_used(c: &impl GenericClient, user: &str, step: u64) -> Result<()> {
    let sql = "INSERT INTO totp_used (\"user\", step) VALUES ($1, $2) ON CONFLICT (\"user\") \
               DO UPDATE SET step = greatest(totp_used.step, excluded.step)";
    c.execute(&c.prepare_cached(sql).await?, &[&user, &(step as i64)])
        .await
        .map(drop)
}

pub async fn totp_steps(c: &impl GenericClient) -> Result<Vec<(String, u64)>> {
    let sql = "SELECT \"user\", step FROM totp_used";
    let rows = c.query(&c.prepare_cached(sql).await?, &[]).await?;
    rows.iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get::<_, i64>(1)? as u64)))
        .collect()
}

/// The database's clock in Unix milliseconds, in SQL: leases compare times of one
/// clock, whatever the replicas' clocks say.
pub const DB_NOW_MS: &str = "(extract(epoch FROM clock_timestamp()) * 1000)::BIGINT";

/// This replica is alive now, by the database's clock (it joins the table on its
/// first beat).
pub async fn heartbeat(c: &impl GenericClient, replica: &str) -> Result<()> {
    c.execute(&c.prepare_cached(&heartbeat_sql()).await?, &[&replica])
        .await
        .map(drop)
}

/// The heartbeat's statement (`$1`: the replica).
pub fn heartbeat_sql() -> String {
    format!(
        "INSERT INTO replicas (id, started_ms, seen_ms) VALUES ($1, {DB_NOW_MS}, {DB_NOW_MS}) \
         ON CONFLICT (id) DO UPDATE SET seen_ms = excluded.seen_ms"
    )
}

/// This replica stops: others need not wait for its lease to run out.
pub async fn leave(c: &impl GenericClient, replica: &str) -> Result<()> {
    let sql = "DELETE FROM replicas WHERE id = $1";
    c.execute(&c.prepare_cached(sql).await?, &[&replica])
        .await
        .map(drop)
}

pub async fn known_users(c: &impl GenericClient) -> Result<Option<Vec<String>>> {
    let sql = "SELECT value FROM meta WHERE key = 'users'";
    let row = c.query_opt(&c.prepare_cached(sql).await?, &[]).await?;
    Ok(match row {
        Some(row) => serde_json::from_str(&row.try_get::<_, String>(0)?).ok(),
        None => None,
    })
}

pub async fn set_known_users(c: &impl GenericClient, users: &[String]) -> Result<()> {
    let value = serde_json::to_string(users).unwrap_or_else(|_| "[]".into());
    let sql = "INSERT INTO meta (key, value) VALUES ('users', $1) \
               ON CONFLICT (key) DO UPDATE SET value = excluded.value";
    c.execute(&c.prepare_cached(sql).await?, &[&value])
        .await
        .map(drop)
}

/// Forgets expired revocations, stale throttle keys and replicas gone a day.
pub async fn tidy(c: &impl GenericClient, now: u64) -> Result<()> {
    let now = now as i64;
    let week_ago_ms = (now - 7 * 86_400) * 1000;
    let stale = "DELETE FROM deliveries WHERE seen_ms < $1 AND key LIKE '%/t:%'";
    c.execute(stale, &[&week_ago_ms]).await?;
    c.execute("DELETE FROM revoked_sessions WHERE expires <= $1", &[&now])
        .await?;
    c.execute("DELETE FROM revoked_before WHERE expires <= $1", &[&now])
        .await?;
    c.execute(
        "DELETE FROM throttle WHERE coalesce(blocked_until_ms, 0) < $1 \
         AND coalesce((SELECT max(f) FROM unnest(failures) f), 0) < $2",
        &[&(now * 1000), &((now - 86_400) * 1000)],
    )
    .await?;
    c.execute(
        "DELETE FROM replicas WHERE seen_ms < $1 AND id NOT IN \
         (SELECT owner FROM runs WHERE status IN ('queued', 'running') AND owner IS NOT NULL)",
        &[&((now - 86_400) * 1000)],
    )
    .await
    .map(drop)
}

const PASSKEY_COLUMNS: &str = "id, \"user\", name, passkey, fingerprint, created_ms, used_ms";

fn passkey(row: &Row) -> Result<PasskeyRecord> {
    Ok(PasskeyRecord {
        id: row.try_get(0)?,
        user: row.try_get(1)?,
        name: row.try_get(2)?,
        passkey: row.try_get(3)?,
        fingerprint: row.try_get(4)?,
        created_ms: row.try_get(5)?,
        used_ms: row.try_get(6)?,
    })
}

pub async fn passkeys(c: &impl GenericClient, user: &str) -> Result<Vec<PasskeyRecord>> {
    let sql =
        format!("SELECT {PASSKEY_COLUMNS} FROM passkeys WHERE \"user\" = $1 ORDER BY created_ms");
    let rows = c.query(&c.prepare_cached(&sql).await?, &[&user]).await?;
    rows.iter().map(passkey).collect()
}

pub async fn passkey_by_id(c: &impl GenericClient, id: &str) -> Result<Option<PasskeyRecord>> {
    let sql = format!("SELECT {PASSKEY_COLUMNS} FROM passkeys WHERE id = $1");
    let row = c.query_opt(&c.prepare_cached(&sql).await?, &[&id]).await?;
    row.as_ref().map(passkey).transpose()
}

pub async fn add_passkey(c: &impl GenericClient, r: &PasskeyRecord) -> Result<()> {
    let sql =
        format!("INSERT INTO passkeys ({PASSKEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)");
    c.execute(
        &c.prepare_cached(&sql).await?,
        &[
            &r.id,
            &r.user,
            &r.name,
            &r.passkey,
            &r.fingerprint,
            &r.created_ms,
            &r.used_ms,
        ],
    )
    .await
    .map(drop)
}

pub async fn passkey_used(c: &impl GenericClient, r: &PasskeyRecord) -> Result<()> {
    let sql = "UPDATE passkeys SET passkey = $3, used_ms = $4 WHERE id = $1 AND \"user\" = $2";
    c.execute(
        &c.prepare_cached(sql).await?,
        &[&r.id, &r.user, &r.passkey, &r.used_ms],
    )
    .await
    .map(drop)
}

pub async fn remove_passkey(c: &impl GenericClient, user: &str, id: &str) -> Result<()> {
    let sql = "DELETE FROM passkeys WHERE \"user\" = $1 AND id = $2";
    c.execute(&c.prepare_cached(sql).await?, &[&user, &id])
        .await
        .map(drop)
}

/// Binds `name` to (`source`, `subject`) unless it is bound already; answers the
/// binding in force, in one statement (two replicas binding at once agree).
pub async fn bind_name(
    c: &impl GenericClient,
    name: &str,
    source: &str,
    subject: &str,
    now_ms: i64,
) -> Result<(String, String)> {
    let sql = "WITH taken AS (INSERT INTO outside_names (name, source, subject, bound_ms) \
               VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING RETURNING source, subject) \
               SELECT source, subject FROM taken UNION ALL \
               SELECT source, subject FROM outside_names WHERE name = $1 LIMIT 1";
    let row = c
        .query_one(
            &c.prepare_cached(sql).await?,
            &[&name, &source, &subject, &now_ms],
        )
        .await?;
    Ok((row.try_get(0)?, row.try_get(1)?))
}

pub async fn hold_ceremony(
    c: &impl GenericClient,
    id: &str,
    nonce: Option<&str>,
    ceremony: &str,
    now_ms: i64,
) -> Result<()> {
    if let Some(nonce) = nonce {
        let sql = "DELETE FROM ceremonies WHERE nonce = $1";
        c.execute(&c.prepare_cached(sql).await?, &[&nonce]).await?;
    }
    // Abandoned ceremonies go with the next one made after their time.
    let sql = "DELETE FROM ceremonies WHERE created_ms < $1";
    c.execute(&c.prepare_cached(sql).await?, &[&(now_ms - 600_000)])
        .await?;
    // Bounded whatever is sent: the newest 10,000 wait, as in memory.
    let sql = "DELETE FROM ceremonies WHERE id IN \
               (SELECT id FROM ceremonies ORDER BY created_ms DESC OFFSET 9999)";
    c.execute(&c.prepare_cached(sql).await?, &[]).await?;
    let sql = "INSERT INTO ceremonies (id, nonce, ceremony, created_ms) VALUES ($1, $2, $3, $4)";
    c.execute(
        &c.prepare_cached(sql).await?,
        &[&id, &nonce, &ceremony, &now_ms],
    )
    .await
    .map(drop)
}

/// Takes a ceremony out, once: of two replicas asking, one gets it.
pub async fn take_ceremony(
    c: &impl GenericClient,
    id: &str,
    since_ms: i64,
) -> Result<Option<String>> {
    let sql = "DELETE FROM ceremonies WHERE id = $1 RETURNING ceremony, created_ms";
    let row = c.query_opt(&c.prepare_cached(sql).await?, &[&id]).await?;
    Ok(match row {
        Some(row) if row.try_get::<_, i64>(1)? > since_ms => Some(row.try_get(0)?),
        _ => None,
    })
}

/// Whether a session is revoked, by id or by its user's floor.
pub async fn session_revoked(
    c: &impl GenericClient,
    id: &[u8],
    user: &str,
    issued: u64,
) -> Result<bool> {
    let sql = "SELECT EXISTS (SELECT 1 FROM revoked_sessions WHERE id = $1) \
               OR EXISTS (SELECT 1 FROM revoked_before WHERE \"user\" = $2 AND issued >= $3)";
    let row = c
        .query_one(
            &c.prepare_cached(sql).await?,
            &[&id, &user, &(issued as i64)],
        )
        .await?;
    row.try_get(0)
}

/// Revokes a single-use session unless it is revoked already; true for the caller
/// that did (the primary key decides between racing replicas).
pub async fn revoke_once(c: &impl GenericClient, r: &Revocation) -> Result<bool> {
    let Some(id) = r.id else { return Ok(false) };
    let sql = "INSERT INTO revoked_sessions (id, \"user\", issued, expires) \
               SELECT $1::BYTEA, $2::TEXT, $3::BIGINT, $4::BIGINT WHERE NOT EXISTS \
               (SELECT 1 FROM revoked_before WHERE \"user\" = $2 AND issued >= $3) \
               ON CONFLICT (id) DO NOTHING";
    let added = c
        .execute(
            &c.prepare_cached(sql).await?,
            &[&&id[..], &r.user, &(r.issued as i64), &(r.expires as i64)],
        )
        .await?;
    Ok(added == 1)
}

/// Records a TOTP step unless it or a later one was used; true if this call did.
pub async fn totp_accept(c: &impl GenericClient, user: &str, step: u64) -> Result<bool> {
    let sql = "INSERT INTO totp_used (\"user\", step) VALUES ($1, $2) ON CONFLICT (\"user\") \
               DO UPDATE SET step = excluded.step WHERE totp_used.step < excluded.step";
    let changed = c
        .execute(&c.prepare_cached(sql).await?, &[&user, &(step as i64)])
        .await?;
    Ok(changed == 1)
}

/// Applies a throttle step to a key's row, locked for the rest of the transaction `c`
/// runs in, so replicas counting the same key take turns. The row is made and locked
/// in one statement, so a sign-in clearing it elsewhere cannot pull it away between
/// the two. `Blocked` only reads.
pub async fn throttle_step(
    c: &impl GenericClient,
    table: &str,
    key: &str,
    step: ThrottleStep,
) -> Result<Option<i64>> {
    if let ThrottleStep::Blocked { .. } = step {
        let read = "SELECT failures, blocked_until_ms FROM throttle WHERE tbl = $1 AND key = $2";
        let Some(row) = c
            .query_opt(&c.prepare_cached(read).await?, &[&table, &key])
            .await?
        else {
            return Ok(None);
        };
        let (mut stamps, mut blocked): (Vec<i64>, Option<i64>) = (row.try_get(0)?, row.try_get(1)?);
        return Ok(step.apply(&mut stamps, &mut blocked));
    }
    let take = "INSERT INTO throttle (tbl, key, failures, blocked_until_ms) \
                VALUES ($1, $2, '{}', NULL) \
                ON CONFLICT (tbl, key) DO UPDATE SET key = excluded.key \
                RETURNING failures, blocked_until_ms";
    let row = c
        .query_one(&c.prepare_cached(take).await?, &[&table, &key])
        .await?;
    let mut stamps: Vec<i64> = row.try_get(0)?;
    let mut blocked: Option<i64> = row.try_get(1)?;
    let before = (stamps.clone(), blocked);
    let wait = step.apply(&mut stamps, &mut blocked);
    if before == (stamps.clone(), blocked) {
        return Ok(wait);
    }
    let write = "UPDATE throttle SET failures = $3, blocked_until_ms = $4 \
                 WHERE tbl = $1 AND key = $2";
    c.execute(
        &c.prepare_cached(write).await?,
        &[&table, &key, &stamps, &blocked],
    )
    .await?;
    Ok(wait)
}
