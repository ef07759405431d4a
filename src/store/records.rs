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

/// One step of a sign-in attempt against a throttle key shared by replicas, applied
/// What the database keeps of a schedule (`tool/name`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScheduleState {
    pub key: String,
    pub paused: bool,
    /// The admin who paused it.
    pub paused_by: Option<String>,
    /// The last tick claimed (Unix milliseconds): it ran, or was tried, once.
    pub last_tick_ms: Option<i64>,
    /// The run the last claimed tick started.
    pub last_run: Option<String>,
}

/// atomically in the database (`ThrottleStep::apply` on the key's row, locked).
/// Times are Unix milliseconds. The row's list holds failures (positive) and attempts
/// being checked (negative: minus the time they began), so parallel guesses on other
/// replicas count at once, and only failures block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottleStep {
    /// An attempt begins, unless the key is blocked or its recent failures and
    /// attempts already reach `max`.
    Begin { now: i64, window: i64, max: u32 },
    /// The attempt that began at `begun` failed: reaching `max` failures blocks the
    /// key for `block`.
    Failed {
        begun: i64,
        now: i64,
        window: i64,
        max: u32,
        block: i64,
    },
    /// The attempt that began at `begun` succeeded, or was never checked.
    Release { begun: i64 },
    /// A user signed in: their name's failures and block go; attempts other replicas
    /// are checking stay counted.
    Clear,
    /// Asks whether the key is blocked, changing nothing: the wait if it is.
    Blocked { now: i64 },
}

impl ThrottleStep {
    /// Applies the step to a key's list and block; for `Begin`, the wait (milliseconds)
    /// when it is refused.
    pub fn apply(self, stamps: &mut Vec<i64>, blocked_until: &mut Option<i64>) -> Option<i64> {
        let take_back = |stamps: &mut Vec<i64>, begun: i64| {
            if let Some(at) = stamps.iter().position(|t| *t == -begun) {
                stamps.remove(at);
            }
        };
        match self {
            ThrottleStep::Begin { now, window, max } => {
                if let Some(until) = blocked_until.filter(|until| *until > now) {
                    return Some(until - now);
                }
                *blocked_until = None;
                stamps.retain(|t| now - t.abs() <= window);
                if stamps.len() >= max as usize {
                    return Some(1000);
                }
                stamps.push(-now);
                None
            }
            ThrottleStep::Failed {
                begun,
                now,
                window,
                max,
                block,
            } => {
                take_back(stamps, begun);
                if blocked_until.is_some_and(|until| until > now) {
                    return None;
                }
                stamps.retain(|t| now - t.abs() <= window);
                stamps.push(now);
                if stamps.iter().filter(|t| **t > 0).count() >= max as usize {
                    stamps.retain(|t| *t < 0);
                    *blocked_until = Some(now + block);
                }
                None
            }
            ThrottleStep::Release { begun } => {
                take_back(stamps, begun);
                None
            }
            ThrottleStep::Clear => {
                stamps.retain(|t| *t < 0);
                *blocked_until = None;
                None
            }
            ThrottleStep::Blocked { now } => blocked_until
                .filter(|until| *until > now)
                .map(|until| until - now),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ThrottleStep;

    const WINDOW: i64 = 60_000;

    fn begin(now: i64) -> ThrottleStep {
        ThrottleStep::Begin {
            now,
            window: WINDOW,
            max: 5,
        }
    }

    fn failed(begun: i64, now: i64) -> ThrottleStep {
        ThrottleStep::Failed {
            begun,
            now,
            window: WINDOW,
            max: 5,
            block: 300_000,
        }
    }

    #[test]
    fn attempts_in_flight_count_and_only_failures_block() {
        let (mut stamps, mut blocked) = (Vec::new(), None);
        for now in 1..6 {
            assert_eq!(begin(now).apply(&mut stamps, &mut blocked), None);
        }
        // A sixth in parallel waits.
        assert_eq!(begin(6).apply(&mut stamps, &mut blocked), Some(1000));
        // One fails, four succeed: no block (a typo among colleagues behind one NAT).
        failed(1, 7).apply(&mut stamps, &mut blocked);
        for begun in 2..6 {
            ThrottleStep::Release { begun }.apply(&mut stamps, &mut blocked);
        }
        assert_eq!(blocked, None);
        assert_eq!(stamps, vec![7]);
        // Four more failures, one after another: the fifth blocks.
        for now in 10..14 {
            assert_eq!(begin(now).apply(&mut stamps, &mut blocked), None);
            failed(now, now + 1).apply(&mut stamps, &mut blocked);
        }
        assert_eq!(blocked, Some(14 + 300_000));
        assert_eq!(
            begin(20).apply(&mut stamps, &mut blocked),
            Some(300_000 - 6)
        );
    }

    #[test]
    fn old_failures_and_abandoned_attempts_fall_out_of_the_window() {
        let (mut stamps, mut blocked) = (vec![1, 2, -3, 4], None);
        assert_eq!(begin(70_000).apply(&mut stamps, &mut blocked), None);
        assert_eq!(stamps, vec![-70_000]);
    }

    #[test]
    fn a_sign_in_clears_failures_and_keeps_attempts_in_flight() {
        let (mut stamps, mut blocked) = (vec![1, -2, 3], Some(9));
        let ask = ThrottleStep::Blocked { now: 5 };
        assert_eq!(ask.apply(&mut stamps, &mut blocked), Some(4));
        assert_eq!(
            (stamps.len(), blocked),
            (3, Some(9)),
            "asking changes nothing"
        );
        ThrottleStep::Clear.apply(&mut stamps, &mut blocked);
        assert_eq!((stamps, blocked), (vec![-2], None));
    }
}
