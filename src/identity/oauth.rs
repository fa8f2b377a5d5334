//! Third-party login: the OAuth 2 authorization-code flow with `state` and PKCE, for
//! providers configured by name.
//!
//! The Chinese providers bend the standard (WeChat takes `appid`/`secret` as query
//! parameters and returns the openid with the token; QQ needs a separate `/me` call for
//! it), so each dialect is a small profile over one client rather than a general OAuth
//! library. OIDC providers are configured from their discovery document and their ID
//! tokens verified against their published keys.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::{OnceCell, RwLock};

use super::session::{fingerprint, random_token};
use crate::config::{Config, OAuthKind, OAuthProviderConfig};
use crate::platform::cache::KeyValue;
use crate::platform::{ApiError, ApiResult};

/// How long a started login may take before its `state` is forgotten.
pub const STATE_TTL: Duration = Duration::from_secs(600);
/// The cookie that ties a callback to the browser that started the login.
pub const STATE_COOKIE: &str = "bazaar_oauth_state";

/// What the login was started for, kept server-side under the `state` value.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    pub provider: String,
    pub code_verifier: String,
    pub nonce: String,
    /// `session` (cookie) or `token` (token response), as the caller asked.
    pub mode: String,
    /// Set when a signed-in customer binds this provider to their account.
    pub bind_customer_id: Option<i64>,
}

/// The provider's account, as its APIs describe it.
#[derive(Debug, Clone)]
pub struct ExternalUser {
    /// The provider's stable id for the user (openid, uid, `sub`).
    pub subject: String,
    /// WeChat's id across one company's apps.
    pub union_id: Option<String>,
    pub display_name: Option<String>,
    /// Only an address the provider says it verified.
    pub verified_email: Option<String>,
}

#[derive(Debug, Clone)]
struct Endpoints {
    authorize: String,
    token: String,
    userinfo: Option<String>,
    jwks: Option<String>,
    issuer: Option<String>,
}

/// One configured provider.
pub struct Provider {
    pub name: String,
    config: OAuthProviderConfig,
    endpoints: OnceCell<Endpoints>,
    /// The OIDC provider's signing keys, refetched when a token names an unknown `kid`.
    jwks: RwLock<Option<JwkSet>>,
}

/// The configured providers and the HTTP client that talks to them.
pub struct Providers {
    by_name: BTreeMap<String, Arc<Provider>>,
    http: reqwest::Client,
}

impl Providers {
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        let mut by_name = BTreeMap::new();
        for (name, provider) in &config.auth.oauth {
            if provider.kind == OAuthKind::Oidc && provider.issuer.is_none() {
                anyhow::bail!("auth.oauth.{name}: an OIDC provider needs `issuer`");
            }
            by_name.insert(
                name.clone(),
                Arc::new(Provider {
                    name: name.clone(),
                    config: provider.clone(),
                    endpoints: OnceCell::new(),
                    jwks: RwLock::new(None),
                }),
            );
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .user_agent("Bazaar")
            .build()?;
        Ok(Self { by_name, http })
    }

    pub fn get(&self, name: &str) -> ApiResult<Arc<Provider>> {
        self.by_name
            .get(name)
            .cloned()
            .ok_or_else(|| ApiError::not_found("login provider", name))
    }

    /// `(name, kind)` of each provider, for login buttons.
    pub fn list(&self) -> Vec<(String, OAuthKind)> {
        self.by_name
            .values()
            .map(|p| (p.name.clone(), p.config.kind))
            .collect()
    }

    /// Stores the flow's secrets under a new `state` and returns the `state` and the
    /// provider's authorization URL.
    pub async fn start(
        &self,
        kv: &dyn KeyValue,
        provider: &Provider,
        mode: &str,
        bind_customer_id: Option<i64>,
    ) -> ApiResult<(String, String)> {
        let endpoints = provider.endpoints(&self.http).await?;
        let state = random_token();
        let pending = Pending {
            provider: provider.name.clone(),
            code_verifier: random_token(),
            nonce: random_token(),
            mode: mode.to_owned(),
            bind_customer_id,
        };
        kv.set(
            &state_key(&state),
            &serde_json::to_vec(&pending).map_err(ApiError::internal)?,
            Some(STATE_TTL),
        )
        .await?;
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(pending.code_verifier.as_bytes()));
        let config = &provider.config;
        let client_id_param = if config.kind == OAuthKind::Wechat {
            "appid"
        } else {
            "client_id"
        };
        let scope = if config.scopes.is_empty() {
            default_scope(config.kind).to_owned()
        } else {
            config.scopes.join(" ")
        };
        let mut url = reqwest::Url::parse(&endpoints.authorize)
            .map_err(|e| ApiError::internal(format!("provider {}: {e}", provider.name)))?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair(client_id_param, &config.client_id)
            .append_pair("redirect_uri", &config.redirect_uri)
            .append_pair("scope", &scope)
            .append_pair("state", &state)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("nonce", &pending.nonce);
        let mut url = url.to_string();
        if config.kind == OAuthKind::Wechat {
            url.push_str("#wechat_redirect");
        }
        Ok((state, url))
    }

    /// Takes back the flow started with `state`; a state is good for one callback.
    pub async fn take_pending(&self, kv: &dyn KeyValue, state: &str) -> ApiResult<Pending> {
        let key = state_key(state);
        let stored = kv.get(&key).await?;
        // Only the caller whose delete removed the key may continue: a replayed or
        // concurrent callback with the same state is refused.
        let pending = match stored {
            Some(bytes) if kv.delete(&key).await? => serde_json::from_slice(&bytes).ok(),
            _ => None,
        };
        pending.ok_or_else(state_mismatch)
    }

    /// Exchanges the code and asks the provider who the user is.
    pub async fn identify(
        &self,
        provider: &Provider,
        pending: &Pending,
        code: &str,
    ) -> ApiResult<ExternalUser> {
        let endpoints = provider.endpoints(&self.http).await?;
        let token = self
            .exchange_code(provider, &endpoints, pending, code)
            .await?;
        match provider.config.kind {
            OAuthKind::Oidc => self.oidc_user(provider, &endpoints, pending, &token).await,
            OAuthKind::Qq => self.qq_user(provider, &endpoints, &token).await,
            OAuthKind::Wechat => self.wechat_user(&endpoints, &token).await,
            OAuthKind::Weibo => self.weibo_user(&endpoints, &token).await,
            OAuthKind::Github => self.github_user(&endpoints, &token).await,
        }
    }

    async fn exchange_code(
        &self,
        provider: &Provider,
        endpoints: &Endpoints,
        pending: &Pending,
        code: &str,
    ) -> ApiResult<Value> {
        let config = &provider.config;
        let secret = config.client_secret.expose();
        let request = match config.kind {
            OAuthKind::Wechat => self.http.get(&endpoints.token).query(&[
                ("appid", config.client_id.as_str()),
                ("secret", secret),
                ("code", code),
                ("grant_type", "authorization_code"),
            ]),
            OAuthKind::Qq => self.http.get(&endpoints.token).query(&[
                ("grant_type", "authorization_code"),
                ("client_id", config.client_id.as_str()),
                ("client_secret", secret),
                ("code", code),
                ("redirect_uri", config.redirect_uri.as_str()),
                ("code_verifier", pending.code_verifier.as_str()),
                ("fmt", "json"),
            ]),
            _ => self
                .http
                .post(&endpoints.token)
                .header(reqwest::header::ACCEPT, "application/json")
                .form(&[
                    ("grant_type", "authorization_code"),
                    ("client_id", config.client_id.as_str()),
                    ("client_secret", secret),
                    ("code", code),
                    ("redirect_uri", config.redirect_uri.as_str()),
                    ("code_verifier", pending.code_verifier.as_str()),
                ]),
        };
        let body = fetch_json(request, &provider.name).await?;
        if body.get("access_token").and_then(Value::as_str).is_none() {
            tracing::warn!(provider = %provider.name, error = %provider_error(&body), "code exchange refused");
            return Err(ApiError::invalid_grant());
        }
        Ok(body)
    }

    async fn oidc_user(
        &self,
        provider: &Provider,
        endpoints: &Endpoints,
        pending: &Pending,
        token: &Value,
    ) -> ApiResult<ExternalUser> {
        let id_token = token
            .get("id_token")
            .and_then(Value::as_str)
            .ok_or_else(|| provider_failed(&provider.name, "no id_token in the token response"))?;
        let claims = provider
            .verify_id_token(&self.http, endpoints, id_token, &pending.nonce)
            .await?;
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .ok_or_else(forged_id_token)?
            .to_owned();
        let verified = claims.get("email_verified").and_then(Value::as_bool) == Some(true);
        Ok(ExternalUser {
            subject,
            union_id: None,
            display_name: string(&claims, "name").or_else(|| string(&claims, "preferred_username")),
            verified_email: verified.then(|| string(&claims, "email")).flatten(),
        })
    }

    async fn qq_user(
        &self,
        provider: &Provider,
        endpoints: &Endpoints,
        token: &Value,
    ) -> ApiResult<ExternalUser> {
        let access_token = string(token, "access_token").unwrap_or_default();
        let me_url = endpoints
            .userinfo
            .as_deref()
            .ok_or_else(|| provider_failed(&provider.name, "no `me` endpoint"))?;
        let me = fetch_json(
            self.http.get(me_url).query(&[
                ("access_token", access_token.as_str()),
                ("fmt", "json"),
                ("unionid", "1"),
            ]),
            &provider.name,
        )
        .await?;
        if string(&me, "client_id").as_deref() != Some(provider.config.client_id.as_str()) {
            // A token issued to another app must not log anyone in here.
            return Err(provider_failed(
                &provider.name,
                "token issued to another client",
            ));
        }
        let subject =
            string(&me, "openid").ok_or_else(|| provider_failed(&provider.name, "no openid"))?;
        Ok(ExternalUser {
            subject,
            union_id: string(&me, "unionid"),
            display_name: None,
            verified_email: None,
        })
    }

    async fn wechat_user(&self, endpoints: &Endpoints, token: &Value) -> ApiResult<ExternalUser> {
        let openid = string(token, "openid")
            .ok_or_else(|| provider_failed("wechat", "no openid in the token response"))?;
        let mut user = ExternalUser {
            subject: openid.clone(),
            union_id: string(token, "unionid"),
            display_name: None,
            verified_email: None,
        };
        if let Some(url) = &endpoints.userinfo {
            let access_token = string(token, "access_token").unwrap_or_default();
            let info = fetch_json(
                self.http.get(url).query(&[
                    ("access_token", access_token.as_str()),
                    ("openid", openid.as_str()),
                ]),
                "wechat",
            )
            .await?;
            user.display_name = string(&info, "nickname");
            user.union_id = user.union_id.or_else(|| string(&info, "unionid"));
        }
        Ok(user)
    }

    async fn weibo_user(&self, endpoints: &Endpoints, token: &Value) -> ApiResult<ExternalUser> {
        let uid = token
            .get("uid")
            .and_then(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .or_else(|| v.as_i64().map(|n| n.to_string()))
            })
            .ok_or_else(|| provider_failed("weibo", "no uid in the token response"))?;
        let mut user = ExternalUser {
            subject: uid.clone(),
            union_id: None,
            display_name: None,
            verified_email: None,
        };
        if let Some(url) = &endpoints.userinfo {
            let access_token = string(token, "access_token").unwrap_or_default();
            let info = fetch_json(
                self.http.get(url).query(&[
                    ("access_token", access_token.as_str()),
                    ("uid", uid.as_str()),
                ]),
                "weibo",
            )
            .await?;
            user.display_name = string(&info, "screen_name");
        }
        Ok(user)
    }

    async fn github_user(&self, endpoints: &Endpoints, token: &Value) -> ApiResult<ExternalUser> {
        let access_token = string(token, "access_token").unwrap_or_default();
        let url = endpoints
            .userinfo
            .as_deref()
            .ok_or_else(|| provider_failed("github", "no user endpoint"))?;
        let info = fetch_json(
            self.http
                .get(url)
                .bearer_auth(access_token)
                .header(reqwest::header::ACCEPT, "application/vnd.github+json"),
            "github",
        )
        .await?;
        let subject = info
            .get("id")
            .and_then(Value::as_i64)
            .ok_or_else(|| provider_failed("github", "no user id"))?
            .to_string();
        Ok(ExternalUser {
            subject,
            union_id: None,
            display_name: string(&info, "name").or_else(|| string(&info, "login")),
            // GitHub's public profile email is not necessarily verified.
            verified_email: None,
        })
    }
}

impl Provider {
    pub fn kind(&self) -> OAuthKind {
        self.config.kind
    }

    async fn endpoints(&self, http: &reqwest::Client) -> ApiResult<Endpoints> {
        self.endpoints
            .get_or_try_init(|| self.resolve_endpoints(http))
            .await
            .cloned()
    }

    /// Built-in URLs per dialect, overridden by config; OIDC reads its discovery document.
    async fn resolve_endpoints(&self, http: &reqwest::Client) -> ApiResult<Endpoints> {
        let c = &self.config;
        let (authorize, token, userinfo) = match c.kind {
            OAuthKind::Qq => (
                "https://graph.qq.com/oauth2.0/authorize",
                "https://graph.qq.com/oauth2.0/token",
                Some("https://graph.qq.com/oauth2.0/me"),
            ),
            OAuthKind::Wechat => (
                "https://open.weixin.qq.com/connect/qrconnect",
                "https://api.weixin.qq.com/sns/oauth2/access_token",
                Some("https://api.weixin.qq.com/sns/userinfo"),
            ),
            OAuthKind::Weibo => (
                "https://api.weibo.com/oauth2/authorize",
                "https://api.weibo.com/oauth2/access_token",
                Some("https://api.weibo.com/2/users/show.json"),
            ),
            OAuthKind::Github => (
                "https://github.com/login/oauth/authorize",
                "https://github.com/login/oauth/access_token",
                Some("https://api.github.com/user"),
            ),
            OAuthKind::Oidc => return self.discover(http).await,
        };
        Ok(Endpoints {
            authorize: c.authorize_url.clone().unwrap_or_else(|| authorize.into()),
            token: c.token_url.clone().unwrap_or_else(|| token.into()),
            userinfo: c.userinfo_url.clone().or_else(|| userinfo.map(Into::into)),
            jwks: None,
            issuer: None,
        })
    }

    async fn discover(&self, http: &reqwest::Client) -> ApiResult<Endpoints> {
        let c = &self.config;
        let issuer = c.issuer.clone().unwrap_or_default();
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let doc = fetch_json(http.get(&url), &self.name).await?;
        if string(&doc, "issuer").as_deref() != Some(issuer.as_str()) {
            return Err(provider_failed(
                &self.name,
                "discovery document names another issuer",
            ));
        }
        let field = |name: &str| {
            string(&doc, name)
                .ok_or_else(|| provider_failed(&self.name, &format!("discovery has no {name}")))
        };
        Ok(Endpoints {
            authorize: c
                .authorize_url
                .clone()
                .map_or_else(|| field("authorization_endpoint"), Ok)?,
            token: c
                .token_url
                .clone()
                .map_or_else(|| field("token_endpoint"), Ok)?,
            userinfo: c
                .userinfo_url
                .clone()
                .or_else(|| string(&doc, "userinfo_endpoint")),
            jwks: Some(field("jwks_uri")?),
            issuer: Some(issuer),
        })
    }

    /// Checks the ID token's RS256 signature against the provider's JWKS, its issuer,
    /// audience (our client id), expiry and nonce.
    async fn verify_id_token(
        &self,
        http: &reqwest::Client,
        endpoints: &Endpoints,
        id_token: &str,
        nonce: &str,
    ) -> ApiResult<Value> {
        let header = jsonwebtoken::decode_header(id_token).map_err(|_| forged_id_token())?;
        if header.alg != Algorithm::RS256 {
            return Err(forged_id_token());
        }
        let kid = header.kid.ok_or_else(forged_id_token)?;
        let key = match self.cached_key(&kid).await {
            Some(key) => key,
            None => {
                self.refresh_jwks(http, endpoints).await?;
                self.cached_key(&kid).await.ok_or_else(forged_id_token)?
            }
        };
        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = 60;
        validation.set_audience(&[&self.config.client_id]);
        if let Some(issuer) = &endpoints.issuer {
            validation.set_issuer(&[issuer]);
        }
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let claims = jsonwebtoken::decode::<Value>(id_token, &key, &validation)
            .map_err(|err| {
                tracing::warn!(provider = %self.name, error = %err, "ID token refused");
                forged_id_token()
            })?
            .claims;
        if claims.get("nonce").and_then(Value::as_str) != Some(nonce) {
            return Err(forged_id_token());
        }
        Ok(claims)
    }

    async fn cached_key(&self, kid: &str) -> Option<DecodingKey> {
        let jwks = self.jwks.read().await;
        let jwk = jwks.as_ref()?.find(kid)?;
        DecodingKey::from_jwk(jwk).ok()
    }

    async fn refresh_jwks(&self, http: &reqwest::Client, endpoints: &Endpoints) -> ApiResult<()> {
        let url = endpoints
            .jwks
            .as_deref()
            .ok_or_else(|| provider_failed(&self.name, "no jwks_uri"))?;
        let doc = fetch_json(http.get(url), &self.name).await?;
        let set: JwkSet = serde_json::from_value(doc)
            .map_err(|_| provider_failed(&self.name, "unreadable JWKS"))?;
        *self.jwks.write().await = Some(set);
        Ok(())
    }
}

fn default_scope(kind: OAuthKind) -> &'static str {
    match kind {
        OAuthKind::Qq => "get_user_info",
        OAuthKind::Wechat => "snsapi_login",
        OAuthKind::Weibo => "",
        OAuthKind::Github => "read:user",
        OAuthKind::Oidc => "openid profile email",
    }
}

fn state_key(state: &str) -> String {
    format!("oauth-state:{}", fingerprint(state))
}

fn string(value: &Value, field: &str) -> Option<String> {
    value
        .get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn provider_error(body: &Value) -> String {
    ["error", "errmsg", "error_description", "msg"]
        .iter()
        .find_map(|f| body.get(*f).map(|v| v.to_string()))
        .unwrap_or_else(|| "unknown".into())
}

/// Sends a request to the provider and reads a JSON answer. An unreachable provider or
/// an unreadable answer is the provider's failure (502), not the client's.
async fn fetch_json(request: reqwest::RequestBuilder, provider: &str) -> ApiResult<Value> {
    let response = request
        .send()
        .await
        .map_err(|e| provider_failed(provider, &e.to_string()))?;
    let status = response.status();
    let body: Value = response
        .json()
        .await
        .map_err(|e| provider_failed(provider, &format!("unreadable answer: {e}")))?;
    // Token endpoints answer a refused grant with 400 and a JSON error: let the caller see it.
    if status.is_server_error() {
        return Err(provider_failed(provider, &format!("status {status}")));
    }
    Ok(body)
}

pub fn state_mismatch() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::BAD_REQUEST,
        "oauth-state-mismatch",
        "the login was not started here, has expired or was already completed; start again",
    )
}

fn forged_id_token() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::UNAUTHORIZED,
        "invalid-id-token",
        "the provider's ID token did not verify",
    )
}

fn provider_failed(provider: &str, detail: &str) -> ApiError {
    tracing::warn!(provider, detail, "login provider failed");
    ApiError::new(
        axum::http::StatusCode::BAD_GATEWAY,
        "oauth-provider-error",
        format!("the login provider {provider} did not answer as expected"),
    )
}
