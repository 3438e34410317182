//! The counter (a reception desk without its own order system): a seller with the counter
//! permission types an amount, which becomes an order paid at the counter through the widget. A
//! product function, not a demo: it needs a back-office session.

use crate::auth::Perm;
use crate::http::views::order_json;
use crate::http::{
    bo_session, check_amount, json_status, load_order, order_ref, parse, ApiResult, AppState,
};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CounterOrder {
    amount_cents: i64,
    #[serde(default)]
    label: Option<String>,
}

pub(super) async fn counter_order(
    State(app): AppState,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let s = bo_session(&app, &headers, true).await?;
    s.require(Perm::Counter)?;
    let b: CounterOrder = parse(&body)?;
    check_amount(b.amount_cents)?;
    let label: String = b
        .label
        .unwrap_or_else(|| "Vente au comptoir".into())
        .chars()
        .take(120)
        .collect();
    let order_ref = order_ref(&app, "CPT").await?;
    let lines = json!([{"sku": "counter", "name": label, "quantity": 1,
        "unit_price_cents": b.amount_cents, "total_cents": b.amount_cents}]);
    app.engine
        .insert_order_for(
            &s.merchant_id,
            &order_ref,
            None,
            "counter",
            &lines,
            b.amount_cents,
        )
        .await?;
    let order = load_order(&app, &order_ref).await?;
    Ok(json_status(
        StatusCode::CREATED,
        order_json(&app.engine, &order).await?,
    ))
}
