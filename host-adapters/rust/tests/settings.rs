//! The merchant's settings in the back-office (`/cvco/v1/settings`): the manager's only, used
//! by the checkout, the totals and the cancel, kept across a restart; the plugin refuses plain
//! http to anything but this machine. Real plugin, real sandbox, real host.

mod common;
use common::*;
use serde_json::{json, Value};

async fn paid(env: &Env, amount: i64) -> Value {
    let shopper = env.shopper();
    let order = shopper.test_order(amount).await;
    let p = shopper.pay(&order, ALICE, "a").await;
    assert_eq!(p.status, 201, "{}", p.text);
    let done = shopper
        .wait_final(p.body["payment_id"].as_str().unwrap())
        .await;
    assert_eq!(done["status"], "authorized");
    done
}

#[tokio::test(flavor = "multi_thread")]
async fn the_manager_edits_the_settings_sellers_cannot_and_every_flow_uses_them_after_a_restart() {
    let dir = std::env::temp_dir().join(format!(
        "cvco-settings-{}-{}",
        std::process::id(),
        cvco_host::util::random_token(4)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let mut env = env_with(|cfg| cfg.data_file = Some(dir.join("host.db"))).await;
    let seller = env.login("seller", "seller-demo").await;
    assert_eq!(seller.get("/cvco/v1/settings").await.status, 403);
    let r = seller
        .send(
            reqwest::Method::PUT,
            "/cvco/v1/settings",
            Some(json!({"min_amount_cents": 100})),
        )
        .await;
    assert_eq!(r.status, 403);

    let manager = env.manager().await;
    let seed = manager.get("/cvco/v1/settings").await;
    assert_eq!(seed.status, 200, "{}", seed.text);
    assert_eq!(seed.body["min_amount_cents"], 2000);
    assert_eq!(seed.body["closing_hour"], env.cfg.closing_hour);
    assert_eq!(seed.body["has_cancel_password"], false);
    let put = |body: Value| {
        let m = manager.clone();
        async move {
            m.send(reqwest::Method::PUT, "/cvco/v1/settings", Some(body))
                .await
        }
    };
    // Typed errors naming the field; nothing saved.
    for (body, field) in [
        (json!({"tickets": 3}), "tickets"),
        (json!({"closing_hour": 24}), "closing_hour"),
        (json!({"fee_rate_bps": "x"}), "fee_rate_bps"),
        (json!({"colour": "red"}), "colour"),
        (json!({"cancel_password": "12"}), "cancel_password"),
        (
            json!({"remainder_min_cents": 5000, "min_amount_cents": 2000}),
            "remainder_min_cents",
        ),
    ] {
        let r = put(body.clone()).await;
        assert_eq!(
            (r.status, r.body["code"].as_str(), r.body["field"].as_str()),
            (422, Some("config_invalid"), Some(field)),
            "{body}: {}",
            r.text
        );
    }
    // Without the CSRF token: refused like every back-office write.
    let no_csrf = Client {
        csrf: None,
        ..manager.clone()
    };
    let r = no_csrf
        .send(
            reqwest::Method::PUT,
            "/cvco/v1/settings",
            Some(json!({"tickets": 2})),
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(manager.get("/cvco/v1/settings").await.body, seed.body);

    let saved = put(json!({
        "min_amount_cents": 3000, "adjustable": false, "refuse_partial": true, "tickets": 2,
        "ticket_qr": true, "auto_remainder": true, "remainder_min_cents": 500,
        "fee_rate_bps": 300, "closing_hour": 5, "cancel_password": "4321"
    }))
    .await;
    assert_eq!(saved.status, 200, "{}", saved.text);
    assert!(!saved.text.contains("4321"), "the password is never shown");
    assert_eq!(saved.body["has_cancel_password"], true);
    assert!(saved.body["version"].as_i64().unwrap() > 0);

    // The checkout (plugin config rebuilt at once) and the totals use them.
    let shopper = env.shopper();
    let order = shopper.test_order(2500).await;
    let c = shopper
        .get(&format!("/cvco/v1/checkout?order_ref={order}"))
        .await;
    assert_eq!(c.body["min_amount_cents"], 3000, "{}", c.text);
    assert_eq!(c.body["adjustable"], false);
    let below = shopper.pay(&order, ALICE, "a").await;
    assert_eq!(below.body["code"], "amount_below_minimum", "{}", below.text);
    let totals = manager.get("/cvco/v1/totals").await;
    assert_eq!(totals.body["closing_hour"], 5, "{}", totals.text);
    let mut merchant_rules = saved.body.clone();
    merchant_rules
        .as_object_mut()
        .unwrap()
        .retain(|k, _| k != "version" && k != "has_cancel_password");

    env.restart().await;
    let manager = env.manager().await;
    let after = manager.get("/cvco/v1/settings").await;
    assert_eq!(after.body, saved.body, "kept across a restart");
    let shopper = env.shopper();
    let order = shopper.test_order(2500).await;
    let c = shopper
        .get(&format!("/cvco/v1/checkout?order_ref={order}"))
        .await;
    assert_eq!(c.body["min_amount_cents"], 3000);
    assert!(merchant_rules["tickets"] == 2 && merchant_rules["fee_rate_bps"] == 300);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cancellation_password_guards_cancel_by_reference_and_0000_removes_it() {
    let env = env().await;
    let manager = env.manager().await;
    let set = manager
        .send(
            reqwest::Method::PUT,
            "/cvco/v1/settings",
            Some(json!({"cancel_password": "4321"})),
        )
        .await;
    assert_eq!(set.status, 200, "{}", set.text);
    let p = paid(&env, 3000).await;
    let id = p["payment_id"].as_str().unwrap();
    let by_ref = |password: Option<&str>| {
        let mut body = json!({"transaction_id": p["transaction_id"]});
        if let Some(pw) = password {
            body["password"] = json!(pw);
        }
        let m = manager.clone();
        let path = format!("/cvco/v1/payments/{id}/cancel-by-reference");
        async move { m.post(&path, body).await }
    };
    for wrong in [None, Some("1234")] {
        let r = by_ref(wrong).await;
        assert_eq!(
            (r.status, r.body["code"].as_str(), r.body["field"].as_str()),
            (403, Some("forbidden"), Some("password")),
            "{wrong:?}: {}",
            r.text
        );
    }
    // The counter's cancellation (reference typed first) asks for the same password.
    let typed_first = manager
        .post(
            "/cvco/v1/cancellations",
            json!({"transaction_id": p["transaction_id"], "password": "9999"}),
        )
        .await;
    assert_eq!(
        (typed_first.status, typed_first.body["field"].as_str()),
        (403, Some("password")),
        "{}",
        typed_first.text
    );
    let still = manager.get(&format!("/cvco/v1/payments/{id}")).await;
    assert_eq!(still.body["status"], "authorized", "nothing cancelled");
    let ok = by_ref(Some("4321")).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(ok.body["status"], "cancelled");

    // "0000" removes it, as on the terminal: the next cancel needs none.
    let removed = manager
        .send(
            reqwest::Method::PUT,
            "/cvco/v1/settings",
            Some(json!({"cancel_password": "0000"})),
        )
        .await;
    assert_eq!(removed.body["has_cancel_password"], false);
    let p = paid(&env, 3000).await;
    let r = manager
        .post(
            "/cvco/v1/cancellations",
            json!({"transaction_id": p["transaction_id"]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "cancelled");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_plugin_refuses_a_plain_http_api_base_url_outside_loopback() {
    use cvco_core::plugin_api::{exports::CheckConnection, CheckConnectionInput};
    let wasm = std::fs::read(cvco_test_host::plugin_path().expect("plugin")).unwrap();
    let pool_for = |url: &str, host: &str| {
        let mut cfg = test_config(url);
        cfg.sandbox_url = url.into();
        cvco_plugin_host::Pool::builder(wasm.clone())
            .configs(cfg.plugin_config())
            .allowed_host(host.to_string())
            .build()
            .unwrap()
    };
    let env = env().await;
    // The real sandbox on 127.0.0.1 over http: accepted.
    let ok = pool_for(&env.sb, "127.0.0.1")
        .call_async::<CheckConnection>(&CheckConnectionInput::default())
        .await
        .unwrap();
    assert!(ok.ok);
    // Over http to another machine: refused before any request, naming the field.
    let e = pool_for("http://acquisition.example:7070", "acquisition.example")
        .call_async::<CheckConnection>(&CheckConnectionInput::default())
        .await
        .unwrap_err();
    assert_eq!(
        (e.code.as_str(), e.field.as_deref()),
        ("config_invalid", Some("api_base_url")),
        "{e:?}"
    );
    assert!(e.message_en.contains("https://"), "{}", e.message_en);
    // The real host does not start on it, and says why.
    let mut cfg = test_config("http://acquisition.example:7070");
    let _db = database_for(&mut cfg).await;
    let started = cvco_host::spawn(cfg).await;
    let why = match started {
        Ok(_) => panic!("cvco-host started with plain http to another machine"),
        Err(e) => e.to_string(),
    };
    assert!(why.contains("api_base_url"), "{why}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_settings_change_reaches_another_instance_on_the_same_database() {
    let dir = std::env::temp_dir().join(format!(
        "cvco-settings-b-{}-{}",
        std::process::id(),
        cvco_host::util::random_token(4)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let mut env = env_with(|cfg| cfg.data_file = Some(dir.join("host.db"))).await;
    let b = cvco_host::spawn(env.cfg.clone()).await.expect("host B");
    let a_base = std::mem::replace(&mut env.base, b.base_url.clone());
    let manager_b = env.manager().await;
    let shopper_b = env.shopper();
    env.base = a_base;
    let order = shopper_b.test_order(2500).await;
    let checkout = format!("/cvco/v1/checkout?order_ref={order}");
    assert_eq!(
        shopper_b.get(&checkout).await.body["min_amount_cents"],
        2000
    );
    // Two writes on A in quick succession (often the same millisecond): B ends with the last.
    let manager_a = env.manager().await;
    for body in [
        json!({"min_amount_cents": 2600, "tickets": 2}),
        json!({"min_amount_cents": 2500}),
    ] {
        let r = manager_a
            .send(reqwest::Method::PUT, "/cvco/v1/settings", Some(body))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    wait_until("B reloads the settings", || {
        let m = manager_b.clone();
        async move {
            let s = m.get("/cvco/v1/settings").await.body;
            s["min_amount_cents"] == 2500 && s["tickets"] == 2
        }
    })
    .await;
    // B's plugin config was rebuilt with them: its checkout shows the new minimum.
    assert_eq!(
        shopper_b.get(&checkout).await.body["min_amount_cents"],
        2500
    );
    b.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
