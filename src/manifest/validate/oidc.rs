//! `[auth.oidc.NAME]`: an OpenID Connect provider. The issuer must be https (plain http
//! only on this machine), the client secret comes from exactly one place, and somebody
//! must be allowed in: a provider without `allowed_emails`, `allowed_domains` or
//! `allowed_groups` would let nobody sign in, which is a mistake worth an error.
//! Nothing here talks to the provider: `ftw check` works offline.

use indexmap::IndexMap;
use toml::Spanned;

use crate::manifest::diagnostic::quoted;
use crate::manifest::names;
use crate::manifest::raw::RawOidc;
use crate::manifest::{Allowlist, OidcProvider, Secret, io_reason};

use super::{Checker, open_to_others};

/// Asked for when the manifest names no scopes: who the user is, and their email.
const DEFAULT_SCOPES: [&str; 3] = ["openid", "email", "profile"];

impl Checker<'_> {
    pub(super) fn oidc(&mut self, name: &Spanned<String>, raw: &RawOidc) -> Option<OidcProvider> {
        let mut ok = self.name_follows(&names::PROVIDER, name);
        let span = name.span();
        let name = name.get_ref();
        ok &= self.issuer(&raw.issuer);
        if raw.client_id.get_ref().trim().is_empty() {
            self.error(raw.client_id.span(), "`client_id` is empty".into());
            ok = false;
        }
        let secret = self.client_secret(name, raw);
        ok &= secret.is_some();
        let scopes = self.scopes(raw.scopes.as_deref());
        let map = self.group_map(&raw.map);
        let admit = self.allowlist(name, span, raw);
        for claim in [&raw.groups_claim, &raw.username_claim]
            .into_iter()
            .flatten()
        {
            if claim.get_ref().trim().is_empty() {
                self.error(claim.span(), "the claim name is empty".into());
                ok = false;
            }
        }
        let provider = OidcProvider {
            name: name.clone(),
            issuer: raw.issuer.get_ref().clone(),
            client_id: raw.client_id.get_ref().clone(),
            client_secret: secret.unwrap_or(Secret(String::new())),
            scopes: scopes?,
            label: raw.label.as_ref().map_or_else(
                || format!("Sign in with {name}"),
                |l| l.get_ref().trim().to_string(),
            ),
            admit: admit?,
            groups_claim: raw
                .groups_claim
                .as_ref()
                .map_or_else(|| "groups".into(), |c| c.get_ref().clone()),
            username_claim: raw.username_claim.as_ref().map(|c| c.get_ref().clone()),
            map: map?,
        };
        ok.then_some(provider)
    }

    /// https, or http to this machine (a provider under test, or behind a local proxy).
    fn issuer(&mut self, issuer: &Spanned<String>) -> bool {
        let why = match url::Url::parse(issuer.get_ref()) {
            Err(e) => format!("`issuer` is not a URL ({e})"),
            Ok(url) if url.query().is_some() || url.fragment().is_some() => {
                "`issuer` may not have a query or a fragment".into()
            }
            Ok(url) if url.scheme() == "https" => return true,
            Ok(url) if url.scheme() == "http" && is_loopback(&url) => return true,
            Ok(_) => "`issuer` must be an https:// URL (plain http only on this machine: tokens and the client secret cross it)".into(),
        };
        self.error_help(
            issuer.span(),
            why,
            "write the issuer as the provider shows it, e.g. \"https://accounts.google.com\" or \"https://sso.example.com/realms/team\"".into(),
        );
        false
    }

    fn client_secret(&mut self, name: &str, raw: &RawOidc) -> Option<Secret> {
        self.one_secret(
            name,
            &raw.client_id,
            &raw.client_secret,
            &raw.client_secret_file,
        )
    }

    /// `client_secret` or `client_secret_file`, exactly one.
    pub(super) fn one_secret(
        &mut self,
        name: &str,
        client_id: &Spanned<String>,
        secret: &Option<Spanned<String>>,
        file: &Option<Spanned<String>>,
    ) -> Option<Secret> {
        match (secret, file) {
            (Some(_), Some(file)) => {
                self.error(
                    file.span(),
                    "set `client_secret` or `client_secret_file`, not both".into(),
                );
                None
            }
            (None, None) => {
                self.error_help(
                    client_id.span(),
                    format!("provider `{name}` has no client secret"),
                    "put the secret the provider gave you in a file only ftw can read, and name it in `client_secret_file`".into(),
                );
                None
            }
            (Some(secret), None) => {
                if secret.get_ref().trim().is_empty() {
                    self.error(secret.span(), "`client_secret` is empty".into());
                    return None;
                }
                Some(Secret(secret.get_ref().trim().to_string()))
            }
            (None, Some(file)) => self.secret_file(file, "the client secret file"),
        }
    }

    /// The secret in a file, without the line break an editor adds.
    pub(super) fn secret_file(&mut self, file: &Spanned<String>, what: &str) -> Option<Secret> {
        let path = self.path(file.get_ref());
        match std::fs::read_to_string(&path) {
            Ok(text) if text.trim().is_empty() => {
                self.error(
                    file.span(),
                    format!("{what} {} is empty", quoted(file.get_ref())),
                );
                None
            }
            Ok(text) => {
                if let Some(mode) = open_to_others(&path) {
                    self.warning(
                        file.span(),
                        format!(
                            "other users can read {what} {} (mode {mode:o}); run `chmod 600 {}`",
                            quoted(file.get_ref()),
                            path.display()
                        ),
                    );
                }
                Some(Secret(text.trim().to_string()))
            }
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
        }
    }

    fn scopes(&mut self, scopes: Option<&[Spanned<String>]>) -> Option<Vec<String>> {
        let Some(scopes) = scopes else {
            return Some(DEFAULT_SCOPES.map(String::from).to_vec());
        };
        let mut out = vec!["openid".to_string()];
        let mut ok = true;
        for scope in scopes {
            let text = scope.get_ref();
            if text.is_empty() || !text.bytes().all(|b| b.is_ascii_graphic() && b != b'"') {
                self.error(
                    scope.span(),
                    format!("scope {} is not a single word", quoted(text)),
                );
                ok = false;
            } else if !out.contains(text) {
                out.push(text.clone());
            }
        }
        ok.then_some(out)
    }

    pub(super) fn group_map(
        &mut self,
        map: &IndexMap<String, Spanned<String>>,
    ) -> Option<IndexMap<String, String>> {
        let mut ok = true;
        for target in map.values() {
            ok &= self.name_follows(&names::GROUP, target);
        }
        ok.then(|| {
            map.iter()
                .map(|(from, to)| (from.clone(), to.get_ref().clone()))
                .collect()
        })
    }

    fn allowlist(
        &mut self,
        name: &str,
        span: std::ops::Range<usize>,
        raw: &RawOidc,
    ) -> Option<Allowlist> {
        let mut ok = true;
        let mut list = Allowlist::default();
        for email in raw.allowed_emails.iter().flatten() {
            let text = email.get_ref().trim().to_lowercase();
            if text
                .split_once('@')
                .is_none_or(|(user, domain)| user.is_empty() || domain.is_empty())
            {
                self.error(
                    email.span(),
                    format!("{} is not an email address", quoted(email.get_ref())),
                );
                ok = false;
            }
            list.emails.push(text);
        }
        for domain in raw.allowed_domains.iter().flatten() {
            let text = domain.get_ref().trim().to_lowercase();
            if text.is_empty() || text.contains('@') || text.starts_with('.') {
                self.error_help(
                    domain.span(),
                    format!("{} is not a domain", quoted(domain.get_ref())),
                    "write the part after the @, e.g. \"example.com\"".into(),
                );
                ok = false;
            }
            list.domains.push(text);
        }
        for group in raw.allowed_groups.iter().flatten() {
            let text = group.get_ref().strip_prefix('@').unwrap_or(group.get_ref());
            ok &= self.name_follows(&names::GROUP, &Spanned::new(group.span(), text.to_string()));
            list.groups.push(text.to_string());
        }
        if list == Allowlist::default() && ok {
            self.error_help(
                span,
                format!("nobody may sign in with `{name}`: it allows no email, domain or group"),
                "add `allowed_domains = [\"example.com\"]`, `allowed_emails` or `allowed_groups` (ftw group names, after `map`)".into(),
            );
            ok = false;
        }
        ok.then_some(list)
    }
}

pub(super) fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        // Schemes the url crate does not know (ldap://) keep addresses as text.
        Some(url::Host::Domain(d)) => {
            d.eq_ignore_ascii_case("localhost")
                || d.trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}
