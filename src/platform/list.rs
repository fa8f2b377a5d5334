//! List queries: pagination (`page`/`per_page` or `limit`/`offset`), sorting checked
//! against a per-resource allow-list, and the `{items, total, page, per_page}` envelope.

use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, Order, PaginatorTrait, QueryOrder,
    QuerySelect, Select,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ApiResult};

pub const MAX_PER_PAGE: u64 = 100;
pub const DEFAULT_PER_PAGE: u64 = 20;

/// Paging and sorting parameters shared by every list endpoint.
#[derive(Debug, Default, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// 1-based page number (with `per_page`).
    pub page: Option<u64>,
    /// Items per page, at most 100.
    pub per_page: Option<u64>,
    /// Alternative to `per_page`: at most 100.
    pub limit: Option<u64>,
    /// Alternative to `page`: items to skip.
    pub offset: Option<u64>,
    /// Comma-separated fields, `-` for descending: `name,-created_at`.
    pub sort: Option<String>,
}

/// A page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Items matching the filters, on all pages.
    pub total: u64,
    pub page: u64,
    pub per_page: u64,
}

impl<T> Page<T> {
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            total: self.total,
            page: self.page,
            per_page: self.per_page,
        }
    }
}

/// The sortable fields of one resource, each mapped to its column.
pub struct SortFields<C: 'static>(pub &'static [(&'static str, C)]);

/// Validated paging and ordering for one query.
#[derive(Debug)]
pub struct ListSpec<C> {
    pub offset: u64,
    pub limit: u64,
    pub page: u64,
    pub order: Vec<(C, Order)>,
}

impl ListParams {
    /// Checks the parameters; unknown sort fields are a 400 naming the allowed ones.
    pub fn spec<C: Copy>(&self, fields: &SortFields<C>) -> ApiResult<ListSpec<C>> {
        let uses_offset = self.limit.is_some() || self.offset.is_some();
        if uses_offset && (self.page.is_some() || self.per_page.is_some()) {
            return Err(ApiError::bad_request(
                "use either page/per_page or limit/offset, not both",
            ));
        }
        let (offset, limit, page) = if uses_offset {
            let limit = checked_size(self.limit, "limit")?;
            let offset = self.offset.unwrap_or(0);
            (offset, limit, offset / limit + 1)
        } else {
            let per_page = checked_size(self.per_page, "per_page")?;
            let page = self.page.unwrap_or(1);
            if page == 0 {
                return Err(ApiError::bad_request("page starts at 1"));
            }
            ((page - 1).saturating_mul(per_page), per_page, page)
        };
        let mut order = Vec::new();
        for raw in self.sort.as_deref().unwrap_or_default().split(',') {
            let raw = raw.trim();
            if raw.is_empty() {
                continue;
            }
            let (name, direction) = match raw.strip_prefix('-') {
                Some(name) => (name, Order::Desc),
                None => (raw.strip_prefix('+').unwrap_or(raw), Order::Asc),
            };
            let Some((_, column)) = fields.0.iter().find(|(field, _)| *field == name) else {
                let allowed: Vec<_> = fields.0.iter().map(|(f, _)| *f).collect();
                return Err(ApiError::bad_request(format!(
                    "cannot sort by {name:?}; sortable fields: {}",
                    allowed.join(", ")
                ))
                .with_code("invalid-sort"));
            };
            order.push((*column, direction));
        }
        Ok(ListSpec {
            offset,
            limit,
            page,
            order,
        })
    }
}

fn checked_size(value: Option<u64>, name: &str) -> ApiResult<u64> {
    match value.unwrap_or(DEFAULT_PER_PAGE) {
        0 => Err(ApiError::bad_request(format!("{name} must be at least 1"))),
        n if n > MAX_PER_PAGE => Err(ApiError::bad_request(format!(
            "{name} must be at most {MAX_PER_PAGE}"
        ))),
        n => Ok(n),
    }
}

impl<C: ColumnTrait> ListSpec<C> {
    /// Runs the count and the page query; `tiebreak` keeps the order stable across pages.
    pub async fn fetch<E, M>(
        self,
        db: &impl ConnectionTrait,
        select: Select<E>,
        tiebreak: E::Column,
    ) -> ApiResult<Page<M>>
    where
        E: EntityTrait<Model = M, Column = C>,
        M: FromQueryResult + Send + Sync,
    {
        let total = select.clone().count(db).await?;
        let mut query = select;
        for (column, order) in &self.order {
            query = query.order_by(*column, order.clone());
        }
        let items = query
            .order_by(tiebreak, Order::Asc)
            .offset(self.offset)
            .limit(self.limit)
            .all(db)
            .await?;
        Ok(Page {
            items,
            total,
            page: self.page,
            per_page: self.limit,
        })
    }
}

/// A case-insensitive "contains" pattern for `LIKE` on a lowercased column: `%`, `_` and
/// `\` in the term match themselves, on SQLite and PostgreSQL alike.
pub fn contains(term: &str) -> sea_orm::sea_query::LikeExpr {
    let mut pattern = String::with_capacity(term.len() + 2);
    pattern.push('%');
    for c in term.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    sea_orm::sea_query::LikeExpr::new(pattern).escape('\\')
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: SortFields<u8> = SortFields(&[("name", 1), ("created_at", 2)]);

    #[test]
    fn parses_sort_and_pages() {
        let params = ListParams {
            page: Some(3),
            per_page: Some(10),
            sort: Some("name,-created_at".into()),
            ..Default::default()
        };
        let spec = params.spec(&FIELDS).unwrap();
        assert_eq!((spec.offset, spec.limit, spec.page), (20, 10, 3));
        assert_eq!(spec.order.len(), 2);
        assert!(matches!(spec.order[1], (2, Order::Desc)));
    }

    #[test]
    fn limit_offset_maps_to_page() {
        let params = ListParams {
            limit: Some(25),
            offset: Some(50),
            ..Default::default()
        };
        let spec = params.spec(&FIELDS).unwrap();
        assert_eq!((spec.offset, spec.limit, spec.page), (50, 25, 3));
    }

    #[test]
    fn rejects_unknown_sort_field_naming_allowed_ones() {
        let params = ListParams {
            sort: Some("price".into()),
            ..Default::default()
        };
        let err = params.spec(&FIELDS).unwrap_err();
        assert_eq!(err.status().as_u16(), 400);
        assert!(err.problem().detail.contains("name, created_at"));
    }

    #[test]
    fn rejects_oversized_pages_and_mixed_styles() {
        let too_big = ListParams {
            per_page: Some(101),
            ..Default::default()
        };
        assert!(too_big.spec(&FIELDS).is_err());
        let mixed = ListParams {
            page: Some(1),
            limit: Some(5),
            ..Default::default()
        };
        assert!(mixed.spec(&FIELDS).is_err());
    }
}
