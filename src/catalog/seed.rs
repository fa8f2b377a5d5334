//! Catalog data for trying Bazaar out (`bazaar seed-demo`: a believable shop through the
//! same services staff use) and for scale tests (`bazaar seed-scale`: up to millions of
//! SKUs written in bulk, for the storefront benchmarks).

use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use sea_orm::ActiveValue::{NotSet, Set};
use sea_orm::{ConnectionTrait, EntityTrait, PaginatorTrait};
use serde_json::{Value, json};

use super::entity::{category, product, product_category, sku};
use super::model::{
    AttributeKind, AttributeScope, CreateAttribute, CreateCategory, CreateProductType,
};
use super::products::model::{CreateProduct, GenerateSkus, ProductKind, ProductStatus, SkuInput};
use super::{attributes, products, service};
use crate::app::AppState;
use crate::identity::service::Actor;
use crate::platform::request::RequestMeta;

/// A small deterministic generator, so two seeded shops look alike.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

fn problem(err: crate::platform::ApiError) -> anyhow::Error {
    anyhow::anyhow!("{}", err.problem().detail)
}

#[derive(Debug)]
pub struct ScaleReport {
    pub products: u64,
    pub skus: u64,
    pub elapsed: Duration,
}

const SKUS_PER_PRODUCT: u64 = 4;
const PRODUCT_BATCH: u64 = 1000;
const SCALE_WORDS: [&str; 16] = [
    "classic", "linen", "merino", "canvas", "travel", "studio", "outdoor", "compact", "wireless",
    "ceramic", "organic", "vintage", "urban", "alpine", "coastal", "everyday",
];
const SCALE_NOUNS: [&str; 12] = [
    "shirt", "jacket", "mug", "lamp", "backpack", "speaker", "scarf", "kettle", "notebook",
    "sneaker", "blanket", "watch",
];

/// Adds listed products with four SKUs each until the catalog holds `skus` more SKUs,
/// in a flat 10 × 10 category tree, written in bulk (a thousand products per transaction).
/// Slugs are `scale-<n>`, so a benchmark can address any of them.
pub async fn load_scale(state: &AppState, skus: u64) -> anyhow::Result<ScaleReport> {
    let started = Instant::now();
    let db = &state.db;
    let categories = scale_categories(state).await?;
    let offset = product::Entity::find().count(db.writer()).await?;
    let products_wanted = skus.div_ceil(SKUS_PER_PRODUCT);
    let mut rng = Rng(0x5EED_0000_0000_0001 ^ offset);
    let now = Utc::now();
    let mut done = 0;
    while done < products_wanted {
        let batch = PRODUCT_BATCH.min(products_wanted - done);
        let txn = db.begin().await?;
        let rows: Vec<product::ActiveModel> = (0..batch)
            .map(|i| {
                let n = offset + done + i;
                let title = format!("{} {} {n}", rng.pick(&SCALE_WORDS), rng.pick(&SCALE_NOUNS));
                let price = 500 + rng.below(50_000) as i64;
                product::ActiveModel {
                    id: NotSet,
                    version: Set(1),
                    search_text: Set(title.clone()),
                    title: Set(title),
                    slug: Set(format!("scale-{n}")),
                    description: Set("<p>A product for scale tests.</p>".into()),
                    brand_id: Set(None),
                    product_type_id: Set(None),
                    status: Set(ProductStatus::Listed.as_str().into()),
                    publish_at: Set(None),
                    unpublish_at: Set(None),
                    kind: Set(ProductKind::Physical.as_str().into()),
                    is_bundle: Set(false),
                    allow_preorder: Set(false),
                    allow_backorder: Set(false),
                    meta_title: Set(None),
                    meta_description: Set(None),
                    min_price: Set(Some(price)),
                    rating_count: Set(0),
                    rating_sum: Set(0),
                    deleted_at: Set(None),
                    created_at: Set(now),
                    updated_at: Set(now),
                }
            })
            .collect();
        let prices: Vec<i64> = rows
            .iter()
            .map(|r| r.min_price.clone().unwrap().unwrap_or(0))
            .collect();
        let ids = product::Entity::insert_many(rows)
            .exec_with_returning_keys(&txn)
            .await
            .context("cannot insert products")?;
        let links: Vec<product_category::ActiveModel> = ids
            .iter()
            .map(|&id| product_category::ActiveModel {
                product_id: Set(id),
                category_id: Set(*rng.pick(&categories)),
            })
            .collect();
        product_category::Entity::insert_many(links)
            .exec(&txn)
            .await?;
        let mut sku_rows = Vec::with_capacity(ids.len() * SKUS_PER_PRODUCT as usize);
        for (&id, &price) in ids.iter().zip(&prices) {
            for k in 0..SKUS_PER_PRODUCT {
                sku_rows.push(sku::ActiveModel {
                    id: NotSet,
                    version: Set(1),
                    product_id: Set(id),
                    code: Set(format!("S{id}-{k}")),
                    price: Set(price + k as i64 * 100),
                    compare_at_price: Set(None),
                    weight_grams: Set(250),
                    barcode: Set(None),
                    stock: Set(rng.below(20) as i32),
                    axis_key: Set(None),
                    is_active: Set(true),
                    sort_order: Set(k as i32),
                    reserved: Set(0),
                    damaged: Set(0),
                    safety_stock: Set(0),
                    reorder_qty: Set(0),
                    always_available: Set(false),
                    created_at: Set(now),
                    updated_at: Set(now),
                });
            }
        }
        // SQLite allows 32766 parameters a statement; a SKU row has 19.
        for chunk in sku_rows.chunks(1000) {
            sku::Entity::insert_many(chunk.to_vec()).exec(&txn).await?;
        }
        // The ledger sums to the stock: one `initial` row per stocked SKU, in bulk.
        crate::inventory::service::record_initial_of_products(&txn, &ids)
            .await
            .map_err(problem)?;
        txn.commit().await?;
        done += batch;
    }
    if db.backend() == sea_orm::DatabaseBackend::Postgres {
        db.writer().execute_unprepared("ANALYZE").await?;
    }
    // The rows went in behind the caches' backs.
    super::cache::rebuild_slug_filter(state).await?;
    super::cache::catalog_changed(state).await;
    Ok(ScaleReport {
        products: products_wanted,
        skus: products_wanted * SKUS_PER_PRODUCT,
        elapsed: started.elapsed(),
    })
}

/// The scale tree's leaf categories, created on first use.
async fn scale_categories(state: &AppState) -> anyhow::Result<Vec<i64>> {
    use sea_orm::{ColumnTrait, QueryFilter, QuerySelect};
    let existing: Vec<i64> = category::Entity::find()
        .select_only()
        .column(category::Column::Id)
        .filter(category::Column::Slug.starts_with("scale-leaf-"))
        .into_tuple()
        .all(state.db.writer())
        .await?;
    if !existing.is_empty() {
        return Ok(existing);
    }
    let meta = RequestMeta {
        ip: None,
        request_id: None,
    };
    let actor = Actor {
        principal: None,
        meta: &meta,
    };
    let mut leaves = Vec::new();
    for top in 0..10 {
        let parent = service::create_category(
            state,
            &actor,
            category_input(None, &format!("Scale {top}"), &format!("scale-top-{top}")),
        )
        .await
        .map_err(problem)?;
        for leaf in 0..10 {
            let child = service::create_category(
                state,
                &actor,
                category_input(
                    Some(parent.category.id),
                    &format!("Scale {top}.{leaf}"),
                    &format!("scale-leaf-{top}-{leaf}"),
                ),
            )
            .await
            .map_err(problem)?;
            leaves.push(child.category.id);
        }
    }
    Ok(leaves)
}

fn category_input(parent_id: Option<i64>, name: &str, slug: &str) -> CreateCategory {
    CreateCategory {
        parent_id,
        name: name.into(),
        slug: slug.into(),
        description: String::new(),
        sort_order: 0,
        is_visible: true,
        meta_title: None,
        meta_description: None,
    }
}

#[derive(Debug, Default)]
pub struct DemoReport {
    pub categories: usize,
    pub products: usize,
    pub skus: usize,
    pub images: usize,
}

const BRANDS: [&str; 6] = [
    "Northwind",
    "Fieldhouse",
    "Kestrel",
    "Mariner & Co",
    "Lumen",
    "Tandem",
];

/// A generated PNG in a random colour, stored in the media store.
async fn placeholder(
    state: &AppState,
    rng: &mut Rng,
    width: u32,
    height: u32,
    seed: u64,
) -> anyhow::Result<crate::media::model::StoredMedia> {
    let rgb = [
        64 + rng.below(160) as u8,
        64 + rng.below(160) as u8,
        64 + rng.below(160) as u8,
    ];
    let png = crate::media::placeholder_png(width, height, rgb, seed);
    state
        .media
        .put(crate::media::model::MediaKindFilter::Image, png.into())
        .await
        .map_err(problem)
}

/// One demo department: its subcategories and what they sell.
struct Department {
    name: &'static str,
    children: &'static [(&'static str, &'static [&'static str])],
}

const DEPARTMENTS: [Department; 4] = [
    Department {
        name: "Clothing",
        children: &[
            (
                "Shirts",
                &[
                    "Oxford shirt",
                    "Linen shirt",
                    "Flannel shirt",
                    "Denim shirt",
                    "Polo shirt",
                ],
            ),
            (
                "Knitwear",
                &["Merino sweater", "Cardigan", "Cable-knit jumper", "Hoodie"],
            ),
            (
                "Outerwear",
                &["Rain jacket", "Wool coat", "Down vest", "Field jacket"],
            ),
        ],
    },
    Department {
        name: "Home",
        children: &[
            (
                "Kitchen",
                &[
                    "Stoneware mug",
                    "Pour-over kettle",
                    "Chef's knife",
                    "Linen apron",
                    "Cast-iron pan",
                ],
            ),
            (
                "Living",
                &[
                    "Wool throw",
                    "Floor lamp",
                    "Cushion cover",
                    "Scented candle",
                ],
            ),
        ],
    },
    Department {
        name: "Electronics",
        children: &[
            (
                "Audio",
                &[
                    "Wireless headphones",
                    "Bookshelf speaker",
                    "Earbuds",
                    "Turntable",
                ],
            ),
            (
                "Accessories",
                &[
                    "USB-C charger",
                    "Power bank",
                    "Laptop sleeve",
                    "Cable organiser",
                ],
            ),
        ],
    },
    Department {
        name: "Outdoors",
        children: &[
            (
                "Camping",
                &["Two-person tent", "Sleeping bag", "Camp stove", "Headlamp"],
            ),
            (
                "Bags",
                &["Daypack", "Duffel bag", "Hip pack", "Roll-top backpack"],
            ),
        ],
    },
];

const VARIANTS: [&str; 6] = ["", "Classic", "Premium", "Everyday", "Travel", "Studio"];
const COLORS: [&str; 5] = ["black", "navy", "sand", "olive", "red"];
const SIZES: [&str; 4] = ["s", "m", "l", "xl"];

fn slugify(text: &str) -> String {
    let mut slug = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    slug.trim_end_matches('-').to_owned()
}

/// A believable shop: a category tree, a clothing type whose products vary by colour and
/// size, a few hundred products (some scheduled, some on backorder), through the same
/// services and checks staff use. Refuses to run twice on one database.
pub async fn seed_demo(state: &AppState) -> anyhow::Result<DemoReport> {
    let meta = RequestMeta {
        ip: None,
        request_id: None,
    };
    let actor = Actor {
        principal: None,
        meta: &meta,
    };
    if super::store::find_category_by_slug(state.db.reader(), "clothing")
        .await?
        .is_some()
    {
        anyhow::bail!("the demo catalog is already loaded (a `clothing` category exists)");
    }
    let mut report = DemoReport::default();
    let apparel = attributes::create_product_type(
        state,
        &actor,
        CreateProductType {
            name: "Apparel".into(),
            description: "Clothing that comes in colours and sizes".into(),
        },
    )
    .await
    .map_err(problem)?;
    let attribute = |scope, code: &str, name: &str, kind, options: &[&str]| CreateAttribute {
        scope,
        product_type_id: Some(apparel.id),
        code: code.into(),
        name: name.into(),
        kind,
        options: options.iter().map(|o| (*o).to_owned()).collect(),
        required: false,
        sort_order: 0,
    };
    for input in [
        attribute(
            AttributeScope::Product,
            "material",
            "Material",
            AttributeKind::Text,
            &[],
        ),
        attribute(
            AttributeScope::SkuAxis,
            "color",
            "Colour",
            AttributeKind::Enum,
            &COLORS,
        ),
        attribute(
            AttributeScope::SkuAxis,
            "size",
            "Size",
            AttributeKind::Enum,
            &SIZES,
        ),
        attribute(
            AttributeScope::Review,
            "fit",
            "Fit",
            AttributeKind::Enum,
            &["small", "true to size", "large"],
        ),
    ] {
        attributes::create_attribute(state, &actor, input)
            .await
            .map_err(problem)?;
    }
    let mut rng = Rng(0xDE30_5EED);
    let mut brand_ids = Vec::new();
    for (i, name) in BRANDS.iter().enumerate() {
        let logo = placeholder(state, &mut rng, 160, 160, i as u64).await?;
        let brand = super::brands::create_brand(
            state,
            &actor,
            serde_json::from_value(json!({
                "name": name,
                "slug": slugify(name),
                "description": format!("{name} makes things for everyday life."),
                "logo_key": logo.key,
                "sort_order": i,
            }))?,
        )
        .await
        .map_err(problem)?;
        brand_ids.push(brand.id);
    }
    for department in &DEPARTMENTS {
        let top = service::create_category(
            state,
            &actor,
            category_input(None, department.name, &slugify(department.name)),
        )
        .await
        .map_err(problem)?;
        report.categories += 1;
        for (name, items) in department.children {
            let child = service::create_category(
                state,
                &actor,
                category_input(Some(top.category.id), name, &slugify(name)),
            )
            .await
            .map_err(problem)?;
            report.categories += 1;
            let is_apparel = department.name == "Clothing";
            for item in *items {
                for variant in VARIANTS {
                    let title = if variant.is_empty() {
                        (*item).to_owned()
                    } else {
                        format!("{variant} {}", item.to_lowercase())
                    };
                    let slug = slugify(&title);
                    let price = (15 + rng.below(180) as i64) * 100 - 1;
                    let mut input = CreateProduct {
                        title: title.clone(),
                        slug: slug.clone(),
                        description: format!(
                            "<p>{title}: made to last, chosen for everyday use.</p><ul><li>Free returns within 30 days</li><li>Ships in 2 working days</li></ul>"
                        ),
                        brand_id: Some(*rng.pick(&brand_ids)),
                        category_ids: vec![child.category.id],
                        product_type_id: is_apparel.then_some(apparel.id),
                        attributes: serde_json::Map::new(),
                        status: ProductStatus::Listed,
                        publish_at: None,
                        unpublish_at: None,
                        kind: ProductKind::Physical,
                        is_bundle: false,
                        allow_preorder: false,
                        allow_backorder: rng.below(10) == 0,
                        meta_title: Some(title.clone()),
                        meta_description: None,
                        skus: Vec::new(),
                    };
                    // One in fifteen launches tomorrow.
                    if rng.below(15) == 0 {
                        input.publish_at = Some(Utc::now() + chrono::Duration::days(1));
                    }
                    if is_apparel {
                        input.attributes.insert(
                            "material".into(),
                            Value::from(*rng.pick(&[
                                "cotton",
                                "linen",
                                "wool",
                                "recycled polyester",
                            ])),
                        );
                        input.status = ProductStatus::Draft;
                    } else {
                        input.skus = vec![SkuInput {
                            code: slug.to_uppercase(),
                            price,
                            compare_at_price: (rng.below(4) == 0).then_some(price + 1000),
                            weight_grams: 100 + rng.below(2000) as i32,
                            barcode: None,
                            stock: rng.below(40) as i32,
                            axes: serde_json::Map::new(),
                            parts: Vec::new(),
                            is_active: true,
                            sort_order: 0,
                        }];
                    }
                    let created = products::create_product(state, &actor, input)
                        .await
                        .map_err(problem)?;
                    report.products += 1;
                    report.skus += created.skus.len();
                    for view in 0..2 {
                        let image = placeholder(
                            state,
                            &mut rng,
                            320,
                            320,
                            report.products as u64 * 2 + view,
                        )
                        .await?;
                        products::media::add_media(
                            state,
                            &actor,
                            created.id,
                            image,
                            serde_json::from_value(
                                json!({"alt": format!("{title}, view {}", view + 1)}),
                            )?,
                        )
                        .await
                        .map_err(problem)?;
                    }
                    report.images += 2;
                    if is_apparel {
                        let generated = products::skus::generate_skus(
                            state,
                            &actor,
                            created.id,
                            GenerateSkus {
                                price,
                                compare_at_price: None,
                                weight_grams: 300,
                                code_prefix: None,
                                options: [(
                                    "color".to_owned(),
                                    vec![
                                        COLORS[rng.below(5) as usize].to_owned(),
                                        COLORS[rng.below(5) as usize].to_owned(),
                                    ],
                                )]
                                .into_iter()
                                .collect(),
                            },
                        )
                        .await
                        .map_err(problem)?;
                        report.skus += generated.created.len();
                        products::update_product(
                            state,
                            &actor,
                            created.id,
                            crate::platform::concurrency::Expected::Body(created.version),
                            serde_json::from_value(json!({"status": "listed"}))?,
                        )
                        .await
                        .map_err(problem)?;
                    }
                }
            }
        }
    }
    Ok(report)
}
