//! A small shop to sell from: a region with a shipping method, listed products, and
//! customers who hold bearer tokens (minted directly, so a test can have hundreds of
//! buyers without hashing hundreds of passwords).

use reqwest::{Method, RequestBuilder, Response};
use serde::Serialize;
use serde_json::{Value, json};

use crate::harness::{TestApp, expect_json, send};
use bazaar::identity::tokens::{Grant, Subject, sign_access_token};

/// Where the shop ships: a province with a flat-rate method.
pub struct Shop {
    pub region: i64,
    pub method: i64,
    pub carrier: i64,
}

/// Creates a region, a carrier and a shipping method (1000 for the first kilogram, 500 per
/// further kilogram). `app.client` must be signed in as staff.
pub async fn open_shop(app: &TestApp) -> Shop {
    let region = expect_json(
        app.post(
            "/api/v1/admin/regions",
            &json!({"code": "CN", "name": "China", "level": "country"}),
        )
        .await,
        201,
    )
    .await;
    let carrier = expect_json(
        app.post(
            "/api/v1/admin/carriers",
            &json!({"code": "sf", "name": "SF Express"}),
        )
        .await,
        201,
    )
    .await;
    let method = expect_json(
        app.post(
            "/api/v1/admin/shipping-methods",
            &json!({"code": "standard", "name": "Standard", "carrier_id": carrier["id"],
                "rates": [{"region_id": null, "first_weight_grams": 1000, "first_price": 1000,
                    "step_weight_grams": 1000, "step_price": 500}]}),
        )
        .await,
        201,
    )
    .await;
    Shop {
        region: region["id"].as_i64().unwrap(),
        method: method["id"].as_i64().unwrap(),
        carrier: carrier["id"].as_i64().unwrap(),
    }
}

/// A listed physical product with one SKU; returns (product, sku id).
pub async fn listed_product(app: &TestApp, code: &str, price: i64, stock: i64) -> (Value, i64) {
    let product = expect_json(
        app.post(
            "/api/v1/admin/products",
            &json!({"title": format!("Product {code}"), "slug": code.to_lowercase(), "status": "listed",
                "skus": [{"code": code, "price": price, "stock": stock, "weight_grams": 400}]}),
        )
        .await,
        201,
    )
    .await;
    let sku = product["skus"][0]["id"].as_i64().unwrap();
    (product, sku)
}

/// A signed-in customer talking to the shop with a bearer token.
pub struct Buyer {
    token: String,
    client: reqwest::Client,
    base: String,
}

impl Buyer {
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, format!("{}{}", self.base, path))
            .bearer_auth(&self.token)
    }

    pub async fn get(&self, path: &str) -> Response {
        send(self.request(Method::GET, path)).await
    }

    pub async fn post(&self, path: &str, body: &impl Serialize) -> Response {
        send(self.request(Method::POST, path).json(body)).await
    }

    pub async fn put(&self, path: &str, body: &impl Serialize) -> Response {
        send(self.request(Method::PUT, path).json(body)).await
    }

    /// Puts `quantity` of `sku` in the cart.
    pub async fn add(&self, sku: i64, quantity: i64) -> Value {
        expect_json(
            self.post(
                "/api/v1/cart/lines",
                &json!({"sku_id": sku, "quantity": quantity}),
            )
            .await,
            200,
        )
        .await
    }

    /// Checks out with the standard method to the shop's region.
    pub async fn checkout(&self, shop: &Shop, key: &str, extra: Value) -> Response {
        let mut body = json!({
            "address": {"recipient": "Li Lei", "phone": "13800000000", "region_id": shop.region,
                "line1": "1 West Lake Road", "postal_code": "310000"},
            "shipping_method_id": shop.method,
        });
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        send(
            self.request(Method::POST, "/api/v1/checkout")
                .header("Idempotency-Key", key)
                .json(&body),
        )
        .await
    }
}

/// A verified, active customer with a fresh access token.
pub async fn buyer(app: &TestApp, email: &str) -> Buyer {
    let state = app.state();
    let customer = bazaar::customers::store::insert_customer(
        state.db.writer(),
        bazaar::customers::store::NewCustomer {
            email: Some(email),
            name: "Buyer",
            phone: None,
            password_hash: None,
            email_verified_at: Some(chrono::Utc::now()),
        },
    )
    .await
    .expect("cannot insert a customer");
    let token = sign_access_token(
        &state.keys,
        &state.config.auth.tokens,
        &Grant {
            subject: Subject::Customer(customer.id),
            scope: vec!["customer".into()],
            roles: vec!["customer".into()],
            email: Some(email.to_owned()),
            name: "Buyer".into(),
        },
    )
    .expect("cannot sign a token");
    Buyer {
        token,
        client: reqwest::Client::new(),
        base: app.base.clone(),
    }
}

/// The SKU's stock figures from the inventory admin.
pub async fn stock(app: &TestApp, sku: i64) -> Value {
    expect_json(
        app.get(&format!("/api/v1/admin/inventory/{sku}")).await,
        200,
    )
    .await
}
