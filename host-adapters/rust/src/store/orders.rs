//! Orders: what is to be paid (lines and total) and the card payments beside CVCo.

use super::conn::{vals, Row, R};
use super::payments::PaymentStatus;
use super::{db_error, Db, Store};

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
    /// The merchant the order belongs to (its payments use that merchant's plugin).
    pub merchant_id: String,
}

impl OrderRow {
    fn from_row(r: &Row) -> R<OrderRow> {
        Ok(OrderRow {
            order_ref: r.string("order_ref")?,
            owner: r.opt_string("owner")?,
            kind: r.string("kind")?,
            lines: r.string("lines")?,
            total_cents: r.i64("total_cents")?,
            card_payments: r.string("card_payments")?,
            created_at: r.i64("created_at")?,
            merchant_id: r.string("merchant_id")?,
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
        "(SELECT CAST(COALESCE(SUM(CASE WHEN q.status IN ({paid}) AND q.authorized_cents > q.refunded_cents
             THEN q.authorized_cents - q.refunded_cents ELSE 0 END), 0) AS BIGINT)
          FROM payments q WHERE q.order_ref = {order})"
    )
}

/// What an order's CVCo payments hold, in cents.
pub type PaidCvco = i64;

impl Store {
    pub async fn order(&self, order_ref: &str) -> Db<Option<OrderRow>> {
        let mut c = self.conn().await?;
        c.query_opt(
            "SELECT * FROM orders WHERE order_ref = ?1",
            &vals![order_ref],
            OrderRow::from_row,
        )
        .await
        .map_err(db_error)
    }

    /// The order and what its CVCo payments hold, in one query.
    pub async fn order_with_paid(&self, order_ref: &str) -> Db<Option<(OrderRow, PaidCvco)>> {
        let sql = format!(
            "SELECT o.*, {} AS paid_cvco FROM orders o WHERE o.order_ref = ?1",
            paid_cvco_sql("o.order_ref")
        );
        let mut c = self.conn().await?;
        c.query_opt(&sql, &vals![order_ref], |r| {
            Ok((OrderRow::from_row(r)?, r.i64("paid_cvco")?))
        })
        .await
        .map_err(db_error)
    }

    /// Creates an order of the merchant `default` unless it exists; answers whether it was created.
    pub async fn insert_order(
        &self,
        order_ref: &str,
        owner: Option<&str>,
        kind: &str,
        lines: &str,
        total_cents: i64,
        now: i64,
    ) -> Db<bool> {
        self.insert_order_for("default", order_ref, owner, kind, lines, total_cents, now)
            .await
    }

    /// Creates an order of `merchant_id` unless it exists; answers whether it was created.
    #[allow(clippy::too_many_arguments)]
    pub async fn insert_order_for(
        &self,
        merchant_id: &str,
        order_ref: &str,
        owner: Option<&str>,
        kind: &str,
        lines: &str,
        total_cents: i64,
        now: i64,
    ) -> Db<bool> {
        let mut c = self.conn().await?;
        let n = c
            .execute(
                "INSERT INTO orders(order_ref, owner, kind, lines, total_cents, created_at, merchant_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT(order_ref) DO NOTHING",
                &vals![order_ref, owner, kind, lines, total_cents, now, merchant_id],
            )
            .await
            .map_err(db_error)?;
        Ok(n == 1)
    }

    /// On PostgreSQL the order's payments are announced changed in the same transaction (what
    /// they show of the order moved), so other instances drop their rendered copies.
    pub async fn set_card_payments(&self, order_ref: &str, card_payments: &str) -> Db<()> {
        let mut c = self.conn().await?;
        let pg = c.is_postgres();
        if pg {
            c.begin().await.map_err(db_error)?;
        }
        c.execute(
            "UPDATE orders SET card_payments = ?2 WHERE order_ref = ?1",
            &vals![order_ref, card_payments],
        )
        .await
        .map_err(db_error)?;
        if pg {
            let notify = format!(
                "SELECT pg_notify('{}', payment_id) FROM payments WHERE order_ref = ?1",
                super::PAYMENT_CHANNEL
            );
            c.execute(&notify, &vals![order_ref])
                .await
                .map_err(db_error)?;
            c.commit().await.map_err(db_error)?;
        }
        Ok(())
    }
}
