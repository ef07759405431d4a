//! One request's view of a tool whose fields adapt: each `options_from` choice gets the
//! options its command prints for the values given now, and each `show_if` field is
//! shown or hidden by the value its controlling field has now. Fields are taken in an
//! order where every field comes after those it depends on (the manifest check refused
//! cycles), so a chain (`region` -> `env` -> `db`) resolves in one pass.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use indexmap::IndexMap;

use super::{Choice, Options};
use crate::form::Submission;
use crate::manifest::{Kind, Tool, Value};

/// A tool as one request sees it.
pub struct Prepared<'a> {
    /// The tool, each `options_from` choice with this request's options (a default
    /// that is not among them is dropped, and the field must be chosen instead);
    /// borrowed as it is when nothing in it adapts.
    pub tool: Cow<'a, Tool>,
    /// Fields whose `show_if` does not hold now: not shown, not required, not passed.
    pub hidden: HashSet<String>,
    /// The options of each `options_from` choice, with their labels.
    pub choices: HashMap<String, Arc<Vec<Choice>>>,
    /// Why a shown `options_from` choice has no options ("choose Env first", or what
    /// went wrong with its command).
    pub problems: IndexMap<String, String>,
}

/// `tool` for `user` with `given` (the texts sent or shown, by field).
pub async fn prepare<'a>(
    options: &Options,
    tool: &'a Tool,
    given: &HashMap<String, Vec<String>>,
    user: &str,
) -> Prepared<'a> {
    let mut prepared = Prepared {
        tool: Cow::Borrowed(tool),
        hidden: HashSet::new(),
        choices: HashMap::new(),
        problems: IndexMap::new(),
    };
    if tool
        .args
        .iter()
        .all(|a| a.options_from.is_none() && a.show_if.is_none())
    {
        return prepared;
    }
    let mut values: IndexMap<String, Value> = IndexMap::new();
    for index in order(tool) {
        let arg = &tool.args[index];
        let shown = arg.show_if.as_ref().is_none_or(|when| {
            !prepared.hidden.contains(&when.field)
                && values.get(&when.field).is_some_and(|v| when.holds(v))
        });
        if !shown {
            prepared.hidden.insert(arg.name.clone());
        }
        let mut resolved = arg.clone();
        if arg.options_from.is_some() {
            let answer = options.of(tool, arg, &values, user).await;
            let list = match answer {
                Ok(list) => list,
                Err(why) => {
                    if shown {
                        prepared.problems.insert(arg.name.clone(), why);
                    }
                    Arc::new(Vec::new())
                }
            };
            resolved
                .kind
                .set_options(list.iter().map(|c| c.value.clone()).collect());
            let default_fits = resolved.default.as_ref().is_none_or(|d| {
                d.texts()
                    .iter()
                    .all(|t| resolved.kind.options().iter().any(|o| o == t))
            });
            if !default_fits {
                resolved.default = None;
                resolved.required = true;
            }
            prepared.choices.insert(arg.name.clone(), list);
            prepared.tool.to_mut().args[index] = resolved.clone();
        }
        let value = if !shown || matches!(arg.kind, Kind::File { .. }) {
            Value::Absent
        } else {
            match given.get(&arg.name) {
                Some(texts) => resolved.parse(texts).unwrap_or(Value::Absent),
                None => resolved.default.clone().unwrap_or(Value::Absent),
            }
        };
        values.insert(arg.name.clone(), value);
    }
    prepared
}

impl Prepared<'_> {
    /// The tool a submission is checked against, and the submission without what it
    /// sent for hidden fields: they are neither required nor passed.
    pub fn for_check(&self, submission: &mut Submission) -> Cow<'_, Tool> {
        if self.hidden.is_empty() {
            return Cow::Borrowed(&*self.tool);
        }
        submission.fields.retain(|(k, _)| !self.hidden.contains(k));
        submission
            .uploads
            .retain(|u| !self.hidden.contains(&u.field));
        let mut tool = self.tool.clone().into_owned();
        tool.args.retain(|a| !self.hidden.contains(&a.name));
        Cow::Owned(tool)
    }
}

/// The indexes of `tool`'s arguments, each after the arguments it depends on.
fn order(tool: &Tool) -> Vec<usize> {
    let needs = |i: usize| -> Vec<&str> {
        let arg = &tool.args[i];
        let mut deps: Vec<&str> = arg
            .options_from
            .iter()
            .flat_map(|f| f.depends_on.iter().map(String::as_str))
            .collect();
        deps.extend(arg.show_if.iter().map(|w| w.field.as_str()));
        deps
    };
    let mut done: Vec<usize> = Vec::new();
    while done.len() < tool.args.len() {
        let before = done.len();
        for i in 0..tool.args.len() {
            if done.contains(&i) {
                continue;
            }
            let ready = needs(i).iter().all(|dep| {
                tool.args
                    .iter()
                    .position(|a| a.name == *dep)
                    .is_none_or(|d| done.contains(&d))
            });
            if ready {
                done.push(i);
            }
        }
        if done.len() == before {
            // A cycle the manifest check let through: take the rest as listed.
            done.extend(
                (0..tool.args.len())
                    .filter(|i| !done.contains(i))
                    .collect::<Vec<_>>(),
            );
        }
    }
    done
}
