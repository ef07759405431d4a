//! Second pass: the raw manifest's meaning. Every check reports into the diagnostics and
//! carries on, so one run finds every problem: unknown types and placeholders (with
//! did-you-mean), defaults that break their own constraints, `min > max`, bad regexes,
//! plain-text or weak password hashes, `allow` entries naming nobody, unreadable folders,
//! durations and sizes that do not parse. A `Manifest` comes out either way; the caller
//! throws it away when there were errors.

use std::collections::{BTreeSet, HashMap};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use indexmap::IndexMap;
use toml::Spanned;

use super::arg::{self, Arg, Bounds, Kind, Pattern, Temporal, TextRules, Value};
use super::decode::{self, RawManifest, RawToolEntry, RawUserEntry};
use super::diagnostic::{Diagnostics, Source, quoted, suggestion, tick};
use super::names;
use super::raw::{RawArg, RawAuth, RawCommand, RawServer};
use super::template::{Template, is_name};
use super::{
    ApiToken, Auth, DEFAULT_MAX_OUTPUT, DEFAULT_MAX_UPLOAD, DEFAULT_SESSION_IDLE,
    DEFAULT_SESSION_TTL, DEFAULT_THROTTLE, DEFAULT_TIMEOUT, Manifest, Principal, Server, Throttle,
    TlsFiles, Tool, User, ZERO_CONFIG_USER, io_reason,
};
use crate::password;

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
    let mut tools = IndexMap::new();
    for entry in raw.tools {
        if let Some(tool) = c.tool(entry, &declared) {
            tools.insert(tool.id.clone(), tool);
        }
    }
    Manifest {
        title,
        server,
        auth,
        tools,
    }
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

    /// A path from the manifest, taken relative to the manifest's folder.
    fn path(&self, value: &str) -> PathBuf {
        self.base_dir.join(value)
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

    // ---- [server] ----

    fn server(&mut self, raw: RawServer) -> Server {
        if let Some(host) = &raw.host
            && host.get_ref() != "localhost"
            && host.get_ref().parse::<std::net::IpAddr>().is_err()
        {
            self.error(
                host.span(),
                format!(
                    "`host` must be an IP address such as \"127.0.0.1\" or \"0.0.0.0\", or \"localhost\"; got {}",
                    quoted(host.get_ref())
                ),
            );
        }
        let base_path = match &raw.base_path {
            None => "/".to_string(),
            Some(bp) => match normalise_base_path(bp.get_ref()) {
                Ok(p) => p,
                Err(why) => {
                    self.error(bp.span(), format!("`base_path` {why}"));
                    "/".into()
                }
            },
        };
        let tls = match (&raw.tls_cert, &raw.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: self.readable_file(cert, "the TLS certificate"),
                key: self.readable_file(key, "the TLS key"),
            }),
            (Some(one), None) | (None, Some(one)) => {
                self.error_help(
                    one.span(),
                    "`tls_cert` and `tls_key` go together; only one is set".into(),
                    "`ftw cert --self-signed` writes both files and prints the lines to use".into(),
                );
                None
            }
            (None, None) => None,
        };
        let audit_log = raw.audit_log.as_ref().map(|f| {
            let path = self.path(f.get_ref());
            let folder_ok = path.parent().is_some_and(|p| p.is_dir());
            if !folder_ok {
                self.error(
                    f.span(),
                    format!(
                        "the folder of `audit_log` {} does not exist",
                        quoted(f.get_ref())
                    ),
                );
            }
            path
        });
        let mut trusted_proxies = Vec::new();
        for entry in raw.trusted_proxies.iter().flatten() {
            let text = entry.get_ref();
            match parse_net(text) {
                Some(net) => trusted_proxies.push(net),
                None => self.error(
                    entry.span(),
                    format!(
                        "`trusted_proxies` entry {} is not an address or a network such as \"127.0.0.1\" or \"10.0.0.0/8\"",
                        quoted(text)
                    ),
                ),
            }
        }
        let mut metrics_allow = Vec::new();
        for entry in raw.metrics_allow.iter().flatten() {
            match parse_net(entry.get_ref()) {
                Some(net) => metrics_allow.push(net),
                None => self.error(
                    entry.span(),
                    format!(
                        "`metrics_allow` entry {} is not an address or a network such as \"127.0.0.1\" or \"10.0.0.0/8\"",
                        quoted(entry.get_ref())
                    ),
                ),
            }
        }
        let metrics_token = raw
            .metrics_token
            .as_ref()
            .and_then(|t| self.token_hash(t, "metrics_token"));
        Server {
            metrics_allow,
            metrics_token,
            host: raw.host.map(Spanned::into_inner),
            port: raw.port.map(Spanned::into_inner),
            base_path,
            tls,
            audit_log,
            trusted_proxies,
        }
    }

    // ---- [auth] ----

    /// The auth settings, and every user and group name declared. `proxies`: whether
    /// `[server] trusted_proxies` names any (forward auth needs them).
    fn auth(
        &mut self,
        raw: RawAuth,
        users: Option<Vec<RawUserEntry>>,
        proxies: bool,
    ) -> (Auth, Declared) {
        let session_ttl = self.duration(raw.session_ttl, "session_ttl", DEFAULT_SESSION_TTL);
        let session_idle = self.duration(raw.session_idle, "session_idle", DEFAULT_SESSION_IDLE);
        let secret_key_file = raw
            .secret_key_file
            .as_ref()
            .map(|f| self.readable_file(f, "the secret key file"));

        let mut entries = users.unwrap_or_default();
        if let Some(file) = &raw.users_file {
            entries.extend(self.users_file(file));
        }
        let mut users: IndexMap<String, User> = IndexMap::new();
        let mut declared = Declared::default();
        if entries.is_empty() {
            declared.users.push(ZERO_CONFIG_USER.to_string());
        }
        let mut first_seen: HashMap<String, String> = HashMap::new();
        for entry in entries {
            declared.users.push(entry.name.get_ref().clone());
            declared
                .groups
                .extend(entry.groups.iter().map(|g| g.get_ref().clone()));
            let manifest_source = std::mem::replace(&mut self.source, Arc::clone(&entry.source));
            if let Some(user) = self.user(&entry, &mut first_seen) {
                users.insert(user.name.clone(), user);
            }
            self.source = manifest_source;
        }
        let mut header = |value: Option<Spanned<String>>, key: &str| -> Option<String> {
            let value = value?;
            let valid = !value.get_ref().is_empty()
                && value
                    .get_ref()
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !valid {
                self.error(
                    value.span(),
                    format!("`{key}` must be an HTTP header name such as \"Remote-User\""),
                );
            } else if !proxies {
                self.error_help(
                    value.span(),
                    format!("`{key}` is only believed from trusted proxies, and none are set"),
                    "list the proxy's address in [server] trusted_proxies, e.g. [\"127.0.0.1\"]"
                        .into(),
                );
            }
            Some(value.into_inner())
        };
        let trusted_header = header(raw.trusted_header, "trusted_header");
        let trusted_groups_header = header(raw.trusted_groups_header, "trusted_groups_header");
        // Behind forward auth the proxy knows the users; `allow` may name any of them.
        declared.open = trusted_header.is_some();

        let admins = match raw.admins {
            Some(list) => self.principals(list, "admins", &declared),
            None if users.is_empty() && trusted_header.is_none() => {
                vec![Principal::User(ZERO_CONFIG_USER.into())]
            }
            None => Vec::new(),
        };
        let max_failures = raw
            .max_login_failures
            .map_or(DEFAULT_THROTTLE.max_failures, Spanned::into_inner);
        let throttle = Throttle {
            max_failures,
            window: self.duration(
                raw.login_failure_window,
                "login_failure_window",
                DEFAULT_THROTTLE.window,
            ),
            block: self.duration(
                raw.login_block_time,
                "login_block_time",
                DEFAULT_THROTTLE.block,
            ),
        };
        let mut tokens = Vec::new();
        for (name, token) in &raw.tokens {
            if !names::TOKEN.allows(name.get_ref()) {
                self.error(
                    name.span(),
                    format!(
                        "token name {} may only use {}",
                        quoted(name.get_ref()),
                        names::TOKEN.describe
                    ),
                );
            }
            let user = token.user.get_ref();
            if !declared.users.contains(user) && !declared.open {
                let hint = suggestion(user, declared.users.iter().map(String::as_str), tick);
                self.error(
                    token.user.span(),
                    format!(
                        "token `{}` is for user `{user}`, who is not defined{hint}",
                        name.get_ref()
                    ),
                );
            }
            if let Some(hash) = self.token_hash(&token.hash, "hash") {
                tokens.push(ApiToken {
                    name: name.get_ref().clone(),
                    hash,
                    user: user.clone(),
                });
            }
        }
        let auth = Auth {
            tokens,
            users_file: raw.users_file.as_ref().map(|f| self.path(f.get_ref())),
            secret_key_file,
            session_ttl,
            session_idle,
            users,
            admins,
            throttle,
            trusted_header,
            trusted_groups_header,
        };
        (auth, declared)
    }

    /// `sha256:` and 64 hex digits, as `ftw gen-token` prints; a bare token is refused.
    fn token_hash(&mut self, value: &Spanned<String>, key: &str) -> Option<[u8; 32]> {
        let text = value.get_ref();
        let hex = text.strip_prefix("sha256:");
        let bytes = hex.filter(|h| h.len() == 64).and_then(|h| {
            (0..32)
                .map(|i| u8::from_str_radix(&h[i * 2..i * 2 + 2], 16).ok())
                .collect::<Option<Vec<u8>>>()
        });
        match bytes {
            Some(b) => b.try_into().ok(),
            None => {
                let why = if text.starts_with("ftw_") {
                    "is a token itself; store only its hash"
                } else {
                    "must be \"sha256:\" and 64 hex digits"
                };
                self.error_help(
                    value.span(),
                    format!("`{key}` {why}"),
                    "run `ftw gen-token` and paste the line it prints".into(),
                );
                None
            }
        }
    }

    fn users_file(&mut self, file: &Spanned<String>) -> Vec<RawUserEntry> {
        let path = self.path(file.get_ref());
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                // Named as the user would write it: beside the manifest, as given.
                let beside = Path::new(&self.source.name)
                    .parent()
                    .unwrap_or(Path::new(""));
                let source = Arc::new(Source {
                    name: beside.join(file.get_ref()).display().to_string(),
                    text,
                });
                decode::users_file(&source, self.diags)
            }
            Err(e) => {
                self.error(
                    file.span(),
                    format!(
                        "cannot read the users file {}: {}",
                        quoted(file.get_ref()),
                        io_reason(&e)
                    ),
                );
                Vec::new()
            }
        }
    }

    fn user(
        &mut self,
        entry: &RawUserEntry,
        first_seen: &mut HashMap<String, String>,
    ) -> Option<User> {
        let name = entry.name.get_ref();
        let mut ok = true;
        if !names::USER.allows(name) {
            self.error(
                entry.name.span(),
                format!(
                    "user name {} may only use {}",
                    quoted(name),
                    names::USER.describe
                ),
            );
            ok = false;
        }
        if let Some(other) = first_seen.get(name) {
            self.error(
                entry.name.span(),
                format!("user `{name}` is defined twice (also in {other}); keep one"),
            );
            ok = false;
        } else {
            first_seen.insert(name.clone(), entry.source.name.clone());
        }
        let hash = entry.password.get_ref();
        if !hash.starts_with('$') {
            self.error_help(
                entry.password.span(),
                format!(
                    "the password of `{name}` is in plain text; ftw only stores argon2id hashes"
                ),
                "run `ftw hash-password` and paste the line it prints here".into(),
            );
            ok = false;
        } else if let Err(why) = password::check_hash(hash) {
            self.error_help(
                entry.password.span(),
                format!("the password hash of `{name}` is not usable: {why}"),
                "run `ftw hash-password` to make a new hash".into(),
            );
            ok = false;
        }
        for group in &entry.groups {
            if !names::GROUP.allows(group.get_ref()) {
                self.error(
                    group.span(),
                    format!(
                        "group name {} may only use {}",
                        quoted(group.get_ref()),
                        names::GROUP.describe
                    ),
                );
                ok = false;
            }
        }
        let totp = match &entry.totp {
            None => None,
            Some(secret) => match totp_rs::Secret::try_from_base32(secret.get_ref().trim()) {
                Ok(bytes) if bytes.len() >= 16 => Some(bytes.to_vec()),
                Ok(_) => {
                    self.error_help(
                        secret.span(),
                        format!("the TOTP secret of `{name}` is shorter than 128 bits"),
                        format!("run `ftw totp-setup {name}` to make a new one"),
                    );
                    ok = false;
                    None
                }
                Err(_) => {
                    self.error_help(
                        secret.span(),
                        format!("the TOTP secret of `{name}` is not base32 (A-Z, 2-7)"),
                        format!("run `ftw totp-setup {name}` and paste the line it prints"),
                    );
                    ok = false;
                    None
                }
            },
        };
        ok.then(|| User {
            name: name.clone(),
            password_hash: hash.clone(),
            groups: entry.groups.iter().map(|g| g.get_ref().clone()).collect(),
            totp,
        })
    }

    // ---- [tools.ID] ----

    fn tool(&mut self, entry: RawToolEntry, declared: &Declared) -> Option<Tool> {
        let id = entry.id.get_ref().clone();
        let mut ok = true;
        if !names::TOOL_ID.allows(&id) {
            self.error(
                entry.id.span(),
                format!(
                    "tool id {} may only use {}, as it is part of the URL",
                    quoted(&id),
                    names::TOOL_ID.describe
                ),
            );
            ok = false;
        }
        let arg_names: Vec<String> = entry
            .args
            .iter()
            .map(|a| a.name.get_ref().clone())
            .collect();
        let args = self.args(&id, entry.args);
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
            .and_then(|c| self.command(c, &args, &arg_names, &workdir));
        let timeout = self.duration(raw.timeout, "timeout", DEFAULT_TIMEOUT);
        let max_output = self.size(raw.max_output, "max_output", DEFAULT_MAX_OUTPUT);
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
            env,
            args: args.into_iter().map(|(_, a)| a).collect(),
        })
    }

    /// Checks `command`: an argv array whose first element is a fixed program and whose
    /// placeholders all name arguments. Returns the program and the templates after it.
    fn command(
        &mut self,
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
                    "`command` must be an array of strings: ftw never runs a shell".into(),
                    format!("write command = [{}]", suggested.join(", ")),
                );
                return None;
            }
            RawCommand::Argv(elements) => elements,
        };
        let Some((program, rest)) = elements.split_first() else {
            self.error(
                raw.span(),
                "`command` is empty; its first element is the program to run".into(),
            );
            return None;
        };
        let mut ok = true;
        for element in elements {
            if element.get_ref().contains('\0') {
                self.error(
                    element.span(),
                    "a `command` element contains a NUL character".into(),
                );
                ok = false;
            }
        }
        if program.get_ref().contains(['{', '}']) {
            self.error(
                program.span(),
                "the program (first element of `command`) must be fixed; a form value cannot choose what runs".into(),
            );
            ok = false;
        }
        if program.get_ref().is_empty() {
            self.error(
                program.span(),
                "the program (first element of `command`) is empty".into(),
            );
            ok = false;
        }
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
        let program = self.program(program, workdir)?;
        Some((program, templates))
    }

    /// A program with a `/` is a path from the workdir and must be executable; a bare name
    /// is looked up on PATH when the tool runs, so a miss now is only a warning.
    fn program(&mut self, program: &Spanned<String>, workdir: &Path) -> Option<PathBuf> {
        let name = program.get_ref();
        if !name.contains('/') {
            if find_on_path(name).is_none() {
                self.warning(
                    program.span(),
                    format!(
                        "`{name}` is not on this PATH now; the tool fails until it is installed"
                    ),
                );
            }
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
                        path.display(),
                        io_reason(&e)
                    ),
                );
                None
            }
        }
    }

    /// The span of `at` (a byte range inside the string value) in the source, when the
    /// string is written without escapes; otherwise the whole string.
    fn inner_span(&self, element: &Spanned<String>, at: Range<usize>) -> Range<usize> {
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

    fn allow(
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

    /// A list of user names and `@groups`, each of which must exist.
    fn principals(
        &mut self,
        list: Spanned<Vec<Spanned<String>>>,
        key: &str,
        declared: &Declared,
    ) -> Vec<Principal> {
        let user_names: Vec<&str> = declared.users.iter().map(String::as_str).collect();
        let groups = &declared.groups;
        let mut principals = Vec::new();
        for entry in list.into_inner() {
            let text = entry.get_ref();
            if let Some(group) = text.strip_prefix('@') {
                if !groups.contains(group) && !declared.open {
                    let hint = suggestion(group, groups.iter().map(String::as_str), |s| {
                        format!("`@{s}`")
                    });
                    self.error_help(
                        entry.span(),
                        format!("`{key}` names group `@{group}`, but no user is in it{hint}"),
                        "groups are made by listing them in a user's `groups`".into(),
                    );
                }
                principals.push(Principal::Group(group.to_string()));
            } else {
                if !user_names.contains(&text.as_str()) && !declared.open {
                    let hint = suggestion(text, user_names.iter().copied(), tick);
                    self.error(
                        entry.span(),
                        format!("`allow` names user `{text}`, who is not defined{hint}"),
                    );
                }
                principals.push(Principal::User(text.clone()));
            }
        }
        principals
    }

    fn env(&mut self, raw: IndexMap<Spanned<String>, Spanned<String>>) -> IndexMap<String, String> {
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

    // ---- [tools.ID.args.NAME] ----

    /// The arguments that are valid, with the span of their name.
    fn args(&mut self, tool: &str, entries: Vec<decode::RawArgEntry>) -> Vec<(Range<usize>, Arg)> {
        let mut args: Vec<(Range<usize>, Arg)> = Vec::new();
        for entry in entries {
            let name = entry.name.get_ref();
            if !is_name(name) || name.len() > 64 {
                self.error(
                    entry.name.span(),
                    format!("argument name {} must start with a letter and use only letters, digits and `_` (at most 64)", quoted(name)),
                );
                continue;
            }
            if let Some((_, other)) = args.iter().find(|(_, a)| a.name.eq_ignore_ascii_case(name)) {
                self.error(
                    entry.name.span(),
                    format!("arguments `{}` and `{name}` of `{tool}` differ only in case; both would be FTW_ARG_{}", other.name, name.to_ascii_uppercase()),
                );
                continue;
            }
            if let Some(raw) = entry.arg
                && let Some(arg) = self.arg(name, raw)
            {
                args.push((entry.name.span(), arg));
            }
        }
        args
    }

    fn arg(&mut self, name: &str, raw: RawArg) -> Option<Arg> {
        let kind_span = raw.kind.as_ref()?.span();
        let type_name = raw.kind.as_ref()?.get_ref().as_str();
        if !arg::TYPE_NAMES.contains(&type_name) {
            let hint = arg::suggest_type(type_name)
                .map(|g| format!("; did you mean {}?", quoted(g)))
                .unwrap_or_default();
            self.error_help(
                kind_span,
                format!("unknown type {}{hint}", quoted(type_name)),
                format!("types: {}", arg::TYPE_NAMES.join(", ")),
            );
            return None;
        }
        let before = self.diags.error_count();
        self.keys_fit_type(type_name, &raw);
        let kind = self.kind(type_name, &raw);
        let required = match (&raw.required, &kind) {
            (Some(r), _) => *r.get_ref(),
            (None, Kind::Bool { .. }) => false,
            (None, _) => raw.default.is_none(),
        };
        let mut arg = Arg {
            name: name.to_string(),
            label: raw.label.clone().unwrap_or_else(|| label_from_name(name)),
            help: raw.help.clone(),
            placeholder: raw.placeholder.clone(),
            required,
            default: None,
            kind,
        };
        // A default is only judged against constraints that are themselves sound.
        if let Some(default) = &raw.default
            && self.diags.error_count() == before
        {
            arg.default = self.default(&arg, default);
        }
        (self.diags.error_count() == before).then_some(arg)
    }

    /// Refuses keys that mean nothing for this type (`options` on an `int`, ...).
    fn keys_fit_type(&mut self, type_name: &str, raw: &RawArg) {
        const TEXT: &[&str] = &["text", "textarea", "password", "email", "url"];
        const RANGED: &[&str] = &["int", "float", "multiselect", "date", "time", "datetime"];
        type KeyUse<'a> = (&'a str, Option<Range<usize>>, &'a [&'a str]);
        let spans: [KeyUse; 10] = [
            (
                "min_length",
                raw.min_length.as_ref().map(Spanned::span),
                TEXT,
            ),
            (
                "max_length",
                raw.max_length.as_ref().map(Spanned::span),
                TEXT,
            ),
            ("pattern", raw.pattern.as_ref().map(Spanned::span), TEXT),
            ("min", raw.min.as_ref().map(Spanned::span), RANGED),
            ("max", raw.max.as_ref().map(Spanned::span), RANGED),
            (
                "step",
                raw.step.as_ref().map(Spanned::span),
                &["int", "float"],
            ),
            (
                "options",
                raw.options.as_ref().map(Spanned::span),
                &["select", "multiselect"],
            ),
            ("flag", raw.flag.as_ref().map(Spanned::span), &["bool"]),
            ("accept", raw.accept.as_ref().map(Spanned::span), &["file"]),
            (
                "max_size",
                raw.max_size.as_ref().map(Spanned::span),
                &["file"],
            ),
        ];
        for (key, span, types) in spans {
            if let Some(span) = span
                && !types.contains(&type_name)
            {
                let hint = match key {
                    "min" | "max" if TEXT.contains(&type_name) => {
                        format!("; did you mean `{key}_length`?")
                    }
                    _ => String::new(),
                };
                self.error_help(
                    span,
                    format!("`{key}` does not apply to type {}{hint}", quoted(type_name)),
                    format!("`{key}` applies to: {}", types.join(", ")),
                );
            }
        }
        if raw.default.is_some() && type_name == "file" {
            let span = raw.default.as_ref().map(Spanned::span).unwrap_or_default();
            self.error(span, "a `file` argument cannot have a default".into());
        }
    }

    fn kind(&mut self, type_name: &str, raw: &RawArg) -> Kind {
        match type_name {
            "text" => Kind::Text(self.text_rules(raw)),
            "textarea" => Kind::Textarea(self.text_rules(raw)),
            "password" => Kind::Password(self.text_rules(raw)),
            "email" => Kind::Email(self.text_rules(raw)),
            "url" => Kind::Url(self.text_rules(raw)),
            "int" => {
                let min = self.int(&raw.min, "min");
                let max = self.int(&raw.max, "max");
                self.ordered(&raw.max, min, max);
                let step = self.int(&raw.step, "step");
                if let (Some(s), Some(span)) = (step, raw.step.as_ref())
                    && s <= 0
                {
                    self.error(span.span(), "`step` must be larger than zero".into());
                }
                Kind::Int { min, max, step }
            }
            "float" => {
                let min = self.float(&raw.min, "min");
                let max = self.float(&raw.max, "max");
                self.ordered(&raw.max, min, max);
                let step = self.float(&raw.step, "step");
                if let (Some(s), Some(span)) = (step, raw.step.as_ref())
                    && s <= 0.0
                {
                    self.error(span.span(), "`step` must be larger than zero".into());
                }
                Kind::Float { min, max, step }
            }
            "bool" => {
                if let Some(flag) = &raw.flag
                    && (flag.get_ref().is_empty() || flag.get_ref().contains('\0'))
                {
                    self.error(
                        flag.span(),
                        "`flag` must be a non-empty string such as \"--verbose\"".into(),
                    );
                }
                Kind::Bool {
                    flag: raw.flag.as_ref().map(|f| f.get_ref().clone()),
                }
            }
            "select" => Kind::Select {
                options: self.options(raw),
            },
            "multiselect" => {
                let options = self.options(raw);
                let min = self.count(&raw.min, "min", options.len());
                let max = self.count(&raw.max, "max", options.len());
                self.ordered(&raw.max, min, max);
                Kind::Multiselect { options, min, max }
            }
            "date" => Kind::Date(self.bounds(raw, Temporal::Date)),
            "time" => Kind::Time(self.bounds(raw, Temporal::Time)),
            "datetime" => Kind::Datetime(self.bounds(raw, Temporal::Datetime)),
            "color" => Kind::Color,
            _ => Kind::File {
                accept: raw.accept.as_ref().map(|a| a.get_ref().clone()),
                max_size: self.size(raw.max_size.clone(), "max_size", DEFAULT_MAX_UPLOAD),
            },
        }
    }

    fn text_rules(&mut self, raw: &RawArg) -> TextRules {
        let min_length = raw.min_length.as_ref().map(|s| *s.get_ref());
        let max_length = raw.max_length.as_ref().map(|s| *s.get_ref());
        self.ordered(&raw.max_length, min_length, max_length);
        let pattern = raw
            .pattern
            .as_ref()
            .and_then(|p| match Pattern::new(p.get_ref()) {
                Ok(pattern) => Some(pattern),
                Err(e) => {
                    self.error(
                        p.span(),
                        format!(
                            "`pattern` is not a valid regular expression: {}",
                            regex_reason(&e)
                        ),
                    );
                    None
                }
            });
        TextRules {
            min_length,
            max_length,
            pattern,
        }
    }

    /// Reports `min > max` at the `max` value.
    fn ordered<T: PartialOrd + std::fmt::Display, S>(
        &mut self,
        max_raw: &Option<Spanned<S>>,
        min: Option<T>,
        max: Option<T>,
    ) {
        if let (Some(lo), Some(hi), Some(span)) = (min, max, max_raw.as_ref())
            && lo > hi
        {
            self.error(
                span.span(),
                format!("the maximum {hi} is below the minimum {lo}"),
            );
        }
    }

    fn int(&mut self, value: &Option<Spanned<toml::Value>>, key: &str) -> Option<i64> {
        let value = value.as_ref()?;
        match value.get_ref() {
            toml::Value::Integer(n) => Some(*n),
            other => {
                self.error(
                    value.span(),
                    format!("`{key}` must be a whole number, not {}", other.type_str()),
                );
                None
            }
        }
    }

    fn float(&mut self, value: &Option<Spanned<toml::Value>>, key: &str) -> Option<f64> {
        let value = value.as_ref()?;
        match value.get_ref() {
            toml::Value::Integer(n) => Some(*n as f64),
            toml::Value::Float(x) if x.is_finite() => Some(*x),
            other => {
                self.error(
                    value.span(),
                    format!("`{key}` must be a finite number, not {}", other.type_str()),
                );
                None
            }
        }
    }

    fn count(
        &mut self,
        value: &Option<Spanned<toml::Value>>,
        key: &str,
        options: usize,
    ) -> Option<u32> {
        let n = self.int(value, key)?;
        let span = value.as_ref().map(Spanned::span).unwrap_or_default();
        match u32::try_from(n) {
            Ok(n) if n as usize <= options => Some(n),
            _ => {
                self.error(
                    span,
                    format!("`{key}` counts chosen options: between 0 and {options}"),
                );
                None
            }
        }
    }

    fn options(&mut self, raw: &RawArg) -> Vec<String> {
        let Some(options) = &raw.options else {
            if let Some(kind) = &raw.kind {
                self.error(
                    kind.span(),
                    format!(
                        "type {} needs `options`, such as options = [\"a\", \"b\"]",
                        quoted(kind.get_ref())
                    ),
                );
            }
            return Vec::new();
        };
        if options.get_ref().is_empty() {
            self.error(
                options.span(),
                "`options` is empty; list at least one choice".into(),
            );
        }
        let mut list: Vec<String> = Vec::new();
        for option in options.get_ref() {
            let text = option.get_ref();
            if text.is_empty() || text.chars().any(char::is_control) {
                self.error(
                    option.span(),
                    "an option must be non-empty text without control characters".into(),
                );
            } else if list.contains(text) {
                self.error(
                    option.span(),
                    format!("option {} is listed twice", quoted(text)),
                );
            } else {
                list.push(text.clone());
            }
        }
        list
    }

    fn bounds(&mut self, raw: &RawArg, temporal: Temporal) -> Bounds {
        let mut bound = |value: &Option<Spanned<toml::Value>>, key: &str| -> Option<String> {
            let value = value.as_ref()?;
            let text = match value.get_ref() {
                toml::Value::String(s) => s.clone(),
                toml::Value::Datetime(d) => d.to_string(),
                other => other.to_string(),
            };
            let normal = temporal.normalise(&text);
            if normal.is_none() {
                self.error(
                    value.span(),
                    format!(
                        "`{key}` {} is not in the ISO form this type uses",
                        quoted(&text)
                    ),
                );
            }
            normal
        };
        let min = bound(&raw.min, "min");
        let max = bound(&raw.max, "max");
        self.ordered(&raw.max, min.clone(), max.clone());
        Bounds { min, max }
    }

    /// The default, checked by the same code that checks submitted values.
    fn default(&mut self, arg: &Arg, default: &Spanned<toml::Value>) -> Option<Value> {
        let inputs: Vec<String> = match (default.get_ref(), &arg.kind) {
            (toml::Value::Boolean(b), Kind::Bool { .. }) => vec![b.to_string()],
            (_, Kind::Bool { .. }) => {
                self.error(
                    default.span(),
                    "the default of a `bool` is true or false".into(),
                );
                return None;
            }
            (toml::Value::Array(items), Kind::Multiselect { .. }) => {
                let mut inputs = Vec::new();
                for item in items {
                    match item {
                        toml::Value::String(s) => inputs.push(s.clone()),
                        other => inputs.push(other.to_string()),
                    }
                }
                inputs
            }
            (_, Kind::Multiselect { .. }) => {
                self.error(
                    default.span(),
                    "the default of a `multiselect` is an array of options, such as [\"a\"]".into(),
                );
                return None;
            }
            (toml::Value::Array(_) | toml::Value::Table(_), _) => {
                self.error(
                    default.span(),
                    format!("the default of a `{}` is a single value", arg.kind.name()),
                );
                return None;
            }
            (toml::Value::String(s), _) => vec![s.clone()],
            (toml::Value::Datetime(d), _) => vec![d.to_string()],
            (other, _) => vec![other.to_string()],
        };
        // Checked as if the argument were required: a default of "" means nothing.
        let mut strict = arg.clone();
        strict.required = !matches!(arg.kind, Kind::Bool { .. } | Kind::Multiselect { .. });
        match strict.parse(&inputs) {
            Ok(value) => Some(value),
            Err(why) => {
                let shown = match default.get_ref() {
                    toml::Value::String(s) => quoted(s),
                    other => other.to_string(),
                };
                self.error(
                    default.span(),
                    format!("the default {shown} breaks its own rule: it {why}"),
                );
                None
            }
        }
    }
}

/// An address ("127.0.0.1", "::1") or a network ("10.0.0.0/8").
fn parse_net(text: &str) -> Option<ipnet::IpNet> {
    text.parse::<ipnet::IpNet>().ok().or_else(|| {
        text.parse::<std::net::IpAddr>()
            .ok()
            .map(ipnet::IpNet::from)
    })
}

fn normalise_base_path(text: &str) -> Result<String, String> {
    if !text.starts_with('/') {
        return Err(format!(
            "must start with `/`, such as \"/tools\"; got {}",
            quoted(text)
        ));
    }
    let trimmed = text.trim_end_matches('/');
    let valid = trimmed.split('/').skip(1).all(|seg| {
        !seg.is_empty()
            && seg != "."
            && seg != ".."
            && seg
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c))
    });
    if !valid {
        return Err(
            "may only hold `/`-separated segments of letters, digits, `-`, `.`, `_` and `~`".into(),
        );
    }
    Ok(if trimmed.is_empty() {
        "/".into()
    } else {
        trimmed.into()
    })
}

/// "db_name" -> "Db name".
fn label_from_name(name: &str) -> String {
    let spaced = name.replace('_', " ");
    let mut chars = spaced.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => spaced,
    }
}

/// The regex crate's message, without its own multi-line snippet.
fn regex_reason(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .rev()
        .find(|l| l.starts_with("error:"))
        .map(|l| l.trim_start_matches("error:").trim().to_string())
        .unwrap_or(text)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_paths_are_normalised_or_refused() {
        assert_eq!(normalise_base_path("/"), Ok("/".into()));
        assert_eq!(normalise_base_path("/tools/"), Ok("/tools".into()));
        assert!(normalise_base_path("tools").is_err());
        assert!(normalise_base_path("/a/../b").is_err());
        assert!(normalise_base_path("//evil").is_err());
        assert!(normalise_base_path("/a b").is_err());
    }

    #[test]
    fn labels_come_from_names() {
        assert_eq!(label_from_name("db_name"), "Db name");
    }
}
