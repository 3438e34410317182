//! Ordered schema migrations; `schema_version` holds how many ran. The SQL stays portable
//! (no SQLite-only syntax where a standard form exists) so a PostgreSQL list can mirror it.

use super::{db_error, Db};
use cvco_core::{CvcoError, ErrorCode};
use rusqlite::{Connection, OptionalExtension};

pub(super) const MIGRATIONS: &[&str] = &[
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
    // The transactions list pages newest first in SQL.
    "CREATE INDEX payments_created ON payments(created_at, payment_id);",
    // The transactions list at 1,000,000 payments: only listed rows (with an ANCV id), newest
    // first with or without a status, so a page and its COUNT read an index range.
    "CREATE INDEX payments_listed ON payments(created_at, payment_id) WHERE transaction_id IS NOT NULL;
    CREATE INDEX payments_listed_status ON payments(status, created_at, payment_id)
        WHERE transaction_id IS NOT NULL;",
];

pub(super) fn migrate(conn: &Connection) -> Db<()> {
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
