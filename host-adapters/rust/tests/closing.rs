//! Closing (TETRA guide §7) and reimbursement statements (ANCV guide §4.3.4), against the real
//! plugin and sandbox: the day closes by itself at the closing hour with its totals, once, also
//! after a restart that missed the hour and with several instances on one PostgreSQL; closings
//! are listed and reprinted (DUPLICATA); ANCV's statements are matched with our orders, with the
//! fee setting, unmatched lines flagged, and a CSV export.
//!
//! Time: `closing_clock_offset_ms` moves the closing clock so the closing hour comes seconds
//! after the start (no sleeping for an hour).

mod common;

use common::*;
use cvco_core::Timestamp;
use cvco_host::HostConfig;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn now_ms() -> i64 {
    cvco_host::util::now_ms()
}

/// The end of today's business day (at least two minutes away), and that day.
fn next_closing(cfg: &HostConfig) -> (i64, String) {
    let hour = cfg.merchant_settings().closing_hour;
    let day = Timestamp(now_ms() + 120_000).business_date(hour);
    (
        Timestamp::business_day_bounds(day, hour).1 .0,
        day.to_string(),
    )
}

/// The closing clock set `ahead_ms` after (negative: before) the next closing hour.
fn clock_at(cfg: &mut HostConfig, closing: i64, ahead_ms: i64) {
    cfg.closing_clock_offset_ms = closing + ahead_ms - now_ms();
}

async fn alice_paid(env: &Env, amount: i64) -> Value {
    let shopper = env.shopper();
    let order = shopper.test_order(amount).await;
    let p = shopper.pay(&order, ALICE, "a").await;
    assert_eq!(p.status, 201, "{}", p.text);
    let done = shopper
        .wait_final(p.body["payment_id"].as_str().unwrap())
        .await;
    assert_eq!(done["status"], "authorized", "{done}");
    done
}

async fn closings(manager: &Client) -> Vec<Value> {
    let a = manager.get("/cvco/v1/closings").await;
    assert_eq!(a.status, 200, "{}", a.text);
    a.body["items"].as_array().unwrap().clone()
}

fn autos_of(items: &[Value], date: &str) -> Vec<Value> {
    items
        .iter()
        .filter(|c| c["kind"] == "auto" && c["date"] == date)
        .cloned()
        .collect()
}

async fn wait_for_auto(manager: &Client, date: &str, within: Duration) -> Value {
    let start = Instant::now();
    loop {
        let found = autos_of(&closings(manager).await, date);
        if let Some(c) = found.first() {
            return c.clone();
        }
        assert!(
            start.elapsed() < within,
            "no automatic closing of {date} after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_day_closes_by_itself_at_the_closing_hour_and_its_ticket_is_reprinted_as_duplicata() {
    let mut closing = (0, String::new());
    let env = env_with(|cfg| {
        closing = next_closing(cfg);
        // The closing hour comes 8 s after the start: time to pay before it.
        clock_at(cfg, closing.0, -8_000);
    })
    .await;
    let (_, day) = closing;
    let manager = env.manager().await;
    let paid = alice_paid(&env, 4200).await;
    let tx = paid["transaction_id"].as_str().unwrap().to_string();
    // Before the hour: today is still open.
    assert!(autos_of(&closings(&manager).await, &day).is_empty());

    let auto = wait_for_auto(&manager, &day, Duration::from_secs(30)).await;
    assert_eq!(auto["count"], 1, "{auto}");
    assert_eq!(auto["gross_cents"], 4200, "{auto}");
    assert_eq!(auto["net_cents"], 4200, "{auto}");
    // The list leaves the lines out; the closing itself has them.
    assert!(auto.get("lines").is_none());
    let id = auto["id"].as_i64().unwrap();
    let one = manager.get(&format!("/cvco/v1/closings/{id}")).await;
    assert_eq!(one.status, 200, "{}", one.text);
    assert_eq!(one.body["lines"][0]["transaction_id"], tx.as_str());
    assert_eq!(one.body["closed_at"], auto["closed_at"]);

    // Printable; the first print is the original, every later one a DUPLICATA.
    let first = manager
        .get(&format!("/cvco/v1/closings/{id}/receipt"))
        .await;
    assert_eq!(first.status, 200);
    assert!(first.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(first.text.contains(&tx) && first.text.contains("42,00"));
    assert!(!first.text.contains("DUPLICATA"), "{}", first.text);
    let again = manager
        .get(&format!("/cvco/v1/closings/{id}/receipt"))
        .await;
    assert!(again.text.contains("DUPLICATA") && again.text.contains(&tx));

    // The running totals' ticket too, when reprinted.
    let day_ticket = manager.get("/cvco/v1/receipts/totals").await;
    assert!(day_ticket.text.contains("Totaux du") && !day_ticket.text.contains("DUPLICATA"));
    let reprint = manager.get("/cvco/v1/receipts/totals?duplicate=true").await;
    assert!(reprint.text.contains("DUPLICATA"), "{}", reprint.text);

    // Exactly once: later wake-ups of the loop add no second closing of that day.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(autos_of(&closings(&manager).await, &day).len(), 1);

    // Closing by hand still works, and is listed as such.
    let by_hand = manager.post("/cvco/v1/closing", json!({})).await;
    assert_eq!(by_hand.status, 200, "{}", by_hand.text);
    assert_eq!(by_hand.body["kind"], "manual");
    let listed = closings(&manager).await;
    assert_eq!(listed[0]["id"], by_hand.body["id"], "newest first");
    assert_eq!(listed[0]["kind"], "manual");

    // Another closing id, or none: 404 with a cvco error body.
    let missing = manager.get("/cvco/v1/closings/999999").await;
    assert_eq!(missing.status, 404);
    assert!(missing.body["message_fr"].is_string(), "{}", missing.text);
    let bad = manager.get("/cvco/v1/closings/abc/receipt").await;
    assert_eq!(bad.status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_that_missed_the_closing_hour_closes_that_day_once() {
    let dir = std::env::temp_dir().join(format!(
        "cvco-host-closing-{}-{}",
        std::process::id(),
        cvco_host::util::random_token(4)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let mut closing = (0, String::new());
    let mut env = env_with(|cfg| {
        cfg.data_file = Some(dir.join("host.db"));
        closing = next_closing(cfg);
        // Ten minutes before the hour: it does not come while this instance runs.
        clock_at(cfg, closing.0, -600_000);
    })
    .await;
    let (at, day) = closing;
    let paid = alice_paid(&env, 3100).await;
    let manager = env.manager().await;
    assert!(autos_of(&closings(&manager).await, &day).is_empty());
    env.stop_host().await;

    // Back after the hour: the missed day is closed at start-up, with its totals.
    clock_at(&mut env.cfg, at, 5 * 60_000);
    env.restart().await;
    let manager = env.manager().await;
    let auto = wait_for_auto(&manager, &day, Duration::from_secs(10)).await;
    assert_eq!(auto["count"], 1, "{auto}");
    assert_eq!(auto["gross_cents"], 3100);
    let one = manager
        .get(&format!("/cvco/v1/closings/{}", auto["id"]))
        .await;
    assert_eq!(one.body["lines"][0]["payment_id"], paid["payment_id"]);
    // Stamped at the closing hour, not at the restart.
    assert_eq!(
        Timestamp::parse_rfc3339(auto["closed_at"].as_str().unwrap())
            .unwrap()
            .0,
        at
    );

    // Another restart: nothing closed twice.
    env.restart().await;
    let manager = env.manager().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(autos_of(&closings(&manager).await, &day).len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn several_instances_on_one_database_close_the_day_once() {
    if !cvco_host::store::testing::wants_postgres() {
        eprintln!("skipped: several instances need PostgreSQL (CVCO_HOST_TEST_STORE=postgres)");
        return;
    }
    let mut closing = (0, String::new());
    let mut env = env_with(|cfg| {
        closing = next_closing(cfg);
        clock_at(cfg, closing.0, -6_000);
    })
    .await;
    let (at, day) = closing;
    alice_paid(&env, 2500).await;
    // Two more instances on the same database, their closing clocks on the same hour.
    let mut others = Vec::new();
    for _ in 0..2 {
        let mut cfg = env.cfg.clone();
        cfg.port = 0;
        clock_at(&mut cfg, at, -2_000);
        others.push(cvco_host::spawn(cfg).await.expect("instance"));
    }
    let manager = env.manager().await;
    let auto = wait_for_auto(&manager, &day, Duration::from_secs(30)).await;
    assert_eq!(auto["count"], 1, "{auto}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(autos_of(&closings(&manager).await, &day).len(), 1);
    // The day before (closed at each start) once too.
    let items = closings(&manager).await;
    let before: Vec<_> = items
        .iter()
        .filter(|c| c["kind"] == "auto" && c["date"] != day.as_str())
        .collect();
    assert_eq!(before.len(), 1, "{items:?}");
    for o in others {
        o.shutdown().await;
    }
    env.stop_host().await;
}

/// The reconciliation of `from..=to`, as the manager sees it.
async fn reconciliation(manager: &Client, from: &str, to: &str) -> Value {
    let a = manager
        .get(&format!("/cvco/v1/reconciliation?from={from}&to={to}"))
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    a.body
}

fn lines(r: &Value) -> Vec<Value> {
    r["remittances"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["lines"].as_array().unwrap().clone())
        .collect()
}

fn line_of<'a>(lines: &'a [Value], tx: &str) -> &'a Value {
    lines
        .iter()
        .find(|l| l["transaction_id"] == tx)
        .unwrap_or_else(|| panic!("no line for {tx} in {lines:?}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn reimbursement_statements_match_our_orders_with_fee_and_net_and_flag_the_rest() {
    use cvco_core::plugin_api::{exports, CreatePaymentInput};
    let env = env().await;
    let manager = env.manager().await;
    let seller = env.login("seller", "seller-demo").await;
    let today = Timestamp(now_ms())
        .business_date(env.cfg.merchant_settings().closing_hour)
        .to_string();
    let ours = alice_paid(&env, 5000).await;
    let ours_tx = ours["transaction_id"].as_str().unwrap().to_string();
    let late = alice_paid(&env, 2000).await;
    let late_tx = late["transaction_id"].as_str().unwrap().to_string();
    // A transaction of this shop at ANCV for an order this host never had.
    let pool = &env.host.as_ref().unwrap().pool;
    let stranger = pool
        .call_async::<exports::CreatePayment>(&CreatePaymentInput {
            order_ref: "ELSEWHERE-1".into(),
            amount_cents: 3000,
            channel: cvco_core::Channel::Ecommerce,
            beneficiary: Some(ALICE.into()),
            adjustable: None,
            idempotency_key: "elsewhere-1".into(),
            capture_mode: None,
            notification_url: None,
            return_url: None,
            cancel_url: None,
            now: None,
            order: None,
        })
        .await
        .expect("create at ANCV");
    let stranger_tx = stranger.id.clone();
    // ANCV's statement lists it once the beneficiary has approved.
    let start = Instant::now();
    let r = loop {
        let r = reconciliation(&manager, &today, &today).await;
        if lines(&r)
            .iter()
            .any(|l| l["transaction_id"] == stranger_tx.as_str())
        {
            break r;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "{r}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let all = lines(&r);
    assert_eq!(r["fee_rate_bps"], 250);
    let mine = line_of(&all, &ours_tx);
    assert_eq!(mine["matched"], true, "{mine}");
    assert_eq!(mine["order_ref"], ours["order_ref"]);
    assert_eq!(mine["merchant_order_id"], ours["order_ref"]);
    assert_eq!(mine["payment_id"], ours["payment_id"]);
    assert_eq!(mine["gross_cents"], 5000);
    // 2.5 % of 50,00 €: 1,25 €, net 48,75 €.
    assert_eq!(
        (
            mine["fee_cents"].as_i64(),
            mine["expected_fee_cents"].as_i64()
        ),
        (Some(125), Some(125))
    );
    assert_eq!(mine["net_cents"], 4875);
    let other = line_of(&all, &stranger_tx);
    assert_eq!(other["matched"], false);
    assert_eq!(other["flags"], json!(["unknown_order"]), "{other}");
    assert!(r["totals"]["flagged"].as_i64().unwrap() >= 1);

    // The CSV for French Excel: BOM, `;`, CRLF, decimal comma, the flag spelled out.
    let csv = manager
        .get(&format!(
            "/cvco/v1/reconciliation.csv?from={today}&to={today}"
        ))
        .await;
    assert_eq!(csv.status, 200, "{}", csv.text);
    assert!(csv.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    assert!(csv.headers["content-disposition"]
        .to_str()
        .unwrap()
        .contains(".csv"));
    assert!(
        csv.text
            .starts_with("\u{feff}Date remise;Transaction ANCV;"),
        "{}",
        csv.text
    );
    let row = csv
        .text
        .split("\r\n")
        .find(|l| l.contains(&ours_tx))
        .expect("our line in the CSV");
    let cols: Vec<&str> = row.split(';').collect();
    assert_eq!(cols.len(), 10, "{row}");
    assert_eq!(
        &cols[4..10],
        &["50,00", "0,00", "1,25", "1,25", "48,75", "ok"],
        "{row}"
    );
    assert!(
        csv.text
            .contains(&format!("{stranger_tx};ELSEWHERE-1;;30,00;")),
        "{}",
        csv.text
    );
    assert!(csv.text.contains("unknown_order\r\n"));

    // ANCV takes 3 % where our setting says 2.5 %: the difference is flagged.
    env.shop_settings(json!({"fee_bps": 300})).await;
    let r = reconciliation(&manager, &today, &today).await;
    let mine = line_of(&lines(&r), &ours_tx).clone();
    assert_eq!(
        (
            mine["fee_cents"].as_i64(),
            mine["expected_fee_cents"].as_i64()
        ),
        (Some(150), Some(125))
    );
    assert_eq!(mine["flags"], json!(["fee_mismatch"]), "{mine}");

    // A payment paid five days ago that no statement of its day lists: flagged after 3 days.
    // The host's own store (an in-memory SQLite is not shared with a second opening).
    let store = &env.host.as_ref().unwrap().engine.store;
    store
        .batch(&format!(
            "UPDATE payments SET authorized_at = authorized_at - {} WHERE payment_id = '{}'",
            5 * 86_400_000i64,
            late["payment_id"].as_str().unwrap()
        ))
        .await
        .unwrap();
    let old = Timestamp(now_ms() - 5 * 86_400_000)
        .business_date(env.cfg.merchant_settings().closing_hour)
        .to_string();
    let r = reconciliation(&manager, &old, &old).await;
    let missing = r["not_remitted"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["transaction_id"] == late_tx.as_str())
        .unwrap_or_else(|| panic!("{r}"))
        .clone();
    assert_eq!(missing["overdue"], true);
    assert_eq!(missing["flags"], json!(["not_remitted"]));
    // With a longer delay allowed, it is only pending.
    let a = manager
        .get(&format!(
            "/cvco/v1/reconciliation?from={old}&to={old}&overdue_days=10"
        ))
        .await;
    assert_eq!(a.body["not_remitted"][0]["overdue"], false, "{}", a.text);

    // Managers only; a reversed or too long range is a typed error.
    assert_eq!(seller.get("/cvco/v1/reconciliation").await.status, 403);
    assert_eq!(seller.get("/cvco/v1/reconciliation.csv").await.status, 403);
    let bad = manager
        .get(&format!("/cvco/v1/reconciliation?from={today}&to={old}"))
        .await;
    assert_eq!(bad.status, 422, "{}", bad.text);
    assert_eq!(
        (bad.body["code"].as_str(), bad.body["field"].as_str()),
        (Some("invalid_request"), Some("to"))
    );
    let bad = manager.get("/cvco/v1/reconciliation?from=2026-13-01").await;
    assert_eq!(bad.body["field"], "from", "{}", bad.text);
}

/// What ANCV holds for an order (the sandbox's merchant API, not the host).
async fn at_ancv(env: &Env, order: &str) -> Vec<Value> {
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
    let list: Value = env
        .raw
        .get(format!(
            "{}/api/v1/transactions?shop_id=SHOP-DEMO-01&merchant_order_id={order}",
            env.sb
        ))
        .bearer_auth(token["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    list["items"].as_array().cloned().unwrap_or_default()
}

async fn closing_of(manager: &Client, id: &Value) -> Value {
    let a = manager.get(&format!("/cvco/v1/closings/{id}")).await;
    assert_eq!(a.status, 200, "{}", a.text);
    a.body
}

fn has_line(closing: &Value, tx: &str) -> usize {
    closing["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["transaction_id"] == tx)
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_payment_recorded_after_the_closing_it_predates_lands_in_the_next_closing_once() {
    let mut closing = (0, String::new());
    let env = env_with(|cfg| {
        closing = next_closing(cfg);
        clock_at(cfg, closing.0, -12_000);
    })
    .await;
    let (_, day) = closing;
    let manager = env.manager().await;
    let shopper = env.shopper();
    let first = alice_paid(&env, 4200).await;
    let first_tx = first["transaction_id"].as_str().unwrap().to_string();

    // ANCV authorizes the next one before the closing hour, but the host hears of it only
    // after the closing ran: notifications dropped, every status read of a transaction fails.
    env.faults(json!({
        "drop_notifications": true,
        "error_rate": 1.0,
        "only": "GET /api/v1/transactions/*"
    }))
    .await;
    let order = shopper.test_order(3100).await;
    let late = shopper.pay(&order, ALICE, "a").await;
    assert_eq!(late.status, 201, "{}", late.text);
    let late_id = late.body["payment_id"].as_str().unwrap().to_string();
    let late_tx = late.body["transaction_id"].as_str().unwrap().to_string();
    wait_until("authorized at ANCV", || async {
        at_ancv(&env, &order).await[0]["authorized_cents"] == 3100
    })
    .await;

    let auto = wait_for_auto(&manager, &day, Duration::from_secs(30)).await;
    let auto = closing_of(&manager, &auto["id"]).await;
    assert_eq!(
        (auto["count"].as_i64(), auto["gross_cents"].as_i64()),
        (Some(1), Some(4200)),
        "{auto}"
    );
    assert_eq!(has_line(&auto, &first_tx), 1);
    assert_eq!(
        has_line(&auto, &late_tx),
        0,
        "the host did not know it yet: {auto}"
    );
    let closing_ran = Timestamp::parse_rfc3339(auto["recorded_at"].as_str().unwrap())
        .unwrap()
        .0;

    // The host learns of it now, after the closing; and a refund touches the closed sale.
    env.admin(
        reqwest::Method::DELETE,
        "/admin/faults?shop_id=SHOP-DEMO-01",
        json!({}),
    )
    .await;
    let recorded = shopper.wait_final(&late_id).await;
    assert_eq!(recorded["status"], "authorized", "{recorded}");
    let refund = manager
        .post(
            &format!(
                "/cvco/v1/payments/{}/refund",
                first["payment_id"].as_str().unwrap()
            ),
            json!({"amount_cents": 1000, "attempt": "r1"}),
        )
        .await;
    assert_eq!(refund.status, 200, "{}", refund.text);

    // The open period's running totals are what the next closing will take.
    let open = manager.get("/cvco/v1/totals").await;
    assert_eq!(open.status, 200, "{}", open.text);
    let figures = |t: &Value| {
        (
            t["count"].as_i64(),
            t["gross_cents"].as_i64(),
            t["refunded_cents"].as_i64(),
            t["net_cents"].as_i64(),
        )
    };
    assert_eq!(
        figures(&open.body),
        (Some(1), Some(3100), Some(1000), Some(2100)),
        "{}",
        open.text
    );

    let next = manager.post("/cvco/v1/closing", json!({})).await;
    assert_eq!(next.status, 200, "{}", next.text);
    let next = closing_of(&manager, &next.body["id"]).await;
    assert_eq!(
        figures(&next),
        (Some(1), Some(3100), Some(1000), Some(2100)),
        "{next}"
    );
    assert_eq!(has_line(&next, &late_tx), 1, "{next}");
    // Its line keeps its authorization time, before the closing that missed it ran.
    let line = next["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["transaction_id"] == late_tx.as_str())
        .unwrap()
        .clone();
    let authorized = Timestamp::parse_rfc3339(line["at"].as_str().unwrap()).unwrap();
    assert!(authorized.0 < closing_ran, "{line} vs {closing_ran}");
    let (d, h, m) = authorized.paris_local();
    let printed = format!("{:02}/{:02}/{} {h:02}:{m:02}", d.day, d.month, d.year);
    let ticket = manager
        .get(&format!("/cvco/v1/closings/{}/receipt", next["id"]))
        .await;
    assert!(
        ticket.text.contains(&late_tx) && ticket.text.contains(&printed),
        "{}",
        ticket.text
    );
    assert!(ticket.text.contains("31,00") && ticket.text.contains("10,00"));

    // Once: a later closing takes nothing.
    let after = manager.post("/cvco/v1/closing", json!({})).await;
    assert_eq!(
        figures(&after.body),
        (Some(0), Some(0), Some(0), Some(0)),
        "{}",
        after.text
    );

    // All closings together: every payment once, every refund once.
    let all = closings(&manager).await;
    let sum = |k: &str| all.iter().map(|c| c[k].as_i64().unwrap()).sum::<i64>();
    assert_eq!(
        (
            sum("count"),
            sum("gross_cents"),
            sum("refunded_cents"),
            sum("net_cents")
        ),
        (2, 4200 + 3100, 1000, 4200 + 3100 - 1000),
        "{all:?}"
    );
}
