//! Signed notifications: HMAC-SHA256 over "{timestamp}.{body}", sent as
//! `CVCo-Signature: t=<unix seconds>,v1=<hex>`. Several `v1` may appear while a secret rotates.

use crate::error::{CvcoError, ErrorCode};
use crate::time::Timestamp;
use crate::wire::Notification;
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const SIGNATURE_HEADER: &str = "CVCo-Signature";
pub const EVENT_ID_HEADER: &str = "CVCo-Event-Id";
/// How far a notification's timestamp may stand from the receiver's clock.
pub const DEFAULT_TOLERANCE_S: i64 = 300;

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &[u8], timestamp_s: i64, body: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(timestamp_s.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The header value for `body` sent at `now`.
pub fn sign(secret: &[u8], now: Timestamp, body: &[u8]) -> String {
    let t = now.secs();
    let sig = mac(secret, t, body).finalize().into_bytes();
    format!("t={t},v1={}", hex(&sig))
}

/// Decides whether an event id was already processed. Hosts back it with their own store.
pub trait ReplayGuard {
    /// Records `event_id`; returns `false` if it had been seen before.
    fn first_time(&mut self, event_id: &str) -> bool;
}

/// A notification whose signature and timestamp checked out.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VerifiedNotification {
    pub event_id: String,
    pub signed_at: Timestamp,
    /// The ANCV object it is about (`transaction:<id>`, `pre_transaction:<id>`): with
    /// `notification.sequence`, what a host dedups on (PROTOCOL.md §3).
    #[serde(default)]
    pub object_key: String,
    pub notification: Notification,
}

/// Checks the signature header against the raw body, the timestamp against `now ± tolerance_s`,
/// then parses the body. Comparison is constant-time.
pub fn verify(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now: Timestamp,
    tolerance_s: i64,
) -> Result<VerifiedNotification, CvcoError> {
    let malformed =
        |fr: &str, en: &str| CvcoError::new(ErrorCode::NotificationMalformed).with_detail(fr, en);
    let mut t: Option<i64> = None;
    let mut candidates: Vec<Vec<u8>> = Vec::new();
    for part in header.split(',') {
        let (k, v) = part.trim().split_once('=').ok_or_else(|| {
            malformed(
                "En-tête de signature illisible.",
                "Unreadable signature header.",
            )
        })?;
        match k.trim() {
            "t" => {
                t = Some(v.trim().parse().map_err(|_| {
                    malformed(
                        "Horodatage de signature illisible.",
                        "Unreadable signature timestamp.",
                    )
                })?)
            }
            "v1" => {
                if let Some(b) = unhex(v.trim()) {
                    candidates.push(b);
                }
            }
            _ => {}
        }
    }
    let t = t.ok_or_else(|| malformed("Horodatage absent.", "Missing timestamp."))?;
    if candidates.is_empty() {
        return Err(CvcoError::new(ErrorCode::NotificationBadSignature)
            .with_detail("Aucune signature v1.", "No v1 signature."));
    }
    let ok = candidates
        .iter()
        .any(|c| mac(secret, t, body).verify_slice(c).is_ok());
    if !ok {
        return Err(CvcoError::new(ErrorCode::NotificationBadSignature));
    }
    // abs_diff: a crafted `t` far from now (i64::MIN) must not overflow the subtraction.
    if tolerance_s < 0 || now.secs().abs_diff(t) > tolerance_s as u64 {
        return Err(CvcoError::new(ErrorCode::NotificationStale).with_detail(
            &format!("Tolérance : {tolerance_s} s."),
            &format!("Tolerance: {tolerance_s} s."),
        ));
    }
    let notification: Notification = serde_json::from_slice(body).map_err(|e| {
        malformed(
            &format!("Corps illisible : {e}."),
            &format!("Unreadable body: {e}."),
        )
    })?;
    Ok(VerifiedNotification {
        event_id: notification.id.clone(),
        signed_at: Timestamp::from_secs(t),
        object_key: crate::contract::object_key(&notification),
        notification,
    })
}

/// Like [`verify`], then asks the host's replay guard about the event id.
pub fn verify_once(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now: Timestamp,
    tolerance_s: i64,
    guard: &mut dyn ReplayGuard,
) -> Result<VerifiedNotification, CvcoError> {
    let v = verify(secret, header, body, now, tolerance_s)?;
    if !guard.first_time(&v.event_id) {
        return Err(CvcoError::new(ErrorCode::NotificationReplayed));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    const SECRET: &[u8] = b"whsec_test";

    fn body() -> Vec<u8> {
        br#"{"id":"evt_1","type":"transaction.updated","created_at":"2026-11-22T21:49:00.000Z","shop_id":"S1","merchant_order_id":"CMD-1","transaction_id":"tx_1","state":"VALIDATED","sequence":3}"#.to_vec()
    }

    fn now() -> Timestamp {
        Timestamp::parse_rfc3339("2026-11-22T21:49:00Z").unwrap()
    }

    struct Seen(HashSet<String>);
    impl ReplayGuard for Seen {
        fn first_time(&mut self, id: &str) -> bool {
            self.0.insert(id.to_string())
        }
    }

    #[test]
    fn signed_notification_verifies() {
        let header = sign(SECRET, now(), &body());
        assert!(header.starts_with("t=1795384140,v1="));
        let v = verify(
            SECRET,
            &header,
            &body(),
            now().plus_secs(10),
            DEFAULT_TOLERANCE_S,
        )
        .unwrap();
        assert_eq!(v.event_id, "evt_1");
        assert_eq!(v.notification.state, "VALIDATED");
        assert_eq!(v.notification.transaction_id.as_deref(), Some("tx_1"));
    }

    #[test]
    fn forged_stale_malformed_replayed() {
        let header = sign(SECRET, now(), &body());
        let e = verify(b"other", &header, &body(), now(), 300).unwrap_err();
        assert_eq!(e.code, ErrorCode::NotificationBadSignature);
        let mut tampered = body();
        tampered[10] ^= 1;
        assert_eq!(
            verify(SECRET, &header, &tampered, now(), 300)
                .unwrap_err()
                .code,
            ErrorCode::NotificationBadSignature
        );
        assert_eq!(
            verify(SECRET, &header, &body(), now().plus_secs(301), 300)
                .unwrap_err()
                .code,
            ErrorCode::NotificationStale
        );
        assert_eq!(
            verify(SECRET, &header, &body(), now().plus_secs(-301), 300)
                .unwrap_err()
                .code,
            ErrorCode::NotificationStale
        );
        for bad in ["", "garbage", "t=abc,v1=00", "v1=00"] {
            assert_eq!(
                verify(SECRET, bad, &body(), now(), 300).unwrap_err().code,
                ErrorCode::NotificationMalformed,
                "{bad}"
            );
        }
        assert_eq!(
            verify(SECRET, "t=1795384140,v1=zz", &body(), now(), 300)
                .unwrap_err()
                .code,
            ErrorCode::NotificationBadSignature
        );
        let signed_garbage = sign(SECRET, now(), b"not json");
        assert_eq!(
            verify(SECRET, &signed_garbage, b"not json", now(), 300)
                .unwrap_err()
                .code,
            ErrorCode::NotificationMalformed
        );
        let mut guard = Seen(HashSet::new());
        verify_once(SECRET, &header, &body(), now(), 300, &mut guard).unwrap();
        assert_eq!(
            verify_once(SECRET, &header, &body(), now(), 300, &mut guard)
                .unwrap_err()
                .code,
            ErrorCode::NotificationReplayed
        );
    }

    /// Known answer computed outside this code (Python's `hmac` module, and
    /// `printf '%s' "1795384140.$BODY" | openssl dgst -sha256 -hmac whsec_known_answer`), so a
    /// change of the signed string or of the encoding cannot pass by agreeing with itself.
    #[test]
    fn signature_matches_independently_computed_hmac_sha256() {
        let secret = b"whsec_known_answer";
        let body = br#"{"id":"evt_kat","type":"transaction.updated","created_at":"2026-11-22T21:49:00.000Z","shop_id":"SHOP-1","merchant_order_id":"CMD-42","transaction_id":"tx_42","state":"VALIDATED","sequence":7}"#;
        let expected =
            "t=1795384140,v1=03c44a379acc8cfe8ce36a61fc6f052a3fcb113b44bc38e158963584a9d2e90b";
        assert_eq!(
            sign(secret, Timestamp::from_secs(1_795_384_140), body),
            expected
        );
        let v = verify(
            secret,
            expected,
            body,
            Timestamp::from_secs(1_795_384_140),
            300,
        )
        .unwrap();
        assert_eq!(v.event_id, "evt_kat");
        // The same vector with its upper-case hex, as some senders write it.
        let upper = expected.replace("v1=03c44a", "v1=03C44A");
        verify(
            secret,
            &upper,
            body,
            Timestamp::from_secs(1_795_384_140),
            300,
        )
        .unwrap();
    }

    #[test]
    fn extreme_timestamps_are_stale_not_overflows() {
        for t in [i64::MIN, i64::MIN + 1, i64::MAX, -1] {
            let header = format!("t={t},v1={}", "00".repeat(32));
            let e = verify(SECRET, &header, &body(), now(), 300).unwrap_err();
            assert_eq!(e.code, ErrorCode::NotificationBadSignature, "{t}");
            // Signed by the holder of the secret but far from now: stale, no overflow.
            let signed = sign(SECRET, Timestamp::from_secs(t), &body());
            let e = verify(SECRET, &signed, &body(), now(), 300).unwrap_err();
            assert_eq!(e.code, ErrorCode::NotificationStale, "{t}");
        }
        // A valid MAC over t = i64::MIN: `now - t` used to overflow here.
        let sig = mac(SECRET, i64::MIN, &body()).finalize().into_bytes();
        let header = format!("t={},v1={}", i64::MIN, hex(&sig));
        let e = verify(SECRET, &header, &body(), now(), 300).unwrap_err();
        assert_eq!(e.code, ErrorCode::NotificationStale);
        let header = sign(SECRET, now(), &body());
        let e = verify(SECRET, &header, &body(), now(), -1).unwrap_err();
        assert_eq!(e.code, ErrorCode::NotificationStale);
    }

    #[test]
    fn rotation_accepts_any_listed_signature() {
        let good = sign(SECRET, now(), &body());
        let v1 = good.split("v1=").nth(1).unwrap();
        let header = format!("t={},v1={},v1={v1}", now().secs(), "00".repeat(32));
        verify(SECRET, &header, &body(), now(), 300).unwrap();
    }
}
