//! Many merchants in one host: each with its own ANCV shop, credentials and notification secret,
//! plugin pools per reception point (real plugin, real sandbox over HTTP).

mod common;
use common::*;
use cvco_core::plugin_api::CheckConnectionInput;
use cvco_host::payments::PluginCalls;
use cvco_host::tenants::{ApiSettings, MerchantConfig, Tenants};

/// Merchant `id`'s configuration: its own shop id, credentials and notification secret.
fn merchant_config(id: &str) -> MerchantConfig {
    MerchantConfig {
        id: id.into(),
        name: format!("Camping {id}"),
        shop_id: Some(format!("SHOP-{}", id.to_uppercase())),
        client_id: format!("client-{id}"),
        client_secret: Some(format!("secret-{id}")),
        notification_secret: Some(format!("whsec-{id}")),
        ..MerchantConfig::default()
    }
}

/// The merchant's shop at the sandbox.
async fn create_shop(sb: &str, m: &MerchantConfig) {
    let body = serde_json::json!({
        "shop_id": m.shop_id, "client_id": m.client_id, "client_secret": m.client_secret,
        "notification_secret": m.notification_secret, "channels": ["ecommerce", "proximity", "moto"],
    });
    let r = reqwest::Client::new()
        .post(format!("{sb}/admin/shops"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        201,
        "shop {}: {}",
        m.id,
        r.text().await.unwrap()
    );
}

/// A sandbox shop of its own for merchant `id` (credentials derived from the id).
async fn sandbox_shop(sb: &str, id: &str) -> MerchantConfig {
    let m = merchant_config(id);
    create_shop(sb, &m).await;
    m
}

fn wasm() -> Vec<u8> {
    std::fs::read(cvco_test_host::plugin_path().expect("plugin")).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn three_hundred_merchants_each_reach_their_own_shop_and_live_pools_stay_at_the_bound() {
    let env = env().await;
    let api = ApiSettings {
        api_base_url: env.sb.clone(),
        request_timeout_ms: 10_000,
        allowed_host: "127.0.0.1".into(),
    };
    let tenants = Tenants::new(wasm(), api, None, cvco_plugin_host::DEFAULT_MAX_LIVE);
    let n = 300;
    for i in 0..n {
        let m = sandbox_shop(&env.sb, &format!("m{i:03}")).await;
        tenants.upsert(m.into_merchant().unwrap());
    }
    for i in 0..n {
        let id = format!("m{i:03}");
        let status = tenants
            .plugin(&id, None)
            .unwrap()
            .check_connection(CheckConnectionInput::default())
            .await
            .unwrap_or_else(|e| panic!("{id}: {e:?}"));
        assert_eq!(status.shop_id, format!("SHOP-{}", id.to_uppercase()));
    }
    let stats = tenants.stats();
    assert_eq!(stats.live, tenants.max_live(), "{stats:?}");
    assert_eq!(stats.created, n as u64);
    assert_eq!(stats.evicted, (n - tenants.max_live()) as u64);
    assert_eq!(stats.modules_compiled, 1, "one compiled plugin for all");
    // The first merchants were evicted: their next call builds their pool again.
    let again = tenants.plugin("m000", None).unwrap();
    again
        .check_connection(CheckConnectionInput::default())
        .await
        .unwrap();
    assert_eq!(tenants.stats().created, n as u64 + 1);
    assert!(tenants.stats().live <= tenants.max_live());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_merchant_whose_secret_changes_gets_a_pool_with_the_new_one() {
    let env = env().await;
    let api = ApiSettings {
        api_base_url: env.sb.clone(),
        request_timeout_ms: 10_000,
        allowed_host: "127.0.0.1".into(),
    };
    let tenants = Tenants::new(wasm(), api, None, 8);
    let good = sandbox_shop(&env.sb, "lac").await;
    tenants.upsert(good.clone().into_merchant().unwrap());
    let plugin = tenants.plugin("lac", None).unwrap();
    plugin
        .check_connection(CheckConnectionInput::default())
        .await
        .unwrap();
    // The same handle, after the secret changed: refused by ANCV, so the new config is used.
    let wrong = MerchantConfig {
        client_secret: Some("not-the-secret".into()),
        ..good.clone()
    };
    tenants.upsert(wrong.into_merchant().unwrap());
    let e = plugin
        .check_connection(CheckConnectionInput::default())
        .await
        .unwrap_err();
    assert_eq!(e.code, cvco_core::ErrorCode::Unauthorized, "{e:?}");
    assert_eq!(tenants.stats().invalidated, 1);
    tenants.upsert(good.into_merchant().unwrap());
    plugin
        .check_connection(CheckConnectionInput::default())
        .await
        .unwrap();
    // A merchant removed has no plugin any more.
    assert!(tenants.remove("lac"));
    assert!(plugin
        .check_connection(CheckConnectionInput::default())
        .await
        .is_err());
    assert!(tenants.plugin("lac", None).is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_with_merchants_only_starts_and_knows_each_of_them() {
    let env = env().await;
    let a = sandbox_shop(&env.sb, "alpha").await;
    let b = sandbox_shop(&env.sb, "beta").await;
    let cfg = cvco_host::HostConfig {
        shop_id: String::new(),
        client_id: String::new(),
        client_secret: String::new(),
        notification_secret: String::new(),
        merchants: vec![a, b],
        ..test_config(&env.sb)
    };
    let host = cvco_host::spawn(cfg).await.expect("host");
    assert!(host.tenants.merchant("default").is_none());
    for id in ["alpha", "beta"] {
        let m = host.tenants.merchant(id).unwrap();
        let status = host
            .tenants
            .plugin(id, None)
            .unwrap()
            .check_connection(CheckConnectionInput::default())
            .await
            .unwrap();
        assert_eq!(status.shop_id, m.reception_points[0].shop_id);
    }
    host.shutdown().await;
}

const KEY: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";

/// `cvco-host ARGS` with `stdin`, the sealing key set; (success, stdout, stderr).
fn cvco_host(args: &[&str], stdin: &str) -> (bool, String, String) {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cvco-host"))
        .args(args)
        .env(cvco_host::secrets::KEY_ENV, KEY)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_merchant_added_by_command_is_stored_sealed_and_a_running_host_takes_its_new_secret() {
    let env = env().await;
    let shop = sandbox_shop(&env.sb, "camp-a").await;
    let dir = std::env::temp_dir().join(format!("cvco-tenants-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let data = dir.join("host.sqlite");
    let data_s = data.to_str().unwrap();
    let add = |stdin: &str| {
        cvco_host(
            &[
                "merchant",
                "add",
                "--id",
                "camp-a",
                "--name",
                "Camping A",
                "--client-id",
                "client-camp-a",
                "--shop-id",
                "SHOP-CAMP-A=Accueil",
                "--data",
                data_s,
            ],
            stdin,
        )
    };
    let (ok, _, err) = add("secret-camp-a\nwhsec-camp-a\n");
    assert!(ok, "{err}");
    // Added twice: refused, nothing changed.
    let (ok, _, err) = add("other\nother\n");
    assert!(!ok && err.contains("exists already"), "{err}");
    // A secret as a flag is refused.
    let (ok, _, err) = cvco_host(&["merchant", "add", "--client-secret", "x"], "");
    assert!(!ok && err.contains("stdin"), "{err}");
    let (ok, list, err) = cvco_host(&["merchant", "list", "--data", data_s], "");
    assert!(ok, "{err}");
    assert!(
        list.contains("camp-a") && list.contains("SHOP-CAMP-A=Accueil"),
        "{list}"
    );
    assert!(
        !list.contains("secret-camp-a") && !list.contains("whsec"),
        "{list}"
    );
    // The database holds the secrets sealed only (the raw rows, WAL included).
    let store = cvco_host::store::Store::open(Some(&data)).unwrap();
    let row = store.merchant("camp-a").await.unwrap().unwrap();
    assert!(row.client_secret_sealed.starts_with("cvco1"), "sealed");
    for f in [data.clone(), dir.join("host.sqlite-wal")] {
        let raw = std::fs::read(&f).unwrap_or_default();
        let raw = String::from_utf8_lossy(&raw);
        assert!(
            !raw.contains("secret-camp-a") && !raw.contains("whsec-camp-a"),
            "{} holds a secret in clear",
            f.display()
        );
    }
    drop(store);

    // A host whose only merchant is in the store serves it with the stored (sealed) secrets.
    std::env::set_var(cvco_host::secrets::KEY_ENV, KEY);
    let cfg = cvco_host::HostConfig {
        shop_id: String::new(),
        client_id: String::new(),
        client_secret: String::new(),
        notification_secret: String::new(),
        data_file: Some(data.clone()),
        database: None,
        ..test_config(&env.sb)
    };
    let host = cvco_host::spawn(cfg).await.expect("host");
    let plugin = host.tenants.plugin("camp-a", None).unwrap();
    let status = plugin
        .check_connection(CheckConnectionInput::default())
        .await
        .unwrap();
    assert_eq!(status.shop_id, shop.shop_id.unwrap());
    // A wrong secret set by command reaches the running host: ANCV refuses it.
    let (ok, _, err) = cvco_host(
        &[
            "merchant",
            "set-secret",
            "--id",
            "camp-a",
            "--secret",
            "client",
            "--data",
            data_s,
        ],
        "not-the-secret\n",
    );
    assert!(ok, "{err}");
    let refused = async {
        loop {
            let r = plugin
                .check_connection(CheckConnectionInput::default())
                .await;
            if let Err(e) = r {
                return e;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    };
    let e = tokio::time::timeout(std::time::Duration::from_secs(10), refused)
        .await
        .expect("the new secret was not taken within 10 s");
    assert_eq!(e.code, cvco_core::ErrorCode::Unauthorized, "{e:?}");
    host.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A notification signed with `secret`, posted to `path`: its status.
async fn notify(env: &Env, path: &str, secret: &str, event: &str, body: &str) -> u16 {
    let now = cvco_core::Timestamp(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64,
    );
    let sig = cvco_core::signature::sign(secret.as_bytes(), now, body.as_bytes());
    let r = env
        .raw
        .post(format!("{}{path}", env.base))
        .header("content-type", "application/json")
        .header("cvco-event-id", event)
        .header("cvco-signature", sig)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    if status == 400 {
        eprintln!("{path}: {}", r.text().await.unwrap());
    }
    status
}

#[tokio::test(flavor = "multi_thread")]
async fn two_merchants_each_take_a_payment_and_never_see_each_others_data() {
    let (a, b) = (merchant_config("alpha"), merchant_config("beta"));
    // Alpha's own settings reach its checkout.
    let a = MerchantConfig {
        min_amount_cents: Some(700),
        authorization_timeout_s: Some(240),
        ..a
    };
    let (a2, b2) = (a.clone(), b.clone());
    let env = env_with(move |cfg| cfg.merchants = vec![a2, b2]).await;
    create_shop(&env.sb, &a).await;
    create_shop(&env.sb, &b).await;
    let host = env.host.as_ref().unwrap();
    let password = "long-enough-password";
    for (merchant, user) in [("alpha", "anna"), ("beta", "bert")] {
        host.app
            .auth
            .ensure_user(
                &host.engine.store,
                user,
                password,
                "manager",
                cvco_host::auth::Permissions::ALL,
            )
            .await
            .unwrap();
        assert!(host
            .engine
            .store
            .set_user_merchant(user, merchant)
            .await
            .unwrap());
    }
    let (anna, bert) = (
        env.login("anna", password).await,
        env.login("bert", password).await,
    );
    // Each takes a counter payment, approved by the sandbox on its own shop.
    let mut paid = Vec::new();
    for (who, amount) in [(&anna, 4100), (&bert, 4200)] {
        let order = who
            .post(
                "/counter/api/orders",
                serde_json::json!({"amount_cents": amount}),
            )
            .await;
        assert_eq!(order.status, 201, "{}", order.text);
        let order_ref = order.body["order_ref"].as_str().unwrap().to_string();
        let checkout = who
            .get(&format!("/cvco/v1/checkout?order_ref={order_ref}"))
            .await;
        assert_eq!(checkout.status, 200, "{}", checkout.text);
        let expected = if amount == 4100 {
            (700, 240)
        } else {
            (2000, 180)
        };
        assert_eq!(
            (
                checkout.body["min_amount_cents"].as_i64(),
                checkout.body["authorization_timeout_s"].as_i64()
            ),
            (Some(expected.0), Some(expected.1)),
            "{}",
            checkout.text
        );
        let p = who
            .post(
                "/cvco/v1/back-office/payments",
                serde_json::json!({"order_ref": order_ref, "channel": "proximity",
                    "mode": "identifier", "beneficiary": ALICE, "attempt": "t1"}),
            )
            .await;
        assert_eq!(p.status, 201, "{}", p.text);
        let id = p.body["payment_id"].as_str().unwrap().to_string();
        let done = who.wait_final(&id).await;
        assert_eq!(done["authorized_cents"].as_i64(), Some(amount), "{done}");
        paid.push((
            id,
            p.body["transaction_id"].as_str().unwrap().to_string(),
            order_ref,
        ));
    }
    let ((a_pay, _, _), (b_pay, b_tx, b_order)) = (&paid[0], &paid[1]);
    // ANCV was given each merchant's own notification URL, and its shop id.
    let log: serde_json::Value = env
        .raw
        .get(format!("{}/admin/notifications", env.sb))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for (shop, merchant) in [("SHOP-ALPHA", "alpha"), ("SHOP-BETA", "beta")] {
        let sent: Vec<_> = log["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["shop_id"] == shop)
            .collect();
        assert!(!sent.is_empty(), "no notification for {shop}: {log}");
        for d in sent {
            let url = d["url"].as_str().unwrap();
            assert!(
                url.ends_with(&format!("/cvco/v1/notifications/{merchant}")),
                "{url}"
            );
        }
    }

    // Anna sees her payment and nothing of Bert's: 404 as for an unknown id.
    assert_eq!(
        anna.get(&format!("/cvco/v1/payments/{a_pay}")).await.status,
        200
    );
    for path in [
        format!("/cvco/v1/payments/{b_pay}"),
        format!("/cvco/v1/receipts/{b_pay}"),
    ] {
        let r = anna.get(&path).await;
        assert_eq!(r.status, 404, "{path}: {}", r.text);
    }
    let refund = anna
        .post(
            &format!("/cvco/v1/payments/{b_pay}/refund"),
            serde_json::json!({"amount_cents": 100, "reason": "x", "attempt": "r1"}),
        )
        .await;
    assert_eq!(refund.status, 404, "{}", refund.text);
    for path in ["cancel-by-reference", "cancel"] {
        let cancel = anna
            .post(
                &format!("/cvco/v1/payments/{b_pay}/{path}"),
                serde_json::json!({"transaction_id": b_tx}),
            )
            .await;
        assert_eq!(cancel.status, 404, "{path}: {}", cancel.text);
    }
    // A back-office payment on Bert's order: as if the order did not exist.
    let taken = anna
        .post(
            "/cvco/v1/back-office/payments",
            serde_json::json!({"order_ref": b_order, "channel": "proximity",
                "mode": "identifier", "beneficiary": ALICE, "attempt": "t2"}),
        )
        .await;
    assert_eq!(taken.status, 404, "{}", taken.text);
    for (who, mine, theirs) in [(&anna, a_pay, b_pay), (&bert, b_pay, a_pay)] {
        let list = who.get("/cvco/v1/transactions").await;
        assert_eq!(list.status, 200, "{}", list.text);
        let ids: Vec<_> = list.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["payment_id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            ids,
            std::slice::from_ref(mine),
            "only its own, not {theirs}"
        );
        assert_eq!(list.body["total"], 1);
        let totals = who.get("/cvco/v1/totals").await;
        assert_eq!(totals.status, 200, "{}", totals.text);
        assert_eq!(totals.body["count"], 1, "{}", totals.text);
    }
    // Sellers: each manager creates and sees its merchant's only; another's is unknown.
    let seller = |name: &str| {
        serde_json::json!({"username": name, "password": "seller-password",
            "permissions": {"moto": true, "counter": true}})
    };
    assert_eq!(
        anna.post("/back-office/api/sellers", seller("sam"))
            .await
            .status,
        201
    );
    assert_eq!(
        bert.post("/back-office/api/sellers", seller("bea"))
            .await
            .status,
        201
    );
    let names = |v: &serde_json::Value| -> Vec<String> {
        let mut n: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["username"].as_str().unwrap().to_string())
            .collect();
        n.sort();
        n
    };
    assert_eq!(
        names(&anna.get("/back-office/api/sellers").await.body),
        ["anna", "sam"]
    );
    let edit = anna
        .send(
            reqwest::Method::PUT,
            "/back-office/api/sellers/bea",
            Some(serde_json::json!({"active": false})),
        )
        .await;
    assert_eq!(edit.status, 404, "{}", edit.text);
    let sam = env.login("sam", "seller-password").await;
    let list = sam.get("/cvco/v1/transactions").await;
    assert_eq!(list.body["total"], 1, "{}", list.text);
    assert_eq!(
        list.body["items"][0]["payment_id"].as_str(),
        Some(a_pay.as_str())
    );
    // The default merchant's manager sees neither.
    let manager = env.manager().await;
    assert_eq!(manager.get("/cvco/v1/transactions").await.body["total"], 0);
    assert_eq!(
        manager
            .get(&format!("/cvco/v1/payments/{a_pay}"))
            .await
            .status,
        404
    );

    // A notification for Beta signed with Alpha's secret: refused, nothing changes.
    let before = bert.get(&format!("/cvco/v1/payments/{b_pay}")).await.body;
    let body = format!(
        r#"{{"id":"evt_x1","type":"transaction.updated","created_at":"2026-11-25T10:00:00.000Z","shop_id":"SHOP-BETA","merchant_order_id":"{b_order}","transaction_id":"{b_tx}","state":"CANCELLED","sequence":999}}"#
    );
    let whsec_alpha = a.notification_secret.clone().unwrap();
    assert_eq!(
        notify(
            &env,
            "/cvco/v1/notifications/beta",
            &whsec_alpha,
            "evt_x1",
            &body
        )
        .await,
        400
    );
    // Signed by Alpha at Alpha's URL but about Beta's shop: the plugin refuses it.
    let alpha_url = "/cvco/v1/notifications/alpha";
    assert_eq!(
        notify(&env, alpha_url, &whsec_alpha, "evt_x1", &body).await,
        400
    );
    // Naming Alpha's shop but Beta's transaction: not Alpha's, 204 and nothing recorded (the
    // same event again is not a duplicate).
    let body = body
        .replace("SHOP-BETA", "SHOP-ALPHA")
        .replace("evt_x1", "evt_x2");
    for _ in 0..2 {
        assert_eq!(
            notify(&env, alpha_url, &whsec_alpha, "evt_x2", &body).await,
            204
        );
    }
    assert_eq!(
        notify(
            &env,
            "/cvco/v1/notifications/nobody",
            &whsec_alpha,
            "evt_x1",
            &body
        )
        .await,
        404
    );
    let after = bert.get(&format!("/cvco/v1/payments/{b_pay}")).await.body;
    assert_eq!(before["status"], after["status"]);
    assert_eq!(before["sequence"], after["sequence"]);
}
