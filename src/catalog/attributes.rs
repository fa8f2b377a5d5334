//! Product types and custom attributes: definitions (what may be said about a product,
//! SKU, review, category, page or customer) and validated values. Every owner uses this one
//! mechanism, so a value is checked the same way wherever it is set.

use std::collections::HashSet;

use chrono::Utc;
use sea_orm::ActiveValue::Set;
use sea_orm::{ConnectionTrait, EntityTrait};
use serde_json::{Value, json};

use super::entity::{attribute_definition, product_type};
use super::model::{
    AttributeFilter, AttributeKind, AttributeScope, AttributeValues, AttributeView,
    CreateAttribute, CreateProductType, ProductTypeView, UpdateAttribute, UpdateProductType,
};
use super::store;
use crate::app::AppState;
use crate::identity::service::{Actor, audit};
use crate::platform::concurrency::{Expected, update_versioned};
use crate::platform::crud::{delete_or_404, find_or_404};
use crate::platform::error::{FieldError, Validator};
use crate::platform::{ApiError, ApiResult};

const CODE_MAX: usize = 50;
const OPTIONS_MAX: usize = 200;
const OPTION_MAX: usize = 100;
const TEXT_VALUE_MAX: usize = 2000;

fn view(d: attribute_definition::Model) -> AttributeView {
    AttributeView {
        id: d.id,
        scope: AttributeScope::parse(&d.scope).unwrap_or(AttributeScope::Product),
        product_type_id: d.product_type_id,
        kind: AttributeKind::parse(&d.kind).unwrap_or(AttributeKind::Text),
        options: serde_json::from_str(&d.options).unwrap_or_default(),
        code: d.code,
        name: d.name,
        required: d.required,
        sort_order: d.sort_order,
        version: d.version,
    }
}

fn check_code(v: &mut Validator, code: &str) {
    let mut bytes = code.bytes();
    let valid = code.len() <= CODE_MAX
        && bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    v.check(
        valid,
        "code",
        "must start with a lowercase letter and hold only lowercase letters, digits and _",
    );
}

fn check_options(v: &mut Validator, kind: AttributeKind, options: &[String]) {
    if kind != AttributeKind::Enum {
        v.check(options.is_empty(), "options", "only an enum has options");
        return;
    }
    let unique: HashSet<&str> = options.iter().map(|o| o.trim()).collect();
    v.check(
        !options.is_empty() && options.len() <= OPTIONS_MAX,
        "options",
        "an enum needs between 1 and 200 options",
    );
    v.check(
        unique.len() == options.len()
            && options
                .iter()
                .all(|o| !o.trim().is_empty() && o.chars().count() <= OPTION_MAX),
        "options",
        "options must be distinct, non-empty and at most 100 characters",
    );
}

fn trimmed(options: Vec<String>) -> String {
    let options: Vec<String> = options.into_iter().map(|o| o.trim().to_owned()).collect();
    serde_json::to_string(&options).unwrap_or_else(|_| "[]".into())
}

fn type_not_found(id: i64) -> ApiError {
    ApiError::not_found("product type", id)
}

async fn type_view(
    db: &impl ConnectionTrait,
    t: product_type::Model,
) -> ApiResult<ProductTypeView> {
    let attributes = store::attribute_definitions(db, None, Some(t.id))
        .await?
        .into_iter()
        .map(view)
        .collect();
    Ok(ProductTypeView {
        id: t.id,
        name: t.name,
        description: t.description,
        attributes,
        version: t.version,
        created_at: t.created_at,
        updated_at: t.updated_at,
    })
}

pub async fn list_product_types(state: &AppState) -> ApiResult<Vec<ProductTypeView>> {
    let db = state.db.reader();
    let mut views = Vec::new();
    for t in store::all_product_types(db).await? {
        views.push(type_view(db, t).await?);
    }
    Ok(views)
}

pub async fn get_product_type(state: &AppState, id: i64) -> ApiResult<ProductTypeView> {
    let db = state.db.reader();
    let t = store::find_product_type(db, id)
        .await?
        .ok_or_else(|| type_not_found(id))?;
    type_view(db, t).await
}

fn name_taken(name: &str) -> ApiError {
    ApiError::conflict(
        "product-type-exists",
        format!("a product type named {name} already exists"),
    )
}

pub async fn create_product_type(
    state: &AppState,
    actor: &Actor<'_>,
    input: CreateProductType,
) -> ApiResult<ProductTypeView> {
    let mut v = Validator::default();
    v.text(&input.name, "name", 100);
    v.check(
        input.description.chars().count() <= 2000,
        "description",
        "must be at most 2000 characters",
    );
    v.finish()?;
    let name = input.name.trim();
    let txn = state.db.begin().await?;
    if store::product_type_named(&txn, name).await?.is_some() {
        return Err(name_taken(name));
    }
    let now = Utc::now();
    let created = product_type::Entity::insert(product_type::ActiveModel {
        version: Set(1),
        name: Set(name.to_owned()),
        description: Set(input.description),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    })
    .exec_with_returning(&txn)
    .await?;
    audit(
        &txn,
        actor,
        "product_type_created",
        Some(format!("product_type:{}", created.id)),
        json!({"name": name}),
    )
    .await?;
    let view = type_view(&txn, created).await?;
    txn.commit().await?;
    Ok(view)
}

pub async fn update_product_type(
    state: &AppState,
    actor: &Actor<'_>,
    id: i64,
    expected: Expected,
    input: UpdateProductType,
) -> ApiResult<ProductTypeView> {
    let mut v = Validator::default();
    v.text_if(input.name.as_ref(), "name", 100);
    v.check(
        input
            .description
            .as_ref()
            .is_none_or(|d| d.chars().count() <= 2000),
        "description",
        "must be at most 2000 characters",
    );
    v.finish()?;
    let txn = state.db.begin().await?;
    if let Some(name) = &input.name
        && store::product_type_named(&txn, name.trim())
            .await?
            .is_some_and(|t| t.id != id)
    {
        return Err(name_taken(name.trim()));
    }
    let mut changes = product_type::ActiveModel {
        updated_at: Set(Utc::now()),
        ..Default::default()
    };
    if let Some(name) = &input.name {
        changes.name = Set(name.trim().to_owned());
    }
    if let Some(description) = input.description {
        changes.description = Set(description);
    }
    update_versioned(
        &txn,
        changes,
        [product_type::Column::Id, product_type::Column::Version],
        id,
        expected,
        "product type",
    )
    .await?;
    audit(
        &txn,
        actor,
        "product_type_updated",
        Some(format!("product_type:{id}")),
        json!({}),
    )
    .await?;
    let updated = find_or_404::<product_type::Entity>(&txn, id, "product type").await?;
    let view = type_view(&txn, updated).await?;
    txn.commit().await?;
    Ok(view)
}

/// Deletes a type with its definitions (and their values).
pub async fn delete_product_type(state: &AppState, actor: &Actor<'_>, id: i64) -> ApiResult<()> {
    let txn = state.db.begin().await?;
    delete_or_404::<product_type::Entity>(&txn, id, "product type").await?;
    audit(
        &txn,
        actor,
        "product_type_deleted",
        Some(format!("product_type:{id}")),
        json!({}),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

pub async fn list_attributes(
    state: &AppState,
    filter: &AttributeFilter,
) -> ApiResult<Vec<AttributeView>> {
    let scope = filter.scope.map(AttributeScope::as_str);
    Ok(
        store::attribute_definitions(state.db.reader(), scope, filter.product_type_id)
            .await?
            .into_iter()
            .map(view)
            .collect(),
    )
}

pub async fn create_attribute(
    state: &AppState,
    actor: &Actor<'_>,
    input: CreateAttribute,
) -> ApiResult<AttributeView> {
    let mut v = Validator::default();
    check_code(&mut v, &input.code);
    v.text(&input.name, "name", 100);
    check_options(&mut v, input.kind, &input.options);
    v.check(
        input.scope.per_product_type() == input.product_type_id.is_some(),
        "product_type_id",
        "is required for product, sku_axis and review attributes, and not allowed otherwise",
    );
    v.check(
        input.scope != AttributeScope::SkuAxis || input.kind == AttributeKind::Enum,
        "kind",
        "a SKU axis is an enum: its options are the variants",
    );
    v.finish()?;
    let txn = state.db.begin().await?;
    if let Some(type_id) = input.product_type_id
        && store::find_product_type(&txn, type_id).await?.is_none()
    {
        return Err(ApiError::invalid(
            "product_type_id",
            format!("product type {type_id} does not exist"),
        ));
    }
    let scope = input.scope.as_str();
    if store::attribute_code_taken(&txn, scope, input.product_type_id, &input.code).await? {
        return Err(ApiError::conflict(
            "attribute-exists",
            format!("an attribute with code {} already exists there", input.code),
        ));
    }
    let now = Utc::now();
    let created = attribute_definition::Entity::insert(attribute_definition::ActiveModel {
        version: Set(1),
        scope: Set(scope.to_owned()),
        product_type_id: Set(input.product_type_id),
        code: Set(input.code.clone()),
        name: Set(input.name.trim().to_owned()),
        kind: Set(input.kind.as_str().to_owned()),
        options: Set(trimmed(input.options)),
        required: Set(input.required),
        sort_order: Set(input.sort_order),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    })
    .exec_with_returning(&txn)
    .await?;
    audit(
        &txn,
        actor,
        "attribute_created",
        Some(format!("attribute:{}", created.id)),
        json!({"scope": scope, "code": created.code, "product_type_id": created.product_type_id}),
    )
    .await?;
    txn.commit().await?;
    Ok(view(created))
}

/// Edits a definition. Removing an enum option that values still use is refused.
pub async fn update_attribute(
    state: &AppState,
    actor: &Actor<'_>,
    id: i64,
    expected: Expected,
    input: UpdateAttribute,
) -> ApiResult<AttributeView> {
    let txn = state.db.begin().await?;
    let current = store::find_attribute(&txn, id)
        .await?
        .ok_or_else(|| ApiError::not_found("attribute", id))?;
    let kind = AttributeKind::parse(&current.kind).unwrap_or(AttributeKind::Text);
    let mut v = Validator::default();
    v.text_if(input.name.as_ref(), "name", 100);
    if let Some(options) = &input.options {
        check_options(&mut v, kind, options);
    }
    v.finish()?;
    let mut changes = attribute_definition::ActiveModel {
        updated_at: Set(Utc::now()),
        ..Default::default()
    };
    if let Some(options) = input.options {
        let kept: HashSet<String> = options.iter().map(|o| o.trim().to_owned()).collect();
        let current: Vec<String> = serde_json::from_str(&current.options).unwrap_or_default();
        // Values are stored as JSON, so a removed option is looked for as a JSON string.
        let removed: Vec<String> = current
            .iter()
            .filter(|o| !kept.contains(*o))
            .map(|o| Value::from(o.as_str()).to_string())
            .collect();
        if store::count_values_among(&txn, id, &removed).await? > 0 {
            return Err(ApiError::conflict(
                "option-in-use",
                "a removed option is still used by some values; change those first",
            ));
        }
        changes.options = Set(trimmed(options));
    }
    if let Some(name) = input.name {
        changes.name = Set(name.trim().to_owned());
    }
    if let Some(required) = input.required {
        changes.required = Set(required);
    }
    if let Some(sort_order) = input.sort_order {
        changes.sort_order = Set(sort_order);
    }
    update_versioned(
        &txn,
        changes,
        [
            attribute_definition::Column::Id,
            attribute_definition::Column::Version,
        ],
        id,
        expected,
        "attribute",
    )
    .await?;
    audit(
        &txn,
        actor,
        "attribute_updated",
        Some(format!("attribute:{id}")),
        json!({}),
    )
    .await?;
    let updated = find_or_404::<attribute_definition::Entity>(&txn, id, "attribute").await?;
    txn.commit().await?;
    super::cache::catalog_changed(state).await;
    Ok(view(updated))
}

/// Deletes a definition that no owner has a value for.
pub async fn delete_attribute(state: &AppState, actor: &Actor<'_>, id: i64) -> ApiResult<()> {
    let txn = state.db.begin().await?;
    find_or_404::<attribute_definition::Entity>(&txn, id, "attribute").await?;
    let used = store::count_values_of(&txn, id).await?;
    if used > 0 {
        return Err(ApiError::conflict(
            "attribute-in-use",
            format!("{used} values still use this attribute"),
        ));
    }
    delete_or_404::<attribute_definition::Entity>(&txn, id, "attribute").await?;
    audit(
        &txn,
        actor,
        "attribute_deleted",
        Some(format!("attribute:{id}")),
        json!({}),
    )
    .await?;
    txn.commit().await?;
    super::cache::catalog_changed(state).await;
    Ok(())
}

/// Checks `values` against `definitions`: each known, of its kind, an enum value among
/// the options, every required one present. Field errors name `attributes.<code>`.
pub fn validate_values(
    definitions: &[attribute_definition::Model],
    values: &AttributeValues,
) -> ApiResult<Vec<(i64, String)>> {
    let mut errors = Vec::new();
    let mut error = |code: &str, message: &str| {
        errors.push(FieldError {
            field: format!("attributes.{code}"),
            message: message.to_owned(),
        })
    };
    for code in values.keys() {
        if !definitions.iter().any(|d| d.code == *code) {
            error(code, "is not an attribute here");
        }
    }
    let mut accepted = Vec::new();
    for definition in definitions {
        let Some(value) = values.get(&definition.code).filter(|v| !v.is_null()) else {
            if definition.required {
                error(&definition.code, "is required");
            }
            continue;
        };
        let kind = AttributeKind::parse(&definition.kind).unwrap_or(AttributeKind::Text);
        let fits = match kind {
            AttributeKind::Text => value
                .as_str()
                .is_some_and(|s| s.chars().count() <= TEXT_VALUE_MAX),
            AttributeKind::Number => value.is_number(),
            AttributeKind::Boolean => value.is_boolean(),
            AttributeKind::Enum => {
                let options: Vec<String> =
                    serde_json::from_str(&definition.options).unwrap_or_default();
                value
                    .as_str()
                    .is_some_and(|s| options.iter().any(|o| o == s))
            }
        };
        if fits {
            accepted.push((definition.id, value.to_string()));
        } else {
            let message = match kind {
                AttributeKind::Text => "must be text of at most 2000 characters",
                AttributeKind::Number => "must be a number",
                AttributeKind::Boolean => "must be true or false",
                AttributeKind::Enum => "must be one of the attribute's options",
            };
            error(&definition.code, message);
        }
    }
    if errors.is_empty() {
        Ok(accepted)
    } else {
        Err(ApiError::validation(errors))
    }
}

/// The values an owner holds for the definitions of a shop-wide `scope`, by code.
pub async fn values_for(
    db: &impl ConnectionTrait,
    scope: AttributeScope,
    owner_id: i64,
) -> ApiResult<AttributeValues> {
    let definitions = store::attribute_definitions(db, Some(scope.as_str()), None).await?;
    let ids: Vec<i64> = definitions.iter().map(|d| d.id).collect();
    let mut values = AttributeValues::new();
    for value in store::values_of(db, &ids, owner_id).await? {
        if let Some(definition) = definitions.iter().find(|d| d.id == value.definition_id) {
            values.insert(
                definition.code.clone(),
                serde_json::from_str(&value.value).unwrap_or(Value::Null),
            );
        }
    }
    Ok(values)
}

/// Replaces an owner's values for a shop-wide `scope` after validating them, in the
/// caller's transaction.
pub async fn set_values_for(
    db: &impl ConnectionTrait,
    scope: AttributeScope,
    owner_id: i64,
    values: &AttributeValues,
) -> ApiResult<()> {
    let definitions = store::attribute_definitions(db, Some(scope.as_str()), None).await?;
    let accepted = validate_values(&definitions, values)?;
    let ids: Vec<i64> = definitions.iter().map(|d| d.id).collect();
    store::replace_values(db, &ids, owner_id, accepted).await?;
    Ok(())
}
