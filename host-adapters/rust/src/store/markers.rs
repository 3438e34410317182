//! Once-only markers in `counters` shared by every instance on the database: the first insert of
//! a name wins, a concurrent or later one does nothing.

use super::conn::vals;
use super::{db_error, Db, Store};

/// The void of a refused partial authorization was asked (or is being asked).
pub const VOID_ASKED: i64 = 1;
/// ANCV refused that void: the money stays held, the reception settles it.
pub const VOID_REFUSED: i64 = 2;

fn void_marker(payment_id: &str) -> String {
    format!("refuse-partial:{payment_id}")
}

impl Store {
    /// Claims the void of a refused partial authorization: `true` for the first caller only.
    pub async fn claim_partial_void(&self, payment_id: &str) -> Db<bool> {
        let mut c = self.conn().await?;
        c.execute(
            "INSERT INTO counters(name, value) VALUES (?1, ?2) ON CONFLICT(name) DO NOTHING",
            &vals![&void_marker(payment_id), VOID_ASKED],
        )
        .await
        .map(|n| n == 1)
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

    /// The marker of the payment's refused-partial void (`VOID_ASKED`, `VOID_REFUSED`), if any.
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
