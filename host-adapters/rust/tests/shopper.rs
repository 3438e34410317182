//! PROTOCOL.md §1 and §3 against the real plugin and the real sandbox, over HTTP.

mod common;
use common::*;
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn full_payment_with_alice_is_idempotent_per_attempt() {
    let env = env().await;
    let shopper = env.shopper();
    let order = shopper.test_order(4550).await;
    let checkout = shopper
        .get(&format!("/cvco/v1/checkout?order_ref={order}"))
        .await;
    assert_eq!(checkout.status, 200, "{}", checkout.text);
    assert_eq!(checkout.body["order_remaining_cents"], 4550);
    assert_eq!(checkout.body["eligible"], true);
    assert_eq!(checkout.body["current_payment"], Value::Null);

    let first = shopper.pay(&order, ALICE, "a1").await;
    assert_eq!(first.status, 201, "{}", first.text);
    let id = first.body["payment_id"].as_str().unwrap().to_string();
    assert_eq!(first.body["amount_cents"], 4550);
    assert_eq!(first.body["status"], "awaiting_beneficiary");
    assert_eq!(first.body["next_action"]["type"], "wait_for_app");
    assert!(!first.body["beneficiary_masked"]
        .as_str()
        .unwrap()
        .contains("alice"));
    let again = shopper.pay(&order, ALICE, "a1").await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body["payment_id"], id.as_str());
    // Another attempt while the first one waits.
    let other = shopper.pay(&order, ALICE, "a2").await;
    assert_eq!(other.status, 409);
    assert_eq!(other.body["code"], "payment_in_progress");
    let resumed = shopper
        .get(&format!("/cvco/v1/checkout?order_ref={order}"))
        .await;
    assert_eq!(resumed.body["current_payment"]["payment_id"], id.as_str());

    let done = shopper.wait_final(&id).await;
    assert_eq!(done["status"], "authorized");
    assert_eq!(done["authorized_cents"], 4550);
    assert_eq!(done["order_remaining_cents"], 0);
    assert_eq!(done["next_action"]["type"], "none");
    // PROTOCOL.md's word, not ANCV's NORMAL.
    assert_eq!(done["capture"], "immediate");
    assert_eq!(
        done["authorizations"][0]["number"].as_str().unwrap().len(),
        6
    );
    assert!(done["transaction_id"].as_str().is_some());
    let o = shopper.get(&format!("/shop/api/orders/{order}")).await;
    assert_eq!(o.body["status"], "paid");
    assert_eq!(o.body["paid_cvco_cents"], 4550);
    // Someone else's session sees nothing.
    let stranger = env.shopper();
    assert_eq!(
        stranger
            .get(&format!("/cvco/v1/payments/{id}"))
            .await
            .status,
        404
    );
    // Byte for byte what an order that does not exist answers: its existence does not leak.
    let theirs = stranger
        .get(&format!("/cvco/v1/checkout?order_ref={order}"))
        .await;
    let nobodys = stranger.get("/cvco/v1/checkout?order_ref=CMD-NOPE").await;
    assert_eq!(theirs.body["code"], "order_not_found");
    assert_eq!(
        (theirs.status, &theirs.text),
        (nobodys.status, &nobodys.text)
    );
    let paid = shopper
        .get(&format!("/cvco/v1/checkout?order_ref={order}"))
        .await;
    assert_eq!(paid.body["eligible"], false);
}

#[tokio::test(flavor = "multi_thread")]
async fn partial_authorization_with_bruno_then_card_for_the_rest() {
    let env = env().await;
    let shopper = env.shopper();
    let order = shopper.test_order(5000).await;
    let p = shopper.pay(&order, BRUNO, "b1").await;
    assert_eq!(p.status, 201, "{}", p.text);
    let done = shopper
        .wait_final(p.body["payment_id"].as_str().unwrap())
        .await;
    assert_eq!(done["status"], "partially_authorized");
    assert_eq!(done["authorized_cents"], 3500);
    assert_eq!(done["remaining_cents"], 1500);
    assert_eq!(done["order_remaining_cents"], 1500);
    let bad = shopper
        .post(
            &format!("/shop/api/orders/{order}/card"),
            json!({"card_number": "4000 0000 0000 0002", "expiry": "12/30", "cvc": "123"}),
        )
        .await;
    assert_eq!(
        (bad.status, bad.body["code"].as_str()),
        (402, Some("card_declined"))
    );
    let card = shopper
        .post(
            &format!("/shop/api/orders/{order}/card"),
            json!({"card_number": "4242 4242 4242 4242", "expiry": "12/30", "cvc": "123"}),
        )
        .await;
    assert_eq!(card.status, 200, "{}", card.text);
    assert_eq!(card.body["paid_card_cents"], 1500);
    assert_eq!(card.body["status"], "paid");
}

#[tokio::test(flavor = "multi_thread")]
async fn decline_then_a_new_attempt_is_allowed() {
    let env = env().await;
    let shopper = env.shopper();
    let order = shopper.test_order(3000).await;
    let p = shopper.pay(&order, CHLOE, "c1").await;
    let done = shopper
        .wait_final(p.body["payment_id"].as_str().unwrap())
        .await;
    assert_eq!(done["status"], "declined");
    assert_eq!(done["order_remaining_cents"], 3000);
    let retry = shopper.pay(&order, ALICE, "c2").await;
    assert_eq!(retry.status, 201, "{}", retry.text);
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_and_invalid_beneficiaries_come_through() {
    let env = env().await;
    let shopper = env.shopper();
    let order = shopper.test_order(3000).await;
    let bad = shopper.pay(&order, "not-an-id", "x1").await;
    assert_eq!(
        (bad.status, bad.body["code"].as_str()),
        (422, Some("invalid_beneficiary"))
    );
    let unknown = shopper.pay(&order, "nobody@sandbox.cvco.test", "x2").await;
    assert_eq!(
        unknown.body["code"], "beneficiary_unknown",
        "{}",
        unknown.text
    );
    // Nothing half-written: the order takes a new payment.
    assert_eq!(shopper.pay(&order, ALICE, "x3").await.status, 201);
    let small = shopper.test_order(1500).await;
    let below = shopper.pay(&small, ALICE, "s1").await;
    assert_eq!(below.body["code"], "amount_below_minimum", "{}", below.text);
    let none = shopper.pay("CMD-NOPE", ALICE, "n1").await;
    assert_eq!(
        (none.status, none.body["code"].as_str()),
        (404, Some("order_not_found"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn expiry_with_david() {
    let env = env().await;
    env.shop_settings(json!({"authorization_timeout_s": 2}))
        .await;
    let shopper = env.shopper();
    let order = shopper.test_order(2500).await;
    let p = shopper.pay(&order, DAVID, "d1").await;
    assert_eq!(p.status, 201, "{}", p.text);
    let done = shopper
        .wait_final(p.body["payment_id"].as_str().unwrap())
        .await;
    assert_eq!(done["status"], "expired");
}

#[tokio::test(flavor = "multi_thread")]
async fn silent_beneficiary_and_lost_notifications_end_expired_by_polling() {
    let env = env().await;
    env.faults(json!({"drop_notifications": true})).await;
    env.shop_settings(json!({"authorization_timeout_s": 1}))
        .await;
    let shopper = env.shopper();
    let order = shopper.test_order(2500).await;
    let p = shopper.pay(&order, DAVID, "d1").await;
    let done = shopper
        .wait_final(p.body["payment_id"].as_str().unwrap())
        .await;
    assert_eq!(done["status"], "expired", "{done}");
}

#[tokio::test(flavor = "multi_thread")]
async fn shopper_cancels_while_waiting() {
    let env = env().await;
    let shopper = env.shopper();
    let order = shopper.test_order(6000).await;
    let p = shopper.pay(&order, JEANNE, "j1").await;
    let id = p.body["payment_id"].as_str().unwrap().to_string();
    let c = shopper
        .post(&format!("/cvco/v1/payments/{id}/cancel"), json!({}))
        .await;
    assert_eq!(c.status, 200, "{}", c.text);
    assert_eq!(c.body["status"], "cancelled");
    assert_eq!(c.body["final"], true);
    let again = shopper
        .post(&format!("/cvco/v1/payments/{id}/cancel"), json!({}))
        .await;
    // The retry of a lost answer: the cancelled payment, unchanged.
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.body["status"], "cancelled");
    assert_eq!(again.body["sequence"], c.body["sequence"]);
}

async fn sse_events(
    env: &Env,
    shopper: &Client,
    id: &str,
    last_event_id: Option<&str>,
) -> Vec<(i64, Value)> {
    let mut req = shopper
        .http
        .get(format!("{}/cvco/v1/payments/{id}/events", env.base));
    if let Some(l) = last_event_id {
        req = req.header("last-event-id", l);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut stream = r.bytes_stream();
    let mut buf = String::new();
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let chunk = tokio::time::timeout_at(deadline, stream.next())
            .await
            .expect("SSE timed out");
        let Some(chunk) = chunk else { break };
        buf.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let mut id = None;
            let mut data = None;
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().parse().ok();
                }
                if let Some(v) = line.strip_prefix("data:") {
                    data = serde_json::from_str(v.trim()).ok();
                }
                if let Some(v) = line.strip_prefix("event:") {
                    assert_eq!(v.trim(), "status");
                }
            }
            if let (Some(id), Some(data)) = (id, data) {
                events.push((id, data));
            }
        }
    }
    events
}

#[tokio::test(flavor = "multi_thread")]
async fn sse_streams_status_events_until_final() {
    let env = env().await;
    let shopper = env.shopper();
    let order = shopper.test_order(4000).await;
    let p = shopper.pay(&order, ALICE, "s1").await;
    let id = p.body["payment_id"].as_str().unwrap().to_string();
    let events = sse_events(&env, &shopper, &id, None).await;
    assert!(!events.is_empty());
    let (last_id, last) = events.last().unwrap();
    assert_eq!(last["status"], "authorized");
    assert_eq!(last["final"], true);
    assert!(
        events.windows(2).all(|w| w[0].0 < w[1].0),
        "sequence increases"
    );
    assert_eq!(*last_id, last["sequence"].as_i64().unwrap());
    // Reconnecting with the last id: nothing newer, the stream ends at once.
    let again = sse_events(&env, &shopper, &id, Some(&last_id.to_string())).await;
    assert!(again.is_empty());
    let older = sse_events(&env, &shopper, &id, Some("0")).await;
    assert_eq!(older.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn restart_in_the_middle_of_a_payment_loses_nothing() {
    let dir = std::env::temp_dir().join(format!(
        "cvco-host-restart-{}-{}",
        std::process::id(),
        cvco_host::util::random_token(4)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let data = dir.join("host.sqlite");
    let mut env = env_with(|c| c.data_file = Some(data.clone())).await;
    let shopper = env.shopper();
    let order = shopper.test_order(7000).await;
    let p = shopper.pay(&order, JEANNE, "r1").await;
    assert_eq!(p.status, 201, "{}", p.text);
    let id = p.body["payment_id"].as_str().unwrap().to_string();
    let tx = p.body["transaction_id"].as_str().unwrap().to_string();
    env.stop_host().await;
    // Decided while the host is down; no notification can reach it now.
    env.faults(json!({"drop_notifications": true})).await;
    env.app_confirm(&tx, JEANNE).await;
    env.restart().await;
    let shopper = Client {
        base: env.base.clone(),
        ..shopper
    };
    let now = shopper.get(&format!("/cvco/v1/payments/{id}")).await;
    assert_eq!(now.status, 200, "{}", now.text);
    assert_eq!(
        now.body["status"], "authorized",
        "reconciled at start-up: {}",
        now.text
    );
    assert_eq!(now.body["order_remaining_cents"], 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn duplicate_and_reordered_notifications_change_nothing_twice() {
    let env = env().await;
    env.faults(json!({"duplicate_notifications": true, "reorder_notifications": true, "reorder_hold_ms": 300})).await;
    let shopper = env.shopper();
    let order = shopper.test_order(4000).await;
    let p = shopper.pay(&order, ALICE, "n1").await;
    let id = p.body["payment_id"].as_str().unwrap().to_string();
    let events = sse_events(&env, &shopper, &id, None).await;
    let statuses: Vec<&str> = events
        .iter()
        .map(|(_, v)| v["status"].as_str().unwrap())
        .collect();
    assert_eq!(*statuses.last().unwrap(), "authorized");
    // Never back from final to waiting.
    let first_final = statuses.iter().position(|s| *s == "authorized").unwrap();
    assert_eq!(first_final, statuses.len() - 1, "{statuses:?}");
    let done = shopper.wait_final(&id).await;
    let seq = done["sequence"].as_i64().unwrap();
    // Wait for the duplicates to be delivered and acknowledged.
    let start = std::time::Instant::now();
    let dupes_acked = loop {
        let log = env
            .admin(
                reqwest::Method::GET,
                "/admin/notifications?shop_id=SHOP-DEMO-01",
                json!(null),
            )
            .await;
        let attempts: Vec<Value> = log["items"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|d| d["attempts"].as_array().cloned().unwrap_or_default())
            .collect();
        let n = attempts
            .iter()
            .filter(|a| a["duplicate"] == true && a["http_status"] == 200)
            .count();
        if n >= 2 || start.elapsed() > Duration::from_secs(20) {
            break n;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(dupes_acked >= 2);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = shopper.get(&format!("/cvco/v1/payments/{id}")).await;
    assert_eq!(
        after.body["sequence"].as_i64().unwrap(),
        seq,
        "duplicates bumped nothing"
    );
    assert_eq!(after.body["status"], "authorized");
}

#[tokio::test(flavor = "multi_thread")]
async fn lost_notifications_polling_takes_over() {
    let env = env().await;
    env.faults(json!({"drop_notifications": true})).await;
    let shopper = env.shopper();
    let order = shopper.test_order(4000).await;
    let p = shopper.pay(&order, ALICE, "l1").await;
    let done = shopper
        .wait_final(p.body["payment_id"].as_str().unwrap())
        .await;
    assert_eq!(done["status"], "authorized");
    let log = env
        .admin(
            reqwest::Method::GET,
            "/admin/notifications?shop_id=SHOP-DEMO-01",
            json!(null),
        )
        .await;
    let items = log["items"].as_array().unwrap();
    assert!(!items.is_empty());
    assert!(
        items
            .iter()
            .all(|d| d["status"] == "dropped"
                && d["attempts"].as_array().is_none_or(|a| a.is_empty())),
        "no notification was delivered: {log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_double_submission_creates_one_payment() {
    let env = env().await;
    let shopper = env.shopper();
    let order = shopper.test_order(4200).await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let s = shopper.clone();
        let o = order.clone();
        tasks.push(tokio::spawn(async move { s.pay(&o, JEANNE, "same").await }));
    }
    let mut ids = std::collections::BTreeSet::new();
    let mut created = 0;
    for t in tasks {
        let a = t.await.unwrap();
        assert!(a.status == 201 || a.status == 200, "{}", a.text);
        created += (a.status == 201) as usize;
        ids.insert(a.body["payment_id"].as_str().unwrap().to_string());
    }
    assert_eq!((ids.len(), created), (1, 1));
    let o = shopper.get(&format!("/shop/api/orders/{order}")).await;
    assert_eq!(o.body["payments"].as_array().unwrap().len(), 1);
    // ANCV saw one transaction for this order too (read through the back-office list).
    let m = env.manager().await;
    let t = m
        .get(&format!("/cvco/v1/transactions?order_ref={order}"))
        .await;
    assert_eq!(t.body["total"], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_amount_never_comes_from_the_browser() {
    let env = env().await;
    let shopper = env.shopper();
    let order = shopper.test_order(8800).await;
    let a = shopper
        .post(
            "/cvco/v1/payments",
            json!({"order_ref": order, "mode": "identifier",
        "beneficiary": ALICE, "attempt": "m1", "amount_cents": 2000}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(a.body["amount_cents"], 8800);
    let done = shopper
        .wait_final(a.body["payment_id"].as_str().unwrap())
        .await;
    assert_eq!(done["authorized_cents"], 8800);
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_and_malformed_notifications_are_refused() {
    let env = env().await;
    let body = r#"{"id":"evt_1","type":"transaction.updated","created_at":"2026-11-25T10:00:00.000Z","shop_id":"SHOP-DEMO-01","merchant_order_id":"X","transaction_id":"tx_1","state":"VALIDATED","sequence":9}"#;
    let forged = env
        .raw
        .post(format!("{}/cvco/v1/notifications", env.base))
        .header("content-type", "application/json")
        .header("cvco-event-id", "evt_1")
        .header(
            "cvco-signature",
            format!(
                "t={},v1={}",
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs(),
                "00".repeat(32)
            ),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 400);
    let v: Value = forged.json().await.unwrap();
    assert_eq!(v["code"], "notification_bad_signature");
    let unsigned = env
        .raw
        .post(format!("{}/cvco/v1/notifications", env.base))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 400);
    // A correctly signed one with a stale timestamp.
    let sig = cvco_core::signature::sign(
        b"whsec_demo_change_me",
        cvco_core::Timestamp::from_secs(1_000_000),
        body.as_bytes(),
    );
    let stale = env
        .raw
        .post(format!("{}/cvco/v1/notifications", env.base))
        .header("cvco-event-id", "evt_1")
        .header("cvco-signature", sig)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 400);
    let v: Value = stale.json().await.unwrap();
    assert_eq!(v["code"], "notification_stale");
}

#[tokio::test(flavor = "multi_thread")]
async fn qr_mode_paid_through_the_app() {
    let env = env().await;
    let shopper = env.shopper();
    let order = shopper.test_order(3300).await;
    let p = shopper
        .post(
            "/cvco/v1/payments",
            json!({"order_ref": order, "mode": "qr", "attempt": "q1"}),
        )
        .await;
    assert_eq!(p.status, 201, "{}", p.text);
    assert_eq!(p.body["next_action"]["type"], "show_qr");
    let payload = p.body["next_action"]["qr_payload"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(payload.starts_with("cvco:pay?"));
    let r = env
        .raw
        .post(format!("{}/app/api/pay", env.sb))
        .json(&json!({"beneficiary": ALICE, "qr_payload": payload}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let tx: Value = r.json().await.unwrap();
    env.app_confirm(tx["id"].as_str().unwrap(), ALICE).await;
    let done = shopper
        .wait_final(p.body["payment_id"].as_str().unwrap())
        .await;
    assert_eq!(done["status"], "authorized", "{done}");
    assert_eq!(done["order_remaining_cents"], 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_creation_answer_retried_with_the_same_attempt_creates_one_transaction() {
    let env = env().await;
    let shopper = env.shopper();
    let order = shopper.test_order(4300).await;
    // Warm the OAuth token so the lost answer is the creation's.
    let warm = shopper.test_order(2500).await;
    assert_eq!(shopper.pay(&warm, ALICE, "w").await.status, 201);
    env.faults(json!({"lose_next_responses": 1})).await;
    let first = shopper.pay(&order, ALICE, "lost").await;
    if first.status != 201 {
        assert_eq!(first.body["retryable"], true, "{}", first.text);
    }
    let second = shopper.pay(&order, ALICE, "lost").await;
    assert!(
        second.status == 201 || second.status == 200,
        "{}",
        second.text
    );
    let done = shopper
        .wait_final(second.body["payment_id"].as_str().unwrap())
        .await;
    assert_eq!(done["status"], "authorized");
    let pool = &env.host.as_ref().unwrap().pool;
    let input = cvco_core::plugin_api::ListPaymentsInput {
        order_ref: Some(order.clone()),
        ..Default::default()
    };
    let list = pool
        .call_async::<cvco_core::plugin_api::exports::ListPayments>(&input)
        .await
        .unwrap();
    assert_eq!(list.total, 1, "ANCV holds one transaction: {list:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn start_up_replays_a_creation_that_never_got_its_answer() {
    let dir = std::env::temp_dir().join(format!(
        "cvco-host-replay-{}-{}",
        std::process::id(),
        cvco_host::util::random_token(4)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let data = dir.join("host.sqlite");
    let mut env = env_with(|c| c.data_file = Some(data.clone())).await;
    let shopper = env.shopper();
    let order = shopper.test_order(4100).await;
    env.stop_host().await;
    // What a crash between "row written" and "plugin answered" leaves behind.
    let input = json!({"order_ref": order, "amount_cents": 4100, "channel": "ecommerce",
        "beneficiary": ALICE, "idempotency_key": "replay-key-1",
        "notification_url": format!("{}/cvco/v1/notifications", env.base)});
    let store = env.store().await;
    let sql = format!(
        "INSERT INTO payments (payment_id, order_ref, attempt, mode, channel, amount_cents, create_call,
            create_input, status, final, created_at, updated_at) VALUES ('pay_REPLAY', '{order}', 'r',
            'identifier', 'ecommerce', 4100, 'create_payment', '{}', 'pending', FALSE, 1, 1)",
        input.to_string().replace('\'', "''")
    );
    store.batch(&sql).await.unwrap();
    drop(store);
    env.restart().await;
    let shopper = Client {
        base: env.base.clone(),
        ..shopper
    };
    let done = shopper.wait_final("pay_REPLAY").await;
    assert_eq!(done["status"], "authorized", "{done}");
    assert!(done["transaction_id"].is_string());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn replayed_and_older_notifications_are_acknowledged_as_duplicates() {
    let env = env().await;
    // Only the notifications this test signs reach the host.
    env.faults(json!({"drop_notifications": true})).await;
    let shopper = env.shopper();
    let order = shopper.test_order(2500).await;
    let p = shopper.pay(&order, DAVID, "n1").await;
    assert_eq!(p.status, 201, "{}", p.text);
    let tx = p.body["transaction_id"].as_str().unwrap().to_string();
    let send = |id: &'static str, tx: String, seq: u64| {
        let (env, order) = (&env, order.clone());
        async move {
            let body = format!(
                r#"{{"id":"{id}","type":"transaction.updated","created_at":"2026-11-25T10:00:00.000Z","shop_id":"SHOP-DEMO-01","merchant_order_id":"{order}","transaction_id":"{tx}","state":"PROCESSING","sequence":{seq}}}"#
            );
            let now = cvco_core::Timestamp(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_millis() as i64,
            );
            let sig = cvco_core::signature::sign(b"whsec_demo_change_me", now, body.as_bytes());
            let r = env
                .raw
                .post(format!("{}/cvco/v1/notifications", env.base))
                .header("content-type", "application/json")
                .header("cvco-event-id", id)
                .header("cvco-signature", sig)
                .body(body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.text().await.unwrap())
        }
    };
    assert_eq!(send("evt_a", tx.clone(), 500).await.0, 204);
    assert_eq!(
        send("evt_a", tx.clone(), 500).await,
        (200, r#"{"duplicate":true}"#.to_string())
    );
    assert_eq!(
        send("evt_b", tx.clone(), 400).await.0,
        200,
        "older sequence"
    );
    assert_eq!(send("evt_c", tx.clone(), 600).await.0, 204);
    // About an object this host does not know: 204, and nothing recorded (the same event again
    // is not a duplicate).
    for _ in 0..2 {
        assert_eq!(
            send("evt_d", "tx_unknown".into(), 1).await,
            (204, String::new())
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_host_cancels_what_outlives_its_deadline() {
    // The sandbox's clock runs a minute late: the deadline it gives has passed for us long
    // before it expires the payment itself, so the host's own cancel is what ends it.
    let env = env().await;
    env.faults(json!({"drop_notifications": true})).await;
    env.shop_settings(json!({"authorization_timeout_s": 2}))
        .await;
    env.admin(
        reqwest::Method::POST,
        "/admin/clock",
        json!({"advance_s": -60}),
    )
    .await;
    let shopper = env.shopper();
    let order = shopper.test_order(2500).await;
    let p = shopper.pay(&order, DAVID, "late").await;
    assert_eq!(p.status, 201, "{}", p.text);
    let done = shopper
        .wait_final(p.body["payment_id"].as_str().unwrap())
        .await;
    assert_eq!(done["status"], "cancelled", "{done}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_merchant_minimum_and_timeout_come_from_the_host_config_and_reach_the_plugin() {
    let env = env_with(|c| {
        c.min_amount_cents = 5000;
        c.authorization_timeout_s = 90;
    })
    .await;
    let shopper = env.shopper();
    let small = shopper.test_order(4000).await;
    let c = shopper
        .get(&format!("/cvco/v1/checkout?order_ref={small}"))
        .await;
    assert_eq!(c.status, 200, "{}", c.text);
    assert_eq!(
        (
            &c.body["eligible"],
            &c.body["ineligible_reason"]["code"],
            &c.body["min_amount_cents"],
            &c.body["authorization_timeout_s"]
        ),
        (
            &json!(false),
            &json!("amount_below_minimum"),
            &json!(5000),
            &json!(90)
        ),
        "{}",
        c.text
    );
    // The plugin got the same minimum: it refuses the payment before any call to ANCV.
    let paid = shopper.pay(&small, ALICE, "m1").await;
    assert_eq!(paid.status, 422, "{}", paid.text);
    assert_eq!(paid.body["code"], "amount_below_minimum");
    let big = shopper.test_order(6000).await;
    let c = shopper
        .get(&format!("/cvco/v1/checkout?order_ref={big}"))
        .await;
    assert_eq!(c.body["eligible"], true, "{}", c.text);
    let paid = shopper.pay(&big, ALICE, "m2").await;
    assert_eq!(paid.status, 201, "{}", paid.text);
}
