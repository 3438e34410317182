//! The kiosk (000 §4.2.4): an unattended page where a shopper pays the kiosk's order with CVCo.
//! The order is the server's (placed by the kiosk's own system, here a staff session with the
//! counter right); its unguessable reference is the only key the page holds, so paying needs no
//! login and nothing but paying is reachable. Payments go out on the `kiosk` channel, and a
//! partial authorization is voided when the merchant refuses them there (cvco-core decides; the
//! engine voids it wherever it records it, `payments/refuse_partial.rs`).

use crate::http::counter::{place_sale, SaleRef};
use crate::http::{contract_body, json_status, ApiError, ApiResult, App, AppState};
use crate::payments::{AmountSpec, Start};
use crate::store::{OrderRow, PaymentRow};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use cvco_core::contract::PaymentMode;
use cvco_core::{Channel, CvcoError, ErrorCode, NormalizedStatus};
use serde_json::{json, Value};

/// `POST /kiosk/api/orders`: the kiosk's system places the order the shopper will pay.
pub(super) async fn kiosk_order(
    State(app): AppState,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let order = place_sale(
        &app,
        &headers,
        &body,
        "kiosk",
        "Borne",
        SaleRef::Random("BRN"),
    )
    .await?;
    Ok(json_status(
        StatusCode::CREATED,
        kiosk_view(&app, &order).await?,
    ))
}

/// A kiosk order, or the same answer as an order that does not exist.
async fn kiosk_order_row(app: &App, order_ref: &str) -> Result<OrderRow, ApiError> {
    match app.engine.store.order(order_ref).await? {
        Some(o) if o.kind == "kiosk" => Ok(o),
        _ => Err(CvcoError::new(ErrorCode::OrderNotFound)
            .with_field("order_ref")
            .into()),
    }
}

/// What the kiosk screen shows: amounts (the server's), and the latest payment with its outcome.
async fn kiosk_view(app: &App, order: &OrderRow) -> Result<Value, ApiError> {
    let e = &app.engine;
    let a = e.amounts(order).await?;
    let settings = e.merchant_settings(&order.merchant_id);
    let last = e
        .store
        .payments_of_order(&order.order_ref)
        .await?
        .into_iter()
        .max_by_key(|p| p.created_at);
    let payment = match &last {
        Some(p) => Some(payment_view(app, p).await?),
        None => None,
    };
    Ok(json!({
        "order_ref": order.order_ref,
        "merchant": e.merchant_name(&order.merchant_id),
        "label": serde_json::from_str::<Value>(&order.lines).ok()
            .and_then(|l| l[0]["name"].as_str().map(str::to_string)),
        "total_cents": a.total,
        "remaining_cents": a.remaining,
        "min_amount_cents": settings.min_amount_cents.cents(),
        "payment": payment,
    }))
}

/// The Payment plus the kiosk's reading of it: `balance_short` when a partial authorization
/// was voided (nothing kept, the shopper is told the balance is short).
async fn payment_view(app: &App, row: &PaymentRow) -> Result<Value, ApiError> {
    let p = serde_json::to_value(app.engine.payment_json(row).await?)
        .map_err(|_| ApiError::from(ErrorCode::Internal))?;
    let authorized: i64 = p["authorizations"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x["amount_cents"].as_i64()).sum())
        .unwrap_or(0);
    let outcome = match p["status"].as_str().unwrap_or("") {
        "authorized" => "paid",
        "partially_authorized" => "partial",
        "cancelled" if authorized > 0 && authorized < row.amount_cents => "balance_short",
        s @ ("declined" | "expired" | "cancelled" | "failed") => s,
        _ => "waiting",
    };
    // The QR the plugin drew, so the kiosk shows it without an encoder of its own.
    let qr_svg = match p["next_action"]["type"].as_str() {
        Some("show_qr") => app
            .engine
            .store
            .request_of_payment(&row.payment_id)
            .await?
            .and_then(|r| r.qr_svg),
        _ => None,
    };
    Ok(json!({"payment": p, "outcome": outcome, "qr_svg": qr_svg}))
}

/// `GET /kiosk/api/orders/{order_ref}`.
pub(super) async fn kiosk_order_get(
    State(app): AppState,
    Path(order_ref): Path<String>,
) -> ApiResult {
    let order = kiosk_order_row(&app, &order_ref).await?;
    // A refusal owed to a payment nobody polled since is settled before the screen reads it.
    if let Some(p) = app
        .engine
        .store
        .payments_of_order(&order_ref)
        .await?
        .into_iter()
        .max_by_key(|p| p.created_at)
    {
        app.engine.refuse_partial_if_asked(p).await;
    }
    Ok(Json(kiosk_view(&app, &order).await?).into_response())
}

/// `POST /kiosk/api/payments`: the contract's shopper body (`order_ref`, `mode`, `beneficiary`,
/// `attempt`); the amount is the order's remainder, never the browser's.
pub(super) async fn kiosk_pay(State(app): AppState, body: Bytes) -> ApiResult {
    let b = contract_body!(CreatePayment, &body);
    kiosk_order_row(&app, &b.order_ref).await?;
    let start = match (b.mode, b.beneficiary) {
        (PaymentMode::Qr, _) => Start::Qr,
        (PaymentMode::Identifier, Some(beneficiary)) => Start::Identifier { beneficiary },
        (PaymentMode::Identifier, None) => {
            return Err(CvcoError::new(ErrorCode::InvalidBeneficiary)
                .with_field("beneficiary")
                .into())
        }
    };
    let (row, created) = app
        .engine
        .start(
            &b.order_ref,
            &b.attempt,
            Channel::Kiosk,
            start,
            AmountSpec::Remaining,
        )
        .await?;
    // A retried attempt whose lost creation was replayed may come back partially authorized
    // (recorded under the order's lock, where the engine cannot void it).
    let row = app.engine.refuse_partial_if_asked(row).await;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(json_status(status, payment_view(&app, &row).await?))
}

/// A payment of a kiosk order, or the answer to an unknown id.
async fn kiosk_payment(app: &App, id: &str) -> Result<PaymentRow, ApiError> {
    let row = app
        .engine
        .store
        .payment(id)
        .await?
        .ok_or(ApiError::from(ErrorCode::PaymentNotFound))?;
    kiosk_order_row(app, &row.order_ref)
        .await
        .map_err(|_| ApiError::from(ErrorCode::PaymentNotFound))?;
    Ok(row)
}

/// `GET /kiosk/api/payments/{id}`: the screen's poll; the engine's refuse-partial rule applies
/// (as at every read of the payment, poller and notifications included).
pub(super) async fn kiosk_payment_get(State(app): AppState, Path(id): Path<String>) -> ApiResult {
    let row = kiosk_payment(&app, &id).await?;
    let row = app.engine.refuse_partial_if_asked(row).await;
    Ok(Json(payment_view(&app, &row).await?).into_response())
}

/// `POST /kiosk/api/payments/{id}/cancel`: the shopper gives up while waiting (409 once final, as
/// the contract's cancel).
pub(super) async fn kiosk_cancel(State(app): AppState, Path(id): Path<String>) -> ApiResult {
    let row = kiosk_payment(&app, &id).await?;
    if row.is_final && !row.status.is(NormalizedStatus::Cancelled) {
        return Err(ErrorCode::IllegalTransition.into());
    }
    let row = if row.is_final {
        row
    } else {
        app.engine.cancel(&id, None).await?
    };
    Ok(Json(payment_view(&app, &row).await?).into_response())
}
