//! The manifest: what `tools.toml` says, checked. `load` reads the file (and its users
//! file), runs the two passes (`decode` keeps positions, `validate` checks meaning), and
//! returns either a valid `Manifest` with its warnings, or every diagnostic at once.
//! Everything after loading works with these types only and can trust them: paths are
//! absolute, durations parsed, regexes compiled, every placeholder names an argument.

pub mod arg;
mod decode;
pub mod diagnostic;
pub mod names;
mod raw;
pub mod template;
mod validate;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use indexmap::IndexMap;

pub use arg::{Arg, Kind, Value};
use diagnostic::{Diagnostics, Source};
pub use template::Template;
pub use validate::host_pattern;

/// A valid manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// `[notify.NAME]` targets, by name.
    pub notify: IndexMap<String, NotifyTarget>,
    /// The page header; defaults to "ftw".
    pub title: String,
    pub server: Server,
    pub auth: Auth,
    /// Tools in the order the manifest lists them, by id.
    pub tools: IndexMap<String, Tool>,
}

/// `[server]`. Paths are absolute (relative ones are taken from the manifest's folder).
#[derive(Debug, Clone, Default)]
pub struct Server {
    pub host: Option<String>,
    pub port: Option<u16>,
    /// "/" or a path such as "/tools", without a trailing slash.
    pub base_path: String,
    pub tls: Option<TlsFiles>,
    pub audit_log: Option<PathBuf>,
    /// Peers whose `X-Forwarded-*` headers (and trusted identity header) are believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Host names ftw answers to besides its own (lower case; `*` for any).
    pub allowed_hosts: Vec<String>,
    /// `/metrics` answers these addresses ...
    pub metrics_allow: Vec<ipnet::IpNet>,
    /// ... and requests with this bearer token (its SHA-256). Neither set: no /metrics.
    pub metrics_token: Option<[u8; 32]>,
    /// The state folder (flags and the environment come first).
    pub state_dir: Option<PathBuf>,
    /// A PostgreSQL URL (without its password) and the file with the password.
    pub database: Option<String>,
    pub database_password_file: Option<PathBuf>,
    /// Retention: finished runs kept, their age, the state folder's size.
    pub keep_runs: Option<u32>,
    pub keep_for: Option<Duration>,
    pub max_state_size: Option<u64>,
    /// Runs one user may have queued or running at once.
    pub max_runs_per_user: Option<u16>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// `[auth]`.
#[derive(Debug, Clone)]
pub struct Auth {
    pub secret_key_file: Option<PathBuf>,
    /// `users_file`, resolved (hot reload watches it too).
    pub users_file: Option<PathBuf>,
    pub session_ttl: Duration,
    pub session_idle: Duration,
    /// Users from `[auth.users]` and the users file. Empty when neither exists: then
    /// `ftw serve` makes a one-time `admin` account.
    pub users: IndexMap<String, User>,
    /// Users and `@groups` who see and may cancel everyone's runs. The one-time `admin`
    /// of a manifest without users is one.
    pub admins: Vec<Principal>,
    pub throttle: Throttle,
    /// Forward auth: the header a trusted proxy puts the signed-in user in.
    pub trusted_header: Option<String>,
    /// ... and the comma-separated groups.
    pub trusted_groups_header: Option<String>,
    /// API tokens (`Authorization: Bearer`), by name.
    pub tokens: Vec<ApiToken>,
    /// OpenID Connect providers (`[auth.oidc.NAME]`), in the manifest's order.
    pub oidc: Vec<OidcProvider>,
    /// `[auth.ldap]`: directory users sign in on the password form.
    pub ldap: Option<Ldap>,
    /// Users of `[auth.users]` with a passkey may sign in with it alone.
    pub passkey_sign_in: bool,
    /// `[auth.github]`: GitHub users of the allowed organisations and teams.
    pub github: Option<GitHub>,
}

/// `[auth.github]`: a GitHub OAuth app. A user's organisations become groups (`@org`),
/// and their teams too (`@org/team`).
#[derive(Debug, Clone)]
pub struct GitHub {
    pub client_id: String,
    pub client_secret: Secret,
    /// Organisation logins, lower case.
    pub allowed_orgs: Vec<String>,
    /// `org/team` (team slugs), lower case.
    pub allowed_teams: Vec<String>,
    /// The web address (`https://github.com`, or a GitHub Enterprise server).
    pub url: String,
    /// The REST API (`https://api.github.com`, or `URL/api/v3`).
    pub api_url: String,
    pub label: String,
}

/// `[auth.ldap]`: users not in `[auth.users]` are looked up in this directory and
/// signed in by binding as them with the password they typed.
#[derive(Debug, Clone)]
pub struct Ldap {
    /// `ldaps://` or `ldap://` (then `starttls`, or a loopback host).
    pub url: String,
    pub starttls: bool,
    /// Trusted besides the system's roots (a company CA).
    pub ca_file: Option<PathBuf>,
    /// The account ftw searches with; `None`: an anonymous search.
    pub bind_dn: Option<String>,
    pub bind_password: Secret,
    pub base_dn: String,
    /// With `{username}` where the (escaped) typed name goes.
    pub user_filter: String,
    /// The attribute whose value becomes the ftw user name.
    pub username_attribute: String,
    /// Where to search the user's groups (`group_filter`, with `{dn}`); `None`: the
    /// user's `memberOf`.
    pub group_base_dn: Option<String>,
    pub group_filter: String,
    /// `None`: anyone the user filter finds may sign in.
    pub allowed_groups: Option<Vec<String>>,
    pub map: IndexMap<String, String>,
}

/// `[auth.oidc.NAME]`: an OpenID Connect provider whose users may sign in.
#[derive(Debug, Clone)]
pub struct OidcProvider {
    /// The key in `[auth.oidc]`, part of the callback URL and of `via` (`oidc:NAME`).
    pub name: String,
    /// The issuer exactly as the provider writes it in its tokens.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Secret,
    /// Always holds `openid`.
    pub scopes: Vec<String>,
    /// The text of the login page's button.
    pub label: String,
    pub admit: Allowlist,
    /// The claim that lists the user's groups.
    pub groups_claim: String,
    /// The claim that names the user; `None`: `preferred_username`, else `email`.
    pub username_claim: Option<String>,
    /// The provider's group names to ftw's; groups not listed keep their name.
    pub map: IndexMap<String, String>,
}

/// Who of an identity provider's users may sign in: anyone who matches one entry.
/// Emails and domains are kept in lower case; they match only a verified email.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allowlist {
    pub emails: Vec<String>,
    pub domains: Vec<String>,
    /// ftw group names (after `map`).
    pub groups: Vec<String>,
}

/// A secret read from the manifest or a file; `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// An API token: only its SHA-256 is known to ftw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    pub name: String,
    pub hash: [u8; 32],
    /// Whose rights the token has.
    pub user: String,
}

/// Login throttling: `max_failures` failed sign-ins (or 2FA codes) within `window`
/// block that user name, and separately that client address, for `block`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttle {
    /// 0 switches throttling off.
    pub max_failures: u32,
    pub window: Duration,
    pub block: Duration,
}

pub const DEFAULT_THROTTLE: Throttle = Throttle {
    max_failures: 5,
    window: Duration::from_secs(120),
    block: Duration::from_secs(300),
};

impl Auth {
    /// Whether anyone can sign in without a password of ftw's own: a proxy in front
    /// (forward auth) or an identity provider.
    pub fn has_outside_users(&self) -> bool {
        self.trusted_header.is_some()
            || !self.oidc.is_empty()
            || self.ldap.is_some()
            || self.github.is_some()
    }

    pub fn oidc_provider(&self, name: &str) -> Option<&OidcProvider> {
        self.oidc.iter().find(|p| p.name == name)
    }

    pub fn is_admin(&self, user: &User) -> bool {
        Principal::matches_any(&self.admins, &user.name, &user.groups)
    }
}

pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(14 * 24 * 3600);
pub const DEFAULT_SESSION_IDLE: Duration = Duration::from_secs(12 * 3600);
/// The user ftw creates when the manifest has none.
pub const ZERO_CONFIG_USER: &str = "admin";

#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    /// An argon2id PHC string that `password::check_hash` accepted.
    pub password_hash: String,
    pub groups: Vec<String>,
    /// The TOTP secret (raw bytes) when the user signs in with a second factor.
    pub totp: Option<Vec<u8>>,
}

impl User {
    /// A user ftw did not read from the manifest (named by forward auth, or the user of
    /// an API token who has no password): no password, no groups, no second factor.
    pub fn synthesized(name: &str) -> User {
        User {
            name: name.to_string(),
            password_hash: String::new(),
            groups: Vec::new(),
            totp: None,
        }
    }
}

/// One tool: a command with typed arguments, shown as one form.
#[derive(Debug, Clone)]
pub struct Tool {
    /// The key in `[tools]`, also the URL slug.
    pub id: String,
    pub title: String,
    pub description: Option<String>,
    pub group: Option<String>,
    /// What to run: a bare name (looked up on PATH) or an absolute path.
    pub program: PathBuf,
    /// `command` after the program, one template per element.
    pub args_template: Vec<Template>,
    pub workdir: PathBuf,
    pub timeout: Duration,
    /// `None`: every signed-in user may run it.
    pub allow: Option<Vec<Principal>>,
    pub max_concurrent: Option<u32>,
    pub max_output: u64,
    /// How stderr is captured.
    pub stderr: StderrMode,
    pub env: IndexMap<String, String>,
    /// In the order the manifest lists them.
    pub args: Vec<Arg>,
    /// `[tools.ID.schedule.NAME]`, in the order written.
    pub schedules: Vec<Schedule>,
    /// `[tools.ID.webhook]`
    pub webhook: Option<Webhook>,
    /// `[notify.NAME]` targets told when a run ends as `notify_on` says.
    pub notify: Vec<String>,
    pub notify_on: NotifyOn,
}

/// Which endings of a run are told to a tool's `notify` targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotifyOn {
    pub success: bool,
    /// Failed, timed out, could not start, interrupted.
    pub failure: bool,
}

/// `[notify.NAME]`: where ftw says that a run ended.
#[derive(Clone)]
pub enum NotifyTarget {
    /// POST the run as JSON, signed when a secret is given.
    Webhook {
        url: String,
        secret: Option<Vec<u8>>,
    },
    Mail {
        /// `smtps://` or `smtp://` (STARTTLS unless loopback), as written.
        smtp: String,
        from: String,
        to: Vec<String>,
        credentials: Option<(String, String)>,
    },
}

impl std::fmt::Debug for NotifyTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotifyTarget::Webhook { url, .. } => write!(f, "Webhook({})", url_origin(url)),
            NotifyTarget::Mail { smtp, to, .. } => {
                write!(f, "Mail({} -> {to:?})", url_origin(smtp))
            }
        }
    }
}

/// A URL as logs and messages show it: scheme, host and port only (a webhook URL's
/// path or query often is its secret).
pub fn url_origin(text: &str) -> String {
    match url::Url::parse(text) {
        Ok(url) => match (url.host_str(), url.port()) {
            (Some(host), Some(port)) => format!("{}://{host}:{port}", url.scheme()),
            (Some(host), None) => format!("{}://{host}", url.scheme()),
            _ => format!("{}:", url.scheme()),
        },
        Err(_) => "(not a URL)".into(),
    }
}

/// `[tools.ID.webhook]`: `POST /hooks/ID` with a valid signature starts the tool.
#[derive(Clone)]
pub struct Webhook {
    pub secret: Vec<u8>,
    pub signature: Signature,
    /// How old a signed timestamp may be, and how long a delivery id is remembered.
    pub replay_window: Duration,
    pub max_body: u64,
    /// Whom the runs belong to.
    pub user: String,
    /// Argument -> where its value comes from.
    pub args: IndexMap<String, ValueSource>,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("signature", &self.signature)
            .field("user", &self.user)
            .field("args", &self.args)
            .finish_non_exhaustive()
    }
}

/// How a webhook delivery proves it knows the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signature {
    /// `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`.
    GitHub,
    /// `X-Gitlab-Token: <the secret>`.
    GitLab,
    /// `<header>: [sha256=]<hex HMAC-SHA256>` of the body, or of `<timestamp>.<body>`
    /// when the sender puts its Unix time in `timestamp_header`.
    Hmac {
        header: String,
        timestamp_header: Option<String>,
    },
}

/// Where a webhook takes an argument's value from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueSource {
    /// A path into the JSON body: keys and array indexes.
    Payload(Vec<String>),
    Header(String),
    Query(String),
}

pub const DEFAULT_WEBHOOK_BODY: u64 = 1024 * 1024;
pub const DEFAULT_REPLAY_WINDOW: Duration = Duration::from_secs(300);

/// A tool run on a cron expression (UTC), as a user, with fixed arguments.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub name: String,
    /// As written (five fields, or six with seconds first).
    pub cron_text: String,
    pub cron: croner::Cron,
    /// Whom it runs as: their access rules and per-user limits apply.
    pub user: String,
    /// The arguments as an API client sends them: `{"args": {...}}`.
    pub args: serde_json::Value,
}

impl Schedule {
    /// `tool/name`: the schedule's key in the state database and its URL.
    pub fn key(&self, tool: &str) -> String {
        format!("{tool}/{}", self.name)
    }
}

/// How a tool's stderr is captured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StderrMode {
    /// On the same pipe as stdout: the two keep their exact order, shown alike.
    #[default]
    Merged,
    /// On a pipe of its own, shown tinted; between the two streams, output is in the
    /// order ftw read it, which can differ from the order it was written.
    Separate,
}

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3600);
pub const DEFAULT_MAX_OUTPUT: u64 = 10_000_000;
pub const DEFAULT_MAX_UPLOAD: u64 = 10_000_000;

/// An entry of an `allow` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    User(String),
    /// `@name`
    Group(String),
}

impl std::fmt::Display for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Principal::User(u) => f.write_str(u),
            Principal::Group(g) => write!(f, "@{g}"),
        }
    }
}

impl Principal {
    /// Whether `user` (with `groups`) is named by any entry of `list`.
    pub fn matches_any(list: &[Principal], user: &str, groups: &[String]) -> bool {
        list.iter().any(|p| match p {
            Principal::User(u) => u == user,
            Principal::Group(g) => groups.contains(g),
        })
    }
}

impl Tool {
    /// Whether `user` (with `groups`) may run this tool.
    pub fn allows(&self, user: &str, groups: &[String]) -> bool {
        match &self.allow {
            None => true,
            Some(list) => Principal::matches_any(list, user, groups),
        }
    }

    pub fn arg(&self, name: &str) -> Option<&Arg> {
        self.args.iter().find(|a| a.name == name)
    }
}

/// A loaded manifest and the warnings it produced.
#[derive(Debug)]
pub struct Loaded {
    pub manifest: Manifest,
    pub warnings: Vec<String>,
}

/// Reads, decodes and validates the manifest at `path`. On failure the error holds the
/// full rendered report (every problem), ready to print.
pub fn load(path: &Path) -> Result<Loaded, String> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("error: cannot read the manifest {name}: {}", io_reason(&e)))?;
    let base_dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let base_dir = std::fs::canonicalize(base_dir).unwrap_or_else(|_| base_dir.to_path_buf());
    load_str(&name, text, &base_dir)
}

/// Decodes and validates manifest `text` (named `name` in diagnostics), with relative
/// paths taken from `base_dir`. `load` without the file; the fuzzer's entry point.
pub fn load_str(name: &str, text: String, base_dir: &Path) -> Result<Loaded, String> {
    let source = Arc::new(Source {
        name: name.to_string(),
        text,
    });
    let mut diags = Diagnostics::default();
    let raw = decode::manifest(&source, &mut diags);
    let manifest = validate::manifest(raw, &source, base_dir, &mut diags);
    if diags.has_errors() {
        return Err(diags.render_report(name));
    }
    let warnings = diags.warnings().map(|d| d.render()).collect();
    Ok(Loaded { manifest, warnings })
}

/// "2 MB", "512 KB", "3 bytes" (decimal, as `max_size` is written).
pub fn human_size(n: u64) -> String {
    let one_decimal = |x: f64| {
        let s = format!("{x:.1}");
        s.strip_suffix(".0").unwrap_or(&s).to_string()
    };
    match n {
        0..1_000 => format!("{n} bytes"),
        1_000..1_000_000 => format!("{} KB", one_decimal(n as f64 / 1e3)),
        1_000_000..1_000_000_000 => format!("{} MB", one_decimal(n as f64 / 1e6)),
        _ => format!("{} GB", one_decimal(n as f64 / 1e9)),
    }
}

/// An I/O error as a short reason, without Rust's "(os error 2)" noise.
pub fn io_reason(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}
