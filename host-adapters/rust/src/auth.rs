//! Back-office accounts (argon2 hashes), sessions (random tokens, stored hashed), CSRF tokens,
//! login throttling, and the shopper's cookie.

use crate::store::{Store, UserRow};
use crate::util::{now_ms, random_token, sha256_hex};
use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use axum::http::HeaderMap;
use cvco_core::{CvcoError, ErrorCode};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub const SHOP_COOKIE: &str = "cvco_shop";
pub const BO_COOKIE: &str = "cvco_bo";
/// Wrong passwords from one client for one username before that pair waits out the window.
const MAX_PAIR_FAILURES: u32 = 5;
/// Wrong passwords from one client, whatever the usernames (password spraying).
const MAX_CLIENT_FAILURES: u32 = 20;
const FAILURE_WINDOW_MS: i64 = 5 * 60 * 1000;
/// Logins waiting for an argon2 slot beyond which a new one is refused at once.
const MAX_WAITING_LOGINS: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Permissions {
    #[serde(default)]
    pub moto: bool,
    #[serde(default)]
    pub counter: bool,
    #[serde(default)]
    pub cancel: bool,
    #[serde(default)]
    pub refund: bool,
    #[serde(default)]
    pub close_day: bool,
    #[serde(default)]
    pub manage_sellers: bool,
}

impl Permissions {
    pub const ALL: Permissions = Permissions {
        moto: true,
        counter: true,
        cancel: true,
        refund: true,
        close_day: true,
        manage_sellers: true,
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Perm {
    Moto,
    Counter,
    Cancel,
    Refund,
    CloseDay,
    ManageSellers,
}

#[derive(Debug, Clone)]
pub struct BoSession {
    pub username: String,
    /// The merchant whose data this session sees.
    pub merchant_id: String,
    pub role: String,
    pub permissions: Permissions,
    pub csrf: String,
}

impl BoSession {
    pub fn can(&self, p: Perm) -> bool {
        let x = &self.permissions;
        match p {
            Perm::Moto => x.moto,
            Perm::Counter => x.counter,
            Perm::Cancel => x.cancel,
            Perm::Refund => x.refund,
            Perm::CloseDay => x.close_day,
            Perm::ManageSellers => x.manage_sellers,
        }
    }

    pub fn require(&self, p: Perm) -> Result<(), CvcoError> {
        if self.can(p) {
            Ok(())
        } else {
            Err(CvcoError::new(ErrorCode::Forbidden).with_detail(
                "Le responsable ne vous a pas donné ce droit.",
                "The manager has not given you this permission.",
            ))
        }
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "username": self.username,
            "role": self.role,
            "permissions": self.permissions,
            "csrf_token": self.csrf,
        })
    }
}

pub struct Auth {
    argon: Argon2<'static>,
    /// Failure counts and window start, keyed `c:<client>` and `u:<client>|<username>`: a user is
    /// never locked out globally, only the client that typed the wrong passwords.
    failures: Mutex<HashMap<String, (u32, i64)>>,
    /// Argon2 runs at most this many at a time (each holds `m_kib` of memory).
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
    running: AtomicUsize,
    peak: AtomicUsize,
    /// Argon2 work memory, allocated once per slot and reused: a fresh 19 MiB allocation per
    /// login is kept by glibc after the first (its mmap threshold rises), so RSS grew by
    /// `m_kib` per login (48 logins: 79 → 460 MiB even two at a time).
    memory: Mutex<Vec<Vec<Block>>>,
    /// Verified against when the user is unknown, so both answers take the same time.
    dummy_hash: String,
    pub secure_cookies: bool,
    pub session_ttl_ms: i64,
}

impl Auth {
    pub fn new(m_kib: u32, secure_cookies: bool, session_ttl_s: u64, concurrency: usize) -> Auth {
        let params = Params::new(m_kib.max(8), 2, 1, None).unwrap_or_default();
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let mut auth = Auth {
            argon,
            failures: Mutex::new(HashMap::new()),
            slots: Arc::new(Semaphore::new(concurrency.max(1))),
            waiting: AtomicUsize::new(0),
            running: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            memory: Mutex::new(Vec::new()),
            dummy_hash: String::new(),
            secure_cookies,
            session_ttl_ms: session_ttl_s as i64 * 1000,
        };
        auth.dummy_hash = auth.hash("not-a-password").unwrap_or_default();
        auth
    }

    pub fn hash(&self, password: &str) -> Result<String, CvcoError> {
        let salt = SaltString::encode_b64(random_token(16).as_bytes()).map_err(|_| internal())?;
        let _running = self.running();
        self.argon
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|_| internal())
    }

    pub(crate) fn verify(&self, password: &str, hash: &str) -> bool {
        let _running = self.running();
        let Ok(h) = PasswordHash::new(hash) else {
            return false;
        };
        let (Some(salt), Some(expected)) = (h.salt, h.hash) else {
            return false;
        };
        let (Ok(algorithm), Ok(params)) = (Algorithm::try_from(h.algorithm), Params::try_from(&h))
        else {
            return false;
        };
        let version = match h.version.map(Version::try_from) {
            None => Version::default(),
            Some(Ok(v)) => v,
            Some(Err(_)) => return false,
        };
        let mut salt_buf = [0u8; 64];
        let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
            return false;
        };
        let n = params.block_count();
        let mut memory = self
            .memory
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop()
            .unwrap_or_default();
        if memory.len() < n {
            memory.resize(n, Block::default());
        }
        let mut out = vec![0u8; expected.len()];
        let done = Argon2::new(algorithm, version, params)
            .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, &mut memory[..n])
            .is_ok();
        // What is left there derives from the password: wiped before the next login uses it.
        memory.iter_mut().for_each(|b| *b = Block::default());
        self.memory
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(memory);
        let e = expected.as_bytes();
        done && out.len() == e.len()
            && out.iter().zip(e).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }

    fn running(&self) -> Running<'_> {
        let n = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(n, Ordering::SeqCst);
        Running(&self.running)
    }

    /// The most argon2 computations seen at the same time since start-up.
    pub fn peak_argon2(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }

    /// An argon2 slot: waits for one, or refuses at once when too many are already waiting (a
    /// flood of logins must not queue unbounded work).
    pub async fn slot(&self) -> Result<OwnedSemaphorePermit, CvcoError> {
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= MAX_WAITING_LOGINS {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(too_many());
        }
        let permit = self.slots.clone().acquire_owned().await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        permit.map_err(|_| internal())
    }

    /// Refuses a login the client may not try now (before any argon2 work).
    pub fn throttled(&self, client: &str, username: &str) -> Result<(), CvcoError> {
        let now = now_ms();
        let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        // Expired entries are swept now and then, not on every call (a flood from many addresses).
        if f.len() > 4096 {
            f.retain(|_, (_, since)| now - *since <= FAILURE_WINDOW_MS);
        }
        let over = |k: &str, max: u32| {
            f.get(k)
                .is_some_and(|(n, since)| now - since <= FAILURE_WINDOW_MS && *n >= max)
        };
        if over(&client_key(client), MAX_CLIENT_FAILURES)
            || over(&pair_key(client, username), MAX_PAIR_FAILURES)
        {
            return Err(too_many());
        }
        Ok(())
    }

    /// Creates the account unless it exists (demo accounts from the configuration; at start-up
    /// only, so its one hash runs in place).
    pub async fn ensure_user(
        &self,
        store: &Store,
        username: &str,
        password: &str,
        role: &str,
        permissions: Permissions,
    ) -> Result<(), CvcoError> {
        if store.user(username).await?.is_some() {
            return Ok(());
        }
        let hash = self.hash(password)?;
        let permissions = serde_json::to_string(&permissions).unwrap_or_default();
        store
            .insert_user(username, role, &hash, &permissions, now_ms())
            .await?;
        Ok(())
    }

    /// Checks the password of `user` (read beforehand; argon2, so on the blocking pool);
    /// answers its role and permissions. `client` is who is asking (its IP address):
    /// throttling counts per client and per (client, username), so a stranger's wrong
    /// passwords never lock the real user out.
    pub fn check_password(
        &self,
        user: Option<UserRow>,
        client: &str,
        username: &str,
        password: &str,
    ) -> Result<(String, String), CvcoError> {
        let now = now_ms();
        self.throttled(client, username)?;
        let user = user.map(|u| (u.role, u.password_hash, u.permissions, u.active));
        let ok = match &user {
            Some((_, hash, _, active)) => self.verify(password, hash) && *active,
            None => {
                let _ = self.verify(password, &self.dummy_hash);
                false
            }
        };
        let Some((role, _, permissions, _)) = user.filter(|_| ok) else {
            let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
            let mut count = |k: String| {
                let e = f.entry(k).or_insert((0, now));
                if now - e.1 > FAILURE_WINDOW_MS {
                    *e = (0, now);
                }
                e.0 += 1;
                e.0
            };
            count(client_key(client));
            let n = count(pair_key(client, username));
            tracing::info!(failures = n, client, "back-office login refused");
            return Err(CvcoError::new(ErrorCode::Unauthorized).with_detail(
                "Identifiant ou mot de passe incorrect.",
                "Wrong username or password.",
            ));
        };
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&pair_key(client, username));
        Ok((role, permissions))
    }

    /// A new session for a user whose password was checked: its token and the session.
    pub async fn open_session(
        &self,
        store: &Store,
        username: &str,
        role: String,
        permissions: &str,
    ) -> Result<(String, BoSession), CvcoError> {
        let now = now_ms();
        let token = random_token(32);
        let csrf = random_token(24);
        store
            .insert_session(
                &sha256_hex(&token),
                username,
                &csrf,
                now,
                now + self.session_ttl_ms,
            )
            .await?;
        tracing::info!(username, "back-office login");
        let permissions = permissions_for(&role, permissions);
        let merchant_id = store
            .user(username)
            .await?
            .map_or_else(|| "default".into(), |u| u.merchant_id);
        Ok((
            token,
            BoSession {
                username: username.into(),
                merchant_id,
                role,
                permissions,
                csrf,
            },
        ))
    }

    pub async fn session(
        &self,
        store: &Store,
        headers: &HeaderMap,
    ) -> Result<Option<BoSession>, CvcoError> {
        let Some(token) = cookie(headers, BO_COOKIE) else {
            return Ok(None);
        };
        let row = store.session(&sha256_hex(&token), now_ms()).await?;
        Ok(row.map(|u| BoSession {
            permissions: permissions_for(&u.role, &u.permissions),
            merchant_id: u.merchant_id,
            username: u.username,
            role: u.role,
            csrf: u.csrf,
        }))
    }

    pub async fn logout(&self, store: &Store, headers: &HeaderMap) -> Result<(), CvcoError> {
        if let Some(token) = cookie(headers, BO_COOKIE) {
            store.delete_session(&sha256_hex(&token)).await?;
        }
        Ok(())
    }

    pub fn cookie_header(
        &self,
        name: &str,
        value: &str,
        same_site: &str,
        max_age_s: Option<i64>,
    ) -> String {
        let mut s = format!("{name}={value}; Path=/; HttpOnly; SameSite={same_site}");
        if let Some(a) = max_age_s {
            s.push_str(&format!("; Max-Age={a}"));
        }
        if self.secure_cookies {
            s.push_str("; Secure");
        }
        s
    }
}

fn permissions_for(role: &str, stored: &str) -> Permissions {
    if role == "manager" {
        Permissions::ALL
    } else {
        serde_json::from_str(stored).unwrap_or_default()
    }
}

fn internal() -> CvcoError {
    CvcoError::new(ErrorCode::Internal)
}

fn too_many() -> CvcoError {
    CvcoError::new(ErrorCode::TooManyAttempts).retryable(true)
}

fn client_key(client: &str) -> String {
    format!("c:{client}")
}

fn pair_key(client: &str, username: &str) -> String {
    format!("u:{client}|{}", username.trim().to_lowercase())
}

/// Counts one running argon2 computation until dropped.
struct Running<'a>(&'a AtomicUsize);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Constant-time comparison of the CSRF header with the session's token.
pub fn check_csrf(session: &BoSession, headers: &HeaderMap) -> Result<(), CvcoError> {
    let given = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let a = given.as_bytes();
    let b = session.csrf.as_bytes();
    let same = a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0;
    if same {
        Ok(())
    } else {
        Err(CvcoError::new(ErrorCode::Forbidden)
            .with_detail(
                "Jeton CSRF absent ou invalide.",
                "Missing or invalid CSRF token.",
            )
            .with_field("X-CSRF-Token"))
    }
}

pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, v)| {
            *k == name
                && !v.is_empty()
                && v.len() <= 128
                && v.bytes().all(|b| b.is_ascii_hexdigit())
        })
        .map(|(_, v)| v.to_string())
}

/// The shopper's identity: the hash of their cookie (orders store that), and a new cookie to set
/// when they had none.
pub fn shop_owner(auth: &Auth, headers: &HeaderMap) -> (String, Option<String>) {
    match cookie(headers, SHOP_COOKIE) {
        Some(token) => (sha256_hex(&token), None),
        None => {
            let token = random_token(32);
            (
                sha256_hex(&token),
                Some(auth.cookie_header(SHOP_COOKIE, &token, "Lax", Some(30 * 24 * 3600))),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooled_memory_verification_accepts_only_the_right_password() {
        let auth = Auth::new(64, false, 60, 1);
        let h = auth.hash("correct horse").unwrap();
        assert!(auth.verify("correct horse", &h));
        assert!(!auth.verify("correct horsf", &h));
        assert!(!auth.verify("", &h));
        // A hash made elsewhere, with other parameters (more memory than the pooled buffer).
        let other = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(256, 3, 1, None).unwrap(),
        );
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let h2 = other
            .hash_password(b"s3cret-pass", &salt)
            .unwrap()
            .to_string();
        assert!(auth.verify("s3cret-pass", &h2));
        assert!(!auth.verify("s3cret-pasS", &h2));
        assert!(auth.verify("correct horse", &h), "the buffer is reused");
        assert!(!auth.verify("x", "not a phc string"));
        assert_eq!(auth.memory.lock().unwrap().len(), 1, "one buffer per slot");
    }
}
