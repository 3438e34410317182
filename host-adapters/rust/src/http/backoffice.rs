//! The staff side of the merchant contract (PROTOCOL.md §2): MOTO payments and payment
//! requests, transactions, refunds, cancels, totals, closing, receipts.

use super::shopper::{shopper_payment, start_for};
use super::*;
use cvco_core::contract::{CaptureChoice, PaymentMode, UNKNOWN};
use cvco_core::lifecycle::CaptureMode;
use cvco_core::plugin_api::DeliveryKind;

/// Counter and MOTO sales have no basket: the first amount typed is the order's total.
pub(super) async fn ensure_bo_order(
    app: &App,
    s: &BoSession,
    order_ref: &str,
    amount: Option<i64>,
    kind: &str,
    label: Option<&str>,
) -> Result<(), ApiError> {
    if let Some(order) = app.engine.store.order(order_ref).await? {
        // Another merchant's order: as if it did not exist, and not taken over.
        if order.merchant_id != s.merchant_id {
            return Err(CvcoError::new(ErrorCode::OrderNotFound)
                .with_field("order_ref")
                .into());
        }
        return Ok(());
    }
    let amount = amount.ok_or_else(|| {
        CvcoError::new(ErrorCode::InvalidAmount)
            .with_detail("Montant requis.", "Amount required.")
            .with_field("amount_cents")
    })?;
    check_amount(amount)?;
    let name = label.unwrap_or(if kind == "counter" {
        "Vente au comptoir"
    } else {
        "Vente à distance"
    });
    let lines = json!([{"sku": kind, "name": name, "quantity": 1, "unit_price_cents": amount, "total_cents": amount}]);
    app.engine
        .insert_order_for(&s.merchant_id, order_ref, None, kind, &lines, amount)
        .await?;
    Ok(())
}

pub(super) async fn bo_payment(State(app): AppState, headers: HeaderMap, body: Bytes) -> ApiResult {
    let s = bo_session(&app, &headers, true).await?;
    let b = contract_body!(BackOfficePayment, &body);
    // cvco-core's parse_request allows moto, proximity and kiosk only.
    let (perm, kind) = match b.channel {
        Channel::Moto => (Perm::Moto, "moto"),
        _ => (Perm::Counter, "counter"),
    };
    s.require(perm)?;
    let amount_cents = b.amount_cents.map(cents);
    ensure_bo_order(
        &app,
        &s,
        &b.order_ref,
        amount_cents,
        kind,
        b.label.as_deref(),
    )
    .await?;
    // A pre-reservation (000 §4.3.2): a QR one is an ANCV payment request with deferred
    // capture, a pushed one a deferred transaction; both listed with the payment requests.
    let start = match (b.capture, b.mode) {
        (CaptureChoice::Immediate, _) => start_for(b.mode, b.beneficiary)?,
        (CaptureChoice::Deferred, PaymentMode::Qr) => Start::Request {
            delivery: DeliveryKind::Qr,
            email: None,
            expires_in_s: None,
            capture: CaptureMode::Deferred,
        },
        (CaptureChoice::Deferred, PaymentMode::Identifier) => {
            match start_for(b.mode, b.beneficiary)? {
                Start::Identifier { beneficiary } => Start::Reserve { beneficiary },
                other => other,
            }
        }
    };
    let amount = amount_cents
        .map(AmountSpec::Fixed)
        .unwrap_or(AmountSpec::Remaining);
    let (row, created) = app
        .engine
        .start(&b.order_ref, &b.attempt, b.channel, start, amount)
        .await?;
    tracing::info!(user = %s.username, payment_id = %row.payment_id, capture = ?b.capture, "back-office payment");
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(json_status(status, app.engine.payment_json(&row).await?))
}

pub(super) async fn create_request(
    State(app): AppState,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let s = bo_session(&app, &headers, true).await?;
    let b = contract_body!(CreatePaymentRequest, &body);
    let (perm, channel) = match b.delivery {
        DeliveryKind::Email => (Perm::Moto, Channel::Moto),
        DeliveryKind::Qr => (Perm::Counter, Channel::Proximity),
    };
    s.require(perm)?;
    let amount_cents = b.amount_cents.map(cents);
    ensure_bo_order(
        &app,
        &s,
        &b.order_ref,
        amount_cents,
        "moto",
        b.label.as_deref(),
    )
    .await?;
    let start = Start::Request {
        delivery: b.delivery,
        email: b.email,
        expires_in_s: b.expires_in_s,
        capture: b.capture.mode(),
    };
    let amount = amount_cents
        .map(AmountSpec::Fixed)
        .unwrap_or(AmountSpec::Remaining);
    let (row, created) = app
        .engine
        .start(&b.order_ref, &b.attempt, channel, start, amount)
        .await?;
    let req = app
        .engine
        .store
        .request_of_payment(&row.payment_id)
        .await?
        .ok_or(ApiError::from(ErrorCode::Internal))?;
    tracing::info!(user = %s.username, request_id = %req.request_id, "payment request");
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(json_status(
        status,
        views::request_json(&app.engine, &req, &row).await?,
    ))
}

#[derive(Deserialize, Default)]
pub(super) struct ListQuery {
    status: Option<String>,
    from: Option<String>,
    to: Option<String>,
    // Unsigned: a negative bound is a 400 naming it (openapi.json: minimum 0).
    min_amount_cents: Option<u64>,
    max_amount_cents: Option<u64>,
    order_ref: Option<String>,
    limit: Option<usize>,
    offset: Option<usize>,
}

/// `YYYY-MM-DD` is a Paris calendar day; `to` of a day is its end. Anything else: 400.
pub(super) fn parse_bound(
    s: Option<&str>,
    field: &str,
    end: bool,
) -> Result<Option<i64>, ApiError> {
    let Some(s) = s.filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    if s.len() == 10 {
        let d = cvco_core::time::Date::parse(s).map_err(|_| unreadable_parameter(field))?;
        let d = if end { d.succ() } else { d };
        return Ok(Some(Timestamp::from_paris_local(d, 0).0));
    }
    Ok(Some(
        Timestamp::parse_rfc3339(s)
            .map_err(|_| unreadable_parameter(field))?
            .0,
    ))
}

pub(super) async fn list_requests(
    State(app): AppState,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult {
    let s = bo_session(&app, &headers, false).await?;
    let from = parse_bound(q.from.as_deref(), "from", false)?;
    let to = parse_bound(q.to.as_deref(), "to", true)?;
    let ids = app
        .engine
        .store
        .request_ids(&s.merchant_id, q.status.as_deref(), from, to, 500)
        .await?;
    let mut items = Vec::new();
    if q.status.as_deref().is_none_or(|s| s == UNKNOWN) {
        items = views::unknown_requests(&app.engine, &s.merchant_id, from, to).await?;
    }
    for id in ids {
        let (req, pay) = app.engine.request_row(&id).await?;
        items.push(views::request_json(&app.engine, &req, &pay).await?);
    }
    Ok(Json(json!({"total": items.len(), "items": items})).into_response())
}

pub(super) async fn get_request(
    State(app): AppState,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    let s = bo_session(&app, &headers, false).await?;
    let (req, pay) = merchant_request(&app, &s, &id).await?;
    Ok(Json(views::request_json(&app.engine, &req, &pay).await?).into_response())
}

pub(super) async fn finalise_request(
    State(app): AppState,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let s = bo_session(&app, &headers, true).await?;
    s.require(Perm::Moto)?;
    let b = contract_body!(Finalise, &body);
    let (req, pay) = merchant_request(&app, &s, &id).await?;
    let authorized = pay.status.is_authorized();
    // The capture window closed (ANCV expired it, or the merchant's window ended): said so.
    let deadline = app.engine.capture_deadline(&pay);
    let expired = pay.status.is(NormalizedStatus::Expired) && pay.authorized_at.is_some();
    if req.capture == "DEFERRED" && (expired || deadline.is_some_and(|d| now_ms() > d)) {
        let _ = app.engine.refresh(&pay.payment_id).await;
        return Err(crate::payments::capture_deadline_passed(deadline).into());
    }
    if req.capture != "DEFERRED" || req.finalised || !authorized {
        return Err(CvcoError::new(ErrorCode::IllegalTransition)
            .with_detail(
                "Pré-réservation non autorisée ou déjà finalisée.",
                "Pre-reservation not authorized or already finalised.",
            )
            .into());
    }
    let amount_cents = b.amount_cents.map(cents);
    if let Some(a) = amount_cents {
        if a > pay.authorized_cents {
            return Err(CvcoError::new(ErrorCode::InvalidAmount)
                .with_field("amount_cents")
                .into());
        }
    }
    app.engine.capture(&pay.payment_id, amount_cents).await?;
    app.engine.store.set_request_finalised(&id).await?;
    let (req, pay) = app.engine.request_row(&id).await?;
    Ok(Json(views::request_json(&app.engine, &req, &pay).await?).into_response())
}

pub(super) async fn cancel_request(
    State(app): AppState,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult {
    let s = bo_session(&app, &headers, true).await?;
    s.require(Perm::Cancel)?;
    let (req, pay) = merchant_request(&app, &s, &id).await?;
    let reservation_open =
        req.capture == "DEFERRED" && !req.finalised && pay.status.is_authorized();
    if pay.is_final && !reservation_open && !pay.status.is(NormalizedStatus::Cancelled) {
        return Err(ErrorCode::IllegalTransition.into());
    }
    // Already cancelled (a retry after a lost answer): answered as it is.
    if !(pay.is_final && pay.status.is(NormalizedStatus::Cancelled)) {
        app.engine.cancel(&pay.payment_id, None).await?;
    }
    let (req, pay) = app.engine.request_row(&id).await?;
    Ok(Json(views::request_json(&app.engine, &req, &pay).await?).into_response())
}

/// The payment request, if it is the session's merchant's (else 404 like an unknown id).
async fn merchant_request(
    app: &App,
    s: &BoSession,
    id: &str,
) -> Result<(crate::store::RequestRow, crate::store::PaymentRow), ApiError> {
    let (req, pay) = app.engine.request_row(id).await?;
    if pay.merchant_id != s.merchant_id {
        return Err(ErrorCode::PreTransactionNotFound.into());
    }
    Ok((req, pay))
}

pub(super) fn bound(cents: Option<u64>) -> Option<i64> {
    cents.map(|c| i64::try_from(c).unwrap_or(i64::MAX))
}

pub(super) async fn transactions(
    State(app): AppState,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult {
    let s = bo_session(&app, &headers, false).await?;
    let from = parse_bound(q.from.as_deref(), "from", false)?;
    let to = parse_bound(q.to.as_deref(), "to", true)?;
    let filter = TransactionFilter {
        merchant_id: Some(s.merchant_id.clone()),
        status: q.status.clone(),
        from,
        to,
        min_amount_cents: bound(q.min_amount_cents),
        max_amount_cents: bound(q.max_amount_cents),
        order_ref: q.order_ref.clone(),
        limit: q.limit.unwrap_or(200).min(500) as i64,
        offset: i64::try_from(q.offset.unwrap_or(0)).unwrap_or(i64::MAX),
    };
    let page = app.engine.store.transactions(&filter).await?;
    let items: Vec<_> = page
        .rows
        .iter()
        .map(|t| app.engine.transaction_json(t))
        .collect();
    Ok(
        Json(json!({"items": items, "total": page.total, "total_capped": page.total_capped}))
            .into_response(),
    )
}

pub(super) async fn cancel_by_reference(
    State(app): AppState,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let s = bo_session(&app, &headers, true).await?;
    s.require(Perm::Cancel)?;
    let b = contract_body!(CancelByReference, &body);
    let row = merchant_payment(&app, &s, &id).await?;
    if row.transaction_id.as_deref() != Some(b.transaction_id.trim()) {
        return Err(CvcoError::new(ErrorCode::TransactionNotFound)
            .with_detail(
                "La référence ne correspond pas à ce paiement.",
                "The reference does not match this payment.",
            )
            .with_field("transaction_id")
            .into());
    }
    // The merchant's own password (back-office settings), when it set one.
    super::settings::check_cancel_password(&app, &s.merchant_id, b.password.as_deref()).await?;
    let row = app
        .engine
        .cancel(&id, b.password.filter(|p| !p.is_empty()))
        .await?;
    tracing::info!(user = %s.username, payment_id = %id, "cancelled by reference");
    Ok(Json(app.engine.payment_json(&row).await?).into_response())
}

pub(super) async fn refund(
    State(app): AppState,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let s = bo_session(&app, &headers, true).await?;
    s.require(Perm::Refund)?;
    let b = contract_body!(Refund, &body);
    merchant_payment(&app, &s, &id).await?;
    let row = app
        .engine
        .refund(&id, b.amount_cents.map(cents), b.reason, &b.attempt)
        .await?;
    tracing::info!(user = %s.username, payment_id = %id, "refund");
    Ok(Json(app.engine.payment_json(&row).await?).into_response())
}

#[derive(Deserialize)]
pub(super) struct DateQuery {
    date: Option<String>,
    duplicate: Option<bool>,
}

pub(super) async fn totals(
    State(app): AppState,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<DateQuery>,
) -> ApiResult {
    let s = bo_session(&app, &headers, false).await?;
    Ok(
        Json(reports::totals(&app.engine, &s.merchant_id, q.date.as_deref(), true).await?)
            .into_response(),
    )
}

pub(super) async fn closing(State(app): AppState, headers: HeaderMap) -> ApiResult {
    let s = bo_session(&app, &headers, true).await?;
    s.require(Perm::CloseDay)?;
    let v = reports::close(&app.engine, &s.merchant_id).await?;
    tracing::info!(user = %s.username, "day closed");
    Ok(Json(v).into_response())
}

pub(super) async fn receipt(
    State(app): AppState,
    headers: HeaderMap,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<DateQuery>,
) -> ApiResult {
    if id == "totals" {
        let s = bo_session(&app, &headers, false).await?;
        let t = reports::totals(&app.engine, &s.merchant_id, q.date.as_deref(), false).await?;
        return Ok(html_ok(reports::totals_html(
            &app.engine,
            &s.merchant_id,
            &t,
            q.duplicate.unwrap_or(false),
        )));
    }
    let row = match bo_session(&app, &headers, false).await {
        Ok(s) => merchant_payment(&app, &s, &id).await?,
        Err(_) => shopper_payment(&app, &headers, &id, false).await?.0,
    };
    let v = serde_json::to_value(app.engine.payment_json(&row).await?)
        .map_err(|_| ApiError::from(ErrorCode::Internal))?;
    Ok(html_ok(reports::receipt_html(
        &app.engine,
        &row.merchant_id,
        &v,
        q.duplicate.unwrap_or(false),
    )))
}
