//! Back-office users (argon2id hashes) and their sessions (token hashes only).

use super::conn::{vals, Row, R};
use super::{db_error, Db, Store};

#[derive(Debug, Clone)]
pub struct UserRow {
    pub username: String,
    pub role: String,
    pub password_hash: String,
    /// JSON of `auth::Permissions`.
    pub permissions: String,
    pub active: bool,
    /// The merchant whose data the user sees (never another's).
    pub merchant_id: String,
}

impl UserRow {
    fn from_row(r: &Row) -> R<UserRow> {
        Ok(UserRow {
            username: r.string("username")?,
            role: r.string("role")?,
            password_hash: r.string("password_hash")?,
            permissions: r.string("permissions")?,
            active: r.bool("active")?,
            merchant_id: r.string("merchant_id")?,
        })
    }
}

/// The user behind a live session.
#[derive(Debug, Clone)]
pub struct SessionUser {
    pub username: String,
    pub csrf: String,
    pub role: String,
    pub permissions: String,
    pub merchant_id: String,
}

impl Store {
    /// Moves a user to a merchant (a new user belongs to `default`); false for an unknown user.
    pub async fn set_user_merchant(&self, username: &str, merchant_id: &str) -> Db<bool> {
        let mut c = self.conn().await?;
        let n = c
            .execute(
                "UPDATE users SET merchant_id = ?2 WHERE username = ?1",
                &vals![username, merchant_id],
            )
            .await
            .map_err(db_error)?;
        Ok(n == 1)
    }

    pub async fn user(&self, username: &str) -> Db<Option<UserRow>> {
        let mut c = self.conn().await?;
        c.query_opt(
            "SELECT * FROM users WHERE username = ?1",
            &vals![username],
            UserRow::from_row,
        )
        .await
        .map_err(db_error)
    }

    pub async fn users(&self) -> Db<Vec<UserRow>> {
        let mut c = self.conn().await?;
        c.query(
            "SELECT * FROM users ORDER BY role, username",
            &[],
            UserRow::from_row,
        )
        .await
        .map_err(db_error)
    }

    /// Creates a user of the merchant `default` unless the name is taken; answers whether it
    /// was created.
    pub async fn insert_user(
        &self,
        username: &str,
        role: &str,
        password_hash: &str,
        permissions: &str,
        now: i64,
    ) -> Db<bool> {
        self.insert_user_for("default", username, role, password_hash, permissions, now)
            .await
    }

    /// Creates a user of `merchant_id` (in the same statement: never another's, even for a
    /// moment) unless the name is taken; answers whether it was created.
    pub async fn insert_user_for(
        &self,
        merchant_id: &str,
        username: &str,
        role: &str,
        password_hash: &str,
        permissions: &str,
        now: i64,
    ) -> Db<bool> {
        let mut c = self.conn().await?;
        let n = c
            .execute(
                "INSERT INTO users(username, role, password_hash, permissions, active, created_at, merchant_id)
                 VALUES (?1, ?2, ?3, ?4, TRUE, ?5, ?6) ON CONFLICT(username) DO NOTHING",
                &vals![username, role, password_hash, permissions, now, merchant_id],
            )
            .await
            .map_err(db_error)?;
        Ok(n == 1)
    }

    /// Changes what is given, in one transaction; a new password or a deactivation ends the
    /// user's sessions.
    pub async fn update_user(
        &self,
        username: &str,
        permissions: Option<&str>,
        password_hash: Option<&str>,
        active: Option<bool>,
    ) -> Db<()> {
        let mut c = self.conn().await?;
        c.begin().await.map_err(db_error)?;
        if let Some(p) = permissions {
            c.execute(
                "UPDATE users SET permissions = ?2 WHERE username = ?1",
                &vals![username, p],
            )
            .await
            .map_err(db_error)?;
        }
        if let Some(h) = password_hash {
            c.execute(
                "UPDATE users SET password_hash = ?2 WHERE username = ?1",
                &vals![username, h],
            )
            .await
            .map_err(db_error)?;
        }
        if let Some(a) = active {
            c.execute(
                "UPDATE users SET active = ?2 WHERE username = ?1",
                &vals![username, a],
            )
            .await
            .map_err(db_error)?;
        }
        if password_hash.is_some() || active == Some(false) {
            c.execute("DELETE FROM sessions WHERE username = ?1", &vals![username])
                .await
                .map_err(db_error)?;
        }
        c.commit().await.map_err(db_error)
    }

    /// A new back-office session (expired ones are dropped on the way).
    pub async fn insert_session(
        &self,
        token_hash: &str,
        username: &str,
        csrf: &str,
        now: i64,
        expires_at: i64,
    ) -> Db<()> {
        let mut c = self.conn().await?;
        c.begin().await.map_err(db_error)?;
        c.execute("DELETE FROM sessions WHERE expires_at <= ?1", &vals![now])
            .await
            .map_err(db_error)?;
        c.execute(
            "INSERT INTO sessions(token_hash, kind, username, csrf, created_at, expires_at)
             VALUES (?1, 'bo', ?2, ?3, ?4, ?5)",
            &vals![token_hash, username, csrf, now, expires_at],
        )
        .await
        .map_err(db_error)?;
        c.commit().await.map_err(db_error)
    }

    /// The live session of an active user.
    pub async fn session(&self, token_hash: &str, now: i64) -> Db<Option<SessionUser>> {
        let mut c = self.conn().await?;
        c.query_opt(
            "SELECT s.username, s.csrf, u.role, u.permissions, u.merchant_id FROM sessions s
             JOIN users u ON u.username = s.username
             WHERE s.token_hash = ?1 AND s.kind = 'bo' AND s.expires_at > ?2 AND u.active = TRUE",
            &vals![token_hash, now],
            |r| {
                Ok(SessionUser {
                    username: r.string(0)?,
                    csrf: r.string(1)?,
                    role: r.string(2)?,
                    permissions: r.string(3)?,
                    merchant_id: r.string(4)?,
                })
            },
        )
        .await
        .map_err(db_error)
    }

    pub async fn delete_session(&self, token_hash: &str) -> Db<()> {
        let mut c = self.conn().await?;
        c.execute(
            "DELETE FROM sessions WHERE token_hash = ?1",
            &vals![token_hash],
        )
        .await
        .map(|_| ())
        .map_err(db_error)
    }
}
