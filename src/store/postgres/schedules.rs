//! Schedules' state in PostgreSQL: a tick is claimed by one conditional UPDATE (the row
//! lock makes replicas that claim the same tick take turns, and only the first finds
//! the condition true), the run a tick started, paused or not; and webhook deliveries
//! seen (the primary key lets one replica record a delivery).

use deadpool_postgres::GenericClient;

use crate::store::ScheduleState;

type Result<T> = std::result::Result<T, tokio_postgres::Error>;

pub async fn states(c: &impl GenericClient) -> Result<Vec<ScheduleState>> {
    let sql = "SELECT key, paused, paused_by, last_tick_ms, last_run FROM schedules";
    let rows = c.query(&c.prepare_cached(sql).await?, &[]).await?;
    rows.iter()
        .map(|row| {
            Ok(ScheduleState {
                key: row.try_get(0)?,
                paused: row.try_get::<_, i64>(1)? != 0,
                paused_by: row.try_get(2)?,
                last_tick_ms: row.try_get(3)?,
                last_run: row.try_get(4)?,
            })
        })
        .collect()
}

/// True if this call claimed the tick.
pub async fn claim(c: &impl GenericClient, key: &str, tick_ms: i64) -> Result<bool> {
    let make = "INSERT INTO schedules (key) VALUES ($1) ON CONFLICT (key) DO NOTHING";
    c.execute(&c.prepare_cached(make).await?, &[&key]).await?;
    let take = "UPDATE schedules SET last_tick_ms = $2 \
                WHERE key = $1 AND (last_tick_ms IS NULL OR last_tick_ms < $2)";
    let changed = c
        .execute(&c.prepare_cached(take).await?, &[&key, &tick_ms])
        .await?;
    Ok(changed == 1)
}

pub async fn ran(c: &impl GenericClient, key: &str, run: &str) -> Result<()> {
    let sql = "UPDATE schedules SET last_run = $2 WHERE key = $1";
    c.execute(&c.prepare_cached(sql).await?, &[&key, &run])
        .await
        .map(drop)
}

pub async fn pause(c: &impl GenericClient, key: &str, paused: bool, by: &str) -> Result<()> {
    let sql = "INSERT INTO schedules (key, paused, paused_by) VALUES ($1, $2, $3) \
               ON CONFLICT (key) DO UPDATE SET paused = excluded.paused, \
               paused_by = excluded.paused_by";
    let by = paused.then_some(by);
    c.execute(
        &c.prepare_cached(sql).await?,
        &[&key, &i64::from(paused), &by],
    )
    .await
    .map(drop)
}

/// True if `key` was not seen before (it is now).
pub async fn first_delivery(c: &impl GenericClient, key: &str, now_ms: i64) -> Result<bool> {
    let sql = "INSERT INTO deliveries (key, seen_ms) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING";
    let added = c
        .execute(&c.prepare_cached(sql).await?, &[&key, &now_ms])
        .await?;
    Ok(added == 1)
}

pub async fn forget_delivery(c: &impl GenericClient, key: &str) -> Result<()> {
    let sql = "DELETE FROM deliveries WHERE key = $1";
    c.execute(&c.prepare_cached(sql).await?, &[&key])
        .await
        .map(drop)
}
