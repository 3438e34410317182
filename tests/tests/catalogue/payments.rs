//! E-commerce payments: every scripted beneficiary, cancel, refunds, deferred capture, retries.

use crate::common::*;
use cvco_core::lifecycle::AbortReason;
use cvco_core::plugin_api::{NextAction, Payment, PaymentList};
use cvco_core::{ErrorCode, NormalizedStatus, TransactionState};
use serde_json::{json, Value};
use std::time::Duration;

const ALICE: &str = "alice.approve@sandbox.cvco.test";
const BRUNO: &str = "10000000002";
const CHLOE: &str = "chloe.decline@sandbox.cvco.test";
const DAVID: &str = "david.silent@sandbox.cvco.test";
const EVE: &str = "eve.blocked@sandbox.cvco.test";
const HUGO: &str = "hugo.adjust@sandbox.cvco.test";
const INES: &str = "10000000008";
const WAIT: Duration = Duration::from_secs(10);

#[test]
fn ecommerce_full_payment() {
    let pool = shop().pool();
    let p = create_payment(&pool, 4550, Some(ALICE));
    assert_eq!(p.status, NormalizedStatus::AwaitingBeneficiary);
    assert!(!p.is_final);
    match p.next_action {
        NextAction::WaitForApp { deadline: Some(d) } => assert!(d > p.created_at),
        other => panic!("{other:?}"),
    }
    let p = wait_final(&pool, &p.id, WAIT);
    assert_eq!(p.status, NormalizedStatus::Authorized);
    assert_eq!(p.ancv_state, TransactionState::Validated);
    assert_eq!(p.ancv_label_fr, "Transaction autorisée et encaissée");
    assert_eq!(p.authorized_cents.cents(), 4550);
    assert_eq!(p.remaining_cents.cents(), 0);
    assert_eq!(p.next_action, NextAction::None);
    let auth = &p.payers[0].authorizations[0];
    assert_eq!(auth.number.len(), 6);
    assert_eq!(auth.amount_cents.cents(), 4550);
}

#[test]
fn partial_authorization_leaves_the_remainder() {
    let pool = shop().pool();
    let p = create_payment(&pool, 5000, Some(BRUNO));
    let p = wait_final(&pool, &p.id, WAIT);
    assert_eq!(p.status, NormalizedStatus::PartiallyAuthorized);
    assert_eq!(p.authorized_cents.cents(), 3500);
    assert_eq!(p.remaining_cents.cents(), 1500);
}

#[test]
fn adjustment_by_the_beneficiary_only_when_allowed() {
    let pool = shop().pool();
    let mut input = json!({
        "order_ref": unique("CMD"), "amount_cents": 5001, "channel": "ecommerce",
        "beneficiary": HUGO, "adjustable": true, "idempotency_key": unique("k"),
    });
    let p: Payment = call(&pool, "create_payment", input.clone());
    assert!(p.adjustable);
    let p = wait_final(&pool, &p.id, WAIT);
    assert_eq!(p.status, NormalizedStatus::PartiallyAuthorized);
    assert_eq!(p.authorized_cents.cents(), 2500);
    assert_eq!(p.remaining_cents.cents(), 2501);

    input["adjustable"] = json!(false);
    input["order_ref"] = json!(unique("CMD"));
    input["idempotency_key"] = json!(unique("k"));
    let p: Payment = call(&pool, "create_payment", input);
    let p = wait_final(&pool, &p.id, WAIT);
    assert_eq!(p.status, NormalizedStatus::Authorized);
    assert_eq!(p.authorized_cents.cents(), 5001);
}

#[test]
fn declined_and_empty_balance() {
    let pool = shop().pool();
    let p = create_payment(&pool, 3000, Some(CHLOE));
    let p = wait_final(&pool, &p.id, WAIT);
    assert_eq!(p.status, NormalizedStatus::Declined);
    assert_eq!(p.abort_reason, Some(AbortReason::DeclinedByBeneficiary));
    assert_eq!(p.authorized_cents.cents(), 0);
    assert_eq!(p.remaining_cents.cents(), 3000);
    let p = create_payment(&pool, 3000, Some(INES));
    let p = wait_final(&pool, &p.id, WAIT);
    assert_eq!(p.status, NormalizedStatus::Declined);
    assert_eq!(p.abort_reason, Some(AbortReason::InsufficientBalance));
}

#[test]
fn silent_beneficiary_expires() {
    let pool = shop_with(json!({"authorization_timeout_s": 1}), json!({})).pool();
    let p = create_payment(&pool, 3000, Some(DAVID));
    assert_eq!(p.status, NormalizedStatus::AwaitingBeneficiary);
    let p = wait_final(&pool, &p.id, WAIT);
    assert_eq!(p.status, NormalizedStatus::Expired);
    assert_eq!(p.ancv_state, TransactionState::Expired);
}

#[test]
fn blocked_unknown_and_malformed_beneficiaries() {
    let pool = shop().pool();
    let order = unique("CMD");
    let key = unique("k");
    let input = |who: &str| {
        json!({"order_ref": order, "amount_cents": 3000, "channel": "ecommerce",
               "beneficiary": who, "idempotency_key": key})
    };
    assert_code(
        &fails(&pool, "create_payment", input(EVE)),
        ErrorCode::BeneficiaryBlocked,
    );
    let e = fails(&pool, "create_payment", input("10000000099"));
    assert_code(&e, ErrorCode::BeneficiaryUnknown);
    assert!(!e.retryable);
    let e = fails(&pool, "create_payment", input("123"));
    assert_code(&e, ErrorCode::InvalidBeneficiary);
    assert_eq!(e.field.as_deref(), Some("beneficiary"));
    // The shopper fixes the typo: same key, the same transaction is pushed, nothing doubled.
    let p: Payment = call(&pool, "create_payment", input(ALICE));
    assert_eq!(
        wait_final(&pool, &p.id, WAIT).status,
        NormalizedStatus::Authorized
    );
    let list: PaymentList = call(&pool, "list_payments", json!({"order_ref": order}));
    assert_eq!(list.total, 1, "{list:?}");
}

#[test]
fn amount_below_minimum_locally_and_on_the_server() {
    let shop = shop();
    let e = fails(
        &shop.pool(),
        "create_payment",
        json!({"order_ref": "A1", "amount_cents": 1999, "channel": "ecommerce", "idempotency_key": "k1"}),
    );
    assert_code(&e, ErrorCode::AmountBelowMinimum);
    assert_eq!(e.field.as_deref(), Some("amount_cents"));
    // The plugin allows 1 €, the shop's agreement with ANCV does not: the server says so.
    let pool = shop.pool_with(&[("min_amount_cents", "100")]);
    let e = fails(
        &pool,
        "create_payment",
        json!({"order_ref": "A2", "amount_cents": 500, "channel": "ecommerce", "idempotency_key": "k2"}),
    );
    assert_code(&e, ErrorCode::AmountBelowMinimum);
    for bad in [json!(0), json!(-5)] {
        let e = fails(
            &pool,
            "create_payment",
            json!({"order_ref": "A3", "amount_cents": bad, "channel": "ecommerce", "idempotency_key": "k3"}),
        );
        assert_code(&e, ErrorCode::InvalidAmount);
    }
}

#[test]
fn collect_beneficiary_then_request_authorization() {
    let pool = shop().pool();
    let p = create_payment(&pool, 2500, None);
    assert_eq!(p.status, NormalizedStatus::Pending);
    assert_eq!(p.next_action, NextAction::CollectBeneficiary);
    let p: Payment = call(
        &pool,
        "request_authorization",
        json!({"payment_id": p.id, "beneficiary": "10000000001"}),
    );
    assert!(matches!(p.next_action, NextAction::WaitForApp { .. }));
    assert_eq!(
        wait_final(&pool, &p.id, WAIT).status,
        NormalizedStatus::Authorized
    );
}

#[test]
fn cancel_is_idempotent_and_refuses_what_cannot_be_cancelled() {
    let pool = shop().pool();
    let p = create_payment(&pool, 3000, Some(DAVID));
    let c: Payment = call(&pool, "cancel_payment", json!({"payment_id": p.id}));
    assert_eq!(c.status, NormalizedStatus::Cancelled);
    assert!(c.is_final);
    // A retry after a lost answer finds it cancelled: success, not an error.
    let again: Payment = call(&pool, "cancel_payment", json!({"payment_id": p.id}));
    assert_eq!(again.status, NormalizedStatus::Cancelled);
    let declined = wait_final(&pool, &create_payment(&pool, 3000, Some(CHLOE)).id, WAIT);
    let e = fails(&pool, "cancel_payment", json!({"payment_id": declined.id}));
    assert_code(&e, ErrorCode::IllegalTransition);
    let e = fails(
        &pool,
        "get_payment",
        json!({"payment_id": "tx_doesnotexist"}),
    );
    assert_code(&e, ErrorCode::TransactionNotFound);
}

#[test]
fn cancel_password_is_checked() {
    let shop = shop_with(json!({}), json!({"cancel_password": "s3cret"}));
    let pool = shop.pool();
    let p = create_payment(&pool, 3000, Some(DAVID));
    let e = fails(
        &pool,
        "cancel_payment",
        json!({"payment_id": p.id, "password": "nope"}),
    );
    assert_code(&e, ErrorCode::Forbidden);
    let c: Payment = call(
        &pool,
        "cancel_payment",
        json!({"payment_id": p.id, "password": "s3cret"}),
    );
    assert_eq!(c.status, NormalizedStatus::Cancelled);
}

#[test]
fn full_and_partial_refunds_with_idempotency() {
    let pool = shop().pool();
    let p = wait_final(&pool, &create_payment(&pool, 6000, Some(ALICE)).id, WAIT);
    assert_eq!(p.status, NormalizedStatus::Authorized);
    let refund = |amount: Option<i64>, key: &str| {
        let mut input = json!({"payment_id": p.id, "idempotency_key": key, "reason": "retour"});
        if let Some(a) = amount {
            input["amount_cents"] = json!(a);
        }
        pool.call_by_name::<_, Payment>("refund_payment", &input)
    };
    let r = refund(Some(1000), "r1").unwrap();
    assert_eq!(r.refunded_cents.cents(), 1000);
    assert_eq!(r.status, NormalizedStatus::Authorized);
    assert_eq!(r.refunds.len(), 1);
    // Same key again: the same refund, not a second one.
    let r = refund(Some(1000), "r1").unwrap();
    assert_eq!(r.refunded_cents.cents(), 1000);
    assert_eq!(r.refunds.len(), 1);
    let e = refund(Some(999_999), "r2").unwrap_err();
    assert_code(&e, ErrorCode::RefundExceedsCaptured);
    let r = refund(None, "r3").unwrap();
    assert_eq!(r.refunded_cents.cents(), 6000);
    assert_eq!(r.status, NormalizedStatus::Refunded);
    assert_eq!(
        refund(Some(0), "r4").unwrap_err().code,
        ErrorCode::InvalidAmount
    );
    // Nothing captured, nothing to refund.
    let pending = create_payment(&pool, 3000, Some(DAVID));
    let e = pool
        .call_by_name::<_, Value>(
            "refund_payment",
            &json!({"payment_id": pending.id, "idempotency_key": "r5"}),
        )
        .unwrap_err();
    assert_code(&e, ErrorCode::IllegalTransition);
}

#[test]
fn deferred_capture() {
    let pool = shop().pool();
    let p: Payment = call(
        &pool,
        "create_payment",
        json!({"order_ref": unique("CMD"), "amount_cents": 4000, "channel": "ecommerce",
               "beneficiary": ALICE, "capture_mode": "DEFERRED", "idempotency_key": unique("k")}),
    );
    let p = wait_final(&pool, &p.id, WAIT);
    assert_eq!(p.ancv_state, TransactionState::Authorized);
    assert_eq!(p.captured_cents.cents(), 0);
    let c: Payment = call(
        &pool,
        "capture_payment",
        json!({"payment_id": p.id, "amount_cents": 3000}),
    );
    assert_eq!(c.ancv_state, TransactionState::Validated);
    assert_eq!(c.captured_cents.cents(), 3000);
    let e = fails(&pool, "capture_payment", json!({"payment_id": p.id}));
    assert_code(&e, ErrorCode::IllegalTransition);
}

#[test]
fn lost_response_then_retry_with_the_same_key_makes_one_transaction() {
    let shop = shop();
    let pool = shop.pool();
    // Warm the token so the lost answer is the creation's.
    let _: Value = call(&pool, "list_payments", json!({"limit": 1}));
    let order = unique("CMD");
    let input = json!({"order_ref": order, "amount_cents": 3300, "channel": "ecommerce",
                       "beneficiary": ALICE, "idempotency_key": unique("k")});
    shop.faults(json!({"lose_next_responses": 1}));
    let e = fails(&pool, "create_payment", input.clone());
    assert_code(&e, ErrorCode::UpstreamUnavailable);
    assert!(e.retryable);
    assert!(e.message_en.contains("same idempotency key"), "{e:?}");
    let p: Payment = call(&pool, "create_payment", input.clone());
    let p = wait_final(&pool, &p.id, WAIT);
    assert_eq!(p.status, NormalizedStatus::Authorized);
    // A third identical call returns the same, already paid, transaction.
    let again: Payment = call(&pool, "create_payment", input);
    assert_eq!(again.id, p.id);
    let list: PaymentList = call(&pool, "list_payments", json!({"order_ref": order}));
    assert_eq!(list.total, 1, "{list:?}");
    // The same key with another body is a conflict, never a second payment.
    let key = unique("k");
    let _: Payment = call(
        &pool,
        "create_payment",
        json!({"order_ref": unique("CMD"), "amount_cents": 2100, "channel": "ecommerce", "idempotency_key": key}),
    );
    let e = fails(
        &pool,
        "create_payment",
        json!({"order_ref": unique("CMD"), "amount_cents": 2200, "channel": "ecommerce", "idempotency_key": key}),
    );
    assert_code(&e, ErrorCode::IdempotencyConflict);
}

#[test]
fn expired_tokens_are_renewed() {
    let shop = shop_with(json!({}), json!({"token_ttl_s": 1}));
    // With the server's Date header the plugin renews before expiry; without it, after a 401.
    for headers in [true, false] {
        let pool = cvco_plugin_host::Pool::builder(wasm())
            .configs(shop.config())
            .allowed_host("127.0.0.1")
            .response_headers(headers)
            .build()
            .unwrap();
        let p = create_payment(&pool, 2500, None);
        std::thread::sleep(Duration::from_millis(1500));
        let again: Payment = call(&pool, "get_payment", json!({"payment_id": p.id}));
        assert_eq!(again.id, p.id);
        assert_eq!(pool.stats().discarded, 0);
    }
}

#[test]
fn wrong_credentials_and_foreign_shop() {
    let shop = shop();
    let other = crate::common::shop();
    let pool = shop.pool_with(&[("client_secret", "wrong")]);
    let e = fails(&pool, "get_payment", json!({"payment_id": "tx_x"}));
    assert_code(&e, ErrorCode::Unauthorized);
    assert!(!e.retryable);
    // Credentials of another shop: a configuration error named after shop_id.
    let pool = shop.pool_with(&[
        ("client_id", other.client_id.as_str()),
        ("client_secret", other.client_secret.as_str()),
    ]);
    let e = fails(&pool, "get_payment", json!({"payment_id": "tx_x"}));
    assert_code(&e, ErrorCode::ConfigInvalid);
    assert_eq!(e.field.as_deref(), Some("shop_id"));
    // A payment of another shop is not found, whatever its id.
    let theirs = create_payment(&other.pool(), 2500, None);
    let e = fails(
        &shop.pool(),
        "get_payment",
        json!({"payment_id": theirs.id}),
    );
    assert_code(&e, ErrorCode::TransactionNotFound);
}
