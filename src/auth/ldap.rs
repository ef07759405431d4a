//! Signing in against an LDAP directory (`[auth.ldap]`), through the `ldap3` crate:
//! bind as the search account, find exactly one entry with the user filter (the typed
//! name escaped as RFC 4515 says), then bind as that entry with the typed password:
//! the directory checks the password, ftw never sees a hash. Groups come from a group
//! search (`group_base_dn`) or the entry's `memberOf`, as the groups' `cn`.
//!
//! An empty password is refused before anything is sent: to LDAP it is an
//! "unauthenticated bind", which many servers answer with success. Each sign-in uses its
//! own connection and gives up after ten seconds.

use std::time::Duration;

use ldap3::{LdapConnAsync, LdapConnSettings, Scope, SearchEntry, ldap_escape};

use crate::manifest::Ldap;

const TIMEOUT: Duration = Duration::from_secs(10);
/// `invalidCredentials` (RFC 4511).
const INVALID_CREDENTIALS: u32 = 49;

/// A directory user whose password was right.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The value of `username_attribute`.
    pub name: String,
    /// The entry's DN.
    pub dn: String,
    pub email: Option<String>,
    /// The `cn` of each group, before `map`.
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// No entry, several entries, or a wrong or empty password: all look alike to
    /// the user.
    Refused(&'static str),
    /// The directory cannot be reached, or refused the search account.
    Unreachable(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Refused(why) => f.write_str(why),
            Failure::Unreachable(why) => f.write_str(why),
        }
    }
}

/// Checks `password` for `username` against the directory.
pub async fn authenticate(ldap: &Ldap, username: &str, password: &str) -> Result<Found, Failure> {
    if password.is_empty() {
        return Err(Failure::Refused("empty password"));
    }
    tokio::time::timeout(TIMEOUT, check(ldap, username, password))
        .await
        .unwrap_or_else(|_| {
            Err(Failure::Unreachable(
                "the directory did not answer within 10 s".into(),
            ))
        })
}

fn unreachable(what: &str) -> impl Fn(ldap3::LdapError) -> Failure + '_ {
    move |e| Failure::Unreachable(format!("{what}: {e}"))
}

async fn check(ldap: &Ldap, username: &str, password: &str) -> Result<Found, Failure> {
    let mut settings = LdapConnSettings::new()
        .set_conn_timeout(TIMEOUT / 2)
        .set_starttls(ldap.starttls);
    if let Some(ca) = &ldap.ca_file {
        settings = settings.set_config(tls_config(ca)?);
    }
    let (conn, mut ld) = LdapConnAsync::with_settings(settings, &ldap.url)
        .await
        .map_err(unreachable("cannot connect to the directory"))?;
    ldap3::drive!(conn);
    let service_bind = async |ld: &mut ldap3::Ldap| -> Result<(), Failure> {
        if let Some(dn) = &ldap.bind_dn {
            ld.simple_bind(dn, &ldap.bind_password.0)
                .await
                .and_then(ldap3::LdapResult::success)
                .map_err(unreachable(
                    "the directory refused the search account (bind_dn)",
                ))?;
        }
        Ok(())
    };
    service_bind(&mut ld).await?;
    let filter = ldap
        .user_filter
        .replace("{username}", &ldap_escape(username));
    let attrs = [ldap.username_attribute.as_str(), "mail", "memberOf"];
    let (entries, _) = ld
        .search(&ldap.base_dn, Scope::Subtree, &filter, attrs)
        .await
        .and_then(ldap3::SearchResult::success)
        .map_err(unreachable("the user search failed"))?;
    let entry = match entries.len() {
        0 => return Err(Failure::Refused("no such user in the directory")),
        1 => SearchEntry::construct(entries.into_iter().next().expect("one entry")),
        _ => return Err(Failure::Refused("the user filter matches several entries")),
    };
    let bound = ld
        .simple_bind(&entry.dn, password)
        .await
        .map_err(unreachable(
            "the directory did not answer the password check",
        ))?;
    match bound.rc {
        0 => {}
        INVALID_CREDENTIALS => return Err(Failure::Refused("wrong password")),
        _ => {
            return Err(Failure::Unreachable(format!(
                "the password check failed: {bound}"
            )));
        }
    }
    let first = |attr: &str| {
        entry
            .attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(attr))
            .and_then(|(_, v)| v.first().cloned())
    };
    let name = first(&ldap.username_attribute)
        .ok_or(Failure::Refused("the entry has no user name attribute"))?;
    let groups = match &ldap.group_base_dn {
        Some(base) => {
            // Back to the search account: a user may not be allowed to read groups.
            service_bind(&mut ld).await?;
            let filter = ldap.group_filter.replace("{dn}", &ldap_escape(&entry.dn));
            let (found, _) = ld
                .search(base, Scope::Subtree, &filter, ["cn"])
                .await
                .and_then(ldap3::SearchResult::success)
                .map_err(unreachable("the group search failed"))?;
            found
                .into_iter()
                .filter_map(|e| {
                    SearchEntry::construct(e)
                        .attrs
                        .remove("cn")?
                        .into_iter()
                        .next()
                })
                .collect()
        }
        None => entry
            .attrs
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("memberOf"))
            .flat_map(|(_, v)| v.iter().filter_map(|dn| common_name(dn)))
            .collect(),
    };
    let _ = ld.unbind().await;
    Ok(Found {
        name,
        dn: entry.dn.clone(),
        email: first("mail").map(|m| m.to_lowercase()),
        groups,
    })
}

/// The `cn` of a DN's first part: `cn=ops,ou=groups,dc=example` is `ops`.
fn common_name(dn: &str) -> Option<String> {
    let first = dn.split(',').next()?;
    let (key, value) = first.split_once('=')?;
    key.trim()
        .eq_ignore_ascii_case("cn")
        .then(|| value.trim().to_string())
}

/// TLS that trusts the certificates in `ca` (PEM) only: a directory behind a company CA.
fn tls_config(
    ca: &std::path::Path,
) -> Result<std::sync::Arc<tokio_rustls::rustls::ClientConfig>, Failure> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let mut roots = tokio_rustls::rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca)
        .map_err(|e| Failure::Unreachable(format!("cannot read {}: {e}", ca.display())))?;
    for cert in certs {
        let cert = cert.map_err(|e| Failure::Unreachable(format!("{}: {e}", ca.display())))?;
        roots
            .add(cert)
            .map_err(|e| Failure::Unreachable(format!("{}: {e}", ca.display())))?;
    }
    let config = tokio_rustls::rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(std::sync::Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_names_are_the_first_cn() {
        assert_eq!(
            common_name("cn=ops,ou=groups,dc=example,dc=com").as_deref(),
            Some("ops")
        );
        assert_eq!(
            common_name("CN=Domain Admins,DC=corp").as_deref(),
            Some("Domain Admins")
        );
        assert_eq!(common_name("ou=ops,dc=x"), None);
    }

    #[tokio::test]
    async fn an_empty_password_never_reaches_the_directory() {
        let ldap = Ldap {
            url: "ldap://192.0.2.1".into(),
            starttls: false,
            ca_file: None,
            bind_dn: None,
            bind_password: crate::manifest::Secret(String::new()),
            base_dn: "dc=example".into(),
            user_filter: "(uid={username})".into(),
            username_attribute: "uid".into(),
            group_base_dn: None,
            group_filter: "(member={dn})".into(),
            allowed_groups: None,
            map: Default::default(),
        };
        assert_eq!(
            authenticate(&ldap, "alice", "").await,
            Err(Failure::Refused("empty password"))
        );
    }
}
