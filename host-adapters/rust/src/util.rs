//! Small helpers every layer uses: clock, ids, hashes, the idempotency key.

use cvco_core::{CvcoError, ErrorCode, Timestamp};
use sha2::{Digest, Sha256};

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub fn rfc3339(ms: i64) -> String {
    Timestamp(ms).to_rfc3339()
}

pub fn sha256_hex(s: &str) -> String {
    let d = Sha256::digest(s.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn random_token(bytes: usize) -> String {
    use rand::RngCore;
    let mut b = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut b);
    b.iter().map(|b| format!("{b:02x}")).collect()
}

/// `prefix_` + 16 Crockford base32 characters.
pub fn new_id(prefix: &str) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut rng = rand::thread_rng();
    let s: String = (0..16)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{prefix}_{s}")
}

pub fn invalid(field: &str, fr: &str, en: &str) -> CvcoError {
    CvcoError::new(ErrorCode::InvalidRequest)
        .with_detail(fr, en)
        .with_field(field)
}

/// The idempotency key sent to the plugin: stable for one order + attempt, opaque, ASCII.
pub fn idempotency_key(scope: &str, order_ref: &str, attempt: &str) -> String {
    let h = sha256_hex(&format!("{scope}\n{order_ref}\n{attempt}"));
    format!("cvco-host-{scope}-{}", &h[..40])
}
