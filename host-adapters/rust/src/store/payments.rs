//! Payments: one row per attempt of an order, written before the plugin is called.

use super::orders::paid_cvco_sql;
use super::{Db, Store};
use cvco_core::contract::PaymentMode;
use cvco_core::{Channel, NormalizedStatus};
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::{params, OptionalExtension, Row};

/// A payment's recorded status: cvco-core's, or `unknown` while its creation's outcome is not
/// known (lost answer, timeout, crash), until reconciled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentStatus {
    Unknown,
    Known(NormalizedStatus),
}

impl PaymentStatus {
    /// The statuses whose authorized minus refunded amount pays the order.
    pub const PAID: [PaymentStatus; 3] = [
        PaymentStatus::Known(NormalizedStatus::Authorized),
        PaymentStatus::Known(NormalizedStatus::PartiallyAuthorized),
        PaymentStatus::Known(NormalizedStatus::Refunded),
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Unknown => cvco_core::contract::UNKNOWN,
            PaymentStatus::Known(s) => s.as_str(),
        }
    }

    pub fn parse(s: &str) -> Option<PaymentStatus> {
        if s == cvco_core::contract::UNKNOWN {
            return Some(PaymentStatus::Unknown);
        }
        NormalizedStatus::parse(s).map(PaymentStatus::Known)
    }

    pub fn counts_as_paid(self) -> bool {
        PaymentStatus::PAID.contains(&self)
    }

    pub fn is(self, s: NormalizedStatus) -> bool {
        self == PaymentStatus::Known(s)
    }

    /// Authorized in full or in part (a deferred capture can be finalised).
    pub fn is_authorized(self) -> bool {
        self.is(NormalizedStatus::Authorized) || self.is(NormalizedStatus::PartiallyAuthorized)
    }
}

impl std::fmt::Display for PaymentStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ToSql for PaymentStatus {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for PaymentStatus {
    fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
        let s = v.as_str()?;
        PaymentStatus::parse(s).ok_or_else(|| FromSqlError::Other(format!("status {s:?}").into()))
    }
}

fn mode_str(m: PaymentMode) -> &'static str {
    match m {
        PaymentMode::Qr => "qr",
        PaymentMode::Identifier => "identifier",
    }
}

fn unreadable(column: &str, value: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        0,
        rusqlite::types::Type::Text,
        format!("{column} {value:?}").into(),
    )
}

#[derive(Debug, Clone)]
pub struct PaymentRow {
    pub payment_id: String,
    pub order_ref: String,
    pub attempt: String,
    pub mode: PaymentMode,
    pub channel: Channel,
    pub amount_cents: i64,
    pub beneficiary_masked: Option<String>,
    pub create_call: String,
    pub create_input: String,
    pub transaction_id: Option<String>,
    pub request_id: Option<String>,
    pub status: PaymentStatus,
    pub is_final: bool,
    pub authorized_cents: i64,
    pub refunded_cents: i64,
    pub ancv_state: Option<String>,
    pub plugin: Option<String>,
    pub qr: Option<String>,
    pub error: Option<String>,
    pub deadline: Option<i64>,
    pub sequence: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub authorized_at: Option<i64>,
    pub final_at: Option<i64>,
    pub next_poll_at: i64,
    pub poll_interval_ms: i64,
    /// Set while a follow-up operation's outcome is not recorded yet (`Store::set_recheck`;
    /// never written by `save_payment`).
    pub recheck_at: Option<i64>,
}

impl PaymentRow {
    fn from_row(r: &Row) -> rusqlite::Result<PaymentRow> {
        Ok(PaymentRow {
            payment_id: r.get("payment_id")?,
            order_ref: r.get("order_ref")?,
            attempt: r.get("attempt")?,
            mode: match r.get_ref("mode")?.as_str()? {
                "qr" => PaymentMode::Qr,
                "identifier" => PaymentMode::Identifier,
                other => return Err(unreadable("mode", other)),
            },
            channel: {
                let s = r.get_ref("channel")?.as_str()?;
                Channel::parse(s).map_err(|_| unreadable("channel", s))?
            },
            amount_cents: r.get("amount_cents")?,
            beneficiary_masked: r.get("beneficiary_masked")?,
            create_call: r.get("create_call")?,
            create_input: r.get("create_input")?,
            transaction_id: r.get("transaction_id")?,
            request_id: r.get("request_id")?,
            status: r.get("status")?,
            is_final: r.get::<_, i64>("final")? != 0,
            authorized_cents: r.get("authorized_cents")?,
            refunded_cents: r.get("refunded_cents")?,
            ancv_state: r.get("ancv_state")?,
            plugin: r.get("plugin")?,
            qr: r.get("qr")?,
            error: r.get("error")?,
            deadline: r.get("deadline")?,
            sequence: r.get("sequence")?,
            created_at: r.get("created_at")?,
            updated_at: r.get("updated_at")?,
            authorized_at: r.get("authorized_at")?,
            final_at: r.get("final_at")?,
            next_poll_at: r.get("next_poll_at")?,
            poll_interval_ms: r.get("poll_interval_ms")?,
            recheck_at: r.get("recheck_at")?,
        })
    }
}

/// The back-office's transactions list: filters and one page, newest first.
#[derive(Debug, Clone, Default)]
pub struct TransactionFilter {
    pub status: Option<String>,
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub min_amount_cents: Option<i64>,
    pub max_amount_cents: Option<i64>,
    /// Part of the order reference.
    pub order_ref: Option<String>,
    pub limit: i64,
    pub offset: i64,
}

/// A payment with what its order needs for the contract's Payment (no query per row).
#[derive(Debug, Clone)]
pub struct TransactionRow {
    pub payment: PaymentRow,
    pub order_total_cents: i64,
    pub card_payments: String,
    pub paid_cvco_cents: i64,
}

/// The list's WHERE with only the filters given (a `?n IS NULL OR` term defeats the indexes),
/// and its parameters; the order reference is a prefix, read as an index range.
fn tx_where(f: &TransactionFilter) -> (String, Vec<rusqlite::types::Value>) {
    use rusqlite::types::Value;
    let mut sql = String::from("p.transaction_id IS NOT NULL");
    let mut values = Vec::new();
    let mut add = |clause: &str, v: Value| {
        values.push(v);
        sql.push_str(&format!(" AND {clause}{}", values.len()));
    };
    if let Some(s) = &f.status {
        add("p.status = ?", Value::Text(s.clone()));
    }
    if let Some(v) = f.from {
        add("p.created_at >= ?", Value::Integer(v));
    }
    if let Some(v) = f.to {
        add("p.created_at < ?", Value::Integer(v));
    }
    if let Some(v) = f.min_amount_cents {
        add("p.amount_cents >= ?", Value::Integer(v));
    }
    if let Some(v) = f.max_amount_cents {
        add("p.amount_cents <= ?", Value::Integer(v));
    }
    if let Some(o) = f.order_ref.as_deref().filter(|s| !s.is_empty()) {
        add("p.order_ref >= ?", Value::Text(o.to_owned()));
        add("p.order_ref < ?", Value::Text(format!("{o}{}", char::MAX)));
    }
    (sql, values)
}

impl Store {
    pub fn payment(&self, payment_id: &str) -> Db<Option<PaymentRow>> {
        self.with(|c| {
            c.prepare_cached("SELECT * FROM payments WHERE payment_id = ?1")?
                .query_row(params![payment_id], PaymentRow::from_row)
                .optional()
        })
    }

    pub fn payment_by_attempt(&self, order_ref: &str, attempt: &str) -> Db<Option<PaymentRow>> {
        self.with(|c| {
            c.prepare_cached("SELECT * FROM payments WHERE order_ref = ?1 AND attempt = ?2")?
                .query_row(params![order_ref, attempt], PaymentRow::from_row)
                .optional()
        })
    }

    pub fn payments_of_order(&self, order_ref: &str) -> Db<Vec<PaymentRow>> {
        self.with(|c| {
            let mut s = c.prepare_cached(
                "SELECT * FROM payments WHERE order_ref = ?1 ORDER BY created_at, payment_id",
            )?;
            let rows = s.query_map(params![order_ref], PaymentRow::from_row)?;
            rows.collect()
        })
    }

    /// The new payment, before any plugin call; fails on a second `(order_ref, attempt)`.
    pub fn insert_payment(&self, p: &PaymentRow) -> Db<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO payments (payment_id, order_ref, attempt, mode, channel, amount_cents,
                    beneficiary_masked, create_call, create_input, status, final, created_at,
                    updated_at, next_poll_at, poll_interval_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 0, ?11, ?11, ?12, 0)",
                params![
                    p.payment_id,
                    p.order_ref,
                    p.attempt,
                    mode_str(p.mode),
                    p.channel.as_str(),
                    p.amount_cents,
                    p.beneficiary_masked,
                    p.create_call,
                    p.create_input,
                    p.status,
                    p.created_at,
                    p.next_poll_at,
                ],
            )
            .map(|_| ())
        })
    }

    /// Writes everything the plugin taught us (not `recheck_at`).
    pub fn save_payment(&self, p: &PaymentRow) -> Db<()> {
        self.with(|c| {
            c.prepare_cached(
                "UPDATE payments SET transaction_id = ?2, request_id = ?3, status = ?4, final = ?5,
                    authorized_cents = ?6, refunded_cents = ?7, ancv_state = ?8, plugin = ?9, qr = ?10,
                    error = ?11, deadline = ?12, sequence = ?13, updated_at = ?14, authorized_at = ?15,
                    final_at = ?16, next_poll_at = ?17, poll_interval_ms = ?18
                 WHERE payment_id = ?1",
            )?
            .execute(params![
                p.payment_id,
                p.transaction_id,
                p.request_id,
                p.status,
                p.is_final as i64,
                p.authorized_cents,
                p.refunded_cents,
                p.ancv_state,
                p.plugin,
                p.qr,
                p.error,
                p.deadline,
                p.sequence,
                p.updated_at,
                p.authorized_at,
                p.final_at,
                p.next_poll_at,
                p.poll_interval_ms,
            ])
            .map(|_| ())
        })
    }

    /// Only for a creation refused outright (nothing exists at ANCV).
    pub fn delete_payment(&self, payment_id: &str) -> Db<()> {
        self.with(|c| {
            c.execute(
                "DELETE FROM payments WHERE payment_id = ?1",
                params![payment_id],
            )
            .map(|_| ())
        })
    }

    /// Asks the poller to read this payment again at `at` (None: no longer needed).
    pub fn set_recheck(&self, payment_id: &str, at: Option<i64>) -> Db<()> {
        self.with(|c| {
            c.execute(
                "UPDATE payments SET recheck_at = ?2 WHERE payment_id = ?1",
                params![payment_id, at],
            )
            .map(|_| ())
        })
    }

    /// The payment holding this ANCV transaction, else the one holding this payment request.
    pub fn payment_id_by_ancv(
        &self,
        transaction_id: Option<&str>,
        request_id: Option<&str>,
    ) -> Db<Option<String>> {
        self.with(|c| {
            if let Some(t) = transaction_id {
                let found = c
                    .prepare_cached("SELECT payment_id FROM payments WHERE transaction_id = ?1")?
                    .query_row(params![t], |r| r.get(0))
                    .optional()?;
                if found.is_some() {
                    return Ok(found);
                }
            }
            match request_id {
                Some(r) => c
                    .prepare_cached("SELECT payment_id FROM payments WHERE request_id = ?1")?
                    .query_row(params![r], |r| r.get(0))
                    .optional(),
                None => Ok(None),
            }
        })
    }

    /// Payments due for a status read (non-final without news, or a follow-up to check).
    pub fn due_payments(&self, now: i64, limit: i64) -> Db<Vec<String>> {
        self.with(|c| {
            let mut s = c.prepare_cached(
                "SELECT payment_id FROM payments WHERE final = 0 AND next_poll_at <= ?1
                 UNION SELECT payment_id FROM payments WHERE recheck_at <= ?1 LIMIT ?2",
            )?;
            let rows = s.query_map(params![now, limit], |r| r.get(0))?;
            rows.collect()
        })
    }

    /// Every payment start-up must read again.
    pub fn open_payments(&self) -> Db<Vec<String>> {
        self.with(|c| {
            let mut s = c.prepare(
                "SELECT payment_id FROM payments WHERE final = 0 OR recheck_at IS NOT NULL",
            )?;
            let rows = s.query_map([], |r| r.get(0))?;
            rows.collect()
        })
    }

    /// Payments of `create_call` whose creation outcome is unknown, newest first.
    pub fn unknown_creations(
        &self,
        create_call: &str,
        from: Option<i64>,
        to: Option<i64>,
        limit: i64,
    ) -> Db<Vec<PaymentRow>> {
        self.with(|c| {
            let mut s = c.prepare_cached(
                "SELECT * FROM payments WHERE status = ?1 AND create_call = ?4
                 AND (?2 IS NULL OR created_at >= ?2) AND (?3 IS NULL OR created_at < ?3)
                 ORDER BY created_at DESC LIMIT ?5",
            )?;
            let rows = s.query_map(
                params![PaymentStatus::Unknown, from, to, create_call, limit],
                PaymentRow::from_row,
            )?;
            rows.collect()
        })
    }

    /// One page of the transactions list and how many match in all: two queries, whatever
    /// the page size.
    pub fn transactions(&self, f: &TransactionFilter) -> Db<(Vec<TransactionRow>, i64)> {
        let (where_sql, mut values) = tx_where(f);
        let count_sql = format!("SELECT COUNT(*) FROM payments p WHERE {where_sql}");
        let n = values.len();
        let page_sql = format!(
            "SELECT p.*, o.total_cents AS order_total_cents, o.card_payments AS order_cards,
                {} AS paid_cvco
             FROM payments p JOIN orders o ON o.order_ref = p.order_ref
             WHERE {where_sql}
             ORDER BY p.created_at DESC, p.payment_id DESC LIMIT ?{} OFFSET ?{}",
            paid_cvco_sql("p.order_ref"),
            n + 1,
            n + 2
        );
        self.with(|c| {
            let total: i64 = c
                .prepare_cached(&count_sql)?
                .query_row(rusqlite::params_from_iter(values.iter()), |r| r.get(0))?;
            values.push(f.limit.into());
            values.push(f.offset.into());
            let mut s = c.prepare_cached(&page_sql)?;
            let rows = s.query_map(rusqlite::params_from_iter(values.iter()), |r| {
                Ok(TransactionRow {
                    payment: PaymentRow::from_row(r)?,
                    order_total_cents: r.get("order_total_cents")?,
                    card_payments: r.get("order_cards")?,
                    paid_cvco_cents: r.get("paid_cvco")?,
                })
            })?;
            Ok((rows.collect::<rusqlite::Result<Vec<_>>>()?, total))
        })
    }

    /// Payments authorized or finished in `[since, until)`, in that order.
    pub fn payments_for_totals(&self, since: i64, until: i64) -> Db<Vec<PaymentRow>> {
        self.with(|c| {
            let mut s = c.prepare(
                "SELECT * FROM payments WHERE (authorized_at >= ?1 AND authorized_at < ?2)
                 OR (final_at >= ?1 AND final_at < ?2) ORDER BY COALESCE(authorized_at, final_at)",
            )?;
            let rows = s.query_map(params![since, until], PaymentRow::from_row)?;
            rows.collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payment(id: &str, order_ref: &str, amount_cents: i64, created_at: i64) -> PaymentRow {
        PaymentRow {
            payment_id: id.into(),
            order_ref: order_ref.into(),
            attempt: id.into(),
            mode: PaymentMode::Identifier,
            channel: Channel::Ecommerce,
            amount_cents,
            beneficiary_masked: None,
            create_call: "create_payment".into(),
            create_input: "{}".into(),
            transaction_id: None,
            request_id: None,
            status: PaymentStatus::Unknown,
            is_final: false,
            authorized_cents: 0,
            refunded_cents: 0,
            ancv_state: None,
            plugin: None,
            qr: None,
            error: None,
            deadline: None,
            sequence: 0,
            created_at,
            updated_at: created_at,
            authorized_at: None,
            final_at: None,
            next_poll_at: 0,
            poll_interval_ms: 0,
            recheck_at: None,
        }
    }

    #[test]
    fn the_transactions_list_filters_and_pages_in_sql_with_the_orders_amounts() {
        let s = Store::open(None).unwrap();
        let cards = r#"[{"amount_cents": 500}]"#;
        for o in ["CMD-A", "CMD-B"] {
            s.insert_order(o, None, "shop", "[]", 10_000, 0).unwrap();
        }
        s.set_card_payments("CMD-B", cards).unwrap();
        // 5 authorized on A, 3 declined on B, 1 still unknown (no ANCV id: never listed).
        for i in 0..9i64 {
            let order = if i < 5 { "CMD-A" } else { "CMD-B" };
            let mut p = payment(&format!("pay_{i}"), order, 1000 + i, 100 + i);
            s.insert_payment(&p).unwrap();
            if i < 8 {
                p.transaction_id = Some(format!("TX{i}"));
                p.status = if i < 5 {
                    PaymentStatus::Known(NormalizedStatus::Authorized)
                } else {
                    PaymentStatus::Known(NormalizedStatus::Declined)
                };
                p.authorized_cents = if i < 5 { 1000 } else { 0 };
                p.is_final = true;
                s.save_payment(&p).unwrap();
            }
        }
        let page = |f: TransactionFilter| s.transactions(&f).unwrap();
        let all = TransactionFilter {
            limit: 3,
            offset: 0,
            ..Default::default()
        };
        let (rows, total) = page(all.clone());
        assert_eq!(total, 8, "the unknown one has no transaction yet");
        let ids: Vec<_> = rows.iter().map(|r| r.payment.payment_id.as_str()).collect();
        assert_eq!(ids, ["pay_7", "pay_6", "pay_5"], "newest first");
        assert_eq!(rows[0].paid_cvco_cents, 0);
        assert_eq!(rows[0].card_payments, cards);
        let (rows, total) = page(TransactionFilter {
            offset: 6,
            ..all.clone()
        });
        assert_eq!((rows.len(), total), (2, 8));
        assert_eq!(rows[0].paid_cvco_cents, 5000, "A's five authorizations");
        let (rows, total) = page(TransactionFilter {
            status: Some("declined".into()),
            min_amount_cents: Some(1006),
            limit: 10,
            ..all.clone()
        });
        assert_eq!(total, 2);
        assert!(rows.iter().all(|r| r.payment.order_ref == "CMD-B"));
        let (_, total) = page(TransactionFilter {
            order_ref: Some("CMD-A".into()),
            from: Some(102),
            to: Some(104),
            ..all
        });
        assert_eq!(total, 2, "pay_2 and pay_3");
    }
}
