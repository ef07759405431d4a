//! `[tools.ID.schedule.NAME]`: the cron expression (five fields, or six with seconds
//! first; UTC), the user it runs as (one the manifest knows), and the arguments, each
//! named by the tool and checked like a form value where it can be now (options from a
//! command and conditions are checked when it runs).

use std::ops::Range;
use std::str::FromStr;

use indexmap::IndexMap;
use toml::Spanned;

use crate::manifest::Schedule;
use crate::manifest::arg::{Arg, Kind};
use crate::manifest::diagnostic::{quoted, suggestion};
use crate::manifest::names;
use crate::manifest::raw::RawSchedule;

use super::{Checker, Declared};

impl Checker<'_> {
    pub(super) fn schedules(
        &mut self,
        raw: IndexMap<Spanned<String>, Spanned<RawSchedule>>,
        args: &[(Range<usize>, Arg)],
        declared: &Declared,
    ) -> Vec<Schedule> {
        let mut schedules = Vec::new();
        for (name, entry) in raw {
            if !self.name_follows(&names::TOOL_ID, &name) {
                continue;
            }
            let entry = entry.into_inner();
            let cron = match croner::Cron::from_str(entry.cron.get_ref()) {
                Ok(cron) => Some(cron),
                Err(e) => {
                    self.error_help(
                        entry.cron.span(),
                        format!("`cron` {} is not a cron expression: {e}", quoted(entry.cron.get_ref())),
                        "five fields (minute hour day-of-month month day-of-week, e.g. \"0 3 * * *\"), or six with seconds first; times are UTC".into(),
                    );
                    None
                }
            };
            let user = entry.user.get_ref();
            let known = declared.open || declared.users.iter().any(|u| u == user);
            if !known {
                let hint = suggestion(user, declared.users.iter().map(String::as_str), |s| {
                    format!("\"{s}\"")
                });
                self.error(
                    entry.user.span(),
                    format!(
                        "the schedule runs as {}, who is not a user of this manifest{hint}",
                        quoted(user)
                    ),
                );
            }
            let values = entry
                .args
                .map(|table| self.schedule_args(table, args))
                .unwrap_or_else(|| Some(serde_json::Map::new()));
            let (Some(cron), true, Some(values)) = (cron, known, values) else {
                continue;
            };
            schedules.push(Schedule {
                name: name.into_inner(),
                cron_text: entry.cron.into_inner(),
                cron,
                user: user.clone(),
                args: serde_json::json!({ "args": values }),
            });
        }
        schedules
    }

    /// The arguments as JSON values; each names an argument, and a value of a fixed
    /// kind is checked by the rules a form value meets.
    fn schedule_args(
        &mut self,
        table: Spanned<toml::Table>,
        args: &[(Range<usize>, Arg)],
    ) -> Option<serde_json::Map<String, serde_json::Value>> {
        let span = table.span();
        let mut values = serde_json::Map::new();
        let mut ok = true;
        for (name, value) in table.into_inner() {
            let Some((_, arg)) = args.iter().find(|(_, a)| a.name == name) else {
                let hint = suggestion(&name, args.iter().map(|(_, a)| a.name.as_str()), |s| {
                    format!("`{s}`")
                });
                self.error(span.clone(), format!("the schedule's `args` name `{name}`, which is not an argument of this tool{hint}"));
                ok = false;
                continue;
            };
            if matches!(arg.kind, Kind::File { .. }) {
                self.error(
                    span.clone(),
                    format!("a schedule cannot give the file `{name}`"),
                );
                ok = false;
                continue;
            }
            let texts: Vec<String> = match &value {
                toml::Value::Array(items) => items.iter().map(text).collect(),
                other => vec![text(other)],
            };
            let fixed = arg.options_from.is_none() && arg.show_if.is_none();
            if fixed && let Err(why) = arg.parse(&texts) {
                self.error(span.clone(), format!("the schedule's `{name}` {why}"));
                ok = false;
            }
            values.insert(name, json(&value));
        }
        for (_, arg) in args {
            let required = arg.required && arg.default.is_none();
            let shown_always = arg.show_if.is_none();
            if required
                && shown_always
                && !values.contains_key(&arg.name)
                && !matches!(arg.kind, Kind::Bool { .. })
            {
                self.error(
                    span.clone(),
                    format!(
                        "the schedule's `args` lack `{}`, which is required",
                        arg.name
                    ),
                );
                ok = false;
            }
        }
        ok.then_some(values)
    }
}

fn text(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn json(value: &toml::Value) -> serde_json::Value {
    match value {
        toml::Value::String(s) => serde_json::json!(s),
        toml::Value::Integer(n) => serde_json::json!(n),
        toml::Value::Float(x) => serde_json::json!(x),
        toml::Value::Boolean(b) => serde_json::json!(b),
        toml::Value::Array(items) => serde_json::Value::Array(items.iter().map(json).collect()),
        other => serde_json::json!(other.to_string()),
    }
}
