//! The SQL of passkeys: a user's list, one by credential id, save (insert or update the
//! counter and last use), remove.

use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::store::records::PasskeyRecord;

const COLUMNS: &str = "id, user, name, passkey, created_ms, used_ms";

fn record(row: &Row) -> rusqlite::Result<PasskeyRecord> {
    Ok(PasskeyRecord {
        id: row.get(0)?,
        user: row.get(1)?,
        name: row.get(2)?,
        passkey: row.get(3)?,
        created_ms: row.get(4)?,
        used_ms: row.get(5)?,
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

pub fn save(conn: &Connection, r: &PasskeyRecord) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO passkeys (id, user, name, passkey, created_ms, used_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        r.id,
        r.user,
        r.name,
        r.passkey,
        r.created_ms,
        r.used_ms
    ])
    .map(drop)
}

pub fn remove(conn: &Connection, user: &str, id: &str) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM passkeys WHERE user = ?1 AND id = ?2")?
        .execute(params![user, id])
        .map(drop)
}
