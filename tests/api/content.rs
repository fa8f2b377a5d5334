//! Content end to end: the directory tree, sanitised pages, ads inside their window,
//! navigation menus, and their permissions.

use chrono::{Duration, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::harness::*;

const DIRS: &str = "/api/v1/admin/content/directories";
const PAGES: &str = "/api/v1/admin/content/pages";
const ADS: &str = "/api/v1/admin/content/ads";
const MENUS: &str = "/api/v1/admin/content/menus";

async fn create(app: &TestApp, path: &str, body: Value) -> Value {
    expect_json(app.post(path, &body).await, 201).await
}

fn id(value: &Value) -> i64 {
    value["id"].as_i64().expect("the response has an id")
}

fn at(offset: Duration) -> String {
    (Utc::now() + offset).to_rfc3339_opts(SecondsFormat::Secs, true)
}

async fn public_get(app: &TestApp, path: &str) -> reqwest::Response {
    app.new_client().get(app.url(path)).send().await.unwrap()
}

async fn directories_form_a_tree_and_refuse_cycles(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let help = create(&app, DIRS, json!({"name": "Help", "slug": "help"})).await;
    let orders = create(
        &app,
        DIRS,
        json!({"name": "Orders", "slug": "orders", "parent_id": id(&help)}),
    )
    .await;
    let returns = create(
        &app,
        DIRS,
        json!({"name": "Returns", "slug": "returns", "parent_id": id(&orders), "sort_order": 2}),
    )
    .await;
    let blog = create(
        &app,
        DIRS,
        json!({"name": "Blog", "slug": "blog", "link_url": "https://blog.example.com"}),
    )
    .await;

    // Validation, uniqueness and missing parents.
    let bad = app
        .post(DIRS, &json!({"name": "", "slug": "Bad Slug"}))
        .await;
    let problem = expect_problem(bad, 422, "validation-failed").await;
    assert_eq!(problem["errors"].as_array().unwrap().len(), 2);
    let taken = app
        .post(DIRS, &json!({"name": "Help", "slug": "help"}))
        .await;
    expect_problem(taken, 409, "already-exists").await;
    let orphan = app
        .post(DIRS, &json!({"name": "X", "slug": "x", "parent_id": 9999}))
        .await;
    let problem = expect_problem(orphan, 422, "validation-failed").await;
    assert_eq!(problem["errors"][0]["field"], "parent_id");
    let under_link = app
        .post(
            DIRS,
            &json!({"name": "X", "slug": "x", "parent_id": id(&blog)}),
        )
        .await;
    expect_problem(under_link, 422, "validation-failed").await;

    // A move under its own subtree is refused; a move elsewhere works.
    let help_path = format!("{DIRS}/{}", id(&help));
    for target in [id(&returns), id(&help)] {
        let cycle = app
            .patch(&help_path, &json!({"parent_id": target, "version": 1}))
            .await;
        let problem = expect_problem(cycle, 422, "validation-failed").await;
        assert_eq!(problem["errors"][0]["field"], "parent_id");
    }
    let returns_path = format!("{DIRS}/{}", id(&returns));
    let moved = app
        .patch(
            &returns_path,
            &json!({"parent_id": id(&help), "version": 1}),
        )
        .await;
    let moved = expect_json(moved, 200).await;
    assert_eq!(moved["parent_id"], id(&help));
    assert_eq!(moved["version"], 2);
    let stale = app
        .patch(&returns_path, &json!({"name": "Again", "version": 1}))
        .await;
    expect_problem(stale, 409, "stale-version").await;
    let missing = app
        .patch(&format!("{DIRS}/9999"), &json!({"name": "X", "version": 1}))
        .await;
    expect_problem(missing, 404, "not-found").await;

    // Lists and reads.
    let children = expect_json(
        app.get(&format!("{DIRS}?parent_id={}", id(&help))).await,
        200,
    )
    .await;
    assert_eq!(children["total"], 2);
    let fetched = app.get(&help_path).await;
    assert_eq!(header_str(fetched.headers(), "etag"), "\"1\"");
    expect_problem(app.get(&format!("{DIRS}/9999")).await, 404, "not-found").await;

    // A directory with pages cannot become a link, nor be deleted.
    let page = create(
        &app,
        PAGES,
        json!({"title": "Refunds", "slug": "refunds", "directory_id": id(&returns), "published": true}),
    )
    .await;
    create(
        &app,
        PAGES,
        json!({"title": "Draft", "slug": "draft", "directory_id": id(&returns)}),
    )
    .await;
    let to_link = app
        .patch(
            &returns_path,
            &json!({"link_url": "https://x.example", "version": 2}),
        )
        .await;
    let problem = expect_problem(to_link, 422, "validation-failed").await;
    assert_eq!(problem["errors"][0]["field"], "link_url");
    expect_problem(app.delete(&help_path).await, 409, "directory-not-empty").await;
    expect_problem(app.delete(&returns_path).await, 409, "directory-not-empty").await;
    expect_problem(app.delete(&format!("{DIRS}/9999")).await, 404, "not-found").await;

    // The storefront tree lists published pages only.
    let tree = expect_json(public_get(&app, "/api/v1/content/directories").await, 200).await;
    let slugs: Vec<&str> = tree
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["slug"].as_str().unwrap())
        .collect();
    assert_eq!(slugs, ["blog", "help"]);
    assert_eq!(tree[0]["link_url"], "https://blog.example.com");
    let help_children = tree[1]["children"].as_array().unwrap();
    assert_eq!(help_children.len(), 2);
    let returns_node = help_children
        .iter()
        .find(|n| n["slug"] == "returns")
        .unwrap();
    assert_eq!(
        returns_node["pages"],
        json!([{"title": "Refunds", "slug": "refunds"}])
    );

    // Emptied, it can go.
    expect_json(
        app.patch(
            &format!("{PAGES}/{}", id(&page)),
            &json!({"directory_id": null, "version": 1}),
        )
        .await,
        200,
    )
    .await;
    let drafts = expect_json(
        app.get(&format!("{PAGES}?directory_id={}", id(&returns)))
            .await,
        200,
    )
    .await;
    let draft_id = drafts["items"][0]["id"].as_i64().unwrap();
    assert_eq!(
        app.delete(&format!("{PAGES}/{draft_id}")).await.status(),
        204
    );
    assert_eq!(app.delete(&returns_path).await.status(), 204);
    expect_problem(app.get(&returns_path).await, 404, "not-found").await;
}

async fn pages_are_sanitised_and_published_by_slug(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let nasty = r#"<h1>About</h1><script>alert(1)</script><img src="/a.png" onerror="alert(2)"><a href="javascript:alert(3)">click</a><p onclick="x()">Hello</p>"#;
    let page = create(
        &app,
        PAGES,
        json!({"title": "About us", "slug": "about-us", "body": nasty, "meta_title": "About"}),
    )
    .await;
    let body = page["body"].as_str().unwrap();
    for forbidden in ["<script", "onerror", "javascript:", "onclick"] {
        assert!(!body.contains(forbidden), "{forbidden} survived: {body}");
    }
    assert!(
        body.contains("<h1>About</h1>") && body.contains("Hello"),
        "{body}"
    );
    assert_eq!(page["directory_id"], Value::Null);
    assert_eq!(page["published"], false);

    // Drafts are invisible to the storefront.
    expect_problem(
        public_get(&app, "/api/v1/pages/about-us").await,
        404,
        "not-found",
    )
    .await;
    expect_problem(
        public_get(&app, "/api/v1/pages/nothing").await,
        404,
        "not-found",
    )
    .await;

    // Publish with If-Match; a second write with the same ETag loses.
    let path = format!("{PAGES}/{}", id(&page));
    let etag = header_str(app.get(&path).await.headers(), "etag");
    let published = send(
        app.request(reqwest::Method::PATCH, &path)
            .header("if-match", &etag)
            .json(&json!({"published": true, "body": "<p>Hi<script>x()</script></p>"})),
    )
    .await;
    let published = expect_json(published, 200).await;
    assert_eq!(published["body"], "<p>Hi</p>");
    let again = send(
        app.request(reqwest::Method::PATCH, &path)
            .header("if-match", &etag)
            .json(&json!({"title": "Lost"})),
    )
    .await;
    expect_problem(again, 412, "precondition-failed").await;
    let blind = app.patch(&path, &json!({"title": "Blind"})).await;
    expect_problem(blind, 428, "precondition-required").await;

    let public = expect_json(public_get(&app, "/api/v1/pages/about-us").await, 200).await;
    assert_eq!(public["title"], "About us");
    assert_eq!(public["body"], "<p>Hi</p>");
    assert_eq!(public["meta_title"], "About");

    // Validation: slugs are lowercase, directories must exist.
    for slug in ["About Us", "-x", "x_y", ""] {
        let bad = app.post(PAGES, &json!({"title": "T", "slug": slug})).await;
        let problem = expect_problem(bad, 422, "validation-failed").await;
        assert_eq!(problem["errors"][0]["field"], "slug");
    }
    let no_dir = app
        .post(
            PAGES,
            &json!({"title": "T", "slug": "t", "directory_id": 4242}),
        )
        .await;
    let problem = expect_problem(no_dir, 422, "validation-failed").await;
    assert_eq!(problem["errors"][0]["field"], "directory_id");
    let taken = app
        .post(PAGES, &json!({"title": "T", "slug": "about-us"}))
        .await;
    expect_problem(taken, 409, "already-exists").await;

    // Lists: pagination, filters and search on the title.
    create(&app, PAGES, json!({"title": "Contact", "slug": "contact"})).await;
    create(
        &app,
        PAGES,
        json!({"title": "Careers", "slug": "careers", "published": true}),
    )
    .await;
    let first = expect_json(
        app.get(&format!("{PAGES}?per_page=2&sort=title")).await,
        200,
    )
    .await;
    assert_eq!(first["total"], 3);
    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    assert_eq!(first["items"][0]["title"], "About us");
    let live = expect_json(app.get(&format!("{PAGES}?published=true")).await, 200).await;
    assert_eq!(live["total"], 2);
    let search = expect_json(app.get(&format!("{PAGES}?q=Cont")).await, 200).await;
    assert_eq!(search["total"], 1);
    assert_eq!(search["items"][0]["slug"], "contact");
    let bad_sort = app.get(&format!("{PAGES}?sort=body")).await;
    expect_problem(bad_sort, 400, "invalid-sort").await;

    assert_eq!(app.delete(&path).await.status(), 204);
    expect_problem(app.delete(&path).await, 404, "not-found").await;
    expect_problem(
        public_get(&app, "/api/v1/pages/about-us").await,
        404,
        "not-found",
    )
    .await;
}

async fn ads_show_only_inside_their_window(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let ad = |title: &str, extra: Value| {
        let mut body = json!({"title": title, "image_url": "https://cdn.example.com/a.png",
            "link_url": "/sale", "placement": "home_top"});
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        body
    };
    let now = create(
        &app,
        ADS,
        ad("now", json!({"starts_at": at(Duration::hours(-1)), "ends_at": at(Duration::hours(1)), "sort_order": 2})),
    )
    .await;
    create(&app, ADS, ad("always", json!({"sort_order": 1}))).await;
    create(
        &app,
        ADS,
        ad("later", json!({"starts_at": at(Duration::hours(1))})),
    )
    .await;
    create(
        &app,
        ADS,
        ad(
            "over",
            json!({"starts_at": at(Duration::hours(-2)), "ends_at": at(Duration::seconds(-1))}),
        ),
    )
    .await;
    create(&app, ADS, ad("off", json!({"active": false}))).await;
    create(&app, ADS, ad("side", json!({"placement": "sidebar"}))).await;

    let showing = expect_json(
        public_get(&app, "/api/v1/ads?placement=home_top").await,
        200,
    )
    .await;
    let titles: Vec<&str> = showing
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["always", "now"]);
    let everywhere = expect_json(public_get(&app, "/api/v1/ads").await, 200).await;
    assert_eq!(everywhere.as_array().unwrap().len(), 3);

    // The window must end after it starts, also when a PATCH moves one bound.
    let backwards = app
        .post(
            ADS,
            &ad(
                "bad",
                json!({"starts_at": at(Duration::hours(1)), "ends_at": at(Duration::hours(-1))}),
            ),
        )
        .await;
    let problem = expect_problem(backwards, 422, "validation-failed").await;
    assert_eq!(problem["errors"][0]["field"], "ends_at");
    let path = format!("{ADS}/{}", id(&now));
    let before_start = app
        .patch(
            &path,
            &json!({"ends_at": at(Duration::hours(-3)), "version": 1}),
        )
        .await;
    expect_problem(before_start, 422, "validation-failed").await;
    let bad_url = app
        .post(ADS, &ad("x", json!({"image_url": "javascript:alert(1)"})))
        .await;
    let problem = expect_problem(bad_url, 422, "validation-failed").await;
    assert_eq!(problem["errors"][0]["field"], "image_url");

    // Ending the window now takes the ad off the storefront at once.
    let ended = app
        .patch(
            &path,
            &json!({"ends_at": at(Duration::seconds(-1)), "version": 1}),
        )
        .await;
    assert_eq!(expect_json(ended, 200).await["version"], 2);
    let showing = expect_json(
        public_get(&app, "/api/v1/ads?placement=home_top").await,
        200,
    )
    .await;
    assert_eq!(showing.as_array().unwrap().len(), 1);

    let listed = expect_json(
        app.get(&format!("{ADS}?placement=home_top&active=true"))
            .await,
        200,
    )
    .await;
    assert_eq!(listed["total"], 4);
    expect_json(app.get(&path).await, 200).await;
    expect_problem(app.get(&format!("{ADS}/9999")).await, 404, "not-found").await;
    assert_eq!(app.delete(&path).await.status(), 204);
    expect_problem(app.delete(&path).await, 404, "not-found").await;
}

async fn menus_resolve_their_targets(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let help = create(&app, DIRS, json!({"name": "Help", "slug": "help"})).await;
    let blog = create(
        &app,
        DIRS,
        json!({"name": "Blog", "slug": "blog", "link_url": "https://blog.example.com"}),
    )
    .await;
    let about = create(
        &app,
        PAGES,
        json!({"title": "About", "slug": "about", "published": true}),
    )
    .await;
    let draft = create(&app, PAGES, json!({"title": "Draft", "slug": "draft"})).await;

    let menu = create(&app, MENUS, json!({"code": "main", "name": "Main"})).await;
    let taken = app
        .post(MENUS, &json!({"code": "main", "name": "Again"}))
        .await;
    expect_problem(taken, 409, "already-exists").await;
    let bad = app
        .post(MENUS, &json!({"code": "no spaces", "name": ""}))
        .await;
    expect_problem(bad, 422, "validation-failed").await;

    let items_path = format!("{MENUS}/{}/items", id(&menu));
    let missing = app
        .put(
            &items_path,
            &json!({"items": [
                {"label": "Home", "kind": "url", "url": "/"},
                {"label": "Ghost", "kind": "page", "target_id": 9999},
            ]}),
        )
        .await;
    let problem = expect_problem(missing, 422, "validation-failed").await;
    assert_eq!(problem["errors"][0]["field"], "items[1].target_id");
    let deep = app
        .put(
            &items_path,
            &json!({"items": [{"label": "A", "kind": "url", "url": "/a", "children": [
                {"label": "B", "kind": "url", "url": "/b", "children": [
                    {"label": "C", "kind": "url", "url": "/c"}]}]}]}),
        )
        .await;
    let problem = expect_problem(deep, 422, "validation-failed").await;
    assert_eq!(
        problem["errors"][0]["field"],
        "items[0].children[0].children"
    );
    let no_target = app
        .put(
            &items_path,
            &json!({"items": [{"label": "D", "kind": "directory"}]}),
        )
        .await;
    let problem = expect_problem(no_target, 422, "validation-failed").await;
    assert_eq!(problem["errors"][0]["field"], "items[0].target_id");
    expect_problem(
        app.put(&format!("{MENUS}/9999/items"), &json!({"items": []}))
            .await,
        404,
        "not-found",
    )
    .await;

    let replaced = app
        .put(
            &items_path,
            &json!({"items": [
                {"label": "Help", "kind": "directory", "target_id": id(&help), "sort_order": 2, "children": [
                    {"label": "About", "kind": "page", "target_id": id(&about)},
                    {"label": "Draft", "kind": "page", "target_id": id(&draft)},
                ]},
                {"label": "Home", "kind": "url", "url": "/", "sort_order": 1},
                {"label": "Blog", "kind": "directory", "target_id": id(&blog), "sort_order": 3},
                {"label": "Hidden", "kind": "page", "target_id": id(&draft), "sort_order": 4},
            ]}),
        )
        .await;
    let replaced = expect_json(replaced, 200).await;
    assert_eq!(replaced["items"].as_array().unwrap().len(), 4);
    assert_eq!(
        replaced["items"][1]["children"].as_array().unwrap().len(),
        2
    );

    let public = expect_json(public_get(&app, "/api/v1/menus/main").await, 200).await;
    assert_eq!(
        public["items"],
        json!([
            {"label": "Home", "kind": "url", "url": "/", "slug": null, "children": []},
            {"label": "Help", "kind": "directory", "url": "/content/help", "slug": "help", "children": [
                {"label": "About", "kind": "page", "url": "/pages/about", "slug": "about", "children": []},
            ]},
            {"label": "Blog", "kind": "directory", "url": "https://blog.example.com", "slug": "blog", "children": []},
        ])
    );
    expect_problem(
        public_get(&app, "/api/v1/menus/nope").await,
        404,
        "not-found",
    )
    .await;

    // Replacing again drops the old items entirely.
    let emptied = app
        .put(
            &items_path,
            &json!({"items": [{"label": "Only", "kind": "url", "url": "https://example.com"}]}),
        )
        .await;
    assert_eq!(
        expect_json(emptied, 200).await["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let menu_path = format!("{MENUS}/{}", id(&menu));
    let renamed = app
        .patch(&menu_path, &json!({"name": "Main menu", "version": 1}))
        .await;
    assert_eq!(expect_json(renamed, 200).await["name"], "Main menu");
    expect_problem(
        app.patch(&menu_path, &json!({"name": "X", "version": 1}))
            .await,
        409,
        "stale-version",
    )
    .await;
    let listed = expect_json(app.get(MENUS).await, 200).await;
    assert_eq!(listed["total"], 1);
    assert_eq!(listed["items"][0]["items"].as_array().unwrap().len(), 1);
    expect_json(app.get(&menu_path).await, 200).await;
    assert_eq!(app.delete(&menu_path).await.status(), 204);
    expect_problem(app.get(&menu_path).await, 404, "not-found").await;
    expect_problem(
        public_get(&app, "/api/v1/menus/main").await,
        404,
        "not-found",
    )
    .await;
}

async fn menus_link_to_categories_and_products_on_sale(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let shoes = create(
        &app,
        "/api/v1/admin/categories",
        json!({"name": "Shoes", "slug": "shoes"}),
    )
    .await;
    let hidden = create(
        &app,
        "/api/v1/admin/categories",
        json!({"name": "Staff picks", "slug": "staff-picks", "is_visible": false}),
    )
    .await;
    let boot = create(
        &app,
        "/api/v1/admin/products",
        json!({"title": "Boot", "slug": "boot", "status": "listed",
            "skus": [{"code": "BOOT", "price": 9900}]}),
    )
    .await;
    let draft = create(
        &app,
        "/api/v1/admin/products",
        json!({"title": "Clog", "slug": "clog"}),
    )
    .await;
    let menu = create(&app, MENUS, json!({"code": "shop", "name": "Shop"})).await;
    let items_path = format!("{MENUS}/{}/items", id(&menu));

    let problem = expect_problem(
        app.put(
            &items_path,
            &json!({"items": [
                {"label": "Ghost category", "kind": "category", "target_id": 9999},
                {"label": "Ghost product", "kind": "product", "target_id": 9999},
                {"label": "No target", "kind": "product"},
            ]}),
        )
        .await,
        422,
        "validation-failed",
    )
    .await;
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["items[2].target_id"], "own fields first");
    let problem = expect_problem(
        app.put(
            &items_path,
            &json!({"items": [
                {"label": "Ghost category", "kind": "category", "target_id": 9999},
                {"label": "Ghost product", "kind": "product", "target_id": 9999},
            ]}),
        )
        .await,
        422,
        "validation-failed",
    )
    .await;
    assert_eq!(problem["errors"].as_array().unwrap().len(), 2, "{problem}");

    expect_json(
        app.put(
            &items_path,
            &json!({"items": [
                {"label": "Shoes", "kind": "category", "target_id": id(&shoes), "children": [
                    {"label": "Boot", "kind": "product", "target_id": id(&boot)},
                    {"label": "Clog", "kind": "product", "target_id": id(&draft)},
                ]},
                {"label": "Picks", "kind": "category", "target_id": id(&hidden)},
            ]}),
        )
        .await,
        200,
    )
    .await;
    let public = expect_json(public_get(&app, "/api/v1/menus/shop").await, 200).await;
    assert_eq!(
        public["items"],
        json!([
            {"label": "Shoes", "kind": "category", "url": "/categories/shoes", "slug": "shoes", "children": [
                {"label": "Boot", "kind": "product", "url": "/products/boot", "slug": "boot", "children": []},
            ]},
        ]),
        "hidden categories and products not on sale are left out"
    );
}

async fn content_writes_need_their_permissions_and_are_logged(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    create(&app, PAGES, json!({"title": "About", "slug": "about"})).await;
    create(&app, MENUS, json!({"code": "main", "name": "Main"})).await;
    let log = expect_json(
        app.get("/api/v1/admin/security-log?event=content.page.created")
            .await,
        200,
    )
    .await;
    assert_eq!(log["items"].as_array().unwrap().len(), 1);
    assert_eq!(log["items"][0]["subject"], "content_page:1");

    create_staff(
        &app,
        "editor@example.com",
        SUPERUSER_PASSWORD,
        false,
        &["content.pages.read"],
    )
    .await;
    login(&app, "editor@example.com", SUPERUSER_PASSWORD).await;
    expect_json(app.get(PAGES).await, 200).await;
    expect_json(app.get(DIRS).await, 200).await;
    for (response, what) in [
        (
            app.post(PAGES, &json!({"title": "T", "slug": "t"})).await,
            "pages write",
        ),
        (
            app.post(DIRS, &json!({"name": "D", "slug": "d"})).await,
            "directories write",
        ),
        (app.get(ADS).await, "ads read"),
        (app.get(MENUS).await, "menus read"),
        (
            app.put(&format!("{MENUS}/1/items"), &json!({"items": []}))
                .await,
            "menu items",
        ),
    ] {
        assert_eq!(response.status(), 403, "{what}");
    }
    let anonymous = app.new_client().get(app.url(PAGES)).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
}

both_backends!(
    menus_link_to_categories_and_products_on_sale,
    directories_form_a_tree_and_refuse_cycles,
    pages_are_sanitised_and_published_by_slug,
    ads_show_only_inside_their_window,
    menus_resolve_their_targets,
    content_writes_need_their_permissions_and_are_logged,
);
