//! What the store keeps, as plain values: the same shapes whichever database holds them.

use std::ops::Range;
use std::time::{Duration, SystemTime};

use crate::runs::{OutputFile, RunArg, Status};

/// One run as the history keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    /// The history's order (and paging cursor); 0 for a run not stored yet.
    pub seq: i64,
    pub id: String,
    pub tool: String,
    pub tool_title: String,
    pub user: String,
    /// How it was started: `session`, `forward-auth`, `token:NAME`.
    pub via: String,
    /// As shown: password values are `***` and are never stored.
    pub args: Vec<RunArg>,
    pub status: Status,
    pub created: SystemTime,
    pub started: Option<SystemTime>,
    pub ended: Option<SystemTime>,
    pub duration: Option<Duration>,
    /// Bytes of output a reader can read (kept output and any marker).
    pub output_len: u64,
    /// Bytes the tool printed that were not kept.
    pub dropped: u64,
    /// Why the output was cut, when it was.
    pub cut: Option<String>,
    /// The output is in the run's log file, not in stored chunks.
    pub in_file: bool,
    /// Where stderr's bytes are (once the run has ended).
    pub stderr: Vec<Range<u64>>,
    pub files: Vec<OutputFile>,
    /// Bytes the run's folders and log take on disk (retention's disk budget).
    pub disk_bytes: u64,
    pub process: Option<ProcessMark>,
}

impl RunRecord {
    /// A run just made: queued, nothing printed, no process yet.
    pub fn queued(
        id: String,
        tool: String,
        tool_title: String,
        user: String,
        via: String,
        args: Vec<RunArg>,
        created: SystemTime,
    ) -> RunRecord {
        RunRecord {
            seq: 0,
            id,
            tool,
            tool_title,
            user,
            via,
            args,
            status: Status::Queued,
            created,
            started: None,
            ended: None,
            duration: None,
            output_len: 0,
            dropped: 0,
            cut: None,
            in_file: false,
            stderr: Vec::new(),
            files: Vec::new(),
            disk_bytes: 0,
            process: None,
        }
    }
}

/// Which process group a run's program leads, and how to know it is still that one:
/// process ids are reused, so a start-up that finds an interrupted run only signals a
/// group whose leader (or members) started at this time since this boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessMark {
    pub pgid: i32,
    /// The leader's start time, in clock ticks after boot (`/proc/PID/stat`, field 22).
    pub start_ticks: u64,
    /// `/proc/sys/kernel/random/boot_id`: after a reboot no old process is left.
    pub boot_id: String,
}

/// How a run ended, written once.
#[derive(Debug, Clone, PartialEq)]
pub struct FinishedRun {
    pub id: String,
    pub status: Status,
    pub ended: SystemTime,
    pub duration: Option<Duration>,
    pub output_len: u64,
    pub dropped: u64,
    pub cut: Option<String>,
    pub in_file: bool,
    /// The whole output when it is not in a file: stored as one chunk in place of the
    /// pieces written while it ran (some of which a full disk may have refused).
    pub output: Option<Vec<u8>>,
    pub stderr: Vec<Range<u64>>,
    pub files: Vec<OutputFile>,
    pub disk_bytes: u64,
}

/// Output bytes as printed, at their offset in the run's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub offset: u64,
    pub stderr: bool,
    pub bytes: Vec<u8>,
}

/// One page of the history.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunQuery {
    /// Only this user's runs.
    pub user: Option<String>,
    /// Only runs of these tools (the ones the viewer may see); `None`: any tool.
    pub tools: Option<Vec<String>>,
    /// Never runs of these tools (ones that exist and the viewer may not run).
    pub not_tools: Vec<String>,
    pub tool: Option<String>,
    /// A status word (`succeeded`, `failed`, ...).
    pub status: Option<String>,
    /// Created at or after.
    pub since: Option<SystemTime>,
    /// Created before.
    pub until: Option<SystemTime>,
    /// Only runs older than this cursor (`seq`).
    pub before: Option<i64>,
    pub limit: usize,
}

/// The size of the history, for retention.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub finished: u64,
    pub disk_bytes: u64,
}

/// A session ended before its time (`id`), or every session of `user` issued at or
/// before `issued` (`id` is `None`: the bounded memory of revocations overflowed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    pub id: Option<[u8; 16]>,
    pub user: String,
    pub issued: u64,
    /// Unix seconds after which the cookie would be refused anyway.
    pub expires: u64,
}

/// A throttle key's recent failures and block (Unix milliseconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottleRecord {
    /// `users` or `addresses`.
    pub table: String,
    pub key: String,
    pub failures: Vec<i64>,
    pub blocked_until: Option<i64>,
}

/// A passkey as stored: its credential id (base64url), owner, the name the user gave it,
/// the credential itself (webauthn-rs's `Passkey` as JSON) and when it was made and used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyRecord {
    pub id: String,
    pub user: String,
    pub name: String,
    pub passkey: String,
    /// The owner's password fingerprint (hex) when the passkey was made: a new
    /// password retires it.
    pub fingerprint: String,
    pub created_ms: i64,
    pub used_ms: Option<i64>,
}

/// A run whose ftw is gone (it crashed, or another replica's heartbeat stopped), now
/// this ftw's to close, with the time its ftw was last seen alive.
#[derive(Debug, Clone, PartialEq)]
pub struct Orphan {
    pub record: RunRecord,
    pub last_seen: Option<SystemTime>,
}
