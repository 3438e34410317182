//! Listing payments and the day's totals with the remittance lines, for reconciliation.

use crate::common::*;
use cvco_core::plugin_api::{DailyReport, PaymentList};
use cvco_core::ErrorCode;
use serde_json::json;
use std::time::Duration;

#[test]
fn list_payments_with_filters() {
    let pool = shop().pool();
    let tag = unique("LIST");
    let mut ids = Vec::new();
    for (i, amount) in [2100, 3200, 4300].into_iter().enumerate() {
        let who = if i == 1 {
            "chloe.decline@sandbox.cvco.test"
        } else {
            "10000000001"
        };
        let p: cvco_core::plugin_api::Payment = call(
            &pool,
            "create_payment",
            json!({"order_ref": format!("{tag}-{i}"), "amount_cents": amount, "channel": "ecommerce",
                   "beneficiary": who, "idempotency_key": unique("k")}),
        );
        ids.push(wait_final(&pool, &p.id, Duration::from_secs(10)).id);
    }
    let all: PaymentList = call(&pool, "list_payments", json!({"order_ref": tag}));
    assert_eq!(all.total, 3);
    assert_eq!(all.items[0].id, ids[2], "newest first");
    let validated: PaymentList = call(
        &pool,
        "list_payments",
        json!({"order_ref": tag, "state": "VALIDATED"}),
    );
    assert_eq!(validated.total, 2);
    let mid: PaymentList = call(
        &pool,
        "list_payments",
        json!({"order_ref": tag, "min_amount_cents": 3000, "max_amount_cents": 4000}),
    );
    assert_eq!(mid.total, 1);
    assert_eq!(mid.items[0].amount_cents.cents(), 3200);
    let page: PaymentList = call(
        &pool,
        "list_payments",
        json!({"order_ref": tag, "limit": 1, "offset": 1}),
    );
    assert_eq!((page.total, page.items.len()), (3, 1));
    assert_eq!(page.items[0].id, ids[1]);
    let later: PaymentList = call(
        &pool,
        "list_payments",
        json!({"order_ref": tag, "from": now().plus_secs(3600)}),
    );
    assert_eq!(later.total, 0);
    let e = fails(&pool, "list_payments", json!({"limit": 0}));
    assert_eq!(e.field.as_deref(), Some("limit"));
    let e = fails(&pool, "list_payments", json!({"state": "PAID"}));
    assert_code(&e, ErrorCode::InvalidRequest);
}

#[test]
fn daily_totals_and_remittance_lines() {
    let pool = shop().pool();
    let tag = unique("DAY");
    // Business days are bracketed so a run across midnight (Paris) still adds up.
    let first_day = now().business_date(0);
    let mut gross = 0;
    for amount in [2500, 3700] {
        let p: cvco_core::plugin_api::Payment = call(
            &pool,
            "create_payment",
            json!({"order_ref": format!("{tag}-{amount}"), "amount_cents": amount, "channel": "ecommerce",
                   "beneficiary": "10000000001", "idempotency_key": unique("k")}),
        );
        wait_final(&pool, &p.id, Duration::from_secs(10));
        gross += amount;
    }
    let today = now().business_date(0);
    let report: DailyReport = call(
        &pool,
        "daily_totals",
        json!({"from": first_day.pred(), "to": today}),
    );
    assert_eq!(report.closing_hour, 0);
    let count: usize = report.days.iter().map(|d| d.count).sum();
    let days_gross: u64 = report.days.iter().map(|d| d.gross_cents.cents()).sum();
    assert_eq!((count, days_gross), (2, gross));
    // One statement per day asked for: yesterday and today (and one more across midnight).
    let asked = if first_day == today { 2 } else { 3 };
    assert_eq!(report.remittances.len(), asked);
    let lines: Vec<_> = report.remittances.iter().flat_map(|s| &s.lines).collect();
    assert_eq!(lines.len(), 2);
    assert!(lines.iter().all(|l| l.merchant_order_id.starts_with(&tag)));
    for statement in &report.remittances {
        let fees: u64 = statement.lines.iter().map(|l| l.fee_cents.cents()).sum();
        let line_gross: u64 = statement.lines.iter().map(|l| l.gross_cents.cents()).sum();
        assert_eq!(statement.count, statement.lines.len());
        assert_eq!(statement.fee_cents.cents(), fees);
        assert_eq!(statement.gross_cents.cents(), line_gross);
        assert_eq!(statement.net_cents.cents(), line_gross - fees);
    }
    // 2.5 % per line, rounded per line.
    let fees: u64 = lines.iter().map(|l| l.fee_cents.cents()).sum();
    assert_eq!(fees, 63 + 93);

    let e = fails(
        &pool,
        "daily_totals",
        json!({"from": today, "to": today.pred()}),
    );
    assert_eq!(e.field.as_deref(), Some("to"));
    let e = fails(
        &pool,
        "daily_totals",
        json!({"from": "2026-01-01", "to": "2026-03-01"}),
    );
    assert_code(&e, ErrorCode::InvalidRequest);
    let e = fails(
        &pool,
        "daily_totals",
        json!({"from": "2026-02-30", "to": "2026-03-01"}),
    );
    assert_code(&e, ErrorCode::InvalidRequest);
}

#[test]
fn daily_totals_are_cut_at_the_merchants_closing_hour() {
    // The host's totals and ANCV's, through the plugin, use the merchant's one closing hour.
    let shop = shop();
    let pool = shop.pool_with(&[("closing_hour", "5")]);
    let p: cvco_core::plugin_api::Payment = call(
        &pool,
        "create_payment",
        json!({"order_ref": unique("CLOSE5"), "amount_cents": 2500, "channel": "ecommerce",
               "beneficiary": "10000000001", "idempotency_key": unique("k")}),
    );
    wait_final(&pool, &p.id, Duration::from_secs(10));
    let day = now().business_date(5);
    let report: DailyReport = call(&pool, "daily_totals", json!({"from": day, "to": day}));
    assert_eq!(report.closing_hour, 5);
    assert_eq!(report.days.iter().map(|d| d.count).sum::<usize>(), 1);
    let bad = shop.pool_with(&[("closing_hour", "24")]);
    let e = fails(&bad, "daily_totals", json!({"from": day, "to": day}));
    assert_code(&e, ErrorCode::ConfigInvalid);
    assert_eq!(e.field.as_deref(), Some("closing_hour"));
}
