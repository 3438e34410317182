//! Merchants (tenants) and their reception points. Secrets are stored sealed only (the
//! `Keyring` of `secrets.rs` seals them before they reach this module).

use super::conn::{vals, Row, R};
use super::{db_error, Db, Store};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerchantRow {
    pub merchant_id: String,
    pub name: String,
    pub client_id: String,
    pub client_secret_sealed: String,
    pub notification_secret_sealed: String,
    pub min_amount_cents: i64,
    /// `None`: the ANCV shop's own setting.
    pub adjustable: Option<bool>,
    pub authorization_timeout_s: i64,
    /// `(shop_id, label)`, the main one first.
    pub reception_points: Vec<(String, String)>,
    pub updated_at: i64,
    /// The `merchants_version` of its last write (see [`Store::merchants_version`]).
    pub version: i64,
}

/// A merchant's settings as the manager saved them (`settings`: `MerchantSettings` JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsRow {
    pub merchant_id: String,
    pub settings: String,
    /// argon2 hash of the cancellation password; `None`: no password.
    pub cancel_password_hash: Option<String>,
    pub version: i64,
}

impl SettingsRow {
    /// From `SELECT merchant_id, settings, cancel_password_hash, version`.
    fn from_row(r: &Row) -> R<SettingsRow> {
        Ok(SettingsRow {
            merchant_id: r.string(0)?,
            settings: r.string(1)?,
            cancel_password_hash: r.opt_string(2)?,
            version: r.i64(3)?,
        })
    }
}

/// What a settings write does to the cancellation password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordChange {
    Keep,
    Remove,
    /// The new argon2 hash.
    Set(String),
}

/// Takes the next `merchants_version` inside the caller's transaction: the counter's row stays
/// locked until it commits, so versions become visible in the order they were taken.
async fn next_version(c: &mut super::Conn) -> R<i64> {
    c.query_one(
        "INSERT INTO counters(name, value) VALUES ('merchants_version', 1)
         ON CONFLICT(name) DO UPDATE SET value = counters.value + 1 RETURNING value",
        &[],
        |r| r.i64(0),
    )
    .await
}

impl MerchantRow {
    fn from_row(r: &Row) -> R<MerchantRow> {
        Ok(MerchantRow {
            merchant_id: r.string("merchant_id")?,
            name: r.string("name")?,
            client_id: r.string("client_id")?,
            client_secret_sealed: r.string("client_secret_sealed")?,
            notification_secret_sealed: r.string("notification_secret_sealed")?,
            min_amount_cents: r.i64("min_amount_cents")?,
            // Text, so both backends read it the same way.
            adjustable: r.opt_string("adjustable")?.map(|v| v == "true"),
            authorization_timeout_s: r.i64("authorization_timeout_s")?,
            reception_points: Vec::new(),
            updated_at: r.i64("updated_at")?,
            version: r.i64("version")?,
        })
    }
}

impl Store {
    /// Every merchant with its reception points, by id.
    pub async fn merchants(&self) -> Db<Vec<MerchantRow>> {
        let mut c = self.conn().await?;
        let mut merchants = c
            .query(
                "SELECT * FROM merchants ORDER BY merchant_id",
                &[],
                MerchantRow::from_row,
            )
            .await
            .map_err(db_error)?;
        let points = c
            .query(
                "SELECT merchant_id, shop_id, label FROM reception_points ORDER BY merchant_id, position",
                &[],
                |r| Ok((r.string(0)?, r.string(1)?, r.string(2)?)),
            )
            .await
            .map_err(db_error)?;
        for (merchant_id, shop_id, label) in points {
            if let Ok(i) = merchants.binary_search_by(|m| m.merchant_id.cmp(&merchant_id)) {
                merchants[i].reception_points.push((shop_id, label));
            }
        }
        Ok(merchants)
    }

    pub async fn merchant(&self, merchant_id: &str) -> Db<Option<MerchantRow>> {
        let mut c = self.conn().await?;
        let Some(mut m) = c
            .query_opt(
                "SELECT * FROM merchants WHERE merchant_id = ?1",
                &vals![merchant_id],
                MerchantRow::from_row,
            )
            .await
            .map_err(db_error)?
        else {
            return Ok(None);
        };
        m.reception_points = c
            .query(
                "SELECT shop_id, label FROM reception_points WHERE merchant_id = ?1 ORDER BY position",
                &vals![merchant_id],
                |r| Ok((r.string(0)?, r.string(1)?)),
            )
            .await
            .map_err(db_error)?;
        Ok(Some(m))
    }

    /// The newest change of any merchant (hosts reload their merchants when it moves).
    pub async fn merchants_changed_at(&self) -> Db<i64> {
        let mut c = self.conn().await?;
        c.query_one(
            "SELECT COALESCE(MAX(updated_at), 0) FROM merchants",
            &[],
            |r| r.i64(0),
        )
        .await
        .map_err(db_error)
    }

    /// The newest merchant or settings write, a number that only grows (hosts reload the
    /// merchants newer than the one they saw).
    pub async fn merchants_version(&self) -> Db<i64> {
        let mut c = self.conn().await?;
        c.query_one(
            "SELECT COALESCE(MAX(value), 0) FROM counters WHERE name = 'merchants_version'",
            &[],
            |r| r.i64(0),
        )
        .await
        .map_err(db_error)
    }

    /// Every merchant's saved settings.
    pub async fn settings_rows(&self) -> Db<Vec<SettingsRow>> {
        let mut c = self.conn().await?;
        c.query(
            "SELECT merchant_id, settings, cancel_password_hash, version FROM merchant_settings",
            &[],
            SettingsRow::from_row,
        )
        .await
        .map_err(db_error)
    }

    /// Saves a merchant's settings (JSON) and what to do with its cancellation password;
    /// answers the row as stored.
    pub async fn put_settings(
        &self,
        merchant_id: &str,
        settings: &str,
        password: &PasswordChange,
        now: i64,
    ) -> Db<SettingsRow> {
        let mut c = self.conn().await?;
        c.begin().await.map_err(db_error)?;
        let version = next_version(&mut c).await.map_err(db_error)?;
        let (set, hash) = match password {
            PasswordChange::Keep => (false, None),
            PasswordChange::Remove => (true, None),
            PasswordChange::Set(h) => (true, Some(h.as_str())),
        };
        let row = c
            .query_one(
                "INSERT INTO merchant_settings(merchant_id, settings, cancel_password_hash, version, updated_at)
                 VALUES (?1, ?2, ?4, ?5, ?6)
                 ON CONFLICT(merchant_id) DO UPDATE SET settings = ?2,
                    cancel_password_hash = CASE WHEN ?3 = 1 THEN ?4
                        ELSE merchant_settings.cancel_password_hash END,
                    version = ?5, updated_at = ?6
                 RETURNING merchant_id, settings, cancel_password_hash, version",
                &vals![merchant_id, settings, set as i64, hash, version, now],
                SettingsRow::from_row,
            )
            .await
            .map_err(db_error)?;
        c.commit().await.map_err(db_error)?;
        Ok(row)
    }

    /// Creates the merchant and its reception points in one transaction; false when the id
    /// or one of the shop ids is taken (nothing written then).
    pub async fn insert_merchant(&self, m: &MerchantRow, now: i64) -> Db<bool> {
        let mut c = self.conn().await?;
        c.begin().await.map_err(db_error)?;
        let adjustable = m.adjustable.map(|a| a.to_string());
        let version = next_version(&mut c).await.map_err(db_error)?;
        let n = c
            .execute(
                "INSERT INTO merchants(merchant_id, name, client_id, client_secret_sealed,
                    notification_secret_sealed, min_amount_cents, adjustable,
                    authorization_timeout_s, created_at, updated_at, version)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10)
                 ON CONFLICT(merchant_id) DO NOTHING",
                &vals![
                    &m.merchant_id,
                    &m.name,
                    &m.client_id,
                    &m.client_secret_sealed,
                    &m.notification_secret_sealed,
                    m.min_amount_cents,
                    adjustable.as_deref(),
                    m.authorization_timeout_s,
                    now,
                    version
                ],
            )
            .await
            .map_err(db_error)?;
        if n != 1 {
            c.rollback().await.map_err(db_error)?;
            return Ok(false);
        }
        for (i, (shop_id, label)) in m.reception_points.iter().enumerate() {
            let n = c
                .execute(
                    "INSERT INTO reception_points(shop_id, merchant_id, label, position)
                     VALUES (?1, ?2, ?3, ?4) ON CONFLICT(shop_id) DO NOTHING",
                    &vals![shop_id, &m.merchant_id, label, i as i64],
                )
                .await
                .map_err(db_error)?;
            if n != 1 {
                c.rollback().await.map_err(db_error)?;
                return Ok(false);
            }
        }
        c.commit().await.map_err(db_error)?;
        Ok(true)
    }

    /// Replaces what is given (sealed secrets, settings); false for an unknown merchant.
    pub async fn update_merchant(
        &self,
        merchant_id: &str,
        client_secret_sealed: Option<&str>,
        notification_secret_sealed: Option<&str>,
        now: i64,
    ) -> Db<bool> {
        let mut c = self.conn().await?;
        c.begin().await.map_err(db_error)?;
        let version = next_version(&mut c).await.map_err(db_error)?;
        let n = c
            .execute(
                "UPDATE merchants SET
                    client_secret_sealed = COALESCE(?2, client_secret_sealed),
                    notification_secret_sealed = COALESCE(?3, notification_secret_sealed),
                    updated_at = ?4, version = ?5
                 WHERE merchant_id = ?1",
                &vals![
                    merchant_id,
                    client_secret_sealed,
                    notification_secret_sealed,
                    now,
                    version
                ],
            )
            .await
            .map_err(db_error)?;
        c.commit().await.map_err(db_error)?;
        Ok(n == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, shops: &[&str]) -> MerchantRow {
        MerchantRow {
            merchant_id: id.into(),
            name: format!("Camping {id}"),
            client_id: format!("client-{id}"),
            client_secret_sealed: format!("cvco1.k.sealed-{id}"),
            notification_secret_sealed: format!("cvco1.k.sealed-n-{id}"),
            min_amount_cents: 2000,
            adjustable: Some(false),
            authorization_timeout_s: 180,
            reception_points: shops
                .iter()
                .map(|s| (s.to_string(), String::new()))
                .collect(),
            updated_at: 0,
            version: 0,
        }
    }

    #[tokio::test]
    async fn merchants_are_stored_with_their_points_and_a_taken_shop_id_writes_nothing() {
        let (s, _db) = crate::store::testing::store().await;
        assert_eq!(s.merchants_changed_at().await.unwrap(), 0);
        assert!(s
            .insert_merchant(&row("a", &["S-1", "S-2"]), 10)
            .await
            .unwrap());
        assert!(
            !s.insert_merchant(&row("a", &["S-9"]), 11).await.unwrap(),
            "same id"
        );
        // Another merchant claiming S-2: refused as a whole (no merchant row left behind).
        assert!(!s
            .insert_merchant(&row("b", &["S-3", "S-2"]), 12)
            .await
            .unwrap());
        assert!(s.merchant("b").await.unwrap().is_none());
        assert!(s.insert_merchant(&row("b", &["S-3"]), 13).await.unwrap());
        let all = s.merchants().await.unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].reception_points.len(), 2);
        assert_eq!(all[0].reception_points[0].0, "S-1", "main point first");
        assert_eq!(all[0].adjustable, Some(false));
        assert_eq!(s.merchants_changed_at().await.unwrap(), 13);
        assert!(s
            .update_merchant("a", Some("cvco1.k.new"), None, 20)
            .await
            .unwrap());
        assert!(!s.update_merchant("zz", Some("x"), None, 21).await.unwrap());
        let a = s.merchant("a").await.unwrap().unwrap();
        assert_eq!(
            (
                a.client_secret_sealed.as_str(),
                a.notification_secret_sealed.as_str()
            ),
            ("cvco1.k.new", "cvco1.k.sealed-n-a")
        );
        assert_eq!(s.merchants_changed_at().await.unwrap(), 20);
    }
}

#[cfg(test)]
mod version_tests {
    use super::*;

    #[tokio::test]
    async fn writes_in_the_same_millisecond_still_move_the_version_another_instance_reads() {
        let (s, _db) = crate::store::testing::store().await;
        let seen = s.merchants_version().await.unwrap();
        let now = 1_000;
        let a = s
            .put_settings("default", "{}", &PasswordChange::Set("h1".into()), now)
            .await
            .unwrap();
        assert!(a.version > seen);
        // Same millisecond: an updated_at watermark would miss this one; the version does not.
        let b = s
            .put_settings("default", r#"{"tickets":2}"#, &PasswordChange::Keep, now)
            .await
            .unwrap();
        assert!(b.version > a.version);
        assert_eq!(s.merchants_version().await.unwrap(), b.version);
        assert_eq!(b.cancel_password_hash.as_deref(), Some("h1"), "kept");
        let c = s
            .put_settings("default", "{}", &PasswordChange::Remove, now)
            .await
            .unwrap();
        assert_eq!(c.cancel_password_hash, None);
        let rows = s.settings_rows().await.unwrap();
        assert_eq!(rows, vec![c.clone()]);
        // A merchant write moves the same counter.
        let mut m = tests_row("m1");
        m.reception_points = vec![("S-V".into(), String::new())];
        assert!(s.insert_merchant(&m, now).await.unwrap());
        let v = s.merchants_version().await.unwrap();
        assert!(v > c.version);
        assert_eq!(s.merchant("m1").await.unwrap().unwrap().version, v);
        assert!(s.update_merchant("m1", Some("x"), None, now).await.unwrap());
        assert!(s.merchants_version().await.unwrap() > v);
    }

    fn tests_row(id: &str) -> MerchantRow {
        MerchantRow {
            merchant_id: id.into(),
            name: id.into(),
            client_id: format!("client-{id}"),
            client_secret_sealed: "cvco1.k.s".into(),
            notification_secret_sealed: "cvco1.k.n".into(),
            min_amount_cents: 2000,
            adjustable: None,
            authorization_timeout_s: 180,
            reception_points: Vec::new(),
            updated_at: 0,
            version: 0,
        }
    }
}
