//! The database's tables, as numbered migrations applied in order at start-up. The
//! number reached is SQLite's `user_version`; a database whose number is higher than
//! this ftw knows was written by a newer ftw, and is refused rather than guessed at.
//! A migration is never edited once released: a change is a new entry at the end.

/// Migration N (1-based) is `MIGRATIONS[N - 1]`.
pub const MIGRATIONS: &[&str] = &[
    // 1: runs and their output, sessions, throttling, TOTP, housekeeping.
    r#"
    CREATE TABLE runs (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        tool TEXT NOT NULL,
        tool_title TEXT NOT NULL,
        user TEXT NOT NULL,
        via TEXT NOT NULL,
        args TEXT NOT NULL,
        status TEXT NOT NULL,
        exit_code INTEGER,
        signal INTEGER,
        detail TEXT,
        created_ms INTEGER NOT NULL,
        started_ms INTEGER,
        ended_ms INTEGER,
        duration_ms INTEGER,
        output_len INTEGER NOT NULL DEFAULT 0,
        dropped INTEGER NOT NULL DEFAULT 0,
        cut TEXT,
        in_file INTEGER NOT NULL DEFAULT 0,
        stderr TEXT NOT NULL DEFAULT '[]',
        files TEXT NOT NULL DEFAULT '[]',
        disk_bytes INTEGER NOT NULL DEFAULT 0,
        pgid INTEGER,
        start_ticks INTEGER,
        boot_id TEXT
    );
    CREATE INDEX runs_by_user ON runs (user, seq);
    CREATE INDEX runs_by_tool ON runs (tool, seq);
    CREATE INDEX runs_by_status ON runs (status, seq);
    CREATE INDEX runs_by_created ON runs (created_ms);
    CREATE TABLE output_chunks (
        run TEXT NOT NULL,
        offset INTEGER NOT NULL,
        stderr INTEGER NOT NULL,
        bytes BLOB NOT NULL,
        PRIMARY KEY (run, offset)
    ) WITHOUT ROWID;
    CREATE TABLE revoked_sessions (
        id BLOB PRIMARY KEY,
        user TEXT NOT NULL,
        issued INTEGER NOT NULL,
        expires INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE revoked_before (
        user TEXT PRIMARY KEY,
        issued INTEGER NOT NULL,
        expires INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE throttle (
        tbl TEXT NOT NULL,
        key TEXT NOT NULL,
        failures TEXT NOT NULL,
        blocked_until_ms INTEGER,
        PRIMARY KEY (tbl, key)
    ) WITHOUT ROWID;
    CREATE TABLE totp_used (
        user TEXT PRIMARY KEY,
        step INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    ) WITHOUT ROWID;
    "#,
    // 2: passkeys (WebAuthn credentials), each with its owner, the owner's password
    // fingerprint when it was made, and the time it was used; and which outside account
    // (provider and subject) each outside user name belongs to.
    r#"
    CREATE TABLE passkeys (
        id TEXT PRIMARY KEY,
        user TEXT NOT NULL,
        name TEXT NOT NULL,
        passkey TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        used_ms INTEGER
    ) WITHOUT ROWID;
    CREATE INDEX passkeys_by_user ON passkeys (user);
    CREATE TABLE outside_names (
        name TEXT PRIMARY KEY,
        source TEXT NOT NULL,
        subject TEXT NOT NULL,
        bound_ms INTEGER NOT NULL
    ) WITHOUT ROWID;
    "#,
    // 3: replicas (PostgreSQL's migration 3; one ftw owns a SQLite database, so here
    // the table stays empty and every run is this ftw's).
    r#"
    CREATE TABLE replicas (
        id TEXT PRIMARY KEY,
        started_ms INTEGER NOT NULL,
        seen_ms INTEGER NOT NULL
    ) WITHOUT ROWID;
    ALTER TABLE runs ADD COLUMN owner TEXT;
    ALTER TABLE runs ADD COLUMN cancel_ms INTEGER;
    "#,
    // 4: run files in the database (PostgreSQL's migration 4; one ftw serves them from
    // its state folder, so here the table stays empty).
    r#"
    CREATE TABLE run_files (
        run TEXT NOT NULL,
        name TEXT NOT NULL,
        bytes BLOB NOT NULL,
        PRIMARY KEY (run, name)
    ) WITHOUT ROWID;
    "#,
    // 5: passkey ceremonies (PostgreSQL's migration 5; one ftw keeps them in memory).
    r#"
    CREATE TABLE ceremonies (
        id TEXT PRIMARY KEY,
        nonce TEXT,
        ceremony TEXT NOT NULL,
        created_ms INTEGER NOT NULL
    ) WITHOUT ROWID;
    "#,
    // 6: schedules: the last tick each one claimed (a tick runs once, across restarts
    // and replicas), the run it started, and whether an admin paused it.
    r#"
    CREATE TABLE schedules (
        key TEXT PRIMARY KEY,
        paused INTEGER NOT NULL DEFAULT 0,
        paused_by TEXT,
        last_tick_ms INTEGER,
        last_run TEXT
    ) WITHOUT ROWID;
    "#,
    // 7: webhook deliveries seen (by delivery id, or signature), so a replay is refused.
    r#"
    CREATE TABLE deliveries (
        key TEXT PRIMARY KEY,
        seen_ms INTEGER NOT NULL
    ) WITHOUT ROWID;
    "#,
];

/// The schema version this ftw writes.
pub fn current() -> i64 {
    MIGRATIONS.len() as i64
}

/// Brings the database to `current()`, each step in its own transaction.
pub fn migrate(conn: &mut rusqlite::Connection, path: &std::path::Path) -> Result<(), String> {
    let found: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if found > current() {
        return Err(format!(
            "{} was written by a newer ftw (schema {found}; this ftw knows up to {}). \
             Run the newer ftw, or start this one with another --state-dir",
            path.display(),
            current()
        ));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let version = index as i64 + 1;
        let tx = conn
            .transaction()
            .map_err(|e| format!("cannot update {}: {e}", path.display()))?;
        tx.execute_batch(sql)
            .and_then(|()| tx.pragma_update(None, "user_version", version))
            .and_then(|()| tx.commit())
            .map_err(|e| format!("cannot bring {} to schema {version}: {e}", path.display()))?;
    }
    Ok(())
}
