//! Back-office users (argon2id hashes) and their sessions (token hashes only).

use super::{Db, Store};
use rusqlite::{params, OptionalExtension, Row};

#[derive(Debug, Clone)]
pub struct UserRow {
    pub username: String,
    pub role: String,
    pub password_hash: String,
    /// JSON of `auth::Permissions`.
    pub permissions: String,
    pub active: bool,
}

impl UserRow {
    fn from_row(r: &Row) -> rusqlite::Result<UserRow> {
        Ok(UserRow {
            username: r.get("username")?,
            role: r.get("role")?,
            password_hash: r.get("password_hash")?,
            permissions: r.get("permissions")?,
            active: r.get::<_, i64>("active")? != 0,
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
}

impl Store {
    pub fn user(&self, username: &str) -> Db<Option<UserRow>> {
        self.with(|c| {
            c.query_row(
                "SELECT * FROM users WHERE username = ?1",
                params![username],
                UserRow::from_row,
            )
            .optional()
        })
    }

    pub fn users(&self) -> Db<Vec<UserRow>> {
        self.with(|c| {
            let mut s = c.prepare("SELECT * FROM users ORDER BY role, username")?;
            let rows = s.query_map([], UserRow::from_row)?;
            rows.collect()
        })
    }

    /// Creates the user unless the name is taken; answers whether it was created.
    pub fn insert_user(
        &self,
        username: &str,
        role: &str,
        password_hash: &str,
        permissions: &str,
        now: i64,
    ) -> Db<bool> {
        let n = self.with(|c| {
            c.execute(
                "INSERT INTO users(username, role, password_hash, permissions, active, created_at)
                 VALUES (?1, ?2, ?3, ?4, 1, ?5) ON CONFLICT(username) DO NOTHING",
                params![username, role, password_hash, permissions, now],
            )
        })?;
        Ok(n == 1)
    }

    /// Changes what is given, in one transaction; a new password or a deactivation ends the
    /// user's sessions.
    pub fn update_user(
        &self,
        username: &str,
        permissions: Option<&str>,
        password_hash: Option<&str>,
        active: Option<bool>,
    ) -> Db<()> {
        self.tx(|tx| {
            if let Some(p) = permissions {
                tx.execute(
                    "UPDATE users SET permissions = ?2 WHERE username = ?1",
                    params![username, p],
                )?;
            }
            if let Some(h) = password_hash {
                tx.execute(
                    "UPDATE users SET password_hash = ?2 WHERE username = ?1",
                    params![username, h],
                )?;
            }
            if let Some(a) = active {
                tx.execute(
                    "UPDATE users SET active = ?2 WHERE username = ?1",
                    params![username, a as i64],
                )?;
            }
            if password_hash.is_some() || active == Some(false) {
                tx.execute(
                    "DELETE FROM sessions WHERE username = ?1",
                    params![username],
                )?;
            }
            Ok(())
        })
    }

    /// A new back-office session (expired ones are dropped on the way).
    pub fn insert_session(
        &self,
        token_hash: &str,
        username: &str,
        csrf: &str,
        now: i64,
        expires_at: i64,
    ) -> Db<()> {
        self.tx(|tx| {
            tx.execute("DELETE FROM sessions WHERE expires_at <= ?1", params![now])?;
            tx.execute(
                "INSERT INTO sessions(token_hash, kind, username, csrf, created_at, expires_at)
                 VALUES (?1, 'bo', ?2, ?3, ?4, ?5)",
                params![token_hash, username, csrf, now, expires_at],
            )?;
            Ok(())
        })
    }

    /// The live session of an active user.
    pub fn session(&self, token_hash: &str, now: i64) -> Db<Option<SessionUser>> {
        self.with(|c| {
            c.prepare_cached(
                "SELECT s.username, s.csrf, u.role, u.permissions FROM sessions s
                 JOIN users u ON u.username = s.username
                 WHERE s.token_hash = ?1 AND s.kind = 'bo' AND s.expires_at > ?2 AND u.active = 1",
            )?
            .query_row(params![token_hash, now], |r| {
                Ok(SessionUser {
                    username: r.get(0)?,
                    csrf: r.get(1)?,
                    role: r.get(2)?,
                    permissions: r.get(3)?,
                })
            })
            .optional()
        })
    }

    pub fn delete_session(&self, token_hash: &str) -> Db<()> {
        self.with(|c| {
            c.execute(
                "DELETE FROM sessions WHERE token_hash = ?1",
                params![token_hash],
            )
            .map(|_| ())
        })
    }
}
