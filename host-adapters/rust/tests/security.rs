//! Issue 10 §2: permissions, CSRF, content types, login abuse, error bodies, keep-alive, receipts
//! and the shop's order limit, against the real host over HTTP.

mod common;
use common::*;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

fn anon(env: &Env) -> Client {
    Client {
        http: reqwest::Client::new(),
        base: env.base.clone(),
        csrf: None,
    }
}

#[track_caller]
fn assert_cvco_error(a: &Answer, status: u16, code: &str) {
    assert_eq!(
        (a.status, a.body["code"].as_str()),
        (status, Some(code)),
        "{}",
        a.text
    );
    for k in ["message_fr", "message_en", "retryable"] {
        assert!(a.body.get(k).is_some(), "error body lacks {k}: {}", a.text);
    }
}

/// A raw request with the given content type and body.
async fn post_raw(c: &Client, path: &str, content_type: &str, body: Vec<u8>) -> Answer {
    let mut req = c
        .http
        .post(format!("{}{}", c.base, path))
        .header("content-type", content_type)
        .body(body);
    if let Some(t) = &c.csrf {
        req = req.header("x-csrf-token", t);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    Answer {
        status,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
        headers,
    }
}

async fn counter_sale(seller: &Client, amount: i64) -> String {
    let o = seller
        .post("/counter/api/orders", json!({"amount_cents": amount}))
        .await;
    assert_eq!(o.status, 201, "{}", o.text);
    o.body["order_ref"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_seller_without_the_cancel_right_cannot_cancel_through_the_shopper_route() {
    let env = env().await;
    let seller = env.login("seller", "seller-demo").await;
    let manager = env.manager().await;

    // A payment request (e-mail): cancelling it is the `cancel` right's.
    let r = seller
        .post(
            "/cvco/v1/payment-requests",
            json!({"order_ref": "DOS-SEC-1", "amount_cents": 4200, "delivery": "email",
                "email": JEANNE, "capture": "immediate", "attempt": "s1"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let pay_id = r.body["payment"]["payment_id"]
        .as_str()
        .or(r.body["payment_id"].as_str())
        .expect("payment id of the request")
        .to_string();
    let refused = seller
        .post(&format!("/cvco/v1/payments/{pay_id}/cancel"), json!({}))
        .await;
    assert_cvco_error(&refused, 403, "forbidden");
    let still = seller
        .get(&format!(
            "/cvco/v1/payment-requests/{}",
            r.body["request_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        still.body["status"], "awaiting_beneficiary",
        "{}",
        still.text
    );
    let done = manager
        .post(&format!("/cvco/v1/payments/{pay_id}/cancel"), json!({}))
        .await;
    assert_eq!(
        (done.status, done.body["status"].as_str()),
        (200, Some("cancelled")),
        "{}",
        done.text
    );

    // A shopper's online payment is not the staff's to cancel here; staff read it (PROTOCOL.md
    // §2: GET /payments/{id} of any payment of the shop), a stranger does not.
    let shopper = env.shopper();
    let order = shopper.test_order(3000).await;
    let p = shopper.pay(&order, JEANNE, "a1").await;
    assert_eq!(p.status, 201, "{}", p.text);
    let id = p.body["payment_id"].as_str().unwrap().to_string();
    let cancel = seller
        .post(&format!("/cvco/v1/payments/{id}/cancel"), json!({}))
        .await;
    assert_cvco_error(&cancel, 404, "payment_not_found");
    let read = seller.get(&format!("/cvco/v1/payments/{id}")).await;
    assert_eq!(
        (read.status, read.body["payment_id"].as_str()),
        (200, Some(id.as_str())),
        "{}",
        read.text
    );
    assert_cvco_error(
        &env.shopper().get(&format!("/cvco/v1/payments/{id}")).await,
        404,
        "payment_not_found",
    );
    let mine = shopper.get(&format!("/cvco/v1/payments/{id}")).await;
    assert_eq!(mine.body["status"], "awaiting_beneficiary", "{}", mine.text);

    // The counter's own sale, still waiting for the beneficiary, may be abandoned by the seller.
    let sale = counter_sale(&seller, 2500).await;
    let p = seller.pay(&sale, JEANNE, "c1").await;
    assert_eq!(p.status, 201, "{}", p.text);
    let id = p.body["payment_id"].as_str().unwrap();
    let c = seller
        .post(&format!("/cvco/v1/payments/{id}/cancel"), json!({}))
        .await;
    assert_eq!(
        (c.status, c.body["status"].as_str()),
        (200, Some("cancelled")),
        "{}",
        c.text
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn staff_calls_that_change_state_need_the_csrf_token() {
    let env = env().await;
    let seller = env.login("seller", "seller-demo").await;
    let bare = Client {
        csrf: None,
        ..seller.clone()
    };
    let sale = counter_sale(&seller, 2500).await;
    // Creating a payment on a counter order through the shopper route.
    let no_token = bare.pay(&sale, JEANNE, "x1").await;
    assert_cvco_error(&no_token, 403, "forbidden");
    assert_eq!(no_token.body["field"], "X-CSRF-Token");
    let p = seller.pay(&sale, JEANNE, "x1").await;
    assert_eq!(p.status, 201, "{}", p.text);
    let id = p.body["payment_id"].as_str().unwrap();
    // Cancelling it.
    let no_token = bare
        .post(&format!("/cvco/v1/payments/{id}/cancel"), json!({}))
        .await;
    assert_cvco_error(&no_token, 403, "forbidden");
    let read = seller.get(&format!("/cvco/v1/payments/{id}")).await;
    assert_eq!(read.body["status"], "awaiting_beneficiary", "{}", read.text);
    // Logging out.
    let out = bare.post("/back-office/api/logout", json!({})).await;
    assert_cvco_error(&out, 403, "forbidden");
    assert_eq!(seller.get("/back-office/api/session").await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn json_endpoints_refuse_other_content_types_with_415() {
    let env = env().await;
    let shopper = env.shopper();
    let order = shopper.test_order(3000).await;
    let body =
        json!({"order_ref": order, "mode": "identifier", "beneficiary": ALICE, "attempt": "f1"})
            .to_string()
            .into_bytes();
    for ct in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        let a = post_raw(&shopper, "/cvco/v1/payments", ct, body.clone()).await;
        assert_cvco_error(&a, 415, "invalid_request");
    }
    let login = post_raw(
        &anon(&env),
        "/back-office/api/login",
        "application/x-www-form-urlencoded",
        b"username=manager&password=manager-demo".to_vec(),
    )
    .await;
    assert_cvco_error(&login, 415, "invalid_request");
    let order_form = post_raw(&shopper, "/shop/api/orders", "text/plain", b"{}".to_vec()).await;
    assert_cvco_error(&order_form, 415, "invalid_request");
    // JSON (with a charset) still goes through, and nothing was paid meanwhile.
    let ok = post_raw(
        &shopper,
        "/cvco/v1/payments",
        "application/json; charset=utf-8",
        body,
    )
    .await;
    assert_eq!(ok.status, 201, "{}", ok.text);
}

#[tokio::test(flavor = "multi_thread")]
async fn login_refuses_a_cross_origin_post() {
    let env = env().await;
    let login = |origin: &'static str| {
        let http = env.raw.clone();
        let url = format!("{}/back-office/api/login", env.base);
        async move {
            http.post(url)
                .header("origin", origin)
                .json(&json!({"username": "manager", "password": "manager-demo"}))
                .send()
                .await
                .unwrap()
        }
    };
    let evil = login("https://evil.example").await;
    assert_eq!(evil.status(), 403);
    assert!(evil.headers().get("set-cookie").is_none());
    let body: Value = evil.json().await.unwrap();
    assert_eq!(
        (body["code"].as_str(), body["field"].as_str()),
        (Some("forbidden"), Some("Origin"))
    );
    let own = env.base.clone();
    let r = env
        .raw
        .post(format!("{}/back-office/api/login", env.base))
        .header("origin", own)
        .json(&json!({"username": "manager", "password": "manager-demo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

async fn login_from(env: &Env, client: &str, user: &str, password: &str) -> Answer {
    let r = env
        .raw
        .post(format!("{}/back-office/api/login", env.base))
        .header("x-forwarded-for", client)
        .json(&json!({"username": user, "password": password}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    Answer {
        status,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
        headers,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_passwords_throttle_the_client_not_the_user() {
    let env = env_with(|c| c.trust_proxy = true).await;
    let attacker = "203.0.113.9";
    for _ in 0..5 {
        let a = login_from(&env, attacker, "manager", "guess").await;
        assert_cvco_error(&a, 401, "unauthorized");
    }
    // The attacker's next try is refused before any password check, even the right one.
    let a = login_from(&env, attacker, "manager", "manager-demo").await;
    assert_cvco_error(&a, 429, "too_many_attempts");
    // The real manager, from elsewhere, is not locked out.
    let a = login_from(&env, "198.51.100.7", "manager", "manager-demo").await;
    assert_eq!(a.status, 200, "{}", a.text);
}

#[tokio::test(flavor = "multi_thread")]
async fn password_spraying_over_many_usernames_is_throttled_per_client() {
    let env = env_with(|c| c.trust_proxy = true).await;
    let sprayer = "203.0.113.50";
    let mut refused_at = None;
    for i in 0..40 {
        let a = login_from(&env, sprayer, &format!("user{i}"), "Summer2026!").await;
        if a.status == 429 {
            assert_cvco_error(&a, 429, "too_many_attempts");
            refused_at = Some(i);
            break;
        }
        assert_eq!(a.status, 401, "{}", a.text);
    }
    let n = refused_at.expect("spraying 40 usernames from one client is never throttled");
    assert!(n <= 25, "throttled only after {n} usernames");
    let a = login_from(&env, sprayer, "seller", "seller-demo").await;
    assert_cvco_error(&a, 429, "too_many_attempts");
    let a = login_from(&env, "198.51.100.8", "seller", "seller-demo").await;
    assert_eq!(a.status, 200, "{}", a.text);
}

#[tokio::test(flavor = "multi_thread")]
async fn argon2_runs_bounded_however_many_logins_arrive() {
    let env = env_with(|c| {
        c.trust_proxy = true;
        c.login_concurrency = 2;
    })
    .await;
    let mut tasks = Vec::new();
    for i in 0..48 {
        let http = env.raw.clone();
        let url = format!("{}/back-office/api/login", env.base);
        tasks.push(tokio::spawn(async move {
            http.post(url)
                .header("x-forwarded-for", format!("192.0.2.{i}"))
                .json(&json!({"username": format!("nobody{i}"), "password": "x"}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert!(
        statuses.iter().all(|s| *s == 401 || *s == 429),
        "{statuses:?}"
    );
    assert!(statuses.contains(&401), "{statuses:?}");
    let peak = env.host.as_ref().unwrap().app.auth.peak_argon2();
    assert!(
        (1..=2).contains(&peak),
        "{peak} argon2 computations ran at once (limit 2)"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_error_is_a_cvco_error_body() {
    let env = env().await;
    let manager = env.manager().await;
    let a = manager.get("/cvco/v1/transactions?limit=-1").await;
    assert_cvco_error(&a, 400, "invalid_request");
    assert_eq!(a.body["field"], "limit");
    let a = manager
        .get("/cvco/v1/transactions?status=authorized&min_amount_cents=abc")
        .await;
    assert_cvco_error(&a, 400, "invalid_request");
    assert_eq!(a.body["field"], "min_amount_cents");
    let a = manager.get("/cvco/v1/totals?unknown=1").await;
    assert_eq!(a.status, 200, "unknown parameters are ignored: {}", a.text);
    let a = manager.get("/cvco/v1/receipts/x?duplicate=maybe").await;
    assert_cvco_error(&a, 400, "invalid_request");
    // Bodies over the limit, small enough to be read and big enough to refuse.
    let shopper = env.shopper();
    for size in [100 * 1024, 900 * 1024] {
        let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(size));
        let a = post_raw(
            &shopper,
            "/cvco/v1/payments",
            "application/json",
            big.into_bytes(),
        )
        .await;
        assert_cvco_error(&a, 413, "invalid_request");
    }
    // A path that is not UTF-8 once decoded.
    let a = anon(&env).get("/cvco/v1/payments/%FF%FE").await;
    assert_cvco_error(&a, 400, "invalid_request");
    // A method the route does not have.
    let a = manager.get("/cvco/v1/closing").await;
    assert_cvco_error(&a, 405, "invalid_request");
    assert_eq!(
        env.raw
            .get(format!("{}/healthz", env.base))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crafted_date_is_a_cvco_error_and_the_server_lives() {
    let env = env().await;
    let manager = env.manager().await;
    for path in ["/cvco/v1/transactions", "/cvco/v1/payment-requests"] {
        for from in [
            "2026-01-01T12:00:0%C3%A9",
            "%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9",
        ] {
            let a = manager.get(&format!("{path}?from={from}")).await;
            assert!(
                (400..500).contains(&a.status) && a.body["code"] == "invalid_request",
                "{path}?from={from}: {} {}",
                a.status,
                a.text
            );
            assert_eq!(a.body["field"], "from", "{}", a.text);
        }
    }
    assert_eq!(manager.get("/cvco/v1/transactions").await.status, 200);
}

/// Reads one HTTP/1.1 answer (Content-Length bodies) from the connection: its status.
async fn read_answer<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R) -> std::io::Result<u16> {
    let mut line = String::new();
    if r.read_line(&mut line).await? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let status: u16 = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or(std::io::ErrorKind::InvalidData)?;
    let mut len = 0usize;
    let mut close = false;
    loop {
        line.clear();
        if r.read_line(&mut line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':').unwrap_or((l, ""));
        if k.eq_ignore_ascii_case("content-length") {
            len = v.trim().parse().unwrap_or(0);
        }
        if k.eq_ignore_ascii_case("connection") && v.trim().eq_ignore_ascii_case("close") {
            close = true;
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).await?;
    if close {
        return Err(std::io::ErrorKind::ConnectionAborted.into());
    }
    Ok(status)
}

#[tokio::test(flavor = "multi_thread")]
async fn handlers_that_ignore_the_body_keep_the_connection_alive() {
    let env = env().await;
    let manager = env.manager().await;
    let cookie = {
        // The manager's session cookie, as the client sends it.
        let r = env
            .raw
            .post(format!("{}/back-office/api/login", env.base))
            .json(&json!({"username": "manager", "password": "manager-demo"}))
            .send()
            .await
            .unwrap();
        let c = r.headers()["set-cookie"].to_str().unwrap();
        let pair = c.split(';').next().unwrap().to_string();
        let v: Value = r.json().await.unwrap();
        (pair, v["csrf_token"].as_str().unwrap().to_string())
    };
    drop(manager);
    let addr = env.base.trim_start_matches("http://").to_string();
    let stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let (rd, mut wr) = stream.into_split();
    let mut rd = BufReader::new(rd);
    let body = json!({"note": "ignored by the handler", "pad": "y".repeat(3000)}).to_string();
    let mut failures = Vec::new();
    for i in 0..100 {
        let path = if i % 2 == 0 {
            "/cvco/v1/closing".to_string()
        } else {
            format!("/cvco/v1/payments/pay_none{i}/cancel")
        };
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nCookie: {}\r\nX-CSRF-Token: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            cookie.0,
            cookie.1,
            body.len()
        );
        // Head and body in two writes, as a client streaming its body does.
        let sent = async {
            wr.write_all(head.as_bytes()).await?;
            wr.flush().await?;
            wr.write_all(body.as_bytes()).await?;
            wr.flush().await
        }
        .await;
        let answer = match sent {
            Ok(()) => tokio::time::timeout(Duration::from_secs(10), read_answer(&mut rd))
                .await
                .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into())),
            Err(e) => Err(e),
        };
        match answer {
            Ok(s) => {
                let expected = if i % 2 == 0 { 200 } else { 404 };
                assert_eq!(s, expected, "request {i} on {path}");
            }
            Err(e) => {
                failures.push((i, e.to_string()));
                break;
            }
        }
        // A GET in between, as a pooled client would send next.
        let get = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n");
        if let Err(e) = wr.write_all(get.as_bytes()).await {
            failures.push((i, e.to_string()));
            break;
        }
        match tokio::time::timeout(Duration::from_secs(10), read_answer(&mut rd)).await {
            Ok(Ok(200)) => {}
            other => {
                failures.push((i, format!("{other:?}")));
                break;
            }
        }
    }
    assert!(failures.is_empty(), "the connection broke: {failures:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn receipts_link_a_stylesheet_that_exists() {
    let env = env().await;
    let manager = env.manager().await;
    let r = manager.get("/cvco/v1/receipts/totals").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let href = r
        .text
        .split("rel=\"stylesheet\" href=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a stylesheet link")
        .to_string();
    let css = anon(&env).get(&href).await;
    assert_eq!(css.status, 200, "{href}");
    assert!(css.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/css"));
    assert!(css.text.contains(".receipt"), "{}", css.text);
}

#[tokio::test(flavor = "multi_thread")]
async fn anonymous_order_creation_is_rate_limited_per_client_and_in_total() {
    let env = env_with(|c| {
        c.trust_proxy = true;
        c.shop_orders_per_minute = 5;
        c.shop_orders_per_minute_total = 8;
    })
    .await;
    let sku = anon(&env).get("/shop/api/products").await.body[0]["sku"].clone();
    let order = |client: &'static str| {
        let http = env.raw.clone();
        let url = format!("{}/shop/api/orders", env.base);
        let sku = sku.clone();
        async move {
            let r = http
                .post(url)
                .header("x-forwarded-for", client)
                .json(&json!({"items": [{"sku": sku, "quantity": 1}]}))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    for _ in 0..5 {
        assert_eq!(order("203.0.113.1").await.0, 201);
    }
    let (s, b) = order("203.0.113.1").await;
    assert_eq!(
        (s, b["code"].as_str()),
        (429, Some("too_many_attempts")),
        "{b}"
    );
    assert_eq!(b["retryable"], true);
    // Another client still may, until everybody's budget is spent.
    for _ in 0..3 {
        assert_eq!(order("203.0.113.2").await.0, 201);
    }
    let (s, b) = order("203.0.113.3").await;
    assert_eq!(
        (s, b["code"].as_str()),
        (429, Some("too_many_attempts")),
        "{b}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_contract_bodies_get_the_plugins_parse_request_error_byte_for_byte() {
    use cvco_core::contract::{Operation, ParseRequestInput};
    use cvco_core::plugin_api::{exports, Empty, Export};
    let env = env().await;
    let manager = env.manager().await;
    let pool = &env.host.as_ref().unwrap().pool;
    let catalogue = pool
        .call_async::<exports::ErrorCatalogue>(&Empty {})
        .await
        .unwrap();
    let cases: &[(&str, Operation, &str)] = &[
        ("/cvco/v1/payments", Operation::CreatePayment, ""),
        ("/cvco/v1/payments", Operation::CreatePayment, "[1]"),
        (
            "/cvco/v1/payments",
            Operation::CreatePayment,
            "{\"order_ref\":",
        ),
        (
            "/cvco/v1/payments",
            Operation::CreatePayment,
            r#"{"order_ref":"CMD-1","attempt":"a b","beneficiary":"alice.approve@sandbox.cvco.test"}"#,
        ),
        (
            "/cvco/v1/payments",
            Operation::CreatePayment,
            r#"{"order_ref":"CMD-1","mode":"card","attempt":"a1"}"#,
        ),
        (
            "/cvco/v1/payments",
            Operation::CreatePayment,
            r#"{"order_ref":"CMD-1","attempt":"a1","beneficiary":"not an id"}"#,
        ),
        (
            "/cvco/v1/payments",
            Operation::CreatePayment,
            r#"{"order_ref":"CMD-1","mode":"qr","attempt":"a1","beneficiary":"alice.approve@sandbox.cvco.test"}"#,
        ),
        (
            "/cvco/v1/back-office/payments",
            Operation::BackOfficePayment,
            r#"{"order_ref":"DOS-1","channel":"ecommerce","attempt":"a1","beneficiary":"alice.approve@sandbox.cvco.test"}"#,
        ),
        (
            "/cvco/v1/back-office/payments",
            Operation::BackOfficePayment,
            r#"{"order_ref":"DOS-1","amount_cents":"12","attempt":"a1"}"#,
        ),
        (
            "/cvco/v1/payment-requests",
            Operation::CreatePaymentRequest,
            r#"{"order_ref":"DOS-1","amount_cents":5000,"attempt":"r1"}"#,
        ),
        (
            "/cvco/v1/payment-requests",
            Operation::CreatePaymentRequest,
            r#"{"order_ref":"DOS-1","delivery":"email","email":"x","attempt":"r1"}"#,
        ),
        (
            "/cvco/v1/payments/pay_NOPE/refund",
            Operation::Refund,
            r#"{"amount_cents":-5,"attempt":"rf1"}"#,
        ),
        (
            "/cvco/v1/payment-requests/req_NOPE/finalise",
            Operation::Finalise,
            r#"{"amount_cents":0}"#,
        ),
        (
            "/cvco/v1/payments/pay_NOPE/cancel-by-reference",
            Operation::CancelByReference,
            r#"{"password":"x"}"#,
        ),
    ];
    for (path, operation, body) in cases {
        // ParsedRequest is output only (untagged): read the answer as JSON.
        let expected = pool
            .call_by_name_async::<_, Value>(
                exports::ParseRequest::NAME,
                &ParseRequestInput {
                    operation: *operation,
                    body: body.to_string(),
                },
            )
            .await
            .expect_err(body);
        let status = catalogue
            .errors
            .iter()
            .find(|e| e.code == expected.code)
            .unwrap()
            .http_status;
        // §1 is the shopper's; §2 the staff's.
        let client = match operation {
            Operation::CreatePayment => env.shopper(),
            _ => manager.clone(),
        };
        let a = post_raw(&client, path, "application/json", body.as_bytes().to_vec()).await;
        assert_eq!(
            (a.status, a.text.as_str()),
            (status, serde_json::to_string(&expected).unwrap().as_str()),
            "{path} {body}"
        );
    }
}
