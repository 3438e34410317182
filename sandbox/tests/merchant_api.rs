//! The merchant API over real HTTP: auth, every scripted beneficiary, every error, idempotency,
//! captures, cancels and refunds.

mod common;

use common::*;
use cvco_core::wire::Transaction;
use cvco_core::NormalizedStatus;
use serde_json::{json, Value};

fn summary(t: &Value) -> cvco_core::lifecycle::StatusSummary {
    serde_json::from_value::<Transaction>(t.clone())
        .expect("a core wire Transaction")
        .summary()
}

#[tokio::test]
async fn oauth_tokens_form_json_and_failures() {
    let s = start().await;
    // Form body, as most OAuth clients send it.
    let r = s
        .http
        .post(s.url("/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "demo-client"),
            ("client_secret", "demo-secret"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let t: Value = r.json().await.unwrap();
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["expires_in"], 3600);
    assert_eq!(t["shop_id"], "SHOP-DEMO-01");
    let form_token = t["access_token"].as_str().unwrap().to_string();
    let json_token = s.token("demo-client", "demo-secret").await;
    assert_ne!(form_token, json_token);

    let wrong = json!({"grant_type": "client_credentials", "client_id": "demo-client", "client_secret": "nope"});
    s.post("/oauth/token", None, wrong)
        .await
        .expect_error(401, "unauthorized");
    let grant = json!({"grant_type": "password", "client_id": "demo-client", "client_secret": "demo-secret"});
    s.post("/oauth/token", None, grant)
        .await
        .expect_error(401, "unauthorized");
    let unknown =
        json!({"grant_type": "client_credentials", "client_id": "who", "client_secret": "x"});
    s.post("/oauth/token", None, unknown)
        .await
        .expect_error(401, "unauthorized");
    s.post(
        "/oauth/token",
        None,
        json!({"grant_type": "client_credentials"}),
    )
    .await
    .expect_error(422, "invalid_request");

    // Bearer checks on /api/v1.
    s.get("/api/v1/transactions", None)
        .await
        .expect_error(401, "unauthorized");
    s.get("/api/v1/transactions", Some("sbx_forged"))
        .await
        .expect_error(401, "unauthorized");
    let list = s
        .get("/api/v1/transactions", Some(&form_token))
        .await
        .expect(200);
    assert_eq!(list["total"], 0);
}

#[tokio::test]
async fn expired_token_and_other_shops() {
    let s = start().await;
    let a = s.shop(json!({}), json!({"token_ttl_s": 60})).await;
    let b = s.default_shop().await;
    let tx_b = s.create_tx(&b, json!({})).await;

    // A's token acts only for A.
    let r = s
        .post(
            "/api/v1/transactions",
            Some(&a.token),
            json!({"shop_id": b.id, "merchant_order_id": "X", "amount_cents": 4550, "channel": "ecommerce"}),
        )
        .await;
    r.expect_error(403, "forbidden");
    s.get(
        &format!("/api/v1/transactions/{}", tx_b["id"].as_str().unwrap()),
        Some(&a.token),
    )
    .await
    .expect_error(404, "transaction_not_found");
    s.get(
        &format!("/api/v1/transactions?shop_id={}", b.id),
        Some(&a.token),
    )
    .await
    .expect_error(403, "forbidden");

    // Time travel past the token's life.
    s.post("/admin/clock", None, json!({"advance_s": 61}))
        .await
        .expect(200);
    let r = s.get("/api/v1/transactions", Some(&a.token)).await;
    r.expect_error(401, "unauthorized");
    assert!(r.body["message_en"].as_str().unwrap().contains("expired"));
    // B's token (ttl 3600) still works.
    s.get("/api/v1/transactions", Some(&b.token))
        .await
        .expect(200);
}

#[tokio::test]
async fn full_approval_by_email_and_by_id() {
    let s = start().await;
    let shop = s.default_shop().await;
    let t = s.create_tx(&shop, json!({"beneficiary": ALICE})).await;
    assert_eq!(t["state"], "PROCESSING");
    assert!(t["expires_at"].is_string());
    let id = t["id"].as_str().unwrap();
    assert!(id.starts_with("tx_"));
    let done = s.tx_until(&shop, id, "VALIDATED").await;
    assert_eq!(cents(&done["authorized_cents"]), 4550);
    assert_eq!(cents(&done["captured_cents"]), 4550);
    let payer = &done["payers"][0];
    assert_eq!(payer["beneficiary"], ALICE);
    let auth = &payer["authorizations"][0];
    assert_eq!(auth["holder"], "A. Martin");
    assert_eq!(auth["type"], "DEBIT");
    let number = auth["number"].as_str().unwrap();
    assert!(number.len() == 6 && number.bytes().all(|b| b.is_ascii_digit()));
    assert_eq!(summary(&done).status, NormalizedStatus::Authorized);

    // Steps 4 and 6 apart, with the 11-digit id.
    let t = s.create_tx(&shop, json!({})).await;
    assert_eq!(t["state"], "CREATED");
    let id = t["id"].as_str().unwrap();
    let r = s
        .post(
            &format!("/api/v1/transactions/{id}/authorizations"),
            Some(&shop.token),
            json!({"beneficiary": "100 000 000 01"}),
        )
        .await
        .expect(200);
    assert_eq!(r["state"], "PROCESSING");
    let created = cvco_core::Timestamp::parse_rfc3339(r["updated_at"].as_str().unwrap()).unwrap();
    let expires = cvco_core::Timestamp::parse_rfc3339(r["expires_at"].as_str().unwrap()).unwrap();
    assert_eq!(expires.millis() - created.millis(), 180_000);
    let done = s.tx_until(&shop, id, "VALIDATED").await;
    assert_eq!(done["payers"][0]["beneficiary"], "10000000001");
    // A second request on the same transaction is an illegal transition.
    s.post(
        &format!("/api/v1/transactions/{id}/authorizations"),
        Some(&shop.token),
        json!({"beneficiary": ALICE}),
    )
    .await
    .expect_error(409, "illegal_transition");
}

#[tokio::test]
async fn partial_adjusted_declined_empty() {
    let s = start().await;
    let shop = s.default_shop().await;
    // Bruno: 35,00 € balance, twice (scripted balances do not deplete).
    for _ in 0..2 {
        let t = s
            .create_tx(&shop, json!({"beneficiary": BRUNO, "amount_cents": 5000}))
            .await;
        let done = s
            .tx_until(&shop, t["id"].as_str().unwrap(), "VALIDATED")
            .await;
        assert_eq!(cents(&done["authorized_cents"]), 3500);
        let sum = summary(&done);
        assert_eq!(sum.status, NormalizedStatus::PartiallyAuthorized);
        assert_eq!(sum.remaining_cents.cents(), 1500);
    }
    // Bruno under his balance pays in full.
    let t = s
        .create_tx(&shop, json!({"beneficiary": BRUNO, "amount_cents": 2000}))
        .await;
    let done = s
        .tx_until(&shop, t["id"].as_str().unwrap(), "VALIDATED")
        .await;
    assert_eq!(cents(&done["authorized_cents"]), 2000);

    // Hugo: half when adjustable, rounded down; full otherwise.
    let t = s
        .create_tx(
            &shop,
            json!({"beneficiary": HUGO, "amount_cents": 4551, "adjustable": true}),
        )
        .await;
    let done = s
        .tx_until(&shop, t["id"].as_str().unwrap(), "VALIDATED")
        .await;
    assert_eq!(cents(&done["authorized_cents"]), 2275);
    let t = s
        .create_tx(
            &shop,
            json!({"beneficiary": HUGO, "amount_cents": 4551, "adjustable": false}),
        )
        .await;
    assert_eq!(t["adjustable"], false);
    let done = s
        .tx_until(&shop, t["id"].as_str().unwrap(), "VALIDATED")
        .await;
    assert_eq!(cents(&done["authorized_cents"]), 4551);

    // Chloé declines; Inès has nothing.
    let t = s.create_tx(&shop, json!({"beneficiary": CHLOE})).await;
    let done = s
        .tx_until(&shop, t["id"].as_str().unwrap(), "ABORTED")
        .await;
    assert_eq!(done["abort_reason"], "declined_by_beneficiary");
    assert_eq!(summary(&done).status, NormalizedStatus::Declined);
    let t = s.create_tx(&shop, json!({"beneficiary": INES})).await;
    let done = s
        .tx_until(&shop, t["id"].as_str().unwrap(), "ABORTED")
        .await;
    assert_eq!(done["abort_reason"], "insufficient_balance");
}

#[tokio::test]
async fn silent_beneficiary_expires_at_the_shop_timeout() {
    let s = start().await;
    let shop = s
        .shop(json!({"authorization_timeout_s": 2}), json!({}))
        .await;
    let t = s.create_tx(&shop, json!({"beneficiary": DAVID})).await;
    let id = t["id"].as_str().unwrap();
    let started = std::time::Instant::now();
    let done = s.tx_until(&shop, id, "EXPIRED").await;
    assert!(started.elapsed() >= std::time::Duration::from_millis(1500));
    assert_eq!(summary(&done).status, NormalizedStatus::Expired);
    // Nothing is accepted once expired.
    s.post(
        &format!("/api/v1/transactions/{id}/cancel"),
        Some(&shop.token),
        json!({}),
    )
    .await
    .expect_error(409, "illegal_transition");
}

#[tokio::test]
async fn beneficiary_errors_leave_the_transaction_unchanged() {
    let s = start().await;
    let shop = s.default_shop().await;
    let t = s.create_tx(&shop, json!({})).await;
    let id = t["id"].as_str().unwrap();
    let path = format!("/api/v1/transactions/{id}/authorizations");
    for (who, code) in [
        (EVE, "beneficiary_blocked"),
        ("10000000005", "beneficiary_blocked"),
        ("19999999999", "beneficiary_unknown"),
        ("nobody@example.fr", "beneficiary_unknown"),
        ("123", "invalid_beneficiary"),
        ("jean@", "invalid_beneficiary"),
    ] {
        let r = s
            .post(&path, Some(&shop.token), json!({"beneficiary": who}))
            .await;
        r.expect_error(422, code);
        assert_eq!(r.body["field"], "beneficiary", "{who}");
        assert_eq!(s.tx(&shop, id).await, t, "{who} changed the transaction");
    }
    // The shopper fixes the typo.
    s.post(&path, Some(&shop.token), json!({"beneficiary": ALICE}))
        .await
        .expect(200);
    s.tx_until(&shop, id, "VALIDATED").await;

    // With the beneficiary in the creation call, a bad one creates nothing.
    let r = s
        .post(
            "/api/v1/transactions",
            Some(&shop.token),
            json!({"shop_id": shop.id, "merchant_order_id": "X", "amount_cents": 4550, "channel": "ecommerce", "beneficiary": "19999999999"}),
        )
        .await;
    r.expect_error(422, "beneficiary_unknown");
    let list = s
        .get("/api/v1/transactions", Some(&shop.token))
        .await
        .expect(200);
    assert_eq!(list["total"], 1);
}

#[tokio::test]
async fn creation_checks() {
    let s = start().await;
    let shop = s
        .shop(
            json!({"min_amount_cents": 2000}),
            json!({"channels": ["ecommerce"]}),
        )
        .await;
    let base = json!({"shop_id": shop.id, "merchant_order_id": "CMD-9", "amount_cents": 4550, "channel": "ecommerce"});
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    let create = |b: Value| s.post("/api/v1/transactions", Some(&shop.token), b);
    create(with("amount_cents", json!(1999)))
        .await
        .expect_error(422, "amount_below_minimum");
    create(with("amount_cents", json!(-5)))
        .await
        .expect_error(422, "invalid_amount");
    create(with("amount_cents", json!(0)))
        .await
        .expect_error(422, "invalid_amount");
    create(with("currency", json!("USD")))
        .await
        .expect_error(422, "currency_not_supported");
    create(with("channel", json!("kiosk")))
        .await
        .expect_error(403, "shop_not_affiliated");
    create(with("channel", json!("pos")))
        .await
        .expect_error(422, "invalid_request");
    create(with("merchant_order_id", json!("")))
        .await
        .expect_error(422, "invalid_request");
    create(json!({"shop_id": shop.id}))
        .await
        .expect_error(422, "invalid_request");
    // Malformed JSON is a JSON error too, never axum's plain text.
    let r = s
        .http
        .post(s.url("/api/v1/transactions"))
        .bearer_auth(&shop.token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "invalid_request");
    assert!(body["message_en"]
        .as_str()
        .unwrap()
        .contains("Invalid JSON"));
    create(with("amount_cents", json!(2000))).await.expect(201);
    let list = s
        .get("/api/v1/transactions", Some(&shop.token))
        .await
        .expect(200);
    assert_eq!(list["total"], 1, "only the valid request created something");

    s.get("/api/v1/transactions/tx_doesnotexist", Some(&shop.token))
        .await
        .expect_error(404, "transaction_not_found");
    s.get("/api/v1/nothing-here", Some(&shop.token))
        .await
        .expect_error(404, "not_found");
}

#[tokio::test]
async fn illegal_transitions_change_nothing() {
    let s = start().await;
    let shop = s.default_shop().await;
    let t = s.create_tx(&shop, json!({})).await;
    let id = t["id"].as_str().unwrap().to_string();
    let p = |op: &str| format!("/api/v1/transactions/{id}/{op}");
    // Refund before capture.
    s.post(&p("refunds"), Some(&shop.token), json!({}))
        .await
        .expect_error(409, "illegal_transition");
    // Capture of a transaction that is not a deferred authorization.
    s.post(&p("capture"), Some(&shop.token), json!({}))
        .await
        .expect_error(409, "illegal_transition");
    assert_eq!(s.tx(&shop, &id).await, t);
    let c = s
        .post(&p("cancel"), Some(&shop.token), json!({}))
        .await
        .expect(200);
    assert_eq!(c["state"], "CANCELLED");
    s.post(&p("cancel"), Some(&shop.token), json!({}))
        .await
        .expect_error(409, "illegal_transition");
    assert_eq!(s.tx(&shop, &id).await, c);

    // NORMAL capture: VALIDATED already, capture again is illegal.
    let t = s.create_tx(&shop, json!({"beneficiary": ALICE})).await;
    let id = t["id"].as_str().unwrap().to_string();
    let done = s.tx_until(&shop, &id, "VALIDATED").await;
    s.post(
        &format!("/api/v1/transactions/{id}/capture"),
        Some(&shop.token),
        json!({}),
    )
    .await
    .expect_error(409, "illegal_transition");
    assert_eq!(s.tx(&shop, &id).await, done);
}

#[tokio::test]
async fn idempotency_keys() {
    let s = start().await;
    let shop = s.default_shop().await;
    let other = s.default_shop().await;
    let s = &s;
    let body = |shop: &Shop, amount: i64| json!({"shop_id": shop.id, "merchant_order_id": "CMD-IDEM", "amount_cents": amount, "channel": "ecommerce"});
    let post = |shop: &Shop, b: Value| {
        let token = shop.token.clone();
        async move {
            s.send(
                reqwest::Method::POST,
                "/api/v1/transactions",
                Some(&token),
                Some(b),
                &[("Idempotency-Key", "order-42")],
            )
            .await
        }
    };
    let first = post(&shop, body(&shop, 4550)).await.expect(201);
    let again = post(&shop, body(&shop, 4550)).await.expect(200);
    assert_eq!(first["id"], again["id"]);
    post(&shop, body(&shop, 4600))
        .await
        .expect_error(409, "idempotency_conflict");
    // Keys are per shop.
    let theirs = post(&other, body(&other, 4550)).await.expect(201);
    assert_ne!(theirs["id"], first["id"]);
    let list = s
        .get("/api/v1/transactions", Some(&shop.token))
        .await
        .expect(200);
    assert_eq!(list["total"], 1);
}

#[tokio::test]
async fn refunds_full_partial_exceeding_and_idempotent() {
    let s = start().await;
    let shop = s.default_shop().await;
    let t = s
        .create_tx(&shop, json!({"beneficiary": ALICE, "amount_cents": 5000}))
        .await;
    let id = t["id"].as_str().unwrap();
    s.tx_until(&shop, id, "VALIDATED").await;
    let path = format!("/api/v1/transactions/{id}/refunds");
    let s = &s;
    let refund = |b: Value, key: Option<&'static str>| {
        let headers: Vec<(&str, &str)> = key
            .map(|k| vec![("Idempotency-Key", k)])
            .unwrap_or_default();
        let path = path.clone();
        let token = shop.token.clone();
        async move {
            s.send(
                reqwest::Method::POST,
                &path,
                Some(&token),
                Some(b),
                &headers,
            )
            .await
        }
    };
    let r = refund(
        json!({"amount_cents": 1000, "reason": "article manquant"}),
        Some("rf-1"),
    )
    .await
    .expect(201);
    assert_eq!(cents(&r["refunded_cents"]), 1000);
    assert!(r["refunds"][0]["id"].as_str().unwrap().starts_with("rf_"));
    // Replay: same refund, not a second one.
    let again = refund(
        json!({"amount_cents": 1000, "reason": "article manquant"}),
        Some("rf-1"),
    )
    .await
    .expect(200);
    assert_eq!(again["refunds"].as_array().unwrap().len(), 1);
    refund(json!({"amount_cents": 999}), Some("rf-1"))
        .await
        .expect_error(409, "idempotency_conflict");
    let r = refund(json!({"amount_cents": 4001}), None).await;
    r.expect_error(422, "refund_exceeds_captured");
    assert_eq!(r.body["field"], "amount_cents");
    refund(json!({"amount_cents": 0}), None)
        .await
        .expect_error(422, "invalid_amount");
    // The rest, by default.
    let r = refund(json!({}), None).await.expect(201);
    assert_eq!(cents(&r["refunded_cents"]), 5000);
    assert_eq!(r["refunds"].as_array().unwrap().len(), 2);
    assert_eq!(summary(&r).status, NormalizedStatus::Refunded);
    refund(json!({}), None)
        .await
        .expect_error(422, "refund_exceeds_captured");
    // An empty body means the defaults: nothing is left to refund.
    let r = s
        .http
        .post(s.url(&path))
        .bearer_auth(&shop.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
}

#[tokio::test]
async fn deferred_capture_and_its_expiry() {
    let s = start().await;
    let shop = s
        .shop(
            json!({"deferred_capture_window_s": 3600}),
            json!({"token_ttl_s": 86_400}),
        )
        .await;
    let t = s
        .create_tx(
            &shop,
            json!({"beneficiary": ALICE, "capture_mode": "DEFERRED"}),
        )
        .await;
    let id = t["id"].as_str().unwrap();
    let auth = s.tx_until(&shop, id, "AUTHORIZED").await;
    assert_eq!(cents(&auth["authorized_cents"]), 4550);
    assert_eq!(cents(&auth["captured_cents"]), 0);
    assert!(auth["expires_at"].is_string());
    let path = format!("/api/v1/transactions/{id}/capture");
    s.post(&path, Some(&shop.token), json!({"amount_cents": 4551}))
        .await
        .expect_error(422, "invalid_amount");
    let cap = s
        .post(&path, Some(&shop.token), json!({"amount_cents": 3000}))
        .await
        .expect(200);
    assert_eq!(cap["state"], "VALIDATED");
    assert_eq!(cents(&cap["captured_cents"]), 3000);
    s.post(&path, Some(&shop.token), json!({}))
        .await
        .expect_error(409, "illegal_transition");

    // Another one left alone past the window.
    let t = s
        .create_tx(
            &shop,
            json!({"beneficiary": ALICE, "capture_mode": "DEFERRED"}),
        )
        .await;
    let id = t["id"].as_str().unwrap();
    s.tx_until(&shop, id, "AUTHORIZED").await;
    s.post("/admin/clock", None, json!({"advance_s": 3601}))
        .await
        .expect(200);
    let r = s
        .post(
            &format!("/api/v1/transactions/{id}/capture"),
            Some(&shop.token),
            json!({}),
        )
        .await;
    r.expect_error(409, "illegal_transition");
    let t = s.tx(&shop, id).await;
    assert_eq!(t["state"], "EXPIRED");
    assert_eq!(summary(&t).status, NormalizedStatus::Expired);
}

#[tokio::test]
async fn cancel_password() {
    let s = start().await;
    let shop = s
        .shop(json!({}), json!({"cancel_password": "s3cret"}))
        .await;
    let view = s
        .get(&format!("/admin/shops/{}", shop.id), None)
        .await
        .expect(200);
    assert_eq!(view["has_cancel_password"], true);
    assert!(view.get("cancel_password").is_none() && view.get("client_secret").is_none());
    let t = s.create_tx(&shop, json!({})).await;
    let path = format!("/api/v1/transactions/{}/cancel", t["id"].as_str().unwrap());
    s.post(&path, Some(&shop.token), json!({}))
        .await
        .expect_error(403, "forbidden");
    s.post(&path, Some(&shop.token), json!({"password": "wrong"}))
        .await
        .expect_error(403, "forbidden");
    let c = s
        .post(&path, Some(&shop.token), json!({"password": "s3cret"}))
        .await
        .expect(200);
    assert_eq!(c["state"], "CANCELLED");
}

#[tokio::test]
async fn list_filters_newest_first() {
    let s = start().await;
    let shop = s.default_shop().await;
    let mut ids = Vec::new();
    for (i, amount) in [2500, 4550, 9000].into_iter().enumerate() {
        let t = s
            .create_tx(
                &shop,
                json!({"amount_cents": amount, "merchant_order_id": format!("REF-{i}")}),
            )
            .await;
        ids.push(t["id"].as_str().unwrap().to_string());
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    s.post(
        &format!("/api/v1/transactions/{}/cancel", ids[0]),
        Some(&shop.token),
        json!({}),
    )
    .await
    .expect(200);
    let s = &s;
    let get = |q: &str| {
        let path = format!("/api/v1/transactions?{q}");
        let token = shop.token.clone();
        async move { s.get(&path, Some(&token)).await }
    };
    let all = get("").await.expect(200);
    let order: Vec<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        order,
        vec![ids[2].as_str(), ids[1].as_str(), ids[0].as_str()]
    );
    let r = get("min_amount_cents=4000&max_amount_cents=5000")
        .await
        .expect(200);
    assert_eq!(r["total"], 1);
    assert_eq!(r["items"][0]["id"], ids[1].as_str());
    let r = get("state=CANCELLED").await.expect(200);
    assert_eq!(r["items"][0]["id"], ids[0].as_str());
    let r = get("merchant_order_id=REF-2").await.expect(200);
    assert_eq!(r["total"], 1);
    let r = get("limit=1&offset=1").await.expect(200);
    assert_eq!(r["total"], 3);
    assert_eq!(r["items"].as_array().unwrap().len(), 1);
    assert_eq!(r["items"][0]["id"], ids[1].as_str());
    let r = get("from=2000-01-01T00:00:00Z&to=2000-01-02T00:00:00Z")
        .await
        .expect(200);
    assert_eq!(r["total"], 0);
    get(&format!("shop_id={}", shop.id)).await.expect(200);
    get("state=NOPE").await.expect_error(422, "invalid_request");
    get("limit=abc").await.expect_error(422, "invalid_request");
}
