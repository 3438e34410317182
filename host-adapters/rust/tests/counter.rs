//! The counter and the kiosk against the real plugin and sandbox: cancellation by the reference
//! typed first, the remainder's next step, and the unattended kiosk.

mod common;
use common::*;
use serde_json::{json, Value};

/// A counter sale of `amount` paid by `who` through the widget's endpoint; the final Payment.
async fn counter_paid(env: &Env, seller: &Client, amount: i64, who: &str) -> (String, Value) {
    let order = seller
        .post("/counter/api/orders", json!({"amount_cents": amount}))
        .await;
    assert_eq!(order.status, 201, "{}", order.text);
    let order_ref = order.body["order_ref"].as_str().unwrap().to_string();
    let p = seller.pay(&order_ref, who, "a1").await;
    assert_eq!(p.status, 201, "{}", p.text);
    let _ = env;
    let done = seller
        .wait_final(p.body["payment_id"].as_str().unwrap())
        .await;
    (order_ref, done)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancellation_finds_the_payment_by_the_reference_typed_first_and_voids_it_once() {
    let env = env().await;
    let manager = env.manager().await;
    let (_, paid) = counter_paid(&env, &manager, 4000, ALICE).await;
    assert_eq!(paid["status"], "authorized", "{paid}");
    let reference = paid["transaction_id"].as_str().unwrap().to_string();

    let unknown = manager
        .post(
            "/cvco/v1/cancellations",
            json!({"transaction_id": "tx_nope"}),
        )
        .await;
    assert_eq!(unknown.status, 404, "{}", unknown.text);
    assert_eq!(unknown.body["code"], "transaction_not_found");
    assert_eq!(unknown.body["field"], "transaction_id");
    let empty = manager
        .post("/cvco/v1/cancellations", json!({"transaction_id": ""}))
        .await;
    assert_eq!(empty.status, 422, "{}", empty.text);

    // Two tills (or a double tap) at once: one void, the same answer twice. A second void would
    // reach the sandbox, which refuses to cancel a cancelled transaction.
    let body = json!({"transaction_id": reference});
    let (a, b) = tokio::join!(
        manager.post("/cvco/v1/cancellations", body.clone()),
        manager.post("/cvco/v1/cancellations", body.clone()),
    );
    for r in [&a, &b] {
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["status"], "cancelled");
        assert_eq!(r.body["payment_id"], paid["payment_id"]);
        assert_eq!(r.body["authorized_cents"], 0);
    }
    assert_eq!(a.body["sequence"], b.body["sequence"]);
    let again = manager.post("/cvco/v1/cancellations", body).await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(
        again.body["sequence"], a.body["sequence"],
        "nothing changed"
    );

    assert_eq!(
        cancel_notifications(&env, &reference).await,
        1,
        "voided once"
    );
    // Without a staff session, nothing.
    let anonymous = env
        .shopper()
        .post(
            "/cvco/v1/cancellations",
            json!({"transaction_id": reference}),
        )
        .await;
    assert_eq!(anonymous.status, 401, "{}", anonymous.text);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancellation_by_reference_asks_the_merchant_password_when_one_is_set() {
    let env = env().await;
    let manager = env.manager().await;
    let (_, paid) = counter_paid(&env, &manager, 2500, ALICE).await;
    let reference = paid["transaction_id"].as_str().unwrap();
    env.shop_settings(json!({"cancel_password": "4321"})).await;
    let wrong = manager
        .post(
            "/cvco/v1/cancellations",
            json!({"transaction_id": reference, "password": "0000"}),
        )
        .await;
    assert_eq!(wrong.status, 403, "{}", wrong.text);
    assert_eq!(wrong.body["code"], "forbidden");
    let still = manager
        .get(&format!(
            "/cvco/v1/payments/{}",
            paid["payment_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(still.body["status"], "authorized", "{}", still.text);
    let right = manager
        .post(
            "/cvco/v1/cancellations",
            json!({"transaction_id": reference, "password": "4321"}),
        )
        .await;
    assert_eq!(right.status, 200, "{}", right.text);
    assert_eq!(right.body["status"], "cancelled");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_counter_chains_a_remainder_above_the_minimum_and_sends_a_smaller_one_to_another_tender(
) {
    let env = env().await;
    let manager = env.manager().await;
    // Bruno's balance is 35,00 €: a partial authorization.
    let (big, p) = counter_paid(&env, &manager, 12000, BRUNO).await;
    assert_eq!(p["status"], "partially_authorized", "{p}");
    let view = manager.get(&format!("/counter/api/orders/{big}")).await;
    assert_eq!(view.status, 200, "{}", view.text);
    assert_eq!(view.body["remaining_cents"], 8500);
    assert_eq!(
        view.body["remainder"],
        json!({"step": "chain", "amount": 8500, "automatic": false})
    );
    // The chained transaction for the rest, on the same order.
    let chained = manager.pay(&big, ALICE, "a2").await;
    assert_eq!(chained.status, 201, "{}", chained.text);
    assert_eq!(chained.body["amount_cents"], 8500);
    let done = manager
        .wait_final(chained.body["payment_id"].as_str().unwrap())
        .await;
    assert_eq!(done["order_remaining_cents"], 0);
    let settled = manager.get(&format!("/counter/api/orders/{big}")).await;
    assert_eq!(settled.body["remainder"], json!({"step": "settled"}));

    let (small, _) = counter_paid(&env, &manager, 5000, BRUNO).await;
    let view = manager.get(&format!("/counter/api/orders/{small}")).await;
    assert_eq!(
        view.body["remainder"],
        json!({"step": "other_tender", "amount": 1500, "minimum": 2000})
    );
    // The counter page's order view is the seller's merchant's only.
    let shopper = env.shopper();
    let hidden = shopper.get(&format!("/counter/api/orders/{small}")).await;
    assert_eq!(hidden.status, 401);
}

async fn kiosk_order(manager: &Client, amount: i64) -> String {
    let o = manager
        .post(
            "/kiosk/api/orders",
            json!({"amount_cents": amount, "label": "Forfait piscine"}),
        )
        .await;
    assert_eq!(o.status, 201, "{}", o.text);
    assert_eq!(o.body["total_cents"], amount);
    o.body["order_ref"].as_str().unwrap().to_string()
}

/// The kiosk screen's poll until the payment is final.
async fn kiosk_final(kiosk: &Client, payment_id: &str) -> Value {
    let start = std::time::Instant::now();
    loop {
        let a = kiosk
            .get(&format!("/kiosk/api/payments/{payment_id}"))
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
        if a.body["payment"]["final"] == true {
            return a.body;
        }
        assert!(start.elapsed().as_secs() < 30, "not final: {}", a.text);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kiosk_shopper_pays_the_kiosk_order_without_login_on_the_kiosk_channel() {
    let env = env().await;
    let manager = env.manager().await;
    let order_ref = kiosk_order(&manager, 3000).await;
    // The kiosk holds no session at all.
    let kiosk = env.shopper();
    let screen = kiosk.get(&format!("/kiosk/api/orders/{order_ref}")).await;
    assert_eq!(screen.status, 200, "{}", screen.text);
    assert_eq!(screen.body["total_cents"], 3000);
    assert_eq!(screen.body["label"], "Forfait piscine");
    assert!(screen.body["payment"].is_null());
    // The browser's amount is ignored: the order says how much.
    let p = kiosk
        .post(
            "/kiosk/api/payments",
            json!({"order_ref": order_ref, "mode": "identifier", "beneficiary": ALICE,
                   "attempt": "k1", "amount_cents": 1}),
        )
        .await;
    assert_eq!(p.status, 201, "{}", p.text);
    assert_eq!(p.body["payment"]["amount_cents"], 3000);
    let id = p.body["payment"]["payment_id"]
        .as_str()
        .unwrap()
        .to_string();
    let done = kiosk_final(&kiosk, &id).await;
    assert_eq!(done["outcome"], "paid", "{done}");
    // Sent to ANCV on the kiosk channel.
    assert_eq!(done["payment"]["channel"], "kiosk", "{done}");
    // Nothing but kiosk orders: a counter order is unknown here, and so are its payments.
    let (counter_ref, counter_paid) = counter_paid(&env, &manager, 2000, ALICE).await;
    let other = kiosk.get(&format!("/kiosk/api/orders/{counter_ref}")).await;
    assert_eq!(other.status, 404);
    let other = kiosk
        .get(&format!(
            "/kiosk/api/payments/{}",
            counter_paid["payment_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(other.status, 404);
    let other = kiosk
        .post(
            "/kiosk/api/payments",
            json!({"order_ref": counter_ref, "mode": "qr", "attempt": "k9"}),
        )
        .await;
    assert_eq!(other.status, 404, "{}", other.text);
    // Placing a kiosk order is staff's (the kiosk's system), never the shopper's.
    let refused = kiosk
        .post("/kiosk/api/orders", json!({"amount_cents": 100}))
        .await;
    assert_eq!(refused.status, 401);
    // The page itself is served without login.
    let page = kiosk.get(&format!("/kiosk?order_ref={order_ref}")).await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains("kiosk.js"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kiosk_qr_payment_can_be_abandoned_and_a_partial_one_is_kept_by_default() {
    let env = env().await;
    let manager = env.manager().await;
    let order_ref = kiosk_order(&manager, 6000).await;
    let kiosk = env.shopper();
    let qr = kiosk
        .post(
            "/kiosk/api/payments",
            json!({"order_ref": order_ref, "mode": "qr", "attempt": "q1"}),
        )
        .await;
    assert_eq!(qr.status, 201, "{}", qr.text);
    assert_eq!(qr.body["payment"]["next_action"]["type"], "show_qr");
    assert!(
        qr.body["qr_svg"].as_str().unwrap_or("").contains("<svg"),
        "{}",
        qr.text
    );
    let id = qr.body["payment"]["payment_id"].as_str().unwrap();
    let gone = kiosk
        .post(&format!("/kiosk/api/payments/{id}/cancel"), json!({}))
        .await;
    assert_eq!(gone.status, 200, "{}", gone.text);
    assert_eq!(gone.body["outcome"], "cancelled");
    // refuse_partial is off by default: Bruno's 35,00 € are kept, the rest is still due.
    let p = kiosk
        .post(
            "/kiosk/api/payments",
            json!({"order_ref": order_ref, "mode": "identifier", "beneficiary": BRUNO, "attempt": "k2"}),
        )
        .await;
    assert_eq!(p.status, 201, "{}", p.text);
    let done = kiosk_final(&kiosk, p.body["payment"]["payment_id"].as_str().unwrap()).await;
    assert_eq!(done["outcome"], "partial", "{done}");
    assert_eq!(done["payment"]["authorized_cents"], 3500);
    let screen = kiosk.get(&format!("/kiosk/api/orders/{order_ref}")).await;
    assert_eq!(screen.body["remaining_cents"], 2500);
}

/// CANCELLED events of the transaction in the sandbox's notification log: one per void.
async fn cancel_notifications(env: &Env, tx: &str) -> usize {
    let log = env
        .admin(reqwest::Method::GET, "/admin/notifications", Value::Null)
        .await;
    log["items"]
        .as_array()
        .expect("notification log")
        .iter()
        .filter(|n| n.to_string().contains(tx) && n.to_string().contains("\"CANCELLED\""))
        .count()
}

async fn put_settings(manager: &Client, body: Value) {
    let r = manager
        .send(reqwest::Method::PUT, "/cvco/v1/settings", Some(body))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kiosk_voids_a_partial_authorization_once_when_the_merchant_refuses_them() {
    let env = env().await;
    let manager = env.manager().await;
    put_settings(&manager, json!({"refuse_partial": true})).await;
    let order_ref = kiosk_order(&manager, 6000).await;
    let kiosk = env.shopper();
    let p = kiosk
        .post(
            "/kiosk/api/payments",
            json!({"order_ref": order_ref, "mode": "identifier", "beneficiary": BRUNO, "attempt": "k1"}),
        )
        .await;
    assert_eq!(p.status, 201, "{}", p.text);
    let id = p.body["payment"]["payment_id"]
        .as_str()
        .unwrap()
        .to_string();
    // Final at the host (ANCV's notification delivered, so recorded) before any screen asked.
    let tx = p.body["payment"]["transaction_id"]
        .as_str()
        .expect("transaction id")
        .to_string();
    wait_until("the partial authorization notified", || {
        let env = &env;
        let tx = tx.clone();
        async move {
            let log = env
                .admin(reqwest::Method::GET, "/admin/notifications", Value::Null)
                .await;
            log["items"].as_array().unwrap().iter().any(|n| {
                n["object_id"] == tx.as_str()
                    && n["status"].to_string().to_lowercase().contains("delivered")
                    && ["VALIDATED", "AUTHORIZED"]
                        .iter()
                        .any(|st| n["state"] == *st)
            })
        }
    })
    .await;
    // Four screens polling at once (or a poll and reloads): one void at ANCV.
    let path = format!("/kiosk/api/payments/{id}");
    let polls = futures_util::future::join_all((0..4).map(|_| kiosk.get(&path))).await;
    for done in &polls {
        assert_eq!(done.status, 200, "{}", done.text);
        assert_eq!(done.body["outcome"], "balance_short", "{}", done.text);
        assert_eq!(done.body["payment"]["status"], "cancelled");
        assert_eq!(done.body["payment"]["authorized_cents"], 0);
    }
    assert_eq!(cancel_notifications(&env, &tx).await, 1, "voided once");
    let screen = kiosk.get(&format!("/kiosk/api/orders/{order_ref}")).await;
    assert_eq!(screen.body["remaining_cents"], 6000, "nothing kept");
    assert_eq!(screen.body["payment"]["outcome"], "balance_short");

    // At the counter there is another tender: the same partial authorization is kept.
    let (_, kept) = counter_paid(&env, &manager, 6000, BRUNO).await;
    assert_eq!(kept["status"], "partially_authorized", "{kept}");
    assert_eq!(kept["authorized_cents"], 3500);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_counter_remainder_follows_the_merchant_settings() {
    let env = env().await;
    let manager = env.manager().await;
    put_settings(
        &manager,
        json!({"auto_remainder": true, "remainder_min_cents": 500}),
    )
    .await;
    let (small, _) = counter_paid(&env, &manager, 5000, BRUNO).await;
    let view = manager.get(&format!("/counter/api/orders/{small}")).await;
    assert_eq!(
        view.body["remainder"],
        json!({"step": "chain", "amount": 1500, "automatic": true})
    );
    put_settings(&manager, json!({"remainder_min_cents": null})).await;
    let view = manager.get(&format!("/counter/api/orders/{small}")).await;
    assert_eq!(
        view.body["remainder"],
        json!({"step": "other_tender", "amount": 1500, "minimum": 2000})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kiosk_partial_that_ancv_refuses_to_void_is_shown_as_paid_in_part_not_as_nothing_taken() {
    let env = env().await;
    let manager = env.manager().await;
    put_settings(&manager, json!({"refuse_partial": true})).await;
    // ANCV's side asks a cancellation password the kiosk does not have: the void is refused.
    env.shop_settings(json!({"cancel_password": "4321"})).await;
    let order_ref = kiosk_order(&manager, 6000).await;
    let kiosk = env.shopper();
    let p = kiosk
        .post(
            "/kiosk/api/payments",
            json!({"order_ref": order_ref, "mode": "identifier", "beneficiary": BRUNO, "attempt": "k1"}),
        )
        .await;
    assert_eq!(p.status, 201, "{}", p.text);
    let done = kiosk_final(&kiosk, p.body["payment"]["payment_id"].as_str().unwrap()).await;
    assert_eq!(done["outcome"], "partial", "{done}");
    assert_eq!(done["payment"]["authorized_cents"], 3500);
    let screen = kiosk.get(&format!("/kiosk/api/orders/{order_ref}")).await;
    assert_eq!(screen.body["remaining_cents"], 2500);
}
