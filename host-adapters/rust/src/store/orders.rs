//! Orders: what is to be paid (lines and total) and the card payments beside CVCo.

use super::payments::PaymentStatus;
use super::{Db, Store};
use rusqlite::{params, OptionalExtension, Row};

#[derive(Debug, Clone)]
pub struct OrderRow {
    pub order_ref: String,
    pub owner: Option<String>,
    pub kind: String,
    /// JSON array of the order's lines.
    pub lines: String,
    pub total_cents: i64,
    /// JSON array of `{amount_cents, last4, at}`.
    pub card_payments: String,
    pub created_at: i64,
}

impl OrderRow {
    fn from_row(r: &Row) -> rusqlite::Result<OrderRow> {
        Ok(OrderRow {
            order_ref: r.get("order_ref")?,
            owner: r.get("owner")?,
            kind: r.get("kind")?,
            lines: r.get("lines")?,
            total_cents: r.get("total_cents")?,
            card_payments: r.get("card_payments")?,
            created_at: r.get("created_at")?,
        })
    }
}

/// The SQL sum of what an order's CVCo payments hold (authorized minus refunded, for the
/// statuses that count as paid), over the payments `q` of the order `{order}`.
pub(super) fn paid_cvco_sql(order: &str) -> String {
    let paid = PaymentStatus::PAID
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "(SELECT COALESCE(SUM(CASE WHEN q.status IN ({paid}) AND q.authorized_cents > q.refunded_cents
             THEN q.authorized_cents - q.refunded_cents ELSE 0 END), 0)
          FROM payments q WHERE q.order_ref = {order})"
    )
}

/// What an order's CVCo payments hold, in cents.
pub type PaidCvco = i64;

impl Store {
    pub fn order(&self, order_ref: &str) -> Db<Option<OrderRow>> {
        self.with(|c| {
            c.prepare_cached("SELECT * FROM orders WHERE order_ref = ?1")?
                .query_row(params![order_ref], OrderRow::from_row)
                .optional()
        })
    }

    /// The order and what its CVCo payments hold, in one query.
    pub fn order_with_paid(&self, order_ref: &str) -> Db<Option<(OrderRow, PaidCvco)>> {
        let sql = format!(
            "SELECT o.*, {} AS paid_cvco FROM orders o WHERE o.order_ref = ?1",
            paid_cvco_sql("o.order_ref")
        );
        self.with(|c| {
            c.prepare_cached(&sql)?
                .query_row(params![order_ref], |r| {
                    Ok((OrderRow::from_row(r)?, r.get("paid_cvco")?))
                })
                .optional()
        })
    }

    /// Creates an order unless it exists; answers whether it was created.
    pub fn insert_order(
        &self,
        order_ref: &str,
        owner: Option<&str>,
        kind: &str,
        lines: &str,
        total_cents: i64,
        now: i64,
    ) -> Db<bool> {
        let n = self.with(|c| {
            c.execute(
                "INSERT INTO orders(order_ref, owner, kind, lines, total_cents, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(order_ref) DO NOTHING",
                params![order_ref, owner, kind, lines, total_cents, now],
            )
        })?;
        Ok(n == 1)
    }

    pub fn set_card_payments(&self, order_ref: &str, card_payments: &str) -> Db<()> {
        self.with(|c| {
            c.execute(
                "UPDATE orders SET card_payments = ?2 WHERE order_ref = ?1",
                params![order_ref, card_payments],
            )
            .map(|_| ())
        })
    }
}
