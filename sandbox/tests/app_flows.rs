//! The simulated app played by a test: manual approval, PIN lock, payment requests by e-mail and
//! QR code, and the HTML pages.

mod common;

use common::*;
use serde_json::{json, Value};

async fn confirm(s: &Sbx, tx: &str, who: &str, pin: &str, amount: Option<i64>) -> Resp {
    let mut body = json!({"beneficiary": who, "pin": pin});
    if let Some(a) = amount {
        body["amount_cents"] = json!(a);
    }
    s.post(&format!("/app/api/transactions/{tx}/confirm"), None, body)
        .await
}

async fn balance(s: &Sbx, id: &str) -> u64 {
    let list = s.get("/app/api/beneficiaries", None).await.expect(200);
    let b = list
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["id"] == id)
        .unwrap()
        .clone();
    cents(&b["balance_cents"])
}

#[tokio::test]
async fn manual_beneficiary_adjusts_and_balance_depletes() {
    let s = start().await;
    let shop = s.default_shop().await;
    let list = s.get("/app/api/beneficiaries", None).await.expect(200);
    assert_eq!(list.as_array().unwrap().len(), 8);
    assert_eq!(balance(&s, "10000000006").await, 50_000);

    let t = s
        .create_tx(
            &shop,
            json!({"beneficiary": JEANNE, "amount_cents": 12_000, "adjustable": true}),
        )
        .await;
    let id = t["id"].as_str().unwrap();
    let pending = s
        .get("/app/api/beneficiaries/10000000006/pending", None)
        .await
        .expect(200);
    assert_eq!(pending["transactions"][0]["id"], id);
    // Nobody acts for Jeanne: still waiting.
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    assert_eq!(s.tx(&shop, id).await["state"], "PROCESSING");

    // Another account cannot act on it.
    confirm(&s, id, ALICE, "1234", None)
        .await
        .expect_error(403, "forbidden");
    // More than the amount, or lower when not adjustable, is refused.
    confirm(&s, id, JEANNE, "1234", Some(12_001))
        .await
        .expect_error(422, "invalid_amount");
    let done = confirm(&s, id, JEANNE, "1234", Some(9_000))
        .await
        .expect(200);
    assert_eq!(done["state"], "VALIDATED");
    assert_eq!(cents(&done["authorized_cents"]), 9_000);
    assert_eq!(balance(&s, "10000000006").await, 41_000);

    // Fixed amount: lowering it is refused, the full amount is paid.
    let t = s
        .create_tx(
            &shop,
            json!({"beneficiary": JEANNE, "amount_cents": 40_000, "adjustable": false}),
        )
        .await;
    let id = t["id"].as_str().unwrap();
    confirm(&s, id, JEANNE, "1234", Some(20_000))
        .await
        .expect_error(422, "invalid_amount");
    // The balance (410 €) caps the payment: partial authorization.
    let t2 = s
        .create_tx(
            &shop,
            json!({"beneficiary": JEANNE, "amount_cents": 45_000}),
        )
        .await;
    let id2 = t2["id"].as_str().unwrap();
    let done = confirm(&s, id2, JEANNE, "1234", None).await.expect(200);
    assert_eq!(cents(&done["authorized_cents"]), 41_000);
    assert_eq!(balance(&s, "10000000006").await, 0);
    // Empty now: the next confirmation is declined for insufficient balance.
    let done = confirm(&s, id, JEANNE, "1234", None).await.expect(200);
    assert_eq!(done["state"], "ABORTED");
    assert_eq!(done["abort_reason"], "insufficient_balance");

    let reset = s
        .post(
            "/app/api/beneficiaries/10000000006/reset-balance",
            None,
            json!({}),
        )
        .await
        .expect(200);
    assert_eq!(cents(&reset["balance_cents"]), 50_000);

    // Money going back (refund, cancel) goes back to the balance.
    let t = s
        .create_tx(
            &shop,
            json!({"beneficiary": JEANNE, "amount_cents": 10_000}),
        )
        .await;
    let id = t["id"].as_str().unwrap();
    confirm(&s, id, JEANNE, "1234", None).await.expect(200);
    assert_eq!(balance(&s, "10000000006").await, 40_000);
    s.post(
        &format!("/api/v1/transactions/{id}/refunds"),
        Some(&shop.token),
        json!({"amount_cents": 2_500}),
    )
    .await
    .expect(201);
    assert_eq!(balance(&s, "10000000006").await, 42_500);
    s.post(
        &format!("/api/v1/transactions/{id}/cancel"),
        Some(&shop.token),
        json!({}),
    )
    .await
    .expect(200);
    assert_eq!(balance(&s, "10000000006").await, 50_000);

    // Declining through the app.
    let t = s.create_tx(&shop, json!({"beneficiary": JEANNE})).await;
    let id = t["id"].as_str().unwrap();
    let d = s
        .post(
            &format!("/app/api/transactions/{id}/decline"),
            None,
            json!({"beneficiary": JEANNE}),
        )
        .await
        .expect(200);
    assert_eq!(d["abort_reason"], "declined_by_beneficiary");
    s.post(
        &format!("/app/api/transactions/{id}/decline"),
        None,
        json!({"beneficiary": JEANNE}),
    )
    .await
    .expect_error(409, "illegal_transition");
}

#[tokio::test]
async fn three_wrong_codes_lock_the_account() {
    let s = start().await;
    let shop = s.default_shop().await;
    let t = s.create_tx(&shop, json!({"beneficiary": JEANNE})).await;
    let id = t["id"].as_str().unwrap();
    for left in [2, 1] {
        let r = confirm(&s, id, JEANNE, "0000", None).await;
        r.expect_error(422, "wrong_pin");
        assert!(r.body["message_en"]
            .as_str()
            .unwrap()
            .contains(&format!("{left} attempt")));
    }
    // Still payable between wrong codes, now in "authorization in progress".
    assert_eq!(s.tx(&shop, id).await["state"], "AUTHORIZING");
    confirm(&s, id, JEANNE, "9999", None)
        .await
        .expect_error(409, "account_locked");
    let t = s.tx(&shop, id).await;
    assert_eq!(t["state"], "ABORTED");
    assert_eq!(t["abort_reason"], "account_locked");
    confirm(&s, id, JEANNE, "1234", None)
        .await
        .expect_error(409, "account_locked");
    // A locked account cannot be asked to pay.
    let t = s.create_tx(&shop, json!({})).await;
    let path = format!(
        "/api/v1/transactions/{}/authorizations",
        t["id"].as_str().unwrap()
    );
    s.post(&path, Some(&shop.token), json!({"beneficiary": JEANNE}))
        .await
        .expect_error(422, "beneficiary_blocked");
    let v = s
        .post("/app/api/beneficiaries/10000000006/unlock", None, json!({}))
        .await
        .expect(200);
    assert_eq!(v["locked"], false);
    s.post(&path, Some(&shop.token), json!({"beneficiary": JEANNE}))
        .await
        .expect(200);
    // A correct code resets the counter.
    confirm(&s, t["id"].as_str().unwrap(), JEANNE, "1111", None)
        .await
        .expect_error(422, "wrong_pin");
    confirm(&s, t["id"].as_str().unwrap(), JEANNE, "1234", None)
        .await
        .expect(200);
}

async fn create_pt(s: &Sbx, shop: &Shop, extra: Value) -> Value {
    let mut body = json!({
        "shop_id": shop.id,
        "merchant_order_id": "RESA-77",
        "amount_cents": 4550,
        "channel": "moto",
        "delivery": {"type": "email", "email": JEANNE},
    });
    if let Value::Object(m) = extra {
        for (k, v) in m {
            body[k] = v;
        }
    }
    s.post("/api/v1/pre-transactions", Some(&shop.token), body)
        .await
        .expect(201)
}

#[tokio::test]
async fn payment_request_by_email() {
    let s = start().await;
    let shop = s.default_shop().await;
    let pt = create_pt(&s, &shop, json!({})).await;
    let pt_id = pt["id"].as_str().unwrap();
    assert!(pt_id.starts_with("pt_"));
    assert_eq!(pt["state"], "CREATED");
    assert_eq!(
        pt["payment_url"].as_str().unwrap(),
        format!("{}/app/pay/{pt_id}", s.handle.base_url)
    );
    assert_eq!(
        pt["qr_payload"].as_str().unwrap(),
        format!("cvco:pay?v=1&pt={pt_id}&shop={}&amount=4550", shop.id)
    );
    // 24 h by default for an e-mail.
    let c = cvco_core::Timestamp::parse_rfc3339(pt["created_at"].as_str().unwrap()).unwrap();
    let e = cvco_core::Timestamp::parse_rfc3339(pt["expires_at"].as_str().unwrap()).unwrap();
    assert_eq!(e.millis() - c.millis(), 86_400_000);

    let outbox = s.get("/outbox.json", None).await.expect(200);
    let mail = &outbox[0];
    assert_eq!(mail["to"], JEANNE);
    assert_eq!(mail["pre_transaction_id"], pt_id);
    let text = mail["body"].as_str().unwrap();
    assert!(text.contains("45,50\u{a0}€"), "{text}");
    assert!(text.contains("RESA-77"));
    assert!(text.contains(pt["payment_url"].as_str().unwrap()));
    let pending = s
        .get(&format!("/app/api/beneficiaries/{JEANNE}/pending"), None)
        .await
        .expect(200);
    assert_eq!(pending["payment_requests"][0]["id"], pt_id);

    let tx = s
        .post(
            "/app/api/pay",
            None,
            json!({"beneficiary": JEANNE, "pre_transaction_id": pt_id}),
        )
        .await
        .expect(201);
    assert_eq!(tx["state"], "PROCESSING");
    assert_eq!(tx["pre_transaction_id"], pt_id);
    assert_eq!(tx["channel"], "moto");
    let tx_id = tx["id"].as_str().unwrap();
    let p = s.pt(&shop, pt_id).await;
    assert_eq!(p["state"], "PROCESSING");
    assert_eq!(p["transaction_id"], tx_id);
    // Paying twice at once is refused.
    s.post(
        "/app/api/pay",
        None,
        json!({"beneficiary": ALICE, "pre_transaction_id": pt_id}),
    )
    .await
    .expect_error(409, "illegal_transition");
    confirm(&s, tx_id, JEANNE, "1234", None).await.expect(200);
    let p = s.pt(&shop, pt_id).await;
    assert_eq!(p["state"], "USED");
    assert_eq!(p["transaction_id"], tx_id);
    let t = s.tx(&shop, tx_id).await;
    assert_eq!(t["state"], "VALIDATED");
    // The merchant sees it in its list too.
    let list = s
        .get("/api/v1/transactions", Some(&shop.token))
        .await
        .expect(200);
    assert_eq!(list["items"][0]["id"], tx_id);
    // A used request cannot be cancelled.
    s.post(
        &format!("/api/v1/pre-transactions/{pt_id}/cancel"),
        Some(&shop.token),
        json!({}),
    )
    .await
    .expect_error(409, "illegal_transition");
}

#[tokio::test]
async fn payment_request_by_qr_code() {
    let s = start().await;
    let shop = s.default_shop().await;
    let pt = create_pt(
        &s,
        &shop,
        json!({"delivery": {"type": "qr"}, "channel": "proximity", "capture_mode": "DEFERRED"}),
    )
    .await;
    let pt_id = pt["id"].as_str().unwrap();
    let c = cvco_core::Timestamp::parse_rfc3339(pt["created_at"].as_str().unwrap()).unwrap();
    let e = cvco_core::Timestamp::parse_rfc3339(pt["expires_at"].as_str().unwrap()).unwrap();
    assert_eq!(e.millis() - c.millis(), 15 * 60_000);

    let qr = |format: &str| {
        s.http
            .get(s.url(&format!(
                "/api/v1/pre-transactions/{pt_id}/qrcode?format={format}"
            )))
            .bearer_auth(&shop.token)
            .send()
    };
    let svg = qr("svg").await.unwrap();
    assert_eq!(svg.status(), 200);
    assert_eq!(svg.headers()["content-type"], "image/svg+xml");
    assert!(svg.text().await.unwrap().contains("<svg"));
    let png = qr("png").await.unwrap();
    assert_eq!(png.headers()["content-type"], "image/png");
    let bytes = png.bytes().await.unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let bad = qr("gif").await.unwrap();
    assert_eq!(bad.status(), 422);

    // A tampered payload is refused.
    let forged = pt["qr_payload"]
        .as_str()
        .unwrap()
        .replace("amount=4550", "amount=100");
    s.post(
        "/app/api/pay",
        None,
        json!({"beneficiary": ALICE, "qr_payload": forged}),
    )
    .await
    .expect_error(422, "invalid_request");
    let tx = s
        .post(
            "/app/api/pay",
            None,
            json!({"beneficiary": ALICE, "qr_payload": pt["qr_payload"]}),
        )
        .await
        .expect(201);
    assert_eq!(tx["channel"], "proximity");
    assert_eq!(tx["capture_mode"], "DEFERRED");
    let tx_id = tx["id"].as_str().unwrap();
    // Paid by a person in the app (scripted accounts do not act on payment requests).
    let done = confirm(&s, tx_id, ALICE, "1234", Some(3000))
        .await
        .expect(200);
    assert_eq!(done["state"], "AUTHORIZED");
    assert_eq!(cents(&done["authorized_cents"]), 3000);
    let p = s.pt(&shop, pt_id).await;
    assert_eq!(
        p["state"], "USED",
        "a partial authorization uses the request"
    );
    assert_eq!(p["transaction_id"], tx_id);
}

#[tokio::test]
async fn payment_request_expiry_cancel_and_decline_then_pay() {
    let s = start().await;
    let shop = s.default_shop().await;
    // Expiry.
    let pt = create_pt(&s, &shop, json!({"expires_in_s": 1})).await;
    let pt_id = pt["id"].as_str().unwrap().to_string();
    wait_for("payment request expiry", || async {
        (s.pt(&shop, &pt_id).await["state"] == "EXPIRED").then_some(())
    })
    .await;
    s.post(
        "/app/api/pay",
        None,
        json!({"beneficiary": JEANNE, "pre_transaction_id": pt_id}),
    )
    .await
    .expect_error(409, "illegal_transition");

    // Cancel, with a transaction in progress: both are cancelled.
    let pt = create_pt(&s, &shop, json!({})).await;
    let pt_id = pt["id"].as_str().unwrap().to_string();
    let tx = s
        .post(
            "/app/api/pay",
            None,
            json!({"beneficiary": JEANNE, "pre_transaction_id": pt_id}),
        )
        .await
        .expect(201);
    let c = s
        .post(
            &format!("/api/v1/pre-transactions/{pt_id}/cancel"),
            Some(&shop.token),
            json!({}),
        )
        .await
        .expect(200);
    assert_eq!(c["state"], "CANCELLED");
    assert_eq!(
        s.tx(&shop, tx["id"].as_str().unwrap()).await["state"],
        "CANCELLED"
    );
    s.post(
        &format!("/api/v1/pre-transactions/{pt_id}/cancel"),
        Some(&shop.token),
        json!({}),
    )
    .await
    .expect_error(409, "illegal_transition");
    s.get("/api/v1/pre-transactions/pt_nope", Some(&shop.token))
        .await
        .expect_error(404, "pre_transaction_not_found");

    // Declined, then paid.
    let pt = create_pt(&s, &shop, json!({})).await;
    let pt_id = pt["id"].as_str().unwrap().to_string();
    let first = s
        .post(
            "/app/api/pay",
            None,
            json!({"beneficiary": JEANNE, "pre_transaction_id": pt_id}),
        )
        .await
        .expect(201);
    s.post(
        &format!(
            "/app/api/transactions/{}/decline",
            first["id"].as_str().unwrap()
        ),
        None,
        json!({"beneficiary": JEANNE}),
    )
    .await
    .expect(200);
    let p = s.pt(&shop, &pt_id).await;
    assert_eq!(p["state"], "CREATED");
    assert!(p.get("transaction_id").is_none());
    let second = s
        .post(
            "/app/api/pay",
            None,
            json!({"beneficiary": HUGO, "pre_transaction_id": pt_id}),
        )
        .await
        .expect(201);
    assert_ne!(second["id"], first["id"]);
    confirm(&s, second["id"].as_str().unwrap(), HUGO, "1234", None)
        .await
        .expect(200);
    let p = s.pt(&shop, &pt_id).await;
    assert_eq!(p["state"], "USED");
    assert_eq!(p["transaction_id"], second["id"]);
    assert_eq!(
        s.tx(&shop, first["id"].as_str().unwrap()).await["state"],
        "ABORTED"
    );
}

#[tokio::test]
async fn pre_transaction_checks() {
    let s = start().await;
    let shop = s.shop(json!({}), json!({"channels": ["ecommerce"]})).await;
    let base = json!({"shop_id": shop.id, "merchant_order_id": "R", "amount_cents": 4550, "channel": "ecommerce", "delivery": {"type": "qr"}});
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    let post = |b: Value| s.post("/api/v1/pre-transactions", Some(&shop.token), b);
    post(with("amount_cents", json!(100)))
        .await
        .expect_error(422, "amount_below_minimum");
    post(with("currency", json!("GBP")))
        .await
        .expect_error(422, "currency_not_supported");
    post(with("channel", json!("moto")))
        .await
        .expect_error(403, "shop_not_affiliated");
    post(with(
        "delivery",
        json!({"type": "email", "email": "10000000006"}),
    ))
    .await
    .expect_error(422, "invalid_beneficiary");
    post(with("shop_id", json!("SHOP-DEMO-01")))
        .await
        .expect_error(403, "forbidden");
    // Idempotent creation: a lost answer is recovered with the same key.
    let with_key = |b: Value| {
        let token = shop.token.clone();
        let s = &s;
        async move {
            s.send(
                reqwest::Method::POST,
                "/api/v1/pre-transactions",
                Some(&token),
                Some(b),
                &[("Idempotency-Key", "pt-1")],
            )
            .await
        }
    };
    let first = with_key(base.clone()).await.expect(201);
    let again = with_key(base.clone()).await.expect(200);
    assert_eq!(first, again);
    with_key(with("amount_cents", json!(5000)))
        .await
        .expect_error(409, "idempotency_conflict");
    post(base).await.expect(201);
}

async fn html(s: &Sbx, path: &str) -> (u16, String) {
    let r = s.http.get(s.url(path)).send().await.unwrap();
    let status = r.status().as_u16();
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    (status, r.text().await.unwrap())
}

#[tokio::test]
async fn html_pages_and_form_flow() {
    let s = start().await;
    let shop = s.default_shop().await;
    let (st, body) = html(&s, "/app").await;
    assert_eq!(st, 200);
    assert!(body.contains("Appli bénéficiaire simulée"));
    assert!(body.contains("jeanne.manual@sandbox.cvco.test"));
    assert!(!body.contains("<script>"), "no inline script");

    let pt = create_pt(&s, &shop, json!({})).await;
    let pt_id = pt["id"].as_str().unwrap();
    let (st, body) = html(&s, &format!("/app/pay/{pt_id}")).await;
    assert_eq!(st, 200);
    assert!(body.contains("45,50\u{a0}€") && body.contains("RESA-77"));
    let (st, body) = html(&s, "/outbox").await;
    assert_eq!(st, 200);
    assert!(body.contains("Demande de paiement") && body.contains(pt_id));
    let (st, _) = html(&s, "/admin").await;
    assert_eq!(st, 200);

    // Pay through the forms, as a person would.
    let r = s
        .http
        .post(s.url(&format!("/app/pay/{pt_id}")))
        .form(&[("beneficiary", "10000000006")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let tx_page = r.headers()["location"].to_str().unwrap().to_string();
    assert!(tx_page.starts_with("/app/b/10000000006/tx/tx_"));
    let (_, body) = html(&s, &tx_page).await;
    assert!(body.contains("Ajustement en cours") && body.contains("Payer"));
    let r = s
        .http
        .post(s.url(&format!("{tx_page}/accept")))
        .form(&[("amount", "30,00")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let (_, body) = html(&s, &tx_page).await;
    assert!(body.contains("Code personnel") && body.contains("data-digit"));
    let r = s
        .http
        .post(s.url(&format!("{tx_page}/confirm")))
        .form(&[("pin", "0000")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("Code personnel incorrect"));
    let r = s
        .http
        .post(s.url(&format!("{tx_page}/confirm")))
        .form(&[("pin", "1234")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let (_, body) = html(&s, &tx_page).await;
    assert!(body.contains("Paiement autorisé : 30,00"), "{body}");
    let tx_id = tx_page.rsplit('/').next().unwrap();
    let t = s.tx(&shop, tx_id).await;
    assert_eq!(cents(&t["authorized_cents"]), 3000);

    let (st, body) = html(&s, "/app/b/10000000006").await;
    assert_eq!(st, 200);
    assert!(body.contains("J. Dupont") && body.contains("<svg"));
    let (st, _) = html(&s, "/app/b/12345").await;
    assert_eq!(st, 422);
    let r = s.http.get(s.url("/app/app.js")).send().await.unwrap();
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .contains("javascript"));
}
