//! Processed notification ids and the last sequence seen per ANCV object.

use super::conn::vals;
use super::{db_error, Db, Store};

impl Store {
    /// Records a notification; `false` when its event id was seen or its object already had
    /// this sequence or a later one.
    pub async fn record_notification(
        &self,
        event_id: &str,
        object_id: &str,
        sequence: i64,
        now: i64,
    ) -> Db<bool> {
        let mut c = self.conn().await?;
        c.begin().await.map_err(db_error)?;
        let inserted = c
            .execute(
                "INSERT INTO notifications(event_id, received_at) VALUES (?1, ?2)
                 ON CONFLICT(event_id) DO NOTHING",
                &vals![event_id, now],
            )
            .await
            .map_err(db_error)?;
        if inserted == 0 {
            c.rollback().await.map_err(db_error)?;
            return Ok(false);
        }
        // Only a later sequence moves the object on (one statement: two instances may race).
        let moved = c
            .execute(
                "INSERT INTO notified_objects(object_id, sequence) VALUES (?1, ?2)
                 ON CONFLICT(object_id) DO UPDATE SET sequence = excluded.sequence
                 WHERE notified_objects.sequence < excluded.sequence",
                &vals![object_id, sequence],
            )
            .await
            .map_err(db_error)?;
        c.commit().await.map_err(db_error)?;
        Ok(moved == 1)
    }
}
