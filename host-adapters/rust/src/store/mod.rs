//! Persistence, and ALL of the host's SQL: orders, payments, payment requests, processed
//! notifications, users and sessions, closings. Every change is one statement or one
//! transaction, so a crash leaves no half record. Every call goes through [`Store::with`] (one
//! connection, any statements) or [`Store::tx`] (one transaction), so another backend replaces
//! only this module.

mod closings;
mod migrations;
mod notifications;
mod orders;
mod payments;
mod requests;
mod users;

pub use orders::{OrderRow, PaidCvco};
pub use payments::{PaymentRow, PaymentStatus, TransactionFilter, TransactionRow};
pub use requests::RequestRow;
pub use users::{SessionUser, UserRow};

use cvco_core::{CvcoError, ErrorCode};
use rusqlite::{Connection, Transaction};
use std::path::Path;
use std::sync::Mutex;

pub fn db_error(e: rusqlite::Error) -> CvcoError {
    tracing::error!(error = %e, "database");
    CvcoError::new(ErrorCode::Internal).with_detail("Base de données.", "Database.")
}

pub struct Store {
    conn: Mutex<Connection>,
}

pub type Db<T> = Result<T, CvcoError>;

impl Store {
    /// `None`: in memory (tests, benches).
    pub fn open(path: Option<&Path>) -> Db<Store> {
        let conn = match path {
            Some(p) => Connection::open(p),
            None => Connection::open_in_memory(),
        }
        .map_err(db_error)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=5000;",
        )
        .map_err(db_error)?;
        migrations::migrate(&conn)?;
        Ok(Store {
            conn: Mutex::new(conn),
        })
    }

    /// Runs statements on the connection (raw access is for this module and for tests that
    /// stage a crash's leftovers).
    pub fn with<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> Db<T> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut conn).map_err(db_error)
    }

    /// Runs `f` in one transaction, committed when it returns `Ok`.
    fn tx<T>(&self, f: impl FnOnce(&Transaction) -> rusqlite::Result<T>) -> Db<T> {
        self.with(|c| {
            let tx = c.transaction()?;
            let out = f(&tx)?;
            tx.commit()?;
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_run_once_and_refuse_a_newer_schema() {
        let dir = std::env::temp_dir().join(format!("cvco-host-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.sqlite");
        let _ = std::fs::remove_file(&path);
        let version = |s: &Store| {
            s.with(|c| {
                c.query_row("SELECT version FROM schema_version", [], |r| {
                    r.get::<_, i64>(0)
                })
            })
            .unwrap()
        };
        let s = Store::open(Some(&path)).unwrap();
        assert_eq!(version(&s), migrations::MIGRATIONS.len() as i64);
        assert_eq!(s.next_counter("x").unwrap(), 1);
        drop(s);
        let s = Store::open(Some(&path)).unwrap();
        assert_eq!(
            s.next_counter("x").unwrap(),
            2,
            "data kept, migrations not rerun"
        );
        s.with(|c| c.execute("UPDATE schema_version SET version = 99", []))
            .unwrap();
        drop(s);
        assert_eq!(
            Store::open(Some(&path)).err().unwrap().code,
            ErrorCode::ConfigInvalid
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
