//! `options_from`, `options_ttl` and `show_if` of a tool's arguments, checked once all
//! of the tool's arguments are known: the command by the rules of `command`, what it
//! and each condition may name (another argument; never a password or a file, whose
//! values must not leave the run), conditions a field could ever meet, and no two
//! fields waiting on each other.

use std::ops::Range;
use std::path::Path;

use toml::Spanned;

use crate::manifest::arg::{Arg, DEFAULT_OPTIONS_TTL, Kind, OptionsFrom, ShowIf};
use crate::manifest::diagnostic::{quoted, suggestion};
use crate::manifest::raw::{DurationText, RawCommand, RawShowIf};

use super::Checker;

/// An argument's adapting keys, as written, until its tool's arguments are all known.
pub struct RawDynamic {
    pub arg: String,
    pub options_from: Option<Spanned<RawCommand>>,
    pub options_ttl: Option<DurationText>,
    pub show_if: Option<Spanned<RawShowIf>>,
}

impl Checker<'_> {
    /// Checks the keys kept by `arg` for this tool and puts them on its arguments.
    /// False if any is wrong.
    pub(super) fn dynamic(
        &mut self,
        args: &mut [(Range<usize>, Arg)],
        declared: &[String],
        workdir: &Path,
    ) -> bool {
        let mut ok = true;
        let mut edges: Vec<(String, String, Range<usize>)> = Vec::new();
        let pending = std::mem::take(&mut self.dynamic);
        let choices_from_commands: Vec<&str> = pending
            .iter()
            .filter(|d| d.options_from.is_some())
            .map(|d| d.arg.as_str())
            .collect();
        for raw in &pending {
            if let Some(command) = &raw.options_from {
                match self.options_from(
                    &raw.arg,
                    command,
                    raw.options_ttl.clone(),
                    args,
                    declared,
                    workdir,
                ) {
                    Some(from) => {
                        for dep in &from.depends_on {
                            edges.push((raw.arg.clone(), dep.clone(), command.span()));
                        }
                        set(args, &raw.arg, |a| a.options_from = Some(from));
                    }
                    None => ok = false,
                }
            }
            if let Some(condition) = &raw.show_if {
                match self.show_if(&raw.arg, condition, args, declared, &choices_from_commands) {
                    Some(show_if) => {
                        edges.push((raw.arg.clone(), show_if.field.clone(), condition.span()));
                        set(args, &raw.arg, |a| a.show_if = Some(show_if));
                    }
                    None => ok = false,
                }
            }
        }
        self.no_cycles(&edges) && ok
    }

    fn options_from(
        &mut self,
        name: &str,
        command: &Spanned<RawCommand>,
        ttl: Option<DurationText>,
        args: &[(Range<usize>, Arg)],
        declared: &[String],
        workdir: &Path,
    ) -> Option<OptionsFrom> {
        let ttl = self.duration(ttl, "options_ttl", DEFAULT_OPTIONS_TTL);
        let (program, templates) =
            self.command("options_from", command, args, declared, workdir)?;
        let mut depends_on: Vec<String> = Vec::new();
        for template in &templates {
            for (dep, _) in template.placeholders() {
                if !depends_on.iter().any(|d| d == dep) {
                    depends_on.push(dep.to_string());
                }
            }
        }
        let mut ok = true;
        for dep in &depends_on {
            let Some((_, arg)) = args.iter().find(|(_, a)| a.name == *dep) else {
                continue;
            };
            if dep == name {
                self.error(
                    command.span(),
                    format!("`options_from` of `{name}` cannot use `{{{name}}}`: its options cannot depend on what is chosen from them"),
                );
                ok = false;
            } else if let Some(why) = never_passed(&arg.kind) {
                self.error(
                    command.span(),
                    format!("`options_from` of `{name}` cannot use `{{{dep}}}`: {why}"),
                );
                ok = false;
            }
        }
        ok.then_some(OptionsFrom {
            program,
            args: templates,
            ttl,
            depends_on,
        })
    }

    fn show_if(
        &mut self,
        name: &str,
        condition: &Spanned<RawShowIf>,
        args: &[(Range<usize>, Arg)],
        declared: &[String],
        choices_from_commands: &[&str],
    ) -> Option<ShowIf> {
        let raw = condition.get_ref();
        let field = raw.field.get_ref();
        let names: Vec<&str> = declared.iter().map(String::as_str).collect();
        let Some((_, controller)) = args.iter().find(|(_, a)| a.name == *field) else {
            if names.contains(&field.as_str()) {
                return None; // declared, but invalid: reported where it is declared
            }
            let hint = suggestion(field, names.iter().copied(), |s| format!("`{s}`"));
            self.error_help(
                raw.field.span(),
                format!(
                    "`show_if` names {}, which is not an argument of this tool{hint}",
                    quoted(field)
                ),
                format!("arguments: {}", names.join(", ")),
            );
            return None;
        };
        if field == name {
            self.error(
                raw.field.span(),
                format!("`show_if` of `{name}` names the field itself"),
            );
            return None;
        }
        if let Some(why) = never_passed(&controller.kind) {
            self.error(
                raw.field.span(),
                format!("`show_if` cannot look at `{field}`: {why}"),
            );
            return None;
        }
        let equals = match (raw.equals.get_ref(), &controller.kind) {
            (toml::Value::Boolean(b), Kind::Bool { .. }) => b.to_string(),
            (toml::Value::String(s), Kind::Bool { .. }) if s == "true" || s == "false" => s.clone(),
            (_, Kind::Bool { .. }) => {
                self.error(
                    raw.equals.span(),
                    format!("`{field}` is a checkbox: `equals` is true or false"),
                );
                return None;
            }
            (toml::Value::String(s), _) => s.clone(),
            (other, _) => {
                self.error(
                    raw.equals.span(),
                    format!(
                        "`equals` is the text `{field}` must have, not {}",
                        other.type_str()
                    ),
                );
                return None;
            }
        };
        // A value the field can never have would hide this one for good.
        let options = controller.kind.options();
        let from_command = choices_from_commands.contains(&field.as_str());
        if !from_command && !options.is_empty() {
            if !options.contains(&equals) {
                let hint = suggestion(&equals, options.iter().map(String::as_str), |s| {
                    format!("\"{s}\"")
                });
                self.error_help(
                    raw.equals.span(),
                    format!("`{field}` has no option {}{hint}", quoted(&equals)),
                    format!("options: {}", options.join(", ")),
                );
                return None;
            }
        } else if !from_command
            && !matches!(controller.kind, Kind::Bool { .. })
            && let Err(why) = controller.kind.parse_one(&equals)
        {
            self.error(
                raw.equals.span(),
                format!("`{field}` can never be {}: it {why}", quoted(&equals)),
            );
            return None;
        }
        Some(ShowIf {
            field: field.clone(),
            equals,
        })
    }

    /// Refuses fields that wait on each other (`a`'s options need `b`, `b` is shown if
    /// `a` ...): neither could ever be filled in.
    fn no_cycles(&mut self, edges: &[(String, String, Range<usize>)]) -> bool {
        for (from, _, span) in edges {
            let mut path = vec![from.clone()];
            if let Some(cycle) = cycle_from(from, edges, &mut path) {
                self.error(
                    span.clone(),
                    format!(
                        "these fields wait on each other ({}), so none of them could be filled in",
                        cycle.join(" -> ")
                    ),
                );
                return false;
            }
        }
        true
    }
}

/// A path from `start` back to it, if there is one.
fn cycle_from(
    start: &str,
    edges: &[(String, String, Range<usize>)],
    path: &mut Vec<String>,
) -> Option<Vec<String>> {
    let here = path.last().cloned().unwrap_or_default();
    for (_, to, _) in edges.iter().filter(|(from, _, _)| *from == here) {
        if to == start {
            let mut cycle = path.clone();
            cycle.push(to.clone());
            return Some(cycle);
        }
        if path.contains(to) || path.len() > edges.len() {
            continue;
        }
        path.push(to.clone());
        if let Some(cycle) = cycle_from(start, edges, path) {
            return Some(cycle);
        }
        path.pop();
    }
    None
}

/// Why a field's value may not go to an options command or decide what is shown.
fn never_passed(kind: &Kind) -> Option<&'static str> {
    match kind {
        Kind::Password(_) => Some("a password goes to the run only"),
        Kind::File { .. } => Some("a file exists only once the form is sent"),
        _ => None,
    }
}

fn set(args: &mut [(Range<usize>, Arg)], name: &str, change: impl FnOnce(&mut Arg)) {
    if let Some((_, arg)) = args.iter_mut().find(|(_, a)| a.name == name) {
        change(arg);
    }
}
