//! Payment requests (MOTO e-mail, QR): ANCV's pre-transaction beside its payment row.

use super::{Db, PaymentStatus, Store};
use cvco_core::NormalizedStatus;
use rusqlite::{params, OptionalExtension, Row};

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
    fn from_row(r: &Row) -> rusqlite::Result<RequestRow> {
        Ok(RequestRow {
            request_id: r.get("request_id")?,
            payment_id: r.get("payment_id")?,
            delivery: r.get("delivery")?,
            email_masked: r.get("email_masked")?,
            capture: r.get("capture")?,
            expires_at: r.get("expires_at")?,
            qr_payload: r.get("qr_payload")?,
            qr_svg: r.get("qr_svg")?,
            finalised: r.get::<_, i64>("finalised")? != 0,
        })
    }
}

impl Store {
    pub fn request(&self, request_id: &str) -> Db<Option<RequestRow>> {
        self.with(|c| {
            c.query_row(
                "SELECT * FROM payment_requests WHERE request_id = ?1",
                params![request_id],
                RequestRow::from_row,
            )
            .optional()
        })
    }

    pub fn request_of_payment(&self, payment_id: &str) -> Db<Option<RequestRow>> {
        self.with(|c| {
            c.query_row(
                "SELECT * FROM payment_requests WHERE payment_id = ?1",
                params![payment_id],
                RequestRow::from_row,
            )
            .optional()
        })
    }

    /// Records ANCV's request once (a replayed creation answers the same one).
    pub fn insert_request(&self, r: &RequestRow) -> Db<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO payment_requests (request_id, payment_id, delivery, email_masked,
                    capture, expires_at, qr_payload, qr_svg) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT DO NOTHING",
                params![
                    r.request_id,
                    r.payment_id,
                    r.delivery,
                    r.email_masked,
                    r.capture,
                    r.expires_at,
                    r.qr_payload,
                    r.qr_svg
                ],
            )
            .map(|_| ())
        })
    }

    pub fn set_request_finalised(&self, request_id: &str) -> Db<()> {
        self.with(|c| {
            c.execute(
                "UPDATE payment_requests SET finalised = 1 WHERE request_id = ?1",
                params![request_id],
            )
            .map(|_| ())
        })
    }

    /// Request ids newest first; `status` `awaiting_beneficiary` includes the `pending` ones
    /// (a request nobody paid yet).
    pub fn request_ids(
        &self,
        status: Option<&str>,
        from: Option<i64>,
        to: Option<i64>,
        limit: i64,
    ) -> Db<Vec<String>> {
        let pending = PaymentStatus::Known(NormalizedStatus::Pending);
        self.with(|c| {
            let mut s = c.prepare(
                "SELECT r.request_id FROM payment_requests r JOIN payments p ON p.payment_id = r.payment_id
                 WHERE (?1 IS NULL OR p.status = ?1 OR (?1 = 'awaiting_beneficiary' AND p.status = ?5))
                 AND (?2 IS NULL OR p.created_at >= ?2) AND (?3 IS NULL OR p.created_at < ?3)
                 ORDER BY p.created_at DESC LIMIT ?4",
            )?;
            let rows = s.query_map(params![status, from, to, limit, pending], |r| r.get(0))?;
            rows.collect()
        })
    }
}
