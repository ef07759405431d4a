//! Options from a command (`options_from`): run by the argv rules of a tool's command
//! (a fixed program, one element per value, no shell, the tool's workdir and scrubbed
//! environment plus `FTW_USER`, `FTW_TOOL` and the values it names), in a process group
//! of its own, for at most `TIMEOUT`, reading at most `MAX_OUTPUT` of stdout (stderr
//! goes to the log). Answers are kept for the argument's `options_ttl`, per user and
//! per filled-in command, so a form shown to many, or refreshed as someone types, runs
//! the command once; a failure is kept for `FAILURE_TTL` only. Callers of one command
//! at once share its one run, and at most `RUNNING` commands run at a time.
//!
//! `prepare` applies the options and `show_if` to one request's values: what the form
//! shows, and what the server checks a submission against (never what the browser
//! was shown).

mod output;
mod prepare;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indexmap::IndexMap;
use tokio::sync::{OnceCell, Semaphore, watch};

use crate::exec::{self, Ending, Exit, OutputSink, Plan, Stop, Stream};
use crate::manifest::{Arg, Tool, Value};

pub use output::Choice;
pub use prepare::{Prepared, prepare};

/// How long an options command may run.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// The most stdout read from one options command.
pub const MAX_OUTPUT: usize = 256 * 1024;
/// How long a failed answer is kept (a broken script is not run on every keystroke).
const FAILURE_TTL: Duration = Duration::from_secs(2);
/// Options commands running at once, over all tools and users.
const RUNNING: usize = 4;
/// Answers kept at most; the oldest go first (with `MAX_OUTPUT`, a bound on memory).
const KEPT: usize = 256;
/// How long a request waits for one of the `RUNNING` slots.
const WAIT_FOR_SLOT: Duration = Duration::from_secs(10);

/// The options of one argument for one request, or why there are none.
pub type Answer = Result<Arc<Vec<Choice>>, String>;

/// The options commands' answers, and the limit on how many run at once.
pub struct Options {
    kept: Mutex<HashMap<Key, Entry>>,
    running: Arc<Semaphore>,
}

/// One command as it would run: tool, argument, user and the filled-in argv.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    tool: String,
    arg: String,
    user: String,
    argv: Vec<String>,
}

struct Entry {
    born: Instant,
    ttl: Duration,
    answer: Arc<OnceCell<Answer>>,
}

impl Entry {
    fn fresh(&self, now: Instant) -> bool {
        let ttl = match self.answer.get() {
            Some(Err(_)) => FAILURE_TTL,
            _ => self.ttl,
        };
        now.duration_since(self.born) < ttl
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            kept: Mutex::new(HashMap::new()),
            running: Arc::new(Semaphore::new(RUNNING)),
        }
    }
}

impl Options {
    /// The options of `arg` (which has `options_from`) for `user`, with the checked
    /// `values` of the arguments its command names. A required one that has no value
    /// yet: an answer that says to choose it first.
    pub async fn of(
        &self,
        tool: &Tool,
        arg: &Arg,
        values: &IndexMap<String, Value>,
        user: &str,
    ) -> Answer {
        let Some(from) = &arg.options_from else {
            return Ok(Arc::new(Vec::new()));
        };
        for dep in &from.depends_on {
            let Some(dep_arg) = tool.arg(dep) else {
                continue;
            };
            let missing = values.get(dep).is_none_or(|v| *v == Value::Absent);
            if missing && dep_arg.required {
                return Err(format!("choose {} first", dep_arg.label));
            }
        }
        let key = Key {
            tool: tool.id.clone(),
            arg: arg.name.clone(),
            user: user.to_string(),
            argv: exec::argv(tool, &from.args, values),
        };
        let cell = self.cell(&key, from.ttl);
        let answer = cell
            .get_or_init(|| {
                // Its own task: a request that goes away does not stop the command
                // half-way (leaving its process group unwatched and its slot free).
                let (running, tool, arg, values) = (
                    Arc::clone(&self.running),
                    tool.clone(),
                    arg.clone(),
                    values.clone(),
                );
                let key = key.clone();
                let task = tokio::spawn(async move {
                    let Ok(Ok(_permit)) =
                        tokio::time::timeout(WAIT_FOR_SLOT, running.acquire_owned()).await
                    else {
                        return Err("ftw is busy running other options commands; try again".into());
                    };
                    run(&tool, &arg, &key, &values).await.map(Arc::new)
                });
                async move {
                    task.await
                        .unwrap_or_else(|e| Err(format!("its command could not be run ({e})")))
                }
            })
            .await;
        answer.clone()
    }

    /// The shared answer for `key`: the kept one while fresh, else a new empty one.
    fn cell(&self, key: &Key, ttl: Duration) -> Arc<OnceCell<Answer>> {
        let now = Instant::now();
        let mut kept = self.kept.lock().expect("options lock");
        if let Some(entry) = kept.get(key).filter(|e| e.fresh(now)) {
            return Arc::clone(&entry.answer);
        }
        if kept.len() >= KEPT {
            kept.retain(|_, e| e.fresh(now));
            if kept.len() >= KEPT
                && let Some(oldest) = kept
                    .iter()
                    .min_by_key(|(_, e)| e.born)
                    .map(|(k, _)| k.clone())
            {
                kept.remove(&oldest);
            }
        }
        let answer = Arc::new(OnceCell::new());
        kept.insert(
            key.clone(),
            Entry {
                born: now,
                ttl,
                answer: Arc::clone(&answer),
            },
        );
        answer
    }

    /// Forgets every answer (the manifest was reloaded: commands may have changed).
    pub fn clear(&self) {
        self.kept.lock().expect("options lock").clear();
    }
}

/// Runs the command of `key` and reads its options. The message of a failure is for
/// the form; what the command said on stderr goes to the log only.
async fn run(
    tool: &Tool,
    arg: &Arg,
    key: &Key,
    values: &IndexMap<String, Value>,
) -> Result<Vec<Choice>, String> {
    let from = arg
        .options_from
        .as_ref()
        .expect("only arguments with options_from");
    let mut env = exec::base_env();
    env.extend(tool.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    for dep in &from.depends_on {
        if let Some(value) = values.get(dep).filter(|v| **v != Value::Absent) {
            let upper = dep.to_ascii_uppercase();
            env.push((format!("FTW_ARG_{upper}"), value.texts().join("\n")));
        }
    }
    env.push(("FTW_TOOL".into(), tool.id.clone()));
    env.push(("FTW_USER".into(), key.user.clone()));
    let plan = Plan {
        program: from.program.clone(),
        args: key.argv.clone(),
        env,
        workdir: tool.workdir.clone(),
        timeout: TIMEOUT,
        separate_stderr: true,
    };
    let (stop, stopped) = watch::channel(Stop::Running);
    let sink = Capture {
        stdout: Mutex::new(Vec::new()),
        stderr: Mutex::new(Vec::new()),
        stop,
    };
    let ending = exec::execute(&plan, &sink, stopped).await;
    let stdout = sink.stdout.into_inner().expect("capture lock");
    let stderr = sink.stderr.into_inner().expect("capture lock");
    let failed = |why: String| {
        let said = String::from_utf8_lossy(&stderr);
        tracing::warn!(
            tool = %tool.id,
            arg = %arg.name,
            stderr = ?said.trim_end(),
            "the options command {why}"
        );
        Err(format!("its command {why}"))
    };
    if stdout.len() > MAX_OUTPUT {
        return failed(format!("printed more than {} KiB", MAX_OUTPUT / 1024));
    }
    match ending {
        Ending::Exited(Exit::Code(0)) => match output::parse(&stdout) {
            Ok(choices) => Ok(choices),
            Err(why) => failed(why),
        },
        Ending::Exited(Exit::Code(code)) => failed(format!("failed (exit code {code})")),
        Ending::Exited(Exit::Signal(signal)) => failed(format!("was killed (signal {signal})")),
        Ending::TimedOut(_) => failed(format!("took longer than {} s", TIMEOUT.as_secs())),
        Ending::Cancelled(_) | Ending::ShutDown(_) => failed("was stopped".into()),
        Ending::NotStarted(why) => failed(format!("did not start ({why})")),
    }
}

/// Collects an options command's output: stdout up to one byte past the limit (then
/// the command is killed), the last 4 KiB of stderr for the log.
struct Capture {
    stdout: Mutex<Vec<u8>>,
    stderr: Mutex<Vec<u8>>,
    stop: watch::Sender<Stop>,
}

impl OutputSink for Capture {
    fn push(&self, stream: Stream, bytes: &[u8]) {
        match stream {
            Stream::Stdout => {
                let mut out = self.stdout.lock().expect("capture lock");
                let room = (MAX_OUTPUT + 1).saturating_sub(out.len());
                out.extend_from_slice(&bytes[..bytes.len().min(room)]);
                if out.len() > MAX_OUTPUT {
                    self.stop.send_replace(Stop::Kill);
                }
            }
            Stream::Stderr => {
                let mut err = self.stderr.lock().expect("capture lock");
                err.extend_from_slice(bytes);
                let extra = err.len().saturating_sub(4096);
                err.drain(..extra);
            }
        }
    }
}
