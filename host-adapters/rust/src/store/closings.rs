//! Closings (the end of a business period, with its totals) and named counters.

use super::{Db, Store};
use rusqlite::params;

impl Store {
    pub fn next_counter(&self, name: &str) -> Db<i64> {
        self.with(|c| {
            c.query_row(
                "INSERT INTO counters(name, value) VALUES (?1, 1)
                 ON CONFLICT(name) DO UPDATE SET value = counters.value + 1 RETURNING value",
                params![name],
                |r| r.get(0),
            )
        })
    }

    /// The latest closing in `[from, to)`.
    pub fn last_closing(&self, from: i64, to: i64) -> Db<Option<i64>> {
        self.with(|c| {
            c.query_row(
                "SELECT MAX(closed_at) FROM closings WHERE closed_at >= ?1 AND closed_at < ?2",
                params![from, to],
                |r| r.get(0),
            )
        })
    }

    pub fn insert_closing(&self, closed_at: i64, totals: &str) -> Db<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO closings(closed_at, totals) VALUES (?1, ?2)",
                params![closed_at, totals],
            )
            .map(|_| ())
        })
    }
}
