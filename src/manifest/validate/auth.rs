//! `[auth]` and its users (in the manifest and in `users_file`): session lifetimes, the
//! signing key file, password hashes, groups, TOTP secrets, admins, forward-auth
//! headers, throttling and API tokens. Also `allow`/`admins` lists, which name users and
//! groups declared here.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use indexmap::IndexMap;
use toml::Spanned;

use crate::manifest::decode::{self, RawUserEntry};
use crate::manifest::diagnostic::{Source, quoted, suggestion, tick};
use crate::manifest::names;
use crate::manifest::raw::RawAuth;
use crate::manifest::{
    ApiToken, Auth, DEFAULT_SESSION_IDLE, DEFAULT_SESSION_TTL, DEFAULT_THROTTLE, Principal,
    Throttle, User, ZERO_CONFIG_USER, io_reason,
};
use crate::password;

use super::{Checker, Declared, open_to_others};

impl Checker<'_> {
    /// The auth settings, and every user and group name declared. `proxies`: whether
    /// `[server] trusted_proxies` names any (forward auth needs them).
    pub(super) fn auth(
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
        let outside = !raw.oidc.is_empty() || raw.ldap.is_some() || raw.github.is_some();
        if entries.is_empty() && !outside {
            declared.users.push(ZERO_CONFIG_USER.to_string());
        }
        let mut first_seen: HashMap<String, String> = HashMap::new();
        for entry in entries {
            declared.users.push(entry.name.get_ref().clone());
            declared
                .groups
                .extend(entry.user.groups.iter().map(|g| g.get_ref().clone()));
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
        let oidc: Vec<_> = raw
            .oidc
            .iter()
            .filter_map(|(name, provider)| self.oidc(name, provider))
            .collect();
        // Behind forward auth the proxy knows the users, and an identity provider knows
        // its own: `allow` may name any of them.
        declared.open = trusted_header.is_some() || outside;
        let ldap = raw.ldap.as_ref().and_then(|l| self.ldap(l));
        let github = raw.github.as_ref().and_then(|g| self.github(g));

        let admins = match raw.admins {
            Some(list) => self.principals(list, "admins", &declared),
            None if users.is_empty() && trusted_header.is_none() && !outside => {
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
            self.name_follows(&names::TOKEN, name);
            let user = token.user.get_ref();
            if !declared.users.contains(user) && !declared.open {
                let hint = suggestion(user, declared.users.iter().map(String::as_str), tick);
                self.error_help(
                    token.user.span(),
                    format!(
                        "token `{}` is for user `{user}`, who is not defined{hint}",
                        name.get_ref()
                    ),
                    format!(
                        "a token acts as its user: if `{user}` was removed, remove this token too (until then a running ftw keeps the previous manifest, in which `{user}` can still sign in)"
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
        let passkey_sign_in = raw.passkey_sign_in.as_ref().is_some_and(|p| *p.get_ref());
        if let Some(flag) = raw.passkey_sign_in.as_ref().filter(|p| *p.get_ref())
            && users.is_empty()
        {
            self.warning(
                flag.span(),
                "`passkey_sign_in` is on, but only users of [auth.users] have passkeys, and there are none".into(),
            );
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
            oidc,
            ldap,
            github,
            passkey_sign_in,
        };
        (auth, declared)
    }

    /// `sha256:` and 64 hex digits, as `ftw gen-token` prints; a bare token is refused.
    pub(super) fn token_hash(&mut self, value: &Spanned<String>, key: &str) -> Option<[u8; 32]> {
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

    pub(super) fn users_file(&mut self, file: &Spanned<String>) -> Vec<RawUserEntry> {
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
                let entries = decode::users_file(&source, self.diags);
                self.warn_if_secrets_are_readable(file, &path, &entries);
                entries
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

    /// TOTP secrets are as sensitive as passwords: a users file that holds them and
    /// that other users can read gets a warning.
    fn warn_if_secrets_are_readable(
        &mut self,
        file: &Spanned<String>,
        path: &Path,
        entries: &[RawUserEntry],
    ) {
        let holds_secrets = entries.iter().any(|e| e.user.totp.is_some());
        if let Some(mode) = open_to_others(path).filter(|_| holds_secrets) {
            self.warning(
                file.span(),
                format!(
                    "the users file {} holds TOTP secrets and other users can read it (mode {mode:o}); run `chmod 600 {}`",
                    quoted(file.get_ref()),
                    path.display()
                ),
            );
        }
    }

    pub(super) fn user(
        &mut self,
        entry: &RawUserEntry,
        first_seen: &mut HashMap<String, String>,
    ) -> Option<User> {
        let name = entry.name.get_ref();
        let mut ok = self.name_follows(&names::USER, &entry.name);
        if let Some(other) = first_seen.get(name) {
            self.error(
                entry.name.span(),
                format!("user `{name}` is defined twice (also in {other}); keep one"),
            );
            ok = false;
        } else {
            first_seen.insert(name.clone(), entry.source.name.clone());
        }
        let hash = entry.user.password.get_ref();
        if !hash.starts_with('$') {
            self.error_help(
                entry.user.password.span(),
                format!(
                    "the password of `{name}` is in plain text; ftw only stores argon2id hashes"
                ),
                "run `ftw hash-password` and paste the line it prints here".into(),
            );
            ok = false;
        } else if let Err(why) = password::check_hash(hash) {
            self.error_help(
                entry.user.password.span(),
                format!("the password hash of `{name}` is not usable: {why}"),
                "run `ftw hash-password` to make a new hash".into(),
            );
            ok = false;
        }
        for group in &entry.user.groups {
            ok &= self.name_follows(&names::GROUP, group);
        }
        let totp = match &entry.user.totp {
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
            groups: entry
                .user
                .groups
                .iter()
                .map(|g| g.get_ref().clone())
                .collect(),
            totp,
        })
    }

    /// A list of user names and `@groups`, each of which must exist.
    pub(super) fn principals(
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
                        format!("`{key}` names user `{text}`, who is not defined{hint}"),
                    );
                }
                principals.push(Principal::User(text.clone()));
            }
        }
        principals
    }
}
