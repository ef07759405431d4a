//! Where a run is in its life, and how it ended: the words the pages, the API, the
//! audit log and the database all use, and how a status is stored and read back.

use crate::exec::{Ending, Exit};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Queued,
    Running,
    Succeeded,
    Failed(i32),
    Killed(i32),
    /// It ran past its timeout and was stopped; how it ended then.
    TimedOut(Exit),
    /// Someone cancelled it: how it ended, or `None` when it had not started yet.
    Cancelled(Option<Exit>),
    /// It could not start; the message says why.
    Error(String),
    /// ftw stopped while the run was queued or running: how the program ended, when
    /// ftw saw it end (a shutdown), and why.
    Interrupted(Option<Exit>, Cause),
}

/// Why a run was interrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// ftw was asked to stop (SIGTERM, SIGINT) and stopped the run.
    Shutdown,
    /// ftw ended without stopping the run (killed, crashed, power cut); the next start
    /// noticed.
    Crash,
}

impl Cause {
    pub fn word(self) -> &'static str {
        match self {
            Cause::Shutdown => "shutdown",
            Cause::Crash => "crash",
        }
    }

    pub fn from_word(word: &str) -> Cause {
        if word == "shutdown" {
            Cause::Shutdown
        } else {
            Cause::Crash
        }
    }
}

impl Status {
    pub fn is_finished(&self) -> bool {
        !matches!(self, Status::Queued | Status::Running)
    }

    /// A short word for the page and for CSS classes.
    pub fn word(&self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Running => "running",
            Status::Succeeded => "succeeded",
            Status::Failed(_) => "failed",
            Status::Killed(_) => "killed",
            Status::TimedOut(_) => "timed-out",
            Status::Cancelled(_) => "cancelled",
            Status::Error(_) => "error",
            Status::Interrupted(..) => "interrupted",
        }
    }

    /// Every word `word` can say, for filters.
    pub const WORDS: &[&str] = &[
        "queued",
        "running",
        "succeeded",
        "failed",
        "killed",
        "timed-out",
        "cancelled",
        "error",
        "interrupted",
    ];

    /// How the program itself ended, if it ran and has ended.
    pub fn exit(&self) -> Option<Exit> {
        match self {
            Status::Succeeded => Some(Exit::Code(0)),
            Status::Failed(code) => Some(Exit::Code(*code)),
            Status::Killed(signal) => Some(Exit::Signal(*signal)),
            Status::TimedOut(exit) => Some(*exit),
            Status::Cancelled(exit) | Status::Interrupted(exit, _) => *exit,
            Status::Queued | Status::Running | Status::Error(_) => None,
        }
    }

    pub fn exit_code(&self) -> Option<i32> {
        match self.exit() {
            Some(Exit::Code(code)) => Some(code),
            _ => None,
        }
    }

    pub fn signal(&self) -> Option<i32> {
        match self.exit() {
            Some(Exit::Signal(signal)) => Some(signal),
            _ => None,
        }
    }

    pub(super) fn from_ending(ending: Ending) -> Status {
        match ending {
            Ending::Exited(Exit::Code(0)) => Status::Succeeded,
            Ending::Exited(Exit::Code(code)) => Status::Failed(code),
            Ending::Exited(Exit::Signal(signal)) => Status::Killed(signal),
            Ending::TimedOut(exit) => Status::TimedOut(exit),
            Ending::Cancelled(exit) => Status::Cancelled(Some(exit)),
            Ending::ShutDown(exit) => Status::Interrupted(Some(exit), Cause::Shutdown),
            Ending::NotStarted(why) => Status::Error(why),
        }
    }

    /// The status as stored: its word, exit code, signal and detail text.
    pub fn parts(&self) -> (&'static str, Option<i32>, Option<i32>, Option<String>) {
        let detail = match self {
            Status::Error(why) => Some(why.clone()),
            Status::Interrupted(_, cause) => Some(cause.word().to_string()),
            _ => None,
        };
        (self.word(), self.exit_code(), self.signal(), detail)
    }

    /// The status from its stored parts (an unknown word reads as an error).
    pub fn from_parts(
        word: &str,
        code: Option<i32>,
        signal: Option<i32>,
        detail: Option<String>,
    ) -> Status {
        let exit = match (code, signal) {
            (Some(code), _) => Some(Exit::Code(code)),
            (None, Some(signal)) => Some(Exit::Signal(signal)),
            (None, None) => None,
        };
        match (word, exit) {
            ("queued", _) => Status::Queued,
            ("running", _) => Status::Running,
            ("succeeded", _) => Status::Succeeded,
            ("failed", Some(Exit::Code(code))) => Status::Failed(code),
            ("killed", Some(Exit::Signal(signal))) => Status::Killed(signal),
            ("timed-out", Some(exit)) => Status::TimedOut(exit),
            ("cancelled", exit) => Status::Cancelled(exit),
            ("interrupted", exit) => {
                Status::Interrupted(exit, Cause::from_word(detail.as_deref().unwrap_or("")))
            }
            ("error", _) => Status::Error(detail.unwrap_or_default()),
            (other, _) => Status::Error(format!(
                "the database says {other:?}, which this ftw does not know"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_survive_the_round_trip() {
        let all = [
            Status::Queued,
            Status::Running,
            Status::Succeeded,
            Status::Failed(3),
            Status::Killed(9),
            Status::TimedOut(Exit::Signal(15)),
            Status::TimedOut(Exit::Code(1)),
            Status::Cancelled(None),
            Status::Cancelled(Some(Exit::Signal(15))),
            Status::Error("no such program".into()),
            Status::Interrupted(None, Cause::Crash),
            Status::Interrupted(Some(Exit::Signal(15)), Cause::Shutdown),
        ];
        for status in all {
            assert!(Status::WORDS.contains(&status.word()));
            let (word, code, signal, detail) = status.parts();
            assert_eq!(Status::from_parts(word, code, signal, detail), status);
        }
    }
}
