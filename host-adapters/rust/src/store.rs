//! SQLite persistence: orders, payments, payment requests, processed notifications, users and
//! sessions. Every change is one statement or one transaction, so a crash leaves no half record.

use cvco_core::{CvcoError, ErrorCode};
use rusqlite::{params, Connection, OptionalExtension, Row};
use std::path::Path;
use std::sync::Mutex;

/// Ordered migrations; `schema_version` holds how many ran.
const MIGRATIONS: &[&str] = &[
    // 1: first schema.
    "CREATE TABLE orders (
        order_ref TEXT PRIMARY KEY,
        owner TEXT,
        kind TEXT NOT NULL,
        lines TEXT NOT NULL,
        total_cents INTEGER NOT NULL,
        card_payments TEXT NOT NULL DEFAULT '[]',
        created_at INTEGER NOT NULL
    );
    CREATE TABLE payments (
        payment_id TEXT PRIMARY KEY,
        order_ref TEXT NOT NULL REFERENCES orders(order_ref),
        attempt TEXT NOT NULL,
        mode TEXT NOT NULL,
        channel TEXT NOT NULL,
        amount_cents INTEGER NOT NULL,
        beneficiary_masked TEXT,
        create_call TEXT NOT NULL,
        create_input TEXT NOT NULL,
        transaction_id TEXT,
        request_id TEXT,
        status TEXT NOT NULL,
        final INTEGER NOT NULL DEFAULT 0,
        authorized_cents INTEGER NOT NULL DEFAULT 0,
        refunded_cents INTEGER NOT NULL DEFAULT 0,
        ancv_state TEXT,
        plugin TEXT,
        qr TEXT,
        error TEXT,
        deadline INTEGER,
        sequence INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        authorized_at INTEGER,
        final_at INTEGER,
        next_poll_at INTEGER NOT NULL DEFAULT 0,
        poll_interval_ms INTEGER NOT NULL DEFAULT 0,
        UNIQUE(order_ref, attempt)
    );
    CREATE INDEX payments_tx ON payments(transaction_id);
    CREATE INDEX payments_req ON payments(request_id);
    CREATE INDEX payments_open ON payments(final, next_poll_at);
    CREATE INDEX payments_order ON payments(order_ref);
    CREATE TABLE payment_requests (
        request_id TEXT PRIMARY KEY,
        payment_id TEXT NOT NULL UNIQUE REFERENCES payments(payment_id),
        delivery TEXT NOT NULL,
        email_masked TEXT,
        capture TEXT NOT NULL,
        expires_at INTEGER NOT NULL,
        qr_payload TEXT NOT NULL,
        qr_svg TEXT,
        finalised INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE notifications (event_id TEXT PRIMARY KEY, received_at INTEGER NOT NULL);
    CREATE TABLE notified_objects (object_id TEXT PRIMARY KEY, sequence INTEGER NOT NULL);
    CREATE TABLE users (
        username TEXT PRIMARY KEY,
        role TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        permissions TEXT NOT NULL,
        active INTEGER NOT NULL DEFAULT 1,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE sessions (
        token_hash TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        username TEXT,
        csrf TEXT,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
    );
    CREATE TABLE closings (id INTEGER PRIMARY KEY AUTOINCREMENT, closed_at INTEGER NOT NULL, totals TEXT NOT NULL);
    CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);",
    // A follow-up operation (refund, cancel, capture) whose answer was lost: the payment is read
    // again from ANCV at `recheck_at`, final or not, until the read succeeds.
    "ALTER TABLE payments ADD COLUMN recheck_at INTEGER;
    CREATE INDEX payments_recheck ON payments(recheck_at) WHERE recheck_at IS NOT NULL;",
];

pub fn db_error(e: rusqlite::Error) -> CvcoError {
    tracing::error!(error = %e, "database");
    CvcoError::new(ErrorCode::Internal).with_detail("Base de données.", "Database.")
}

pub struct Store {
    conn: Mutex<Connection>,
}

pub type Db<T> = Result<T, CvcoError>;

impl Store {
    pub fn open(path: Option<&Path>) -> Db<Store> {
        let conn = match path {
            Some(p) => Connection::open(p),
            None => Connection::open_in_memory(),
        }
        .map_err(db_error)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=5000;",
        )
        .map_err(db_error)?;
        migrate(&conn)?;
        Ok(Store {
            conn: Mutex::new(conn),
        })
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> Db<T> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut conn).map_err(db_error)
    }

    pub fn next_counter(&self, name: &str) -> Db<i64> {
        self.with(|c| {
            c.query_row(
                "INSERT INTO counters(name, value) VALUES (?1, 1)
                 ON CONFLICT(name) DO UPDATE SET value = value + 1 RETURNING value",
                params![name],
                |r| r.get(0),
            )
        })
    }
}

fn migrate(conn: &Connection) -> Db<()> {
    conn.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        .map_err(db_error)?;
    let version: Option<i64> = conn
        .query_row("SELECT version FROM schema_version", [], |r| r.get(0))
        .optional()
        .map_err(db_error)?;
    let mut version = match version {
        Some(v) => v as usize,
        None => {
            conn.execute("INSERT INTO schema_version(version) VALUES (0)", [])
                .map_err(db_error)?;
            0
        }
    };
    if version > MIGRATIONS.len() {
        return Err(CvcoError::new(ErrorCode::ConfigInvalid).with_detail(
            "Base créée par une version plus récente.",
            "Database written by a newer version.",
        ));
    }
    while version < MIGRATIONS.len() {
        let sql = format!(
            "BEGIN; {} UPDATE schema_version SET version = {}; COMMIT;",
            MIGRATIONS[version],
            version + 1
        );
        conn.execute_batch(&sql).map_err(db_error)?;
        version += 1;
    }
    Ok(())
}

#[derive(Debug, Clone)]
pub struct OrderRow {
    pub order_ref: String,
    pub owner: Option<String>,
    pub kind: String,
    pub lines: String,
    pub total_cents: i64,
    pub card_payments: String,
    pub created_at: i64,
}

impl OrderRow {
    pub fn from_row(r: &Row) -> rusqlite::Result<OrderRow> {
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

#[derive(Debug, Clone)]
pub struct PaymentRow {
    pub payment_id: String,
    pub order_ref: String,
    pub attempt: String,
    pub mode: String,
    pub channel: String,
    pub amount_cents: i64,
    pub beneficiary_masked: Option<String>,
    pub create_call: String,
    pub create_input: String,
    pub transaction_id: Option<String>,
    pub request_id: Option<String>,
    pub status: String,
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
    /// never written by `save_state`).
    pub recheck_at: Option<i64>,
}

impl PaymentRow {
    pub fn from_row(r: &Row) -> rusqlite::Result<PaymentRow> {
        Ok(PaymentRow {
            payment_id: r.get("payment_id")?,
            order_ref: r.get("order_ref")?,
            attempt: r.get("attempt")?,
            mode: r.get("mode")?,
            channel: r.get("channel")?,
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

    pub fn insert(&self, c: &Connection) -> rusqlite::Result<usize> {
        c.execute(
            "INSERT INTO payments (payment_id, order_ref, attempt, mode, channel, amount_cents,
                beneficiary_masked, create_call, create_input, status, final, created_at, updated_at,
                next_poll_at, poll_interval_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 0, ?11, ?11, ?12, 0)",
            params![
                self.payment_id,
                self.order_ref,
                self.attempt,
                self.mode,
                self.channel,
                self.amount_cents,
                self.beneficiary_masked,
                self.create_call,
                self.create_input,
                self.status,
                self.created_at,
                self.next_poll_at,
            ],
        )
    }

    /// Writes everything the plugin taught us.
    pub fn save_state(&self, c: &Connection) -> rusqlite::Result<usize> {
        c.execute(
            "UPDATE payments SET transaction_id = ?2, request_id = ?3, status = ?4, final = ?5,
                authorized_cents = ?6, refunded_cents = ?7, ancv_state = ?8, plugin = ?9, qr = ?10,
                error = ?11, deadline = ?12, sequence = ?13, updated_at = ?14, authorized_at = ?15,
                final_at = ?16, next_poll_at = ?17, poll_interval_ms = ?18
             WHERE payment_id = ?1",
            params![
                self.payment_id,
                self.transaction_id,
                self.request_id,
                self.status,
                self.is_final as i64,
                self.authorized_cents,
                self.refunded_cents,
                self.ancv_state,
                self.plugin,
                self.qr,
                self.error,
                self.deadline,
                self.sequence,
                self.updated_at,
                self.authorized_at,
                self.final_at,
                self.next_poll_at,
                self.poll_interval_ms,
            ],
        )
    }
}

#[derive(Debug, Clone)]
pub struct RequestRow {
    pub request_id: String,
    pub payment_id: String,
    pub delivery: String,
    pub email_masked: Option<String>,
    pub capture: String,
    pub expires_at: i64,
    pub qr_payload: String,
    pub qr_svg: Option<String>,
    pub finalised: bool,
}

impl RequestRow {
    pub fn from_row(r: &Row) -> rusqlite::Result<RequestRow> {
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
    pub fn order(&self, order_ref: &str) -> Db<Option<OrderRow>> {
        self.with(|c| {
            c.query_row(
                "SELECT * FROM orders WHERE order_ref = ?1",
                params![order_ref],
                OrderRow::from_row,
            )
            .optional()
        })
    }

    pub fn payment(&self, payment_id: &str) -> Db<Option<PaymentRow>> {
        self.with(|c| {
            c.prepare_cached("SELECT * FROM payments WHERE payment_id = ?1")?
                .query_row(params![payment_id], PaymentRow::from_row)
                .optional()
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

    pub fn payments_of_order(&self, order_ref: &str) -> Db<Vec<PaymentRow>> {
        self.with(|c| {
            let mut s = c.prepare_cached(
                "SELECT * FROM payments WHERE order_ref = ?1 ORDER BY created_at, payment_id",
            )?;
            let rows = s.query_map(params![order_ref], PaymentRow::from_row)?;
            rows.collect()
        })
    }

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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_run_once_and_refuse_a_newer_schema() {
        let dir = std::env::temp_dir().join(format!("cvco-host-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.sqlite");
        let _ = std::fs::remove_file(&path);
        let version = |s: &Store| {
            s.with(|c| {
                c.query_row("SELECT version FROM schema_version", [], |r| {
                    r.get::<_, i64>(0)
                })
            })
            .unwrap()
        };
        let s = Store::open(Some(&path)).unwrap();
        assert_eq!(version(&s), MIGRATIONS.len() as i64);
        assert_eq!(s.next_counter("x").unwrap(), 1);
        drop(s);
        let s = Store::open(Some(&path)).unwrap();
        assert_eq!(
            s.next_counter("x").unwrap(),
            2,
            "data kept, migrations not rerun"
        );
        s.with(|c| c.execute("UPDATE schema_version SET version = 99", []))
            .unwrap();
        drop(s);
        assert_eq!(
            Store::open(Some(&path)).err().unwrap().code,
            ErrorCode::ConfigInvalid
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
