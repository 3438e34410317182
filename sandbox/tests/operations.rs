//! Remittances and totals, persistence across a restart, the OpenAPI document, admin endpoints.

mod common;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use common::*;
use cvco_core::Timestamp;
use cvco_sandbox::{routes, spawn};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

fn business_date(t: &Value, closing_hour: u8) -> String {
    let at = Timestamp::parse_rfc3339(
        t["payers"][0]["authorizations"][0]["validated_at"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    at.business_date(closing_hour).to_string()
}

#[tokio::test]
async fn remittance_statement_and_daily_totals() {
    let s = start().await;
    let mut shop = s.default_shop().await;
    let t1 = s
        .create_tx(
            &shop,
            json!({"beneficiary": ALICE, "merchant_order_id": "A-1"}),
        )
        .await;
    let t1 = s
        .tx_until(&shop, t1["id"].as_str().unwrap(), "VALIDATED")
        .await;
    let id1 = t1["id"].as_str().unwrap().to_string();
    s.post(
        &format!("/api/v1/transactions/{id1}/refunds"),
        Some(&shop.token),
        json!({"amount_cents": 1000}),
    )
    .await
    .expect(201);
    let t2 = s
        .create_tx(
            &shop,
            json!({"beneficiary": BRUNO, "amount_cents": 5000, "merchant_order_id": "B-2"}),
        )
        .await;
    let id2 = t2["id"].as_str().unwrap().to_string();
    s.tx_until(&shop, &id2, "VALIDATED").await;
    let t3 = s.create_tx(&shop, json!({"beneficiary": CHLOE})).await;
    s.tx_until(&shop, t3["id"].as_str().unwrap(), "ABORTED")
        .await;
    let t4 = s.create_tx(&shop, json!({})).await;
    s.post(
        &format!("/api/v1/transactions/{}/cancel", t4["id"].as_str().unwrap()),
        Some(&shop.token),
        json!({}),
    )
    .await
    .expect(200);

    let day = business_date(&t1, 0);
    let st = s
        .get(
            &format!("/api/v1/remittances?shop_id={}&date={day}", shop.id),
            Some(&shop.token),
        )
        .await
        .expect(200);
    assert_eq!(st["form_factor"], "CONNECT");
    assert_eq!(st["fee_bps"], 250);
    assert_eq!(st["count"], 2);
    assert_eq!(cents(&st["gross_cents"]), 4550 + 3500);
    assert_eq!(cents(&st["refunded_cents"]), 1000);
    // Fee per line on what is kept: 3550 → 89 (88.75 rounded), 3500 → 88 (87.5 rounded up).
    assert_eq!(cents(&st["fee_cents"]), 89 + 88);
    assert_eq!(cents(&st["net_cents"]), (3550 - 89) + (3500 - 88));
    let refs: Vec<&str> = st["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["merchant_order_id"].as_str().unwrap())
        .collect();
    assert_eq!(refs, vec!["A-1", "B-2"]);
    // The day has not closed: nothing remitted yet.
    assert_eq!(s.tx(&shop, &id1).await["state"], "VALIDATED");

    let totals = s
        .get(
            &format!("/api/v1/totals?shop_id={}&from={day}&to={day}", shop.id),
            Some(&shop.token),
        )
        .await
        .expect(200);
    assert_eq!(totals["closing_hour"], 0);
    let d = &totals["days"][0];
    assert_eq!(d["date"], day.as_str());
    assert_eq!(d["count"], 2);
    assert_eq!(cents(&d["gross_cents"]), 8050);
    assert_eq!(cents(&d["refunded_cents"]), 1000);
    assert_eq!(cents(&d["net_cents"]), 7050);
    assert_eq!(d["declined_count"], 1);
    assert_eq!(d["cancelled_count"], 1);
    assert_eq!(d["expired_count"], 0);

    // Two days later the statement of that day marks its transactions USED.
    s.post("/admin/clock", None, json!({"advance_s": 2 * 86_400}))
        .await
        .expect(200);
    // Tokens live at most a day: the merchant gets a new one.
    shop.token = s.token(&shop.client_id, &shop.client_secret).await;
    let again = s
        .get(
            &format!("/api/v1/remittances?date={day}"),
            Some(&shop.token),
        )
        .await
        .expect(200);
    assert_eq!(again["net_cents"], st["net_cents"]);
    assert_eq!(s.tx(&shop, &id1).await["state"], "USED");
    assert_eq!(s.tx(&shop, &id2).await["state"], "USED");
    // Refunds still apply to remitted money; cancelling does not.
    s.post(
        &format!("/api/v1/transactions/{id2}/refunds"),
        Some(&shop.token),
        json!({"amount_cents": 500}),
    )
    .await
    .expect(201);
    s.post(
        &format!("/api/v1/transactions/{id2}/cancel"),
        Some(&shop.token),
        json!({}),
    )
    .await
    .expect_error(409, "illegal_transition");

    let empty = s
        .get("/api/v1/remittances?date=2001-01-01", Some(&shop.token))
        .await
        .expect(200);
    assert_eq!(empty["count"], 0);
    s.get("/api/v1/remittances?date=2001-13-01", Some(&shop.token))
        .await
        .expect_error(422, "invalid_request");
    s.get(
        "/api/v1/remittances?shop_id=SHOP-DEMO-01&date=2001-01-01",
        Some(&shop.token),
    )
    .await
    .expect_error(403, "forbidden");
    let week = s
        .get(
            "/api/v1/totals?from=2001-01-01&to=2001-01-07",
            Some(&shop.token),
        )
        .await
        .expect(200);
    assert_eq!(week["days"].as_array().unwrap().len(), 7);
    s.get(
        "/api/v1/totals?from=2001-01-07&to=2001-01-01",
        Some(&shop.token),
    )
    .await
    .expect_error(422, "invalid_request");
}

/// A merchant endpoint bound to a given port, recording (event id, body).
async fn receiver_on(port: u16) -> Arc<Mutex<Vec<(String, Value)>>> {
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: Bytes| {
            let g = g.clone();
            async move {
                let id = headers["cvco-event-id"].to_str().unwrap().to_string();
                g.lock()
                    .unwrap()
                    .push((id, serde_json::from_slice(&body).unwrap()));
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    got
}

#[tokio::test]
async fn restart_on_the_same_file_loses_nothing() {
    let path = std::env::temp_dir().join(format!(
        "cvco-sandbox-{}-{}.sqlite",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    let mut config = test_config();
    config.data_file = Some(path.clone());
    config.notification_retry.base_ms = 100;
    // The merchant's endpoint is down for now.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let hook = format!("http://127.0.0.1:{port}/hook");

    let s = start_with(config.clone()).await;
    let shop = s
        .shop(json!({"authorization_timeout_s": 2}), json!({}))
        .await;
    let t1 = s.create_tx(&shop, json!({"beneficiary": ALICE})).await;
    let t1 = s
        .tx_until(&shop, t1["id"].as_str().unwrap(), "VALIDATED")
        .await;
    let t2 = s
        .create_tx(
            &shop,
            json!({"beneficiary": DAVID, "notification_url": hook}),
        )
        .await;
    let id2 = t2["id"].as_str().unwrap().to_string();
    let pt = s
        .post(
            "/api/v1/pre-transactions",
            Some(&shop.token),
            json!({"shop_id": shop.id, "merchant_order_id": "P-1", "amount_cents": 4550, "channel": "moto",
                   "delivery": {"type": "email", "email": JEANNE}}),
        )
        .await
        .expect(201);
    let first_event = wait_for("a failed delivery attempt", || async {
        let log = s
            .get(&format!("/admin/notifications?shop_id={}", shop.id), None)
            .await
            .expect(200);
        log["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| !d["attempts"].as_array().unwrap().is_empty())
            .map(|d| d["id"].as_str().unwrap().to_string())
    })
    .await;
    s.handle.shutdown().await;

    let s = start_with(config.clone()).await;
    let got = receiver_on(port).await;
    // The expiry fires by itself after the restart (nothing reads the transaction meanwhile) and
    // the pending notification is retried with its original event id.
    let events = wait_for("notifications after restart", || async {
        let g = got.lock().unwrap().clone();
        g.iter().any(|(_, n)| n["state"] == "EXPIRED").then_some(g)
    })
    .await;
    assert_eq!(events[0].0, first_event);
    assert_eq!(events[0].1["state"], "PROCESSING");
    assert_eq!(events.last().unwrap().1["transaction_id"], id2.as_str());

    // The token, the transactions, the request and its e-mail are all still there.
    assert_eq!(s.tx(&shop, t1["id"].as_str().unwrap()).await, t1);
    assert_eq!(s.tx(&shop, &id2).await["state"], "EXPIRED");
    assert_eq!(s.pt(&shop, pt["id"].as_str().unwrap()).await, pt);
    let outbox = s.get("/outbox.json", None).await.expect(200);
    assert_eq!(outbox.as_array().unwrap().len(), 1);
    let shops = s.get("/admin/shops", None).await.expect(200);
    assert_eq!(
        shops.as_array().unwrap().len(),
        2,
        "demo shop plus ours, once each"
    );
    s.handle.shutdown().await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

#[tokio::test]
async fn openapi_documents_every_route() {
    let s = start().await;
    let doc = s.get("/openapi.json", None).await.expect(200);
    assert_eq!(
        doc,
        serde_json::from_str::<Value>(cvco_sandbox::OPENAPI).unwrap()
    );
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = doc["paths"].as_object().unwrap();
    let mut served = std::collections::HashSet::new();
    for (method, path) in routes() {
        let m = method.to_lowercase();
        assert!(
            paths.get(path).and_then(|p| p.get(&m)).is_some(),
            "{method} {path} is missing from openapi.json"
        );
        served.insert((m, path.to_string()));
    }
    for (path, item) in paths {
        for m in item
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| *k != "parameters")
        {
            assert!(
                served.contains(&(m.clone(), path.clone())),
                "openapi.json documents {m} {path}, which the router does not serve"
            );
        }
    }
    let health = s.get("/healthz", None).await.expect(200);
    assert_eq!(health["status"], "ok");
}

#[tokio::test]
async fn admin_shops_settings_and_clock() {
    let s = start().await;
    let demo = s.get("/admin/shops/SHOP-DEMO-01", None).await.expect(200);
    assert_eq!(demo["client_id"], "demo-client");
    assert_eq!(demo["channels"].as_array().unwrap().len(), 4);
    assert_eq!(demo["settings"]["min_amount_cents"], 2000);
    assert!(demo.get("client_secret").is_none() && demo.get("notification_secret").is_none());
    let shop = s.default_shop().await;
    // The same id again conflicts.
    let r = s
        .post(
            "/admin/shops",
            None,
            json!({"shop_id": shop.id, "client_id": "x", "client_secret": "y", "notification_secret": "z", "channels": []}),
        )
        .await;
    assert_eq!(r.status, 409);
    s.post("/admin/shops", None, json!({"shop_id": "bad id!"}))
        .await
        .expect_error(422, "invalid_request");
    s.get("/admin/shops/NOPE", None)
        .await
        .expect_error(404, "not_found");
    let v = s
        .put(
            &format!("/admin/shops/{}/settings", shop.id),
            json!({"min_amount_cents": 100, "adjustable": false}),
        )
        .await
        .expect(200);
    assert_eq!(v["settings"]["min_amount_cents"], 100);
    assert_eq!(
        v["settings"]["authorization_timeout_s"], 180,
        "partial update keeps the rest"
    );
    let t = s.create_tx(&shop, json!({"amount_cents": 100})).await;
    assert_eq!(t["adjustable"], false);
    s.put(
        &format!("/admin/shops/{}/settings", shop.id),
        json!({"min_amount_cent": 1}),
    )
    .await
    .expect_error(422, "config_invalid");
    s.put(
        &format!("/admin/shops/{}/settings", shop.id),
        json!({"authorization_timeout_s": 0}),
    )
    .await
    .expect_error(422, "config_invalid");

    let before = s.get("/admin/clock", None).await.expect(200);
    let after = s
        .post("/admin/clock", None, json!({"advance_s": 3600}))
        .await
        .expect(200);
    let b = Timestamp::parse_rfc3339(before["now"].as_str().unwrap()).unwrap();
    let a = Timestamp::parse_rfc3339(after["now"].as_str().unwrap()).unwrap();
    assert!(a.millis() - b.millis() >= 3_600_000);
    assert_eq!(after["offset_ms"], 3_600_000);
    // Spawned on a fixed port too.
    let mut config = test_config();
    config.port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let fixed = spawn(config.clone()).await.unwrap();
    assert_eq!(fixed.base_url, format!("http://127.0.0.1:{}", config.port));
    fixed.shutdown().await;
}
