//! Lost answers, retries and races against every mutating export: the same key (or the same
//! operation repeated) never moves money twice, and a repeat is never a non-retryable error.

use crate::common::*;
use cvco_core::plugin_api::{ConnectionStatus, Payment, PaymentList, PaymentRequest};
use cvco_core::{ErrorCode, NormalizedStatus, TransactionState};
use serde_json::{json, Value};
use std::time::Duration;

const ALICE: &str = "alice.approve@sandbox.cvco.test";
const DAVID: &str = "david.silent@sandbox.cvco.test";
const EVE: &str = "eve.blocked@sandbox.cvco.test";
const WAIT: Duration = Duration::from_secs(10);

fn transactions_of(pool: &cvco_plugin_host::Pool, order: &str) -> PaymentList {
    call(pool, "list_payments", json!({ "order_ref": order }))
}

#[test]
fn a_refused_beneficiary_leaves_no_transaction_at_ancv() {
    let pool = shop().pool();
    let order = unique("CMD");
    for (who, code) in [
        (EVE, ErrorCode::BeneficiaryBlocked),
        ("10000000099", ErrorCode::BeneficiaryUnknown),
    ] {
        let e = fails(
            &pool,
            "create_payment",
            json!({"order_ref": order, "amount_cents": 3000, "channel": "ecommerce",
                   "beneficiary": who, "idempotency_key": unique("k")}),
        );
        assert_code(&e, code);
    }
    assert_eq!(transactions_of(&pool, &order).total, 0);
}

#[test]
fn a_create_retried_after_a_lost_answer_answers_the_same_transaction() {
    let shop = shop();
    let pool = shop.pool();
    let order = unique("CMD");
    let input = json!({"order_ref": order, "amount_cents": 3000, "channel": "ecommerce",
                       "beneficiary": DAVID, "idempotency_key": unique("k")});
    shop.faults(json!({"lose_next_responses": 1}));
    let e = fails(&pool, "create_payment", input.clone());
    assert!(e.retryable, "{e:?}");
    assert!(e.code.outcome_unknown());
    shop.clear_faults();
    let p: Payment = call(&pool, "create_payment", input);
    assert_eq!(p.status, NormalizedStatus::AwaitingBeneficiary);
    let list = transactions_of(&pool, &order);
    assert_eq!(list.total, 1, "{list:?}");
    assert_eq!(list.items[0].id, p.id);
}

/// Runs `f` from `n` threads at the same moment.
fn at_once<T: Send + 'static>(n: usize, f: impl Fn() -> T + Send + Sync + 'static) -> Vec<T> {
    let f = std::sync::Arc::new(f);
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let (f, barrier) = (f.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                f()
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

/// Every answer is the one payment, or a retryable "in progress": never another error.
fn same_payment_or_in_progress(results: &[Result<Value, cvco_core::CvcoError>]) -> String {
    let mut id = None;
    for r in results {
        match r {
            Ok(v) => {
                let this = v["id"].as_str().unwrap().to_string();
                assert!(id.get_or_insert(this.clone()) == &this, "{results:?}");
            }
            Err(e) => {
                assert_code(e, ErrorCode::PaymentInProgress);
                assert!(e.retryable);
            }
        }
    }
    id.expect("at least one caller got the payment")
}

#[test]
fn concurrent_duplicates_of_a_create_make_one_transaction() {
    let pool = shop().pool();
    let order = unique("CMD");
    let input = json!({"order_ref": order, "amount_cents": 3000, "channel": "ecommerce",
                       "beneficiary": DAVID, "idempotency_key": unique("k")});
    let p2 = pool.clone();
    let results = at_once(6, move || {
        p2.call_by_name::<_, Value>("create_payment", &input)
    });
    same_payment_or_in_progress(&results);
    assert_eq!(transactions_of(&pool, &order).total, 1);
}

#[test]
fn request_authorization_repeated_after_a_lost_answer_pushes_once() {
    let shop = shop();
    let pool = shop.pool();
    let p = create_payment(&pool, 2500, None);
    let key = unique("push");
    let push = json!({"payment_id": p.id, "beneficiary": DAVID, "idempotency_key": key});
    shop.faults(json!({"lose_next_responses": 1}));
    let e = fails(&pool, "request_authorization", push.clone());
    assert!(e.retryable, "{e:?}");
    shop.clear_faults();
    // Same key: the same payment, as it is now.
    let again: Payment = call(&pool, "request_authorization", push);
    assert_eq!(again.id, p.id);
    assert_eq!(again.ancv_state, TransactionState::Processing);
    // No key: the repeat finds it pushed and says so, retryable, naming the payment.
    let e = fails(
        &pool,
        "request_authorization",
        json!({"payment_id": p.id, "beneficiary": DAVID}),
    );
    assert_code(&e, ErrorCode::PaymentInProgress);
    assert!(e.retryable);
    assert_eq!(e.payment_id.as_deref(), Some(p.id.as_str()));
}

#[test]
fn concurrent_request_authorizations_never_answer_illegal_transition() {
    let pool = shop().pool();
    let p = create_payment(&pool, 2500, None);
    for key in [Some(unique("push")), None] {
        let p = create_payment(&pool, 2500 + key.is_none() as i64, None);
        let mut push = json!({"payment_id": p.id, "beneficiary": DAVID});
        if let Some(k) = key {
            push["idempotency_key"] = json!(k);
        }
        let p2 = pool.clone();
        let results = at_once(6, move || {
            p2.call_by_name::<_, Value>("request_authorization", &push)
        });
        assert_eq!(same_payment_or_in_progress(&results), p.id);
    }
    let _ = p;
}

#[test]
fn a_capture_repeated_after_a_lost_answer_answers_the_captured_payment() {
    let shop = shop();
    let pool = shop.pool();
    let p: Payment = call(
        &pool,
        "create_payment",
        json!({"order_ref": unique("CMD"), "amount_cents": 4000, "channel": "ecommerce",
               "beneficiary": ALICE, "capture_mode": "DEFERRED", "idempotency_key": unique("k")}),
    );
    let p = wait_final(&pool, &p.id, WAIT);
    assert_eq!(p.ancv_state, TransactionState::Authorized);
    shop.faults(json!({"lose_next_responses": 1}));
    let e = fails(&pool, "capture_payment", json!({"payment_id": p.id}));
    assert!(e.retryable, "{e:?}");
    shop.clear_faults();
    let again: Payment = call(&pool, "capture_payment", json!({"payment_id": p.id}));
    assert_eq!(again.ancv_state, TransactionState::Validated);
    assert_eq!(again.captured_cents.cents(), 4000);
}

#[test]
fn a_refund_repeated_after_a_lost_answer_refunds_once() {
    let shop = shop();
    let pool = shop.pool();
    let p = create_payment(&pool, 4000, Some(ALICE));
    wait_final(&pool, &p.id, WAIT);
    let refund = json!({"payment_id": p.id, "amount_cents": 1000, "idempotency_key": unique("r")});
    shop.faults(json!({"lose_next_responses": 1}));
    let e = fails(&pool, "refund_payment", refund.clone());
    assert!(e.retryable, "{e:?}");
    shop.clear_faults();
    let again: Payment = call(&pool, "refund_payment", refund);
    assert_eq!(again.refunded_cents.cents(), 1000);
    assert_eq!(again.refunds.len(), 1);
}

#[test]
fn cancelling_a_captured_payment_is_a_void_that_keeps_no_money() {
    let shop = shop();
    let pool = shop.pool();
    let p = create_payment(&pool, 4000, Some(ALICE));
    let p = wait_final(&pool, &p.id, WAIT);
    assert_eq!(p.captured_cents.cents(), 4000);
    shop.faults(json!({"lose_next_responses": 1}));
    let e = fails(&pool, "cancel_payment", json!({"payment_id": p.id}));
    assert!(e.retryable, "{e:?}");
    shop.clear_faults();
    let c: Payment = call(&pool, "cancel_payment", json!({"payment_id": p.id}));
    assert_eq!(c.status, NormalizedStatus::Cancelled);
    assert_eq!(c.ancv_state, TransactionState::Cancelled);
    assert_eq!(
        (
            c.authorized_cents.cents(),
            c.captured_cents.cents(),
            c.refunded_cents.cents()
        ),
        (0, 0, 0)
    );
    // ANCV agrees: nothing of it is left to remit.
    let read: Payment = call(&pool, "get_payment", json!({"payment_id": p.id}));
    assert_eq!(read.captured_cents.cents(), 0);
}

#[test]
fn a_payment_request_retried_after_a_lost_answer_is_the_same_request() {
    let shop = shop();
    let pool = shop.pool();
    let input = json!({"order_ref": unique("MOTO"), "amount_cents": 4200, "delivery": "email",
                       "email": "jeanne.manual@sandbox.cvco.test", "idempotency_key": unique("k")});
    shop.faults(json!({"lose_next_responses": 1}));
    let e = fails(&pool, "create_payment_request", input.clone());
    assert!(e.retryable, "{e:?}");
    shop.clear_faults();
    let a: PaymentRequest = call(&pool, "create_payment_request", input.clone());
    let b: PaymentRequest = call(&pool, "create_payment_request", input);
    assert_eq!(a.id, b.id);
    // Without a key a request could be sent twice: the key is required.
    let e = fails(
        &pool,
        "create_payment_request",
        json!({"order_ref": unique("MOTO"), "amount_cents": 4200, "delivery": "qr"}),
    );
    assert_eq!(e.field.as_deref(), Some("idempotency_key"));
}

#[test]
fn check_connection_proves_the_configuration() {
    let shop = shop();
    let ok: ConnectionStatus = call(&shop.pool(), "check_connection", json!({}));
    assert!(ok.ok);
    assert_eq!(ok.shop_id, shop.id);
    let e = fails(
        &shop.pool_with(&[("client_secret", "wrong")]),
        "check_connection",
        json!({}),
    );
    assert_code(&e, ErrorCode::Unauthorized);
    assert!(!e.retryable);
}
