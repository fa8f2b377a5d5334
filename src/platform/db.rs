//! The database handle: a writer and a reader (the replica when configured), over
//! SQLite on the embedded default or PostgreSQL when scaled out.

use std::time::Duration;

use anyhow::Context;
use sea_orm::{
    ConnectOptions, Database, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
};
use sea_orm_migration::MigratorTrait;

use crate::config::Config;
use crate::migration::Migrator;

/// Primary and read connections. Queries that must see their own writes use `writer()`.
#[derive(Clone, Debug)]
pub struct Db {
    writer: DatabaseConnection,
    reader: DatabaseConnection,
}

impl Db {
    /// Connects to the configured database, creating the data dir for SQLite.
    pub async fn connect(config: &Config) -> anyhow::Result<Self> {
        let url = config.database_url();
        if url.starts_with("sqlite:") {
            std::fs::create_dir_all(&config.data_dir)
                .with_context(|| format!("cannot create data dir {}", config.data_dir.display()))?;
        }
        let writer = open(&url, config.database.max_connections).await?;
        let reader = match &config.database.replica_url {
            Some(replica) => open(replica.expose(), config.database.max_connections).await?,
            None => writer.clone(),
        };
        Ok(Self { writer, reader })
    }

    pub fn writer(&self) -> &DatabaseConnection {
        &self.writer
    }

    /// For reads that tolerate replication lag (lists, storefront pages).
    pub fn reader(&self) -> &DatabaseConnection {
        &self.reader
    }

    pub fn backend(&self) -> DbBackend {
        self.writer.get_database_backend()
    }

    /// Starts a transaction on the writer; dropping it without `commit` rolls back, so an
    /// early `?` never leaves a half-written change.
    ///
    /// On SQLite the transaction takes the write lock at once (`BEGIN IMMEDIATE`): a
    /// deferred one that reads, then writes after another connection (a job worker) wrote,
    /// fails with SQLITE_BUSY instead of waiting its turn.
    pub async fn begin(&self) -> Result<DatabaseTransaction, DbErr> {
        match self.backend() {
            DbBackend::Sqlite => {
                self.writer
                    .begin_with_options(TransactionOptions {
                        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                        ..Default::default()
                    })
                    .await
            }
            _ => self.writer.begin().await,
        }
    }

    /// Applies Bazaar's migrations and those of the job queue's tables.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        Migrator::up(&self.writer, None).await?;
        match self.backend() {
            DbBackend::Postgres => {
                apalis_postgres::PostgresStorage::<()>::migrations()
                    .run(self.writer.get_postgres_connection_pool())
                    .await?
            }
            _ => {
                apalis_sqlite::SqliteStorage::<()>::migrations()
                    .run(self.writer.get_sqlite_connection_pool())
                    .await?
            }
        }
        Ok(())
    }

    /// Names of migrations not yet applied.
    pub async fn pending_migrations(&self) -> Result<Vec<String>, DbErr> {
        Ok(Migrator::get_pending_migrations(&self.writer)
            .await?
            .iter()
            .map(|m| m.name().to_owned())
            .collect())
    }

    pub async fn ping(&self) -> Result<(), DbErr> {
        self.writer.ping().await?;
        self.reader.ping().await
    }

    /// Pool size and idle connections of the writer, for the metrics gauges.
    pub fn pool_stats(&self) -> (u32, usize) {
        match self.backend() {
            DbBackend::Postgres => {
                let pool = self.writer.get_postgres_connection_pool();
                (pool.size(), pool.num_idle())
            }
            _ => {
                let pool = self.writer.get_sqlite_connection_pool();
                (pool.size(), pool.num_idle())
            }
        }
    }
}

async fn open(url: &str, max_connections: u32) -> anyhow::Result<DatabaseConnection> {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(max_connections)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false);
    if url.starts_with("sqlite:") {
        // WAL lets readers run beside the writer; the busy timeout queues writers instead of
        // failing them; SQLite leaves foreign keys off unless asked.
        options.map_sqlx_sqlite_opts(|opts| {
            opts.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10))
        });
    }
    Database::connect(options)
        .await
        .with_context(|| format!("cannot connect to the database at {}", redact(url)))
}

fn redact(url: &str) -> String {
    crate::config::SecretUrl::new(url).to_string()
}
