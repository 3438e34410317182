//! The merchant API (`/oauth/token`, `/api/v1/...`), as documented in `cvco_core::wire`.

use crate::http::{
    bearer, idempotency_key, parse_json, ApiError, ApiJson, ApiPath, ApiQuery, ApiResult, Merchant,
};
use crate::qr;
use crate::SandboxState;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use cvco_core::time::Date;
use cvco_core::wire::{
    CancelRequest, CaptureRequest, CreatePreTransaction, CreateTransaction, DailyTotals,
    PreTransaction, RefundRequest, RemittanceStatement, RequestAuthorization, TokenRequest,
    TokenResponse, Transaction, TransactionFilter, TransactionList,
};
use cvco_core::{CvcoError, ErrorCode, ShopId, TransactionState};
use rand::Rng;
use serde::Deserialize;

pub async fn token(
    State(s): State<SandboxState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<TokenResponse>> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.trim_start().starts_with("application/json"));
    let req: TokenRequest = if json {
        parse_json(&body)?
    } else {
        serde_urlencoded::from_bytes(&body).map_err(|e| {
            ApiError::invalid_request(
                &format!("Formulaire invalide : {e}."),
                &format!("Invalid form: {e}."),
            )
        })?
    };
    let (_, resp) = s.lock().issue_token(&req)?;
    Ok(Json(resp))
}

fn upstream_unavailable() -> Response {
    ApiError::with_status(
        503,
        CvcoError::new(ErrorCode::UpstreamUnavailable).with_detail(
            "(panne simulée par le bac à sable)",
            "(fault injected by the sandbox)",
        ),
    )
    .into_response()
}

/// Applies the injected faults of the caller's shop (or the global ones) around every
/// /api/v1 call: latency, errors before processing, and responses lost after processing.
pub async fn faults_layer(State(s): State<SandboxState>, req: Request, next: Next) -> Response {
    let faults = {
        let g = s.lock();
        let shop = bearer(req.headers()).and_then(|t| g.authenticate(t).ok());
        (g.faults.for_shop(shop.as_ref()).clone(), shop)
    };
    let (f, shop) = faults;
    if !f.applies_to(req.method().as_str(), req.uri().path()) {
        return next.run(req).await;
    }
    if f.latency_ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(f.latency_ms)).await;
    }
    if take_one(&s, shop.as_ref(), |f| &mut f.fail_next_requests)
        || (f.error_rate > 0.0 && rand::thread_rng().gen_bool(f.error_rate.min(1.0)))
    {
        return upstream_unavailable();
    }
    let resp = next.run(req).await;
    if f.latency_after_ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(f.latency_after_ms)).await;
    }
    if take_one(&s, shop.as_ref(), |f| &mut f.drop_next_responses) {
        return cut_off(resp).await;
    }
    if take_one(&s, shop.as_ref(), |f| &mut f.lose_next_responses)
        || (f.fail_after_commit_rate > 0.0
            && rand::thread_rng().gen_bool(f.fail_after_commit_rate.min(1.0)))
    {
        return upstream_unavailable();
    }
    resp
}

/// Decrements one "next N" counter of the scope; true when it was above zero.
fn take_one(
    s: &SandboxState,
    shop: Option<&ShopId>,
    counter: impl FnOnce(&mut crate::faults::Faults) -> &mut u32,
) -> bool {
    let mut g = s.lock();
    let n = counter(g.faults.for_shop_mut(shop));
    if *n > 0 {
        *n -= 1;
        true
    } else {
        false
    }
}

/// The answer announced longer than it is: the client reads its start, then the connection
/// closes (hyper ends it on the short body), so no complete answer ever arrives.
async fn cut_off(resp: Response) -> Response {
    let (mut parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let half = bytes.slice(..bytes.len() / 2);
    parts.headers.insert(
        header::CONTENT_LENGTH,
        header::HeaderValue::from(bytes.len() as u64 + 1),
    );
    Response::from_parts(parts, axum::body::Body::from(half))
}

fn created<T: serde::Serialize>(is_new: bool, body: T) -> (StatusCode, Json<T>) {
    let status = if is_new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    (status, Json(body))
}

pub async fn create_transaction(
    State(s): State<SandboxState>,
    m: Merchant,
    headers: HeaderMap,
    ApiJson(req): ApiJson<CreateTransaction>,
) -> ApiResult<(StatusCode, Json<Transaction>)> {
    m.check(Some(&req.shop_id))?;
    let key = idempotency_key(&headers)?;
    let (tx, is_new) = s.lock().create_tx(&m.0, req, key.as_deref())?;
    s.wake();
    Ok(created(is_new, tx))
}

#[derive(Deserialize)]
pub struct ShopQuery {
    #[serde(default)]
    shop_id: Option<ShopId>,
}

pub async fn list_transactions(
    State(s): State<SandboxState>,
    m: Merchant,
    ApiQuery(shop): ApiQuery<ShopQuery>,
    ApiQuery(filter): ApiQuery<TransactionFilter>,
) -> ApiResult<Json<TransactionList>> {
    m.check(shop.shop_id.as_ref())?;
    Ok(Json(s.lock().list_tx(&m.0, &filter)))
}

pub async fn get_transaction(
    State(s): State<SandboxState>,
    m: Merchant,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Transaction>> {
    Ok(Json(s.lock().get_tx(&m.0, &id)?))
}

pub async fn request_authorization(
    State(s): State<SandboxState>,
    m: Merchant,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<RequestAuthorization>,
) -> ApiResult<Json<Transaction>> {
    let key = idempotency_key(&headers)?;
    let tx = s
        .lock()
        .request_authorization(&m.0, &id, &req, key.as_deref())?;
    s.wake();
    Ok(Json(tx))
}

/// An empty body means the defaults of the request type.
fn optional_body<T: serde::de::DeserializeOwned + Default>(body: &Bytes) -> ApiResult<T> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        Ok(T::default())
    } else {
        parse_json(body)
    }
}

pub async fn capture(
    State(s): State<SandboxState>,
    m: Merchant,
    ApiPath(id): ApiPath<String>,
    body: Bytes,
) -> ApiResult<Json<Transaction>> {
    let req: CaptureRequest = optional_body(&body)?;
    let tx = s.lock().capture(&m.0, &id, &req)?;
    s.wake();
    Ok(Json(tx))
}

pub async fn cancel(
    State(s): State<SandboxState>,
    m: Merchant,
    ApiPath(id): ApiPath<String>,
    body: Bytes,
) -> ApiResult<Json<Transaction>> {
    let req: CancelRequest = optional_body(&body)?;
    let result = {
        let mut g = s.lock();
        let before = g.get_tx(&m.0, &id).ok().map(|t| t.state);
        let result = g.cancel(&m.0, &id, &req);
        let outcome = match (&result, before) {
            (_, Some(TransactionState::Cancelled)) => "replay",
            (Err(_), _) => "refused",
            (Ok(_), _) => "void",
        };
        // Journaled for `GET /admin/cancellations` (a replay is otherwise invisible).
        s.record_cancel(m.0.as_str(), &id, outcome);
        result
    };
    let tx = result?;
    s.wake();
    Ok(Json(tx))
}

pub async fn refund(
    State(s): State<SandboxState>,
    m: Merchant,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Transaction>)> {
    let req: RefundRequest = optional_body(&body)?;
    let key = idempotency_key(&headers)?;
    let (tx, is_new) = s.lock().refund(&m.0, &id, &req, key.as_deref())?;
    s.wake();
    Ok(created(is_new, tx))
}

pub async fn create_pre_transaction(
    State(s): State<SandboxState>,
    m: Merchant,
    headers: HeaderMap,
    ApiJson(req): ApiJson<CreatePreTransaction>,
) -> ApiResult<(StatusCode, Json<PreTransaction>)> {
    m.check(Some(&req.shop_id))?;
    let key = idempotency_key(&headers)?;
    let base = s.base_url();
    let (pt, is_new) = s.lock().create_pt(&m.0, req, &base, key.as_deref())?;
    s.wake();
    Ok(created(is_new, pt))
}

pub async fn get_pre_transaction(
    State(s): State<SandboxState>,
    m: Merchant,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<PreTransaction>> {
    Ok(Json(s.lock().get_pt(&m.0, &id)?))
}

pub async fn cancel_pre_transaction(
    State(s): State<SandboxState>,
    m: Merchant,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<PreTransaction>> {
    let pt = s.lock().cancel_pt(&m.0, &id)?;
    s.wake();
    Ok(Json(pt))
}

#[derive(Deserialize)]
pub struct QrQuery {
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    size: Option<u32>,
}

pub async fn pre_transaction_qrcode(
    State(s): State<SandboxState>,
    m: Merchant,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<QrQuery>,
) -> ApiResult<Response> {
    let pt = s.lock().get_pt(&m.0, &id)?;
    qr_response(&pt.qr_payload, q.format.as_deref(), q.size)
}

pub fn qr_response(payload: &str, format: Option<&str>, size: Option<u32>) -> ApiResult<Response> {
    let size = size.unwrap_or(256);
    if !(64..=2048).contains(&size) {
        return Err(CvcoError::new(ErrorCode::InvalidRequest)
            .with_detail("Taille entre 64 et 2048.", "Size between 64 and 2048.")
            .with_field("size")
            .into());
    }
    match format.unwrap_or("svg") {
        "svg" => Ok((
            [(header::CONTENT_TYPE, "image/svg+xml")],
            qr::svg(payload, size)?,
        )
            .into_response()),
        "png" => Ok((
            [(header::CONTENT_TYPE, "image/png")],
            qr::png(payload, size)?,
        )
            .into_response()),
        _ => Err(CvcoError::new(ErrorCode::InvalidRequest)
            .with_detail("Formats : svg, png.", "Formats: svg, png.")
            .with_field("format")
            .into()),
    }
}

#[derive(Deserialize)]
pub struct RemittanceQuery {
    #[serde(default)]
    shop_id: Option<ShopId>,
    date: Date,
}

pub async fn remittances(
    State(s): State<SandboxState>,
    m: Merchant,
    ApiQuery(q): ApiQuery<RemittanceQuery>,
) -> ApiResult<Json<RemittanceStatement>> {
    m.check(q.shop_id.as_ref())?;
    let st = s.lock().remittance(&m.0, q.date)?;
    s.wake();
    Ok(Json(st))
}

#[derive(Deserialize)]
pub struct TotalsQuery {
    #[serde(default)]
    shop_id: Option<ShopId>,
    from: Date,
    #[serde(default)]
    to: Option<Date>,
    /// The merchant's own closing hour (its back-office setting); the shop's when absent.
    #[serde(default)]
    closing_hour: Option<u8>,
}

pub async fn totals(
    State(s): State<SandboxState>,
    m: Merchant,
    ApiQuery(q): ApiQuery<TotalsQuery>,
) -> ApiResult<Json<DailyTotals>> {
    m.check(q.shop_id.as_ref())?;
    Ok(Json(s.lock().totals(
        &m.0,
        q.from,
        q.to.unwrap_or(q.from),
        q.closing_hour,
    )?))
}
