//! Third-party login against a fake provider on loopback that speaks the real protocols:
//! a QQ-style OAuth 2 dialect (token, then `/me` for the openid) and OpenID Connect
//! (discovery, PKCE, ID tokens signed with keys from its JWKS).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bazaar::config::{Config, OAuthKind, OAuthProviderConfig};
use bazaar::identity::keys::KeyRing;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tempfile::TempDir;

use crate::harness::{
    self, Backend, CUSTOMER_PASSWORD, TestApp, both_backends, expect_json, expect_problem,
    login_as_superuser, send, signed_in_customer,
};

both_backends!(
    an_oauth2_provider_signs_in_the_bound_account,
    state_mismatch_and_replayed_codes_are_refused,
    customers_bind_and_unbind_providers,
    an_oidc_provider_signs_in_with_a_verified_id_token,
    the_wechat_dialect_signs_in_by_openid,
    the_github_and_weibo_dialects_sign_in_by_user_id,
    forged_id_tokens_are_refused,
);

const CLIENT_ID: &str = "bazaar-app";
const CLIENT_SECRET: &str = "provider-secret";

/// What the fake provider does wrong on purpose.
#[derive(Clone, Copy, PartialEq)]
enum Forgery {
    None,
    /// Signs ID tokens with a key that is not in its JWKS (under a published kid).
    UnpublishedKey,
    /// Puts another nonce in the ID token.
    WrongNonce,
    /// Issues the ID token to another client.
    WrongAudience,
}

struct Grant {
    challenge: String,
    nonce: String,
    user: String,
    used: bool,
}

struct Fake {
    base: String,
    keys: KeyRing,
    forger: KeyRing,
    /// The user who approves the next authorization.
    user: Mutex<String>,
    forgery: Mutex<Forgery>,
    codes: Mutex<HashMap<String, Grant>>,
    /// access token → user
    tokens: Mutex<HashMap<String, String>>,
    _dirs: (TempDir, TempDir),
}

type Shared = Arc<Fake>;

/// Starts the fake provider on a loopback port.
async fn start_provider() -> Shared {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (a, b) = (TempDir::new().unwrap(), TempDir::new().unwrap());
    let ttl = std::time::Duration::from_secs(3600);
    let fake = Arc::new(Fake {
        base,
        keys: KeyRing::open(a.path(), ttl).unwrap(),
        forger: KeyRing::open(b.path(), ttl).unwrap(),
        user: Mutex::new("alice".into()),
        forgery: Mutex::new(Forgery::None),
        codes: Mutex::new(HashMap::new()),
        tokens: Mutex::new(HashMap::new()),
        _dirs: (a, b),
    });
    let app = Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/authorize", get(authorize))
        .route("/token", post(oidc_token))
        .route("/jwks", get(jwks))
        .route("/qq/token", get(qq_token))
        .route("/qq/me", get(qq_me))
        .route("/github/token", post(github_token))
        .route("/github/user", get(github_user))
        .route("/weibo/token", post(weibo_token))
        .route("/weibo/users/show.json", get(weibo_user))
        .route("/wechat/token", get(wechat_token))
        .route("/wechat/userinfo", get(wechat_userinfo))
        .with_state(fake.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    fake
}

async fn discovery(State(fake): State<Shared>) -> impl IntoResponse {
    axum::Json(json!({
        "issuer": fake.base,
        "authorization_endpoint": format!("{}/authorize", fake.base),
        "token_endpoint": format!("{}/token", fake.base),
        "jwks_uri": format!("{}/jwks", fake.base),
        "response_types_supported": ["code"],
        "id_token_signing_alg_values_supported": ["RS256"],
    }))
}

async fn jwks(State(fake): State<Shared>) -> impl IntoResponse {
    axum::Json(fake.keys.jwks())
}

/// The user approves at once: back to `redirect_uri` with a code and the state.
async fn authorize(
    State(fake): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let client = q.get("client_id").or_else(|| q.get("appid"));
    if client.map(String::as_str) != Some(CLIENT_ID) {
        return (StatusCode::BAD_REQUEST, "unknown client").into_response();
    }
    let code = format!("code-{}", uuid::Uuid::new_v4());
    fake.codes.lock().unwrap().insert(
        code.clone(),
        Grant {
            challenge: q.get("code_challenge").cloned().unwrap_or_default(),
            nonce: q.get("nonce").cloned().unwrap_or_default(),
            user: fake.user.lock().unwrap().clone(),
            used: false,
        },
    );
    let mut url = reqwest::Url::parse(&q["redirect_uri"]).unwrap();
    url.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &q["state"]);
    (StatusCode::FOUND, [(header::LOCATION, url.to_string())]).into_response()
}

fn invalid_grant() -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"error": "invalid_grant"})),
    )
        .into_response()
}

/// Spends a code, checking the client and (when `verifier` is given) PKCE.
fn redeem(fake: &Fake, form: &HashMap<String, String>, check_pkce: bool) -> Option<Grant> {
    if form.get("client_id").map(String::as_str) != Some(CLIENT_ID)
        || form.get("client_secret").map(String::as_str) != Some(CLIENT_SECRET)
        || form.get("grant_type").map(String::as_str) != Some("authorization_code")
    {
        return None;
    }
    let mut codes = fake.codes.lock().unwrap();
    let grant = codes.get_mut(form.get("code")?)?;
    if grant.used {
        return None;
    }
    if check_pkce {
        let verifier = form.get("code_verifier")?;
        if URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) != grant.challenge {
            return None;
        }
    }
    grant.used = true;
    Some(Grant {
        challenge: grant.challenge.clone(),
        nonce: grant.nonce.clone(),
        user: grant.user.clone(),
        used: true,
    })
}

async fn oidc_token(
    State(fake): State<Shared>,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> Response {
    let Some(grant) = redeem(&fake, &form, true) else {
        return invalid_grant();
    };
    let forgery = *fake.forgery.lock().unwrap();
    let now = chrono::Utc::now().timestamp();
    let claims = json!({
        "iss": fake.base,
        "sub": format!("oidc-{}", grant.user),
        "aud": if forgery == Forgery::WrongAudience { "someone-else" } else { CLIENT_ID },
        "exp": now + 300,
        "iat": now,
        "nonce": if forgery == Forgery::WrongNonce { "another nonce".to_owned() } else { grant.nonce },
        "email": format!("{}@idp.example", grant.user),
        "email_verified": true,
        "name": format!("{} from the IdP", grant.user),
    });
    let published = fake.keys.signing_key();
    let signer = if forgery == Forgery::UnpublishedKey {
        fake.forger.signing_key()
    } else {
        published.clone()
    };
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(published.kid.clone());
    let id_token = jsonwebtoken::encode(&header, &claims, &signer.encoding).unwrap();
    axum::Json(json!({
        "access_token": format!("at-{}", uuid::Uuid::new_v4()),
        "token_type": "Bearer",
        "expires_in": 3600,
        "id_token": id_token,
    }))
    .into_response()
}

/// QQ's token endpoint: a GET with the client secret in the query, no PKCE.
async fn qq_token(
    State(fake): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(grant) = redeem(&fake, &q, false) else {
        return invalid_grant();
    };
    let token = format!("qq-at-{}", uuid::Uuid::new_v4());
    fake.tokens
        .lock()
        .unwrap()
        .insert(token.clone(), grant.user);
    axum::Json(json!({"access_token": token, "expires_in": 7776000, "refresh_token": "qq-rt"}))
        .into_response()
}

/// QQ's `/me`: which app the token belongs to and the user's openid.
async fn qq_me(State(fake): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Response {
    let token = q.get("access_token").cloned().unwrap_or_default();
    match fake.tokens.lock().unwrap().get(&token) {
        Some(user) => axum::Json(json!({
            "client_id": CLIENT_ID,
            "openid": format!("qq-openid-{user}"),
            "unionid": format!("qq-union-{user}"),
        }))
        .into_response(),
        None => {
            axum::Json(json!({"error": 100016, "error_description": "access token check failed"}))
                .into_response()
        }
    }
}

/// GitHub's token endpoint: a form POST answered in JSON (asked for with `Accept`), PKCE.
async fn github_token(
    State(fake): State<Shared>,
    headers: axum::http::HeaderMap,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> Response {
    if headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) != Some("application/json") {
        return (StatusCode::NOT_ACCEPTABLE, "form-encoded answers only").into_response();
    }
    let Some(grant) = redeem(&fake, &form, true) else {
        return axum::Json(json!({"error": "bad_verification_code"})).into_response();
    };
    let token = format!("gho_{}", uuid::Uuid::new_v4().simple());
    fake.tokens
        .lock()
        .unwrap()
        .insert(token.clone(), grant.user);
    axum::Json(json!({"access_token": token, "token_type": "bearer", "scope": "read:user"}))
        .into_response()
}

/// GitHub's `/user`: the numeric id is the stable one (logins can be renamed).
async fn github_user(State(fake): State<Shared>, headers: axum::http::HeaderMap) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    match fake.tokens.lock().unwrap().get(token) {
        Some(user) => axum::Json(json!({
            "id": 4000 + user.len(),
            "login": user,
            "name": null,
        }))
        .into_response(),
        None => (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"message": "Bad credentials"})),
        )
            .into_response(),
    }
}

/// Weibo's token endpoint: a form POST; the user's `uid` comes with the token.
async fn weibo_token(
    State(fake): State<Shared>,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> Response {
    let Some(grant) = redeem(&fake, &form, false) else {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "invalid_grant", "error_code": 21325})),
        )
            .into_response();
    };
    let token = format!("wb-at-{}", uuid::Uuid::new_v4());
    fake.tokens
        .lock()
        .unwrap()
        .insert(token.clone(), grant.user.clone());
    axum::Json(json!({"access_token": token, "expires_in": 157679999, "uid": format!("50{}", grant.user.len())}))
        .into_response()
}

async fn weibo_user(
    State(fake): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let token = q.get("access_token").cloned().unwrap_or_default();
    match fake.tokens.lock().unwrap().get(&token) {
        Some(user) if q.get("uid") == Some(&format!("50{}", user.len())) => {
            axum::Json(json!({"id": 50 + user.len(), "screen_name": format!("weibo {user}")}))
                .into_response()
        }
        _ => axum::Json(json!({"error": "invalid token", "error_code": 21332})).into_response(),
    }
}

/// WeChat's token endpoint: `appid` and `secret` in the query; the openid and unionid
/// come back with the token.
async fn wechat_token(
    State(fake): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut form = q.clone();
    form.insert(
        "client_id".into(),
        q.get("appid").cloned().unwrap_or_default(),
    );
    form.insert(
        "client_secret".into(),
        q.get("secret").cloned().unwrap_or_default(),
    );
    let Some(grant) = redeem(&fake, &form, false) else {
        return axum::Json(json!({"errcode": 40029, "errmsg": "invalid code"})).into_response();
    };
    let token = format!("wx-at-{}", uuid::Uuid::new_v4());
    fake.tokens
        .lock()
        .unwrap()
        .insert(token.clone(), grant.user.clone());
    axum::Json(json!({
        "access_token": token,
        "expires_in": 7200,
        "refresh_token": "wx-rt",
        "openid": format!("wx-openid-{}", grant.user),
        "scope": "snsapi_login",
        "unionid": format!("wx-union-{}", grant.user),
    }))
    .into_response()
}

async fn wechat_userinfo(
    State(fake): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let token = q.get("access_token").cloned().unwrap_or_default();
    let Some(user) = fake.tokens.lock().unwrap().get(&token).cloned() else {
        return axum::Json(json!({"errcode": 40001, "errmsg": "invalid credential"}))
            .into_response();
    };
    if q.get("openid") != Some(&format!("wx-openid-{user}")) {
        return axum::Json(json!({"errcode": 40003, "errmsg": "invalid openid"})).into_response();
    }
    axum::Json(json!({
        "openid": format!("wx-openid-{user}"),
        "nickname": format!("微信 {user}"),
        "unionid": format!("wx-union-{user}"),
    }))
    .into_response()
}

fn provider_config(kind: OAuthKind, fake: &Fake) -> OAuthProviderConfig {
    let base = &fake.base;
    let (authorize, token, userinfo, issuer) = match kind {
        OAuthKind::Qq => (
            Some(format!("{base}/authorize")),
            Some(format!("{base}/qq/token")),
            Some(format!("{base}/qq/me")),
            None,
        ),
        OAuthKind::Github => (
            Some(format!("{base}/authorize")),
            Some(format!("{base}/github/token")),
            Some(format!("{base}/github/user")),
            None,
        ),
        OAuthKind::Weibo => (
            Some(format!("{base}/authorize")),
            Some(format!("{base}/weibo/token")),
            Some(format!("{base}/weibo/users/show.json")),
            None,
        ),
        OAuthKind::Wechat => (
            Some(format!("{base}/authorize")),
            Some(format!("{base}/wechat/token")),
            Some(format!("{base}/wechat/userinfo")),
            None,
        ),
        _ => (None, None, None, Some(base.clone())),
    };
    OAuthProviderConfig {
        kind,
        client_id: CLIENT_ID.into(),
        client_secret: serde_json::from_value(json!(CLIENT_SECRET)).unwrap(),
        redirect_uri: "https://shop.example/api/v1/auth/oauth/callback".into(),
        scopes: Vec::new(),
        issuer,
        authorize_url: authorize,
        token_url: token,
        userinfo_url: userinfo,
    }
}

async fn spawn_with_providers(backend: Backend) -> (TestApp, Shared) {
    let fake = start_provider().await;
    let qq = provider_config(OAuthKind::Qq, &fake);
    let idp = provider_config(OAuthKind::Oidc, &fake);
    let wechat = provider_config(OAuthKind::Wechat, &fake);
    let github = provider_config(OAuthKind::Github, &fake);
    let weibo = provider_config(OAuthKind::Weibo, &fake);
    let app = harness::spawn_with(backend, move |c: &mut Config| {
        c.auth.oauth.insert("github".into(), github);
        c.auth.oauth.insert("weibo".into(), weibo);
        c.auth.oauth.insert("qq".into(), qq);
        c.auth.oauth.insert("wechat".into(), wechat);
        c.auth.oauth.insert("idp".into(), idp);
    })
    .await;
    (app, fake)
}

/// A browser that does not follow redirects, so each hop can be checked.
fn new_browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap()
}

fn location(response: &reqwest::Response) -> reqwest::Url {
    let value = response.headers()[header::LOCATION.as_str()]
        .to_str()
        .unwrap();
    reqwest::Url::parse(value).unwrap()
}

/// Follows start → provider → back, returning the callback's query (code and state).
async fn authorize_at_provider(browser: &reqwest::Client, authorize_url: reqwest::Url) -> String {
    let response = send(browser.get(authorize_url)).await;
    assert_eq!(response.status(), 302);
    location(&response).query().unwrap().to_owned()
}

async fn start(app: &TestApp, browser: &reqwest::Client, provider: &str, mode: &str) -> String {
    let url = app.url(&format!("/api/v1/auth/oauth/{provider}/start?mode={mode}"));
    let response = send(browser.get(url)).await;
    assert_eq!(response.status(), 303);
    let authorize = location(&response);
    let params: HashMap<String, String> = authorize.query_pairs().into_owned().collect();
    assert_eq!(params["code_challenge_method"], "S256");
    let client = if provider == "wechat" {
        "appid"
    } else {
        "client_id"
    };
    assert_eq!(params[client], CLIENT_ID);
    authorize_at_provider(browser, authorize).await
}

async fn callback(
    app: &TestApp,
    browser: &reqwest::Client,
    provider: &str,
    query: &str,
) -> reqwest::Response {
    let url = app.url(&format!("/api/v1/auth/oauth/{provider}/callback?{query}"));
    send(browser.get(url)).await
}

/// A whole login in one browser; returns the browser (signed in) and the callback body.
async fn sign_in(app: &TestApp, provider: &str) -> (reqwest::Client, Value) {
    let browser = new_browser();
    let query = start(app, &browser, provider, "session").await;
    let body = expect_json(callback(app, &browser, provider, &query).await, 200).await;
    (browser, body)
}

async fn an_oauth2_provider_signs_in_the_bound_account(backend: Backend) {
    let (app, fake) = spawn_with_providers(backend).await;
    let listed = expect_json(app.get("/api/v1/auth/oauth").await, 200).await;
    assert_eq!(
        listed,
        json!([
            {"name": "github", "kind": "github"},
            {"name": "idp", "kind": "oidc"},
            {"name": "qq", "kind": "qq"},
            {"name": "wechat", "kind": "wechat"},
            {"name": "weibo", "kind": "weibo"}
        ])
    );

    // First time: a new account bound to the QQ user, signed in with a session.
    let (browser, body) = sign_in(&app, "qq").await;
    let id = body["customer"]["id"].as_i64().unwrap();
    assert_eq!(body["customer"]["name"], "qq user");
    assert_eq!(body["customer"]["has_password"], false);
    let me = expect_json(send(browser.get(app.url("/api/v1/me"))).await, 200).await;
    assert_eq!(me["id"], id);

    // Next time: the same account.
    let (_, again) = sign_in(&app, "qq").await;
    assert_eq!(again["customer"]["id"], id);
    // Another QQ user gets another account.
    *fake.user.lock().unwrap() = "bob".into();
    let (_, other) = sign_in(&app, "qq").await;
    assert_ne!(other["customer"]["id"], id);

    // Token mode answers like the password grant, and the token works.
    *fake.user.lock().unwrap() = "alice".into();
    let browser = new_browser();
    let query = start(&app, &browser, "qq", "token").await;
    let tokens = expect_json(callback(&app, &browser, "qq", &query).await, 200).await;
    assert_eq!(tokens["token_type"], "Bearer");
    let response = send(
        app.new_client()
            .get(app.url("/api/v1/me"))
            .bearer_auth(tokens["access_token"].as_str().unwrap()),
    )
    .await;
    assert_eq!(expect_json(response, 200).await["id"], id);

    login_as_superuser(&app).await;
    let log = expect_json(
        app.get("/api/v1/admin/security-log?event=oauth_bound")
            .await,
        200,
    )
    .await;
    assert_eq!(log["total"], 2, "one bind per new account: {log}");
    let log = expect_json(
        app.get(&format!(
            "/api/v1/admin/security-log?event=login&actor_customer_id={id}"
        ))
        .await,
        200,
    )
    .await;
    assert_eq!(log["items"][0]["detail"]["method"], "oauth:qq");
}

async fn state_mismatch_and_replayed_codes_are_refused(backend: Backend) {
    let (app, _fake) = spawn_with_providers(backend).await;
    let browser = new_browser();
    let query = start(&app, &browser, "qq", "session").await;
    let params: HashMap<String, String> = url_params(&query);

    // A state this browser did not start (a login-CSRF attempt) is refused.
    let forged = format!("code={}&state=forged-state", params["code"]);
    expect_problem(
        callback(&app, &browser, "qq", &forged).await,
        400,
        "oauth-state-mismatch",
    )
    .await;
    // So is the right state from another browser, which lacks the state cookie.
    let response = callback(&app, &harness::new_client(), "qq", &query).await;
    expect_problem(response, 400, "oauth-state-mismatch").await;
    // The callback for another provider does not accept this flow's state either.
    expect_problem(
        callback(&app, &browser, "idp", &query).await,
        400,
        "oauth-state-mismatch",
    )
    .await;

    // The state is good for one callback: the first attempt above used it up.
    expect_problem(
        callback(&app, &browser, "qq", &query).await,
        400,
        "oauth-state-mismatch",
    )
    .await;

    // A code the provider already redeemed, replayed with a fresh state, is refused by
    // the provider and so by us.
    let first = start(&app, &browser, "qq", "session").await;
    expect_json(callback(&app, &browser, "qq", &first).await, 200).await;
    let used_code = url_params(&first)["code"].clone();
    let fresh = start(&app, &browser, "qq", "session").await;
    let replay = format!("code={used_code}&state={}", url_params(&fresh)["state"]);
    expect_problem(
        callback(&app, &browser, "qq", &replay).await,
        400,
        "invalid-grant",
    )
    .await;

    // A user who declines at the provider comes back with an error.
    let declined = start(&app, &browser, "qq", "session").await;
    let declined = format!(
        "error=access_denied&state={}",
        url_params(&declined)["state"]
    );
    expect_problem(
        callback(&app, &browser, "qq", &declined).await,
        400,
        "oauth-declined",
    )
    .await;
    // Unknown providers are 404.
    let response = send(browser.get(app.url("/api/v1/auth/oauth/nope/start"))).await;
    expect_problem(response, 404, "not-found").await;
}

fn url_params(query: &str) -> HashMap<String, String> {
    form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

async fn customers_bind_and_unbind_providers(backend: Backend) {
    let (app, fake) = spawn_with_providers(backend).await;
    let customer = signed_in_customer(&app, "pat@example.com").await;

    let response = customer.post("/api/v1/me/oauth/qq", &json!({})).await;
    let url = expect_json(response, 200).await["authorize_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let query = authorize_at_provider(&new_browser(), reqwest::Url::parse(&url).unwrap()).await;
    let response = send(
        customer
            .client
            .get(app.url(&format!("/api/v1/auth/oauth/qq/callback?{query}"))),
    )
    .await;
    let bindings = expect_json(response, 200).await;
    assert_eq!(bindings[0]["provider"], "qq");

    // Signing in with that QQ user now reaches this customer's account.
    let (_, body) = sign_in(&app, "qq").await;
    assert_eq!(body["customer"]["email"], "pat@example.com");

    // A QQ user bound to one customer cannot be bound to another.
    let other = signed_in_customer(&app, "quinn@example.com").await;
    let response = other.post("/api/v1/me/oauth/qq", &json!({})).await;
    let url = expect_json(response, 200).await["authorize_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let query = authorize_at_provider(&new_browser(), reqwest::Url::parse(&url).unwrap()).await;
    let response = send(
        other
            .client
            .get(app.url(&format!("/api/v1/auth/oauth/qq/callback?{query}"))),
    )
    .await;
    expect_problem(response, 409, "oauth-already-bound").await;

    // Pat has a password, so may unbind; an account with only a QQ login may not.
    assert_eq!(customer.delete("/api/v1/me/oauth/qq").await.status(), 204);
    let bindings = expect_json(customer.get("/api/v1/me/oauth").await, 200).await;
    assert_eq!(bindings, json!([]));
    *fake.user.lock().unwrap() = "carol".into();
    let (browser, body) = sign_in(&app, "qq").await;
    let csrf = body["csrf_token"].as_str().unwrap();
    let response = send(
        browser
            .delete(app.url("/api/v1/me/oauth/qq"))
            .header(harness::CSRF_HEADER, csrf),
    )
    .await;
    expect_problem(response, 409, "last-sign-in-method").await;
    // After setting a password it can.
    let response = send(
        browser
            .post(app.url("/api/v1/me/password"))
            .header(harness::CSRF_HEADER, csrf)
            .json(&json!({"new_password": CUSTOMER_PASSWORD})),
    )
    .await;
    let csrf = expect_json(response, 200).await["csrf_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let response = send(
        browser
            .delete(app.url("/api/v1/me/oauth/qq"))
            .header(harness::CSRF_HEADER, csrf),
    )
    .await;
    assert_eq!(response.status(), 204);
}

async fn an_oidc_provider_signs_in_with_a_verified_id_token(backend: Backend) {
    let (app, _fake) = spawn_with_providers(backend).await;
    let (browser, body) = sign_in(&app, "idp").await;
    // The provider vouched for the address, so the new account has it, verified.
    assert_eq!(body["customer"]["email"], "alice@idp.example");
    assert_eq!(body["customer"]["email_verified"], true);
    assert_eq!(body["customer"]["name"], "alice from the IdP");
    let bindings = expect_json(send(browser.get(app.url("/api/v1/me/oauth"))).await, 200).await;
    assert_eq!(bindings[0]["provider"], "idp");
    let (_, again) = sign_in(&app, "idp").await;
    assert_eq!(again["customer"]["id"], body["customer"]["id"]);
}

async fn forged_id_tokens_are_refused(backend: Backend) {
    let (app, fake) = spawn_with_providers(backend).await;
    for forgery in [
        Forgery::UnpublishedKey,
        Forgery::WrongNonce,
        Forgery::WrongAudience,
    ] {
        *fake.forgery.lock().unwrap() = forgery;
        let browser = new_browser();
        let query = start(&app, &browser, "idp", "session").await;
        let response = callback(&app, &browser, "idp", &query).await;
        expect_problem(response, 401, "invalid-id-token").await;
    }
    // Nothing was created by the refused logins.
    *fake.forgery.lock().unwrap() = Forgery::None;
    let (_, body) = sign_in(&app, "idp").await;
    assert_eq!(body["customer"]["id"], 1);
}

async fn the_wechat_dialect_signs_in_by_openid(backend: Backend) {
    let (app, _fake) = spawn_with_providers(backend).await;
    let (_, body) = sign_in(&app, "wechat").await;
    assert_eq!(body["customer"]["name"], "微信 alice");
    assert_eq!(body["customer"]["email"], json!(null));
    let (browser, again) = sign_in(&app, "wechat").await;
    assert_eq!(again["customer"]["id"], body["customer"]["id"]);
    let bindings = expect_json(send(browser.get(app.url("/api/v1/me/oauth"))).await, 200).await;
    assert_eq!(bindings[0]["provider"], "wechat");
    assert_eq!(bindings[0]["display_name"], "微信 alice");
    // A code WeChat refuses (errcode in a 200 answer) is a refused grant.
    let fresh = start(&app, &browser, "wechat", "session").await;
    let state = url_params(&fresh)["state"].clone();
    let bogus = format!("code=bogus&state={state}");
    expect_problem(
        callback(&app, &browser, "wechat", &bogus).await,
        400,
        "invalid-grant",
    )
    .await;
}

async fn the_github_and_weibo_dialects_sign_in_by_user_id(backend: Backend) {
    let (app, _fake) = spawn_with_providers(backend).await;
    // GitHub: PKCE is checked by the provider; the account is keyed by the numeric id and
    // named after the login when the profile has no name.
    let (_, body) = sign_in(&app, "github").await;
    assert_eq!(body["customer"]["name"], "alice");
    let (_, again) = sign_in(&app, "github").await;
    assert_eq!(again["customer"]["id"], body["customer"]["id"]);
    // Weibo: the uid from the token response, the screen name from users/show.
    let (browser, body) = sign_in(&app, "weibo").await;
    assert_eq!(body["customer"]["name"], "weibo alice");
    assert_ne!(body["customer"]["id"], again["customer"]["id"]);
    // A refused code at either provider is a refused grant.
    for provider in ["github", "weibo"] {
        let fresh = start(&app, &browser, provider, "session").await;
        let bogus = format!("code=bogus&state={}", url_params(&fresh)["state"]);
        let response = callback(&app, &browser, provider, &bogus).await;
        expect_problem(response, 400, "invalid-grant").await;
    }
}
