//! `[server]`: the address, base path, TLS files, audit log, trusted proxies, the
//! `/metrics` access rules, and the state folder with its retention limits.

use toml::Spanned;

use crate::manifest::diagnostic::quoted;
use crate::manifest::raw::RawServer;
use crate::manifest::{Server, TlsFiles};

use super::Checker;

impl Checker<'_> {
    pub(super) fn server(&mut self, raw: RawServer) -> Server {
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
        let mut allowed_hosts = Vec::new();
        for entry in raw.allowed_hosts.iter().flatten() {
            match host_pattern(entry.get_ref()) {
                Ok(host) => allowed_hosts.push(host),
                Err(why) => self.error(
                    entry.span(),
                    format!("`allowed_hosts` entry {} {why}", quoted(entry.get_ref())),
                ),
            }
        }
        if let Some(first) = raw.trusted_proxies.iter().flatten().next()
            && allowed_hosts.is_empty()
        {
            self.warning(
                first.span(),
                "with a proxy in front, ftw answers only to its own names (localhost, its addresses, its certificate's): if the proxy passes on the public host name (Caddy does; nginx with `proxy_set_header Host $host`), add it, e.g. allowed_hosts = [\"tools.example.com\"], or those requests get 421".into(),
            );
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
        let state_dir = raw.state_dir.as_ref().map(|d| self.path(d.get_ref()));
        let (database, database_password_file) = self.database(&raw);
        let keep_for = raw
            .keep_for
            .map(|v| self.duration(Some(v), "keep_for", std::time::Duration::ZERO));
        let max_state_size = raw
            .max_state_size
            .map(|v| self.size(Some(v), "max_state_size", 0));
        if let Some(n) = &raw.max_runs_per_user
            && *n.get_ref() == 0
        {
            self.error(
                n.span(),
                "`max_runs_per_user` must be at least 1 (a user with no runs could run nothing)"
                    .into(),
            );
        }
        Server {
            state_dir,
            database,
            database_password_file,
            keep_runs: raw.keep_runs.map(Spanned::into_inner),
            keep_for,
            max_state_size,
            max_runs_per_user: raw.max_runs_per_user.map(Spanned::into_inner),
            metrics_allow,
            metrics_token,
            host: raw.host.map(Spanned::into_inner),
            port: raw.port.map(Spanned::into_inner),
            base_path,
            tls,
            audit_log,
            trusted_proxies,
            allowed_hosts,
        }
    }
}

/// An `allowed_hosts` entry: a host name, `*.` and a domain, an IP address, or `*`;
/// lower case, IPv6 without brackets.
pub fn host_pattern(text: &str) -> Result<String, &'static str> {
    let text = text.trim().trim_start_matches('[').trim_end_matches(']');
    if text == "*" || text.parse::<std::net::IpAddr>().is_ok() {
        return Ok(text.to_ascii_lowercase());
    }
    if text.contains(':') || text.contains('/') {
        return Err(
            "must be a host name or an address, without a scheme or a port (ports are not compared), e.g. \"ftw.example.com\"",
        );
    }
    let name = text.strip_prefix("*.").unwrap_or(text);
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
        return Err("is not a host name such as \"ftw.example.com\" or \"*.example.com\"");
    }
    Ok(text.to_ascii_lowercase())
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

impl Checker<'_> {
    /// `database` and `database_password_file`: a PostgreSQL URL ftw can use (TLS over
    /// a network), with no password in it, and a password file only ftw can read.
    fn database(&mut self, raw: &RawServer) -> (Option<String>, Option<std::path::PathBuf>) {
        let password_file = raw
            .database_password_file
            .as_ref()
            .map(|f| (f, self.readable_file(f, "the database password file")));
        if let Some((file, path)) = &password_file
            && let Some(mode) = super::open_to_others(path)
        {
            self.error(
                file.span(),
                format!(
                    "other users can read the database password file {} (mode {mode:o}); run `chmod 600 {}`",
                    quoted(file.get_ref()),
                    path.display()
                ),
            );
        }
        let Some(url) = &raw.database else {
            if let Some((file, _)) = &password_file {
                self.error(
                    file.span(),
                    "`database_password_file` without `database`: whose password is it?".into(),
                );
            }
            return (None, None);
        };
        match crate::store::postgres::connect::target(url.get_ref(), None) {
            Err(e) => self.error(url.span(), e),
            Ok(target) if target.config.get_password().is_some() => self.error_help(
                url.span(),
                "the `database` URL holds a password, and manifests get shared and committed".into(),
                "remove it from the URL and put it in a file (chmod 600) named by `database_password_file`".into(),
            ),
            Ok(_) => {}
        }
        (
            Some(url.get_ref().clone()),
            password_file.map(|(_, path)| path),
        )
    }
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
}
