//! Pre-reservations (000 §4.3.2): direct MOTO and counter payments with deferred capture, their
//! capture deadline, their follow-up until captured, cancelled or expired, and their cancellation;
//! against the real plugin and sandbox.

mod common;
use common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

async fn wait_request(c: &Client, id: &str, status: &str, within: Duration) -> Value {
    let start = Instant::now();
    loop {
        let r = c.get(&format!("/cvco/v1/payment-requests/{id}")).await;
        assert_eq!(r.status, 200, "{}", r.text);
        if r.body["status"] == status {
            return r.body;
        }
        assert!(
            start.elapsed() < within,
            "pre-reservation not {status}: {}",
            r.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A direct MOTO pre-reservation pushed to Jeanne's app, authorized by her: its request id.
async fn authorized_direct_reservation(env: &Env, c: &Client, order: &str, cents: i64) -> String {
    let r = c
        .post(
            "/cvco/v1/back-office/payments",
            json!({"order_ref": order, "amount_cents": cents, "channel": "moto",
                   "mode": "identifier", "beneficiary": JEANNE, "capture": "deferred",
                   "attempt": "r1"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["capture"], "deferred", "{}", r.text);
    let payment_id = r.body["payment_id"].as_str().unwrap().to_string();
    let tx = r.body["transaction_id"].as_str().expect("transaction id");
    env.app_confirm(tx, JEANNE).await;
    // Listed with the payment requests under its own payment id.
    let listed = wait_request(c, &payment_id, "authorized", Duration::from_secs(20)).await;
    assert_eq!(listed["delivery"], "direct");
    assert_eq!(listed["capture"], "deferred");
    assert_eq!(listed["payment"]["ancv_state"], "AUTHORIZED");
    payment_id
}

#[tokio::test(flavor = "multi_thread")]
async fn direct_moto_pre_reservation_shows_its_capture_deadline_and_is_finalised_once() {
    let env = env().await;
    let manager = env.manager().await;
    let before = cvco_core::Timestamp(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64,
    );
    let id = authorized_direct_reservation(&env, &manager, "RES-MOTO-1", 10000).await;
    let list = manager
        .get("/cvco/v1/payment-requests?status=authorized")
        .await;
    let item = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["request_id"] == id.as_str())
        .cloned()
        .expect("listed");
    // Six days (the default window) from the authorization, shown on the list and the Payment.
    let deadline =
        cvco_core::Timestamp::parse_rfc3339(item["capture_deadline"].as_str().expect("deadline"))
            .unwrap();
    let six_days = 6 * 86_400_000;
    assert!(
        deadline.0 >= before.0 + six_days && deadline.0 <= before.0 + six_days + 60_000,
        "{item}"
    );
    assert_eq!(item["payment"]["deadline"], item["capture_deadline"]);
    assert_eq!(item["payment"]["final"], true);
    assert_eq!(item["finalised"], false);
    let fin = manager
        .post(
            &format!("/cvco/v1/payment-requests/{id}/finalise"),
            json!({"amount_cents": 7000}),
        )
        .await;
    assert_eq!(fin.status, 200, "{}", fin.text);
    assert_eq!(fin.body["finalised"], true);
    assert_eq!(fin.body["payment"]["captured_cents"], 7000);
    assert_eq!(fin.body["payment"]["ancv_state"], "VALIDATED");
    assert!(fin.body["capture_deadline"].is_null(), "{}", fin.text);
    let again = manager
        .post(
            &format!("/cvco/v1/payment-requests/{id}/finalise"),
            json!({}),
        )
        .await;
    assert_eq!(again.status, 409, "{}", again.text);
    let p = manager.get(&format!("/cvco/v1/payments/{id}")).await;
    assert_eq!(p.body["captured_cents"], 7000, "captured once: {}", p.text);
}

#[tokio::test(flavor = "multi_thread")]
async fn counter_qr_pre_reservation_is_listed_and_finalised() {
    let env = env().await;
    let manager = env.manager().await;
    let r = manager
        .post(
            "/cvco/v1/back-office/payments",
            json!({"order_ref": "RES-QR-1", "amount_cents": 4500, "channel": "proximity",
                   "mode": "qr", "capture": "deferred", "attempt": "q1"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["next_action"]["type"], "show_qr", "{}", r.text);
    let request_id = r.body["request_id"].as_str().unwrap().to_string();
    let tx = env.app_pay_request(&request_id, JEANNE).await;
    env.app_confirm(&tx, JEANNE).await;
    let req = wait_request(&manager, &request_id, "authorized", Duration::from_secs(20)).await;
    assert_eq!(req["delivery"], "qr");
    assert_eq!(req["capture"], "deferred");
    assert!(req["capture_deadline"].is_string(), "{req}");
    let fin = manager
        .post(
            &format!("/cvco/v1/payment-requests/{request_id}/finalise"),
            json!({}),
        )
        .await;
    assert_eq!(fin.status, 200, "{}", fin.text);
    assert_eq!(fin.body["payment"]["captured_cents"], 4500);
    // An immediate counter payment stays as it was: no reservation listed for it.
    let imm = manager
        .post(
            "/cvco/v1/back-office/payments",
            json!({"order_ref": "RES-QR-2", "amount_cents": 2500, "channel": "proximity",
                   "mode": "identifier", "beneficiary": ALICE, "attempt": "i1"}),
        )
        .await;
    assert_eq!(imm.status, 201, "{}", imm.text);
    assert_eq!(imm.body["capture"], "immediate", "{}", imm.text);
    let listed = manager
        .get(&format!(
            "/cvco/v1/payment-requests/{}",
            imm.body["payment_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(listed.status, 404, "{}", listed.text);
    // A capture word outside the contract is a typed 422 naming the field.
    let bad = manager
        .post(
            "/cvco/v1/back-office/payments",
            json!({"order_ref": "RES-QR-3", "amount_cents": 2500, "channel": "proximity",
                   "mode": "qr", "capture": "later", "attempt": "b1"}),
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.text);
    assert_eq!(bad.body["field"], "capture", "{}", bad.text);
}

#[tokio::test(flavor = "multi_thread")]
async fn authorized_reservation_whose_expiry_notification_is_lost_ends_expired() {
    let env = env().await;
    // ANCV's window is 3 s here, and no notification ever reaches the host: only its own
    // follow-up of the authorization can learn that it expired.
    env.shop_settings(json!({"deferred_capture_window_s": 3}))
        .await;
    env.faults(json!({"drop_notifications": true})).await;
    let manager = env.manager().await;
    let id = authorized_direct_reservation(&env, &manager, "RES-EXP-1", 6000).await;
    let deadline = manager
        .get(&format!("/cvco/v1/payment-requests/{id}"))
        .await
        .body["capture_deadline"]
        .clone();
    assert!(deadline.is_string(), "{deadline}");
    // Reads expired with nobody asking ANCV but the poller (reading the request reads the record).
    let expired = wait_request(&manager, &id, "expired", Duration::from_secs(30)).await;
    assert_eq!(expired["payment"]["ancv_state"], "EXPIRED", "{expired}");
    assert_eq!(expired["final"], true);
    assert!(expired["capture_deadline"].is_null(), "{expired}");
    // Finalising after the deadline: a typed refusal saying why.
    let late = manager
        .post(
            &format!("/cvco/v1/payment-requests/{id}/finalise"),
            json!({}),
        )
        .await;
    assert_eq!(late.status, 409, "{}", late.text);
    assert_eq!(late.body["code"], "illegal_transition", "{}", late.text);
    assert!(
        late.body["message_en"]
            .as_str()
            .unwrap()
            .contains("Capture deadline passed"),
        "{}",
        late.text
    );
    // Nothing was captured.
    let p = manager.get(&format!("/cvco/v1/payments/{id}")).await;
    assert_eq!(p.body["status"], "expired", "{}", p.text);
    assert_eq!(p.body["captured_cents"], 0, "{}", p.text);
}

#[tokio::test(flavor = "multi_thread")]
async fn finalise_after_the_capture_deadline_is_refused_before_the_poller_sees_the_expiry() {
    // A slow poller: the refusal comes from the deadline itself, not from a record already expired.
    let env = env_with(|c| {
        c.poll_interval_ms = 20_000;
        c.poll_max_ms = 20_000;
    })
    .await;
    env.shop_settings(json!({"deferred_capture_window_s": 2}))
        .await;
    let manager = env.manager().await;
    let id = authorized_direct_reservation(&env, &manager, "RES-LATE-1", 5000).await;
    let r = manager
        .get(&format!("/cvco/v1/payment-requests/{id}"))
        .await;
    let deadline =
        cvco_core::Timestamp::parse_rfc3339(r.body["capture_deadline"].as_str().unwrap()).unwrap();
    loop {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        if now > deadline.0 + 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let late = manager
        .post(
            &format!("/cvco/v1/payment-requests/{id}/finalise"),
            json!({"amount_cents": 5000}),
        )
        .await;
    assert_eq!(late.status, 409, "{}", late.text);
    assert_eq!(late.body["code"], "illegal_transition");
    assert!(
        late.body["message_fr"]
            .as_str()
            .unwrap()
            .contains("Délai de finalisation dépassé"),
        "{}",
        late.text
    );
    // The refusal read ANCV again: the record says expired at once.
    let now = manager
        .get(&format!("/cvco/v1/payment-requests/{id}"))
        .await;
    assert_eq!(now.body["status"], "expired", "{}", now.text);
    assert_eq!(now.body["payment"]["captured_cents"], 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn cancelling_an_authorized_reservation_voids_it_once_under_concurrent_and_retried_cancels() {
    let env = env().await;
    let manager = env.manager().await;
    let id = authorized_direct_reservation(&env, &manager, "RES-CAN-1", 8000).await;
    let path = format!("/cvco/v1/payment-requests/{id}/cancel");
    let (a, b) = tokio::join!(
        manager.post(&path, json!({})),
        manager.post(&path, json!({}))
    );
    for r in [&a, &b] {
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["status"], "cancelled", "{}", r.text);
    }
    let retried = manager.post(&path, json!({})).await;
    assert_eq!(retried.status, 200, "{}", retried.text);
    assert_eq!(retried.body["status"], "cancelled");
    let p = manager.get(&format!("/cvco/v1/payments/{id}")).await;
    assert_eq!(p.body["ancv_state"], "CANCELLED", "{}", p.text);
    assert_eq!(
        p.body["authorized_cents"], 0,
        "the authorization is voided: {}",
        p.text
    );
    assert_eq!(p.body["captured_cents"], 0);
    // ANCV voided it once: one CANCELLED event for the transaction in the sandbox's log.
    let tx = p.body["transaction_id"].as_str().unwrap();
    let log = env
        .admin(reqwest::Method::GET, "/admin/notifications", Value::Null)
        .await;
    let cancels = log
        .as_array()
        .or(log["items"].as_array())
        .expect("notification log")
        .iter()
        .filter(|n| n.to_string().contains(tx) && n.to_string().contains("\"CANCELLED\""))
        .count();
    assert_eq!(cancels, 1, "{log}");
    // A cancelled reservation cannot be finalised.
    let fin = manager
        .post(
            &format!("/cvco/v1/payment-requests/{id}/finalise"),
            json!({}),
        )
        .await;
    assert_eq!(fin.status, 409, "{}", fin.text);
}
