//! The SQL of passkeys: a user's list, one by credential id, save (insert or update the
//! counter and last use), remove.

use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::store::records::PasskeyRecord;

const COLUMNS: &str = "id, user, name, passkey, fingerprint, created_ms, used_ms";

fn record(row: &Row) -> rusqlite::Result<PasskeyRecord> {
    Ok(PasskeyRecord {
        id: row.get(0)?,
        user: row.get(1)?,
        name: row.get(2)?,
        passkey: row.get(3)?,
        fingerprint: row.get(4)?,
        created_ms: row.get(5)?,
        used_ms: row.get(6)?,
    })
}

pub fn of_user(conn: &Connection, user: &str) -> rusqlite::Result<Vec<PasskeyRecord>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM passkeys WHERE user = ?1 ORDER BY created_ms"
    ))?
    .query_map(params![user], record)?
    .collect()
}

pub fn by_id(conn: &Connection, id: &str) -> rusqlite::Result<Option<PasskeyRecord>> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM passkeys WHERE id = ?1"))?
        .query_row(params![id], record)
        .optional()
}

/// A new passkey; a credential id that exists already is refused (WebAuthn says so),
/// not taken over.
pub fn add(conn: &Connection, r: &PasskeyRecord) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO passkeys (id, user, name, passkey, fingerprint, created_ms, used_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        r.id,
        r.user,
        r.name,
        r.passkey,
        r.fingerprint,
        r.created_ms,
        r.used_ms
    ])
    .map(drop)
}

/// A passkey was used: its new counter and the time. A passkey removed meanwhile stays
/// removed.
pub fn used(conn: &Connection, r: &PasskeyRecord) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE passkeys SET passkey = ?3, used_ms = ?4 WHERE id = ?1 AND user = ?2",
    )?
    .execute(params![r.id, r.user, r.passkey, r.used_ms])
    .map(drop)
}

/// Binds outside user `name` to `source`/`subject`, unless it is bound already.
pub fn bind_name(
    conn: &Connection,
    name: &str,
    source: &str,
    subject: &str,
    now_ms: i64,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT OR IGNORE INTO outside_names (name, source, subject, bound_ms) \
         VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![name, source, subject, now_ms])
    .map(drop)
}

/// The account an outside user name is bound to.
pub fn name_binding(conn: &Connection, name: &str) -> rusqlite::Result<Option<(String, String)>> {
    conn.prepare_cached("SELECT source, subject FROM outside_names WHERE name = ?1")?
        .query_row(params![name], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()
}

pub fn remove(conn: &Connection, user: &str, id: &str) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM passkeys WHERE user = ?1 AND id = ?2")?
        .execute(params![user, id])
        .map(drop)
}
