//! `[auth.github]`: a GitHub OAuth app. Somebody must be allowed (an organisation or a
//! team), the secret comes from exactly one place, and GitHub Enterprise addresses must
//! be https like github.com's (plain http only on this machine).

use toml::Spanned;

use crate::manifest::GitHub;
use crate::manifest::raw::RawGitHub;

use super::Checker;
use super::oidc::is_loopback;

impl Checker<'_> {
    pub(super) fn github(&mut self, raw: &Spanned<RawGitHub>) -> Option<GitHub> {
        let span = raw.span();
        let raw = raw.get_ref();
        let mut ok = true;
        if raw.client_id.get_ref().trim().is_empty() {
            self.error(raw.client_id.span(), "`client_id` is empty".into());
            ok = false;
        }
        let secret = self.one_secret(
            "github",
            &raw.client_id,
            &raw.client_secret,
            &raw.client_secret_file,
        );
        let url = self.https_url(raw.url.as_ref(), "https://github.com");
        let api_url = self.https_url(raw.api_url.as_ref(), "https://api.github.com");
        let lower = |list: &Option<Vec<Spanned<String>>>| -> Vec<String> {
            list.iter()
                .flatten()
                .map(|s| s.get_ref().trim().trim_start_matches('@').to_lowercase())
                .collect()
        };
        let allowed_orgs = lower(&raw.allowed_orgs);
        let allowed_teams = lower(&raw.allowed_teams);
        for (team, text) in raw.allowed_teams.iter().flatten().zip(&allowed_teams) {
            let parts: Vec<&str> = text.split('/').collect();
            if parts.len() != 2 || parts.iter().any(|p| p.is_empty()) {
                self.error_help(
                    team.span(),
                    format!("{:?} is not a team", team.get_ref()),
                    "write the organisation and the team's slug: \"acme/ops\"".into(),
                );
                ok = false;
            }
        }
        if allowed_orgs.is_empty() && allowed_teams.is_empty() {
            self.error_help(
                span,
                "nobody may sign in with GitHub: it allows no organisation or team".into(),
                "add `allowed_orgs = [\"your-org\"]` or `allowed_teams = [\"your-org/ops\"]`"
                    .into(),
            );
            ok = false;
        }
        let github = GitHub {
            client_id: raw.client_id.get_ref().clone(),
            client_secret: secret?,
            allowed_orgs,
            allowed_teams,
            url: url?,
            api_url: api_url?,
            label: raw
                .label
                .as_ref()
                .map_or_else(|| "Sign in with GitHub".into(), |l| l.get_ref().clone()),
        };
        ok.then_some(github)
    }

    /// An https address without a trailing slash (http only to this machine).
    fn https_url(&mut self, value: Option<&Spanned<String>>, default: &str) -> Option<String> {
        let Some(value) = value else {
            return Some(default.to_string());
        };
        let text = value.get_ref().trim_end_matches('/');
        match url::Url::parse(text) {
            Ok(u) if u.scheme() == "https" || (u.scheme() == "http" && is_loopback(&u)) => {
                Some(text.to_string())
            }
            _ => {
                self.error(
                    value.span(),
                    format!("{:?} must be an https:// address", value.get_ref()),
                );
                None
            }
        }
    }
}
