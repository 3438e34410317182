//! An unattended kiosk whose merchant refuses partial authorizations (no other tender there):
//! the shopper walks away once the app has authorized part of the amount, the kiosk screen never
//! reads the payment again, and the host still voids it, once, wherever it records the partial
//! authorization (ANCV's notification, the poller, the start-up reconciliation). Voids are counted
//! in the sandbox's journal of cancel calls, where a second void would show as a replay.

mod common;
use common::*;
use serde_json::{json, Value};
use std::time::Duration;

async fn kiosk_order(manager: &Client, amount: i64) -> String {
    let o = manager
        .post("/kiosk/api/orders", json!({"amount_cents": amount}))
        .await;
    assert_eq!(o.status, 201, "{}", o.text);
    o.body["order_ref"].as_str().unwrap().to_string()
}

/// The merchant refuses partial authorizations; a kiosk order of 60,00 € is started for Bruno
/// (35,00 € on his account) and the screen is left alone. Answers (order, payment id,
/// transaction id).
async fn walked_away(env: &Env) -> (String, String, String) {
    let manager = env.manager().await;
    let r = manager
        .send(
            reqwest::Method::PUT,
            "/cvco/v1/settings",
            Some(json!({"refuse_partial": true})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let order_ref = kiosk_order(&manager, 6000).await;
    let p = env
        .shopper()
        .post(
            "/kiosk/api/payments",
            json!({"order_ref": order_ref, "mode": "identifier", "beneficiary": BRUNO, "attempt": "k1"}),
        )
        .await;
    assert_eq!(p.status, 201, "{}", p.text);
    assert_eq!(p.body["payment"]["final"], false, "{}", p.text);
    let id = p.body["payment"]["payment_id"]
        .as_str()
        .unwrap()
        .to_string();
    let tx = p.body["payment"]["transaction_id"]
        .as_str()
        .expect("transaction id")
        .to_string();
    (order_ref, id, tx)
}

/// A host whose SQLite database is a file (PostgreSQL runs have their own database), so it
/// survives a restart and the test can read it beside the host.
async fn env_on_disk() -> (Env, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!(
        "cvco-host-kiosk-{}-{}",
        std::process::id(),
        cvco_host::util::random_token(4)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let env = env_with(|cfg| cfg.data_file = Some(dir.join("host.db"))).await;
    (env, dir)
}

/// The cancel calls ANCV received for the transaction (`void`, `replay`, `refused`).
async fn cancel_calls(env: &Env, tx: &str) -> Vec<String> {
    let log = env
        .admin(
            reqwest::Method::GET,
            &format!("/admin/cancellations?transaction_id={tx}"),
            Value::Null,
        )
        .await;
    log["items"]
        .as_array()
        .expect("cancel journal")
        .iter()
        .map(|c| c["outcome"].as_str().unwrap().to_string())
        .collect()
}

/// Waits for ANCV's first cancel call of the transaction, then a few poll intervals more (a
/// second one would come by then), and answers the calls.
async fn calls_settled(env: &Env, tx: &str) -> Vec<String> {
    wait_until("the host to ask ANCV for the void", || async {
        !cancel_calls(env, tx).await.is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(4 * env.cfg.poll_max_ms)).await;
    cancel_calls(env, tx).await
}

/// What the kiosk screen shows now (read only once the void is over).
async fn screen(env: &Env, id: &str, order_ref: &str) -> (Value, Value) {
    let kiosk = env.shopper();
    let p = kiosk.get(&format!("/kiosk/api/payments/{id}")).await;
    assert_eq!(p.status, 200, "{}", p.text);
    let o = kiosk.get(&format!("/kiosk/api/orders/{order_ref}")).await;
    assert_eq!(o.status, 200, "{}", o.text);
    (p.body, o.body)
}

async fn assert_voided_once(env: &Env, order_ref: &str, id: &str, tx: &str) {
    assert_eq!(calls_settled(env, tx).await, ["void"], "one void at ANCV");
    let (p, o) = screen(env, id, order_ref).await;
    assert_eq!(p["payment"]["status"], "cancelled", "{p}");
    assert_eq!(p["payment"]["authorized_cents"], 0, "{p}");
    assert_eq!(p["outcome"], "balance_short", "{p}");
    assert_eq!(o["remaining_cents"], 6000, "nothing kept: {o}");
    // Reading it afterwards asks nothing more.
    assert_eq!(cancel_calls(env, tx).await, ["void"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unattended_kiosk_partial_is_voided_once_when_ancv_notifies_it() {
    let env = env().await;
    let (order_ref, id, tx) = walked_away(&env).await;
    assert_voided_once(&env, &order_ref, &id, &tx).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unattended_kiosk_partial_is_voided_once_by_the_poller_when_notifications_are_lost() {
    let env = env().await;
    env.faults(json!({"drop_notifications": true})).await;
    let (order_ref, id, tx) = walked_away(&env).await;
    assert_voided_once(&env, &order_ref, &id, &tx).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unattended_kiosk_partial_authorized_while_the_host_was_down_is_voided_once_at_start_up()
{
    let (mut env, dir) = env_on_disk().await;
    env.faults(json!({"drop_notifications": true})).await;
    let (order_ref, id, tx) = walked_away(&env).await;
    env.stop_host().await;
    // The app authorizes 35,00 € while no host runs (the sandbox approves after 500 ms).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(cancel_calls(&env, &tx).await.is_empty());
    env.restart().await;
    assert_voided_once(&env, &order_ref, &id, &tx).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unattended_kiosk_partial_ancv_refuses_to_void_is_asked_once_and_shown_as_paid_in_part()
{
    let (env, dir) = env_on_disk().await;
    // ANCV's side asks a cancellation password the kiosk does not have: the void is refused.
    env.shop_settings(json!({"cancel_password": "4321"})).await;
    let (order_ref, id, tx) = walked_away(&env).await;
    // Asked once: neither the poller, nor a later notification, nor the screen asks again.
    assert_eq!(calls_settled(&env, &tx).await, ["refused"]);
    let (p, o) = screen(&env, &id, &order_ref).await;
    assert_eq!(p["payment"]["status"], "partially_authorized", "{p}");
    assert_eq!(p["outcome"], "partial", "{p}");
    assert_eq!(p["payment"]["authorized_cents"], 3500, "{p}");
    assert_eq!(o["remaining_cents"], 2500, "{o}");
    assert_eq!(cancel_calls(&env, &tx).await, ["refused"]);
    // The record says so.
    let marker = env.store().await.partial_void(&id).await.unwrap();
    assert_eq!(marker, Some(cvco_host::store::VOID_REFUSED));
    let _ = std::fs::remove_dir_all(&dir);
}

// ----- a host that died before the void's outcome was recorded ---------------------------------
// Staged through the store: ANCV first refuses the void (a cancellation password the kiosk does
// not have), then, host stopped, the password goes and the marker is set to what a crash at the
// chosen moment leaves. Nothing reads the kiosk screen until the host recorded the outcome (a
// screen read would void it itself).

/// A refused kiosk partial authorization recorded final with its void's marker removed, host
/// stopped. Answers (order, payment id, transaction id).
async fn partial_left_unvoided(env: &mut Env) -> (String, String, String) {
    env.shop_settings(json!({"cancel_password": "4321"})).await;
    let (order_ref, id, tx) = walked_away(env).await;
    assert_eq!(calls_settled(env, &tx).await, ["refused"]);
    env.stop_host().await;
    env.shop_settings(json!({"cancel_password": null})).await;
    let store = env.store().await;
    store.settle_partial_void(&id, None).await.unwrap();
    let p = store.payment(&id).await.unwrap().unwrap();
    assert!(p.is_final, "recorded final: never polled again");
    assert_eq!(p.status.to_string(), "partially_authorized");
    assert_eq!(store.partial_void(&id).await.unwrap(), None);
    (order_ref, id, tx)
}

/// A claim of the void taken an hour ago by a host that died holding it.
async fn stale_claim(env: &Env, id: &str) -> i64 {
    let at = cvco_host::util::now_ms() - 3_600_000;
    let store = env.store().await;
    assert!(store.claim_partial_void(id, at, 0).await.unwrap());
    assert_eq!(store.partial_void(id).await.unwrap(), Some(at));
    at
}

/// The void ANCV received before the host died (the merchant API, as the host would call it).
async fn void_at_ancv(env: &Env, tx: &str) {
    let token: Value = env
        .raw
        .post(format!("{}/oauth/token", env.sb))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "demo-client"),
            ("client_secret", "demo-secret"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let r = env
        .raw
        .post(format!("{}/api/v1/transactions/{tx}/cancel", env.sb))
        .bearer_auth(token["access_token"].as_str().unwrap())
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

/// After the restart: the host records the payment cancelled by itself (read in its database,
/// not through the screen), ANCV's cancel journal is `calls`, and the screen says so.
async fn restarted_and_cancelled(
    env: &mut Env,
    order_ref: &str,
    id: &str,
    tx: &str,
    calls: &[&str],
) {
    env.restart().await;
    let store = env.store().await;
    wait_until("the host to record the void", || async {
        store
            .payment(id)
            .await
            .unwrap()
            .is_some_and(|p| p.status.to_string() == "cancelled")
    })
    .await;
    // A few poll intervals and the sweep's period: nothing more is asked.
    tokio::time::sleep(Duration::from_millis(4 * env.cfg.poll_max_ms)).await;
    assert_eq!(cancel_calls(env, tx).await, calls);
    let (p, o) = screen(env, id, order_ref).await;
    assert_eq!(p["payment"]["status"], "cancelled", "{p}");
    assert_eq!(p["payment"]["authorized_cents"], 0, "{p}");
    assert_eq!(o["remaining_cents"], 6000, "nothing kept: {o}");
    assert_eq!(cancel_calls(env, tx).await, calls);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kiosk_partial_recorded_before_a_crash_without_its_void_claimed_is_voided_once_after_restart(
) {
    let (mut env, dir) = env_on_disk().await;
    let (order_ref, id, tx) = partial_left_unvoided(&mut env).await;
    restarted_and_cancelled(&mut env, &order_ref, &id, &tx, &["refused", "void"]).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kiosk_partial_whose_void_was_claimed_but_never_sent_is_voided_once_after_restart() {
    let (mut env, dir) = env_on_disk().await;
    let (order_ref, id, tx) = partial_left_unvoided(&mut env).await;
    let at = stale_claim(&env, &id).await;
    restarted_and_cancelled(&mut env, &order_ref, &id, &tx, &["refused", "void"]).await;
    // The claim was taken over: it now carries the restarted host's time.
    let marker = env.store().await.partial_void(&id).await.unwrap();
    assert!(marker.is_some_and(|m| m > at), "{marker:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kiosk_partial_whose_claimed_void_reached_ancv_before_the_crash_ends_cancelled_without_a_second_call(
) {
    let (mut env, dir) = env_on_disk().await;
    let (order_ref, id, tx) = partial_left_unvoided(&mut env).await;
    stale_claim(&env, &id).await;
    // ANCV's CANCELLED notification lost too: the host learns it by its own read.
    env.faults(json!({"drop_notifications": true})).await;
    void_at_ancv(&env, &tx).await;
    assert_eq!(cancel_calls(&env, &tx).await, ["refused", "void"]);
    // Read at ANCV first: recorded cancelled, neither a second void nor a replay.
    restarted_and_cancelled(&mut env, &order_ref, &id, &tx, &["refused", "void"]).await;
    let _ = std::fs::remove_dir_all(&dir);
}
