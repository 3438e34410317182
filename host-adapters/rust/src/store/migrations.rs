//! Ordered schema migrations, one list per backend (the same steps in the same order);
//! `schema_version` holds how many ran, and a newer schema is refused.

use super::conn::V;
use super::{db_error, Conn, Db};
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
    // Many merchants: merchants and their reception points (secrets sealed only); every
    // record belongs to one merchant ('default': the single-merchant configuration's).
    "CREATE TABLE merchants (
        merchant_id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        client_id TEXT NOT NULL,
        client_secret_sealed TEXT NOT NULL,
        notification_secret_sealed TEXT NOT NULL,
        min_amount_cents INTEGER NOT NULL,
        adjustable TEXT,
        authorization_timeout_s INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE TABLE reception_points (
        shop_id TEXT PRIMARY KEY,
        merchant_id TEXT NOT NULL REFERENCES merchants(merchant_id),
        label TEXT NOT NULL DEFAULT '',
        position INTEGER NOT NULL
    );
    ALTER TABLE orders ADD COLUMN merchant_id TEXT NOT NULL DEFAULT 'default';
    ALTER TABLE payments ADD COLUMN merchant_id TEXT NOT NULL DEFAULT 'default';
    ALTER TABLE users ADD COLUMN merchant_id TEXT NOT NULL DEFAULT 'default';
    ALTER TABLE closings ADD COLUMN merchant_id TEXT NOT NULL DEFAULT 'default';
    CREATE INDEX payments_merchant_listed ON payments(merchant_id, created_at, payment_id)
        WHERE transaction_id IS NOT NULL;",
    // Several instances on one database: the instance polling, cancelling or reconciling a
    // payment holds its lease until `lease_until` (ms); a dead instance's lease expires.
    "ALTER TABLE payments ADD COLUMN lease_owner TEXT;
    ALTER TABLE payments ADD COLUMN lease_until INTEGER;",
    // The back-office always lists one merchant's payments: its status and order-reference
    // filters need the merchant first in their indexes (store-bench, 1,000,000 payments).
    "CREATE INDEX payments_merchant_listed_status ON payments(merchant_id, status, created_at, payment_id)
        WHERE transaction_id IS NOT NULL;
    CREATE INDEX payments_merchant_order ON payments(merchant_id, order_ref, created_at)
        WHERE transaction_id IS NOT NULL;",
    // Merchant settings edited in the back-office (any merchant, `default` too), and a version
    // bumped by every merchant or settings write (the `merchants_version` counter, taken in the
    // write's transaction): other instances reload what is newer than the version they saw,
    // where a millisecond timestamp could miss a change written in the same millisecond.
    "CREATE TABLE merchant_settings (
        merchant_id TEXT PRIMARY KEY,
        settings TEXT NOT NULL,
        cancel_password_hash TEXT,
        version INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    ALTER TABLE merchants ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
    INSERT INTO counters(name, value) VALUES ('merchants_version', 1) ON CONFLICT(name) DO NOTHING;",
    // The transactions list's count with a status and an order-reference prefix: both in one
    // index, the date checked inside it (store-bench on PostgreSQL: 60 ms → 3 ms).
    "CREATE INDEX payments_merchant_status_order ON payments(merchant_id, status, order_ref, created_at)
        WHERE transaction_id IS NOT NULL;",
    // A closing takes what was recorded since the previous one, whatever its authorization
    // time: each payment keeps what closings counted (amounts, status) and the last closing
    // that did. Payments of a period already closed (by authorization time, the former rule)
    // start as counted; the index holds only the payments the next closing will take.
    "ALTER TABLE payments ADD COLUMN closing_id INTEGER;
    ALTER TABLE payments ADD COLUMN closed_authorized_cents INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE payments ADD COLUMN closed_refunded_cents INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE payments ADD COLUMN closed_status TEXT NOT NULL DEFAULT '';
    UPDATE payments SET closed_authorized_cents = authorized_cents,
        closed_refunded_cents = refunded_cents, closed_status = status,
        closing_id = (SELECT MAX(id) FROM closings c WHERE c.merchant_id = payments.merchant_id)
    WHERE COALESCE(authorized_at, final_at, updated_at)
        < (SELECT MAX(closed_at) FROM closings c WHERE c.merchant_id = payments.merchant_id);
    CREATE INDEX payments_unclosed ON payments(merchant_id, updated_at)
        WHERE authorized_cents <> closed_authorized_cents OR refunded_cents <> closed_refunded_cents
            OR status <> closed_status;",
];

/// The same migrations for PostgreSQL, one for one with [`MIGRATIONS`] (one `schema_version`):
/// BIGINT for cents and ms timestamps, BOOLEAN flags, an identity column for closings.
pub(super) const PG_MIGRATIONS: &[&str] = &[
    // 1: first schema.
    "CREATE TABLE orders (
        order_ref TEXT PRIMARY KEY,
        owner TEXT,
        kind TEXT NOT NULL,
        lines TEXT NOT NULL,
        total_cents BIGINT NOT NULL,
        card_payments TEXT NOT NULL DEFAULT '[]',
        created_at BIGINT NOT NULL
    );
    CREATE TABLE payments (
        payment_id TEXT PRIMARY KEY,
        order_ref TEXT NOT NULL REFERENCES orders(order_ref),
        attempt TEXT NOT NULL,
        mode TEXT NOT NULL,
        channel TEXT NOT NULL,
        amount_cents BIGINT NOT NULL,
        beneficiary_masked TEXT,
        create_call TEXT NOT NULL,
        create_input TEXT NOT NULL,
        transaction_id TEXT,
        request_id TEXT,
        status TEXT NOT NULL,
        final BOOLEAN NOT NULL DEFAULT FALSE,
        authorized_cents BIGINT NOT NULL DEFAULT 0,
        refunded_cents BIGINT NOT NULL DEFAULT 0,
        ancv_state TEXT,
        plugin TEXT,
        qr TEXT,
        error TEXT,
        deadline BIGINT,
        sequence BIGINT NOT NULL DEFAULT 0,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        authorized_at BIGINT,
        final_at BIGINT,
        next_poll_at BIGINT NOT NULL DEFAULT 0,
        poll_interval_ms BIGINT NOT NULL DEFAULT 0,
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
        expires_at BIGINT NOT NULL,
        qr_payload TEXT NOT NULL,
        qr_svg TEXT,
        finalised BOOLEAN NOT NULL DEFAULT FALSE
    );
    CREATE TABLE notifications (event_id TEXT PRIMARY KEY, received_at BIGINT NOT NULL);
    CREATE TABLE notified_objects (object_id TEXT PRIMARY KEY, sequence BIGINT NOT NULL);
    CREATE TABLE users (
        username TEXT PRIMARY KEY,
        role TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        permissions TEXT NOT NULL,
        active BOOLEAN NOT NULL DEFAULT TRUE,
        created_at BIGINT NOT NULL
    );
    CREATE TABLE sessions (
        token_hash TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        username TEXT,
        csrf TEXT,
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL
    );
    CREATE TABLE closings (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        closed_at BIGINT NOT NULL,
        totals TEXT NOT NULL
    );
    CREATE TABLE counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL);",
    "ALTER TABLE payments ADD COLUMN recheck_at BIGINT;
    CREATE INDEX payments_recheck ON payments(recheck_at) WHERE recheck_at IS NOT NULL;",
    "CREATE INDEX payments_created ON payments(created_at, payment_id);",
    // The transactions list at 1,000,000 payments: only listed rows (with an ANCV id), newest
    // first with or without a status, so a page and its COUNT read an index range.
    "CREATE INDEX payments_listed ON payments(created_at, payment_id) WHERE transaction_id IS NOT NULL;
    CREATE INDEX payments_listed_status ON payments(status, created_at, payment_id)
        WHERE transaction_id IS NOT NULL;",
    // Many merchants (as in MIGRATIONS).
    "CREATE TABLE merchants (
        merchant_id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        client_id TEXT NOT NULL,
        client_secret_sealed TEXT NOT NULL,
        notification_secret_sealed TEXT NOT NULL,
        min_amount_cents BIGINT NOT NULL,
        adjustable TEXT,
        authorization_timeout_s BIGINT NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
    );
    CREATE TABLE reception_points (
        shop_id TEXT PRIMARY KEY,
        merchant_id TEXT NOT NULL REFERENCES merchants(merchant_id),
        label TEXT NOT NULL DEFAULT '',
        position BIGINT NOT NULL
    );
    ALTER TABLE orders ADD COLUMN merchant_id TEXT NOT NULL DEFAULT 'default';
    ALTER TABLE payments ADD COLUMN merchant_id TEXT NOT NULL DEFAULT 'default';
    ALTER TABLE users ADD COLUMN merchant_id TEXT NOT NULL DEFAULT 'default';
    ALTER TABLE closings ADD COLUMN merchant_id TEXT NOT NULL DEFAULT 'default';
    CREATE INDEX payments_merchant_listed ON payments(merchant_id, created_at, payment_id)
        WHERE transaction_id IS NOT NULL;",
    "ALTER TABLE payments ADD COLUMN lease_owner TEXT;
    ALTER TABLE payments ADD COLUMN lease_until BIGINT;",
    // The back-office always lists one merchant's payments: its status and order-reference
    // filters need the merchant first in their indexes (store-bench, 1,000,000 payments).
    "CREATE INDEX payments_merchant_listed_status ON payments(merchant_id, status, created_at, payment_id)
        WHERE transaction_id IS NOT NULL;
    CREATE INDEX payments_merchant_order ON payments(merchant_id, order_ref, created_at)
        WHERE transaction_id IS NOT NULL;",
    // Merchant settings and the merchants version (as in MIGRATIONS).
    "CREATE TABLE merchant_settings (
        merchant_id TEXT PRIMARY KEY,
        settings TEXT NOT NULL,
        cancel_password_hash TEXT,
        version BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
    );
    ALTER TABLE merchants ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
    INSERT INTO counters(name, value) VALUES ('merchants_version', 1) ON CONFLICT(name) DO NOTHING;",
    // The transactions list's count with a status and an order-reference prefix: both in one
    // index, the date checked inside it (store-bench on PostgreSQL: 60 ms → 3 ms).
    "CREATE INDEX payments_merchant_status_order ON payments(merchant_id, status, order_ref, created_at)
        WHERE transaction_id IS NOT NULL;",
    // What closings counted on each payment (as in MIGRATIONS).
    "ALTER TABLE payments ADD COLUMN closing_id BIGINT;
    ALTER TABLE payments ADD COLUMN closed_authorized_cents BIGINT NOT NULL DEFAULT 0;
    ALTER TABLE payments ADD COLUMN closed_refunded_cents BIGINT NOT NULL DEFAULT 0;
    ALTER TABLE payments ADD COLUMN closed_status TEXT NOT NULL DEFAULT '';
    UPDATE payments SET closed_authorized_cents = authorized_cents,
        closed_refunded_cents = refunded_cents, closed_status = status,
        closing_id = (SELECT MAX(id) FROM closings c WHERE c.merchant_id = payments.merchant_id)
    WHERE COALESCE(authorized_at, final_at, updated_at)
        < (SELECT MAX(closed_at) FROM closings c WHERE c.merchant_id = payments.merchant_id);
    CREATE INDEX payments_unclosed ON payments(merchant_id, updated_at)
        WHERE authorized_cents <> closed_authorized_cents OR refunded_cents <> closed_refunded_cents
            OR status <> closed_status;",
];

fn newer_schema() -> CvcoError {
    CvcoError::new(ErrorCode::ConfigInvalid).with_detail(
        "Base créée par une version plus récente.",
        "Database written by a newer version.",
    )
}

pub(super) fn migrate_sqlite(conn: &Connection) -> Db<()> {
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
        return Err(newer_schema());
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

/// Any number of instances may start at once on a fresh database: each migration runs in its
/// own transaction under one advisory lock, and reads the version again once it holds it.
pub(super) async fn migrate_pg(c: &mut Conn) -> Db<()> {
    // "cvco" in ASCII: the lock's id, the same for every instance.
    const LOCK: i64 = 0x6376_636f;
    loop {
        c.begin().await.map_err(db_error)?;
        c.execute("SELECT pg_advisory_xact_lock(?1)", &[V::I(LOCK)])
            .await
            .map_err(db_error)?;
        // Not CREATE TABLE IF NOT EXISTS: its notice would be logged at every start.
        c.batch(
            "DO $$ BEGIN
                 IF to_regclass('schema_version') IS NULL THEN
                     CREATE TABLE schema_version (version BIGINT NOT NULL);
                 END IF;
             END $$;
             INSERT INTO schema_version(version) SELECT 0
             WHERE NOT EXISTS (SELECT 1 FROM schema_version);",
        )
        .await
        .map_err(db_error)?;
        let version = c
            .query_one("SELECT version FROM schema_version", &[], |r| r.i64(0))
            .await
            .map_err(db_error)? as usize;
        if version > PG_MIGRATIONS.len() {
            c.rollback().await.map_err(db_error)?;
            return Err(newer_schema());
        }
        if version == PG_MIGRATIONS.len() {
            c.commit().await.map_err(db_error)?;
            return Ok(());
        }
        c.batch(PG_MIGRATIONS[version]).await.map_err(db_error)?;
        c.execute(
            "UPDATE schema_version SET version = ?1",
            &[V::I(version as i64 + 1)],
        )
        .await
        .map_err(db_error)?;
        c.commit().await.map_err(db_error)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The closings migration (schema version 10) on a database closed under the former rule (by authorization time): what
    /// a closing already counted starts as counted, the rest is left for the next closing.
    #[test]
    fn upgrading_keeps_closed_payments_closed_and_leaves_the_rest_to_the_next_closing() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE schema_version (version INTEGER NOT NULL)")
            .unwrap();
        for m in &MIGRATIONS[..9] {
            conn.execute_batch(m).unwrap();
        }
        conn.execute_batch(
            "INSERT INTO schema_version(version) VALUES (9);
             INSERT INTO closings(closed_at, totals, merchant_id) VALUES (1000, '{}', 'm1');
             INSERT INTO orders(order_ref, kind, lines, total_cents, created_at) VALUES
               ('o1', 'test', '[]', 5000, 900), ('o2', 'test', '[]', 3000, 1100),
               ('o3', 'test', '[]', 2500, 800);
             INSERT INTO payments(payment_id, order_ref, attempt, mode, channel, amount_cents,
                 create_call, create_input, status, authorized_cents, refunded_cents,
                 created_at, updated_at, authorized_at, merchant_id) VALUES
               ('before', 'o1', 'a', 'identifier', 'ecommerce', 5000, 'c', '{}', 'refunded',
                5000, 2000, 900, 1500, 950, 'm1'),
               ('after', 'o2', 'a', 'identifier', 'ecommerce', 3000, 'c', '{}', 'authorized',
                3000, 0, 1100, 1200, 1100, 'm1'),
               ('never', 'o3', 'a', 'identifier', 'ecommerce', 2500, 'c', '{}', 'authorized',
                2500, 0, 800, 800, 800, 'm2');",
        )
        .unwrap();
        migrate_sqlite(&conn).unwrap();
        assert_eq!(MIGRATIONS.len(), 10, "the closings migration is the last");
        let closed = |id: &str| -> (i64, i64, String, Option<i64>) {
            conn.query_row(
                "SELECT closed_authorized_cents, closed_refunded_cents, closed_status, closing_id
                 FROM payments WHERE payment_id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap()
        };
        // Authorized before m1's closing: counted then (its later refund too, as before).
        assert_eq!(closed("before"), (5000, 2000, "refunded".into(), Some(1)));
        // After it, or a merchant that never closed: for the next closing.
        assert_eq!(closed("after"), (0, 0, String::new(), None));
        assert_eq!(closed("never"), (0, 0, String::new(), None));
    }
}
