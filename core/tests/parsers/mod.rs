//! Every parser of cvco-core driven from arbitrary input, with the invariants that must hold
//! whatever it is. Shared by `tests/no_panic.rs` (proptest, in the normal test run) and the
//! cargo-fuzz targets in `fuzz/` (which include this file by path), so both drive the same list.
#![allow(dead_code)]

use cvco_core::contract;
use cvco_core::error::ErrorCode;
use cvco_core::lifecycle::{NormalizedStatus, TransactionState};
use cvco_core::plugin_api as api;
use cvco_core::shop::{Channel, MerchantSettings, ShopId};
use cvco_core::time::{Date, Timestamp};
use cvco_core::wire;
use cvco_core::{signature, Amount, BeneficiaryId};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::Debug;

/// `Timestamp::parse_rfc3339`: a typed error, or an instant that reads back from its own form.
pub fn rfc3339(s: &str) {
    match Timestamp::parse_rfc3339(s) {
        Ok(t) => {
            let back = Timestamp::parse_rfc3339(&t.to_rfc3339());
            assert_eq!(back.ok(), Some(t), "{s:?} does not read back");
        }
        Err(e) => assert_eq!(e.code, ErrorCode::InvalidRequest, "{s:?}"),
    }
}

/// `Date::parse`: a typed error, or a date that reads back from its own form.
pub fn date(s: &str) {
    match Date::parse(s) {
        Ok(d) => assert_eq!(Date::parse(&d.to_string()).ok(), Some(d), "{s:?}"),
        Err(e) => assert_eq!(e.code, ErrorCode::InvalidRequest, "{s:?}"),
    }
}

/// Every `Timestamp` method on any instant a host could hold (its `i64` is public).
pub fn instant(ms: i64, hour: u8) {
    let t = Timestamp(ms);
    let _ = (t.secs(), t.utc_date(), t.paris_local(), t.to_rfc3339());
    let _ = (t.plus_secs(ms), t.plus_millis(ms), Timestamp::from_secs(ms));
    let d = t.business_date(hour % 24);
    if (0..=253_402_300_799_999).contains(&ms) {
        // Within the years the API speaks, bounds and round trip hold.
        assert_eq!(Timestamp::parse_rfc3339(&t.to_rfc3339()).ok(), Some(t));
        if (1970..=9998).contains(&d.year) && d.year > 1970 {
            let (start, end) = Timestamp::business_day_bounds(d, hour % 24);
            assert!(start <= t && t < end, "{t} {d}");
        }
    }
}

/// `Amount::parse`: a typed amount error, or an amount within `Amount::MAX` that its own
/// French, English and plain forms read back as.
pub fn amount(s: &str) {
    match Amount::parse(s) {
        Ok(a) => {
            assert!(a <= Amount::MAX, "{s:?}");
            for form in [a.format_fr(), a.format_en(), a.format_plain()] {
                assert_eq!(Amount::parse(&form).ok(), Some(a), "{s:?} -> {form:?}");
            }
        }
        Err(e) => assert!(
            matches!(e.code, ErrorCode::InvalidAmount | ErrorCode::AmountOverflow),
            "{s:?}: {e:?}"
        ),
    }
}

fn check_id(source: &str, id: &BeneficiaryId) {
    match id {
        BeneficiaryId::CvConnectId(d) => {
            assert!(
                d.len() == 11 && d.bytes().all(|b| b.is_ascii_digit()),
                "{source:?}"
            )
        }
        BeneficiaryId::Email(e) => assert!(e.contains('@'), "{source:?}"),
    }
    // Normalisation is idempotent, and the app's identification QR code reads back as the id.
    assert_eq!(
        BeneficiaryId::parse(id.as_str()).as_ref().ok(),
        Some(id),
        "{source:?}"
    );
    assert_eq!(
        BeneficiaryId::from_scan(&id.id_qr_payload()).as_ref().ok(),
        Some(id)
    );
    let _ = (id.masked(), id.kind(), id.to_string());
}

/// Typed beneficiary input (`BeneficiaryId::parse`, `validate_beneficiary` typed).
pub fn beneficiary(s: &str) {
    match BeneficiaryId::parse(s) {
        Ok(id) => check_id(s, &id),
        Err(e) => assert_eq!(e.code, ErrorCode::InvalidBeneficiary, "{s:?}"),
    }
    let input = api::ValidateBeneficiaryInput {
        input: s.into(),
        scanned: false,
    };
    let _ = api::validate_beneficiary(&input);
}

/// What a scanner reads: Code 128 (bare id, CR/LF, GS, AIM prefix) or the CVCO-ID QR code.
pub fn scan(s: &str) {
    match BeneficiaryId::from_scan(s) {
        Ok(id) => check_id(s, &id),
        Err(e) => assert_eq!(e.code, ErrorCode::InvalidBeneficiary, "{s:?}"),
    }
    let input = api::ValidateBeneficiaryInput {
        input: s.into(),
        scanned: true,
    };
    let _ = api::validate_beneficiary(&input);
}

/// Shop ids, channels and state names.
pub fn names(s: &str) {
    if let Ok(id) = ShopId::parse(s) {
        assert_eq!(ShopId::parse(id.as_str()).ok(), Some(id.clone()));
    }
    if let Ok(c) = Channel::parse(s) {
        assert_eq!(Channel::parse(c.as_str()).ok(), Some(c));
    }
    if let Some(st) = TransactionState::parse(s) {
        assert_eq!(TransactionState::parse(st.as_str()), Some(st));
    }
    let _ = NormalizedStatus::parse(s);
}

/// The payment QR code a counter or kiosk shows (`cvco:pay?...`).
pub fn payment_qr(s: &str) {
    if let Ok(qr) = wire::PaymentQr::parse(s) {
        assert_eq!(
            wire::PaymentQr::parse(&qr.payload()).ok(),
            Some(qr),
            "{s:?}"
        );
    }
}

/// The checks hosts and the plugin run on references, currencies, keys and object ids.
pub fn checks(s: &str) {
    let _ = wire::check_reference(s);
    let _ = wire::check_currency(s);
    let _ = api::check_idempotency_key(s, "idempotency_key");
    if api::check_object_id(s, "payment_id").is_ok() {
        assert!(s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'));
    }
}

/// `contract::parse_request` on any body, for every operation: the typed body or a typed error
/// of the request-checking kinds, and what it accepts serialises.
pub fn request_body(s: &str) {
    for op in contract::Operation::ALL {
        match contract::parse_request(op, s) {
            Ok(body) => {
                serde_json::to_vec(&body).expect("a checked body serialises");
            }
            Err(e) => assert!(
                matches!(
                    e.code,
                    ErrorCode::InvalidRequest
                        | ErrorCode::InvalidBeneficiary
                        | ErrorCode::InvalidAmount
                        | ErrorCode::AmountOverflow
                ),
                "{op:?} {s:?}: {e:?}"
            ),
        }
    }
    let _ = contract::check_attempt(s);
    let _ = contract::check_order_ref(s, "order_ref");
}

/// Every text parser above on one input.
pub fn text(s: &str) {
    request_body(s);
    rfc3339(s);
    date(s);
    amount(s);
    beneficiary(s);
    scan(s);
    names(s);
    payment_qr(s);
    checks(s);
}

pub const SECRET: &[u8] = b"whsec_fuzz";

/// `signature::verify` on any header, body, clock and tolerance; and the same body signed
/// for real, so the body parser behind a good signature is reached too.
pub fn signature(header: &str, body: &[u8], now_s: i64, tolerance_s: i64) {
    let now = Timestamp::from_secs(now_s);
    if let Err(e) = signature::verify(SECRET, header, body, now, tolerance_s) {
        assert!(
            matches!(
                e.code,
                ErrorCode::NotificationMalformed
                    | ErrorCode::NotificationBadSignature
                    | ErrorCode::NotificationStale
            ),
            "{e:?}"
        );
    }
    let signed = signature::sign(SECRET, now, body);
    match signature::verify(SECRET, &signed, body, now, tolerance_s.max(0)) {
        Ok(v) => assert_eq!(v.event_id, v.notification.id),
        Err(e) => assert_eq!(e.code, ErrorCode::NotificationMalformed, "{e:?}"),
    }
}

/// Decodes `bytes` as `T`; what decodes runs `then`, serialises, and reads back equal.
fn decode<T>(bytes: &[u8], then: fn(&T)) -> bool
where
    T: DeserializeOwned + Serialize + PartialEq + Debug,
{
    let Ok(v) = serde_json::from_slice::<T>(bytes) else {
        return false;
    };
    then(&v);
    let text = serde_json::to_vec(&v).expect("a decoded value serialises");
    match serde_json::from_slice::<T>(&text) {
        Ok(back) => assert_eq!(back, v, "{}", String::from_utf8_lossy(&text)),
        Err(e) => panic!(
            "{} does not read back its own JSON {}: {e}",
            std::any::type_name::<T>(),
            String::from_utf8_lossy(&text)
        ),
    }
    true
}

fn nothing<T>(_: &T) {}

fn verify_input(v: &api::VerifyNotificationInput) {
    let header = v
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(signature::SIGNATURE_HEADER))
        .map(|(_, h)| h.as_str())
        .unwrap_or("");
    let now = v.now.unwrap_or(Timestamp(1_795_384_140_000));
    let tolerance = v.tolerance_s.unwrap_or(signature::DEFAULT_TOLERANCE_S);
    signature(header, v.body.as_bytes(), now.secs(), tolerance);
}

fn transaction(t: &wire::Transaction) {
    let s = t.summary();
    assert!(s.remaining_cents <= t.amount_cents);
    let p = api::Payment::from_transaction(t);
    assert_eq!(p.amount_cents, t.amount_cents);
    for fee_bps in [0, 250, 10_000, u32::MAX] {
        if let Some(line) = wire::remittance_line(t, fee_bps) {
            assert!(line.net_cents <= line.gross_cents);
        }
    }
    let _ = wire::TransactionFilter::default().matches(t);
}

/// Every JSON document type of the plugin API and the wire, by name: (name, decoder).
/// A decoder answers whether the bytes decoded as that type.
pub type Decoder = fn(&[u8]) -> bool;

pub const TYPES: &[(&str, Decoder)] = &[
    // plugin_api inputs, with the checks the plugin runs on them.
    ("ValidateBeneficiaryInput", |b| {
        decode::<api::ValidateBeneficiaryInput>(b, |v| {
            let _ = api::validate_beneficiary(v);
        })
    }),
    ("CreatePaymentInput", |b| {
        decode::<api::CreatePaymentInput>(b, |v| {
            let _ = wire::check_reference(&v.order_ref);
            let _ = Amount::from_i64(v.amount_cents);
            let _ = api::check_idempotency_key(&v.idempotency_key, "idempotency_key");
            if let Some(b) = &v.beneficiary {
                let _ = BeneficiaryId::parse(b);
            }
        })
    }),
    ("RequestAuthorizationInput", |b| {
        decode::<api::RequestAuthorizationInput>(b, |v| {
            let _ = api::check_object_id(&v.payment_id, "payment_id");
            let _ = BeneficiaryId::parse(&v.beneficiary);
        })
    }),
    ("PaymentIdInput", |b| {
        decode::<api::PaymentIdInput>(b, |v| {
            let _ = api::check_object_id(&v.payment_id, "payment_id");
        })
    }),
    ("CapturePaymentInput", |b| {
        decode::<api::CapturePaymentInput>(b, |v| {
            let _ = v.amount_cents.map(Amount::from_i64);
        })
    }),
    ("CancelPaymentInput", |b| {
        decode::<api::CancelPaymentInput>(b, nothing)
    }),
    ("RefundPaymentInput", |b| {
        decode::<api::RefundPaymentInput>(b, |v| {
            let _ = v.amount_cents.map(Amount::from_i64);
        })
    }),
    ("CreatePaymentRequestInput", |b| {
        decode::<api::CreatePaymentRequestInput>(b, |v| {
            let _ = Amount::from_i64(v.amount_cents);
            if let Some(e) = &v.email {
                let _ = BeneficiaryId::parse(e);
            }
        })
    }),
    ("PaymentRequestIdInput", |b| {
        decode::<api::PaymentRequestIdInput>(b, nothing)
    }),
    ("VerifyNotificationInput", |b| {
        decode::<api::VerifyNotificationInput>(b, verify_input)
    }),
    ("ListPaymentsInput", |b| {
        decode::<api::ListPaymentsInput>(b, nothing)
    }),
    ("DailyTotalsInput", |b| {
        decode::<api::DailyTotalsInput>(b, |v| {
            if let Ok(days) = v.days() {
                assert!(days.len() <= api::MAX_TOTALS_DAYS);
            }
        })
    }),
    ("RenderQrInput", |b| {
        decode::<api::RenderQrInput>(b, nothing)
    }),
    // plugin_api outputs, as hosts read them back.
    ("Payment", |b| decode::<api::Payment>(b, nothing)),
    ("PaymentRequest", |b| {
        decode::<api::PaymentRequest>(b, nothing)
    }),
    ("PaymentList", |b| decode::<api::PaymentList>(b, nothing)),
    ("DailyReport", |b| decode::<api::DailyReport>(b, nothing)),
    ("Capabilities", |b| decode::<api::Capabilities>(b, nothing)),
    ("ConnectionStatus", |b| {
        decode::<api::ConnectionStatus>(b, nothing)
    }),
    ("CheckConnectionInput", |b| {
        decode::<api::CheckConnectionInput>(b, nothing)
    }),
    ("ReplyPayment", |b| {
        decode::<api::Reply<api::Payment>>(b, |r| {
            let _ = r.clone().into_result();
        })
    }),
    ("ReplyValidatedBeneficiary", |b| {
        decode::<api::Reply<api::ValidatedBeneficiary>>(b, nothing)
    }),
    ("ReplyRenderedQr", |b| {
        decode::<api::Reply<api::RenderedQr>>(b, nothing)
    }),
    ("CvcoError", |b| decode::<cvco_core::CvcoError>(b, nothing)),
    // contract: the merchant contract's exports.
    ("CheckoutInput", |b| {
        decode::<contract::CheckoutInput>(b, |v| {
            let c = contract::checkout(&MerchantSettings::default(), v.clone());
            assert_eq!(c.eligible, c.ineligible_reason.is_none());
            assert!(!c.modes.is_empty());
        })
    }),
    ("Checkout", |b| decode::<contract::Checkout>(b, nothing)),
    ("RenderPaymentInput", |b| {
        decode::<contract::RenderPaymentInput>(b, |v| {
            let p = contract::render_payment(v.clone());
            assert_eq!(p.payment_id, v.payment_id);
            if p.status == contract::UNKNOWN {
                assert!(!p.is_final && p.transaction_id.is_none());
            }
            if p.is_final {
                assert_eq!(p.next_action, contract::ContractNextAction::None);
            }
            assert_eq!(p.status == "failed", p.error.is_some(), "{p:?}");
        })
    }),
    ("ContractPayment", |b| {
        decode::<contract::ContractPayment>(b, nothing)
    }),
    ("ErrorCatalogue", |b| {
        decode::<contract::ErrorCatalogue>(b, nothing)
    }),
    ("ParseRequestInput", |b| {
        decode::<contract::ParseRequestInput>(b, |v| request_body(&v.body))
    }),
    // wire: what the acquisition server receives and answers.
    ("TokenRequest", |b| decode::<wire::TokenRequest>(b, nothing)),
    ("TokenResponse", |b| {
        decode::<wire::TokenResponse>(b, nothing)
    }),
    ("CreateTransaction", |b| {
        decode::<wire::CreateTransaction>(b, |v| {
            let _ = v.validate();
        })
    }),
    ("RequestAuthorization", |b| {
        decode::<wire::RequestAuthorization>(b, nothing)
    }),
    ("CancelRequest", |b| {
        decode::<wire::CancelRequest>(b, nothing)
    }),
    ("CaptureRequest", |b| {
        decode::<wire::CaptureRequest>(b, nothing)
    }),
    ("RefundRequest", |b| {
        decode::<wire::RefundRequest>(b, nothing)
    }),
    ("Transaction", |b| {
        decode::<wire::Transaction>(b, transaction)
    }),
    ("TransactionList", |b| {
        decode::<wire::TransactionList>(b, |l| l.items.iter().for_each(transaction))
    }),
    ("TransactionFilter", |b| {
        decode::<wire::TransactionFilter>(b, nothing)
    }),
    ("CreatePreTransaction", |b| {
        decode::<wire::CreatePreTransaction>(b, |v| {
            let _ = v.validate();
        })
    }),
    ("PreTransaction", |b| {
        decode::<wire::PreTransaction>(b, |p| {
            let _ = api::request_summary(p.state, p.amount_cents, None);
            let _ = wire::PaymentQr::parse(&p.qr_payload);
        })
    }),
    ("Notification", |b| decode::<wire::Notification>(b, nothing)),
    ("RemittanceStatement", |b| {
        decode::<wire::RemittanceStatement>(b, nothing)
    }),
    ("DailyTotals", |b| decode::<wire::DailyTotals>(b, nothing)),
    ("MerchantSettings", |b| {
        decode::<MerchantSettings>(b, |s| {
            let _ = s.validate();
            let _ = s.check_amount(Amount::MAX);
            let _ = s.check_amount(Amount::ZERO);
        })
    }),
];

/// Every JSON type on one input.
pub fn json(bytes: &[u8]) {
    for (_, decode) in TYPES {
        decode(bytes);
    }
}
