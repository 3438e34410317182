//! The counter (a reception desk without its own order system): a seller with the counter
//! permission types an amount, which becomes an order paid at the counter through the widget. A
//! product function, not a demo: it needs a back-office session.

use crate::auth::Perm;
use crate::http::views::order_json;
use crate::http::{
    bo_session, check_amount, contract_body, json_status, load_order, merchant_payment, order_ref,
    parse, ApiError, ApiResult, App, AppState,
};
use crate::store::{OrderRow, PaymentStatus};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use cvco_core::{CvcoError, ErrorCode, NormalizedStatus};
use serde::Deserialize;
use serde_json::{json, Value};

/// The body the counter and the kiosk's system place an order with.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SaleOrder {
    amount_cents: i64,
    #[serde(default)]
    label: Option<String>,
}

/// How a sale's order reference is made.
pub(super) enum SaleRef {
    /// The merchant's day counter (`CPT-…`): printed, said aloud at a desk.
    DayCounter(&'static str),
    /// Random: the reference is the only key a kiosk page holds.
    Random(&'static str),
}

/// Places a one-line order of `kind` for a staff session with the counter right: the amount is
/// the seller's (or the kiosk system's), never a shopper's.
pub(super) async fn place_sale(
    app: &App,
    headers: &HeaderMap,
    body: &Bytes,
    kind: &str,
    default_label: &str,
    reference: SaleRef,
) -> Result<OrderRow, ApiError> {
    let s = bo_session(app, headers, true).await?;
    s.require(Perm::Counter)?;
    let b: SaleOrder = parse(body)?;
    check_amount(b.amount_cents)?;
    let label: String = b
        .label
        .unwrap_or_else(|| default_label.into())
        .chars()
        .take(120)
        .collect();
    let order_ref = match reference {
        SaleRef::DayCounter(prefix) => order_ref(app, prefix).await?,
        SaleRef::Random(prefix) => crate::util::new_id(prefix),
    };
    let lines = json!([{"sku": kind, "name": label, "quantity": 1,
        "unit_price_cents": b.amount_cents, "total_cents": b.amount_cents}]);
    app.engine
        .insert_order_for(
            &s.merchant_id,
            &order_ref,
            None,
            kind,
            &lines,
            b.amount_cents,
        )
        .await?;
    load_order(app, &order_ref).await
}

pub(super) async fn counter_order(
    State(app): AppState,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let order = place_sale(
        &app,
        &headers,
        &body,
        "counter",
        "Vente au comptoir",
        SaleRef::DayCounter("CPT"),
    )
    .await?;
    Ok(json_status(
        StatusCode::CREATED,
        counter_view(&app, &order).await?,
    ))
}

/// The counter's view of one of its orders: the order, and what to do with its remainder
/// (cvco-core's rule, so the page never decides it).
async fn counter_view(app: &App, order: &crate::store::OrderRow) -> Result<Value, ApiError> {
    let mut v = order_json(&app.engine, order).await?;
    let settings = app.engine.merchant_settings(&order.merchant_id);
    let remaining = v["remaining_cents"].as_i64().unwrap_or(0);
    v["remainder"] = json!(settings.remainder_step(crate::payments::amount(remaining)));
    v["min_amount_cents"] = json!(settings.min_amount_cents.cents());
    Ok(v)
}

/// `GET /counter/api/orders/{order_ref}`: a counter order of the session's merchant.
pub(super) async fn counter_order_get(
    State(app): AppState,
    headers: HeaderMap,
    Path(order_ref): Path<String>,
) -> ApiResult {
    let s = bo_session(&app, &headers, false).await?;
    s.require(Perm::Counter)?;
    let order = load_order(&app, &order_ref).await?;
    // Another merchant's or a shopper's order reads as unknown.
    if order.merchant_id != s.merchant_id || order.kind != "counter" {
        return Err(CvcoError::new(ErrorCode::OrderNotFound)
            .with_field("order_ref")
            .into());
    }
    Ok(Json(counter_view(&app, &order).await?).into_response())
}

/// `POST /cvco/v1/cancellations {transaction_id, password?}`: the terminal's cancellation, the
/// reference typed or scanned first. The same reference again answers the cancelled Payment
/// without a second void.
pub(super) async fn cancellation(
    State(app): AppState,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let s = bo_session(&app, &headers, true).await?;
    s.require(Perm::Cancel)?;
    let b = contract_body!(CancelByReference, &body);
    let reference = b.transaction_id.trim();
    let unknown = || -> ApiError {
        CvcoError::new(ErrorCode::TransactionNotFound)
            .with_detail(
                "Aucune transaction de ce commerce ne porte cette référence.",
                "No transaction of this shop has this reference.",
            )
            .with_field("transaction_id")
            .into()
    };
    let id = app
        .engine
        .store
        .payment_id_by_ancv(Some(reference), None)
        .await?
        .ok_or_else(unknown)?;
    let row = merchant_payment(&app, &s, &id)
        .await
        .map_err(|_| unknown())?;
    if row.transaction_id.as_deref() != Some(reference) {
        return Err(unknown());
    }
    // The merchant's own password (back-office settings), when it set one.
    super::settings::check_cancel_password(&app, &s.merchant_id, b.password.as_deref()).await?;
    // One cancellation of a payment at a time (two tills, a double tap): the second reads the
    // first's result instead of voiding again.
    let lock = app.engine.order_lock(&row.order_ref);
    let _guard = lock.lock().await;
    let row = app.engine.store.payment(&id).await?.ok_or_else(unknown)?;
    if row.status == PaymentStatus::Known(NormalizedStatus::Cancelled) {
        return Ok(Json(app.engine.payment_json(&row).await?).into_response());
    }
    let row = app
        .engine
        .cancel(&id, b.password.filter(|p| !p.is_empty()))
        .await?;
    tracing::info!(user = %s.username, payment_id = %id, "cancelled by reference (typed first)");
    Ok(Json(app.engine.payment_json(&row).await?).into_response())
}
