//! Closings (the end of a business period, with its totals) and named counters.
//!
//! An automatic closing is written at most once per merchant and business day, whatever the
//! number of instances: a marker row `closing:{merchant}:{date}` in `counters` is inserted in the
//! same transaction as the closing, and a second insert of the marker does nothing (PostgreSQL
//! makes a concurrent one wait for the first to commit, then do nothing).

use super::conn::{vals, Row, R};
use super::{db_error, Db, Store};

/// One recorded closing; `totals` is the JSON the back-office shows and prints.
#[derive(Debug, Clone)]
pub struct ClosingRow {
    pub id: i64,
    pub merchant_id: String,
    pub closed_at: i64,
    pub totals: String,
}

impl ClosingRow {
    /// From `SELECT id, merchant_id, closed_at, totals`.
    fn from_row(r: &Row) -> R<ClosingRow> {
        Ok(ClosingRow {
            id: r.i64(0)?,
            merchant_id: r.string(1)?,
            closed_at: r.i64(2)?,
            totals: r.string(3)?,
        })
    }
}

/// The marker of a merchant's automatic closing of `date` (YYYY-MM-DD sorts as text).
fn auto_marker(merchant_id: &str, date: &str) -> String {
    format!("closing:{merchant_id}:{date}")
}

impl Store {
    pub async fn next_counter(&self, name: &str) -> Db<i64> {
        let mut c = self.conn().await?;
        c.query_one(
            "INSERT INTO counters(name, value) VALUES (?1, 1)
             ON CONFLICT(name) DO UPDATE SET value = counters.value + 1 RETURNING value",
            &vals![name],
            |r| r.i64(0),
        )
        .await
        .map_err(db_error)
    }

    /// The merchant's latest closing in `[from, to)`.
    pub async fn last_closing(&self, merchant_id: &str, from: i64, to: i64) -> Db<Option<i64>> {
        let mut c = self.conn().await?;
        c.query_one(
            "SELECT MAX(closed_at) FROM closings WHERE closed_at >= ?1 AND closed_at < ?2 AND merchant_id = ?3",
            &vals![from, to, merchant_id],
            |r| r.opt_i64(0),
        )
        .await
        .map_err(db_error)
    }

    /// A closing by hand; its id.
    pub async fn insert_closing(&self, merchant_id: &str, closed_at: i64, totals: &str) -> Db<i64> {
        let mut c = self.conn().await?;
        c.query_one(
            "INSERT INTO closings(closed_at, totals, merchant_id) VALUES (?1, ?2, ?3) RETURNING id",
            &vals![closed_at, totals, merchant_id],
            |r| r.i64(0),
        )
        .await
        .map_err(db_error)
    }

    /// The automatic closing of the merchant's business day `date`, unless one was already
    /// written (by this or another instance): its id, `None` when it existed.
    pub async fn insert_auto_closing(
        &self,
        merchant_id: &str,
        date: &str,
        closed_at: i64,
        totals: &str,
    ) -> Db<Option<i64>> {
        let marker = auto_marker(merchant_id, date);
        let mut c = self.conn().await?;
        c.begin().await.map_err(db_error)?;
        let claimed = c
            .execute(
                "INSERT INTO counters(name, value) VALUES (?1, 1) ON CONFLICT(name) DO NOTHING",
                &vals![&marker],
            )
            .await
            .map_err(db_error)?;
        if claimed == 0 {
            c.rollback().await.map_err(db_error)?;
            return Ok(None);
        }
        let id = c
            .query_one(
                "INSERT INTO closings(closed_at, totals, merchant_id) VALUES (?1, ?2, ?3) RETURNING id",
                &vals![closed_at, totals, merchant_id],
                |r| r.i64(0),
            )
            .await
            .map_err(db_error)?;
        c.commit().await.map_err(db_error)?;
        Ok(Some(id))
    }

    /// The business date (YYYY-MM-DD) of the merchant's latest automatic closing.
    pub async fn last_auto_closing_date(&self, merchant_id: &str) -> Db<Option<String>> {
        // A text range, not LIKE: a merchant id may hold `%` or `_`.
        let (from, to) = (
            format!("closing:{merchant_id}:"),
            format!("closing:{merchant_id};"),
        );
        let mut c = self.conn().await?;
        let name = c
            .query_opt(
                "SELECT name FROM counters WHERE name >= ?1 AND name < ?2 ORDER BY name DESC LIMIT 1",
                &vals![&from, &to],
                |r| r.string(0),
            )
            .await
            .map_err(db_error)?;
        Ok(name.map(|n| n[from.len()..].to_string()))
    }

    /// The merchant's closings, newest first, `limit` of them before id `before` (paging).
    pub async fn closings(
        &self,
        merchant_id: &str,
        before: Option<i64>,
        limit: i64,
    ) -> Db<Vec<ClosingRow>> {
        let mut c = self.conn().await?;
        c.query(
            "SELECT id, merchant_id, closed_at, totals FROM closings
             WHERE merchant_id = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3",
            &vals![merchant_id, before.unwrap_or(i64::MAX), limit],
            ClosingRow::from_row,
        )
        .await
        .map_err(db_error)
    }

    /// One of the merchant's closings (another merchant's: `None`).
    pub async fn closing(&self, merchant_id: &str, id: i64) -> Db<Option<ClosingRow>> {
        let mut c = self.conn().await?;
        c.query_opt(
            "SELECT id, merchant_id, closed_at, totals FROM closings WHERE merchant_id = ?1 AND id = ?2",
            &vals![merchant_id, id],
            ClosingRow::from_row,
        )
        .await
        .map_err(db_error)
    }

    /// Records that a closing's totals ticket was printed: `true` the first time only (every
    /// later print is a duplicate).
    pub async fn first_print_of_closing(&self, id: i64) -> Db<bool> {
        let mut c = self.conn().await?;
        c.execute(
            "INSERT INTO counters(name, value) VALUES (?1, 1) ON CONFLICT(name) DO NOTHING",
            &vals![&format!("closing-printed:{id}")],
        )
        .await
        .map(|n| n == 1)
        .map_err(db_error)
    }
}
