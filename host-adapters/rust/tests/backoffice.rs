//! PROTOCOL.md §2 and the back-office accounts, against the real plugin and sandbox.

mod common;
use common::*;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread")]
async fn login_csrf_and_permissions() {
    let env = env().await;
    let anon = Client {
        http: reqwest::Client::new(),
        base: env.base.clone(),
        csrf: None,
    };
    assert_eq!(anon.get("/cvco/v1/transactions").await.status, 401);
    let wrong = anon
        .post(
            "/back-office/api/login",
            json!({"username": "manager", "password": "nope"}),
        )
        .await;
    let unknown = anon
        .post(
            "/back-office/api/login",
            json!({"username": "ghost", "password": "nope"}),
        )
        .await;
    assert_eq!((wrong.status, unknown.status), (401, 401));
    assert_eq!(wrong.body["message_en"], unknown.body["message_en"]);

    let seller = env.login("seller", "seller-demo").await;
    let s = seller.get("/back-office/api/session").await;
    assert_eq!(s.body["role"], "seller");
    assert_eq!(
        s.body["permissions"],
        json!({"moto": true, "counter": true, "cancel": false, "refund": false, "close_day": false, "manage_sellers": false})
    );
    // Without the CSRF token.
    let no_csrf = Client {
        csrf: None,
        ..seller.clone()
    };
    let r = no_csrf
        .post("/counter/api/orders", json!({"amount_cents": 5000}))
        .await;
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (403, Some("forbidden"))
    );
    let forged = Client {
        csrf: Some("0".repeat(48)),
        ..seller.clone()
    };
    assert_eq!(
        forged
            .post("/counter/api/orders", json!({"amount_cents": 5000}))
            .await
            .status,
        403
    );
    assert_eq!(
        seller
            .post("/counter/api/orders", json!({"amount_cents": 5000}))
            .await
            .status,
        201
    );
    // What the manager did not allow.
    assert_eq!(seller.post("/cvco/v1/closing", json!({})).await.status, 403);
    assert_eq!(seller.get("/back-office/api/sellers").await.status, 403);
    assert_eq!(
        seller
            .post("/cvco/v1/payments/pay_X/refund", json!({"attempt": "r"}))
            .await
            .status,
        403
    );

    let manager = env.manager().await;
    let created = manager
        .post(
            "/back-office/api/sellers",
            json!({"username": "lea", "password": "lea-password",
        "permissions": {"moto": true, "refund": true}}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let dup = manager
        .post(
            "/back-office/api/sellers",
            json!({"username": "lea", "password": "lea-password"}),
        )
        .await;
    assert_eq!(dup.status, 409);
    let lea = env.login("lea", "lea-password").await;
    assert_eq!(
        lea.get("/back-office/api/session").await.body["permissions"]["refund"],
        true
    );
    assert_eq!(
        lea.post("/counter/api/orders", json!({"amount_cents": 5000}))
            .await
            .status,
        403
    );
    let list = manager.get("/back-office/api/sellers").await;
    assert!(list
        .body
        .as_array()
        .unwrap()
        .iter()
        .any(|u| u["username"] == "lea"));
    let off = manager
        .send(
            reqwest::Method::PUT,
            "/back-office/api/sellers/lea",
            Some(json!({"active": false})),
        )
        .await;
    assert_eq!(off.status, 200, "{}", off.text);
    assert_eq!(lea.get("/back-office/api/session").await.status, 401);

    let out = seller.post("/back-office/api/logout", json!({})).await;
    assert_eq!(out.status, 204);
    assert_eq!(seller.get("/back-office/api/session").await.status, 401);

    // Throttled after five failures, even with the right password.
    for _ in 0..5 {
        assert_eq!(
            anon.post(
                "/back-office/api/login",
                json!({"username": "seller", "password": "bad"})
            )
            .await
            .status,
            401
        );
    }
    let t = anon
        .post(
            "/back-office/api/login",
            json!({"username": "seller", "password": "seller-demo"}),
        )
        .await;
    assert_eq!(
        (t.status, t.body["code"].as_str()),
        (429, Some("too_many_attempts"))
    );
}

async fn wait_request(c: &Client, id: &str, status: &str) -> Value {
    let start = std::time::Instant::now();
    loop {
        let r = c.get(&format!("/cvco/v1/payment-requests/{id}")).await;
        if r.body["status"] == status {
            return r.body;
        }
        assert!(
            start.elapsed().as_secs() < 20,
            "request not {status}: {}",
            r.text
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn moto_email_request_paid_through_the_app() {
    let env = env().await;
    let seller = env.login("seller", "seller-demo").await;
    let r = seller
        .post(
            "/cvco/v1/payment-requests",
            json!({"order_ref": "DOS-778", "amount_cents": 12000,
        "delivery": "email", "email": JEANNE, "capture": "immediate", "attempt": "e1"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["status"], "awaiting_beneficiary");
    assert_eq!(r.body["final"], false);
    assert!(r.body["email_masked"].as_str().unwrap().starts_with('j'));
    assert!(!r.text.contains(JEANNE), "the address is masked");
    let id = r.body["request_id"].as_str().unwrap().to_string();
    let again = seller
        .post(
            "/cvco/v1/payment-requests",
            json!({"order_ref": "DOS-778", "amount_cents": 12000,
        "delivery": "email", "email": JEANNE, "capture": "immediate", "attempt": "e1"}),
        )
        .await;
    assert_eq!(
        (again.status, again.body["request_id"].as_str()),
        (200, Some(id.as_str()))
    );
    let tx = env.app_pay_request(&id, JEANNE).await;
    env.app_confirm(&tx, JEANNE).await;
    let paid = wait_request(&seller, &id, "authorized").await;
    assert_eq!(paid["payment"]["authorized_cents"], 12000);
    assert_eq!(paid["payment"]["transaction_id"], tx.as_str());
    let list = seller
        .get("/cvco/v1/payment-requests?status=authorized")
        .await;
    assert_eq!(list.body["items"][0]["request_id"], id.as_str());
    // Seller may not cancel.
    assert_eq!(
        seller
            .post(&format!("/cvco/v1/payment-requests/{id}/cancel"), json!({}))
            .await
            .status,
        403
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn pre_reservation_finalised_or_cancelled() {
    let env = env().await;
    let manager = env.manager().await;
    let mk = |order: &str| {
        json!({"order_ref": order, "amount_cents": 10000, "delivery": "email",
        "email": JEANNE, "capture": "deferred", "attempt": "p1"})
    };
    let r = manager.post("/cvco/v1/payment-requests", mk("RES-1")).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.body["request_id"].as_str().unwrap().to_string();
    let early = manager
        .post(
            &format!("/cvco/v1/payment-requests/{id}/finalise"),
            json!({}),
        )
        .await;
    assert_eq!(early.status, 409);
    let tx = env.app_pay_request(&id, JEANNE).await;
    env.app_confirm(&tx, JEANNE).await;
    wait_request(&manager, &id, "authorized").await;
    let too_much = manager
        .post(
            &format!("/cvco/v1/payment-requests/{id}/finalise"),
            json!({"amount_cents": 10001}),
        )
        .await;
    assert_eq!(too_much.status, 422);
    let fin = manager
        .post(
            &format!("/cvco/v1/payment-requests/{id}/finalise"),
            json!({"amount_cents": 8000}),
        )
        .await;
    assert_eq!(fin.status, 200, "{}", fin.text);
    assert_eq!(fin.body["finalised"], true);
    assert_eq!(fin.body["payment"]["captured_cents"], 8000);
    assert_eq!(
        manager
            .post(
                &format!("/cvco/v1/payment-requests/{id}/finalise"),
                json!({})
            )
            .await
            .status,
        409
    );

    // An unpaid request cancelled.
    let r2 = manager.post("/cvco/v1/payment-requests", mk("RES-2")).await;
    let id2 = r2.body["request_id"].as_str().unwrap().to_string();
    let c = manager
        .post(
            &format!("/cvco/v1/payment-requests/{id2}/cancel"),
            json!({}),
        )
        .await;
    assert_eq!(c.status, 200, "{}", c.text);
    assert_eq!(c.body["status"], "cancelled");
    // Cancelled again (the retry of a lost answer): answered unchanged.
    let again = manager
        .post(
            &format!("/cvco/v1/payment-requests/{id2}/cancel"),
            json!({}),
        )
        .await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.body["status"], "cancelled");
}

async fn alice_paid(env: &Env, amount: i64) -> (Client, Value) {
    let shopper = env.shopper();
    let order = shopper.test_order(amount).await;
    let p = shopper.pay(&order, ALICE, "a").await;
    assert_eq!(p.status, 201, "{}", p.text);
    let done = shopper
        .wait_final(p.body["payment_id"].as_str().unwrap())
        .await;
    assert_eq!(done["status"], "authorized");
    (shopper, done)
}

#[tokio::test(flavor = "multi_thread")]
async fn refunds_partial_then_full() {
    let env = env().await;
    let (shopper, p) = alice_paid(&env, 5000).await;
    let id = p["payment_id"].as_str().unwrap();
    let manager = env.manager().await;
    let part = manager
        .post(
            &format!("/cvco/v1/payments/{id}/refund"),
            json!({"amount_cents": 2000, "reason": "geste", "attempt": "rf1"}),
        )
        .await;
    assert_eq!(part.status, 200, "{}", part.text);
    assert_eq!(part.body["refunded_cents"], 2000);
    let same = manager
        .post(
            &format!("/cvco/v1/payments/{id}/refund"),
            json!({"amount_cents": 2000, "reason": "geste", "attempt": "rf1"}),
        )
        .await;
    assert_eq!(
        same.body["refunded_cents"], 2000,
        "same attempt, one refund"
    );
    let over = manager
        .post(
            &format!("/cvco/v1/payments/{id}/refund"),
            json!({"amount_cents": 3001, "attempt": "rf2"}),
        )
        .await;
    assert_eq!(
        (over.status, over.body["code"].as_str()),
        (422, Some("refund_exceeds_captured"))
    );
    let full = manager
        .post(
            &format!("/cvco/v1/payments/{id}/refund"),
            json!({"attempt": "rf3"}),
        )
        .await;
    assert_eq!(full.status, 200, "{}", full.text);
    assert_eq!(full.body["status"], "refunded");
    assert_eq!(full.body["refunded_cents"], 5000);
    let seen = shopper.get(&format!("/cvco/v1/payments/{id}")).await;
    assert_eq!(seen.body["order_remaining_cents"], 5000);
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_by_reference_totals_closing_and_receipts() {
    let env = env().await;
    let (_, p1) = alice_paid(&env, 4000).await;
    let (_, p2) = alice_paid(&env, 2500).await;
    let manager = env.manager().await;
    let id2 = p2["payment_id"].as_str().unwrap();
    let wrong = manager
        .post(
            &format!("/cvco/v1/payments/{id2}/cancel-by-reference"),
            json!({"transaction_id": "tx_nope"}),
        )
        .await;
    assert_eq!(wrong.status, 404);
    let c = manager
        .post(
            &format!("/cvco/v1/payments/{id2}/cancel-by-reference"),
            json!({"transaction_id": p2["transaction_id"]}),
        )
        .await;
    assert_eq!(c.status, 200, "{}", c.text);
    assert_eq!(c.body["status"], "cancelled");

    let t = manager.get("/cvco/v1/transactions?status=authorized").await;
    assert_eq!(t.body["total"], 1);
    assert_eq!(t.body["items"][0]["payment_id"], p1["payment_id"]);
    let t = manager
        .get("/cvco/v1/transactions?min_amount_cents=3000&from=2000-01-01")
        .await;
    assert_eq!(t.body["total"], 1);

    let totals = manager.get("/cvco/v1/totals").await;
    assert_eq!(totals.status, 200, "{}", totals.text);
    assert_eq!(totals.body["count"], 1, "{}", totals.text);
    assert_eq!(totals.body["gross_cents"], 4000);
    assert_eq!(totals.body["cancelled_count"], 1);
    assert_eq!(
        totals.body["lines"][0]["transaction_id"],
        p1["transaction_id"]
    );

    let receipt = manager
        .get(&format!(
            "/cvco/v1/receipts/{}?duplicate=true",
            p1["payment_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(receipt.status, 200);
    assert!(receipt.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(receipt.headers["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
    assert!(receipt.text.contains("DUPLICATA"));
    let auth = p1["authorizations"][0]["number"].as_str().unwrap();
    assert!(receipt.text.contains(auth) && receipt.text.contains("SHOP-DEMO-01"));
    assert!(receipt
        .text
        .contains(p1["transaction_id"].as_str().unwrap()));
    let plain = manager
        .get(&format!(
            "/cvco/v1/receipts/{}",
            p1["payment_id"].as_str().unwrap()
        ))
        .await;
    assert!(!plain.text.contains("DUPLICATA"));
    let day = manager.get("/cvco/v1/receipts/totals").await;
    assert!(day.text.contains(p1["transaction_id"].as_str().unwrap()));

    let closed = manager.post("/cvco/v1/closing", json!({})).await;
    assert_eq!(closed.status, 200, "{}", closed.text);
    assert_eq!(closed.body["count"], 1);
    assert!(closed.body["closed_at"].is_string());
    let after = manager.get("/cvco/v1/totals").await;
    assert_eq!(
        (
            after.body["count"].as_i64(),
            after.body["cancelled_count"].as_i64()
        ),
        (Some(0), Some(0))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn counter_sale_partial_then_chained_remainder() {
    let env = env().await;
    let seller = env.login("seller", "seller-demo").await;
    let order = seller
        .post(
            "/counter/api/orders",
            json!({"amount_cents": 6000, "label": "Location kayak"}),
        )
        .await;
    assert_eq!(order.status, 201, "{}", order.text);
    let order_ref = order.body["order_ref"].as_str().unwrap().to_string();
    assert!(order_ref.starts_with("CPT-"));
    let p = seller
        .post(
            "/cvco/v1/back-office/payments",
            json!({"order_ref": order_ref, "channel": "proximity",
        "mode": "identifier", "beneficiary": BRUNO, "attempt": "k1"}),
        )
        .await;
    assert_eq!(p.status, 201, "{}", p.text);
    let done = seller
        .wait_final(p.body["payment_id"].as_str().unwrap())
        .await;
    assert_eq!(
        (
            done["authorized_cents"].as_i64(),
            done["order_remaining_cents"].as_i64()
        ),
        (Some(3500), Some(2500))
    );
    // The counter page embeds the widget: the shopper endpoints accept the counter session.
    let checkout = seller
        .get(&format!("/cvco/v1/checkout?order_ref={order_ref}"))
        .await;
    assert_eq!(checkout.body["order_remaining_cents"], 2500);
    let chained = seller
        .post(
            "/cvco/v1/back-office/payments",
            json!({"order_ref": order_ref, "channel": "proximity",
        "mode": "identifier", "beneficiary": ALICE, "attempt": "k2"}),
        )
        .await;
    assert_eq!(chained.status, 201, "{}", chained.text);
    assert_eq!(chained.body["amount_cents"], 2500);
    let done = seller
        .wait_final(chained.body["payment_id"].as_str().unwrap())
        .await;
    assert_eq!(done["order_remaining_cents"], 0);
    // A MOTO direct payment defines its own order.
    let moto = seller
        .post(
            "/cvco/v1/back-office/payments",
            json!({"order_ref": "TEL-42", "amount_cents": 2600,
        "channel": "moto", "mode": "identifier", "beneficiary": ALICE, "attempt": "t1"}),
        )
        .await;
    assert_eq!(moto.status, 201, "{}", moto.text);
    assert_eq!(moto.body["amount_cents"], 2600);
    assert_eq!(moto.body["channel"], "moto");
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_health_and_shop_catalogue() {
    let env = env().await;
    let anon = Client {
        http: reqwest::Client::new(),
        base: env.base.clone(),
        csrf: None,
    };
    assert_eq!(anon.get("/healthz").await.status, 200);
    let home = anon.get("/").await;
    assert!(home.status == 200 || home.status == 404);
    assert!(home.headers["content-security-policy"]
        .to_str()
        .unwrap()
        .starts_with("default-src 'self'"));
    assert_eq!(anon.get("/widget/../Cargo.toml").await.status, 404);
    let products = anon.get("/shop/api/products").await;
    let items = products.body.as_array().unwrap();
    assert!(items.len() >= 5 && items.iter().all(|p| p["price_cents"].as_i64().unwrap() > 0));
    let r = anon
        .http
        .post(format!("{}/shop/api/orders", env.base))
        .json(&json!({"items": [{"sku": items[0]["sku"], "quantity": 2}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.starts_with("cvco_shop=")
            && cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Lax")
    );
    let order: Value = r.json().await.unwrap();
    assert_eq!(
        order["total_cents"],
        items[0]["price_cents"].as_i64().unwrap() * 2
    );
    let bad = anon
        .post(
            "/shop/api/orders",
            json!({"items": [{"sku": "NOPE", "quantity": 1}]}),
        )
        .await;
    assert_eq!(bad.body["code"], "invalid_request");
    assert_eq!(anon.get("/cvco/v1/nothing").await.body["code"], "not_found");
}
