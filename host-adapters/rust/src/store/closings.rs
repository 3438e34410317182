//! Closings (the end of a business period, with its totals) and named counters.

use super::conn::vals;
use super::{db_error, Db, Store};

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

    pub async fn insert_closing(&self, merchant_id: &str, closed_at: i64, totals: &str) -> Db<()> {
        let mut c = self.conn().await?;
        c.execute(
            "INSERT INTO closings(closed_at, totals, merchant_id) VALUES (?1, ?2, ?3)",
            &vals![closed_at, totals, merchant_id],
        )
        .await
        .map(|_| ())
        .map_err(db_error)
    }
}
