//! Stateless tokens: RS256 access tokens verifiable from the JWKS document alone, refresh
//! token rotation with reuse detection, revocation, staff scopes and key rotation.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Method;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::sha2::Sha256;
use rsa::signature::Verifier;
use rsa::{BigUint, RsaPublicKey};
use serde_json::{Value, json};

use crate::harness::{
    self, Backend, CUSTOMER_PASSWORD, TestApp, both_backends, create_staff, expect_json,
    expect_problem, register_customer, send, spawn, spawn_pair,
};

both_backends!(
    access_tokens_verify_with_the_jwks_document_alone,
    forged_expired_and_revoked_tokens_are_refused,
    reusing_a_refresh_token_revokes_its_family,
    staff_tokens_carry_permissions_as_scopes,
    rotated_keys_stay_published_until_their_tokens_expire,
);

async fn issue(app: &TestApp, path: &str, email: &str, password: &str) -> Value {
    let response = send(
        app.new_client()
            .post(app.url(path))
            .json(&json!({ "email": email, "password": password })),
    )
    .await;
    assert_eq!(response.headers()["cache-control"], "no-store");
    expect_json(response, 200).await
}

async fn customer_tokens(app: &TestApp, email: &str) -> Value {
    register_customer(app, email, CUSTOMER_PASSWORD).await;
    issue(app, "/api/v1/auth/token", email, CUSTOMER_PASSWORD).await
}

async fn with_bearer(app: &TestApp, method: Method, path: &str, token: &str) -> reqwest::Response {
    send(
        app.new_client()
            .request(method, app.url(path))
            .bearer_auth(token),
    )
    .await
}

fn b64(part: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(part).expect("not base64url")
}

/// Verifies an RS256 JWT with nothing but the JWKS document and the `rsa` crate: no
/// Bazaar code and no JWT library. Returns the claims.
fn verify_with_jwks(jwks: &Value, token: &str) -> Value {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "not a compact JWS");
    let header: Value = serde_json::from_slice(&b64(parts[0])).unwrap();
    assert_eq!(header["alg"], "RS256");
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .expect("the token's kid is not in the JWKS");
    assert_eq!(jwk["kty"], "RSA");
    assert_eq!(jwk["use"], "sig");
    let n = BigUint::from_bytes_be(&b64(jwk["n"].as_str().unwrap()));
    let e = BigUint::from_bytes_be(&b64(jwk["e"].as_str().unwrap()));
    let key = VerifyingKey::<Sha256>::new(RsaPublicKey::new(n, e).unwrap());
    let signature = Signature::try_from(b64(parts[2]).as_slice()).unwrap();
    key.verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
        .expect("the signature does not verify with the published key");
    serde_json::from_slice(&b64(parts[1])).unwrap()
}

async fn jwks(app: &TestApp) -> Value {
    let response = send(app.new_client().get(app.url("/.well-known/jwks.json"))).await;
    expect_json(response, 200).await
}

async fn access_tokens_verify_with_the_jwks_document_alone(backend: Backend) {
    let app = spawn(backend).await;
    let tokens = customer_tokens(&app, "ivy@example.com").await;
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 900);
    assert!(tokens["refresh_token"].as_str().unwrap().len() >= 32);

    let access = tokens["access_token"].as_str().unwrap();
    let claims = verify_with_jwks(&jwks(&app).await, access);
    let now = chrono::Utc::now().timestamp();
    assert_eq!(claims["iss"], "bazaar");
    assert_eq!(claims["aud"], "bazaar");
    assert!(claims["sub"].as_str().unwrap().starts_with("customer:"));
    assert_eq!(claims["scope"], "customer");
    assert_eq!(claims["roles"], json!(["customer"]));
    assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );
    assert!((now - 5..=now + 5).contains(&iat));
    assert_eq!(exp - iat, 900);

    // The token works on its own, with no cookie and no CSRF token, for reads and writes.
    let me = expect_json(
        with_bearer(&app, Method::GET, "/api/v1/me", access).await,
        200,
    )
    .await;
    assert_eq!(me["email"], "ivy@example.com");
    let response = send(
        app.new_client()
            .patch(app.url("/api/v1/me"))
            .bearer_auth(access)
            .json(&json!({"name": "Ivy", "version": me["version"]})),
    )
    .await;
    expect_json(response, 200).await;
}

async fn forged_expired_and_revoked_tokens_are_refused(backend: Backend) {
    let app = spawn(backend).await;
    let tokens = customer_tokens(&app, "jo@example.com").await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let parts: Vec<&str> = access.split('.').collect();
    let mut claims: Value = serde_json::from_slice(&b64(parts[1])).unwrap();

    // A payload changed after signing (another customer's id) no longer verifies.
    claims["sub"] = json!("customer:999");
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        parts[2]
    );
    // A token signed with the shop's own key but expired a minute ago.
    let key = app.state().keys.signing_key();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(key.kid.clone());
    let mut expired: Value = serde_json::from_slice(&b64(parts[1])).unwrap();
    expired["exp"] = json!(chrono::Utc::now().timestamp() - 60);
    let expired = jsonwebtoken::encode(&header, &expired, &key.encoding).unwrap();
    // One for another audience.
    let mut foreign: Value = serde_json::from_slice(&b64(parts[1])).unwrap();
    foreign["aud"] = json!("another-service");
    let foreign = jsonwebtoken::encode(&header, &foreign, &key.encoding).unwrap();
    // And an unsigned one.
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
        parts[1]
    );
    for bad in [
        &tampered,
        &expired,
        &foreign,
        &unsigned,
        &"garbage".to_owned(),
    ] {
        let response = with_bearer(&app, Method::GET, "/api/v1/me", bad).await;
        assert_eq!(
            response.headers()["www-authenticate"],
            "Bearer error=\"invalid_token\""
        );
        expect_problem(response, 401, "invalid-token").await;
    }

    // Revoking the access token ends it at once, on every instance of the store.
    expect_json(
        with_bearer(&app, Method::GET, "/api/v1/me", &access).await,
        200,
    )
    .await;
    let response = app
        .post("/api/v1/auth/token/revoke", &json!({ "token": access }))
        .await;
    assert_eq!(response.status(), 200);
    let response = with_bearer(&app, Method::GET, "/api/v1/me", &access).await;
    expect_problem(response, 401, "invalid-token").await;
    // Unknown tokens are not an error (RFC 7009).
    let response = app
        .post("/api/v1/auth/token/revoke", &json!({ "token": "unknown" }))
        .await;
    assert_eq!(response.status(), 200);

    // Signing out with a token ends that token.
    let fresh = issue(
        &app,
        "/api/v1/auth/token",
        "jo@example.com",
        CUSTOMER_PASSWORD,
    )
    .await;
    let fresh = fresh["access_token"].as_str().unwrap();
    let response = with_bearer(&app, Method::POST, "/api/v1/auth/logout", fresh).await;
    assert_eq!(response.status(), 204);
    let response = with_bearer(&app, Method::GET, "/api/v1/me", fresh).await;
    expect_problem(response, 401, "invalid-token").await;
}

async fn refresh(app: &TestApp, token: &str) -> reqwest::Response {
    app.post(
        "/api/v1/auth/token/refresh",
        &json!({ "refresh_token": token }),
    )
    .await
}

async fn reusing_a_refresh_token_revokes_its_family(backend: Backend) {
    let app = spawn(backend).await;
    let first = customer_tokens(&app, "kim@example.com").await;
    let first_refresh = first["refresh_token"].as_str().unwrap();

    let second = expect_json(refresh(&app, first_refresh).await, 200).await;
    let second_refresh = second["refresh_token"].as_str().unwrap();
    assert_ne!(second_refresh, first_refresh);
    let access = second["access_token"].as_str().unwrap();
    expect_json(
        with_bearer(&app, Method::GET, "/api/v1/me", access).await,
        200,
    )
    .await;

    // The spent token comes back: someone else has a copy. The family is revoked, so the
    // legitimate holder's newer token stops working too.
    expect_problem(refresh(&app, first_refresh).await, 400, "invalid-grant").await;
    expect_problem(refresh(&app, second_refresh).await, 400, "invalid-grant").await;
    // Another sign-in starts a new, unaffected family.
    let other = harness::CUSTOMER_PASSWORD;
    let fresh = issue(&app, "/api/v1/auth/token", "kim@example.com", other).await;
    let third = refresh(&app, fresh["refresh_token"].as_str().unwrap()).await;
    expect_json(third, 200).await;

    // Revoking a refresh token ends its family as well.
    let fourth = issue(&app, "/api/v1/auth/token", "kim@example.com", other).await;
    let fourth_refresh = fourth["refresh_token"].as_str().unwrap();
    let response = app
        .post(
            "/api/v1/auth/token/revoke",
            &json!({ "token": fourth_refresh }),
        )
        .await;
    assert_eq!(response.status(), 200);
    expect_problem(refresh(&app, fourth_refresh).await, 400, "invalid-grant").await;

    harness::login_as_superuser(&app).await;
    let log = app
        .get("/api/v1/admin/security-log?event=token_family_revoked")
        .await;
    let log = expect_json(log, 200).await;
    let reasons: Vec<&str> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["detail"]["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(reasons.contains(&"refresh_token_reused") && reasons.contains(&"revoked"));
}

async fn staff_tokens_carry_permissions_as_scopes(backend: Backend) {
    let app = spawn(backend).await;
    let password = "a long staff password";
    create_staff(
        &app,
        "clerk@example.com",
        password,
        false,
        &["system.regions.read"],
    )
    .await;
    let tokens = issue(
        &app,
        "/api/v1/admin/auth/token",
        "clerk@example.com",
        password,
    )
    .await;
    let access = tokens["access_token"].as_str().unwrap();
    let claims = verify_with_jwks(&jwks(&app).await, access);
    assert_eq!(claims["scope"], "staff system.regions.read");
    assert_eq!(claims["email"], "clerk@example.com");

    let response = with_bearer(&app, Method::GET, "/api/v1/admin/regions", access).await;
    expect_json(response, 200).await;
    let response = with_bearer(&app, Method::GET, "/api/v1/admin/staff", access).await;
    expect_problem(response, 403, "forbidden").await;
    // A staff token is not a customer sign-in, nor a customer token a staff one.
    let response = with_bearer(&app, Method::GET, "/api/v1/me", access).await;
    expect_problem(response, 403, "wrong-account-kind").await;
    let customer = customer_tokens(&app, "lu@example.com").await;
    let customer = customer["access_token"].as_str().unwrap();
    let response = with_bearer(&app, Method::GET, "/api/v1/admin/regions", customer).await;
    expect_problem(response, 403, "wrong-account-kind").await;

    // Refreshing re-reads the staff member's permissions.
    let refreshed = refresh(&app, tokens["refresh_token"].as_str().unwrap()).await;
    let refreshed = expect_json(refreshed, 200).await;
    assert_eq!(refreshed["scope"], "staff system.regions.read");
}

async fn rotated_keys_stay_published_until_their_tokens_expire(backend: Backend) {
    let app = harness::spawn_with(backend, |c| c.auth.tokens.access_ttl_secs = 2).await;
    let old = customer_tokens(&app, "mo@example.com").await;
    let old_access = old["access_token"].as_str().unwrap();
    let before = jwks(&app).await;
    assert_eq!(before["keys"].as_array().unwrap().len(), 1);

    harness::login_as_superuser(&app).await;
    let rotated = expect_json(app.post_empty("/api/v1/admin/auth/keys/rotate").await, 201).await;
    let new_kid = rotated["kid"].as_str().unwrap();
    let during = jwks(&app).await;
    let kids: Vec<&str> = during["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids.len(), 2);
    assert!(kids.contains(&new_kid));
    // Tokens signed before the rotation still verify; new ones use the new key.
    verify_with_jwks(&during, old_access);
    expect_json(
        with_bearer(&app, Method::GET, "/api/v1/me", old_access).await,
        200,
    )
    .await;
    let new = harness::CUSTOMER_PASSWORD;
    let new = issue(&app, "/api/v1/auth/token", "mo@example.com", new).await;
    let header: Value = serde_json::from_slice(&b64(new["access_token"]
        .as_str()
        .unwrap()
        .split('.')
        .next()
        .unwrap()))
    .unwrap();
    assert_eq!(header["kid"], new_kid);

    // Once every token of the old key has expired, the old key is withdrawn.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let after = jwks(&app).await;
    let kids: Vec<&str> = after["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, [new_kid]);
}

/// Tokens issued by one instance verify on another that shares the key directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_verify_on_every_instance() {
    harness::bounded(async {
        let (first, second) = spawn_pair(Backend::Scaled).await;
        let tokens = customer_tokens(&first, "ned@example.com").await;
        let access = tokens["access_token"].as_str().unwrap();
        expect_json(
            with_bearer(&second, Method::GET, "/api/v1/me", access).await,
            200,
        )
        .await;
        let refreshed = refresh(&second, tokens["refresh_token"].as_str().unwrap()).await;
        expect_json(refreshed, 200).await;
    })
    .await
}
