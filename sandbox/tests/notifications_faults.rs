//! Signed notifications received by a real receiver, retries, and every injected fault.

mod common;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use common::*;
use cvco_core::signature::{verify, DEFAULT_TOLERANCE_S};
use cvco_core::Timestamp;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn wall_now() -> Timestamp {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    Timestamp(d.as_millis() as i64)
}

#[derive(Clone, Debug)]
struct Received {
    event_id: String,
    signature: String,
    body: Vec<u8>,
}

/// A tiny merchant endpoint: answers 500 to its first `failures` calls, then 200.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
    calls: Arc<AtomicU32>,
}

async fn receiver(failures: u32) -> Receiver {
    let got = Arc::new(Mutex::new(Vec::new()));
    let calls = Arc::new(AtomicU32::new(0));
    let (g, c) = (got.clone(), calls.clone());
    let app = axum::Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: Bytes| {
            let (g, c) = (g.clone(), c.clone());
            async move {
                let n = c.fetch_add(1, Ordering::SeqCst);
                let h = |k: &str| {
                    headers
                        .get(k)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string()
                };
                assert_eq!(h("content-type"), "application/json");
                g.lock().unwrap().push(Received {
                    event_id: h("cvco-event-id"),
                    signature: h("cvco-signature"),
                    body: body.to_vec(),
                });
                if n < failures {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Receiver { url, got, calls }
}

impl Receiver {
    fn all(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Verifies every signature with the shop's secret and returns the bodies as JSON.
    fn verified(&self, secret: &str) -> Vec<(String, Value)> {
        self.all()
            .into_iter()
            .map(|r| {
                let v = verify(
                    secret.as_bytes(),
                    &r.signature,
                    &r.body,
                    wall_now(),
                    DEFAULT_TOLERANCE_S,
                )
                .expect("signature verifies");
                assert_eq!(v.event_id, r.event_id, "CVCo-Event-Id matches the body");
                (r.event_id, serde_json::from_slice(&r.body).unwrap())
            })
            .collect()
    }
}

async fn log(s: &Sbx, shop: &Shop) -> Vec<Value> {
    let r = s
        .get(&format!("/admin/notifications?shop_id={}", shop.id), None)
        .await
        .expect(200);
    r["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn signed_notifications_for_every_state_change() {
    let s = start().await;
    let shop = s.default_shop().await;
    let rx = receiver(0).await;
    let t = s
        .create_tx(
            &shop,
            json!({"beneficiary": ALICE, "notification_url": rx.url}),
        )
        .await;
    let id = t["id"].as_str().unwrap();
    s.tx_until(&shop, id, "VALIDATED").await;
    let got = wait_for("three notifications", || async {
        let v = rx.verified(&shop.notification_secret);
        (v.len() == 3).then_some(v)
    })
    .await;
    let states: Vec<&str> = got
        .iter()
        .map(|(_, n)| n["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, vec!["PROCESSING", "AUTHORIZING", "VALIDATED"]);
    let seqs: Vec<u64> = got
        .iter()
        .map(|(_, n)| n["sequence"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, vec![1, 2, 3]);
    for (event, n) in &got {
        assert!(event.starts_with("evt_"));
        assert_eq!(n["type"], "transaction.updated");
        assert_eq!(n["transaction_id"], id);
        assert_eq!(n["shop_id"], shop.id.as_str());
        assert_eq!(n["merchant_order_id"], "CMD-1");
    }
    let ids: std::collections::HashSet<&String> = got.iter().map(|(e, _)| e).collect();
    assert_eq!(ids.len(), 3, "one event id per event");
    // Another shop's secret does not verify.
    let r = &rx.all()[0];
    assert!(verify(b"whsec_other", &r.signature, &r.body, wall_now(), 300).is_err());

    // Pre-transactions notify too.
    let pt = s
        .post(
            "/api/v1/pre-transactions",
            Some(&shop.token),
            json!({"shop_id": shop.id, "merchant_order_id": "PT-1", "amount_cents": 4550, "channel": "proximity",
                   "delivery": {"type": "qr"}, "notification_url": rx.url}),
        )
        .await
        .expect(201);
    s.post(
        &format!(
            "/api/v1/pre-transactions/{}/cancel",
            pt["id"].as_str().unwrap()
        ),
        Some(&shop.token),
        json!({}),
    )
    .await
    .expect(200);
    let n = wait_for("pre-transaction notification", || async {
        rx.verified(&shop.notification_secret)
            .into_iter()
            .map(|(_, n)| n)
            .find(|n| n["type"] == "pre_transaction.updated")
    })
    .await;
    assert_eq!(n["state"], "CANCELLED");
    assert_eq!(n["pre_transaction_id"], pt["id"]);
}

#[tokio::test]
async fn retried_with_backoff_until_acknowledged() {
    let s = start().await;
    let shop = s.default_shop().await;
    let rx = receiver(2).await;
    let t = s
        .create_tx(&shop, json!({"notification_url": rx.url}))
        .await;
    let started = Instant::now();
    s.post(
        &format!("/api/v1/transactions/{}/cancel", t["id"].as_str().unwrap()),
        Some(&shop.token),
        json!({}),
    )
    .await
    .expect(200);
    let entry = wait_for("delivery acknowledged", || async {
        log(&s, &shop)
            .await
            .into_iter()
            .find(|d| d["status"] == "delivered")
    })
    .await;
    // Backoff 50 ms then 100 ms between the three attempts.
    assert!(started.elapsed() >= Duration::from_millis(150));
    let codes: Vec<u64> = entry["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["http_status"].as_u64().unwrap())
        .collect();
    assert_eq!(codes, vec![500, 500, 200]);
    let got = rx.verified(&shop.notification_secret);
    assert_eq!(got.len(), 3);
    assert!(
        got.iter().all(|(e, _)| *e == got[0].0),
        "same event id on retries"
    );
    assert_eq!(got[0].1["state"], "CANCELLED");
    // The HTML log shows it as well.
    let page = s
        .http
        .get(s.url(&format!("/admin?shop_id={}", shop.id)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(got[0].0.as_str()) && page.contains("delivered"));
}

#[tokio::test]
async fn gives_up_after_max_attempts() {
    let mut config = test_config();
    config.notification_retry.max_attempts = 3;
    config.notification_retry.base_ms = 10;
    let s = start_with(config).await;
    let shop = s.default_shop().await;
    let rx = receiver(u32::MAX).await;
    let t = s
        .create_tx(&shop, json!({"notification_url": rx.url}))
        .await;
    s.post(
        &format!("/api/v1/transactions/{}/cancel", t["id"].as_str().unwrap()),
        Some(&shop.token),
        json!({}),
    )
    .await
    .expect(200);
    let entry = wait_for("delivery failed", || async {
        log(&s, &shop)
            .await
            .into_iter()
            .find(|d| d["status"] == "failed")
    })
    .await;
    assert_eq!(entry["attempts"].as_array().unwrap().len(), 3);
    assert_eq!(rx.calls.load(Ordering::SeqCst), 3);
}

async fn set_faults(s: &Sbx, shop: &Shop, faults: Value) {
    let mut body = faults;
    body["shop_id"] = json!(shop.id);
    s.put("/admin/faults", body).await.expect(200);
}

#[tokio::test]
async fn dropped_duplicated_and_reordered_notifications() {
    let s = start().await;
    // Dropped: the log says so, nothing arrives.
    let shop = s.default_shop().await;
    let rx = receiver(0).await;
    set_faults(&s, &shop, json!({"drop_notifications": true})).await;
    let t = s
        .create_tx(
            &shop,
            json!({"beneficiary": ALICE, "notification_url": rx.url}),
        )
        .await;
    s.tx_until(&shop, t["id"].as_str().unwrap(), "VALIDATED")
        .await;
    let entries = log(&s, &shop).await;
    assert_eq!(entries.len(), 3);
    assert!(entries.iter().all(|d| d["status"] == "dropped"));
    assert_eq!(rx.calls.load(Ordering::SeqCst), 0);

    // Duplicated: every event arrives twice with the same id.
    let shop = s.default_shop().await;
    let rx = receiver(0).await;
    set_faults(&s, &shop, json!({"duplicate_notifications": true})).await;
    let t = s
        .create_tx(&shop, json!({"notification_url": rx.url}))
        .await;
    s.post(
        &format!("/api/v1/transactions/{}/cancel", t["id"].as_str().unwrap()),
        Some(&shop.token),
        json!({}),
    )
    .await
    .expect(200);
    let got = wait_for("duplicate", || async {
        let v = rx.verified(&shop.notification_secret);
        (v.len() == 2).then_some(v)
    })
    .await;
    assert_eq!(got[0].0, got[1].0);
    assert_eq!(got[0].1, got[1].1);

    // Reordered: held, then delivered newest first.
    let shop = s.default_shop().await;
    let rx = receiver(0).await;
    set_faults(
        &s,
        &shop,
        json!({"reorder_notifications": true, "reorder_hold_ms": 400}),
    )
    .await;
    let t = s
        .create_tx(
            &shop,
            json!({"beneficiary": ALICE, "notification_url": rx.url}),
        )
        .await;
    s.tx_until(&shop, t["id"].as_str().unwrap(), "VALIDATED")
        .await;
    let got = wait_for("reordered batch", || async {
        let v = rx.verified(&shop.notification_secret);
        (v.len() == 3).then_some(v)
    })
    .await;
    let seqs: Vec<u64> = got
        .iter()
        .map(|(_, n)| n["sequence"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, vec![3, 2, 1]);
}

#[tokio::test]
async fn error_rate_and_latency_are_scoped_per_shop() {
    let s = start().await;
    let shop = s.default_shop().await;
    let other = s.default_shop().await;
    set_faults(&s, &shop, json!({"error_rate": 1.0})).await;
    let r = s
        .post(
            "/api/v1/transactions",
            Some(&shop.token),
            json!({"shop_id": shop.id, "merchant_order_id": "X", "amount_cents": 4550, "channel": "ecommerce"}),
        )
        .await;
    r.expect_error(503, "upstream_unavailable");
    assert_eq!(r.body["retryable"], true);
    // The other shop is not disturbed.
    s.create_tx(&other, json!({})).await;
    let view = s
        .get(&format!("/admin/faults?shop_id={}", shop.id), None)
        .await
        .expect(200);
    assert_eq!(view["faults"]["error_rate"], 1.0);
    s.send(
        reqwest::Method::DELETE,
        &format!("/admin/faults?shop_id={}", shop.id),
        None,
        None,
        &[],
    )
    .await
    .expect(200);
    // Nothing had been done before the 503.
    let list = s
        .get("/api/v1/transactions", Some(&shop.token))
        .await
        .expect(200);
    assert_eq!(list["total"], 0);

    set_faults(&s, &shop, json!({"latency_ms": 300})).await;
    let started = Instant::now();
    s.get("/api/v1/transactions", Some(&shop.token))
        .await
        .expect(200);
    // A lower bound only: the injected latency cannot be skipped, however slow the build.
    assert!(started.elapsed() >= Duration::from_millis(300));
    // Scoped: while the slowed shop waits out its latency, the other shop is answered. Measured by
    // which answer comes first, not by a wall-clock bound on a debug build.
    set_faults(&s, &shop, json!({"latency_ms": 8_000})).await;
    let slowed = s.get("/api/v1/transactions", Some(&shop.token));
    let unaffected = s.get("/api/v1/transactions", Some(&other.token));
    tokio::pin!(slowed);
    tokio::select! {
        biased;
        _ = &mut slowed => panic!("the slowed shop was answered before the other shop"),
        answer = unaffected => {
            answer.expect(200);
        }
    }

    s.put("/admin/faults", json!({"error_rate": 1.5}))
        .await
        .expect_error(422, "invalid_request");
    s.put("/admin/faults", json!({"eror_rate": 0.5}))
        .await
        .expect_error(422, "invalid_request");
}

#[tokio::test]
async fn lost_response_is_recovered_with_the_idempotency_key() {
    let s = start().await;
    let shop = s.default_shop().await;
    set_faults(&s, &shop, json!({"lose_next_responses": 1})).await;
    let body = json!({"shop_id": shop.id, "merchant_order_id": "LOST-1", "amount_cents": 4550,
                      "channel": "ecommerce", "beneficiary": ALICE});
    let post = || {
        s.send(
            reqwest::Method::POST,
            "/api/v1/transactions",
            Some(&shop.token),
            Some(body.clone()),
            &[("Idempotency-Key", "lost-1")],
        )
    };
    post().await.expect_error(503, "upstream_unavailable");
    // The money moved anyway: the retry with the same key finds it.
    let t = post().await.expect(200);
    assert_eq!(t["merchant_order_id"], "LOST-1");
    let list = s
        .get(
            "/api/v1/transactions?merchant_order_id=LOST-1",
            Some(&shop.token),
        )
        .await
        .expect(200);
    assert_eq!(list["total"], 1);
    s.tx_until(&shop, t["id"].as_str().unwrap(), "VALIDATED")
        .await;
    let view = s
        .get(&format!("/admin/faults?shop_id={}", shop.id), None)
        .await
        .expect(200);
    assert_eq!(view["faults"]["lose_next_responses"], 0);
    // The random variant, at 100 %: processed, then 503.
    set_faults(&s, &shop, json!({"fail_after_commit_rate": 1.0})).await;
    let refund_path = format!("/api/v1/transactions/{}/refunds", t["id"].as_str().unwrap());
    let sr = &s;
    let refund = |key: &'static str| {
        let (path, token) = (refund_path.clone(), shop.token.clone());
        async move {
            sr.send(
                reqwest::Method::POST,
                &path,
                Some(&token),
                Some(json!({"amount_cents": 500})),
                &[("Idempotency-Key", key)],
            )
            .await
        }
    };
    refund("lost-refund")
        .await
        .expect_error(503, "upstream_unavailable");
    s.send(reqwest::Method::DELETE, "/admin/faults", None, None, &[])
        .await
        .expect(200);
    let after = refund("lost-refund").await.expect(200);
    assert_eq!(cents(&after["refunded_cents"]), 500, "refunded once");
}
