//! Payment requests (MOTO e-mail, QR): ANCV's pre-transaction beside its payment row.

use super::conn::{vals, Row, Sql, R};
use super::{db_error, Db, PaymentStatus, Store};
use cvco_core::NormalizedStatus;

#[derive(Debug, Clone)]
pub struct RequestRow {
    pub request_id: String,
    pub payment_id: String,
    pub delivery: String,
    pub email_masked: Option<String>,
    /// `NORMAL` or `DEFERRED`.
    pub capture: String,
    pub expires_at: i64,
    pub qr_payload: String,
    pub qr_svg: Option<String>,
    pub finalised: bool,
}

impl RequestRow {
    fn from_row(r: &Row) -> R<RequestRow> {
        Ok(RequestRow {
            request_id: r.string("request_id")?,
            payment_id: r.string("payment_id")?,
            delivery: r.string("delivery")?,
            email_masked: r.opt_string("email_masked")?,
            capture: r.string("capture")?,
            expires_at: r.i64("expires_at")?,
            qr_payload: r.string("qr_payload")?,
            qr_svg: r.opt_string("qr_svg")?,
            finalised: r.bool("finalised")?,
        })
    }
}

impl Store {
    pub async fn request(&self, request_id: &str) -> Db<Option<RequestRow>> {
        let mut c = self.conn().await?;
        c.query_opt(
            "SELECT * FROM payment_requests WHERE request_id = ?1",
            &vals![request_id],
            RequestRow::from_row,
        )
        .await
        .map_err(db_error)
    }

    pub async fn request_of_payment(&self, payment_id: &str) -> Db<Option<RequestRow>> {
        let mut c = self.conn().await?;
        c.query_opt(
            "SELECT * FROM payment_requests WHERE payment_id = ?1",
            &vals![payment_id],
            RequestRow::from_row,
        )
        .await
        .map_err(db_error)
    }

    /// Records ANCV's request once (a replayed creation answers the same one).
    pub async fn insert_request(&self, r: &RequestRow) -> Db<()> {
        let mut c = self.conn().await?;
        c.execute(
            "INSERT INTO payment_requests (request_id, payment_id, delivery, email_masked,
                capture, expires_at, qr_payload, qr_svg) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT DO NOTHING",
            &vals![
                &r.request_id,
                &r.payment_id,
                &r.delivery,
                &r.email_masked,
                &r.capture,
                r.expires_at,
                &r.qr_payload,
                &r.qr_svg
            ],
        )
        .await
        .map(|_| ())
        .map_err(db_error)
    }

    pub async fn set_request_finalised(&self, request_id: &str) -> Db<()> {
        let mut c = self.conn().await?;
        c.execute(
            "UPDATE payment_requests SET finalised = TRUE WHERE request_id = ?1",
            &vals![request_id],
        )
        .await
        .map(|_| ())
        .map_err(db_error)
    }

    /// Request ids newest first; `status` `awaiting_beneficiary` includes the `pending` ones
    /// (a request nobody paid yet), of one merchant. Only the filters given are in the SQL.
    pub async fn request_ids(
        &self,
        merchant_id: &str,
        status: Option<&str>,
        from: Option<i64>,
        to: Option<i64>,
        limit: i64,
    ) -> Db<Vec<String>> {
        let pending = PaymentStatus::Known(NormalizedStatus::Pending).as_str();
        let mut q = Sql::new(
            "SELECT r.request_id FROM payment_requests r JOIN payments p ON p.payment_id = r.payment_id
             WHERE p.merchant_id = ?1",
        );
        q.params = vals![merchant_id].to_vec();
        if let Some(s) = status {
            let p = q.param(s);
            if s == "awaiting_beneficiary" {
                let pending = q.param(pending);
                q.push(&format!(" AND (p.status = {p} OR p.status = {pending})"));
            } else {
                q.push(&format!(" AND p.status = {p}"));
            }
        }
        if let Some(f) = from {
            let p = q.param(f);
            q.push(&format!(" AND p.created_at >= {p}"));
        }
        if let Some(t) = to {
            let p = q.param(t);
            q.push(&format!(" AND p.created_at < {p}"));
        }
        let p = q.param(limit);
        q.push(&format!(" ORDER BY p.created_at DESC LIMIT {p}"));
        let mut c = self.conn().await?;
        c.query(&q.text, &q.params, |r| r.string(0))
            .await
            .map_err(db_error)
    }
}
