//! Signing in with GitHub (or GitHub Enterprise): the OAuth app flow with PKCE through
//! the `oauth2` crate, then GitHub's REST API for who the user is (`/user`), their
//! organisations (`/user/orgs`) and teams (`/user/teams`). Organisations become groups
//! `org`, teams `org/team`, all in lower case. Only the first 100 organisations and teams
//! are read.

use oauth2::basic::BasicClient;
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse, TokenUrl,
};
use serde::Deserialize;

use super::oidc::{Failure, Flow, Started};
use crate::manifest::GitHub;

/// Who GitHub says the user is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub login: String,
    /// GitHub's user id: a login can be renamed and taken by someone else, the id not.
    pub id: u64,
    /// `org` and `org/team`, lower case.
    pub groups: Vec<String>,
}

fn client(
    github: &GitHub,
    redirect: &str,
) -> Result<
    BasicClient<
        oauth2::EndpointSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointSet,
    >,
    Failure,
> {
    let bad = |e: url::ParseError| Failure::Unreachable(format!("bad GitHub address: {e}"));
    Ok(BasicClient::new(ClientId::new(github.client_id.clone()))
        .set_client_secret(ClientSecret::new(github.client_secret.0.clone()))
        .set_auth_uri(AuthUrl::new(format!("{}/login/oauth/authorize", github.url)).map_err(bad)?)
        .set_token_uri(
            TokenUrl::new(format!("{}/login/oauth/access_token", github.url)).map_err(bad)?,
        )
        .set_redirect_uri(RedirectUrl::new(redirect.to_string()).map_err(bad)?)
        .set_auth_type(AuthType::RequestBody))
}

/// GitHub's authorization URL, with a fresh `state` and PKCE challenge.
pub fn begin(github: &GitHub, redirect: &str, next: &str, now: u64) -> Result<Started, Failure> {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let state = || CsrfToken::new(crate::auth::b64(&crate::auth::random::<16>()));
    let (url, state) = client(github, redirect)?
        .authorize_url(state)
        .add_scope(Scope::new("read:org".into()))
        .set_pkce_challenge(challenge)
        .url();
    Ok(Started {
        url,
        flow: Flow {
            provider: "github".into(),
            state: state.secret().clone(),
            nonce: String::new(),
            pkce_verifier: verifier.secret().clone(),
            created: now,
            next: next.to_string(),
        },
    })
}

#[derive(Deserialize)]
struct User {
    login: String,
    id: u64,
}

#[derive(Deserialize)]
struct Org {
    login: String,
}

#[derive(Deserialize)]
struct Team {
    slug: String,
    organization: Org,
}

/// Redeems `code`, then asks the API who the user is and where they belong.
pub async fn finish(
    http: &reqwest::Client,
    github: &GitHub,
    redirect: &str,
    flow: &Flow,
    code: &str,
) -> Result<Member, Failure> {
    let token = client(github, redirect)?
        .exchange_code(AuthorizationCode::new(code.to_string()))
        .set_pkce_verifier(PkceCodeVerifier::new(flow.pkce_verifier.clone()))
        .request_async(http)
        .await
        .map_err(|e| Failure::Refused(format!("GitHub did not accept the code: {e}")))?;
    let token = token.access_token().secret();
    let get = async |path: &str| -> Result<reqwest::Response, Failure> {
        http.get(format!("{}{path}", github.api_url))
            .bearer_auth(token)
            .header("accept", "application/vnd.github+json")
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| Failure::Unreachable(format!("GitHub's API ({path}): {e}")))
    };
    let parse =
        |e: reqwest::Error| Failure::Unreachable(format!("GitHub's API answered nonsense: {e}"));
    let user: User = get("/user").await?.json().await.map_err(parse)?;
    let orgs: Vec<Org> = get("/user/orgs?per_page=100")
        .await?
        .json()
        .await
        .map_err(parse)?;
    let teams: Vec<Team> = get("/user/teams?per_page=100")
        .await?
        .json()
        .await
        .map_err(parse)?;
    let mut groups: Vec<String> = orgs.into_iter().map(|o| o.login.to_lowercase()).collect();
    groups.extend(
        teams
            .into_iter()
            .map(|t| format!("{}/{}", t.organization.login, t.slug).to_lowercase()),
    );
    groups.sort();
    groups.dedup();
    Ok(Member {
        login: user.login,
        id: user.id,
        groups,
    })
}

impl GitHub {
    /// The groups ftw believes: allowed organisations, and teams of allowed
    /// organisations or allowed themselves. Anyone can make an organisation of any
    /// name, so one outside the allowlist proves nothing.
    pub fn trusted_groups(&self, groups: Vec<String>) -> Vec<String> {
        groups
            .into_iter()
            .filter(|g| {
                let org = g.split('/').next().unwrap_or(g);
                self.allowed_orgs.iter().any(|o| o == org) || self.allowed_teams.contains(g)
            })
            .collect()
    }

    /// Whether someone in `groups` (organisations and teams) may sign in.
    pub fn admits(&self, groups: &[String]) -> bool {
        groups
            .iter()
            .any(|g| self.allowed_orgs.contains(g) || self.allowed_teams.contains(g))
    }
}
