//! The demo pieces, mounted only in demo mode (`HostConfig.demo`, `--demo`): the demo shop
//! (catalogue, orders, the simulated card that marks an order paid), their pages,
//! and the test orders (`test_orders`). A production host serves none of this.

pub mod shop;

use crate::auth;
use crate::config::HostConfig;
use crate::http::views::order_json;
use crate::http::{
    check_amount, json_status, load_order, order_access, order_ref, parse, with_cookie, ApiResult,
    App, AppState, ClientAddr,
};
use crate::util::{now_ms, rfc3339};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use cvco_core::contract;
use cvco_core::{CvcoError, ErrorCode, Timestamp};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

/// What the demo routes keep.
pub struct Demo {
    /// Anonymous demo-shop orders, per client and in total.
    pub orders: shop::OrderLimit,
}

/// The demo routes, for `http::router`'s `extra`.
pub fn routes(cfg: &HostConfig) -> Router<Arc<App>> {
    let demo = Arc::new(Demo {
        orders: shop::OrderLimit::new(cfg.shop_orders_per_minute, cfg.shop_orders_per_minute_total),
    });
    let mut r = Router::new()
        .route("/shop/api/products", get(products))
        .route("/shop/api/orders", post(shop_create_order))
        .route("/shop/api/orders/{order_ref}", get(shop_get_order))
        .route("/shop/api/orders/{order_ref}/card", post(shop_card))
        .route(
            "/",
            get(|s: AppState| crate::http::page(s, "storefront/index.html")),
        )
        .route(
            "/orders/{order_ref}",
            get(|s: AppState| crate::http::page(s, "storefront/order.html")),
        );
    if cfg.test_orders {
        r = r.route("/shop/api/test-orders", post(test_order));
    }
    r.layer(Extension(demo))
}

async fn products() -> Response {
    Json(shop::catalogue()).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewOrder {
    items: Vec<shop::Item>,
}

async fn shop_create_order(
    State(app): AppState,
    Extension(demo): Extension<Arc<Demo>>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let b: NewOrder = parse(&body)?;
    // Anyone may create orders (one row each): bounded per client and in total.
    demo.orders.take(&client)?;
    let (lines, total) = shop::price(&b.items)?;
    let (owner, cookie) = auth::shop_owner(&app.auth, &headers);
    let order_ref = order_ref(&app, "CMD").await?;
    app.engine
        .insert_order(&order_ref, Some(&owner), "shop", &lines, total)
        .await?;
    let order = load_order(&app, &order_ref).await?;
    Ok(with_cookie(
        json_status(StatusCode::CREATED, order_json(&app.engine, &order).await?),
        cookie,
    ))
}

async fn shop_get_order(
    State(app): AppState,
    headers: HeaderMap,
    Path(order_ref): Path<String>,
) -> ApiResult {
    let order = load_order(&app, &order_ref).await?;
    order_access(&app, &headers, &order, false).await?;
    Ok(Json(order_json(&app.engine, &order).await?).into_response())
}

async fn shop_card(
    State(app): AppState,
    headers: HeaderMap,
    Path(order_ref): Path<String>,
    body: Bytes,
) -> ApiResult {
    let card: shop::Card = parse(&body)?;
    let order = load_order(&app, &order_ref).await?;
    order_access(&app, &headers, &order, true).await?;
    let last4 = shop::check_card(&card, Timestamp(now_ms()))?;
    let e = &app.engine;
    let lock = e.order_lock(&order_ref);
    let _g = lock.lock().await;
    if e.store
        .payments_of_order(&order_ref)
        .await?
        .iter()
        .any(|p| !p.is_final)
    {
        return Err(ErrorCode::PaymentInProgress.into());
    }
    let order = load_order(&app, &order_ref).await?;
    let a = e.amounts(&order).await?;
    if a.remaining == 0 {
        return Err(CvcoError::new(ErrorCode::IllegalTransition)
            .with_detail("La commande est déjà payée.", "The order is already paid.")
            .into());
    }
    let mut cards: Vec<Value> = serde_json::from_str(&order.card_payments).unwrap_or_default();
    cards.push(json!({"amount_cents": a.remaining, "last4": last4, "at": rfc3339(now_ms())}));
    e.store
        .set_card_payments(&order_ref, &Value::Array(cards).to_string())
        .await?;
    e.invalidate();
    tracing::info!(order_ref = %order_ref, amount_cents = a.remaining, "card payment (simulated)");
    let order = load_order(&app, &order_ref).await?;
    Ok(Json(order_json(e, &order).await?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestOrder {
    amount_cents: i64,
    #[serde(default)]
    order_ref: Option<String>,
}

async fn test_order(State(app): AppState, headers: HeaderMap, body: Bytes) -> ApiResult {
    if !app.engine.cfg.test_orders {
        return Err(ErrorCode::NotFound.into());
    }
    let b: TestOrder = parse(&body)?;
    check_amount(b.amount_cents)?;
    let order_ref = match b.order_ref {
        Some(r) => {
            contract::check_order_ref(&r, "order_ref")?;
            r
        }
        None => order_ref(&app, "TST").await?,
    };
    let (owner, cookie) = auth::shop_owner(&app.auth, &headers);
    let lines = json!([{"sku": "test", "name": "Commande de test", "quantity": 1,
        "unit_price_cents": b.amount_cents, "total_cents": b.amount_cents}]);
    if !app
        .engine
        .insert_order(&order_ref, Some(&owner), "test", &lines, b.amount_cents)
        .await?
    {
        return Err(CvcoError::new(ErrorCode::IdempotencyConflict)
            .with_field("order_ref")
            .into());
    }
    let order = load_order(&app, &order_ref).await?;
    Ok(with_cookie(
        json_status(StatusCode::CREATED, order_json(&app.engine, &order).await?),
        cookie,
    ))
}
