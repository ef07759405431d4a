//! Schedules' state in SQLite: claims of ticks (one writer thread, so a claim and its
//! check are one step), the run a tick started, paused or not; and webhook deliveries
//! seen, claimed the same way.

use rusqlite::{Connection, params};

use crate::store::ScheduleState;

pub fn states(c: &Connection) -> rusqlite::Result<Vec<ScheduleState>> {
    let mut statement =
        c.prepare("SELECT key, paused, paused_by, last_tick_ms, last_run FROM schedules")?;
    let rows = statement.query_map([], |row| {
        Ok(ScheduleState {
            key: row.get(0)?,
            paused: row.get::<_, i64>(1)? != 0,
            paused_by: row.get(2)?,
            last_tick_ms: row.get(3)?,
            last_run: row.get(4)?,
        })
    })?;
    rows.collect()
}

/// True if this call claimed the tick.
pub fn claim(c: &Connection, key: &str, tick_ms: i64) -> rusqlite::Result<bool> {
    c.execute(
        "INSERT OR IGNORE INTO schedules (key) VALUES (?1)",
        params![key],
    )?;
    let changed = c.execute(
        "UPDATE schedules SET last_tick_ms = ?2 \
         WHERE key = ?1 AND (last_tick_ms IS NULL OR last_tick_ms < ?2)",
        params![key, tick_ms],
    )?;
    Ok(changed == 1)
}

pub fn ran(c: &Connection, key: &str, run: &str) -> rusqlite::Result<()> {
    c.execute(
        "UPDATE schedules SET last_run = ?2 WHERE key = ?1",
        params![key, run],
    )
    .map(drop)
}

pub fn pause(c: &Connection, key: &str, paused: bool, by: &str) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO schedules (key, paused, paused_by) VALUES (?1, ?2, ?3) \
         ON CONFLICT (key) DO UPDATE SET paused = excluded.paused, paused_by = excluded.paused_by",
        params![key, i64::from(paused), paused.then_some(by)],
    )
    .map(drop)
}

/// True if `key` was not seen before (it is now).
pub fn first_delivery(c: &Connection, key: &str, now_ms: i64) -> rusqlite::Result<bool> {
    let added = c.execute(
        "INSERT OR IGNORE INTO deliveries (key, seen_ms) VALUES (?1, ?2)",
        params![key, now_ms],
    )?;
    Ok(added == 1)
}

pub fn forget_delivery(c: &Connection, key: &str) -> rusqlite::Result<()> {
    c.execute("DELETE FROM deliveries WHERE key = ?1", params![key])
        .map(drop)
}
