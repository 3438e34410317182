//! The shopper side of the merchant contract (PROTOCOL.md §1): checkout, create, status, SSE,
//! cancel.

use super::*;
use crate::payments::amount;
use axum::response::sse::{Event, KeepAlive, Sse};
use cvco_core::contract::CheckoutInput;
use std::convert::Infallible;
use std::time::Duration;

pub(super) async fn shopper_payment(
    app: &App,
    headers: &HeaderMap,
    id: &str,
    state_changing: bool,
) -> Result<(PaymentRow, Option<BoSession>), ApiError> {
    let row = app
        .engine
        .store
        .payment(id)
        .await?
        .ok_or(ApiError::from(ErrorCode::PaymentNotFound))?;
    let order = load_order(app, &row.order_ref).await?;
    let staff = order_access(app, headers, &order, state_changing)
        .await
        .map_err(|e| {
            if e.0.code == ErrorCode::OrderNotFound {
                ApiError::from(ErrorCode::PaymentNotFound)
            } else {
                e
            }
        })?;
    Ok((row, staff))
}

#[derive(Deserialize)]
pub(super) struct OrderRefQuery {
    order_ref: Option<String>,
}

pub(super) async fn checkout(
    State(app): AppState,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<OrderRefQuery>,
) -> ApiResult {
    let order_ref = q.order_ref.unwrap_or_default();
    let order = load_order(&app, &order_ref).await?;
    order_access(&app, &headers, &order, false).await?;
    let e = &app.engine;
    let a = e.amounts(&order).await?;
    let mut checkout = contract::checkout(
        &e.merchant_settings(&order.merchant_id),
        CheckoutInput {
            order_ref: order.order_ref.clone(),
            order_total_cents: amount(a.total),
            order_remaining_cents: amount(a.remaining),
            currency: "EUR".into(),
            payable: true,
            modes: vec![PaymentMode::Identifier, PaymentMode::Qr],
            cvco_authorized: a.paid_cvco > 0,
        },
    );
    checkout.current_payment = e
        .store
        .payments_of_order(&order_ref)
        .await?
        .into_iter()
        .find(|p| !p.is_final)
        .map(|p| e.payment_json_with(&p, a));
    Ok(Json(checkout).into_response())
}

pub(super) fn start_for(mode: PaymentMode, beneficiary: Option<String>) -> Result<Start, ApiError> {
    match (mode, beneficiary) {
        (PaymentMode::Qr, _) => Ok(Start::Qr),
        (PaymentMode::Identifier, Some(beneficiary)) => Ok(Start::Identifier { beneficiary }),
        // parse_request already requires it.
        (PaymentMode::Identifier, None) => Err(CvcoError::new(ErrorCode::InvalidBeneficiary)
            .with_field("beneficiary")
            .into()),
    }
}

pub(super) async fn create_payment(
    State(app): AppState,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    // Any amount the browser sends is ignored: the order says how much.
    let b = contract_body!(CreatePayment, &body);
    let order = load_order(&app, &b.order_ref).await?;
    order_access(&app, &headers, &order, true).await?;
    let channel = match order.kind.as_str() {
        "counter" => Channel::Proximity,
        "moto" => Channel::Moto,
        _ => Channel::Ecommerce,
    };
    let start = start_for(b.mode, b.beneficiary)?;
    let (row, created) = app
        .engine
        .start(
            &b.order_ref,
            &b.attempt,
            channel,
            start,
            AmountSpec::Remaining,
        )
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(json_status(status, app.engine.payment_json(&row).await?))
}

pub(super) async fn get_payment(
    State(app): AppState,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    // The hot path (the widget polls here): the shopper's own payment, rendered once per change.
    if let Some(token) = auth::cookie(&headers, auth::SHOP_COOKIE) {
        let owner = crate::util::sha256_hex(&token);
        if let Some(body) = app.engine.status_body(&id, &owner).await? {
            return Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response());
        }
    }
    // Staff read any payment of their merchant (PROTOCOL.md §2), as in the transactions list.
    let row = match shopper_payment(&app, &headers, &id, false).await {
        Ok((row, _)) => row,
        Err(e) if e.0.code == ErrorCode::PaymentNotFound => {
            match bo_session(&app, &headers, false).await {
                Ok(s) => merchant_payment(&app, &s, &id).await?,
                Err(_) => return Err(e),
            }
        }
        Err(e) => return Err(e),
    };
    Ok(Json(app.engine.payment_json(&row).await?).into_response())
}

pub(super) async fn payment_events(
    State(app): AppState,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    let mut rx = app.engine.subscribe(&id);
    let (row, _) = shopper_payment(&app, &headers, &id, false).await?;
    let last_id: i64 = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(-1);
    let (tx, out) = tokio::sync::mpsc::channel::<Event>(16);
    let engine = app.engine.clone();
    let mut stop = app.stop.clone();
    tokio::spawn(async move {
        let event = async |row: &PaymentRow| -> Option<Event> {
            let v = serde_json::to_string(&engine.payment_json(row).await.ok()?).ok()?;
            Some(
                Event::default()
                    .id(row.sequence.to_string())
                    .event("status")
                    .data(v),
            )
        };
        let mut sent = last_id;
        let mut row = row;
        loop {
            if row.sequence > sent {
                let Some(ev) = event(&row).await else { return };
                if tx.send(ev).await.is_err() {
                    return;
                }
                sent = row.sequence;
            }
            if row.is_final {
                return;
            }
            tokio::select! {
                r = rx.recv() => {
                    if let Err(tokio::sync::broadcast::error::RecvError::Closed) = r { return; }
                }
                _ = tx.closed() => return,
                _ = stop.wait_for(|s| *s) => return,
                // A safety net: re-read even without a signal.
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            }
            row = match engine.store.payment(&row.payment_id).await {
                Ok(Some(r)) => r,
                _ => return,
            };
        }
    });
    let stream = futures_util::stream::unfold(out, |mut out| async move {
        out.recv().await.map(|e| (Ok::<Event, Infallible>(e), out))
    });
    let sse = Sse::new(stream).keep_alive(
        KeepAlive::new()
            .interval(Duration::from_secs(15))
            .text("ping"),
    );
    let mut r = sse.into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r.headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(r)
}

pub(super) async fn cancel_payment(
    State(app): AppState,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    let (row, staff) = shopper_payment(&app, &headers, &id, true).await?;
    // Staff may abandon a sale still waiting for the beneficiary (the widget's cancel button);
    // anything else (a payment request, a held authorization) is a cancellation: `cancel` right.
    if let Some(s) = &staff {
        let waiting = row.request_id.is_none()
            && row.authorized_cents == 0
            && matches!(
                row.status.as_str(),
                "pending" | "awaiting_beneficiary" | cvco_core::contract::UNKNOWN
            )
            && app.engine.store.request_of_payment(&id).await?.is_none();
        if !waiting {
            s.require(Perm::Cancel)?;
        }
    }
    // Cancelling what is already cancelled (a retry after a lost answer) answers it as it is.
    if row.is_final && !row.status.is(NormalizedStatus::Cancelled) {
        return Err(ErrorCode::IllegalTransition.into());
    }
    if row.is_final {
        return Ok(Json(app.engine.payment_json(&row).await?).into_response());
    }
    let row = app.engine.cancel(&id, None).await?;
    Ok(Json(app.engine.payment_json(&row).await?).into_response())
}
