//! Leases: several instances on one database never poll, cancel or reconcile the same payment at
//! once. An instance claims payments for a while (`lease_owner`, `lease_until` in ms); rows being
//! claimed by another instance right now are skipped, never waited for (PostgreSQL's `FOR UPDATE
//! SKIP LOCKED`; SQLite has one instance and one writer, so a plain UPDATE); a killed instance's
//! leases simply expire.

use super::conn::vals;
use super::{db_error, Db, Store};

/// The claim, over the payments `{which}` selects (`?2` is now).
fn claim_sql(which: &str, skip_locked: bool) -> String {
    format!(
        "UPDATE payments SET lease_owner = ?1, lease_until = ?3
         WHERE payment_id IN (
             SELECT payment_id FROM payments
             WHERE ({which}) AND (lease_until IS NULL OR lease_until < ?2 OR lease_owner = ?1)
             LIMIT ?4{})
         RETURNING payment_id",
        if skip_locked {
            " FOR UPDATE SKIP LOCKED"
        } else {
            ""
        }
    )
}

/// Non-final without news, or a follow-up to check.
const DUE: &str = "(final = FALSE AND next_poll_at <= ?2) OR recheck_at <= ?2";
/// Everything start-up must read again.
const OPEN: &str = "final = FALSE OR recheck_at IS NOT NULL";

impl Store {
    async fn claim(
        &self,
        which: &str,
        owner: &str,
        now: i64,
        lease_ms: i64,
        limit: i64,
    ) -> Db<Vec<String>> {
        let mut c = self.conn().await?;
        let sql = claim_sql(which, c.is_postgres());
        c.query(&sql, &vals![owner, now, now + lease_ms, limit], |r| {
            r.string(0)
        })
        .await
        .map_err(db_error)
    }

    /// Claims for `owner` up to `limit` payments due for a status read, until `now + lease_ms`.
    pub async fn claim_due(
        &self,
        owner: &str,
        now: i64,
        lease_ms: i64,
        limit: i64,
    ) -> Db<Vec<String>> {
        self.claim(DUE, owner, now, lease_ms, limit).await
    }

    /// Claims for `owner` every open payment no live instance holds (start-up reconciliation).
    pub async fn claim_open(&self, owner: &str, now: i64, lease_ms: i64) -> Db<Vec<String>> {
        self.claim(OPEN, owner, now, lease_ms, i64::MAX).await
    }

    /// Gives a payment back once read (another instance may take it at its next due time).
    pub async fn release(&self, owner: &str, payment_id: &str) -> Db<()> {
        let mut c = self.conn().await?;
        c.execute(
            "UPDATE payments SET lease_owner = NULL, lease_until = NULL
             WHERE payment_id = ?1 AND lease_owner = ?2",
            &vals![payment_id, owner],
        )
        .await
        .map(|_| ())
        .map_err(db_error)
    }
}
