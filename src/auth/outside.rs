//! Users ftw has no password for, vouched for by an identity provider: who they are
//! (`Identity`, read from the provider's claims), whether the manifest lets them in
//! (`Allowlist::admits`), and which of their groups ftw keeps.
//!
//! Emails count only when the provider says they are verified: anyone can type an
//! unverified address into a self-service account. Groups are renamed by the provider's
//! `map`, then kept only if the manifest names them somewhere (`allow`, `admins`, an
//! allowlist): nothing else can change a decision, and the session cookie stays small
//! however many groups the provider knows.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use indexmap::IndexMap;

use crate::manifest::{Allowlist, Auth, GitHub, Ldap, Manifest, OidcProvider, Principal, names};

/// The most groups a session keeps.
pub const MAX_GROUPS: usize = 32;

/// A signed-in user as the provider describes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    /// Who the source says this is, for good: OIDC's `sub`, GitHub's user id, the
    /// directory entry's DN.
    pub subject: String,
    /// Lower case; `None` unless the provider says it is verified.
    pub email: Option<String>,
    /// ftw group names, mapped and kept as the module says.
    pub groups: Vec<String>,
}

/// Why a provider's user is not let in; for the audit log and the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// No usable user name in the claims.
    NoName(String),
    /// The name is a user of ftw's own password list.
    LocalName(String),
    /// Matched no email, domain or group of the allowlist.
    NotAllowed { email: Option<String> },
    /// The name first signed in through another account (another provider, or another
    /// user of the same one).
    NameTaken(String),
}

impl std::fmt::Display for Denied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Denied::NoName(why) => write!(f, "no usable user name: {why}"),
            Denied::LocalName(name) => write!(
                f,
                "the user name `{name}` belongs to a user with a password in the manifest"
            ),
            Denied::NotAllowed { email: Some(email) } => {
                write!(f, "{email} is not in an allowed email, domain or group")
            }
            Denied::NotAllowed { email: None } => {
                write!(f, "no verified email and no allowed group")
            }
            Denied::NameTaken(name) => write!(
                f,
                "the user name `{name}` belongs to another account, which signed in with it first"
            ),
        }
    }
}

/// How to read an identity out of a provider's claims.
pub struct ClaimRules<'a> {
    /// `None`: `preferred_username`, else the verified email.
    pub username_claim: Option<&'a str>,
    pub groups_claim: &'a str,
    pub map: &'a indexmap::IndexMap<String, String>,
}

impl ClaimRules<'_> {
    /// The identity in `claims`, keeping the groups in `wanted`.
    pub fn identity(
        &self,
        claims: &Map<String, Value>,
        wanted: &BTreeSet<String>,
    ) -> Result<Identity, Denied> {
        let verified = match claims.get("email_verified") {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => s == "true",
            _ => false,
        };
        let email = claims
            .get("email")
            .and_then(Value::as_str)
            .filter(|_| verified)
            .map(str::to_lowercase)
            .filter(|e| usable_email(e));
        let name = match self.username_claim {
            Some(claim) => claims
                .get(claim)
                .and_then(Value::as_str)
                .ok_or_else(|| Denied::NoName(format!("the claim `{claim}` is missing")))?
                .to_string(),
            None => claims
                .get("preferred_username")
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| email.clone())
                .ok_or_else(|| {
                    Denied::NoName("neither `preferred_username` nor a verified email".into())
                })?,
        };
        usable_name(&name)?;
        let raw_groups: Vec<&str> = match claims.get(self.groups_claim) {
            Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
            Some(Value::String(one)) => vec![one.as_str()],
            _ => Vec::new(),
        };
        let groups = keep_groups(raw_groups, self.map, wanted);
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .ok_or_else(|| Denied::NoName("the claim `sub` is missing".into()))?
            .to_string();
        Ok(Identity {
            name,
            subject,
            email,
            groups,
        })
    }
}

/// A name from outside must follow ftw's rule for user names.
pub fn usable_name(name: &str) -> Result<(), Denied> {
    if names::USER.allows(name) {
        return Ok(());
    }
    Err(Denied::NoName(format!(
        "`{}` is not a valid ftw user name ({})",
        name.chars().take(64).collect::<String>(),
        names::USER.describe()
    )))
}

/// The source's group names renamed by `map`, kept when `wanted`, each once, in the
/// source's order, at most `MAX_GROUPS`.
pub fn keep_groups<'a>(
    raw: impl IntoIterator<Item = &'a str>,
    map: &IndexMap<String, String>,
    wanted: &BTreeSet<String>,
) -> Vec<String> {
    let mut groups: Vec<String> = Vec::new();
    for group in raw {
        let group = map.get(group).map_or(group, String::as_str);
        if wanted.contains(group) && !groups.iter().any(|g| g == group) {
            groups.push(group.to_string());
        }
        if groups.len() == MAX_GROUPS {
            break;
        }
    }
    groups
}

/// `identity`, unless its name is a user of `[auth.users]` (theirs alone) or the
/// source's allowlist does not let it in (`admits`).
pub fn admit(manifest: &Manifest, identity: Identity, admits: bool) -> Result<Identity, Denied> {
    if manifest.auth.users.contains_key(&identity.name) {
        return Err(Denied::LocalName(identity.name));
    }
    if !admits {
        return Err(Denied::NotAllowed {
            email: identity.email,
        });
    }
    Ok(identity)
}

/// Where an outside user comes from, as the manifest in force configures it.
#[derive(Clone, Copy)]
pub enum Source<'a> {
    Oidc(&'a OidcProvider),
    GitHub(&'a GitHub),
    Ldap(&'a Ldap),
}

impl<'a> Source<'a> {
    /// The source named `key` (`oidc:NAME`, `github`, `ldap`), if the manifest has it.
    pub fn find(auth: &'a Auth, key: &str) -> Option<Source<'a>> {
        match key {
            "github" => auth.github.as_ref().map(Source::GitHub),
            "ldap" => auth.ldap.as_ref().map(Source::Ldap),
            _ => auth
                .oidc_provider(key.strip_prefix("oidc:")?)
                .map(Source::Oidc),
        }
    }

    /// `oidc:NAME`, `github` or `ldap`: in sessions, name bindings and the audit log.
    pub fn key(&self) -> String {
        match self {
            Source::Oidc(p) => format!("oidc:{}", p.name),
            Source::GitHub(_) => "github".into(),
            Source::Ldap(_) => "ldap".into(),
        }
    }

    /// Whether a user with this verified email and these (kept) groups may sign in.
    pub fn admits(&self, email: Option<&str>, groups: &[String]) -> bool {
        match self {
            Source::Oidc(p) => p.admit.admits(email, groups),
            Source::GitHub(g) => g.admits(groups),
            Source::Ldap(l) => l
                .allowed_groups
                .as_ref()
                .is_none_or(|allowed| groups.iter().any(|g| allowed.contains(g))),
        }
    }

    /// The settings a session from this source is bound to: change one and its
    /// sessions end (the issuer or client, the claims and map, the directory and its
    /// filters).
    pub fn settings(&self) -> Vec<String> {
        match self {
            Source::Oidc(p) => vec![
                "oidc".into(),
                p.name.clone(),
                p.issuer.clone(),
                p.client_id.clone(),
                p.groups_claim.clone(),
                p.username_claim.clone().unwrap_or_default(),
                format!("{:?}", p.map),
            ],
            Source::GitHub(g) => vec![
                "github".into(),
                g.url.clone(),
                g.api_url.clone(),
                g.client_id.clone(),
            ],
            Source::Ldap(l) => vec![
                "ldap".into(),
                l.url.clone(),
                l.base_dn.clone(),
                l.user_filter.clone(),
                l.username_attribute.clone(),
                l.group_base_dn.clone().unwrap_or_default(),
                l.group_filter.clone(),
                format!("{:?}", l.map),
            ],
        }
    }
}

/// An email a session can carry: no separators of the cookie, no control characters.
pub fn usable_email(email: &str) -> bool {
    email.len() <= 254
        && email.contains('@')
        && !email
            .chars()
            .any(|c| c.is_control() || c == '|' || c == ',' || c.is_whitespace())
}

impl Allowlist {
    /// Whether `identity` matches an email, a domain (exactly, not its subdomains) or a
    /// group of the list.
    pub fn admits(&self, email: Option<&str>, groups: &[String]) -> bool {
        let by_email = email.is_some_and(|email| {
            let domain = email.rsplit_once('@').map_or("", |(_, d)| d);
            self.emails.iter().any(|e| e == email) || self.domains.iter().any(|d| d == domain)
        });
        by_email || groups.iter().any(|g| self.groups.contains(g))
    }
}

/// Every group the manifest names: in `allow` lists, `admins` and the providers'
/// allowlists. Only these can change what a user may do.
pub fn named_groups(manifest: &Manifest) -> BTreeSet<String> {
    let principals = manifest
        .tools
        .values()
        .filter_map(|t| t.allow.as_ref())
        .flatten()
        .chain(&manifest.auth.admins);
    let mut groups: BTreeSet<String> = principals
        .filter_map(|p| match p {
            Principal::Group(g) => Some(g.clone()),
            Principal::User(_) => None,
        })
        .collect();
    for provider in &manifest.auth.oidc {
        groups.extend(provider.admit.groups.iter().cloned());
    }
    if let Some(github) = &manifest.auth.github {
        groups.extend(github.allowed_orgs.iter().cloned());
        groups.extend(github.allowed_teams.iter().cloned());
    }
    if let Some(ldap) = &manifest.auth.ldap {
        groups.extend(ldap.allowed_groups.iter().flatten().cloned());
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn rules(map: &indexmap::IndexMap<String, String>) -> ClaimRules<'_> {
        ClaimRules {
            username_claim: None,
            groups_claim: "groups",
            map,
        }
    }

    fn wanted(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn unverified_emails_are_dropped() {
        let map = Default::default();
        let c = claims(json!({"sub": "1", "email": "Eve@Example.com", "email_verified": false}));
        assert_eq!(
            rules(&map).identity(&c, &wanted(&[])),
            Err(Denied::NoName(
                "neither `preferred_username` nor a verified email".into()
            ))
        );
        let c =
            claims(json!({"sub": "1", "preferred_username": "eve", "email": "eve@example.com"}));
        assert_eq!(rules(&map).identity(&c, &wanted(&[])).unwrap().email, None);
        let c = claims(json!({"sub": "1", "email": "Eve@Example.com", "email_verified": true}));
        let id = rules(&map).identity(&c, &wanted(&[])).unwrap();
        assert_eq!(id.name, "eve@example.com");
        assert_eq!(id.email.as_deref(), Some("eve@example.com"));
    }

    #[test]
    fn groups_are_mapped_then_kept_only_when_named() {
        let mut map = indexmap::IndexMap::new();
        map.insert("/corp/ops".to_string(), "ops".to_string());
        let c = claims(json!({
            "sub": "2",
            "preferred_username": "bob",
            "groups": ["/corp/ops", "dev", "ops", "unnamed", 7]
        }));
        let id = rules(&map).identity(&c, &wanted(&["ops", "dev"])).unwrap();
        assert_eq!(id.groups, ["ops", "dev"]);
    }

    #[test]
    fn names_that_ftw_cannot_use_are_refused() {
        let map = Default::default();
        let c = claims(json!({"sub": "3", "preferred_username": "bob|admin"}));
        assert!(matches!(
            rules(&map).identity(&c, &wanted(&[])),
            Err(Denied::NoName(_))
        ));
    }

    #[test]
    fn the_allowlist_matches_whole_domains_and_exact_emails() {
        let list = Allowlist {
            emails: vec!["carol@other.org".into()],
            domains: vec!["example.com".into()],
            groups: vec!["ops".into()],
        };
        assert!(list.admits(Some("a@example.com"), &[]));
        assert!(!list.admits(Some("a@evil-example.com"), &[]));
        assert!(!list.admits(Some("a@sub.example.com"), &[]));
        assert!(!list.admits(Some("a@example.com.evil.org"), &[]));
        assert!(list.admits(Some("carol@other.org"), &[]));
        assert!(!list.admits(Some("dave@other.org"), &[]));
        assert!(list.admits(None, &["ops".into()]));
        assert!(!list.admits(None, &["dev".into()]));
    }
}
