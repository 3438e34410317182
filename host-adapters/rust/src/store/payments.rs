//! Payments: one row per attempt of an order, written before the plugin is called.

use super::conn::{vals, DbErr, Row, Sql, R, V};
use super::orders::paid_cvco_sql;
use super::{db_error, Db, Store};
use cvco_core::contract::PaymentMode;
use cvco_core::{Channel, NormalizedStatus};

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

impl From<PaymentStatus> for V<'_> {
    fn from(s: PaymentStatus) -> Self {
        V::T(s.as_str())
    }
}

fn mode_str(m: PaymentMode) -> &'static str {
    match m {
        PaymentMode::Qr => "qr",
        PaymentMode::Identifier => "identifier",
    }
}

fn unreadable(column: &str, value: &str) -> DbErr {
    DbErr::Other(format!("unreadable {column} {value:?}"))
}

#[derive(Debug, Clone)]
pub struct PaymentRow {
    pub payment_id: String,
    /// The merchant whose plugin (credentials, shop) made and follows it.
    pub merchant_id: String,
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
    fn from_row(r: &Row) -> R<PaymentRow> {
        let mode = r.string("mode")?;
        let channel = r.string("channel")?;
        let status = r.string("status")?;
        Ok(PaymentRow {
            payment_id: r.string("payment_id")?,
            merchant_id: r.string("merchant_id")?,
            order_ref: r.string("order_ref")?,
            attempt: r.string("attempt")?,
            mode: match mode.as_str() {
                "qr" => PaymentMode::Qr,
                "identifier" => PaymentMode::Identifier,
                other => return Err(unreadable("mode", other)),
            },
            channel: Channel::parse(&channel).map_err(|_| unreadable("channel", &channel))?,
            amount_cents: r.i64("amount_cents")?,
            beneficiary_masked: r.opt_string("beneficiary_masked")?,
            create_call: r.string("create_call")?,
            create_input: r.string("create_input")?,
            transaction_id: r.opt_string("transaction_id")?,
            request_id: r.opt_string("request_id")?,
            status: PaymentStatus::parse(&status).ok_or_else(|| unreadable("status", &status))?,
            is_final: r.bool("final")?,
            authorized_cents: r.i64("authorized_cents")?,
            refunded_cents: r.i64("refunded_cents")?,
            ancv_state: r.opt_string("ancv_state")?,
            plugin: r.opt_string("plugin")?,
            qr: r.opt_string("qr")?,
            error: r.opt_string("error")?,
            deadline: r.opt_i64("deadline")?,
            sequence: r.i64("sequence")?,
            created_at: r.i64("created_at")?,
            updated_at: r.i64("updated_at")?,
            authorized_at: r.opt_i64("authorized_at")?,
            final_at: r.opt_i64("final_at")?,
            next_poll_at: r.i64("next_poll_at")?,
            poll_interval_ms: r.i64("poll_interval_ms")?,
            recheck_at: r.opt_i64("recheck_at")?,
        })
    }
}

/// The back-office's transactions list: filters and one page, newest first.
#[derive(Debug, Clone, Default)]
pub struct TransactionFilter {
    /// Only this merchant's (a back-office session's); all when `None`.
    pub merchant_id: Option<String>,
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

/// Matching payments are counted up to this many; beyond, the list says "10,000+".
pub const TRANSACTIONS_COUNT_CAP: i64 = 10_000;

/// One page of the transactions list.
#[derive(Debug, Clone)]
pub struct TransactionPage {
    pub rows: Vec<TransactionRow>,
    /// How many payments match, at most [`TRANSACTIONS_COUNT_CAP`].
    pub total: i64,
    /// More than `total` match.
    pub total_capped: bool,
}

impl TransactionFilter {
    /// ` AND …` for each filter given, parameters added to `q`.
    /// The order reference is a prefix, read as an index range `[prefix, order_end)`.
    fn push_where<'a>(&'a self, q: &mut Sql<'a>, order_end: Option<&'a str>) {
        q.push(" WHERE p.transaction_id IS NOT NULL");
        if let Some(m) = &self.merchant_id {
            let p = q.param(m);
            q.push(&format!(" AND p.merchant_id = {p}"));
        }
        if let Some(s) = &self.status {
            let p = q.param(s);
            q.push(&format!(" AND p.status = {p}"));
        }
        if let Some(v) = self.from {
            let p = q.param(v);
            q.push(&format!(" AND p.created_at >= {p}"));
        }
        if let Some(v) = self.to {
            let p = q.param(v);
            q.push(&format!(" AND p.created_at < {p}"));
        }
        if let Some(v) = self.min_amount_cents {
            let p = q.param(v);
            q.push(&format!(" AND p.amount_cents >= {p}"));
        }
        if let Some(v) = self.max_amount_cents {
            let p = q.param(v);
            q.push(&format!(" AND p.amount_cents <= {p}"));
        }
        if let (Some(start), Some(end)) = (&self.order_ref, order_end) {
            let (a, b) = (q.param(start), q.param(end));
            q.push(&format!(" AND p.order_ref >= {a} AND p.order_ref < {b}"));
        }
    }
}

const SAVE_PAYMENT: &str =
    "UPDATE payments SET transaction_id = ?2, request_id = ?3, status = ?4, final = ?5,
        authorized_cents = ?6, refunded_cents = ?7, ancv_state = ?8, plugin = ?9, qr = ?10,
        error = ?11, deadline = ?12, sequence = ?13, updated_at = ?14, authorized_at = ?15,
        final_at = ?16, next_poll_at = ?17, poll_interval_ms = ?18
     WHERE payment_id = ?1";

impl Store {
    pub async fn payment(&self, payment_id: &str) -> Db<Option<PaymentRow>> {
        let mut c = self.conn().await?;
        c.query_opt(
            "SELECT * FROM payments WHERE payment_id = ?1",
            &vals![payment_id],
            PaymentRow::from_row,
        )
        .await
        .map_err(db_error)
    }

    pub async fn payment_by_attempt(
        &self,
        order_ref: &str,
        attempt: &str,
    ) -> Db<Option<PaymentRow>> {
        let mut c = self.conn().await?;
        c.query_opt(
            "SELECT * FROM payments WHERE order_ref = ?1 AND attempt = ?2",
            &vals![order_ref, attempt],
            PaymentRow::from_row,
        )
        .await
        .map_err(db_error)
    }

    pub async fn payments_of_order(&self, order_ref: &str) -> Db<Vec<PaymentRow>> {
        let mut c = self.conn().await?;
        c.query(
            "SELECT * FROM payments WHERE order_ref = ?1 ORDER BY created_at, payment_id",
            &vals![order_ref],
            PaymentRow::from_row,
        )
        .await
        .map_err(db_error)
    }

    /// The new payment, before any plugin call; fails on a second `(order_ref, attempt)`.
    pub async fn insert_payment(&self, p: &PaymentRow) -> Db<()> {
        let mut c = self.conn().await?;
        c.execute(
            "INSERT INTO payments (payment_id, order_ref, attempt, mode, channel, amount_cents,
                beneficiary_masked, create_call, create_input, status, final, created_at,
                updated_at, next_poll_at, poll_interval_ms, merchant_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, FALSE, ?11, ?11, ?12, 0, ?13)",
            &vals![
                &p.payment_id,
                &p.order_ref,
                &p.attempt,
                mode_str(p.mode),
                p.channel.as_str(),
                p.amount_cents,
                &p.beneficiary_masked,
                &p.create_call,
                &p.create_input,
                p.status,
                p.created_at,
                p.next_poll_at,
                &p.merchant_id,
            ],
        )
        .await
        .map(|_| ())
        .map_err(db_error)
    }

    /// Writes everything the plugin taught us (not `recheck_at`). On PostgreSQL the same
    /// statement announces the change to every instance (`listen.rs`), sent at its commit.
    pub async fn save_payment(&self, p: &PaymentRow) -> Db<()> {
        let mut c = self.conn().await?;
        let notify;
        let sql = if c.is_postgres() {
            notify = format!(
                "WITH saved AS ({SAVE_PAYMENT} RETURNING payment_id)
                 SELECT pg_notify('{}', payment_id) FROM saved",
                super::PAYMENT_CHANNEL
            );
            &notify
        } else {
            SAVE_PAYMENT
        };
        c.execute(
            sql,
            &vals![
                &p.payment_id,
                &p.transaction_id,
                &p.request_id,
                p.status,
                p.is_final,
                p.authorized_cents,
                p.refunded_cents,
                &p.ancv_state,
                &p.plugin,
                &p.qr,
                &p.error,
                p.deadline,
                p.sequence,
                p.updated_at,
                p.authorized_at,
                p.final_at,
                p.next_poll_at,
                p.poll_interval_ms,
            ],
        )
        .await
        .map(|_| ())
        .map_err(db_error)
    }

    /// Only for a creation refused outright (nothing exists at ANCV).
    pub async fn delete_payment(&self, payment_id: &str) -> Db<()> {
        let mut c = self.conn().await?;
        c.execute(
            "DELETE FROM payments WHERE payment_id = ?1",
            &vals![payment_id],
        )
        .await
        .map(|_| ())
        .map_err(db_error)
    }

    /// Asks the poller to read this payment again at `at` (None: no longer needed).
    pub async fn set_recheck(&self, payment_id: &str, at: Option<i64>) -> Db<()> {
        let mut c = self.conn().await?;
        c.execute(
            "UPDATE payments SET recheck_at = ?2 WHERE payment_id = ?1",
            &vals![payment_id, at],
        )
        .await
        .map(|_| ())
        .map_err(db_error)
    }

    /// The payment holding this ANCV transaction, else the one holding this payment request.
    pub async fn payment_id_by_ancv(
        &self,
        transaction_id: Option<&str>,
        request_id: Option<&str>,
    ) -> Db<Option<String>> {
        let mut c = self.conn().await?;
        if let Some(t) = transaction_id {
            let found = c
                .query_opt(
                    "SELECT payment_id FROM payments WHERE transaction_id = ?1",
                    &vals![t],
                    |r| r.string(0),
                )
                .await
                .map_err(db_error)?;
            if found.is_some() {
                return Ok(found);
            }
        }
        match request_id {
            Some(id) => c
                .query_opt(
                    "SELECT payment_id FROM payments WHERE request_id = ?1",
                    &vals![id],
                    |r| r.string(0),
                )
                .await
                .map_err(db_error),
            None => Ok(None),
        }
    }

    /// Payments of `create_call` whose creation outcome is unknown, newest first.
    pub async fn unknown_creations(
        &self,
        merchant_id: &str,
        create_call: &str,
        from: Option<i64>,
        to: Option<i64>,
        limit: i64,
    ) -> Db<Vec<PaymentRow>> {
        let mut q = Sql::new(
            "SELECT * FROM payments WHERE status = ?1 AND create_call = ?2 AND merchant_id = ?3",
        );
        q.params = vals![PaymentStatus::Unknown, create_call, merchant_id].to_vec();
        if let Some(v) = from {
            let p = q.param(v);
            q.push(&format!(" AND created_at >= {p}"));
        }
        if let Some(v) = to {
            let p = q.param(v);
            q.push(&format!(" AND created_at < {p}"));
        }
        let p = q.param(limit);
        q.push(&format!(" ORDER BY created_at DESC LIMIT {p}"));
        let mut c = self.conn().await?;
        c.query(&q.text, &q.params, PaymentRow::from_row)
            .await
            .map_err(db_error)
    }

    /// One page of the transactions list and how many match, counted up to
    /// [`TRANSACTIONS_COUNT_CAP`]: two queries, whatever the page size; only the filters given
    /// are in the SQL.
    pub async fn transactions(&self, f: &TransactionFilter) -> Db<TransactionPage> {
        self.transactions_counted_to(f, TRANSACTIONS_COUNT_CAP)
            .await
    }

    async fn transactions_counted_to(
        &self,
        f: &TransactionFilter,
        cap: i64,
    ) -> Db<TransactionPage> {
        let order_end = f
            .order_ref
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(|s| format!("{s}{}", char::MAX));
        // An exact count reads every matching row (PostgreSQL has no cheap COUNT): counting one
        // past the cap reads at most that many and still tells "more than the cap".
        let mut count = Sql::new("SELECT COUNT(*) FROM (SELECT 1 FROM payments p");
        f.push_where(&mut count, order_end.as_deref());
        let p = count.param(cap + 1);
        count.push(&format!(" LIMIT {p}) AS matching"));
        let mut page = Sql::new(&format!(
            "SELECT p.*, o.total_cents AS order_total_cents, o.card_payments AS order_cards,
                {} AS paid_cvco
             FROM payments p JOIN orders o ON o.order_ref = p.order_ref",
            paid_cvco_sql("p.order_ref")
        ));
        f.push_where(&mut page, order_end.as_deref());
        let (limit, offset) = (page.param(f.limit), page.param(f.offset));
        page.push(&format!(
            " ORDER BY p.created_at DESC, p.payment_id DESC LIMIT {limit} OFFSET {offset}"
        ));
        let mut c = self.conn().await?;
        let total = c
            .query_one(&count.text, &count.params, |r| r.i64(0))
            .await
            .map_err(db_error)?;
        let rows = c
            .query(&page.text, &page.params, |r| {
                Ok(TransactionRow {
                    payment: PaymentRow::from_row(r)?,
                    order_total_cents: r.i64("order_total_cents")?,
                    card_payments: r.string("order_cards")?,
                    paid_cvco_cents: r.i64("paid_cvco")?,
                })
            })
            .await
            .map_err(db_error)?;
        Ok(TransactionPage {
            rows,
            total: total.min(cap),
            total_capped: total > cap,
        })
    }

    /// The merchant's payments authorized or finished in `[since, until)`, in that order.
    pub async fn payments_for_totals(
        &self,
        merchant_id: &str,
        since: i64,
        until: i64,
    ) -> Db<Vec<PaymentRow>> {
        let mut c = self.conn().await?;
        c.query(
            "SELECT * FROM payments WHERE merchant_id = ?3 AND ((authorized_at >= ?1 AND authorized_at < ?2)
             OR (final_at >= ?1 AND final_at < ?2)) ORDER BY COALESCE(authorized_at, final_at)",
            &vals![since, until, merchant_id],
            PaymentRow::from_row,
        )
        .await
        .map_err(db_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payment(id: &str, order_ref: &str, amount_cents: i64, created_at: i64) -> PaymentRow {
        PaymentRow {
            payment_id: id.into(),
            merchant_id: "default".into(),
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

    #[tokio::test]
    async fn the_transactions_list_filters_and_pages_in_sql_with_the_orders_amounts() {
        let (s, _db) = crate::store::testing::store().await;
        let cards = r#"[{"amount_cents": 500}]"#;
        for o in ["CMD-A", "CMD-B"] {
            s.insert_order(o, None, "shop", "[]", 10_000, 0)
                .await
                .unwrap();
        }
        s.set_card_payments("CMD-B", cards).await.unwrap();
        // 5 authorized on A, 3 declined on B, 1 still unknown (no ANCV id: never listed).
        for i in 0..9i64 {
            let order = if i < 5 { "CMD-A" } else { "CMD-B" };
            let mut p = payment(&format!("pay_{i}"), order, 1000 + i, 100 + i);
            s.insert_payment(&p).await.unwrap();
            if i < 8 {
                p.transaction_id = Some(format!("TX{i}"));
                p.status = if i < 5 {
                    PaymentStatus::Known(NormalizedStatus::Authorized)
                } else {
                    PaymentStatus::Known(NormalizedStatus::Declined)
                };
                p.authorized_cents = if i < 5 { 1000 } else { 0 };
                p.is_final = true;
                s.save_payment(&p).await.unwrap();
            }
        }
        let s = &s;
        let page = |f: TransactionFilter| async move {
            let p = s.transactions(&f).await.unwrap();
            assert!(!p.total_capped);
            (p.rows, p.total)
        };
        let all = TransactionFilter {
            limit: 3,
            offset: 0,
            ..Default::default()
        };
        let (rows, total) = page(all.clone()).await;
        assert_eq!(total, 8, "the unknown one has no transaction yet");
        let ids: Vec<_> = rows.iter().map(|r| r.payment.payment_id.as_str()).collect();
        assert_eq!(ids, ["pay_7", "pay_6", "pay_5"], "newest first");
        assert_eq!(rows[0].paid_cvco_cents, 0);
        assert_eq!(rows[0].card_payments, cards);
        let (rows, total) = page(TransactionFilter {
            offset: 6,
            ..all.clone()
        })
        .await;
        assert_eq!((rows.len(), total), (2, 8));
        assert_eq!(rows[0].paid_cvco_cents, 5000, "A's five authorizations");
        let (rows, total) = page(TransactionFilter {
            status: Some("declined".into()),
            min_amount_cents: Some(1006),
            limit: 10,
            ..all.clone()
        })
        .await;
        assert_eq!(total, 2);
        assert!(rows.iter().all(|r| r.payment.order_ref == "CMD-B"));
        let (_, total) = page(TransactionFilter {
            order_ref: Some("CMD-A".into()),
            from: Some(102),
            to: Some(104),
            ..all.clone()
        })
        .await;
        assert_eq!(total, 2, "pay_2 and pay_3");
        let capped = s.transactions_counted_to(&all, 5).await.unwrap();
        assert_eq!(
            (capped.rows.len(), capped.total, capped.total_capped),
            (3, 5, true),
            "eight match: counted to the cap, said to be more"
        );
        let exact = s.transactions_counted_to(&all, 8).await.unwrap();
        assert_eq!(
            (exact.total, exact.total_capped),
            (8, false),
            "exactly the cap"
        );
    }
}
