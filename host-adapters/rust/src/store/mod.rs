//! Persistence, and ALL of the host's SQL: orders, payments, payment requests, processed
//! notifications, users and sessions, closings. Every change is one statement or one
//! transaction, so a crash leaves no half record. Every call takes a [`Conn`] from
//! [`Store::conn`]: one SQLite connection under a lock, or a pooled PostgreSQL one; the SQL is
//! written once for both (`conn.rs`), with a dialect-specific fragment only where they differ.

mod closings;
mod leases;
mod listen;
mod markers;
mod merchants;
mod migrations;
mod notifications;
mod orders;
mod payments;
mod requests;
mod users;

pub use closings::Unclosed;
pub use listen::PAYMENT_CHANNEL;
pub use markers::{VOID_ASKED, VOID_REFUSED};
pub use merchants::{MerchantRow, PasswordChange, SettingsRow};
pub use orders::{OrderRow, PaidCvco};
pub use payments::{
    PaymentRow, PaymentStatus, TransactionFilter, TransactionPage, TransactionRow,
    TRANSACTIONS_COUNT_CAP,
};
pub use requests::RequestRow;
pub use users::{SessionUser, UserRow};

use cvco_core::{CvcoError, ErrorCode};
use std::path::Path;
use std::sync::Arc;

pub(crate) mod conn;
#[doc(hidden)]
pub mod testing;
pub use conn::{Conn, DbErr};

pub fn db_error(e: impl Into<DbErr>) -> CvcoError {
    let e = e.into();
    tracing::error!(error = %e, "database");
    CvcoError::new(ErrorCode::Internal).with_detail("Base de données.", "Database.")
}

/// Connections at most per instance on PostgreSQL (the poller, HTTP handlers).
const PG_POOL_SIZE: usize = 16;

/// SQLite (one file or in memory, one connection behind a lock) or PostgreSQL (a pool; any
/// number of instances may share the database).
pub struct Store {
    backend: Backend,
}

enum Backend {
    Lite(conn::LiteConn),
    Pg(deadpool_postgres::Pool, Box<tokio_postgres::Config>),
}

pub type Db<T> = Result<T, CvcoError>;

impl Store {
    /// SQLite; `None`: in memory (tests, benches).
    pub fn open(path: Option<&Path>) -> Db<Store> {
        let conn = match path {
            Some(p) => rusqlite::Connection::open(p),
            None => rusqlite::Connection::open_in_memory(),
        }
        .map_err(db_error)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=5000;",
        )
        .map_err(db_error)?;
        migrations::migrate_sqlite(&conn)?;
        Ok(Store {
            backend: Backend::Lite(Arc::new(tokio::sync::Mutex::new(conn))),
        })
    }

    /// `postgres://…` (or `postgresql://…`): PostgreSQL; `sqlite:PATH` or a plain path: SQLite.
    pub async fn connect(database: &str) -> Db<Store> {
        if !is_postgres_url(database) {
            let path = database.strip_prefix("sqlite:").unwrap_or(database);
            return Store::open(Some(Path::new(path)));
        }
        let config: tokio_postgres::Config = database.parse().map_err(|e| {
            CvcoError::new(ErrorCode::ConfigInvalid).with_detail(
                &format!("URL PostgreSQL illisible : {e}"),
                &format!("Unreadable PostgreSQL URL: {e}"),
            )
        })?;
        let manager = deadpool_postgres::Manager::from_config(
            config.clone(),
            tokio_postgres::NoTls,
            deadpool_postgres::ManagerConfig {
                recycling_method: deadpool_postgres::RecyclingMethod::Fast,
            },
        );
        let pool = deadpool_postgres::Pool::builder(manager)
            .max_size(PG_POOL_SIZE)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| db_error(DbErr::Other(e.to_string())))?;
        let store = Store {
            backend: Backend::Pg(pool, Box::new(config)),
        };
        let mut c = store.conn().await?;
        migrations::migrate_pg(&mut c).await?;
        Ok(store)
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self.backend, Backend::Pg(..))
    }

    /// A connection for a few statements (this module's, and tests staging a crash's leftovers).
    pub async fn conn(&self) -> Db<Conn> {
        match &self.backend {
            Backend::Lite(c) => Ok(Conn::lite(c.clone().lock_owned().await)),
            Backend::Pg(p, _) => p
                .get()
                .await
                .map(Conn::pg)
                .map_err(|e| db_error(DbErr::Other(format!("postgres pool: {e}")))),
        }
    }

    /// Runs statements without parameters (tests staging a crash's leftovers).
    pub async fn batch(&self, sql: &str) -> Db<()> {
        self.conn().await?.batch(sql).await.map_err(db_error)
    }
}

pub fn is_postgres_url(database: &str) -> bool {
    database.starts_with("postgres://") || database.starts_with("postgresql://")
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn version(s: &Store) -> i64 {
        let mut c = s.conn().await.unwrap();
        c.query_one("SELECT version FROM schema_version", &[], |r| r.i64(0))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn migrations_run_once_and_refuse_a_newer_schema() {
        let dir = std::env::temp_dir().join(format!("cvco-host-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.sqlite");
        let _ = std::fs::remove_file(&path);
        let s = Store::open(Some(&path)).unwrap();
        assert_eq!(version(&s).await, migrations::MIGRATIONS.len() as i64);
        assert_eq!(s.next_counter("x").await.unwrap(), 1);
        drop(s);
        let s = Store::connect(&format!("sqlite:{}", path.display()))
            .await
            .unwrap();
        assert_eq!(
            s.next_counter("x").await.unwrap(),
            2,
            "data kept, migrations not rerun"
        );
        s.batch("UPDATE schema_version SET version = 99")
            .await
            .unwrap();
        drop(s);
        assert_eq!(
            Store::open(Some(&path)).err().unwrap().code,
            ErrorCode::ConfigInvalid
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn both_backends_have_the_same_migration_steps() {
        assert_eq!(
            migrations::MIGRATIONS.len(),
            migrations::PG_MIGRATIONS.len()
        );
    }

    #[tokio::test]
    async fn postgres_migrations_run_once_even_for_instances_starting_together_and_refuse_a_newer_schema(
    ) {
        let Some(db) = testing::PgDatabase::create().await else {
            eprintln!(
                "skipped: no {} (cargo xtask test sets it)",
                testing::URL_ENV
            );
            return;
        };
        let db = db.unwrap();
        // Four instances start at once on the fresh database.
        let starts = (0..4).map(|_| Store::connect(&db.url));
        let stores: Vec<Store> = futures_util::future::join_all(starts)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        for s in &stores {
            assert!(s.is_postgres());
            assert_eq!(version(s).await, migrations::PG_MIGRATIONS.len() as i64);
        }
        assert_eq!(stores[0].next_counter("x").await.unwrap(), 1);
        assert_eq!(stores[3].next_counter("x").await.unwrap(), 2);
        drop(stores);
        let s = Store::connect(&db.url).await.unwrap();
        assert_eq!(s.next_counter("x").await.unwrap(), 3, "data kept");
        s.batch("UPDATE schema_version SET version = 99")
            .await
            .unwrap();
        drop(s);
        assert_eq!(
            Store::connect(&db.url).await.err().unwrap().code,
            ErrorCode::ConfigInvalid
        );
    }
}
