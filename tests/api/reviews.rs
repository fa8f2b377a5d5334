//! Product reviews: customers review products on sale that they received, the storefront
//! lists them with a rating summary that the product page shows at once, staff answer and
//! delete.

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{
    Backend, CustomerClient, LOGIN_PATH, SUPERUSER_EMAIL, SUPERUSER_PASSWORD, TestApp,
    both_backends, create_staff, expect_json, expect_problem, login_as_superuser, new_client, send,
    signed_in_customer, spawn,
};
use crate::purchases::{delivered, order_in_status};

both_backends!(
    customers_review_products_and_the_summary_follows_at_once,
    reviews_are_checked_and_only_customers_review_products_on_sale,
    only_customers_who_received_the_product_review_it,
    staff_answer_filter_and_delete_reviews,
    customers_withdraw_their_own_reviews_only,
);

const ADMIN: &str = "/api/v1/admin/reviews";
const MUG_REVIEWS: &str = "/api/v1/products/mug/reviews";
const MUG_PAGE: &str = "/api/v1/products/mug";

/// Signs in as the superuser and creates a mug type with an enum review field `use` and a
/// listed product `mug`; returns the product.
async fn mug_shop(app: &TestApp) -> Value {
    login_as_superuser(app).await;
    let mug_type = expect_json(
        app.post("/api/v1/admin/product-types", &json!({"name": "Mug"}))
            .await,
        201,
    )
    .await;
    let field = json!({"scope": "review", "product_type_id": mug_type["id"], "code": "use",
        "name": "Used for", "kind": "enum", "options": ["coffee", "tea"]});
    expect_json(app.post("/api/v1/admin/attributes", &field).await, 201).await;
    let mug = json!({"title": "Mug", "slug": "mug", "product_type_id": mug_type["id"],
        "status": "listed", "skus": [{"code": "MUG-1", "price": 1200, "stock": 5}]});
    expect_json(app.post("/api/v1/admin/products", &mug).await, 201).await
}

async fn customer_id(customer: &CustomerClient) -> i64 {
    expect_json(customer.get("/api/v1/me").await, 200).await["id"]
        .as_i64()
        .unwrap()
}

/// The product's id and its first SKU's.
fn ids_of(product: &Value) -> (i64, i64) {
    (
        product["id"].as_i64().unwrap(),
        product["skus"][0]["id"].as_i64().unwrap(),
    )
}

/// A signed-in customer who received `product`: a completed order of it.
async fn owner_of(app: &TestApp, product: &Value, email: &str) -> CustomerClient {
    let customer = signed_in_customer(app, email).await;
    let (product_id, sku_id) = ids_of(product);
    delivered(app, customer_id(&customer).await, product_id, sku_id).await;
    customer
}

async fn rating_on_page(app: &TestApp) -> Value {
    expect_json(app.get(MUG_PAGE).await, 200).await["rating"].clone()
}

async fn post_review(customer: &CustomerClient, rating: i64, body: &str) -> Value {
    let review = json!({"rating": rating, "body": body});
    expect_json(customer.post(MUG_REVIEWS, &review).await, 201).await
}

fn fields(problem: &Value) -> Vec<String> {
    let mut names: Vec<String> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

fn ids(page: &Value) -> Vec<i64> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect()
}

/// A staff member with exactly `permissions`, signed in on a client of their own.
async fn staff_session(app: &TestApp, email: &str, permissions: &[&str]) -> CustomerClient {
    let password = "a long staff password";
    create_staff(app, email, password, false, permissions).await;
    let client = new_client();
    let response = send(
        client
            .post(app.url(LOGIN_PATH))
            .json(&json!({"email": email, "password": password})),
    )
    .await;
    let body = expect_json(response, 200).await;
    CustomerClient {
        client,
        csrf: body["csrf_token"].as_str().unwrap().to_owned(),
        base: app.base.clone(),
    }
}

async fn customers_review_products_and_the_summary_follows_at_once(backend: Backend) {
    let app = spawn(backend).await;
    let mug = mug_shop(&app).await;
    assert_eq!(
        rating_on_page(&app).await,
        json!({"count": 0, "average": null, "distribution": [0, 0, 0, 0, 0]})
    );

    let ada = owner_of(&app, &mug, "ada@example.com").await;
    let review = json!({"rating": 4, "body": "  Keeps tea hot.\nGood handle.  ",
        "fields": {"use": "tea"}});
    let response = ada.post(MUG_REVIEWS, &review).await;
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let first = expect_json(response, 201).await;
    assert_eq!(location, format!("/api/v1/me/reviews/{}", first["id"]));
    assert_eq!(first["rating"], 4);
    assert_eq!(first["body"], "Keeps tea hot.\nGood handle.", "trimmed");
    assert_eq!(first["fields"], json!({"use": "tea"}));
    assert_eq!(first["author"], "Test C.", "first name and last initial");
    assert_eq!(first["reply"], Value::Null);
    // The cached product page shows the new summary at once.
    assert_eq!(
        rating_on_page(&app).await,
        json!({"count": 1, "average": 4.0, "distribution": [0, 0, 0, 1, 0]})
    );

    // One review per customer and product.
    let again = ada.post(MUG_REVIEWS, &json!({"rating": 1})).await;
    expect_problem(again, 409, "already-reviewed").await;

    let bo = owner_of(&app, &mug, "bo@example.com").await;
    let second = post_review(&bo, 5, "").await;
    let lu = owner_of(&app, &mug, "lu@example.com").await;
    let third = post_review(&lu, 4, "Fine").await;
    assert_eq!(
        rating_on_page(&app).await,
        json!({"count": 3, "average": 4.33, "distribution": [0, 0, 0, 2, 1]})
    );

    // Anyone may read them: newest first, with the summary of all of them.
    let list = expect_json(send(new_client().get(app.url(MUG_REVIEWS))).await, 200).await;
    assert_eq!(list["total"], 3);
    assert_eq!(
        (list["page"].clone(), list["per_page"].clone()),
        (json!(1), json!(20))
    );
    assert_eq!(
        ids(&list),
        [
            third["id"].as_i64().unwrap(),
            second["id"].as_i64().unwrap(),
            first["id"].as_i64().unwrap()
        ]
    );
    assert_eq!(list["rating"]["count"], 3);
    assert_eq!(list["rating"]["average"], 4.33);
    assert_eq!(list["items"][2]["fields"], json!({"use": "tea"}));
    assert!(
        !list.to_string().contains("@example.com"),
        "an author's email never shows: {list}"
    );
    let best = expect_json(app.get(&format!("{MUG_REVIEWS}?sort=-rating")).await, 200).await;
    assert_eq!(best["items"][0]["id"], second["id"]);
    let worst = expect_json(app.get(&format!("{MUG_REVIEWS}?sort=rating")).await, 200).await;
    assert_eq!(
        ids(&worst),
        [
            third["id"].as_i64().unwrap(),
            first["id"].as_i64().unwrap(),
            second["id"].as_i64().unwrap()
        ],
        "lowest first, then newest"
    );
    let fours = expect_json(
        app.get(&format!("{MUG_REVIEWS}?rating=4&per_page=1&page=2"))
            .await,
        200,
    )
    .await;
    assert_eq!(fours["total"], 2);
    assert_eq!(ids(&fours), [first["id"].as_i64().unwrap()]);
    assert_eq!(
        fours["rating"]["count"], 3,
        "the summary ignores the filter"
    );
    for bad in ["per_page=101", "rating=6", "sort=best"] {
        let response = app.get(&format!("{MUG_REVIEWS}?{bad}")).await;
        assert_eq!(response.status(), 400, "{bad}");
    }
}

async fn reviews_are_checked_and_only_customers_review_products_on_sale(backend: Backend) {
    let app = spawn(backend).await;
    let mug = mug_shop(&app).await;
    let ada = owner_of(&app, &mug, "ada@example.com").await;

    for (review, expected) in [
        (json!({"rating": 0}), vec!["rating"]),
        (
            json!({"rating": 6, "body": "x".repeat(5001)}),
            vec!["body", "rating"],
        ),
        (json!({"rating": 3.5}), vec!["rating"]),
        (json!({"rating": 3, "body": "nul\u{0}byte"}), vec!["body"]),
        (
            json!({"rating": 3, "fields": {"use": "soup", "colour": "red"}}),
            vec!["fields.colour", "fields.use"],
        ),
    ] {
        let response = ada.post(MUG_REVIEWS, &review).await;
        let problem = expect_problem(response, 422, "validation-failed").await;
        assert_eq!(fields(&problem), expected, "{review}");
    }
    assert_eq!(rating_on_page(&app).await["count"], 0, "nothing was stored");

    // Not signed in; signed in as staff (a bearer token or only a staff cookie).
    let anonymous = send(
        new_client()
            .post(app.url(MUG_REVIEWS))
            .json(&json!({"rating": 5})),
    )
    .await;
    expect_problem(anonymous, 401, "unauthenticated").await;
    let token = expect_json(
        send(
            new_client()
                .post(app.url("/api/v1/admin/auth/token"))
                .json(&json!({"email": SUPERUSER_EMAIL, "password": SUPERUSER_PASSWORD})),
        )
        .await,
        200,
    )
    .await;
    let as_staff = send(
        new_client()
            .request(Method::POST, app.url(MUG_REVIEWS))
            .bearer_auth(token["access_token"].as_str().unwrap())
            .json(&json!({"rating": 5})),
    )
    .await;
    expect_problem(as_staff, 403, "wrong-account-kind").await;
    // `app.client` holds the superuser's cookie and no customer one.
    let staff_cookie = app.post(MUG_REVIEWS, &json!({"rating": 5})).await;
    expect_problem(staff_cookie, 401, "unauthenticated").await;

    // Only products on sale now: not a draft, not before its window, not unknown.
    let draft = json!({"title": "Draft", "slug": "draft", "status": "draft"});
    expect_json(app.post("/api/v1/admin/products", &draft).await, 201).await;
    let later = json!({"title": "Later", "slug": "later", "status": "listed",
        "publish_at": "2099-01-01T00:00:00Z",
        "skus": [{"code": "LATER-1", "price": 100, "stock": 1}]});
    expect_json(app.post("/api/v1/admin/products", &later).await, 201).await;
    for slug in ["draft", "later", "nothing"] {
        let path = format!("/api/v1/products/{slug}/reviews");
        expect_problem(
            ada.post(&path, &json!({"rating": 5})).await,
            404,
            "not-found",
        )
        .await;
        expect_problem(app.get(&path).await, 404, "not-found").await;
    }

    // A customer whose address is no longer verified may not review, received or not.
    let me = expect_json(ada.get("/api/v1/me").await, 200).await;
    let unverify = json!({"email_verified": false, "version": me["version"]});
    let path = format!("/api/v1/admin/customers/{}", me["id"]);
    expect_json(app.patch(&path, &unverify).await, 200).await;
    let refused = ada.post(MUG_REVIEWS, &json!({"rating": 5})).await;
    expect_problem(refused, 403, "review-not-allowed").await;

    // A product delisted after a review keeps it, but takes no more.
    let bo = owner_of(&app, &mug, "bo@example.com").await;
    post_review(&bo, 2, "Chipped").await;
    let delist = json!({"status": "delisted", "version": mug["version"]});
    let path = format!("/api/v1/admin/products/{}", mug["id"]);
    expect_json(app.patch(&path, &delist).await, 200).await;
    let lu = owner_of(&app, &mug, "lu@example.com").await;
    expect_problem(
        lu.post(MUG_REVIEWS, &json!({"rating": 5})).await,
        404,
        "not-found",
    )
    .await;
}

async fn only_customers_who_received_the_product_review_it(backend: Backend) {
    let app = spawn(backend).await;
    let mug = mug_shop(&app).await;
    let (mug_id, mug_sku) = ids_of(&mug);
    let cup = json!({"title": "Cup", "slug": "cup", "status": "listed",
        "skus": [{"code": "CUP-1", "price": 800, "stock": 5}]});
    let cup = expect_json(app.post("/api/v1/admin/products", &cup).await, 201).await;
    let (cup_id, cup_sku) = ids_of(&cup);
    let review = json!({"rating": 5, "body": "Nice"});

    // A verified customer who never ordered the mug may not review it.
    let ada = signed_in_customer(&app, "ada@example.com").await;
    let ada_id = customer_id(&ada).await;
    let refused = ada.post(MUG_REVIEWS, &review).await;
    let problem = expect_problem(refused, 403, "review-not-allowed").await;
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("received"), "{detail}");

    // Receiving another product, or someone else receiving the mug, does not count.
    delivered(&app, ada_id, cup_id, cup_sku).await;
    let bo = owner_of(&app, &mug, "bo@example.com").await;
    expect_problem(
        ada.post(MUG_REVIEWS, &review).await,
        403,
        "review-not-allowed",
    )
    .await;

    // An order of the mug that has not shipped, or was cancelled, does not count either.
    for status in ["pending_payment", "paid", "ready_for_picking", "cancelled"] {
        order_in_status(&app, ada_id, mug_id, mug_sku, status).await;
        let refused = ada.post(MUG_REVIEWS, &review).await;
        expect_problem(refused, 403, "review-not-allowed").await;
    }
    assert_eq!(rating_on_page(&app).await["count"], 0, "nothing was stored");

    // Shipped is enough; so is completed.
    order_in_status(&app, ada_id, mug_id, mug_sku, "shipped").await;
    post_review(&ada, 4, "Arrived whole").await;
    post_review(&bo, 5, "").await;
    assert_eq!(rating_on_page(&app).await["count"], 2);

    // The cup's owner reviews the cup, not the mug.
    let cup_reviews = "/api/v1/products/cup/reviews";
    expect_json(ada.post(cup_reviews, &review).await, 201).await;
    expect_problem(
        bo.post(cup_reviews, &review).await,
        403,
        "review-not-allowed",
    )
    .await;
}

async fn staff_answer_filter_and_delete_reviews(backend: Backend) {
    let app = spawn(backend).await;
    let mug = mug_shop(&app).await;
    let superuser = expect_json(app.get("/api/v1/admin/me").await, 200).await;
    let ada = owner_of(&app, &mug, "ada@example.com").await;
    let bo = owner_of(&app, &mug, "bo@example.com").await;
    let good = post_review(&ada, 4, "Good").await;
    let bad = post_review(&bo, 2, "Chipped").await;

    let all = expect_json(app.get(ADMIN).await, 200).await;
    assert_eq!(all["total"], 2);
    assert_eq!(all["items"][0]["id"], bad["id"], "newest first");
    assert_eq!(all["items"][0]["product_id"], mug["id"]);
    assert_eq!(all["items"][0]["author"], "Test C.");
    let by_rating = expect_json(app.get(&format!("{ADMIN}?sort=-rating")).await, 200).await;
    assert_eq!(by_rating["items"][0]["id"], good["id"]);
    let twos = expect_json(app.get(&format!("{ADMIN}?rating=2")).await, 200).await;
    assert_eq!(ids(&twos), [bad["id"].as_i64().unwrap()]);
    let bos_id = expect_json(bo.get("/api/v1/me").await, 200).await["id"].clone();
    let bos = expect_json(app.get(&format!("{ADMIN}?customer_id={bos_id}")).await, 200).await;
    assert_eq!(ids(&bos), [bad["id"].as_i64().unwrap()]);
    let others = expect_json(app.get(&format!("{ADMIN}?product_id=999999")).await, 200).await;
    assert_eq!(others["total"], 0);

    // A reply shows on the storefront; with a version it must be the current one.
    let path = format!("{ADMIN}/{}/reply", bad["id"]);
    let response = app
        .put(&path, &json!({"reply": " Sorry! We are sending another. "}))
        .await;
    assert_eq!(response.headers()["etag"], "\"2\"");
    let replied = expect_json(response, 200).await;
    assert_eq!(replied["reply"], "Sorry! We are sending another.");
    assert_eq!(replied["replied_by"], superuser["id"]);
    assert!(replied["replied_at"].is_string());
    let stale = app
        .put(&path, &json!({"reply": "Again", "version": 1}))
        .await;
    expect_problem(stale, 409, "stale-version").await;
    let empty = app.put(&path, &json!({"reply": "  "})).await;
    let problem = expect_problem(empty, 422, "validation-failed").await;
    assert_eq!(fields(&problem), ["reply"]);
    let missing = app
        .put(&format!("{ADMIN}/999999/reply"), &json!({"reply": "Hi"}))
        .await;
    expect_problem(missing, 404, "not-found").await;
    let list = expect_json(app.get(MUG_REVIEWS).await, 200).await;
    assert_eq!(list["items"][0]["reply"], "Sorry! We are sending another.");
    assert_eq!(list["items"][0]["replied_at"], replied["replied_at"]);
    let answered = expect_json(app.get(&format!("{ADMIN}?replied=true")).await, 200).await;
    assert_eq!(ids(&answered), [bad["id"].as_i64().unwrap()]);
    let waiting = expect_json(app.get(&format!("{ADMIN}?replied=false")).await, 200).await;
    assert_eq!(ids(&waiting), [good["id"].as_i64().unwrap()]);
    let one = app.get(&format!("{ADMIN}/{}", bad["id"])).await;
    assert_eq!(one.headers()["etag"], "\"2\"");

    // Staff delete: the summary follows at once, and the deletion is audited.
    let response = app.delete(&format!("{ADMIN}/{}", bad["id"])).await;
    assert_eq!(response.status(), 204);
    assert_eq!(
        rating_on_page(&app).await,
        json!({"count": 1, "average": 4.0, "distribution": [0, 0, 0, 1, 0]})
    );
    let response = app.delete(&format!("{ADMIN}/{}", bad["id"])).await;
    expect_problem(response, 404, "not-found").await;
    expect_problem(
        app.get(&format!("{ADMIN}/{}", bad["id"])).await,
        404,
        "not-found",
    )
    .await;
    let list = expect_json(app.get(MUG_REVIEWS).await, 200).await;
    assert_eq!(ids(&list), [good["id"].as_i64().unwrap()]);
    for event in ["review_replied", "review_deleted"] {
        let path = format!("/api/v1/admin/security-log?event={event}");
        let log = expect_json(app.get(&path).await, 200).await;
        assert_eq!(log["total"], 1, "{event}");
        assert_eq!(log["items"][0]["subject"], format!("review:{}", bad["id"]));
    }

    // Reading needs catalog.reviews.read; answering and deleting catalog.reviews.write.
    let reader = staff_session(&app, "reader@example.com", &["catalog.reviews.read"]).await;
    expect_json(reader.get(ADMIN).await, 200).await;
    let path = format!("{ADMIN}/{}/reply", good["id"]);
    let response = send(
        reader
            .request(Method::PUT, &path)
            .json(&json!({"reply": "Hi"})),
    )
    .await;
    expect_problem(response, 403, "forbidden").await;
    let response = reader.delete(&format!("{ADMIN}/{}", good["id"])).await;
    expect_problem(response, 403, "forbidden").await;
    let clerk = staff_session(&app, "clerk@example.com", &["catalog.products.read"]).await;
    expect_problem(clerk.get(ADMIN).await, 403, "forbidden").await;
}

async fn customers_withdraw_their_own_reviews_only(backend: Backend) {
    let app = spawn(backend).await;
    let mug = mug_shop(&app).await;
    let ada = owner_of(&app, &mug, "ada@example.com").await;
    let bo = owner_of(&app, &mug, "bo@example.com").await;
    let adas = post_review(&ada, 5, "Lovely").await;
    let bos = post_review(&bo, 1, "Broke").await;
    let path = format!("/api/v1/me/reviews/{}", adas["id"]);

    // Someone else's review does not exist for them.
    expect_problem(bo.get(&path).await, 404, "not-found").await;
    expect_problem(bo.delete(&path).await, 404, "not-found").await;
    let mine = expect_json(ada.get(&path).await, 200).await;
    assert_eq!(mine["body"], "Lovely");

    let response = ada.delete(&path).await;
    assert_eq!(response.status(), 204);
    expect_problem(ada.get(&path).await, 404, "not-found").await;
    assert_eq!(
        rating_on_page(&app).await,
        json!({"count": 1, "average": 1.0, "distribution": [1, 0, 0, 0, 0]})
    );
    let list = expect_json(app.get(MUG_REVIEWS).await, 200).await;
    assert_eq!(ids(&list), [bos["id"].as_i64().unwrap()]);

    // Withdrawn, a customer may review again.
    post_review(&ada, 3, "Second thoughts").await;
    assert_eq!(rating_on_page(&app).await["average"], 2.0);
}
