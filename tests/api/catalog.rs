//! The category tree: admin edits with subtree moves that can never make a cycle, and the
//! storefront's cached tree that shows an edit at once.

use serde_json::{Value, json};

use crate::harness::{
    Backend, both_backends, create_staff, expect_json, expect_problem, login, login_as_superuser,
    spawn,
};

both_backends!(
    categories_form_a_tree_with_breadcrumbs,
    moves_carry_the_subtree_and_never_make_a_cycle,
    category_writes_are_checked_and_permissioned,
    the_storefront_shows_visible_categories_and_edits_at_once,
    product_types_define_attributes_axes_and_review_fields,
    custom_attribute_values_are_checked_against_their_definitions,
);

const ADMIN: &str = "/api/v1/admin/categories";

async fn create(app: &crate::harness::TestApp, body: Value) -> Value {
    expect_json(app.post(ADMIN, &body).await, 201).await
}

fn names(nodes: &Value) -> Vec<String> {
    nodes
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn categories_form_a_tree_with_breadcrumbs(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let clothing = create(
        &app,
        json!({"name": "Clothing", "slug": "clothing", "sort_order": 2}),
    )
    .await;
    let books = create(
        &app,
        json!({"name": "Books", "slug": "books", "sort_order": 1}),
    )
    .await;
    let men = create(
        &app,
        json!({"name": "Men", "slug": "men", "parent_id": clothing["id"]}),
    )
    .await;
    let shirts = create(
        &app,
        json!({"name": "Shirts", "slug": "men-shirts", "parent_id": men["id"],
            "meta_title": "Shirts for men"}),
    )
    .await;
    assert_eq!(shirts["meta_title"], "Shirts for men");
    assert_eq!(
        shirts["breadcrumbs"],
        json!([
            {"id": clothing["id"], "name": "Clothing", "slug": "clothing"},
            {"id": men["id"], "name": "Men", "slug": "men"}
        ])
    );

    let tree = expect_json(app.get(ADMIN).await, 200).await;
    assert_eq!(names(&tree), ["Books", "Clothing"], "sibling order");
    assert_eq!(tree[0]["id"], books["id"]);
    assert_eq!(names(&tree[1]["children"][0]["children"]), ["Shirts"]);

    let response = app.get(&format!("{ADMIN}/{}", men["id"])).await;
    assert_eq!(response.headers()["etag"], "\"1\"");
    let detail = expect_json(response, 200).await;
    assert_eq!(detail["children"][0]["slug"], "men-shirts");
    assert_eq!(detail["breadcrumbs"][0]["slug"], "clothing");
}

async fn moves_carry_the_subtree_and_never_make_a_cycle(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let a = create(&app, json!({"name": "A", "slug": "a"})).await;
    let b = create(
        &app,
        json!({"name": "B", "slug": "b", "parent_id": a["id"]}),
    )
    .await;
    let c = create(
        &app,
        json!({"name": "C", "slug": "c", "parent_id": b["id"]}),
    )
    .await;
    let d = create(&app, json!({"name": "D", "slug": "d"})).await;

    // Under itself, or under its own descendant: refused, nothing changes.
    for target in [&a, &c] {
        let response = app
            .patch(
                &format!("{ADMIN}/{}", a["id"]),
                &json!({"parent_id": target["id"], "version": 1}),
            )
            .await;
        let problem = expect_problem(response, 422, "validation-failed").await;
        assert_eq!(problem["errors"][0]["field"], "parent_id");
    }
    // B moves under D and takes C with it.
    let moved = app
        .patch(
            &format!("{ADMIN}/{}", b["id"]),
            &json!({"parent_id": d["id"], "version": 1}),
        )
        .await;
    let moved = expect_json(moved, 200).await;
    assert_eq!(moved["parent_id"], d["id"]);
    assert_eq!(moved["version"], 2);
    let c_now = expect_json(app.get(&format!("{ADMIN}/{}", c["id"])).await, 200).await;
    let crumbs: Vec<&str> = c_now["breadcrumbs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["slug"].as_str().unwrap())
        .collect();
    assert_eq!(crumbs, ["d", "b"]);
    // Now A may move under C (no longer its descendant); and `null` moves back to the root.
    let response = app
        .patch(
            &format!("{ADMIN}/{}", a["id"]),
            &json!({"parent_id": c["id"], "version": 1}),
        )
        .await;
    expect_json(response, 200).await;
    let response = app
        .patch(
            &format!("{ADMIN}/{}", a["id"]),
            &json!({"parent_id": null, "version": 2}),
        )
        .await;
    assert_eq!(expect_json(response, 200).await["parent_id"], Value::Null);
    // A stale version is a conflict.
    let response = app
        .patch(
            &format!("{ADMIN}/{}", a["id"]),
            &json!({"name": "Stale", "version": 1}),
        )
        .await;
    expect_problem(response, 409, "stale-version").await;
}

async fn category_writes_are_checked_and_permissioned(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let parent = create(&app, json!({"name": "Parent", "slug": "parent"})).await;
    create(
        &app,
        json!({"name": "Child", "slug": "child", "parent_id": parent["id"]}),
    )
    .await;

    let response = app
        .post(
            ADMIN,
            &json!({"name": "", "slug": "Not A Slug", "parent_id": 999}),
        )
        .await;
    let problem = expect_problem(response, 422, "validation-failed").await;
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["name", "slug"]);
    let response = app
        .post(
            ADMIN,
            &json!({"name": "Orphan", "slug": "orphan", "parent_id": 999}),
        )
        .await;
    let problem = expect_problem(response, 422, "validation-failed").await;
    assert_eq!(problem["errors"][0]["field"], "parent_id");
    let response = app
        .post(ADMIN, &json!({"name": "Again", "slug": "child"}))
        .await;
    expect_problem(response, 409, "category-slug-taken").await;
    let response = app
        .post(ADMIN, &json!({"name": "X", "slug": "x", "colour": "red"}))
        .await;
    assert_eq!(response.status(), 422, "unknown fields are refused");

    let response = app.delete(&format!("{ADMIN}/{}", parent["id"])).await;
    expect_problem(response, 409, "category-has-children").await;
    expect_problem(app.get(&format!("{ADMIN}/999")).await, 404, "not-found").await;
    expect_problem(app.delete(&format!("{ADMIN}/999")).await, 404, "not-found").await;
    let response = app
        .patch(
            &format!("{ADMIN}/999"),
            &json!({"name": "Nope", "version": 1}),
        )
        .await;
    expect_problem(response, 404, "not-found").await;

    // A reader may look but not change.
    let password = "a long staff password";
    create_staff(
        &app,
        "viewer@example.com",
        password,
        false,
        &["catalog.categories.read"],
    )
    .await;
    let viewer = crate::harness::spawn_sharing(&app).await;
    assert_eq!(
        login(&viewer, "viewer@example.com", password)
            .await
            .status(),
        200
    );
    expect_json(viewer.get(ADMIN).await, 200).await;
    let response = viewer.post(ADMIN, &json!({"name": "Y", "slug": "y"})).await;
    expect_problem(response, 403, "forbidden").await;

    let log = expect_json(
        app.get("/api/v1/admin/security-log?event=category_created")
            .await,
        200,
    )
    .await;
    assert_eq!(log["total"], 2);
}

async fn the_storefront_shows_visible_categories_and_edits_at_once(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let shop = app.new_client();
    let storefront = |path: String| {
        let request = shop.get(app.url(&path));
        async move { crate::harness::send(request).await }
    };
    let home = create(&app, json!({"name": "Home", "slug": "home"})).await;
    let kitchen = create(
        &app,
        json!({"name": "Kitchen", "slug": "kitchen", "parent_id": home["id"]}),
    )
    .await;
    create(
        &app,
        json!({"name": "Knives", "slug": "knives", "parent_id": kitchen["id"]}),
    )
    .await;
    let secret = create(
        &app,
        json!({"name": "Secret", "slug": "secret", "is_visible": false}),
    )
    .await;
    create(
        &app,
        json!({"name": "Below", "slug": "below", "parent_id": secret["id"]}),
    )
    .await;

    let tree = expect_json(storefront("/api/v1/categories".into()).await, 200).await;
    assert_eq!(names(&tree), ["Home"], "hidden subtrees are left out");
    let knives = expect_json(storefront("/api/v1/categories/knives".into()).await, 200).await;
    assert_eq!(knives["breadcrumbs"][1]["slug"], "kitchen");
    for hidden in ["secret", "below", "no-such-category"] {
        let response = storefront(format!("/api/v1/categories/{hidden}")).await;
        expect_problem(response, 404, "not-found").await;
    }

    // The tree is cached, yet a rename shows at once (the write bumps the cache version).
    expect_json(storefront("/api/v1/categories".into()).await, 200).await;
    let response = app
        .patch(
            &format!("{ADMIN}/{}", kitchen["id"]),
            &json!({"name": "Kitchen & Dining", "version": 1}),
        )
        .await;
    expect_json(response, 200).await;
    let tree = expect_json(storefront("/api/v1/categories".into()).await, 200).await;
    assert_eq!(tree[0]["children"][0]["name"], "Kitchen & Dining");
    // Showing the hidden one makes it and its subtree appear.
    let response = app
        .patch(
            &format!("{ADMIN}/{}", secret["id"]),
            &json!({"is_visible": true, "version": 1}),
        )
        .await;
    expect_json(response, 200).await;
    let tree = expect_json(storefront("/api/v1/categories".into()).await, 200).await;
    assert_eq!(names(&tree), ["Home", "Secret"]);
    assert_eq!(names(&tree[1]["children"]), ["Below"]);
}

const TYPES: &str = "/api/v1/admin/product-types";
const ATTRIBUTES: &str = "/api/v1/admin/attributes";

fn fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_owned())
        .collect()
}

async fn product_types_define_attributes_axes_and_review_fields(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let shirt = expect_json(app.post(TYPES, &json!({"name": "T-shirt"})).await, 201).await;
    let id = shirt["id"].clone();
    expect_problem(
        app.post(TYPES, &json!({"name": "T-shirt"})).await,
        409,
        "product-type-exists",
    )
    .await;

    let define = |body: Value| {
        let app = &app;
        async move { app.post(ATTRIBUTES, &body).await }
    };
    let material = define(
        json!({"scope": "product", "product_type_id": id, "code": "material",
        "name": "Material", "kind": "text", "required": true, "sort_order": 1}),
    );
    expect_json(material.await, 201).await;
    let color = define(
        json!({"scope": "sku_axis", "product_type_id": id, "code": "color",
        "name": "Colour", "kind": "enum", "options": ["red", " blue "]}),
    );
    let color = expect_json(color.await, 201).await;
    assert_eq!(
        color["options"],
        json!(["red", "blue"]),
        "options are trimmed"
    );
    let fit = define(
        json!({"scope": "review", "product_type_id": id, "code": "fit",
        "name": "How it fits", "kind": "enum", "options": ["small", "true", "large"]}),
    );
    expect_json(fit.await, 201).await;

    // Refusals: an axis that is not an enum, a type scope without a type, a shop-wide
    // scope with one, a bad code, options on a non-enum, an enum without options.
    let bad = define(
        json!({"scope": "sku_axis", "product_type_id": id, "code": "size",
        "name": "Size", "kind": "text"}),
    );
    assert_eq!(
        fields(&expect_problem(bad.await, 422, "validation-failed").await),
        ["kind"]
    );
    let bad = define(json!({"scope": "product", "code": "weight", "name": "W", "kind": "number"}));
    assert_eq!(
        fields(&expect_problem(bad.await, 422, "validation-failed").await),
        ["product_type_id"]
    );
    let bad = define(
        json!({"scope": "category", "product_type_id": id, "code": "x", "name": "X", "kind": "boolean"}),
    );
    assert_eq!(
        fields(&expect_problem(bad.await, 422, "validation-failed").await),
        ["product_type_id"]
    );
    let bad = define(
        json!({"scope": "page", "code": "Bad Code", "name": "X", "kind": "text", "options": ["a"]}),
    );
    assert_eq!(
        fields(&expect_problem(bad.await, 422, "validation-failed").await),
        ["code", "options"]
    );
    let bad = define(json!({"scope": "page", "code": "tone", "name": "Tone", "kind": "enum"}));
    assert_eq!(
        fields(&expect_problem(bad.await, 422, "validation-failed").await),
        ["options"]
    );
    let bad = define(
        json!({"scope": "product", "product_type_id": 999, "code": "x", "name": "X", "kind": "text"}),
    );
    assert_eq!(
        fields(&expect_problem(bad.await, 422, "validation-failed").await),
        ["product_type_id"]
    );
    let again = define(
        json!({"scope": "sku_axis", "product_type_id": id, "code": "color",
        "name": "Again", "kind": "enum", "options": ["x"]}),
    );
    expect_problem(again.await, 409, "attribute-exists").await;
    // A code is unique within its owner: another type, or a shop-wide scope, may reuse it.
    let other = expect_json(app.post(TYPES, &json!({"name": "Mug"})).await, 201).await;
    let reuse = define(
        json!({"scope": "sku_axis", "product_type_id": other["id"], "code": "color",
        "name": "Colour", "kind": "enum", "options": ["white"]}),
    );
    expect_json(reuse.await, 201).await;
    let shop_wide = define(
        json!({"scope": "customer", "code": "color", "name": "Favourite colour", "kind": "text"}),
    );
    expect_json(shop_wide.await, 201).await;
    let twice =
        define(json!({"scope": "customer", "code": "color", "name": "Again", "kind": "text"}));
    expect_problem(twice.await, 409, "attribute-exists").await;

    let t = expect_json(app.get(&format!("{TYPES}/{id}")).await, 200).await;
    let codes: Vec<(&str, &str)> = t["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["scope"].as_str().unwrap(), a["code"].as_str().unwrap()))
        .collect();
    assert_eq!(
        codes,
        [
            ("sku_axis", "color"),
            ("review", "fit"),
            ("product", "material")
        ]
    );

    let response = app
        .patch(
            &format!("{ATTRIBUTES}/{}", color["id"]),
            &json!({"options": ["red", "blue", "green"], "version": 1}),
        )
        .await;
    assert_eq!(
        expect_json(response, 200).await["options"],
        json!(["red", "blue", "green"])
    );
    let response = app
        .patch(
            &format!("{ATTRIBUTES}/{}", color["id"]),
            &json!({"name": "Stale", "version": 1}),
        )
        .await;
    expect_problem(response, 409, "stale-version").await;

    // Deleting the type takes its definitions with it.
    assert_eq!(app.delete(&format!("{TYPES}/{id}")).await.status(), 204);
    let left = expect_json(
        app.get(&format!("{ATTRIBUTES}?product_type_id={id}")).await,
        200,
    )
    .await;
    assert_eq!(left, json!([]));
    expect_problem(app.get(&format!("{TYPES}/{id}")).await, 404, "not-found").await;

    // Reading needs catalog.types.read; writing catalog.types.write.
    let password = "a long staff password";
    create_staff(
        &app,
        "reader@example.com",
        password,
        false,
        &["catalog.types.read"],
    )
    .await;
    let reader = crate::harness::spawn_sharing(&app).await;
    assert_eq!(
        login(&reader, "reader@example.com", password)
            .await
            .status(),
        200
    );
    expect_json(reader.get(TYPES).await, 200).await;
    let response = reader.post(TYPES, &json!({"name": "Nope"})).await;
    expect_problem(response, 403, "forbidden").await;
}

async fn custom_attribute_values_are_checked_against_their_definitions(backend: Backend) {
    let app = spawn(backend).await;
    login_as_superuser(&app).await;
    let season = app
        .post(
            ATTRIBUTES,
            &json!({"scope": "category", "code": "season", "name": "Season",
            "kind": "enum", "options": ["summer", "winter"], "required": true}),
        )
        .await;
    let season = expect_json(season, 201).await;
    let featured = app
        .post(ATTRIBUTES, &json!({"scope": "category", "code": "featured", "name": "Featured", "kind": "boolean"}))
        .await;
    expect_json(featured, 201).await;
    let rank = app
        .post(
            ATTRIBUTES,
            &json!({"scope": "category", "code": "rank", "name": "Rank", "kind": "number"}),
        )
        .await;
    expect_json(rank, 201).await;
    let category = create(&app, json!({"name": "Coats", "slug": "coats"})).await;
    let path = format!("{ADMIN}/{}/attributes", category["id"]);

    let response = app
        .put(
            &path,
            &json!({"featured": "yes", "rank": "first", "colour": "red"}),
        )
        .await;
    let problem = expect_problem(response, 422, "validation-failed").await;
    let mut got = fields(&problem);
    got.sort();
    assert_eq!(
        got,
        [
            "attributes.colour",
            "attributes.featured",
            "attributes.rank",
            "attributes.season"
        ]
    );
    let response = app.put(&path, &json!({"season": "spring"})).await;
    assert_eq!(
        fields(&expect_problem(response, 422, "validation-failed").await),
        ["attributes.season"]
    );

    let response = app
        .put(
            &path,
            &json!({"season": "winter", "featured": true, "rank": 2.5}),
        )
        .await;
    let detail = expect_json(response, 200).await;
    assert_eq!(
        detail["attributes"],
        json!({"season": "winter", "featured": true, "rank": 2.5})
    );
    let shown =
        crate::harness::send(app.new_client().get(app.url("/api/v1/categories/coats"))).await;
    assert_eq!(
        expect_json(shown, 200).await["attributes"]["season"],
        "winter"
    );
    // Replacing drops what is not sent again.
    let detail = expect_json(app.put(&path, &json!({"season": "summer"})).await, 200).await;
    assert_eq!(detail["attributes"], json!({"season": "summer"}));

    // An option in use cannot be removed, nor a definition with values deleted.
    let response = app
        .patch(
            &format!("{ATTRIBUTES}/{}", season["id"]),
            &json!({"options": ["winter"], "version": 1}),
        )
        .await;
    expect_problem(response, 409, "option-in-use").await;
    let response = app.delete(&format!("{ATTRIBUTES}/{}", season["id"])).await;
    expect_problem(response, 409, "attribute-in-use").await;
    expect_problem(
        app.put(&format!("{ADMIN}/999/attributes"), &json!({}))
            .await,
        404,
        "not-found",
    )
    .await;
}
