//! The "reste dû" below the minimum (TETRA 003 §2): where the merchant's contract allows a lower
//! minimum for a chained payment (`remainder_min_cents`, set in the back-office and at ANCV), the
//! counter's chained payment for the rest goes through; a first payment, or any other amount, keeps
//! the merchant's minimum. Real plugin, real sandbox, SQLite or PostgreSQL.

mod common;
use common::*;
use serde_json::{json, Value};

/// The manager's settings, through the back-office API.
async fn set_settings(manager: &Client, body: Value) {
    let a = manager
        .send(reqwest::Method::PUT, "/cvco/v1/settings", Some(body))
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
}

/// A 40 € counter sale of which Jeanne confirms only 30 € in the app: the order still needs 10 €.
async fn partially_paid_sale(env: &Env, seller: &Client) -> String {
    let order = seller
        .post("/counter/api/orders", json!({"amount_cents": 4000}))
        .await;
    assert_eq!(order.status, 201, "{}", order.text);
    let order_ref = order.body["order_ref"].as_str().unwrap().to_string();
    let p = seller.pay(&order_ref, JEANNE, "a1").await;
    assert_eq!(p.status, 201, "{}", p.text);
    let id = p.body["payment_id"].as_str().unwrap().to_string();
    let mut tx = p.body["transaction_id"].as_str().map(str::to_string);
    let start = std::time::Instant::now();
    while tx.is_none() {
        assert!(start.elapsed().as_secs() < 30, "no transaction for {id}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        tx = seller.get(&format!("/cvco/v1/payments/{id}")).await.body["transaction_id"]
            .as_str()
            .map(str::to_string);
    }
    let r = env
        .raw
        .post(format!(
            "{}/app/api/transactions/{}/confirm",
            env.sb,
            tx.unwrap()
        ))
        .json(&json!({"beneficiary": JEANNE, "pin": "1234", "amount_cents": 3000}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "confirm: {}", r.status());
    let done = seller.wait_final(&id).await;
    assert_eq!(done["status"], "partially_authorized", "{done}");
    assert_eq!(done["authorized_cents"], 3000);
    assert_eq!(done["order_remaining_cents"], 1000);
    order_ref
}

fn below_minimum(a: &Answer, minimum: &str) {
    assert_eq!(a.status, 422, "{}", a.text);
    assert_eq!(a.body["code"], "amount_below_minimum", "{}", a.text);
    assert!(
        a.body["message_fr"].as_str().unwrap().contains(minimum),
        "{}",
        a.text
    );
}

/// A first payment of 10 € (a counter sale of 10 €): refused whatever the remainder minimum.
async fn a_first_payment_of_ten_euros_is_refused(seller: &Client) {
    let order = seller
        .post("/counter/api/orders", json!({"amount_cents": 1000}))
        .await;
    assert_eq!(order.status, 201, "{}", order.text);
    let order_ref = order.body["order_ref"].as_str().unwrap();
    let c = seller
        .get(&format!("/cvco/v1/checkout?order_ref={order_ref}"))
        .await;
    assert_eq!(c.body["eligible"], false, "{}", c.text);
    assert_eq!(c.body["ineligible_reason"]["code"], "amount_below_minimum");
    below_minimum(&seller.pay(order_ref, ALICE, "f1").await, "20,00");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chained_remainder_below_the_minimum_goes_through_where_the_merchant_lowered_it() {
    let env = env().await;
    let manager = env.manager().await;
    // The merchant's contract with ANCV allows 5 € for a chained remainder: ANCV's side (the
    // sandbox's shop) and the back-office's setting.
    env.shop_settings(json!({"remainder_min_cents": 500})).await;
    set_settings(&manager, json!({"remainder_min_cents": 500})).await;
    let seller = env.login("seller", "seller-demo").await;
    a_first_payment_of_ten_euros_is_refused(&seller).await;

    let order_ref = partially_paid_sale(&env, &seller).await;
    let view = seller
        .get(&format!("/counter/api/orders/{order_ref}"))
        .await;
    assert_eq!(
        view.body["remainder"],
        json!({"step": "chain", "amount": 1000, "automatic": false}),
        "{}",
        view.text
    );
    let c = seller
        .get(&format!("/cvco/v1/checkout?order_ref={order_ref}"))
        .await;
    assert_eq!(c.body["eligible"], true, "{}", c.text);
    assert_eq!(c.body["order_remaining_cents"], 1000);
    // Only the remainder itself may go below 20 €: 6 € of the 10 € keeps the minimum.
    let part = seller
        .post(
            "/cvco/v1/back-office/payments",
            json!({"order_ref": order_ref, "amount_cents": 600, "channel": "proximity",
                   "mode": "identifier", "beneficiary": ALICE, "attempt": "p1"}),
        )
        .await;
    below_minimum(&part, "20,00");
    // The chained payment for the 10 € rest.
    let chained = seller.pay(&order_ref, ALICE, "a2").await;
    assert_eq!(chained.status, 201, "{}", chained.text);
    assert_eq!(chained.body["amount_cents"], 1000);
    let done = seller
        .wait_final(chained.body["payment_id"].as_str().unwrap())
        .await;
    assert_eq!(done["status"], "authorized", "{done}");
    assert_eq!(done["order_remaining_cents"], 0);
    let settled = seller
        .get(&format!("/counter/api/orders/{order_ref}"))
        .await;
    assert_eq!(settled.body["remainder"], json!({"step": "settled"}));
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_remainder_minimum_the_chained_ten_euros_are_refused_naming_twenty() {
    let env = env().await;
    let manager = env.manager().await;
    // ANCV would take it, but the merchant did not lower its own minimum: the plugin refuses first.
    env.shop_settings(json!({"remainder_min_cents": 500})).await;
    let settings = manager.get("/cvco/v1/settings").await;
    assert_eq!(settings.body["remainder_min_cents"], Value::Null);
    let seller = env.login("seller", "seller-demo").await;
    a_first_payment_of_ten_euros_is_refused(&seller).await;

    let order_ref = partially_paid_sale(&env, &seller).await;
    let view = seller
        .get(&format!("/counter/api/orders/{order_ref}"))
        .await;
    assert_eq!(
        view.body["remainder"],
        json!({"step": "other_tender", "amount": 1000, "minimum": 2000})
    );
    let c = seller
        .get(&format!("/cvco/v1/checkout?order_ref={order_ref}"))
        .await;
    assert_eq!(c.body["eligible"], false, "{}", c.text);
    assert!(
        c.body["ineligible_reason"]["message_fr"]
            .as_str()
            .unwrap()
            .contains("20,00"),
        "{}",
        c.text
    );
    below_minimum(&seller.pay(&order_ref, ALICE, "a2").await, "20,00");
    // Nothing taken: the order still needs its 10 €.
    let after = seller
        .get(&format!("/counter/api/orders/{order_ref}"))
        .await;
    assert_eq!(after.body["remaining_cents"], 1000, "{}", after.text);
}

#[tokio::test(flavor = "multi_thread")]
async fn ancv_refuses_a_chained_remainder_below_the_minimum_its_contract_does_not_lower() {
    let env = env().await;
    let manager = env.manager().await;
    // The back-office says 5 €, ANCV's side of the contract does not: the sandbox refuses.
    set_settings(&manager, json!({"remainder_min_cents": 500})).await;
    let seller = env.login("seller", "seller-demo").await;
    let order_ref = partially_paid_sale(&env, &seller).await;
    let a = seller.pay(&order_ref, ALICE, "a2").await;
    // Refused by ANCV: the payment ends failed with its reason, nothing authorized.
    let body = if a.status == 201 {
        seller
            .wait_final(a.body["payment_id"].as_str().unwrap())
            .await
    } else {
        below_minimum(&a, "20,00");
        a.body.clone()
    };
    let code = body["error"]["code"]
        .as_str()
        .or(body["code"].as_str())
        .unwrap_or_default();
    assert_eq!(code, "amount_below_minimum", "{body}");
    let after = seller
        .get(&format!("/counter/api/orders/{order_ref}"))
        .await;
    assert_eq!(after.body["remaining_cents"], 1000, "{}", after.text);
    // The same host settings once ANCV's side allows it: the refusal above was ANCV's.
    env.shop_settings(json!({"remainder_min_cents": 500})).await;
    let again = seller.pay(&order_ref, ALICE, "a3").await;
    assert_eq!(again.status, 201, "{}", again.text);
    let done = seller
        .wait_final(again.body["payment_id"].as_str().unwrap())
        .await;
    assert_eq!(done["status"], "authorized", "{done}");
    assert_eq!(done["order_remaining_cents"], 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chained_remainder_below_the_minimum_is_paid_by_the_counters_qr_code_too() {
    let env = env().await;
    let manager = env.manager().await;
    env.shop_settings(json!({"remainder_min_cents": 500})).await;
    set_settings(&manager, json!({"remainder_min_cents": 500})).await;
    let seller = env.login("seller", "seller-demo").await;
    let order_ref = partially_paid_sale(&env, &seller).await;
    // The rest as a payment QR code (an ANCV payment request), scanned and confirmed in the app.
    let qr = seller
        .post(
            "/cvco/v1/payments",
            json!({"order_ref": order_ref, "mode": "qr", "attempt": "q1"}),
        )
        .await;
    assert_eq!(qr.status, 201, "{}", qr.text);
    assert_eq!(qr.body["amount_cents"], 1000);
    assert_eq!(qr.body["next_action"]["type"], "show_qr", "{}", qr.text);
    let request = qr.body["request_id"].as_str().unwrap();
    let tx = env.app_pay_request(request, JEANNE).await;
    env.app_confirm(&tx, JEANNE).await;
    let done = seller
        .wait_final(qr.body["payment_id"].as_str().unwrap())
        .await;
    assert_eq!(done["status"], "authorized", "{done}");
    assert_eq!(done["authorized_cents"], 1000);
    assert_eq!(done["order_remaining_cents"], 0);
}
