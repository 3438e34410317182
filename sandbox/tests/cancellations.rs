//! The journal of cancel calls (`GET /admin/cancellations`): a second void of a cancelled
//! transaction sends no second CANCELLED event, so only this journal shows that a host asked
//! twice.

mod common;

use common::*;
use serde_json::{json, Value};

async fn calls(s: &Sbx, query: &str) -> Vec<Value> {
    let log = s
        .get(&format!("/admin/cancellations?{query}"), None)
        .await
        .expect(200);
    log["items"].as_array().unwrap().clone()
}

fn outcomes(items: &[Value]) -> Vec<&str> {
    items
        .iter()
        .map(|c| c["outcome"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn cancel_journal_tells_a_void_from_a_replay_and_a_refusal() {
    let s = start().await;
    let shop = s.shop(json!({}), json!({"cancel_password": "4242"})).await;
    let other = s.default_shop().await;
    let t = s.create_tx(&shop, json!({})).await;
    let id = t["id"].as_str().unwrap().to_string();
    let cancel = format!("/api/v1/transactions/{id}/cancel");
    s.post(&cancel, Some(&shop.token), json!({"password": "0000"}))
        .await
        .expect_error(403, "forbidden");
    s.post(&cancel, Some(&shop.token), json!({"password": "4242"}))
        .await
        .expect(200);
    s.post(&cancel, Some(&shop.token), json!({"password": "4242"}))
        .await
        .expect_error(409, "illegal_transition");
    assert_eq!(s.tx(&shop, &id).await["state"], "CANCELLED");
    // Another shop's transaction of its own, cancelled once.
    let o = s.create_tx(&other, json!({})).await;
    s.post(
        &format!("/api/v1/transactions/{}/cancel", o["id"].as_str().unwrap()),
        Some(&other.token),
        json!({}),
    )
    .await
    .expect(200);

    let mine = calls(&s, &format!("transaction_id={id}")).await;
    assert_eq!(outcomes(&mine), ["refused", "void", "replay"]);
    assert!(mine.iter().all(|c| c["shop_id"] == shop.id.as_str()));
    assert_eq!(
        outcomes(&calls(&s, &format!("shop_id={}", other.id)).await),
        ["void"]
    );
}
