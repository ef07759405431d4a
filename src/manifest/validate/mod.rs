//! Second pass: the raw manifest's meaning. Every check reports into the diagnostics and
//! carries on, so one run finds every problem: unknown types and placeholders (with
//! did-you-mean), defaults that break their own constraints, `min > max`, bad regexes,
//! plain-text or weak password hashes, `allow` entries naming nobody, unreadable folders,
//! durations and sizes that do not parse. A `Manifest` comes out either way; the caller
//! throws it away when there were errors.
//!
//! One file per TOML table: `server`, `auth` (users, tokens, who is named where),
//! `tools`, `args`. This file holds the checker and what they all use.

mod args;
mod auth;
mod dynamic;
mod github;
mod ldap;
mod notify;
mod oidc;
mod schedules;
mod server;
mod webhook;

pub use server::host_pattern;
mod tools;

use std::collections::BTreeSet;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use indexmap::IndexMap;
use toml::Spanned;

use super::decode::RawManifest;
use super::diagnostic::{Diagnostics, Source, quoted};
use super::{Manifest, io_reason};

pub fn manifest(
    raw: RawManifest,
    source: &Arc<Source>,
    base_dir: &Path,
    diags: &mut Diagnostics,
) -> Manifest {
    let mut c = Checker {
        source: Arc::clone(source),
        base_dir,
        diags,
        dynamic: Vec::new(),
        notify_names: Vec::new(),
    };
    let title = raw
        .title
        .map(Spanned::into_inner)
        .unwrap_or_else(|| "ftw".into());
    let server = c.server(raw.server.unwrap_or_default());
    let proxies = !server.trusted_proxies.is_empty();
    let (auth, declared) = c.auth(raw.auth.unwrap_or_default(), raw.users, proxies);
    if raw.tools.is_empty() && !c.diags.has_errors() {
        c.diags.warning(
            source,
            None,
            "the manifest defines no tools yet; add one, such as [tools.hello] with command = [\"echo\", \"hello\"]".into(),
        );
    }
    let notify = c.notify_targets(raw.notify);
    c.notify_names = notify.keys().cloned().collect();
    let mut tools = IndexMap::new();
    for entry in raw.tools {
        if let Some(tool) = c.tool(entry, &declared) {
            tools.insert(tool.id.clone(), tool);
        }
    }
    Manifest {
        notify,
        title,
        server,
        auth,
        tools,
    }
}

/// The permission bits of a secret file when users other than its owner may open it.
fn open_to_others(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then_some(mode)
}

/// Every user and group name the manifest declares, valid or not: an `allow` entry that
/// names a user whose hash is broken is not also "unknown".
#[derive(Default)]
struct Declared {
    users: Vec<String>,
    groups: BTreeSet<String>,
    /// Forward auth: users and groups live in the proxy, so any name may be allowed.
    open: bool,
}

struct Checker<'a> {
    /// The file being checked (the manifest; the users file while its users are checked).
    source: Arc<Source>,
    base_dir: &'a Path,
    diags: &'a mut Diagnostics,
    /// The current tool's `options_from` and `show_if`, kept from its arguments until
    /// all of them are known (`dynamic.rs`).
    dynamic: Vec<dynamic::RawDynamic>,
    /// The `[notify.NAME]` targets that are valid, for the tools' `notify`.
    notify_names: Vec<String>,
}

impl Checker<'_> {
    fn error(&mut self, span: Range<usize>, message: String) {
        self.diags.error(&self.source, Some(span), message);
    }

    fn error_help(&mut self, span: Range<usize>, message: String, help: String) {
        self.diags
            .error_help(&self.source, Some(span), message, help);
    }

    fn warning(&mut self, span: Range<usize>, message: String) {
        self.diags.warning(&self.source, Some(span), message);
    }

    /// Whether `name` follows `rule`; if not, an error that says what it may use.
    fn name_follows(&mut self, rule: &super::names::NameRule, name: &Spanned<String>) -> bool {
        let ok = rule.allows(name.get_ref());
        if !ok {
            let message = format!(
                "{} {} may only use {}",
                rule.what,
                quoted(name.get_ref()),
                rule.describe()
            );
            self.error(name.span(), message);
        }
        ok
    }

    /// A path from the manifest, taken relative to the manifest's folder.
    fn path(&self, value: &str) -> PathBuf {
        self.base_dir.join(value)
    }

    /// A secret from a file only its owner can read (trailing newline dropped).
    pub(super) fn private_file(&mut self, file: &Spanned<String>, what: &str) -> Option<String> {
        let path = self.path(file.get_ref());
        match std::fs::read_to_string(&path) {
            Err(e) => {
                self.error(
                    file.span(),
                    format!(
                        "cannot read {what} {}: {}",
                        quoted(file.get_ref()),
                        io_reason(&e)
                    ),
                );
                None
            }
            Ok(text) => match open_to_others(&path) {
                Some(mode) => {
                    self.error(
                        file.span(),
                        format!(
                            "other users can read {what} {} (mode {mode:o}); run `chmod 600 {}`",
                            quoted(file.get_ref()),
                            path.display()
                        ),
                    );
                    None
                }
                None => Some(text.trim_end_matches(['\n', '\r']).to_string()),
            },
        }
    }

    /// A path that must name a readable file.
    fn readable_file(&mut self, value: &Spanned<String>, what: &str) -> PathBuf {
        let path = self.path(value.get_ref());
        if let Err(e) = std::fs::File::open(&path) {
            self.error(
                value.span(),
                format!(
                    "cannot read {what} {}: {}",
                    quoted(value.get_ref()),
                    io_reason(&e)
                ),
            );
        }
        path
    }

    fn duration(
        &mut self,
        value: Option<Spanned<String>>,
        key: &str,
        default: Duration,
    ) -> Duration {
        let Some(value) = value else { return default };
        match humantime::parse_duration(value.get_ref()) {
            Ok(d) if !d.is_zero() => d,
            Ok(_) => {
                self.error(value.span(), format!("`{key}` must be longer than zero"));
                default
            }
            Err(e) => {
                let why = match e {
                    humantime::DurationError::UnknownUnit { unit, .. } => {
                        format!(" (unknown unit {unit:?})")
                    }
                    _ => String::new(),
                };
                self.error_help(
                    value.span(),
                    format!("`{key}` {} is not a duration{why}", quoted(value.get_ref())),
                    "write a number and a unit, such as \"90s\", \"10m\", \"12h\" or \"14d\""
                        .into(),
                );
                default
            }
        }
    }

    fn size(&mut self, value: Option<Spanned<String>>, key: &str, default: u64) -> u64 {
        let Some(value) = value else { return default };
        match parse_size::parse_size(value.get_ref()) {
            Ok(n) if n > 0 => n,
            Ok(_) => {
                self.error(value.span(), format!("`{key}` must be larger than zero"));
                default
            }
            Err(_) => {
                self.error_help(
                    value.span(),
                    format!("`{key}` {} is not a size", quoted(value.get_ref())),
                    "write a number and a unit, such as \"512KB\", \"10MB\" or \"1GiB\"".into(),
                );
                default
            }
        }
    }
}
