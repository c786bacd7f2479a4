//! The two sign-in providers and how each describes a person.
//!
//! GitHub: `GET {api}/user` for the id, login, name and avatar, and `GET {api}/user/emails` for
//! the verified primary email (the profile's own `email` is whatever the person made public).
//! Google: the OpenID Connect userinfo endpoint (`sub`, `name`, `picture`, `email`,
//! `email_verified`). Every endpoint is configurable so tests can point them at a local fake.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Github,
    Google,
}

impl Provider {
    pub const ALL: [Provider; 2] = [Provider::Github, Provider::Google];

    pub fn slug(self) -> &'static str {
        match self {
            Provider::Github => "github",
            Provider::Google => "google",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Provider::Github => "GitHub",
            Provider::Google => "Google",
        }
    }

    pub fn from_slug(slug: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.slug() == slug)
    }

    /// Scopes asking for the profile and email only.
    pub fn scopes(self) -> &'static [&'static str] {
        match self {
            Provider::Github => &["read:user", "user:email"],
            Provider::Google => &["openid", "profile", "email"],
        }
    }

    /// Production endpoints: authorize, token, and the profile base URL.
    pub fn default_endpoints(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Provider::Github => (
                "https://github.com/login/oauth/authorize",
                "https://github.com/login/oauth/access_token",
                "https://api.github.com",
            ),
            Provider::Google => (
                "https://accounts.google.com/o/oauth2/v2/auth",
                "https://oauth2.googleapis.com/token",
                "https://openidconnect.googleapis.com/v1/userinfo",
            ),
        }
    }
}

/// One configured provider. Debug never shows the secret.
#[derive(Clone)]
pub struct ProviderSettings {
    pub provider: Provider,
    pub client_id: String,
    pub client_secret: SecretString,
    pub auth_url: String,
    pub token_url: String,
    /// GitHub: the API base (`/user`, `/user/emails` are appended). Google: the userinfo URL.
    pub profile_url: String,
}

impl std::fmt::Debug for ProviderSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderSettings")
            .field("provider", &self.provider)
            .field("client_id", &self.client_id)
            .field("client_secret", &"****")
            .field("auth_url", &self.auth_url)
            .field("token_url", &self.token_url)
            .field("profile_url", &self.profile_url)
            .finish()
    }
}

impl ProviderSettings {
    pub fn secret(&self) -> &str {
        self.client_secret.expose_secret()
    }
}

/// Who signed in, as the provider describes them (bounded before it reaches the database).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    pub provider: Provider,
    pub provider_user_id: String,
    pub display_name: String,
    pub avatar_url: Option<String>,
    /// Only a verified address is kept.
    pub email: Option<String>,
}

/// Longest profile response read; a real one is a few KiB.
const MAX_PROFILE_BYTES: usize = 256 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("the profile request failed: {0}")]
    Request(String),
    #[error("the profile endpoint answered HTTP {0}")]
    Status(u16),
    #[error("the profile could not be read: {0}")]
    Invalid(String),
}

#[derive(Deserialize)]
struct GithubUser {
    id: u64,
    login: String,
    name: Option<String>,
    avatar_url: Option<String>,
}

#[derive(Deserialize)]
struct GithubEmail {
    email: String,
    primary: bool,
    verified: bool,
}

#[derive(Deserialize)]
struct GoogleUser {
    sub: String,
    name: Option<String>,
    picture: Option<String>,
    email: Option<String>,
    #[serde(default)]
    email_verified: bool,
}

async fn get_json<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
    token: &str,
) -> Result<T, ProfileError> {
    let mut response = http
        .get(url)
        .bearer_auth(token)
        .header(reqwest::header::ACCEPT, "application/json")
        // GitHub's API refuses requests without a User-Agent.
        .header(reqwest::header::USER_AGENT, "meshdrop")
        .send()
        .await
        .map_err(|e| ProfileError::Request(e.without_url().to_string()))?;
    if !response.status().is_success() {
        return Err(ProfileError::Status(response.status().as_u16()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| ProfileError::Request(e.without_url().to_string()))?
    {
        if body.len() + chunk.len() > MAX_PROFILE_BYTES {
            return Err(ProfileError::Invalid("the response is too large".into()));
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|e| ProfileError::Invalid(e.to_string()))
}

/// Keeps at most `max` characters of a provider-supplied string, without control characters.
fn bounded(s: &str, max: usize) -> String {
    s.chars().filter(|c| !c.is_control()).take(max).collect()
}

/// Only http(s) avatar links are shown (never `javascript:` or data URLs).
fn avatar(url: Option<String>) -> Option<String> {
    url.filter(|u| (u.starts_with("https://") || u.starts_with("http://")) && u.len() <= 500)
}

fn email(address: Option<String>) -> Option<String> {
    address.filter(|e| e.len() <= 320 && e.contains('@'))
}

/// Fetches and normalises the signed-in person's profile with the access token.
pub async fn fetch_profile(
    settings: &ProviderSettings,
    http: &reqwest::Client,
    token: &str,
) -> Result<Profile, ProfileError> {
    match settings.provider {
        Provider::Github => {
            let base = settings.profile_url.trim_end_matches('/');
            let user: GithubUser = get_json(http, &format!("{base}/user"), token).await?;
            let emails: Vec<GithubEmail> =
                get_json(http, &format!("{base}/user/emails"), token).await?;
            let primary = emails
                .into_iter()
                .find(|e| e.primary && e.verified)
                .map(|e| e.email);
            let name = user
                .name
                .filter(|n| !n.trim().is_empty())
                .unwrap_or(user.login);
            Ok(Profile {
                provider: Provider::Github,
                provider_user_id: user.id.to_string(),
                display_name: bounded(&name, 200),
                avatar_url: avatar(user.avatar_url),
                email: email(primary),
            })
        }
        Provider::Google => {
            let user: GoogleUser = get_json(http, &settings.profile_url, token).await?;
            if user.sub.is_empty() || user.sub.len() > 64 {
                return Err(ProfileError::Invalid("missing or oversized subject".into()));
            }
            let verified = user.email.filter(|_| user.email_verified);
            let name = user
                .name
                .filter(|n| !n.trim().is_empty())
                .or_else(|| verified.clone())
                .unwrap_or_else(|| "Google user".into());
            Ok(Profile {
                provider: Provider::Google,
                provider_user_id: user.sub,
                display_name: bounded(&name, 200),
                avatar_url: avatar(user.picture),
                email: email(verified),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_round_trip() {
        for p in Provider::ALL {
            assert_eq!(Provider::from_slug(p.slug()), Some(p));
        }
        assert_eq!(Provider::from_slug("facebook"), None);
    }

    #[test]
    fn provider_strings_are_bounded_and_sanitised() {
        assert_eq!(bounded("a\u{7}b\nc", 10), "abc");
        assert_eq!(bounded(&"x".repeat(500), 200).len(), 200);
        assert_eq!(avatar(Some("javascript:alert(1)".into())), None);
        assert_eq!(
            avatar(Some("https://a.example/x.png".into())).as_deref(),
            Some("https://a.example/x.png")
        );
        assert_eq!(email(Some("not-an-address".into())), None);
    }
}
