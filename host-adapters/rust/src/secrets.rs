//! Merchant secrets (client secret, notification secret) sealed at rest.
//!
//! ChaCha20-Poly1305 with a key from the environment (`CVCO_HOST_SECRET_KEY`, 32 bytes as 64 hex
//! digits or base64), a random 96-bit nonce per seal, and the merchant id as associated data, so
//! a sealed value copied to another merchant's row does not open. A sealed value reads
//! `cvco1.<key id>.<base64url(nonce ‖ ciphertext)>`; the key id (from the key's SHA-256) picks
//! the key among the current one and `CVCO_HOST_SECRET_KEY_PREVIOUS` (comma-separated), so keys
//! rotate: open with any, seal with the current, reseal what [`Keyring::needs_reseal`] names.

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use cvco_core::{CvcoError, ErrorCode};
use rand::RngCore;
use sha2::{Digest, Sha256};

pub const KEY_ENV: &str = "CVCO_HOST_SECRET_KEY";
pub const PREVIOUS_KEYS_ENV: &str = "CVCO_HOST_SECRET_KEY_PREVIOUS";
const PREFIX: &str = "cvco1";
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// A secret in clear, in memory only. `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The clear value, for the plugin's config only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Why a key could not be read or a sealed value could not be opened. Never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretError {
    /// The environment variable is unset or empty.
    MissingKey(&'static str),
    /// Not 32 bytes as hex or base64.
    BadKey { var: &'static str, reason: String },
    /// Not `cvco1.<key id>.<base64url>` or too short to hold a nonce and a tag.
    Malformed,
    /// Sealed with a key that is neither the current nor a previous one.
    UnknownKey(String),
    /// Wrong key, another merchant's value, or altered.
    Rejected,
}

impl std::fmt::Display for SecretError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretError::MissingKey(var) => write!(
                f,
                "{var} is not set: 32 random bytes as 64 hex digits or base64 \
                 (e.g. `openssl rand -hex 32`) seal the merchants' secrets"
            ),
            SecretError::BadKey { var, reason } => write!(f, "{var}: {reason}"),
            SecretError::Malformed => f.write_str("sealed secret malformed"),
            SecretError::UnknownKey(id) => write!(
                f,
                "sealed with key {id}, which is neither {KEY_ENV} nor in {PREVIOUS_KEYS_ENV}"
            ),
            SecretError::Rejected => f.write_str(
                "sealed secret rejected: wrong key, another merchant's value, or altered",
            ),
        }
    }
}

impl std::error::Error for SecretError {}

impl From<SecretError> for CvcoError {
    fn from(e: SecretError) -> CvcoError {
        let (code, field) = match &e {
            SecretError::MissingKey(var) => (ErrorCode::ConfigMissing, Some(*var)),
            SecretError::BadKey { var, .. } => (ErrorCode::ConfigInvalid, Some(*var)),
            _ => (ErrorCode::Internal, None),
        };
        let msg = e.to_string();
        let err = CvcoError::new(code).with_detail(&msg, &msg);
        match field {
            Some(f) => err.with_field(f),
            None => err,
        }
    }
}

struct Key {
    id: String,
    cipher: ChaCha20Poly1305,
}

impl Key {
    fn parse(var: &'static str, encoded: &str) -> Result<Key, SecretError> {
        let bytes = decode_key(encoded.trim())
            .ok_or_else(|| SecretError::BadKey {
                var,
                reason: "not hex or base64".into(),
            })
            .and_then(|b| {
                <[u8; 32]>::try_from(b.as_slice()).map_err(|_| SecretError::BadKey {
                    var,
                    reason: format!("{} bytes, 32 needed", b.len()),
                })
            })?;
        let digest = Sha256::digest(bytes);
        let id = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
        Ok(Key {
            id,
            cipher: ChaCha20Poly1305::new(&bytes.into()),
        })
    }
}

fn decode_key(s: &str) -> Option<Vec<u8>> {
    if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return (0..32)
            .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok())
            .collect();
    }
    let url = base64::engine::general_purpose::URL_SAFE;
    [&STANDARD, &STANDARD_NO_PAD, &url, &URL_SAFE_NO_PAD]
        .iter()
        .find_map(|e| e.decode(s).ok())
}

/// The current key (seals and opens) and previous keys (open only).
pub struct Keyring {
    current: Key,
    previous: Vec<Key>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.current.id)
            .field(
                "previous",
                &self.previous.iter().map(|k| &k.id).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Keyring {
    /// From `CVCO_HOST_SECRET_KEY` and the optional `CVCO_HOST_SECRET_KEY_PREVIOUS`.
    pub fn from_env() -> Result<Keyring, SecretError> {
        let current = std::env::var(KEY_ENV).unwrap_or_default();
        let previous = std::env::var(PREVIOUS_KEYS_ENV).unwrap_or_default();
        let previous: Vec<&str> = previous
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        Keyring::new(&current, &previous)
    }

    /// From encoded keys (64 hex digits or base64 of 32 bytes each).
    pub fn new(current: &str, previous: &[&str]) -> Result<Keyring, SecretError> {
        if current.trim().is_empty() {
            return Err(SecretError::MissingKey(KEY_ENV));
        }
        Ok(Keyring {
            current: Key::parse(KEY_ENV, current)?,
            previous: previous
                .iter()
                .map(|k| Key::parse(PREVIOUS_KEYS_ENV, k))
                .collect::<Result<_, _>>()?,
        })
    }

    /// The current key's id, as sealed values name it.
    pub fn key_id(&self) -> &str {
        &self.current.id
    }

    /// Seals `secret` for `merchant_id` with the current key and a fresh random nonce.
    pub fn seal(&self, merchant_id: &str, secret: &Secret) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ct = self
            .current
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: secret.0.as_bytes(),
                    aad: &aad(merchant_id),
                },
            )
            .expect("ChaCha20-Poly1305 encrypts any message under 256 GiB");
        let mut body = nonce.to_vec();
        body.extend_from_slice(&ct);
        format!(
            "{PREFIX}.{}.{}",
            self.current.id,
            URL_SAFE_NO_PAD.encode(body)
        )
    }

    /// Opens a value sealed for `merchant_id` by this keyring's current or a previous key.
    pub fn open(&self, merchant_id: &str, sealed: &str) -> Result<Secret, SecretError> {
        let (id, body) = parse(sealed)?;
        let key = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id == id)
            .ok_or_else(|| SecretError::UnknownKey(id.to_string()))?;
        let (nonce, ct) = body.split_at(NONCE_LEN);
        let clear = key
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: &aad(merchant_id),
                },
            )
            .map_err(|_| SecretError::Rejected)?;
        String::from_utf8(clear)
            .map(Secret)
            .map_err(|_| SecretError::Rejected)
    }

    /// Whether `sealed` was sealed by another key than the current one (reseal it after a
    /// rotation, then drop the old key from `CVCO_HOST_SECRET_KEY_PREVIOUS`).
    pub fn needs_reseal(&self, sealed: &str) -> bool {
        parse(sealed).map_or(true, |(id, _)| id != self.current.id)
    }
}

fn parse(sealed: &str) -> Result<(&str, Vec<u8>), SecretError> {
    let mut parts = sealed.splitn(3, '.');
    let (Some(PREFIX), Some(id), Some(body)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(SecretError::Malformed);
    };
    let body = URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|_| SecretError::Malformed)?;
    if body.len() < NONCE_LEN + TAG_LEN {
        return Err(SecretError::Malformed);
    }
    Ok((id, body))
}

/// Binds the ciphertext to its merchant (and to this format).
fn aad(merchant_id: &str) -> Vec<u8> {
    let mut aad = b"cvco-host merchant secret v1\0".to_vec();
    aad.extend_from_slice(merchant_id.as_bytes());
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const K2: &str = "ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    fn ring(k: &str) -> Keyring {
        Keyring::new(k, &[]).expect("key")
    }

    #[test]
    fn a_sealed_secret_opens_for_its_merchant_and_never_shows_in_clear() {
        let r = ring(K1);
        let s = Secret::new("client-secret-42");
        let sealed = r.seal("merchant-1", &s);
        assert!(sealed.starts_with(&format!("cvco1.{}.", r.key_id())));
        assert!(!sealed.contains("client-secret-42"));
        assert_eq!(r.open("merchant-1", &sealed).expect("opens"), s);
        // A fresh nonce each time: the same secret seals differently.
        assert_ne!(sealed, r.seal("merchant-1", &s));
        assert!(!format!("{s:?} {r:?}").contains("client-secret-42"));
    }

    #[test]
    fn a_base64_key_is_the_same_key_as_its_hex() {
        let bytes: Vec<u8> = (0u8..32).collect();
        let b64 = Keyring::new(&STANDARD.encode(&bytes), &[]).expect("base64 key");
        let sealed = ring(K1).seal("m", &Secret::new("x"));
        assert_eq!(b64.open("m", &sealed).expect("opens").expose(), "x");
    }

    #[test]
    fn another_key_cannot_open_it() {
        let sealed = ring(K1).seal("m", &Secret::new("x"));
        // Same id forced by rewriting it: the tag still refuses.
        let other = ring(K2);
        let forged = sealed.replacen(ring(K1).key_id(), other.key_id(), 1);
        assert_eq!(other.open("m", &forged), Err(SecretError::Rejected));
        assert!(matches!(
            other.open("m", &sealed),
            Err(SecretError::UnknownKey(_))
        ));
    }

    #[test]
    fn a_value_moved_to_another_merchant_does_not_open() {
        let r = ring(K1);
        let sealed = r.seal("merchant-1", &Secret::new("x"));
        assert_eq!(r.open("merchant-2", &sealed), Err(SecretError::Rejected));
    }

    #[test]
    fn an_altered_value_is_rejected() {
        let r = ring(K1);
        let sealed = r.seal("m", &Secret::new("secret"));
        let (head, body) = sealed.rsplit_once('.').expect("three parts");
        let mut bytes = URL_SAFE_NO_PAD.decode(body).expect("base64");
        for i in [0, NONCE_LEN, bytes.len() - 1] {
            bytes[i] ^= 1;
            let tampered = format!("{head}.{}", URL_SAFE_NO_PAD.encode(&bytes));
            assert_eq!(
                r.open("m", &tampered),
                Err(SecretError::Rejected),
                "byte {i}"
            );
            bytes[i] ^= 1;
        }
        for bad in [
            "",
            "cvco1",
            "cvco2.x.AAAA",
            &format!("{head}.AAAA"),
            &format!("{head}.!"),
        ] {
            assert_eq!(r.open("m", bad), Err(SecretError::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn a_rotated_key_still_opens_old_values_and_asks_for_a_reseal() {
        let old = ring(K1);
        let sealed = old.seal("m", &Secret::new("x"));
        let rotated = Keyring::new(K2, &[K1]).expect("keys");
        assert!(rotated.needs_reseal(&sealed));
        assert_eq!(rotated.open("m", &sealed).expect("opens").expose(), "x");
        let resealed = rotated.seal("m", &Secret::new("x"));
        assert!(!rotated.needs_reseal(&resealed));
        assert!(matches!(
            old.open("m", &resealed),
            Err(SecretError::UnknownKey(_))
        ));
    }

    #[test]
    fn a_missing_or_short_key_says_what_is_wrong() {
        assert_eq!(
            Keyring::new("  ", &[]).unwrap_err(),
            SecretError::MissingKey(KEY_ENV)
        );
        let short = Keyring::new(&K1[..62], &[]).unwrap_err();
        assert!(short.to_string().starts_with(KEY_ENV), "{short}");
        let b64_short = Keyring::new(&STANDARD.encode([7u8; 16]), &[]).unwrap_err();
        assert!(
            b64_short.to_string().contains("16 bytes, 32 needed"),
            "{b64_short}"
        );
        assert!(Keyring::new("not a key!", &[]).is_err());
        let prev = Keyring::new(K1, &["zz"]).unwrap_err();
        assert!(matches!(
            prev,
            SecretError::BadKey {
                var: PREVIOUS_KEYS_ENV,
                ..
            }
        ));
        let e: CvcoError = SecretError::MissingKey(KEY_ENV).into();
        assert_eq!(e.code, ErrorCode::ConfigMissing);
    }
}
