//! OpenID Connect: the authorization code flow with PKCE (S256), through the
//! `openidconnect` crate, which does discovery, the token request and the ID token's
//! checks (signature against the provider's keys, `iss`, `aud`, `exp`, `nonce`, and no
//! `alg: none`). ftw adds what the crate leaves to its user:
//!
//! - only asymmetric signatures the provider announces (no HMAC under the client
//!   secret, no `none`);
//! - a minute of leeway on `exp`, and `iat` no older than ten minutes or later than a
//!   minute from now;
//! - the provider's settings and keys are cached for an hour, and the keys fetched again
//!   when a token names a key ftw does not know (at most every ten seconds, so forged
//!   tokens cannot make ftw hammer the provider);
//! - user info is fetched when the provider has the endpoint, for claims (email,
//!   groups) that some providers leave out of the ID token;
//! - the HTTP client follows no redirects and gives up after ten seconds.
//!
//! A provider that cannot be reached does not stop ftw from starting: its button shows
//! an error when pressed, and the next press tries again.

pub mod flow;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreClientAuthMethod, CoreErrorResponseType, CoreGenderClaim,
    CoreJsonWebKey, CoreJsonWebKeySet, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
    CoreResponseType, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, AuthType, AuthenticationFlow, AuthorizationCode, ClaimsVerificationError,
    Client, ClientId, ClientSecret, CsrfToken, EmptyExtraTokenFields, EndpointMaybeSet,
    EndpointNotSet, EndpointSet, IdTokenFields, IdTokenVerifier, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, ProviderMetadataWithLogout,
    RedirectUrl, Scope, SignatureVerificationError, StandardErrorResponse, StandardTokenResponse,
    UserInfoClaims,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::manifest::{Auth, OidcProvider};
pub use flow::Flow;

/// How long discovery and keys are trusted before they are fetched again.
const METADATA_TTL: Duration = Duration::from_secs(3600);
/// The soonest the keys are fetched again for a token that names an unknown key.
const KEYS_REFETCH: Duration = Duration::from_secs(10);
/// Clock difference allowed between ftw and the provider.
const LEEWAY_SECS: i64 = 60;
/// The oldest `iat` accepted: the token is minted when ftw redeems the code.
const MAX_TOKEN_AGE_SECS: i64 = 600;
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// Every claim besides the standard ones (groups, custom user names).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OtherClaims {
    #[serde(flatten)]
    pub claims: Map<String, Value>,
}
impl AdditionalClaims for OtherClaims {}

type IdFields = IdTokenFields<
    OtherClaims,
    EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
type TokenResponse = StandardTokenResponse<IdFields, CoreTokenType>;
type Metadata = ProviderMetadataWithLogout;
type OidcClient = Client<
    OtherClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    TokenResponse,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Why a sign-in with a provider did not finish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The provider could not be reached or answered nonsense.
    Unreachable(String),
    /// The provider's answer did not pass a check (token, signature, nonce, ...).
    Refused(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Unreachable(why) | Failure::Refused(why) => f.write_str(why),
        }
    }
}

/// A provider's settings as fetched, with its keys.
struct Discovered {
    /// The manifest's settings these were fetched for: a reload that changes them
    /// fetches again.
    settings: String,
    metadata: Metadata,
    keys: RwLock<(CoreJsonWebKeySet, Instant)>,
    fetched: Instant,
}

/// The identity providers' fetched settings, shared by every request.
pub struct Providers {
    http: reqwest::Client,
    cache: Mutex<HashMap<String, Arc<Discovered>>>,
}

/// Where to send the browser, and what to keep until it comes back.
pub struct Started {
    pub url: url::Url,
    pub flow: Flow,
}

impl Default for Providers {
    fn default() -> Self {
        Self::new()
    }
}

impl Providers {
    pub fn new() -> Providers {
        let http = reqwest::Client::builder()
            // Following redirects would let a provider's answer point ftw anywhere.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(HTTP_TIMEOUT)
            .connect_timeout(HTTP_TIMEOUT / 2)
            .user_agent(concat!("ftw/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the HTTP client's settings are valid");
        Providers {
            http,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The HTTP client for identity providers (no redirects, short timeouts).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Starts a sign-in: the provider's authorization URL, with a fresh `state`, `nonce`
    /// and PKCE challenge.
    pub async fn begin(
        &self,
        provider: &OidcProvider,
        redirect: &str,
        next: &str,
        now: u64,
    ) -> Result<Started, Failure> {
        let found = self.discovered(provider).await?;
        let client = self.client(provider, &found, redirect)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let state = || CsrfToken::new(crate::auth::b64(&crate::auth::random::<16>()));
        let mut request = client.authorize_url(
            AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
            state,
            Nonce::new_random,
        );
        for scope in provider.scopes.iter().filter(|s| *s != "openid") {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
        Ok(Started {
            url,
            flow: Flow {
                provider: format!("oidc:{}", provider.name),
                state: state.secret().clone(),
                nonce: nonce.secret().clone(),
                pkce_verifier: verifier.secret().clone(),
                created: now,
                next: next.to_string(),
            },
        })
    }

    /// Redeems `code` and checks the ID token; the user's claims (ID token, then user
    /// info for what it lacks) as JSON.
    pub async fn finish(
        &self,
        provider: &OidcProvider,
        redirect: &str,
        flow: &Flow,
        code: &str,
    ) -> Result<Map<String, Value>, Failure> {
        let found = self.discovered(provider).await?;
        let client = self.client(provider, &found, redirect)?;
        let tokens = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|e| Failure::Unreachable(format!("the provider has no token endpoint: {e}")))?
            .set_pkce_verifier(PkceCodeVerifier::new(flow.pkce_verifier.clone()))
            .request_async(&self.http)
            .await
            .map_err(|e| Failure::Refused(format!("the code was not accepted: {}", chain(&e))))?;
        let id_token = tokens
            .extra_fields()
            .id_token()
            .ok_or_else(|| Failure::Refused("the provider sent no ID token".into()))?;
        let nonce = Nonce::new(flow.nonce.clone());
        let checked = {
            let verifier = self.verifier(provider, &found);
            id_token.claims(&verifier, &nonce).cloned()
        };
        let claims = match checked {
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )) if self.refetch_keys(&found).await => {
                let verifier = self.verifier(provider, &found);
                id_token.claims(&verifier, &nonce).cloned()
            }
            other => other,
        }
        .map_err(|e| Failure::Refused(format!("the ID token was refused: {}", chain(&e))))?;
        let mut json = match serde_json::to_value(&claims) {
            Ok(Value::Object(map)) => map,
            _ => {
                return Err(Failure::Refused(
                    "the ID token's claims are not an object".into(),
                ));
            }
        };
        let info = client
            .user_info(
                tokens.access_token().clone(),
                Some(claims.subject().clone()),
            )
            .ok()
            .map(|request| request.request_async::<OtherClaims, _, CoreGenderClaim>(&self.http));
        if let Some(info) = info {
            let info: UserInfoClaims<OtherClaims, CoreGenderClaim> = info
                .await
                .map_err(|e| Failure::Unreachable(format!("user info: {}", chain(&e))))?;
            if let Ok(Value::Object(more)) = serde_json::to_value(&info) {
                for (key, value) in more {
                    json.entry(key).or_insert(value);
                }
            }
        }
        Ok(json)
    }

    /// Where to send the browser to end its session at the provider (RP-initiated
    /// logout), if the provider has such an endpoint and was fetched already.
    pub fn logout_url(&self, provider: &OidcProvider, after: &str) -> Option<url::Url> {
        let cache = self.cache.lock().expect("oidc cache lock");
        let found = cache.get(&provider.name)?;
        let endpoint = found
            .metadata
            .additional_metadata()
            .end_session_endpoint
            .clone()?;
        let mut url = endpoint.url().clone();
        url.query_pairs_mut()
            .append_pair("client_id", &provider.client_id)
            .append_pair("post_logout_redirect_uri", after);
        Some(url)
    }

    /// Fetches each provider's settings now, so a broken `issuer` shows in the log at
    /// start rather than at the first sign-in, and the sign-in page's policy knows
    /// where its buttons lead. A provider that cannot be reached is tried again when
    /// someone presses its button.
    pub async fn warm(&self, providers: &[OidcProvider]) {
        for provider in providers {
            match self.discovered(provider).await {
                Ok(_) => tracing::info!(
                    "identity provider `{}` is ready ({})",
                    provider.name,
                    provider.issuer
                ),
                Err(e) => tracing::warn!(
                    "identity provider `{}` cannot be reached yet: {e}",
                    provider.name
                ),
            }
        }
    }

    /// The origins a sign-in or sign-out form may lead to: each OpenID provider's
    /// issuer, and its authorization and end-session endpoints once they are known, and
    /// GitHub's web address.
    pub fn form_origins(&self, auth: &Auth) -> Vec<String> {
        let cache = self.cache.lock().expect("oidc cache lock");
        let mut origins: Vec<String> = Vec::new();
        let mut add = |url: &url::Url| {
            let origin = url.origin().ascii_serialization();
            if origin != "null" && !origins.contains(&origin) {
                origins.push(origin);
            }
        };
        if let Some(Ok(url)) = auth.github.as_ref().map(|g| url::Url::parse(&g.url)) {
            add(&url);
        }
        for provider in &auth.oidc {
            if let Ok(url) = url::Url::parse(&provider.issuer) {
                add(&url);
            }
            if let Some(found) = cache.get(&provider.name) {
                add(found.metadata.authorization_endpoint().url());
                if let Some(end) = &found.metadata.additional_metadata().end_session_endpoint {
                    add(end.url());
                }
            }
        }
        origins
    }

    /// The provider's settings and keys: cached, or fetched now.
    async fn discovered(&self, provider: &OidcProvider) -> Result<Arc<Discovered>, Failure> {
        let settings = format!("{}\0{}", provider.issuer, provider.client_id);
        if let Some(found) = self
            .cache
            .lock()
            .expect("oidc cache lock")
            .get(&provider.name)
            && found.settings == settings
            && found.fetched.elapsed() < METADATA_TTL
        {
            return Ok(Arc::clone(found));
        }
        let issuer = IssuerUrl::new(provider.issuer.clone())
            .map_err(|e| Failure::Unreachable(format!("the issuer is not a URL: {e}")))?;
        let metadata = Metadata::discover_async(issuer, &self.http)
            .await
            .map_err(|e| {
                Failure::Unreachable(format!(
                    "cannot read {}/.well-known/openid-configuration: {}",
                    provider.issuer.trim_end_matches('/'),
                    chain(&e)
                ))
            })?;
        let found = Arc::new(Discovered {
            settings,
            keys: RwLock::new((metadata.jwks().clone(), Instant::now())),
            metadata,
            fetched: Instant::now(),
        });
        self.cache
            .lock()
            .expect("oidc cache lock")
            .insert(provider.name.clone(), Arc::clone(&found));
        Ok(found)
    }

    /// Fetches the keys again unless that was done moments ago; whether it was.
    async fn refetch_keys(&self, found: &Discovered) -> bool {
        if found.keys.read().expect("keys lock").1.elapsed() < KEYS_REFETCH {
            return false;
        }
        match CoreJsonWebKeySet::fetch_async(found.metadata.jwks_uri(), &self.http).await {
            Ok(keys) => {
                *found.keys.write().expect("keys lock") = (keys, Instant::now());
                true
            }
            Err(e) => {
                tracing::warn!("cannot fetch the provider's keys again: {}", chain(&e));
                false
            }
        }
    }

    fn client(
        &self,
        provider: &OidcProvider,
        found: &Discovered,
        redirect: &str,
    ) -> Result<OidcClient, Failure> {
        let redirect = RedirectUrl::new(redirect.to_string())
            .map_err(|e| Failure::Unreachable(format!("bad redirect URL: {e}")))?;
        let metadata = found
            .metadata
            .clone()
            .set_jwks(found.keys.read().expect("keys lock").0.clone());
        // client_secret_basic unless the provider only takes the secret in the body.
        let basic = found
            .metadata
            .token_endpoint_auth_methods_supported()
            .is_none_or(|methods| {
                methods.contains(&CoreClientAuthMethod::ClientSecretBasic)
                    || !methods.contains(&CoreClientAuthMethod::ClientSecretPost)
            });
        let client = OidcClient::from_provider_metadata(
            metadata,
            ClientId::new(provider.client_id.clone()),
            Some(ClientSecret::new(provider.client_secret.0.clone())),
        )
        .set_redirect_uri(redirect)
        .set_auth_type(if basic {
            AuthType::BasicAuth
        } else {
            AuthType::RequestBody
        });
        Ok(client)
    }

    fn verifier<'a>(
        &self,
        provider: &OidcProvider,
        found: &Discovered,
    ) -> IdTokenVerifier<'a, CoreJsonWebKey> {
        let algs: Vec<CoreJwsSigningAlgorithm> = found
            .metadata
            .id_token_signing_alg_values_supported()
            .iter()
            .filter(|alg| asymmetric(alg))
            .cloned()
            .collect();
        IdTokenVerifier::new_public_client(
            ClientId::new(provider.client_id.clone()),
            found.metadata.issuer().clone(),
            found.keys.read().expect("keys lock").0.clone(),
        )
        .set_allowed_algs(algs)
        .set_time_fn(|| chrono::Utc::now() - chrono::Duration::seconds(LEEWAY_SECS))
        .set_issue_time_verifier_fn(|iat| {
            let now = chrono::Utc::now();
            if iat > now + chrono::Duration::seconds(LEEWAY_SECS) {
                Err(format!("issued in the future ({iat})"))
            } else if iat < now - chrono::Duration::seconds(MAX_TOKEN_AGE_SECS) {
                Err(format!("issued too long ago ({iat})"))
            } else {
                Ok(())
            }
        })
    }
}

/// Signatures that need the provider's private key (not the client secret, not none).
fn asymmetric(alg: &CoreJwsSigningAlgorithm) -> bool {
    use CoreJwsSigningAlgorithm as A;
    !matches!(alg, A::HmacSha256 | A::HmacSha384 | A::HmacSha512 | A::None)
}

/// An error and its causes, on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}
