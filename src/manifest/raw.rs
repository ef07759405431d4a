//! The manifest as written: one serde struct per TOML table, with `Spanned` wherever a
//! later check must point at the value. Nothing here judges meaning; `validate.rs` does
//! that in a second pass. Fields whose TOML type varies with the argument type (`default`,
//! `min`, `max`, `step`) stay `toml::Value` until the second pass knows that type.
//!
//! `deny_unknown_fields` is a safety net only: `decode.rs` reports unknown keys itself,
//! all of them and with a did-you-mean, before serde sees the table.

use indexmap::IndexMap;
use serde::Deserialize;
use toml::Spanned;

/// A path as written, taken from the manifest's folder in the second pass.
pub type PathText = Spanned<String>;
/// A duration as written (`"10m"`), parsed by humantime in the second pass.
pub type DurationText = Spanned<String>;
/// A size as written (`"10MB"`), parsed in the second pass.
pub type SizeText = Spanned<String>;

/// `[server]`; every key optional, flags override them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub host: Option<Spanned<String>>,
    pub port: Option<Spanned<u16>>,
    /// The proxy in front (if any) and the path it serves ftw under.
    pub trusted_proxies: Option<Vec<Spanned<String>>>,
    /// Host names ftw answers to, besides its own addresses.
    pub allowed_hosts: Option<Vec<Spanned<String>>>,
    pub base_path: Option<Spanned<String>>,
    pub tls_cert: Option<PathText>,
    pub tls_key: Option<PathText>,
    pub audit_log: Option<PathText>,
    pub metrics_allow: Option<Vec<Spanned<String>>>,
    pub metrics_token: Option<Spanned<String>>,
    /// Where runs, their output and ftw's database live.
    pub state_dir: Option<PathText>,
    /// A PostgreSQL URL: several replicas share it instead of SQLite in `state_dir`.
    pub database: Option<Spanned<String>>,
    pub database_password_file: Option<PathText>,
    pub keep_runs: Option<Spanned<u32>>,
    pub keep_for: Option<DurationText>,
    pub max_state_size: Option<SizeText>,
    pub max_runs_per_user: Option<Spanned<u16>>,
}

/// `[auth]` without its `users` table, which is decoded entry by entry.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    pub secret_key_file: Option<PathText>,
    pub admins: Option<Spanned<Vec<Spanned<String>>>>,
    pub users_file: Option<PathText>,
    pub session_ttl: Option<DurationText>,
    pub session_idle: Option<DurationText>,
    pub trusted_header: Option<Spanned<String>>,
    pub trusted_groups_header: Option<Spanned<String>>,
    pub max_login_failures: Option<Spanned<u32>>,
    pub login_failure_window: Option<DurationText>,
    pub login_block_time: Option<DurationText>,
    /// Users with a passkey may sign in with it alone.
    pub passkey_sign_in: Option<Spanned<bool>>,
    #[serde(default)]
    pub tokens: IndexMap<Spanned<String>, RawToken>,
    /// `[auth.oidc.NAME]`: OpenID Connect providers, each a button on the login page.
    #[serde(default)]
    pub oidc: IndexMap<Spanned<String>, RawOidc>,
    /// `[auth.ldap]`: a directory whose users sign in with their directory password.
    pub ldap: Option<Spanned<RawLdap>>,
    /// `[auth.github]`: GitHub (or GitHub Enterprise) accounts, by organisation and team.
    pub github: Option<Spanned<RawGitHub>>,
}

/// `[auth.github]`: a GitHub OAuth app and who of GitHub's users may sign in.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGitHub {
    pub client_id: Spanned<String>,
    pub client_secret: Option<Spanned<String>>,
    pub client_secret_file: Option<PathText>,
    pub allowed_orgs: Option<Vec<Spanned<String>>>,
    pub allowed_teams: Option<Vec<Spanned<String>>>,
    pub url: Option<Spanned<String>>,
    pub api_url: Option<Spanned<String>>,
    pub label: Option<Spanned<String>>,
}

/// `[auth.ldap]`: where the directory is, how to find a user and their groups.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLdap {
    pub url: Spanned<String>,
    #[serde(default)]
    pub starttls: bool,
    pub ca_file: Option<PathText>,
    pub bind_dn: Option<Spanned<String>>,
    pub bind_password_file: Option<PathText>,
    pub base_dn: Spanned<String>,
    pub user_filter: Option<Spanned<String>>,
    pub username_attribute: Option<Spanned<String>>,
    pub group_base_dn: Option<Spanned<String>>,
    pub group_filter: Option<Spanned<String>>,
    pub allowed_groups: Option<Vec<Spanned<String>>>,
    /// The directory's group names (their `cn`) to ftw's.
    #[serde(default)]
    pub map: IndexMap<String, Spanned<String>>,
}

/// `[auth.oidc.NAME]`: an OpenID Connect provider and who of its users may sign in.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOidc {
    pub issuer: Spanned<String>,
    pub client_id: Spanned<String>,
    pub client_secret: Option<Spanned<String>>,
    pub client_secret_file: Option<PathText>,
    pub scopes: Option<Vec<Spanned<String>>>,
    pub label: Option<Spanned<String>>,
    pub allowed_emails: Option<Vec<Spanned<String>>>,
    pub allowed_domains: Option<Vec<Spanned<String>>>,
    pub allowed_groups: Option<Vec<Spanned<String>>>,
    pub groups_claim: Option<Spanned<String>>,
    pub username_claim: Option<Spanned<String>>,
    /// The provider's group names to ftw's: `"/ops-team" = "ops"`.
    #[serde(default)]
    pub map: IndexMap<String, Spanned<String>>,
}

/// `[auth.tokens.NAME]`: an API token, stored as its hash.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawToken {
    pub hash: Spanned<String>,
    pub user: Spanned<String>,
}

/// A user written as a table: `alice = { password = "...", groups = ["ops"] }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUser {
    pub password: Spanned<String>,
    #[serde(default)]
    pub groups: Vec<Spanned<String>>,
    pub totp: Option<Spanned<String>>,
}

/// `[tools.ID]` without its `args` table, which is decoded argument by argument.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTool {
    pub title: Option<String>,
    pub description: Option<String>,
    pub group: Option<String>,
    /// Required; `decode` reports it missing (so the other keys are still checked).
    pub command: Option<Spanned<RawCommand>>,
    pub workdir: Option<PathText>,
    pub timeout: Option<DurationText>,
    pub allow: Option<Spanned<Vec<Spanned<String>>>>,
    pub max_concurrent: Option<Spanned<u32>>,
    pub max_output: Option<SizeText>,
    /// `"merged"` or `"separate"`.
    pub stderr: Option<Spanned<String>>,
    #[serde(default)]
    pub env: IndexMap<Spanned<String>, Spanned<String>>,
    /// `[tools.ID.schedule.NAME]`
    #[serde(default)]
    pub schedule: IndexMap<Spanned<String>, Spanned<RawSchedule>>,
    /// `[tools.ID.webhook]`
    pub webhook: Option<Spanned<RawWebhook>>,
    /// Names of `[notify.NAME]` targets told when a run ends as `notify_on` says.
    pub notify: Option<Spanned<Vec<Spanned<String>>>>,
    /// `"failure"` and/or `"success"`.
    pub notify_on: Option<Spanned<Vec<Spanned<String>>>>,
}

/// `[notify.NAME]`: where ftw says that a run ended: a URL (JSON POST) or SMTP mail.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNotify {
    /// An outbound webhook: `https://...` (`http://` to loopback only).
    pub url: Option<Spanned<String>>,
    /// Signs the JSON (`X-Ftw-Signature: sha256=<hex HMAC>`).
    pub secret_file: Option<PathText>,
    /// Mail: `smtps://host[:port]` or `smtp://host[:port]` (STARTTLS; clear to loopback).
    pub smtp: Option<Spanned<String>>,
    pub from: Option<Spanned<String>>,
    #[serde(default)]
    pub to: Vec<Spanned<String>>,
    pub username: Option<Spanned<String>>,
    pub password_file: Option<PathText>,
}

/// `[tools.ID.webhook]`: a signed HTTP delivery starts the tool.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebhook {
    pub secret_file: Option<PathText>,
    /// `github`, `gitlab` or `hmac-sha256`.
    pub signature: Option<Spanned<String>>,
    /// `hmac-sha256`: the header with the hex signature.
    pub header: Option<Spanned<String>>,
    /// `hmac-sha256`: the header with the sender's Unix time (signed with the body).
    pub timestamp_header: Option<Spanned<String>>,
    pub replay_window: Option<DurationText>,
    pub max_body: Option<SizeText>,
    pub user: Option<Spanned<String>>,
    /// Argument name -> `payload.a.b`, `header.Name` or `query.name`.
    #[serde(default)]
    pub args: IndexMap<Spanned<String>, Spanned<String>>,
}

/// `[tools.ID.schedule.NAME]`: run the tool on a cron expression, as a user.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSchedule {
    pub cron: Spanned<String>,
    pub user: Spanned<String>,
    /// The arguments, as a JSON client would send them.
    #[serde(default)]
    pub args: Option<Spanned<toml::Table>>,
}

/// `[tools.ID.args.NAME]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawArg {
    /// Required; `decode` reports it missing (so the other keys are still checked).
    #[serde(rename = "type")]
    pub kind: Option<Spanned<String>>,
    pub label: Option<String>,
    pub help: Option<String>,
    pub placeholder: Option<String>,
    pub default: Option<Spanned<toml::Value>>,
    pub required: Option<Spanned<bool>>,
    pub min: Option<Spanned<toml::Value>>,
    pub max: Option<Spanned<toml::Value>>,
    pub step: Option<Spanned<toml::Value>>,
    pub min_length: Option<Spanned<u32>>,
    pub max_length: Option<Spanned<u32>>,
    pub pattern: Option<Spanned<String>>,
    pub flag: Option<Spanned<String>>,
    pub options: Option<Spanned<Vec<Spanned<String>>>>,
    pub options_from: Option<Spanned<RawCommand>>,
    pub options_ttl: Option<DurationText>,
    pub show_if: Option<Spanned<RawShowIf>>,
    pub accept: Option<Spanned<String>>,
    pub max_size: Option<SizeText>,
}

/// `show_if = { field = "mode", equals = "advanced" }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawShowIf {
    pub field: Spanned<String>,
    /// A string, or true/false for a checkbox.
    pub equals: Spanned<toml::Value>,
}

/// `command` as written: an argv array, or a shell-style string that ftw refuses with a
/// message showing the array to write instead. A hand-written visitor rather than an
/// untagged enum, because untagged enums lose the spans of the elements.
#[derive(Debug)]
pub enum RawCommand {
    Argv(Vec<Spanned<String>>),
    Line(String),
}

impl<'de> Deserialize<'de> for RawCommand {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CommandVisitor;

        impl<'de> serde::de::Visitor<'de> for CommandVisitor {
            type Value = RawCommand;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an array of strings, such as [\"ls\", \"-l\"]")
            }

            fn visit_str<E: serde::de::Error>(self, line: &str) -> Result<RawCommand, E> {
                Ok(RawCommand::Line(line.to_string()))
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<RawCommand, A::Error> {
                let mut argv = Vec::new();
                while let Some(element) = seq.next_element()? {
                    argv.push(element);
                }
                Ok(RawCommand::Argv(argv))
            }
        }

        deserializer.deserialize_any(CommandVisitor)
    }
}
