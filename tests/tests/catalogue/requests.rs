//! Payment requests: MOTO by e-mail and counter QR codes, paid by a beneficiary in the app.

use crate::common::*;
use cvco_core::plugin_api::{DeliveryKind, NextAction, PaymentRequest, RenderedQr};
use cvco_core::{ErrorCode, NormalizedStatus, PreTransactionState};
use serde_json::json;
use std::time::{Duration, Instant};

const JEANNE: &str = "jeanne.manual@sandbox.cvco.test";
const JEANNE_ID: &str = "10000000006";

fn get(pool: &cvco_plugin_host::Pool, id: &str) -> PaymentRequest {
    call(pool, "get_payment_request", json!({"request_id": id}))
}

/// The beneficiary confirms with the personal code; balances are topped up first since
/// Jeanne's is the only one that depletes.
fn pay_in_app(pay: serde_json::Value) -> String {
    ok(
        "POST",
        &format!("/app/api/beneficiaries/{JEANNE_ID}/reset-balance"),
        None,
    );
    let tx = ok("POST", "/app/api/pay", Some(pay));
    let tx_id = tx["id"].as_str().expect("tx id").to_string();
    ok(
        "POST",
        &format!("/app/api/transactions/{tx_id}/confirm"),
        Some(json!({"beneficiary": JEANNE, "pin": "1234"})),
    );
    tx_id
}

fn wait_request(
    pool: &cvco_plugin_host::Pool,
    id: &str,
    status: NormalizedStatus,
) -> PaymentRequest {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = get(pool, id);
        if r.status == status {
            return r;
        }
        assert!(Instant::now() < deadline, "{id} never {status:?}: {r:?}");
        std::thread::sleep(Duration::from_millis(40));
    }
}

#[test]
fn moto_email_request_paid_in_the_app() {
    let pool = shop().pool();
    let order = unique("MOTO");
    let r: PaymentRequest = call(
        &pool,
        "create_payment_request",
        json!({"order_ref": order, "amount_cents": 4200, "delivery": "email",
               "email": "Jeanne.Manual@sandbox.cvco.test", "idempotency_key": unique("k")}),
    );
    assert_eq!(r.delivery, DeliveryKind::Email);
    assert_eq!(r.channel, cvco_core::Channel::Moto);
    assert_eq!(r.email.as_deref(), Some(JEANNE));
    assert_eq!(r.status, NormalizedStatus::AwaitingBeneficiary);
    assert!(r.svg.is_none());
    assert!(
        matches!(r.next_action, NextAction::WaitForApp { deadline: Some(d) } if d == r.expires_at)
    );
    // ANCV "sent" the e-mail with the link and the merchant reference.
    let outbox = ok("GET", "/outbox.json", None);
    let mail = outbox
        .as_array()
        .or_else(|| outbox["items"].as_array())
        .expect("outbox list")
        .iter()
        .find(|m| m.to_string().contains(&order))
        .cloned()
        .expect("e-mail in the outbox");
    assert!(mail.to_string().contains(&r.payment_url), "{mail}");

    let tx_id = pay_in_app(json!({"beneficiary": JEANNE, "pre_transaction_id": r.id}));
    let paid = wait_request(&pool, &r.id, NormalizedStatus::Authorized);
    assert_eq!(paid.ancv_state, PreTransactionState::Used);
    assert!(paid.is_final);
    let payment = paid.payment.expect("payment");
    assert_eq!(payment.id, tx_id);
    assert_eq!(payment.authorized_cents.cents(), 4200);
    assert_eq!(payment.payers[0].authorizations.len(), 1);
    assert_eq!(paid.next_action, NextAction::None);
}

#[test]
fn counter_qr_request_paid_by_scanning() {
    let pool = shop().pool();
    let r: PaymentRequest = call(
        &pool,
        "create_payment_request",
        json!({"idempotency_key": unique("k"), "order_ref": unique("QR"), "amount_cents": 2600, "delivery": "qr", "expires_in_s": 600}),
    );
    assert_eq!(r.channel, cvco_core::Channel::Proximity);
    assert!(r.qr_payload.starts_with("cvco:pay?v=1&pt="));
    let svg = r.svg.as_deref().expect("svg");
    assert!(svg.contains("<svg") && svg.contains("</svg>"));
    match &r.next_action {
        NextAction::ShowQr {
            payload,
            svg,
            expires_at,
        } => {
            assert_eq!(payload, &r.qr_payload);
            assert!(svg.contains("<svg"));
            assert_eq!(*expires_at, r.expires_at);
        }
        other => panic!("{other:?}"),
    }
    pay_in_app(json!({"beneficiary": JEANNE_ID, "qr_payload": r.qr_payload}));
    let paid = wait_request(&pool, &r.id, NormalizedStatus::Authorized);
    assert_eq!(paid.authorized_cents.cents(), 2600);
    assert_eq!(paid.remaining_cents.cents(), 0);
}

#[test]
fn declined_request_can_still_be_paid() {
    let pool = shop().pool();
    let r: PaymentRequest = call(
        &pool,
        "create_payment_request",
        json!({"idempotency_key": unique("k"), "order_ref": unique("QR"), "amount_cents": 2000, "delivery": "qr"}),
    );
    let tx = ok(
        "POST",
        "/app/api/pay",
        Some(json!({"beneficiary": JEANNE, "pre_transaction_id": r.id})),
    );
    let opened = get(&pool, &r.id);
    assert_eq!(opened.status, NormalizedStatus::AwaitingBeneficiary);
    ok(
        "POST",
        &format!(
            "/app/api/transactions/{}/decline",
            tx["id"].as_str().unwrap()
        ),
        Some(json!({"beneficiary": JEANNE})),
    );
    let again = wait_request(&pool, &r.id, NormalizedStatus::AwaitingBeneficiary);
    assert_eq!(again.ancv_state, PreTransactionState::Created);
    assert!(!again.is_final);
    pay_in_app(json!({"beneficiary": JEANNE, "pre_transaction_id": r.id}));
    wait_request(&pool, &r.id, NormalizedStatus::Authorized);
}

#[test]
fn cancel_payment_request() {
    let pool = shop().pool();
    let r: PaymentRequest = call(
        &pool,
        "create_payment_request",
        json!({"idempotency_key": unique("k"), "order_ref": unique("QR"), "amount_cents": 2000, "delivery": "qr"}),
    );
    let c: PaymentRequest = call(&pool, "cancel_payment_request", json!({"request_id": r.id}));
    assert_eq!(c.status, NormalizedStatus::Cancelled);
    assert_eq!(c.next_action, NextAction::None);
    let again: PaymentRequest = call(&pool, "cancel_payment_request", json!({"request_id": r.id}));
    assert_eq!(again.ancv_state, PreTransactionState::Cancelled);
    // Nobody can pay a cancelled request.
    let (status, _) = http(
        "POST",
        "/app/api/pay",
        Some(json!({"beneficiary": JEANNE, "pre_transaction_id": r.id})),
    );
    assert_eq!(status, 409);
}

#[test]
fn request_input_errors() {
    let pool = shop().pool();
    let base = json!({"order_ref": "R1", "amount_cents": 2000, "idempotency_key": "k-r1"});
    let with = |extra: serde_json::Value| {
        let mut v = base.clone();
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        v
    };
    let e = fails(
        &pool,
        "create_payment_request",
        with(json!({"delivery": "email"})),
    );
    assert_eq!(e.field.as_deref(), Some("email"));
    let e = fails(
        &pool,
        "create_payment_request",
        with(json!({"delivery": "email", "email": "10000000001"})),
    );
    assert_code(&e, ErrorCode::InvalidBeneficiary);
    let e = fails(
        &pool,
        "create_payment_request",
        with(json!({"delivery": "qr", "email": "a@b.fr"})),
    );
    assert_eq!(e.field.as_deref(), Some("email"));
    let e = fails(
        &pool,
        "create_payment_request",
        with(json!({"delivery": "qr", "expires_in_s": 0})),
    );
    assert_eq!(e.field.as_deref(), Some("expires_in_s"));
    let e = fails(
        &pool,
        "create_payment_request",
        with(json!({"delivery": "fax"})),
    );
    assert_code(&e, ErrorCode::InvalidRequest);
    let e = fails(
        &pool,
        "get_payment_request",
        json!({"request_id": "pt_unknown"}),
    );
    assert_code(&e, ErrorCode::PreTransactionNotFound);
}

#[test]
fn render_qr_for_tickets() {
    let pool = shop().pool();
    let q: RenderedQr = call(
        &pool,
        "render_qr",
        json!({"payload": "cvco:pay?v=1&pt=pt_1&shop=S1&amount=2000"}),
    );
    assert!(q.svg.starts_with("<?xml") && q.svg.contains("<svg"));
    assert!(q.svg.len() > 500);
    let e = fails(&pool, "render_qr", json!({"payload": ""}));
    assert_eq!(e.field.as_deref(), Some("payload"));
    let e = fails(&pool, "render_qr", json!({"payload": "x".repeat(5000)}));
    assert_eq!(e.field.as_deref(), Some("payload"));
}
