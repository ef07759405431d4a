//! `[tools.ID]`: the id, the command (a fixed program and templates whose placeholders
//! name arguments), workdir, limits, `allow` and `env`.

use std::ops::Range;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use toml::Spanned;

use crate::manifest::arg::{Arg, Kind};
use crate::manifest::decode::RawToolEntry;
use crate::manifest::diagnostic::{quoted, suggestion};
use crate::manifest::names;
use crate::manifest::raw::RawCommand;
use crate::manifest::template::Template;
use crate::manifest::{
    DEFAULT_MAX_OUTPUT, DEFAULT_TIMEOUT, Principal, StderrMode, Tool, io_reason,
};

use super::{Checker, Declared};

impl Checker<'_> {
    pub(super) fn tool(&mut self, entry: RawToolEntry, declared: &Declared) -> Option<Tool> {
        let id = entry.id.get_ref().clone();
        self.dynamic.clear();
        let mut ok = self.name_follows(&names::TOOL_ID, &entry.id);
        let arg_names: Vec<String> = entry
            .args
            .iter()
            .map(|a| a.name.get_ref().clone())
            .collect();
        let mut args = self.args(&id, entry.args);
        let raw = entry.tool?;

        let workdir = match &raw.workdir {
            None => self.base_dir.to_path_buf(),
            Some(w) => {
                let path = self.path(w.get_ref());
                if let Err(e) = std::fs::read_dir(&path) {
                    self.error(
                        w.span(),
                        format!(
                            "`workdir` {} is not a readable folder: {}",
                            quoted(w.get_ref()),
                            io_reason(&e)
                        ),
                    );
                    ok = false;
                }
                path
            }
        };
        let command = raw
            .command
            .as_ref()
            .and_then(|c| self.command("command", c, &args, &arg_names, &workdir));
        ok &= self.dynamic(&mut args, &arg_names, &workdir);
        let timeout = self.duration(raw.timeout, "timeout", DEFAULT_TIMEOUT);
        let max_output = self.size(raw.max_output, "max_output", DEFAULT_MAX_OUTPUT);
        let stderr = match raw.stderr.as_ref().map(|s| (s, s.get_ref().as_str())) {
            None | Some((_, "merged")) => StderrMode::Merged,
            Some((_, "separate")) => StderrMode::Separate,
            Some((value, other)) => {
                let hint = suggestion(other, ["merged", "separate"], |s| format!("\"{s}\""));
                self.error_help(
                    value.span(),
                    format!("`stderr` {} is not a way to capture it{hint}", quoted(other)),
                    "\"merged\" (with stdout, in exact order) or \"separate\" (tinted; order between the two not kept)".into(),
                );
                StderrMode::Merged
            }
        };
        let allow = raw.allow.map(|list| self.allow(&id, list, declared));
        if let Some(n) = &raw.max_concurrent
            && *n.get_ref() == 0
        {
            self.error(
                n.span(),
                "`max_concurrent` must be at least 1 (to switch a tool off, use `allow = []`)"
                    .into(),
            );
        }
        let env = self.env(raw.env);
        let schedules = self.schedules(raw.schedule, &args, declared);
        let names = self.notify_names.clone();
        let (notify, notify_on) = self.tool_notify(raw.notify, raw.notify_on, &names);
        let webhook = match raw.webhook {
            Some(hook) => {
                let checked = self.webhook(hook, &args, declared);
                ok &= checked.is_some();
                checked
            }
            None => None,
        };
        let (program, args_template) = command?;
        if !ok {
            return None;
        }
        Some(Tool {
            title: raw.title.unwrap_or_else(|| id.clone()),
            id,
            description: raw.description,
            group: raw.group,
            program,
            args_template,
            workdir,
            timeout,
            allow,
            max_concurrent: raw.max_concurrent.map(Spanned::into_inner),
            max_output,
            stderr,
            env,
            args: args.into_iter().map(|(_, a)| a).collect(),
            schedules,
            webhook,
            notify,
            notify_on,
        })
    }

    /// Checks `command` (or `options_from`, named by `key`): an argv array whose first
    /// element is a fixed program and whose placeholders all name arguments. Returns the
    /// program and the templates after it.
    pub(super) fn command(
        &mut self,
        key: &str,
        raw: &Spanned<RawCommand>,
        args: &[(Range<usize>, Arg)],
        declared: &[String],
        workdir: &Path,
    ) -> Option<(PathBuf, Vec<Template>)> {
        let elements = match raw.get_ref() {
            RawCommand::Line(line) => {
                let suggested: Vec<String> =
                    line.split_whitespace().map(|w| format!("{w:?}")).collect();
                self.error_help(
                    raw.span(),
                    format!("`{key}` must be an array of strings: ftw never runs a shell"),
                    format!("write {key} = [{}]", suggested.join(", ")),
                );
                return None;
            }
            RawCommand::Argv(elements) => elements,
        };
        let Some((program, rest)) = elements.split_first() else {
            self.error(
                raw.span(),
                format!("`{key}` is empty; its first element is the program to run"),
            );
            return None;
        };
        let mut ok = true;
        for element in elements {
            if element.get_ref().contains('\0') {
                self.error(
                    element.span(),
                    format!("a `{key}` element contains a NUL character"),
                );
                ok = false;
            }
        }
        let fixed = if program.get_ref().contains(['{', '}']) {
            self.error(
                program.span(),
                format!("the program (first element of `{key}`) must be fixed; a form value cannot choose what runs"),
            );
            false
        } else if program.get_ref().is_empty() {
            self.error(
                program.span(),
                format!("the program (first element of `{key}`) is empty"),
            );
            false
        } else {
            !program.get_ref().contains('\0')
        };
        // The program is checked whatever else is wrong, so one run reports both a bad
        // placeholder and a missing script.
        let program = if fixed {
            self.program(program, workdir)
        } else {
            None
        };
        let names: Vec<&str> = declared.iter().map(String::as_str).collect();
        let mut templates = Vec::new();
        let mut seen_double_dash = false;
        for element in rest {
            let text = element.get_ref();
            let template = match Template::parse(text) {
                Ok(t) => t,
                Err(e) => {
                    let span = self.inner_span(element, e.at);
                    self.error(span, e.message);
                    ok = false;
                    continue;
                }
            };
            for (name, at) in template.placeholders() {
                let span = self.inner_span(element, at.clone());
                let Some((_, arg)) = args.iter().find(|(_, a)| a.name == name) else {
                    if names.contains(&name) {
                        continue; // declared, but invalid: reported where it is declared
                    }
                    let hint = suggestion(name, names.iter().copied(), |s| format!("`{{{s}}}`"));
                    let known = if names.is_empty() {
                        "this tool has no arguments".to_string()
                    } else {
                        format!("arguments: {}", names.join(", "))
                    };
                    self.error_help(
                        span,
                        format!("placeholder `{{{name}}}` names no argument{hint}"),
                        known,
                    );
                    ok = false;
                    continue;
                };
                if matches!(arg.kind, Kind::Multiselect { .. })
                    && template.lone_placeholder().is_none()
                {
                    self.error(
                        span.clone(),
                        format!("multiselect `{name}` gives one element per option, so `{{{name}}}` must be a whole element"),
                    );
                    ok = false;
                }
                if arg.kind.is_free_text()
                    && !seen_double_dash
                    && text.starts_with(&format!("{{{name}}}"))
                {
                    self.warning(
                        span,
                        format!(
                            "{} argument `{name}` is passed positionally: a value starting with `-` could be read as an option; put \"--\" before it if the program accepts that",
                            arg.kind.name()
                        ),
                    );
                }
            }
            seen_double_dash |= text == "--";
            templates.push(template);
        }
        if !ok {
            return None;
        }
        Some((program?, templates))
    }

    /// A program with a `/` is a path from the workdir and must be executable; a bare name
    /// is looked up on PATH when the tool runs, so a miss now is only a warning.
    pub(super) fn program(&mut self, program: &Spanned<String>, workdir: &Path) -> Option<PathBuf> {
        let name = program.get_ref();
        if !name.contains('/') {
            if find_on_path(name).is_some() {
                return Some(PathBuf::from(name));
            }
            if workdir.join(name).is_file() {
                // The file is right there, but a bare name is looked up on PATH.
                self.error_help(
                    program.span(),
                    format!("`{name}` is not on PATH; did you mean `./{name}`?"),
                    format!(
                        "a program without a `/` is looked up on PATH; write \"./{name}\" for the file in the tool's workdir"
                    ),
                );
                return None;
            }
            self.warning(
                program.span(),
                format!("`{name}` is not on this PATH now; the tool fails until it is installed"),
            );
            return Some(PathBuf::from(name));
        }
        let path = workdir.join(name);
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_file() && is_executable(&meta) => Some(normalise(&path)),
            Ok(meta) if meta.is_file() => {
                self.error_help(
                    program.span(),
                    format!("the program {} is not executable", quoted(name)),
                    format!("run `chmod +x {}`", normalise(&path).display()),
                );
                None
            }
            Ok(_) => {
                self.error(
                    program.span(),
                    format!("the program {} is not a file", quoted(name)),
                );
                None
            }
            Err(e) => {
                self.error(
                    program.span(),
                    format!(
                        "the program {} ({}) cannot be used: {}",
                        quoted(name),
                        normalise(&path).display(),
                        io_reason(&e)
                    ),
                );
                None
            }
        }
    }

    /// The span of `at` (a byte range inside the string value) in the source, when the
    /// string is written without escapes; otherwise the whole string.
    pub(super) fn inner_span(&self, element: &Spanned<String>, at: Range<usize>) -> Range<usize> {
        let span = element.span();
        let written = self.source.text.get(span.clone()).unwrap_or("");
        let inner = written
            .get(1..written.len().saturating_sub(1))
            .unwrap_or("");
        if inner == element.get_ref() {
            span.start + 1 + at.start..span.start + 1 + at.end
        } else {
            span
        }
    }

    pub(super) fn allow(
        &mut self,
        id: &str,
        list: Spanned<Vec<Spanned<String>>>,
        declared: &Declared,
    ) -> Vec<Principal> {
        if list.get_ref().is_empty() {
            self.warning(
                list.span(),
                format!("`allow` is empty: nobody can run `{id}`"),
            );
        }
        self.principals(list, "allow", declared)
    }

    pub(super) fn env(
        &mut self,
        raw: IndexMap<Spanned<String>, Spanned<String>>,
    ) -> IndexMap<String, String> {
        let mut env = IndexMap::new();
        for (key, value) in raw {
            let name = key.get_ref();
            let valid = name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                self.error(
                    key.span(),
                    format!(
                        "`env` name {} must be letters, digits and `_`",
                        quoted(name)
                    ),
                );
            } else if name.to_ascii_uppercase().starts_with("FTW_") {
                self.error(
                    key.span(),
                    format!("`env` name `{name}`: names starting with FTW_ are set by ftw"),
                );
            } else if value.get_ref().contains('\0') {
                self.error(
                    value.span(),
                    format!("`env` value of `{name}` contains a NUL character"),
                );
            } else {
                env.insert(name.clone(), value.into_inner());
            }
        }
        env
    }
}

fn is_executable(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

/// The path without `.` segments; symlinks are kept, so the program sees its own name.
fn normalise(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect()
}

pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file() && is_executable(&m)))
}
