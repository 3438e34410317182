//! Closings (the end of a business period, with its totals) and named counters.
//!
//! An automatic closing is written at most once per merchant and business day, whatever the
//! number of instances: a marker row `closing:{merchant}:{date}` in `counters` is inserted in the
//! same transaction as the closing, and a second insert of the marker does nothing (PostgreSQL
//! makes a concurrent one wait for the first to commit, then do nothing).
//!
//! A closing takes what was recorded since the closings before it, whatever its authorization
//! time (TETRA: a transaction belongs to the batch in which it was recorded): each payment keeps
//! the amounts and status the closings have counted (`closed_*`, schema version 10), written in the
//! closing's transaction; a closing counts the difference, so a payment learnt late, a refund or
//! a cancellation of a closed day lands in exactly one closing.

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

/// A payment with changes no closing has counted yet.
#[derive(Debug, Clone)]
pub struct Unclosed {
    pub payment_id: String,
    pub transaction_id: Option<String>,
    pub order_ref: String,
    pub status: String,
    pub authorized_cents: i64,
    pub refunded_cents: i64,
    pub closed_authorized_cents: i64,
    pub closed_refunded_cents: i64,
    pub closed_status: String,
    pub authorized_at: Option<i64>,
    pub final_at: Option<i64>,
    pub updated_at: i64,
}

/// The payments a closing would take; the predicate is the `payments_unclosed` index's.
const UNCLOSED: &str = "SELECT payment_id, transaction_id, order_ref, status, authorized_cents,
        refunded_cents, closed_authorized_cents, closed_refunded_cents, closed_status,
        authorized_at, final_at, updated_at
     FROM payments WHERE merchant_id = ?1 AND updated_at < ?2
        AND (authorized_cents <> closed_authorized_cents OR refunded_cents <> closed_refunded_cents
             OR status <> closed_status)
     ORDER BY COALESCE(authorized_at, final_at, updated_at), payment_id";

impl Unclosed {
    fn from_row(r: &Row) -> R<Unclosed> {
        Ok(Unclosed {
            payment_id: r.string(0)?,
            transaction_id: r.opt_string(1)?,
            order_ref: r.string(2)?,
            status: r.string(3)?,
            authorized_cents: r.i64(4)?,
            refunded_cents: r.i64(5)?,
            closed_authorized_cents: r.i64(6)?,
            closed_refunded_cents: r.i64(7)?,
            closed_status: r.string(8)?,
            authorized_at: r.opt_i64(9)?,
            final_at: r.opt_i64(10)?,
            updated_at: r.i64(11)?,
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

    /// What the next closing would take: the merchant's payments with changes recorded before
    /// `until` that no closing has counted (no lock: the open period's running totals).
    pub async fn unclosed_payments(&self, merchant_id: &str, until: i64) -> Db<Vec<Unclosed>> {
        let mut c = self.conn().await?;
        c.query(UNCLOSED, &vals![merchant_id, until], Unclosed::from_row)
            .await
            .map_err(db_error)
    }

    /// A closing by hand: takes what was recorded before `closed_at` and not yet closed; the
    /// closing's id and totals (`totals` builds them from what it takes).
    pub async fn insert_closing(
        &self,
        merchant_id: &str,
        closed_at: i64,
        totals: impl FnOnce(&[Unclosed]) -> String,
    ) -> Db<(i64, String)> {
        let done = self
            .write_closing(merchant_id, None, closed_at, totals)
            .await?;
        Ok(done.expect("a closing by hand claims no marker"))
    }

    /// The automatic closing of the merchant's business day `date`, unless one was already
    /// written (by this or another instance): its id and totals, `None` when it existed.
    pub async fn insert_auto_closing(
        &self,
        merchant_id: &str,
        date: &str,
        closed_at: i64,
        totals: impl FnOnce(&[Unclosed]) -> String,
    ) -> Db<Option<(i64, String)>> {
        let marker = auto_marker(merchant_id, date);
        self.write_closing(merchant_id, Some(&marker), closed_at, totals)
            .await
    }

    /// One transaction: the marker (when given; `None` if already there), the payments taken
    /// (locked on PostgreSQL: a concurrent closing waits, then finds them counted), the closing,
    /// and on each payment what this closing counted.
    async fn write_closing(
        &self,
        merchant_id: &str,
        marker: Option<&str>,
        closed_at: i64,
        totals: impl FnOnce(&[Unclosed]) -> String,
    ) -> Db<Option<(i64, String)>> {
        let mut c = self.conn().await?;
        c.begin().await.map_err(db_error)?;
        if let Some(marker) = marker {
            let claimed = c
                .execute(
                    "INSERT INTO counters(name, value) VALUES (?1, 1) ON CONFLICT(name) DO NOTHING",
                    &vals![marker],
                )
                .await
                .map_err(db_error)?;
            if claimed == 0 {
                c.rollback().await.map_err(db_error)?;
                return Ok(None);
            }
        }
        let sql = if c.is_postgres() {
            format!("{UNCLOSED} FOR UPDATE")
        } else {
            UNCLOSED.to_string()
        };
        let taken = c
            .query(&sql, &vals![merchant_id, closed_at], Unclosed::from_row)
            .await
            .map_err(db_error)?;
        let totals = totals(&taken);
        let id = c
            .query_one(
                "INSERT INTO closings(closed_at, totals, merchant_id) VALUES (?1, ?2, ?3) RETURNING id",
                &vals![closed_at, &totals, merchant_id],
                |r| r.i64(0),
            )
            .await
            .map_err(db_error)?;
        for p in &taken {
            // The values read, not the columns: the row is locked (or SQLite's one writer).
            c.execute(
                "UPDATE payments SET closing_id = ?2, closed_authorized_cents = ?3,
                    closed_refunded_cents = ?4, closed_status = ?5 WHERE payment_id = ?1",
                &vals![
                    &p.payment_id,
                    id,
                    p.authorized_cents,
                    p.refunded_cents,
                    &p.status
                ],
            )
            .await
            .map_err(db_error)?;
        }
        c.commit().await.map_err(db_error)?;
        Ok(Some((id, totals)))
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
