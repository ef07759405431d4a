//! `[auth.ldap]`: a directory. Passwords cross the connection, so it must be `ldaps://`
//! or `ldap://` with `starttls = true`; plain `ldap://` only to this machine. The
//! search account's password comes from a file, never the manifest. The user filter must
//! hold `{username}` (escaped before it goes in), and the group filter `{dn}`.

use toml::Spanned;

use crate::manifest::raw::RawLdap;
use crate::manifest::{Ldap, Secret, names};

use super::Checker;
use super::oidc::is_loopback;

const DEFAULT_USER_FILTER: &str = "(uid={username})";
const DEFAULT_GROUP_FILTER: &str = "(member={dn})";

impl Checker<'_> {
    pub(super) fn ldap(&mut self, raw: &Spanned<RawLdap>) -> Option<Ldap> {
        let raw = raw.get_ref();
        let mut ok = self.ldap_url(&raw.url, raw.starttls);
        let bind_password = match (&raw.bind_dn, &raw.bind_password_file) {
            (Some(_), Some(file)) => self.secret_file(file, "the bind password file"),
            (Some(dn), None) => {
                self.error_help(
                    dn.span(),
                    "`bind_dn` needs `bind_password_file`".into(),
                    "put the search account's password in a file only ftw can read, and name it in `bind_password_file`".into(),
                );
                None
            }
            (None, Some(file)) => {
                self.error(
                    file.span(),
                    "`bind_password_file` without `bind_dn`: whose password is it?".into(),
                );
                None
            }
            (None, None) => Some(Secret(String::new())),
        };
        ok &= bind_password.is_some();
        let user_filter = self.filter(&raw.user_filter, DEFAULT_USER_FILTER, "{username}");
        let group_filter = self.filter(&raw.group_filter, DEFAULT_GROUP_FILTER, "{dn}");
        ok &= user_filter.is_some() && group_filter.is_some();
        if raw.base_dn.get_ref().trim().is_empty() {
            self.error(raw.base_dn.span(), "`base_dn` is empty".into());
            ok = false;
        }
        let mut allowed_groups = None;
        if let Some(groups) = &raw.allowed_groups {
            let mut list = Vec::new();
            for group in groups {
                let text = group.get_ref().strip_prefix('@').unwrap_or(group.get_ref());
                ok &=
                    self.name_follows(&names::GROUP, &Spanned::new(group.span(), text.to_string()));
                list.push(text.to_string());
            }
            allowed_groups = Some(list);
        }
        let map = self.group_map(&raw.map);
        let ca_file = raw
            .ca_file
            .as_ref()
            .map(|f| self.readable_file(f, "the CA file"));
        let ldap = Ldap {
            url: raw.url.get_ref().clone(),
            starttls: raw.starttls,
            ca_file,
            bind_dn: raw.bind_dn.as_ref().map(|d| d.get_ref().clone()),
            bind_password: bind_password?,
            base_dn: raw.base_dn.get_ref().clone(),
            user_filter: user_filter?,
            username_attribute: raw
                .username_attribute
                .as_ref()
                .map_or_else(|| "uid".into(), |a| a.get_ref().clone()),
            group_base_dn: raw.group_base_dn.as_ref().map(|d| d.get_ref().clone()),
            group_filter: group_filter?,
            allowed_groups,
            map: map?,
        };
        ok.then_some(ldap)
    }

    fn ldap_url(&mut self, url: &Spanned<String>, starttls: bool) -> bool {
        let why = match url::Url::parse(url.get_ref()) {
            Err(e) => format!("`url` is not a URL ({e})"),
            Ok(u) if u.scheme() == "ldaps" => return true,
            Ok(u) if u.scheme() == "ldap" && (starttls || is_loopback(&u)) => return true,
            Ok(u) if u.scheme() == "ldap" => {
                "`url` is plain ldap:// to another machine: passwords would cross the network in the clear".into()
            }
            Ok(u) => format!("`url` must be ldaps:// or ldap://, not {}://", u.scheme()),
        };
        self.error_help(
            url.span(),
            why,
            "use \"ldaps://ldap.example.com\", or keep ldap:// and set `starttls = true`".into(),
        );
        false
    }

    fn filter(
        &mut self,
        filter: &Option<Spanned<String>>,
        default: &str,
        placeholder: &str,
    ) -> Option<String> {
        let Some(filter) = filter else {
            return Some(default.to_string());
        };
        let text = filter.get_ref();
        let balanced = text.starts_with('(')
            && text.ends_with(')')
            && text.matches('(').count() == text.matches(')').count();
        if !text.contains(placeholder) || !balanced {
            self.error_help(
                filter.span(),
                format!("the filter {text:?} must be in parentheses and hold {placeholder}"),
                format!("e.g. {default:?}"),
            );
            return None;
        }
        Some(text.clone())
    }
}
