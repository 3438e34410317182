//! A lost or failed answer from ANCV never loses a payment (issue 10 §1): the payment is kept
//! as `unknown`, reconciled by replaying its creation with the same idempotency key, and no
//! new attempt or retry ever charges the beneficiary twice.

mod common;
use common::*;
use serde_json::{json, Value};

/// What ANCV holds for an order: its transactions, from the sandbox's merchant API.
async fn ancv_transactions(env: &Env, order: &str) -> Vec<Value> {
    let r = env
        .raw
        .post(format!("{}/oauth/token", env.sb))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "demo-client"),
            ("client_secret", "demo-secret"),
        ])
        .send()
        .await
        .unwrap();
    let token: Value = r.json().await.unwrap();
    let list: Value = env
        .raw
        .get(format!(
            "{}/api/v1/transactions?shop_id=SHOP-DEMO-01&merchant_order_id={order}",
            env.sb
        ))
        .bearer_auth(token["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    list["items"].as_array().cloned().unwrap_or_default()
}

async fn payment(shopper: &Client, id: &str) -> Value {
    shopper.get(&format!("/cvco/v1/payments/{id}")).await.body
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_creation_answer_keeps_the_payment_and_the_poller_reconciles_it() {
    let env = env().await;
    let shopper = env.shopper();
    let order = shopper.test_order(4550).await;
    env.faults(json!({"lose_next_responses": 1, "only": "POST /api/v1/transactions"}))
        .await;
    let lost = shopper.pay(&order, DAVID, "a1").await;
    assert!(lost.status >= 500, "{}", lost.text);
    assert_eq!(lost.body["retryable"], true);
    let id = lost.body["payment_id"]
        .as_str()
        .expect("the error names the kept payment")
        .to_string();
    // The reload of the order page finds it (never an empty, payable order).
    let checkout = shopper
        .get(&format!("/cvco/v1/checkout?order_ref={order}"))
        .await;
    assert_eq!(checkout.body["current_payment"]["payment_id"], id.as_str());
    // The poller settles it with ANCV: the one transaction ANCV made, pushed to the app.
    wait_until("reconciled", || async {
        payment(&shopper, &id).await["status"] == "awaiting_beneficiary"
    })
    .await;
    let at_ancv = ancv_transactions(&env, &order).await;
    assert_eq!(at_ancv.len(), 1, "{at_ancv:?}");
    assert_eq!(
        payment(&shopper, &id).await["transaction_id"],
        at_ancv[0]["id"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_attempt_while_the_outcome_is_unknown_gets_409_and_is_never_charged_twice() {
    // A poller too slow to settle it first: the new attempt has to.
    let env = env_with(|c| {
        c.poll_interval_ms = 60_000;
        c.poll_max_ms = 60_000;
    })
    .await;
    let shopper = env.shopper();
    let order = shopper.test_order(2450).await;
    env.faults(json!({"lose_next_responses": 1, "only": "POST /api/v1/transactions"}))
        .await;
    let lost = shopper.pay(&order, ALICE, "a1").await;
    let id = lost.body["payment_id"].as_str().unwrap().to_string();
    // The reload (a new attempt): 409, retryable, naming the payment to follow.
    let again = shopper.pay(&order, ALICE, "a2").await;
    assert_eq!(again.status, 409, "{}", again.text);
    assert_eq!(again.body["code"], "payment_in_progress");
    assert_eq!(again.body["retryable"], true);
    assert_eq!(again.body["payment_id"], id.as_str());
    // Alice approves the one transaction; the order is paid once.
    let done = shopper.wait_final(&id).await;
    assert_eq!(done["status"], "authorized");
    let o = shopper.get(&format!("/shop/api/orders/{order}")).await;
    assert_eq!(o.body["paid_cvco_cents"], 2450);
    let at_ancv = ancv_transactions(&env, &order).await;
    assert_eq!(at_ancv.len(), 1, "{at_ancv:?}");
    assert_eq!(at_ancv[0]["captured_cents"], 2450);
    // And after that, still nothing new can be charged.
    let after = shopper.pay(&order, ALICE, "a3").await;
    assert_eq!(after.status, 409, "{}", after.text);
    assert_eq!(ancv_transactions(&env, &order).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_attempt_retried_after_a_lost_answer_answers_the_reconciled_payment() {
    let env = env_with(|c| {
        c.poll_interval_ms = 60_000;
        c.poll_max_ms = 60_000;
    })
    .await;
    let shopper = env.shopper();
    let order = shopper.test_order(3000).await;
    // The answer is cut off mid-body after ANCV made the transaction.
    env.faults(json!({"drop_next_responses": 1, "only": "POST /api/v1/transactions"}))
        .await;
    let lost = shopper.pay(&order, DAVID, "a1").await;
    assert_eq!(lost.body["retryable"], true, "{}", lost.text);
    let retry = shopper.pay(&order, DAVID, "a1").await;
    assert!(retry.status == 200 || retry.status == 201, "{}", retry.text);
    assert_eq!(retry.body["status"], "awaiting_beneficiary");
    assert!(ancv_transactions(&env, &order).await.len() <= 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_notification_for_a_payment_of_unknown_outcome_is_applied() {
    let env = env_with(|c| {
        c.poll_interval_ms = 60_000;
        c.poll_max_ms = 60_000;
    })
    .await;
    let shopper = env.shopper();
    let order = shopper.test_order(2600).await;
    env.faults(json!({"lose_next_responses": 1, "only": "POST /api/v1/transactions"}))
        .await;
    let lost = shopper.pay(&order, ALICE, "a1").await;
    let id = lost.body["payment_id"].as_str().unwrap().to_string();
    // Alice approves in the app; ANCV notifies; the host recognises its order and applies it.
    wait_until("authorized through the notification", || async {
        payment(&shopper, &id).await["status"] == "authorized"
    })
    .await;
    let p = payment(&shopper, &id).await;
    assert_eq!(p["authorized_cents"], 2600);
    assert!(p["transaction_id"].as_str().is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_payment_left_unknown_by_a_stopped_host_is_reconciled_at_start_up() {
    let dir = std::env::temp_dir().join(format!(
        "cvco-host-unknown-{}-{}",
        std::process::id(),
        cvco_host::util::random_token(4)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let data = dir.join("host.sqlite");
    // No poller in time: only the start-up reconciliation can settle it.
    let mut env = env_with(|c| {
        c.data_file = Some(data.clone());
        c.poll_interval_ms = 60_000;
        c.poll_max_ms = 60_000;
    })
    .await;
    let shopper = env.shopper();
    let order = shopper.test_order(2700).await;
    // ANCV's notification of the new transaction would let the running host reconcile it at
    // once (PROTOCOL.md: a notification for its order), racing the read below: dropped.
    env.faults(
        json!({"drop_next_responses": 1, "only": "POST /api/v1/transactions",
        "drop_notifications": true}),
    )
    .await;
    let lost = shopper.pay(&order, DAVID, "a1").await;
    let id = lost.body["payment_id"].as_str().unwrap().to_string();
    assert_eq!(payment(&shopper, &id).await["status"], "unknown");
    env.stop_host().await;
    env.restart().await;
    let shopper = Client {
        base: env.base.clone(),
        ..shopper
    };
    let p = payment(&shopper, &id).await;
    assert_eq!(p["status"], "awaiting_beneficiary", "{p}");
    let at_ancv = ancv_transactions(&env, &order).await;
    assert_eq!(at_ancv.len(), 1);
    assert_eq!(p["transaction_id"], at_ancv[0]["id"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refund_whose_answer_is_lost_is_recorded_once_without_a_retry() {
    let env = env().await;
    let manager = env.manager().await;
    let shopper = env.shopper();
    let order = shopper.test_order(4000).await;
    let p = shopper.pay(&order, ALICE, "a1").await;
    let id = p.body["payment_id"].as_str().unwrap().to_string();
    shopper.wait_final(&id).await;
    env.faults(json!({"lose_next_responses": 1, "only": "POST /api/v1/transactions/*/refunds"}))
        .await;
    let lost = manager
        .post(
            &format!("/cvco/v1/payments/{id}/refund"),
            json!({"amount_cents": 1000, "attempt": "r1"}),
        )
        .await;
    assert!(lost.status >= 500, "{}", lost.text);
    // Nobody retries: the host reads the payment again and records what ANCV did.
    wait_until("refund recorded", || async {
        payment(&shopper, &id).await["refunded_cents"] == 1000
    })
    .await;
    // A retry of the same attempt refunds nothing more.
    let retry = manager
        .post(
            &format!("/cvco/v1/payments/{id}/refund"),
            json!({"amount_cents": 1000, "attempt": "r1"}),
        )
        .await;
    assert_eq!(retry.status, 200, "{}", retry.text);
    assert_eq!(retry.body["refunded_cents"], 1000);
    let at_ancv = ancv_transactions(&env, &order).await;
    assert_eq!(at_ancv[0]["refunded_cents"], 1000);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_email_request_whose_answer_is_lost_is_listed_and_never_sent_twice() {
    let env = env_with(|c| {
        c.poll_interval_ms = 60_000;
        c.poll_max_ms = 60_000;
    })
    .await;
    let seller = env.login("seller", "seller-demo").await;
    let request = |attempt: &str| {
        json!({"order_ref": "DOS-LOST-1", "amount_cents": 12000, "delivery": "email",
               "email": JEANNE, "capture": "immediate", "attempt": attempt})
    };
    env.faults(json!({"lose_next_responses": 1, "only": "POST /api/v1/pre-transactions"}))
        .await;
    let lost = seller
        .post("/cvco/v1/payment-requests", request("e1"))
        .await;
    assert!(lost.status >= 500, "{}", lost.text);
    assert!(lost.body["payment_id"].as_str().is_some(), "{}", lost.text);
    // The back-office still shows it, as unknown (the e-mail may have gone out).
    let list = seller.get("/cvco/v1/payment-requests").await;
    let unknown: Vec<&Value> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["order_ref"] == "DOS-LOST-1")
        .collect();
    assert_eq!(unknown.len(), 1, "{}", list.text);
    assert_eq!(unknown[0]["status"], "unknown");
    // Sending it again under a new attempt reconciles first: the one request, never a second.
    let again = seller
        .post("/cvco/v1/payment-requests", request("e2"))
        .await;
    assert_eq!(again.status, 409, "{}", again.text);
    assert_eq!(again.body["code"], "payment_in_progress");
    let list = seller.get("/cvco/v1/payment-requests").await;
    let mine: Vec<&Value> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["order_ref"] == "DOS-LOST-1")
        .collect();
    assert_eq!(mine.len(), 1, "{}", list.text);
    assert_eq!(mine[0]["status"], "awaiting_beneficiary");
    assert!(mine[0]["request_id"].as_str().is_some());
}
