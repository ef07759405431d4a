//! The SQL of sign-in state and housekeeping: revoked sessions, throttle counts and
//! blocks, TOTP steps already used, the heartbeat, and tidying what has expired.

use std::time::SystemTime;

use rusqlite::{Connection, OptionalExtension, params};

use crate::store::records::{Revocation, ThrottleRecord};
use crate::store::{from_unix_ms, unix_ms};

pub fn revoke(conn: &Connection, r: &Revocation) -> rusqlite::Result<()> {
    match r.id {
        Some(id) => conn
            .prepare_cached(
                "INSERT OR REPLACE INTO revoked_sessions (id, user, issued, expires) \
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![&id[..], r.user, r.issued as i64, r.expires as i64]),
        None => {
            // The floor covers these sessions now: their own rows can go, so the table
            // stays as bounded as the revocations in memory.
            conn.prepare_cached("DELETE FROM revoked_sessions WHERE user = ?1 AND issued <= ?2")?
                .execute(params![r.user, r.issued as i64])?;
            conn.prepare_cached(
                "INSERT INTO revoked_before (user, issued, expires) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (user) DO UPDATE SET issued = max(issued, excluded.issued), \
                 expires = max(expires, excluded.expires)",
            )?
            .execute(params![r.user, r.issued as i64, r.expires as i64])
        }
    }
    .map(drop)
}

pub fn revocations(conn: &Connection, now: u64) -> rusqlite::Result<Vec<Revocation>> {
    let mut all: Vec<Revocation> = conn
        .prepare_cached(
            "SELECT id, user, issued, expires FROM revoked_sessions WHERE expires > ?1",
        )?
        .query_map(params![now as i64], |row| {
            let id: Vec<u8> = row.get(0)?;
            Ok(Revocation {
                id: id.try_into().ok(),
                user: row.get(1)?,
                issued: row.get::<_, i64>(2)? as u64,
                expires: row.get::<_, i64>(3)? as u64,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    all.retain(|r| r.id.is_some());
    let floors = conn
        .prepare_cached("SELECT user, issued, expires FROM revoked_before WHERE expires > ?1")?
        .query_map(params![now as i64], |row| {
            Ok(Revocation {
                id: None,
                user: row.get(0)?,
                issued: row.get::<_, i64>(1)? as u64,
                expires: row.get::<_, i64>(2)? as u64,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    all.extend(floors);
    Ok(all)
}

pub fn save_throttle(conn: &Connection, r: &ThrottleRecord) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO throttle (tbl, key, failures, blocked_until_ms) \
         VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        r.table,
        r.key,
        serde_json::json!(r.failures).to_string(),
        r.blocked_until
    ])
    .map(drop)
}

pub fn forget_throttle(conn: &Connection, table: &str, key: &str) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM throttle WHERE tbl = ?1 AND key = ?2")?
        .execute(params![table, key])
        .map(drop)
}

pub fn throttle_records(
    conn: &Connection,
    per_table: usize,
) -> rusqlite::Result<Vec<ThrottleRecord>> {
    let mut all = Vec::new();
    for table in ["users", "addresses"] {
        let rows = conn
            .prepare_cached(
                "SELECT tbl, key, failures, blocked_until_ms FROM throttle WHERE tbl = ?1 \
                 ORDER BY coalesce(blocked_until_ms, 0) DESC, \
                 coalesce((SELECT max(value) FROM json_each(failures)), 0) DESC LIMIT ?2",
            )?
            .query_map(params![table, per_table as i64], |row| {
                let failures: String = row.get(2)?;
                Ok(ThrottleRecord {
                    table: row.get(0)?,
                    key: row.get(1)?,
                    failures: serde_json::from_str(&failures).unwrap_or_default(),
                    blocked_until: row.get(3)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        all.extend(rows);
    }
    Ok(all)
}

pub fn totp_used(conn: &Connection, user: &str, step: u64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO totp_used (user, step) VALUES (?1, ?2) \
         ON CONFLICT (user) DO UPDATE SET step = max(step, excluded.step)",
    )?
    .execute(params![user, step as i64])
    .map(drop)
}

pub fn totp_steps(conn: &Connection) -> rusqlite::Result<Vec<(String, u64)>> {
    conn.prepare_cached("SELECT user, step FROM totp_used")?
        .query_map([], |row| Ok((row.get(0)?, row.get::<_, i64>(1)? as u64)))?
        .collect()
}

pub fn heartbeat(conn: &Connection, at: SystemTime) -> rusqlite::Result<()> {
    conn.prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES ('heartbeat', ?1)")?
        .execute(params![unix_ms(at).to_string()])
        .map(drop)
}

pub fn last_heartbeat(conn: &Connection) -> rusqlite::Result<Option<SystemTime>> {
    let value: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = 'heartbeat'", [], |r| {
            r.get(0)
        })
        .optional()?;
    Ok(value.and_then(|v| v.parse().ok()).map(from_unix_ms))
}

pub fn known_users(conn: &Connection) -> rusqlite::Result<Option<Vec<String>>> {
    let value: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = 'users'", [], |r| {
            r.get(0)
        })
        .optional()?;
    Ok(value.and_then(|v| serde_json::from_str(&v).ok()))
}

pub fn set_known_users(conn: &Connection, users: &[String]) -> rusqlite::Result<()> {
    let value = serde_json::to_string(users).unwrap_or_else(|_| "[]".into());
    conn.prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES ('users', ?1)")?
        .execute(params![value])
        .map(drop)
}

/// Forgets revocations that have expired and throttle keys with no block and no
/// failure in the last day (stale under any sensible window), then gives freed pages
/// back to the file system.
pub fn tidy(conn: &Connection, now: u64) -> rusqlite::Result<()> {
    let now = now as i64;
    conn.execute(
        "DELETE FROM deliveries WHERE seen_ms < ?1 AND key LIKE '%/t:%'",
        params![(now - 7 * 86_400) * 1000],
    )?;
    conn.execute(
        "DELETE FROM revoked_sessions WHERE expires <= ?1",
        params![now],
    )?;
    conn.execute(
        "DELETE FROM revoked_before WHERE expires <= ?1",
        params![now],
    )?;
    conn.execute(
        "DELETE FROM throttle WHERE coalesce(blocked_until_ms, 0) < ?1 \
         AND coalesce((SELECT max(value) FROM json_each(failures)), 0) < ?2",
        params![now * 1000, (now - 86_400) * 1000],
    )?;
    conn.execute_batch("PRAGMA incremental_vacuum")
}
