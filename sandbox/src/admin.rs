//! Unauthenticated admin endpoints for tests and integrators: shops, faults, the notification
//! log, the cancel calls received, sandbox time. A local sandbox only: never expose it.

use crate::engine::CreateShop;
use crate::faults::{Faults, FaultsRequest};
use crate::html::{esc, html_response, page};
use crate::http::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use crate::model::DeliveryRec;
use crate::{SandboxState, OPENAPI};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use cvco_core::{CvcoError, ErrorCode, ShopId};
use serde::Deserialize;
use serde_json::{json, Value};

pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok", "service": "cvco-sandbox"}))
}

pub async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

pub async fn create_shop(
    State(s): State<SandboxState>,
    ApiJson(req): ApiJson<CreateShop>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let shop = s.lock().create_shop(req)?;
    Ok((StatusCode::CREATED, Json(shop.public_view())))
}

pub async fn list_shops(State(s): State<SandboxState>) -> Json<Vec<Value>> {
    Json(s.lock().shops.values().map(|s| s.public_view()).collect())
}

pub async fn get_shop(
    State(s): State<SandboxState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(s.lock().shop_rec(&id)?.public_view()))
}

pub async fn update_settings(
    State(s): State<SandboxState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(patch): ApiJson<serde_json::Map<String, Value>>,
) -> ApiResult<Json<Value>> {
    let shop = s.lock().update_shop(&id, patch)?;
    s.wake();
    Ok(Json(shop.public_view()))
}

#[derive(Deserialize)]
pub struct ScopeQuery {
    #[serde(default)]
    shop_id: Option<ShopId>,
}

fn faults_view(s: &SandboxState, shop: Option<&ShopId>) -> Value {
    let g = s.lock();
    match shop {
        Some(id) => json!({
            "shop_id": id,
            "scoped": g.faults.shops.contains_key(id.as_str()),
            "faults": g.faults.for_shop(Some(id)),
        }),
        None => serde_json::to_value(&g.faults).expect("faults serialize"),
    }
}

pub async fn get_faults(
    State(s): State<SandboxState>,
    ApiQuery(q): ApiQuery<ScopeQuery>,
) -> Json<Value> {
    Json(faults_view(&s, q.shop_id.as_ref()))
}

/// Replaces the faults of one scope (a shop, or the global default) as a whole.
pub async fn put_faults(
    State(s): State<SandboxState>,
    ApiJson(req): ApiJson<FaultsRequest>,
) -> ApiResult<Json<Value>> {
    let faults: Faults = serde_json::from_value(Value::Object(req.faults)).map_err(|e| {
        ApiError::invalid_request(
            &format!("Pannes invalides : {e}."),
            &format!("Invalid faults: {e}."),
        )
    })?;
    faults.validate()?;
    {
        let mut g = s.lock();
        match &req.shop_id {
            Some(id) => {
                g.faults.shops.insert(id.to_string(), faults);
            }
            None => g.faults.global = faults,
        }
    }
    s.wake();
    Ok(Json(faults_view(&s, req.shop_id.as_ref())))
}

/// Clears one shop's faults, or every fault when no shop is given.
pub async fn delete_faults(
    State(s): State<SandboxState>,
    ApiQuery(q): ApiQuery<ScopeQuery>,
) -> Json<Value> {
    {
        let mut g = s.lock();
        match &q.shop_id {
            Some(id) => {
                g.faults.shops.remove(id.as_str());
            }
            None => g.faults = Default::default(),
        }
    }
    s.wake();
    Json(faults_view(&s, q.shop_id.as_ref()))
}

#[derive(Deserialize)]
pub struct LogQuery {
    #[serde(default)]
    shop_id: Option<ShopId>,
    #[serde(default)]
    limit: Option<usize>,
}

fn delivery_view(d: &DeliveryRec) -> Value {
    let notification: Value = serde_json::from_str(&d.body).unwrap_or(Value::Null);
    json!({
        "id": d.id,
        "shop_id": d.shop_id,
        "url": d.url,
        "object_id": d.object_id,
        "state": d.state,
        "sequence": d.sequence,
        "status": d.status,
        "attempts": d.attempts,
        "next_attempt_at": d.next_attempt_at,
        "held_until": d.held_until,
        "created_at": d.created_at,
        "notification": notification,
    })
}

fn log(s: &SandboxState, q: &LogQuery) -> Vec<DeliveryRec> {
    let g = s.lock();
    let mut items: Vec<DeliveryRec> = g
        .deliveries
        .values()
        .filter(|d| q.shop_id.as_ref().is_none_or(|s| &d.shop_id == s))
        .cloned()
        .collect();
    items.sort_by_key(|d| std::cmp::Reverse(d.order));
    items.truncate(q.limit.unwrap_or(200).min(5000));
    items
}

/// The delivery log, newest first.
pub async fn notifications(
    State(s): State<SandboxState>,
    ApiQuery(q): ApiQuery<LogQuery>,
) -> Json<Value> {
    let items: Vec<Value> = log(&s, &q).iter().map(delivery_view).collect();
    Json(json!({ "items": items }))
}

#[derive(Deserialize)]
pub struct CancelQuery {
    #[serde(default)]
    shop_id: Option<ShopId>,
    #[serde(default)]
    transaction_id: Option<String>,
}

/// The cancel calls received, oldest first: `void`, `replay` (already cancelled) or `refused`.
pub async fn cancellations(
    State(s): State<SandboxState>,
    ApiQuery(q): ApiQuery<CancelQuery>,
) -> Json<Value> {
    let items: Vec<_> = s
        .cancel_calls()
        .into_iter()
        .filter(|c| q.shop_id.as_ref().is_none_or(|s| c.shop_id == s.as_str()))
        .filter(|c| {
            q.transaction_id
                .as_ref()
                .is_none_or(|t| &c.transaction_id == t)
        })
        .collect();
    Json(json!({ "items": items }))
}

#[derive(Deserialize)]
pub struct ClockRequest {
    #[serde(default)]
    advance_s: i64,
    #[serde(default)]
    advance_ms: i64,
}

fn clock_view(s: &SandboxState) -> Value {
    let g = s.lock();
    json!({"now": g.now(), "offset_ms": g.clock_offset_ms})
}

pub async fn get_clock(State(s): State<SandboxState>) -> Json<Value> {
    Json(clock_view(&s))
}

/// Time travel: moves sandbox time for expiries, business days and tokens.
pub async fn advance_clock(
    State(s): State<SandboxState>,
    ApiJson(req): ApiJson<ClockRequest>,
) -> ApiResult<Json<Value>> {
    let delta = req
        .advance_s
        .checked_mul(1000)
        .and_then(|ms| ms.checked_add(req.advance_ms))
        .filter(|d| d.abs() <= 3650 * 86_400_000)
        .ok_or_else(|| {
            ApiError::from(
                CvcoError::new(ErrorCode::InvalidRequest)
                    .with_detail("Décalage de 10 ans au plus.", "Shift of 10 years at most."),
            )
        })?;
    s.lock().advance_clock(delta)?;
    s.wake();
    Ok(Json(clock_view(&s)))
}

/// HTML overview: shops, faults, and the notification log (?shop_id= to filter). Served with the
/// same strict CSP as the app pages: it shows merchant-supplied text (shop names, URLs).
pub async fn dashboard(State(s): State<SandboxState>, ApiQuery(q): ApiQuery<LogQuery>) -> Response {
    let shops: String = {
        let g = s.lock();
        g.shops
            .values()
            .map(|sh| {
                format!(
                    "<tr><td><a href=\"/admin?shop_id={id}\">{id}</a></td><td>{name}</td><td>{ch}</td><td>{min}</td><td>{to} s</td></tr>",
                    id = esc(sh.shop_id.as_str()),
                    name = esc(&sh.display_name()),
                    ch = esc(&sh.channels.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ")),
                    min = esc(&sh.settings.min_amount_cents.format_fr()),
                    to = sh.settings.authorization_timeout_s,
                )
            })
            .collect()
    };
    let faults = serde_json::to_string_pretty(&faults_view(&s, None)).unwrap_or_default();
    let rows: String = log(&s, &q)
        .iter()
        .map(|d| {
            let last = d.attempts.last().map(|a| {
                a.http_status
                    .map(|c| format!("HTTP {c}"))
                    .or_else(|| a.error.clone())
                    .unwrap_or_default()
            });
            format!(
                "<tr><td><code>{id}</code></td><td>{shop}</td><td><code>{obj}</code></td><td>{state} #{seq}</td><td class=\"st-{st}\">{st}</td><td>{n}</td><td>{last}</td><td>{url}</td></tr>",
                id = esc(&d.id),
                shop = esc(d.shop_id.as_str()),
                obj = esc(&d.object_id),
                state = esc(&d.state),
                seq = d.sequence,
                st = esc(&serde_json::to_value(d.status).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()),
                n = d.attempts.len(),
                last = esc(&last.unwrap_or_default()),
                url = esc(&d.url),
            )
        })
        .collect();
    html_response(StatusCode::OK, page(
        "Administration du bac à sable",
        &format!(
            "<p class=\"warn\">Ces pages et /admin/* n'ont pas d'authentification : n'exposez jamais le bac à sable hors de votre poste.</p>\
             <h2>Points d'accueil</h2><table><tr><th>shop_id</th><th>Nom</th><th>Canaux</th><th>Minimum</th><th>Délai</th></tr>{shops}</table>\
             <h2>Pannes injectées</h2><pre>{faults}</pre>\
             <h2>Journal des notifications</h2><p><a href=\"/admin/notifications\">JSON</a></p>\
             <table><tr><th>Événement</th><th>Point d'accueil</th><th>Objet</th><th>État</th><th>Livraison</th><th>Essais</th><th>Dernier résultat</th><th>URL</th></tr>{rows}</table>",
            faults = esc(&faults),
        ),
    ))
}
