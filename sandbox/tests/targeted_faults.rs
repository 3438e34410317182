//! The "next N" faults aimed at one kind of call (`only`), the answer cut off after processing,
//! the 503 before processing and the latency after processing: what the lost-answer matrix of
//! the contract suite (tests/contract/test_lost_answers.py) injects.

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

async fn set_faults(s: &Sbx, shop: &Shop, faults: Value) {
    let mut body = faults;
    body["shop_id"] = json!(shop.id);
    s.put("/admin/faults", body).await.expect(200);
}

fn order(shop: &Shop, reference: &str) -> Value {
    json!({"shop_id": shop.id, "merchant_order_id": reference, "amount_cents": 4550,
           "channel": "ecommerce", "beneficiary": ALICE})
}

async fn listed(s: &Sbx, shop: &Shop, reference: &str) -> u64 {
    let list = s
        .get(
            &format!("/api/v1/transactions?merchant_order_id={reference}"),
            Some(&shop.token),
        )
        .await
        .expect(200);
    cents(&list["total"])
}

#[tokio::test]
async fn a_fault_aimed_at_one_route_spares_the_others() {
    let s = start().await;
    let shop = s.default_shop().await;
    set_faults(
        &s,
        &shop,
        json!({"only": "POST /api/v1/transactions/*/refunds", "fail_next_requests": 1}),
    )
    .await;
    // Reads and creations pass, and do not use the fault up.
    let t = s.create_tx(&shop, json!({"beneficiary": ALICE})).await;
    let id = t["id"].as_str().unwrap();
    s.tx_until(&shop, id, "VALIDATED").await;
    let path = format!("/api/v1/transactions/{id}/refunds");
    let refund = || {
        s.send(
            reqwest::Method::POST,
            &path,
            Some(&shop.token),
            Some(json!({"amount_cents": 500})),
            &[("Idempotency-Key", "r-1")],
        )
    };
    refund().await.expect_error(503, "upstream_unavailable");
    // Refused before processing: nothing refunded, and the fault is used up.
    assert_eq!(cents(&s.tx(&shop, id).await["refunded_cents"]), 0);
    let after = refund().await.expect(201);
    assert_eq!(cents(&after["refunded_cents"]), 500);
    let view = s
        .get(&format!("/admin/faults?shop_id={}", shop.id), None)
        .await
        .expect(200);
    assert_eq!(view["faults"]["fail_next_requests"], 0);

    s.put(
        "/admin/faults",
        json!({"shop_id": shop.id, "only": "transactions"}),
    )
    .await
    .expect_error(422, "invalid_request");
}

#[tokio::test]
async fn a_dropped_answer_reaches_nobody_but_the_money_moved() {
    let s = start().await;
    let shop = s.default_shop().await;
    set_faults(
        &s,
        &shop,
        json!({"only": "POST /api/v1/transactions", "drop_next_responses": 1}),
    )
    .await;
    let sent = s
        .http
        .post(s.url("/api/v1/transactions"))
        .bearer_auth(&shop.token)
        .header("Idempotency-Key", "drop-1")
        .json(&order(&shop, "DROP-1"))
        .send()
        .await;
    // Either the request or the reading of its body fails: no answer is readable.
    let answer = match sent {
        Ok(r) => r.bytes().await.map(|_| ()),
        Err(e) => Err(e),
    };
    assert!(answer.is_err(), "a complete answer arrived");
    assert_eq!(listed(&s, &shop, "DROP-1").await, 1, "processed anyway");
    // The same key finds it; the fault is used up.
    let again = s
        .send(
            reqwest::Method::POST,
            "/api/v1/transactions",
            Some(&shop.token),
            Some(order(&shop, "DROP-1")),
            &[("Idempotency-Key", "drop-1")],
        )
        .await
        .expect(200);
    assert_eq!(again["merchant_order_id"], "DROP-1");
    assert_eq!(listed(&s, &shop, "DROP-1").await, 1);
}

#[tokio::test]
async fn latency_after_processing_delays_an_answer_that_already_counts() {
    let s = start().await;
    let shop = s.default_shop().await;
    set_faults(
        &s,
        &shop,
        json!({"only": "POST /api/v1/transactions", "latency_after_ms": 1500}),
    )
    .await;
    let started = Instant::now();
    let impatient = s
        .http
        .post(s.url("/api/v1/transactions"))
        .bearer_auth(&shop.token)
        .json(&order(&shop, "LATE-1"))
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(impatient.is_err(), "answered within the client's budget");
    assert!(started.elapsed() < Duration::from_millis(1500));
    // The creation was done before the wait: it is listed while the answer is still pending.
    wait_for("the late creation", || async {
        (listed(&s, &shop, "LATE-1").await == 1).then_some(())
    })
    .await;
}
