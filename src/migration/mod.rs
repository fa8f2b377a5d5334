//! Forward-only schema migrations, portable between SQLite and PostgreSQL.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, big_pk_auto, timestamp_with_time_zone};

mod m20261122_000001_platform;
mod m20261122_000002_system;
mod m20261122_000003_jobs;
mod m20261123_000004_customers;
mod m20261123_000005_catalog;
mod m20261123_000006_content;
mod m20261123_000007_attributes;
mod m20261123_000008_products;
mod m20261123_000009_inventory;
mod m20261123_000010_sales;
mod m20261123_000011_orders;
mod m20261123_000012_giftrec;
mod m20261123_000013_payments;
mod m20261123_000014_flash_sales;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_platform::Migration),
            Box::new(m20261122_000002_system::Migration),
            Box::new(m20261122_000003_jobs::Migration),
            Box::new(m20261123_000004_customers::Migration),
            Box::new(m20261123_000005_catalog::Migration),
            Box::new(m20261123_000006_content::Migration),
            Box::new(m20261123_000007_attributes::Migration),
            Box::new(m20261123_000008_products::Migration),
            Box::new(m20261123_000009_inventory::Migration),
            Box::new(m20261123_000010_sales::Migration),
            Box::new(m20261123_000011_orders::Migration),
            Box::new(m20261123_000012_giftrec::Migration),
            Box::new(m20261123_000013_payments::Migration),
            Box::new(m20261123_000014_flash_sales::Migration),
        ]
    }
}

/// A table with the columns every Bazaar table has: `id`, `created_at`, `updated_at`,
/// and `version` for optimistic concurrency.
fn entity_table(name: &'static str) -> TableCreateStatement {
    Table::create()
        .table(name)
        .col(big_pk_auto("id"))
        .col(big_integer("version").default(1))
        .col(timestamp_with_time_zone("created_at").default(Expr::current_timestamp()))
        .col(timestamp_with_time_zone("updated_at").default(Expr::current_timestamp()))
        .take()
}

/// A foreign key from `table.column` to `target.id`.
fn reference(
    table: &'static str,
    column: &'static str,
    target: &'static str,
    on_delete: ForeignKeyAction,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(format!("fk_{table}_{column}"))
        .from(table, column)
        .to(target, "id")
        .on_delete(on_delete)
        .take()
}

fn index(table: &'static str, columns: &[&'static str], unique: bool) -> IndexCreateStatement {
    let mut index = Index::create();
    index
        .name(format!("ix_{table}_{}", columns.join("_")))
        .table(table);
    for column in columns {
        index.col(*column);
    }
    if unique {
        index.unique();
    }
    index.take()
}
