//! Processed notification ids and the last sequence seen per ANCV object.

use super::{Db, Store};
use rusqlite::{params, OptionalExtension};

impl Store {
    /// Records a notification; `false` when its event id was seen or its object already had
    /// this sequence or a later one.
    pub fn record_notification(
        &self,
        event_id: &str,
        object_id: &str,
        sequence: i64,
        now: i64,
    ) -> Db<bool> {
        self.tx(|tx| {
            let inserted = tx.execute(
                "INSERT INTO notifications(event_id, received_at) VALUES (?1, ?2)
                 ON CONFLICT(event_id) DO NOTHING",
                params![event_id, now],
            )?;
            if inserted == 0 {
                return Ok(false);
            }
            let known: Option<i64> = tx
                .query_row(
                    "SELECT sequence FROM notified_objects WHERE object_id = ?1",
                    params![object_id],
                    |r| r.get(0),
                )
                .optional()?;
            if known.is_some_and(|k| k >= sequence) {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO notified_objects(object_id, sequence) VALUES (?1, ?2)
                 ON CONFLICT(object_id) DO UPDATE SET sequence = excluded.sequence",
                params![object_id, sequence],
            )?;
            Ok(true)
        })
    }
}
