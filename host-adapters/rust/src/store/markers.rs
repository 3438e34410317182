//! Once-only markers in `counters` shared by every instance on the database: the first insert of
//! a name wins, a concurrent or later one does nothing (a stale claim excepted: its holder died).

use super::conn::vals;
use super::{db_error, Db, Store};
use cvco_core::NormalizedStatus;

/// A claim of a refused partial authorization's void written before claims carried their time
/// (any value but `VOID_REFUSED` is a claim: the time it was taken, in ms; this one is stale).
pub const VOID_ASKED: i64 = 1;
/// ANCV refused that void: the money stays held, the reception settles it.
pub const VOID_REFUSED: i64 = 2;

fn void_marker(payment_id: &str) -> String {
    format!("refuse-partial:{payment_id}")
}

impl Store {
    /// Claims the void of a refused partial authorization at `now` (ms): `true` for one caller
    /// only, the first, or the one taking over a claim taken before `stale_before` (its holder
    /// died before recording the void's outcome). A refused void is never claimed again.
    pub async fn claim_partial_void(
        &self,
        payment_id: &str,
        now: i64,
        stale_before: i64,
    ) -> Db<bool> {
        let mut c = self.conn().await?;
        c.execute(
            "INSERT INTO counters(name, value) VALUES (?1, ?2) ON CONFLICT(name) DO UPDATE
                SET value = excluded.value
                WHERE counters.value <> ?3 AND counters.value < ?4",
            &vals![&void_marker(payment_id), now, VOID_REFUSED, stale_before],
        )
        .await
        .map(|n| n == 1)
        .map_err(db_error)
    }

    /// Up to `limit` of the merchant's final partial authorizations on `channel` recorded since
    /// `since` (ms) whose void nobody holds: no marker, or a claim taken before `stale_before`.
    /// Oldest first; one range of `payments_merchant_listed_status`, a primary-key probe each.
    pub async fn partials_without_void(
        &self,
        merchant_id: &str,
        channel: &str,
        since: i64,
        stale_before: i64,
        limit: i64,
    ) -> Db<Vec<String>> {
        let mut c = self.conn().await?;
        c.query(
            "SELECT p.payment_id FROM payments p
             WHERE p.merchant_id = ?1 AND p.status = ?2 AND p.transaction_id IS NOT NULL
               AND p.created_at >= ?3 AND p.channel = ?4 AND p.final = TRUE
               AND NOT EXISTS (SELECT 1 FROM counters c
                   WHERE c.name = 'refuse-partial:' || p.payment_id
                     AND (c.value = ?5 OR c.value >= ?6))
             ORDER BY p.created_at, p.payment_id
             LIMIT ?7",
            &vals![
                merchant_id,
                NormalizedStatus::PartiallyAuthorized.as_str(),
                since,
                channel,
                VOID_REFUSED,
                stale_before,
                limit
            ],
            |r| r.string(0),
        )
        .await
        .map_err(db_error)
    }

    /// Records how the claimed void ended: `Some(VOID_REFUSED)`, or `None` to give the claim
    /// back (its outcome is unknown: the next read of the payment may ask again).
    pub async fn settle_partial_void(&self, payment_id: &str, value: Option<i64>) -> Db<()> {
        let mut c = self.conn().await?;
        let name = void_marker(payment_id);
        let n = match value {
            Some(v) => {
                c.execute(
                    "UPDATE counters SET value = ?2 WHERE name = ?1",
                    &vals![&name, v],
                )
                .await
            }
            None => {
                c.execute("DELETE FROM counters WHERE name = ?1", &vals![&name])
                    .await
            }
        };
        n.map(|_| ()).map_err(db_error)
    }

    /// The marker of the payment's refused-partial void (a claim's time, `VOID_REFUSED`), if any.
    pub async fn partial_void(&self, payment_id: &str) -> Db<Option<i64>> {
        let mut c = self.conn().await?;
        c.query_opt(
            "SELECT value FROM counters WHERE name = ?1",
            &vals![&void_marker(payment_id)],
            |r| r.i64(0),
        )
        .await
        .map_err(db_error)
    }
}
