//! Write-through persistence: one SQLite table of JSON rows keyed by (kind, id).
//! Every change set is written in one SQLite transaction before memory is touched.

use cvco_core::{CvcoError, ErrorCode};
use rusqlite::{params, Connection};
use std::path::Path;

pub struct Store {
    conn: Connection,
}

/// One row to upsert.
pub struct Row {
    pub kind: &'static str,
    pub id: String,
    pub json: String,
}

fn storage_error(e: rusqlite::Error) -> CvcoError {
    CvcoError::new(ErrorCode::Internal)
        .with_detail(&format!("Stockage : {e}."), &format!("Storage: {e}."))
}

impl Store {
    pub fn open(path: &Path) -> Result<Store, CvcoError> {
        let conn = Connection::open(path).map_err(storage_error)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             CREATE TABLE IF NOT EXISTS records (
                 kind TEXT NOT NULL,
                 id   TEXT NOT NULL,
                 json TEXT NOT NULL,
                 PRIMARY KEY (kind, id)
             );",
        )
        .map_err(storage_error)?;
        Ok(Store { conn })
    }

    pub fn write(&mut self, rows: &[Row]) -> Result<(), CvcoError> {
        if rows.is_empty() {
            return Ok(());
        }
        let tx = self.conn.transaction().map_err(storage_error)?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO records (kind, id, json) VALUES (?1, ?2, ?3)
                     ON CONFLICT (kind, id) DO UPDATE SET json = excluded.json",
                )
                .map_err(storage_error)?;
            for r in rows {
                stmt.execute(params![r.kind, r.id, r.json])
                    .map_err(storage_error)?;
            }
        }
        tx.commit().map_err(storage_error)
    }

    /// Every row of one kind, in insertion order.
    pub fn load(&self, kind: &str) -> Result<Vec<String>, CvcoError> {
        let mut stmt = self
            .conn
            .prepare("SELECT json FROM records WHERE kind = ?1 ORDER BY rowid")
            .map_err(storage_error)?;
        let rows = stmt
            .query_map(params![kind], |r| r.get::<_, String>(0))
            .map_err(storage_error)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(storage_error)
    }
}
