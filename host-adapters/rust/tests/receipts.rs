//! Printed receipts (GET /cvco/v1/receipts/{id}): the payment's own merchant, Paris time, status
//! words, the `tickets` and `ticket_qr` settings (real plugin, real sandbox over HTTP).

mod common;
use common::*;
use cvco_core::Timestamp;
use cvco_host::tenants::MerchantConfig;
use serde_json::{json, Value};

/// "La Forêt", a merchant of its own beside the host's demo shop.
fn la_foret() -> MerchantConfig {
    MerchantConfig {
        id: "foret".into(),
        name: "Camping La Forêt".into(),
        shop_id: Some("SHOP-FORET".into()),
        client_id: "client-foret".into(),
        client_secret: Some("secret-foret".into()),
        notification_secret: Some("whsec-foret".into()),
        ..MerchantConfig::default()
    }
}

/// A host with the Les Pins merchant, its sandbox shop, and its manager logged in.
async fn foret_env() -> (Env, Client) {
    let m = la_foret();
    let env = env_with({
        let m = m.clone();
        move |cfg| cfg.merchants = vec![m]
    })
    .await;
    let r = env
        .raw
        .post(format!("{}/admin/shops", env.sb))
        .json(&json!({
            "shop_id": m.shop_id, "client_id": m.client_id, "client_secret": m.client_secret,
            "notification_secret": m.notification_secret, "channels": ["ecommerce", "proximity", "moto"],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let host = env.host.as_ref().unwrap();
    let password = "long-enough-password";
    host.app
        .auth
        .ensure_user(
            &host.engine.store,
            "paula",
            password,
            "manager",
            cvco_host::auth::Permissions::ALL,
        )
        .await
        .unwrap();
    assert!(host
        .engine
        .store
        .set_user_merchant("paula", "foret")
        .await
        .unwrap());
    let paula = env.login("paula", password).await;
    (env, paula)
}

/// A counter payment of `amount` cents by Alice, authorized: the payment as the host gives it.
async fn counter_paid(who: &Client, amount: i64) -> Value {
    let order = who
        .post("/counter/api/orders", json!({"amount_cents": amount}))
        .await;
    assert_eq!(order.status, 201, "{}", order.text);
    let p = who
        .post(
            "/cvco/v1/back-office/payments",
            json!({"order_ref": order.body["order_ref"], "channel": "proximity",
                "mode": "identifier", "beneficiary": ALICE, "attempt": "t1"}),
        )
        .await;
    assert_eq!(p.status, 201, "{}", p.text);
    let done = who.wait_final(p.body["payment_id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "authorized", "{done}");
    done
}

/// "dd/mm/yyyy hh:mm" of an RFC 3339 instant on the Paris clock.
fn paris(rfc: &str) -> String {
    let (d, h, m) = Timestamp::parse_rfc3339(rfc).unwrap().paris_local();
    format!("{:02}/{:02}/{} {h:02}:{m:02}", d.day, d.month, d.year)
}

#[tokio::test(flavor = "multi_thread")]
async fn receipt_names_the_payments_own_merchant_in_paris_time_with_status_words() {
    let (env, paula) = foret_env().await;
    let p = counter_paid(&paula, 4321).await;
    let id = p["payment_id"].as_str().unwrap();
    let r = paula.get(&format!("/cvco/v1/receipts/{id}")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let html = &r.text;
    assert!(html.contains("Camping La Forêt"), "{html}");
    assert!(html.contains("SHOP-FORET"), "{html}");
    assert!(!html.contains(&env.cfg.merchant_name), "{html}");
    // Local wall-clock time, not the UTC instant.
    let updated = p["updated_at"].as_str().unwrap();
    assert!(
        html.contains(&paris(updated)),
        "{} in {html}",
        paris(updated)
    );
    assert!(!html.contains(updated), "{html}");
    assert!(html.contains("heure de Paris"), "{html}");
    // Status in words, both languages; the enum word never printed.
    assert!(html.contains("Autorisé / Authorized"), "{html}");
    assert!(!html.contains("<td>authorized</td>"), "{html}");
    assert!(html.contains("43,21"), "{html}");
    // Defaults: one ticket, no QR code, no copy label.
    assert_eq!(html.matches("class=\"ticket\"").count(), 1, "{html}");
    assert!(!html.contains("<svg"), "{html}");
    assert!(!html.contains("Exemplaire"), "{html}");
    // Styled for print: the receipt style sheet holds the ticket-printer and A4 layouts.
    assert!(html.contains("/examples/receipt.css"), "{html}");
    let css = env
        .raw
        .get(format!("{}/examples/receipt.css", env.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for rule in ["@page", "max-width: 80mm", "max-width: 58mm", "size: A4"] {
        assert!(css.contains(rule), "receipt.css lacks {rule}");
    }

    // The demo shop's receipts carry the brand its pages show, not another shop's name.
    let manager = env.manager().await;
    let demo = counter_paid(&manager, 2500).await;
    let r = manager
        .get(&format!(
            "/cvco/v1/receipts/{}",
            demo["payment_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.text.contains(&env.cfg.merchant_name), "{}", r.text);
    assert!(!r.text.contains("La Forêt"), "{}", r.text);
    let page = env
        .raw
        .get(format!("{}/back-office", env.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let brand = page
        .split("class=\"brand-name\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .expect("brand on the back-office page");
    assert!(
        r.text.contains(brand),
        "receipt lacks the pages' brand {brand:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_tickets_setting_prints_merchant_and_customer_copies_with_the_reference_as_qr() {
    let env = env().await;
    let manager = env.manager().await;
    let p = counter_paid(&manager, 3000).await;
    let tx = p["transaction_id"].as_str().unwrap();
    let settings = cvco_core::shop::MerchantSettings {
        tickets: 2,
        ticket_qr: true,
        ..cvco_core::shop::MerchantSettings::default()
    };
    let html = cvco_host::http::reports::render_receipt(
        "Camping La Forêt",
        "SHOP-FORET",
        &settings,
        &p,
        true,
    );
    assert_eq!(html.matches("class=\"ticket\"").count(), 2, "{html}");
    let merchant = html.find("Exemplaire commerçant").expect("merchant copy");
    let customer = html.find("Exemplaire client").expect("customer copy");
    assert!(merchant < customer, "merchant's copy first");
    // Each copy is a duplicate here, and carries the reference as a QR code (the widget's encoder).
    assert_eq!(html.matches("DUPLICATA").count(), 2, "{html}");
    let svg = cvco_widget_qr::qr_svg(tx).unwrap();
    assert_eq!(html.matches(svg.as_str()).count(), 2, "{html}");
    assert!(
        html.contains(&format!("aria-label=\"QR code : {tx}\"")),
        "{html}"
    );

    // One ticket, QR code off: what the host prints with the defaults.
    let one = cvco_host::http::reports::render_receipt(
        "Camping La Forêt",
        "SHOP-FORET",
        &cvco_core::shop::MerchantSettings::default(),
        &p,
        false,
    );
    assert_eq!(one.matches("class=\"ticket\"").count(), 1);
    assert!(!one.contains("<svg") && !one.contains("DUPLICATA"));
    let served = manager
        .get(&format!(
            "/cvco/v1/receipts/{}",
            p["payment_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(served.status, 200, "{}", served.text);
    assert_eq!(served.text.matches("class=\"ticket\"").count(), 1);
    assert!(!served.text.contains("<svg") && !served.text.contains("Exemplaire"));
}

/// Every place a shopper or a seller can ask for less than the minimum answers with the
/// minimum itself (20,00 €), and a bad e-mail address with what is wrong with it.
#[tokio::test(flavor = "multi_thread")]
async fn below_the_minimum_every_entry_point_says_the_minimum_and_bad_emails_say_what_is_wrong() {
    let env = env().await;
    let says_minimum = |what: &str, a: &Answer| {
        assert_eq!(a.status, 422, "{what}: {}", a.text);
        assert_eq!(a.body["code"], "amount_below_minimum", "{what}: {}", a.text);
        let (fr, en) = (
            a.body["message_fr"].as_str().unwrap(),
            a.body["message_en"].as_str().unwrap(),
        );
        assert!(fr.contains("20,00"), "{what}: {fr}");
        assert!(en.contains("20.00"), "{what}: {en}");
    };
    // The shopper: the checkout rules the widget shows, then a payment all the same.
    let shopper = env.shopper();
    let small = shopper.test_order(1500).await;
    let rules = shopper
        .get(&format!("/cvco/v1/checkout?order_ref={small}"))
        .await;
    assert_eq!(rules.body["eligible"], false, "{}", rules.text);
    let reason = &rules.body["ineligible_reason"];
    assert!(
        reason["message_fr"].as_str().unwrap().contains("20,00"),
        "{reason}"
    );
    assert!(
        reason["message_en"].as_str().unwrap().contains("20.00"),
        "{reason}"
    );
    says_minimum("shopper payment", &shopper.pay(&small, ALICE, "s1").await);
    // The seller: a MOTO payment, a payment request, a counter sale.
    let seller = env.login("seller", "seller-demo").await;
    says_minimum(
        "MOTO payment",
        &seller
            .post(
                "/cvco/v1/back-office/payments",
                json!({"order_ref": "VAD-MIN-1", "amount_cents": 500, "channel": "moto",
                    "mode": "identifier", "beneficiary": ALICE, "attempt": "m1"}),
            )
            .await,
    );
    says_minimum(
        "payment request",
        &seller
            .post(
                "/cvco/v1/payment-requests",
                json!({"order_ref": "DOS-MIN-1", "amount_cents": 500, "delivery": "email",
                    "email": JEANNE, "capture": "immediate", "attempt": "e1"}),
            )
            .await,
    );
    let order = seller
        .post("/counter/api/orders", json!({"amount_cents": 900}))
        .await;
    assert_eq!(order.status, 201, "{}", order.text);
    says_minimum(
        "counter sale",
        &seller
            .post(
                "/cvco/v1/back-office/payments",
                json!({"order_ref": order.body["order_ref"], "channel": "proximity",
                    "mode": "identifier", "beneficiary": ALICE, "attempt": "c1"}),
            )
            .await,
    );
    // A payment request to a mistyped address: the field and what is wrong, never "6 à 320".
    for (email, fr) in [
        ("jeanne.example.fr", "Il manque le « @ »"),
        ("jeanne@", "Il manque le domaine"),
        ("jeanne@example", "incomplet"),
        ("jeanne dupont@example.fr", "espace"),
    ] {
        let r = seller
            .post(
                "/cvco/v1/payment-requests",
                json!({"order_ref": "DOS-MAIL-1", "amount_cents": 3000, "delivery": "email",
                    "email": email, "capture": "immediate", "attempt": format!("a-{email}")}),
            )
            .await;
        assert_eq!(
            (r.status, r.body["code"].as_str(), r.body["field"].as_str()),
            (422, Some("invalid_beneficiary"), Some("email")),
            "{email}: {}",
            r.text
        );
        let message = r.body["message_fr"].as_str().unwrap();
        assert!(message.contains(fr), "{email}: {message}");
        assert!(!message.contains("320"), "{email}: {message}");
    }
}
