//! Sign-in with GitHub or Google: the OAuth2 authorization-code flow with PKCE, sessions and
//! the signed-in user.
//!
//! - `GET /auth/{provider}/login?next=/path` keeps a fresh CSRF `state`, the PKCE verifier
//!   and where to return in the session, then sends the browser to the provider.
//! - `GET /auth/{provider}/callback?code&state` checks that the state is the one this session
//!   is waiting for (and forgets it: a callback works once), exchanges the code, fetches the
//!   profile and signs in (axum-login gives the session a new id). Every failure lands on
//!   `/signin?error=…` with a reason the page explains.
//! - `POST /auth/logout` deletes the session.
//!
//! Identities are keyed by (provider, provider user id). Two providers reporting the same
//! email stay two users: we never link accounts by email.

pub mod provider;
pub mod session_store;

use self::provider::{Profile, Provider, ProviderSettings};
use self::session_store::Sessions;
use super::entity::app_user;
use super::rooms::now_secs;
use crate::protocol::account::safe_next;
use crate::protocol::manifest::to_hex;
use anyhow::Context;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_login::{AuthManagerLayer, AuthManagerLayerBuilder, AuthSession, AuthUser, AuthnBackend};
use oauth2::basic::{BasicClient, BasicErrorResponseType};
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope, TokenResponse,
    TokenUrl,
};
use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use tower_sessions::cookie::SameSite;
use tower_sessions::cookie::time::Duration;
use tower_sessions::{Expiry, SessionManagerLayer};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "meshdrop_session";
/// Sessions end after two weeks without a request.
const SESSION_IDLE_DAYS: i64 = 14;
/// How long a started sign-in may take.
const PENDING_MINUTES: i64 = 10;
/// Where the pending sign-in waits in the session between login and callback.
const PENDING_KEY: &str = "meshdrop.oauth_pending";
/// Longest `code` or `state` accepted from a callback URL.
const MAX_CALLBACK_PARAM: usize = 2048;

type OAuthClient =
    BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

pub type Auth = AuthSession<Backend>;
pub type AuthLayer = AuthManagerLayer<Backend, Sessions>;

/// The signed-in person, as every request sees them.
#[derive(Clone, Serialize, Deserialize)]
pub struct User {
    pub id: i64,
    pub provider: Provider,
    pub display_name: String,
    pub avatar_url: Option<String>,
    /// SHA-256 of the user's session key: sessions made before a key change stop working.
    auth_hash: Vec<u8>,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("provider", &self.provider)
            .finish()
    }
}

impl AuthUser for User {
    type Id = i64;
    fn id(&self) -> i64 {
        self.id
    }
    fn session_auth_hash(&self) -> &[u8] {
        &self.auth_hash
    }
}

impl From<app_user::Model> for User {
    fn from(row: app_user::Model) -> Self {
        let provider = Provider::from_slug(&row.provider).unwrap_or(Provider::Github);
        User {
            id: row.id,
            provider,
            display_name: row.display_name,
            avatar_url: row.avatar_url,
            auth_hash: Sha256::digest(row.session_key.as_bytes()).to_vec(),
        }
    }
}

/// What the callback hands to the backend once the state has been checked.
pub struct Credentials {
    pub provider: Provider,
    pub code: String,
    pub verifier: String,
}

/// Why a sign-in did not complete. `kind` goes in the `/signin?error=` link.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("{0} sign-in is not configured")]
    NotConfigured(&'static str),
    #[error("you declined the sign-in at {0}")]
    Denied(&'static str),
    #[error("the sign-in answer did not match the sign-in this browser started")]
    StateMismatch,
    #[error("{provider} refused the sign-in code ({code})")]
    CodeRejected {
        provider: &'static str,
        code: String,
    },
    #[error("{provider} returned an error ({code})")]
    Provider {
        provider: &'static str,
        code: String,
    },
    #[error("could not reach {provider}: {reason}")]
    Unreachable {
        provider: &'static str,
        reason: String,
    },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl SignInError {
    /// The reason code shown by `/signin` (the page turns it into a sentence).
    fn kind(&self) -> &'static str {
        match self {
            SignInError::NotConfigured(_) => "unavailable",
            SignInError::Denied(_) => "denied",
            SignInError::StateMismatch => "state",
            SignInError::CodeRejected { .. } => "code",
            SignInError::Provider { .. } | SignInError::Unreachable { .. } => "provider",
            SignInError::Internal(_) => "internal",
        }
    }

    /// The provider's own error code, when it sent one that is safe to show.
    fn detail(&self) -> Option<&str> {
        match self {
            SignInError::CodeRejected { code, .. } | SignInError::Provider { code, .. } => {
                Some(code)
            }
            _ => None,
        }
    }
}

/// An OAuth error code as providers send them (`access_denied`, `invalid_grant`, …), or a
/// placeholder: nothing else from the provider is echoed into our pages.
fn safe_code(code: &str) -> String {
    let ok = !code.is_empty()
        && code.len() <= 64
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    if ok {
        code.to_owned()
    } else {
        "unknown_error".into()
    }
}

#[derive(Clone)]
pub struct Backend {
    inner: Arc<BackendInner>,
}

struct BackendInner {
    db: DatabaseConnection,
    providers: Vec<(ProviderSettings, OAuthClient)>,
    http: reqwest::Client,
}

impl Backend {
    pub fn new(
        db: DatabaseConnection,
        providers: &[ProviderSettings],
        public_url: &str,
    ) -> anyhow::Result<Self> {
        let clients = providers
            .iter()
            .map(|p| {
                let client = BasicClient::new(ClientId::new(p.client_id.clone()))
                    .set_client_secret(ClientSecret::new(p.secret().to_owned()))
                    .set_auth_uri(AuthUrl::new(p.auth_url.clone()).context("authorize URL")?)
                    .set_token_uri(TokenUrl::new(p.token_url.clone()).context("token URL")?)
                    .set_redirect_uri(
                        RedirectUrl::new(callback_url(public_url, p.provider))
                            .context("callback URL")?,
                    );
                Ok((p.clone(), client))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        // Redirects are not followed: the token endpoint must answer itself (oauth2's advice
        // against SSRF), and every call has a deadline.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(15))
            .build()
            .context("building the HTTP client")?;
        Ok(Self {
            inner: Arc::new(BackendInner {
                db,
                providers: clients,
                http,
            }),
        })
    }

    /// Providers with credentials, in display order: the only ones the sign-in page shows.
    pub fn providers(&self) -> Vec<Provider> {
        self.inner
            .providers
            .iter()
            .map(|(p, _)| p.provider)
            .collect()
    }

    fn client(&self, provider: Provider) -> Option<&(ProviderSettings, OAuthClient)> {
        self.inner
            .providers
            .iter()
            .find(|(p, _)| p.provider == provider)
    }

    /// Inserts or refreshes the user for this identity. Never matches on email.
    async fn upsert(&self, profile: Profile) -> anyhow::Result<app_user::Model> {
        let now = now_secs();
        let (profile_provider, profile_id) =
            (profile.provider.slug(), profile.provider_user_id.clone());
        let existing = app_user::Entity::find()
            .filter(app_user::Column::Provider.eq(profile.provider.slug()))
            .filter(app_user::Column::ProviderUserId.eq(profile.provider_user_id.clone()))
            .one(&self.inner.db)
            .await
            .context("looking up a user")?;
        let row = match existing {
            Some(row) => {
                let mut active: app_user::ActiveModel = row.into();
                active.display_name = Set(profile.display_name);
                active.avatar_url = Set(profile.avatar_url);
                active.email = Set(profile.email);
                active.last_login_at = Set(now);
                active
                    .update(&self.inner.db)
                    .await
                    .context("updating a user")?
            }
            None => match (app_user::ActiveModel {
                provider: Set(profile.provider.slug().to_owned()),
                provider_user_id: Set(profile.provider_user_id),
                display_name: Set(profile.display_name),
                avatar_url: Set(profile.avatar_url),
                email: Set(profile.email),
                session_key: Set(to_hex(&rand::random::<[u8; 32]>())),
                created_at: Set(now),
                last_login_at: Set(now),
                ..Default::default()
            })
            .insert(&self.inner.db)
            .await
            {
                Ok(row) => row,
                // Two first sign-ins at once (two tabs): the other one created the user.
                Err(e) => app_user::Entity::find()
                    .filter(app_user::Column::Provider.eq(profile_provider))
                    .filter(app_user::Column::ProviderUserId.eq(profile_id))
                    .one(&self.inner.db)
                    .await
                    .context("looking up a user")?
                    .ok_or(e)
                    .context("storing a new user")?,
            },
        };
        Ok(row)
    }
}

pub fn callback_url(public_url: &str, provider: Provider) -> String {
    format!("{public_url}/auth/{}/callback", provider.slug())
}

impl AuthnBackend for Backend {
    type User = User;
    type Credentials = Credentials;
    type Error = SignInError;

    async fn authenticate(&self, creds: Credentials) -> Result<Option<User>, SignInError> {
        let label = creds.provider.label();
        let (settings, client) = self
            .client(creds.provider)
            .ok_or(SignInError::NotConfigured(label))?;
        let token = client
            .exchange_code(AuthorizationCode::new(creds.code))
            .set_pkce_verifier(PkceCodeVerifier::new(creds.verifier))
            .request_async(&self.inner.http)
            .await
            .map_err(|e| token_error(label, e))?;
        let profile =
            provider::fetch_profile(settings, &self.inner.http, token.access_token().secret())
                .await
                .map_err(|e| match e {
                    provider::ProfileError::Request(reason) => SignInError::Unreachable {
                        provider: label,
                        reason,
                    },
                    provider::ProfileError::Status(status) => SignInError::Provider {
                        provider: label,
                        code: format!("profile_http_{status}"),
                    },
                    provider::ProfileError::Invalid(_) => SignInError::Provider {
                        provider: label,
                        code: "invalid_profile".into(),
                    },
                })?;
        Ok(Some(self.upsert(profile).await?.into()))
    }

    async fn get_user(&self, id: &i64) -> Result<Option<User>, SignInError> {
        let row = app_user::Entity::find_by_id(*id)
            .one(&self.inner.db)
            .await
            .context("loading the signed-in user")?;
        Ok(row.map(User::from))
    }
}

/// Turns a failed code exchange into a reason. GitHub reports a bad code with HTTP 200 and an
/// `error` field, which oauth2 sees as an unparsable token; Google uses a 400 error body.
fn token_error<RE: std::error::Error>(
    provider: &'static str,
    e: RequestTokenError<RE, oauth2::basic::BasicErrorResponse>,
) -> SignInError {
    #[derive(Deserialize)]
    struct ErrorBody {
        error: String,
    }
    let rejected = |code: &str| SignInError::CodeRejected {
        provider,
        code: safe_code(code),
    };
    match e {
        RequestTokenError::ServerResponse(body) => match body.error() {
            BasicErrorResponseType::InvalidGrant => rejected("invalid_grant"),
            other => SignInError::Provider {
                provider,
                code: safe_code(other.as_ref()),
            },
        },
        RequestTokenError::Parse(_, body) => match serde_json::from_slice::<ErrorBody>(&body) {
            Ok(ErrorBody { error })
                if error == "bad_verification_code" || error == "invalid_grant" =>
            {
                rejected(&error)
            }
            Ok(ErrorBody { error }) => SignInError::Provider {
                provider,
                code: safe_code(&error),
            },
            Err(_) => SignInError::Provider {
                provider,
                code: "invalid_token_response".into(),
            },
        },
        RequestTokenError::Request(e) => SignInError::Unreachable {
            provider,
            reason: e.to_string(),
        },
        RequestTokenError::Other(_) => SignInError::Provider {
            provider,
            code: "invalid_token_response".into(),
        },
    }
}

/// The session cookie: HttpOnly, SameSite=Lax (the provider's redirect back is a cross-site
/// navigation, which Strict would strip), Secure when the public URL is https.
pub fn layer(backend: Backend, sessions: Sessions, public_url: &str) -> AuthLayer {
    let session_layer = SessionManagerLayer::new(sessions)
        .with_name(SESSION_COOKIE)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(public_url.starts_with("https://"))
        .with_expiry(Expiry::OnInactivity(Duration::days(SESSION_IDLE_DAYS)));
    AuthManagerLayerBuilder::new(backend, session_layer).build()
}

/// The sign-in this session started and has not finished.
#[derive(Serialize, Deserialize)]
struct Pending {
    provider: Provider,
    state: String,
    verifier: String,
    next: String,
}

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

fn signin_error(provider: Option<Provider>, error: &SignInError) -> Response {
    match error {
        SignInError::Internal(e) => tracing::error!(error = format!("{e:#}"), "sign-in failed"),
        other => tracing::info!(reason = %other, "sign-in did not complete"),
    }
    let mut url = format!("/signin?error={}", error.kind());
    if let Some(p) = provider {
        url.push_str(&format!("&provider={}", p.slug()));
    }
    if let Some(detail) = error.detail() {
        url.push_str(&format!("&detail={detail}"));
    }
    Redirect::to(&url).into_response()
}

pub async fn login(
    Path(slug): Path<String>,
    Query(query): Query<LoginQuery>,
    auth: Auth,
) -> Response {
    let Some(provider) = Provider::from_slug(&slug) else {
        return (StatusCode::NOT_FOUND, "unknown sign-in provider").into_response();
    };
    let Some((_, client)) = auth.backend.client(provider) else {
        return signin_error(
            Some(provider),
            &SignInError::NotConfigured(provider.label()),
        );
    };
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client.authorize_url(CsrfToken::new_random);
    for scope in provider.scopes() {
        request = request.add_scope(Scope::new((*scope).to_owned()));
    }
    let (url, state) = request.set_pkce_challenge(challenge).url();
    let pending = Pending {
        provider,
        state: state.secret().clone(),
        verifier: verifier.secret().clone(),
        next: safe_next(query.next.as_deref()),
    };
    // A sign-in in progress lives 10 minutes: an abandoned one costs the store little.
    if auth.user.is_none() {
        auth.session
            .set_expiry(Some(Expiry::OnInactivity(Duration::minutes(
                PENDING_MINUTES,
            ))));
    }
    if let Err(e) = auth.session.insert(PENDING_KEY, pending).await {
        return signin_error(Some(provider), &SignInError::Internal(e.into()));
    }
    Redirect::to(url.as_str()).into_response()
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// Compares secrets without an early exit (hashing first makes the lengths equal).
fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

pub async fn callback(
    Path(slug): Path<String>,
    Query(query): Query<CallbackQuery>,
    mut auth: Auth,
) -> Response {
    let Some(provider) = Provider::from_slug(&slug) else {
        return (StatusCode::NOT_FOUND, "unknown sign-in provider").into_response();
    };
    // The pending sign-in is used up by this callback whatever happens: a replayed
    // callback URL finds nothing to match.
    let pending: Option<Pending> = match auth.session.remove(PENDING_KEY).await {
        Ok(p) => p,
        Err(e) => return signin_error(Some(provider), &SignInError::Internal(e.into())),
    };
    let state_ok = match (&pending, &query.state) {
        (Some(p), Some(state)) => {
            p.provider == provider
                && state.len() <= MAX_CALLBACK_PARAM
                && same_secret(&p.state, state)
        }
        _ => false,
    };
    if !state_ok {
        return signin_error(Some(provider), &SignInError::StateMismatch);
    }
    let pending = pending.expect("checked above");
    if let Some(error) = query.error {
        let error = if error == "access_denied" {
            SignInError::Denied(provider.label())
        } else {
            SignInError::Provider {
                provider: provider.label(),
                code: safe_code(&error),
            }
        };
        return signin_error(Some(provider), &error);
    }
    let Some(code) = query
        .code
        .filter(|c| !c.is_empty() && c.len() <= MAX_CALLBACK_PARAM)
    else {
        return signin_error(
            Some(provider),
            &SignInError::Provider {
                provider: provider.label(),
                code: "missing_code".into(),
            },
        );
    };
    let creds = Credentials {
        provider,
        code,
        verifier: pending.verifier,
    };
    let user = match auth.authenticate(creds).await {
        Ok(Some(user)) => user,
        Ok(None) => return signin_error(Some(provider), &SignInError::StateMismatch),
        Err(axum_login::Error::Backend(e)) => return signin_error(Some(provider), &e),
        Err(axum_login::Error::Session(e)) => {
            return signin_error(Some(provider), &SignInError::Internal(e.into()));
        }
    };
    // Any earlier identity in this session ends first, so login always issues a new
    // session id (axum-login only rotates sessions that were not signed in).
    if auth.user.is_some()
        && let Err(e) = auth.logout().await
    {
        return signin_error(
            Some(provider),
            &SignInError::Internal(anyhow::anyhow!("{e}")),
        );
    }
    if let Err(e) = auth.login(&user).await {
        return signin_error(
            Some(provider),
            &SignInError::Internal(anyhow::anyhow!("{e}")),
        );
    }
    auth.session
        .set_expiry(Some(Expiry::OnInactivity(Duration::days(
            SESSION_IDLE_DAYS,
        ))));
    tracing::info!(user = user.id, provider = provider.slug(), "signed in");
    Redirect::to(&pending.next).into_response()
}

pub async fn logout(mut auth: Auth) -> Response {
    if let Err(e) = auth.logout().await {
        tracing::error!(error = %e, "signing out");
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "could not sign out; please try again",
        )
            .into_response();
    }
    Redirect::to("/").into_response()
}

/// Every request passes here, inside the session layer:
/// - `/rooms` needs a signed-in person: anyone else goes to sign in and comes back;
/// - requests that change an account's rooms or end its session must come from our own
///   pages (SameSite=Lax already keeps the cookie off cross-site POSTs; this also refuses
///   sibling subdomains and anything else a browser marks as not same-origin);
/// - a signed-in session is refreshed at most once a day, so it ends after
///   [`SESSION_IDLE_DAYS`] without use rather than that long after signing in, without a
///   store write on every request.
pub async fn guard(
    auth: Auth,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = request.uri().path();
    let protected = path == "/rooms" || path == "/rooms/";
    if protected && auth.user.is_none() {
        return Redirect::to("/signin?next=/rooms").into_response();
    }
    let changes_account = request.method() != axum::http::Method::GET
        && request.method() != axum::http::Method::HEAD
        && (path.starts_with("/api/my/") || path == "/auth/logout");
    if changes_account && !same_origin(&request) {
        return (StatusCode::FORBIDDEN, "cross-site request refused").into_response();
    }
    if auth.user.is_some() {
        let now = now_secs();
        let touched: Option<i64> = auth.session.get(TOUCHED_KEY).await.ok().flatten();
        if touched.is_none_or(|t| now - t >= TOUCH_EVERY_SECS) {
            // Marks the session changed: it is saved with a fresh expiry.
            let _ = auth.session.insert(TOUCHED_KEY, now).await;
        }
    }
    next.run(request).await
}

/// When the session was last refreshed (unix seconds).
const TOUCHED_KEY: &str = "meshdrop.touched";
const TOUCH_EVERY_SECS: i64 = 24 * 3600;

/// Whether the browser says the request comes from this site's own pages. Requests without
/// either header (curl, tests) are not from a browser page and carry no ambient risk.
fn same_origin(request: &axum::extract::Request) -> bool {
    let headers = request.headers();
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return site == "same-origin" || site == "none";
    }
    match headers
        .get(axum::http::header::ORIGIN)
        .and_then(|v| v.to_str().ok())
    {
        None => true,
        Some(origin) => {
            let host = headers
                .get(axum::http::header::HOST)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            origin.split_once("://").is_some_and(|(_, o)| o == host)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_codes_are_filtered_before_display() {
        assert_eq!(safe_code("invalid_grant"), "invalid_grant");
        assert_eq!(safe_code("<script>"), "unknown_error");
        assert_eq!(safe_code(&"a".repeat(65)), "unknown_error");
    }

    #[test]
    fn secrets_compare_by_value() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
    }
}
