//! The simulated ANCV app (HTML at /app, JSON at /app/api) and the e-mail outbox.

use crate::beneficiaries::{self, Behaviour, Scripted, TABLE};
use crate::engine::{format_paris, BenView, Pending};
use crate::html::{esc, html_response, page, CSS, JS};
use crate::http::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use crate::model::{Email, TxRec};
use crate::qr;
use crate::SandboxState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use cvco_core::wire::{PreTransaction, Transaction};
use cvco_core::{Amount, CvcoError, ErrorCode, TransactionState};
use rand::seq::SliceRandom;
use serde::Deserialize;

// ---- JSON API for tests playing the beneficiary ------------------------------------------------

pub async fn api_beneficiaries(State(s): State<SandboxState>) -> Json<Vec<BenView>> {
    Json(s.lock().beneficiaries())
}

pub async fn api_pending(
    State(s): State<SandboxState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Pending>> {
    Ok(Json(s.lock().pending(&id)?))
}

pub async fn api_unlock(
    State(s): State<SandboxState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<BenView>> {
    Ok(Json(s.lock().app_unlock(&id)?))
}

pub async fn api_reset_balance(
    State(s): State<SandboxState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<BenView>> {
    Ok(Json(s.lock().app_reset_balance(&id)?))
}

#[derive(Deserialize)]
pub struct AcceptBody {
    beneficiary: String,
    #[serde(default)]
    amount_cents: Option<i64>,
}

pub async fn api_accept(
    State(s): State<SandboxState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<AcceptBody>,
) -> ApiResult<Json<Transaction>> {
    let tx = s.lock().app_accept(&id, &b.beneficiary, b.amount_cents)?;
    s.wake();
    Ok(Json(tx))
}

#[derive(Deserialize)]
pub struct ConfirmBody {
    beneficiary: String,
    pin: String,
    #[serde(default)]
    amount_cents: Option<i64>,
}

pub async fn api_confirm(
    State(s): State<SandboxState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<ConfirmBody>,
) -> ApiResult<Json<Transaction>> {
    let outcome = s
        .lock()
        .app_confirm(&id, &b.beneficiary, &b.pin, b.amount_cents)?;
    s.wake();
    Ok(Json(outcome?))
}

#[derive(Deserialize)]
pub struct DeclineBody {
    beneficiary: String,
}

pub async fn api_decline(
    State(s): State<SandboxState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<DeclineBody>,
) -> ApiResult<Json<Transaction>> {
    let tx = s.lock().app_decline(&id, &b.beneficiary)?;
    s.wake();
    Ok(Json(tx))
}

#[derive(Deserialize)]
pub struct PayBody {
    beneficiary: String,
    #[serde(default)]
    qr_payload: Option<String>,
    #[serde(default)]
    pre_transaction_id: Option<String>,
}

pub async fn api_pay(
    State(s): State<SandboxState>,
    ApiJson(b): ApiJson<PayBody>,
) -> ApiResult<(StatusCode, Json<Transaction>)> {
    let tx = s.lock().app_pay(
        &b.beneficiary,
        b.pre_transaction_id.as_deref(),
        b.qr_payload.as_deref(),
    )?;
    s.wake();
    Ok((StatusCode::CREATED, Json(tx)))
}

// ---- outbox -------------------------------------------------------------------------------------

fn emails(s: &SandboxState) -> Vec<Email> {
    let g = s.lock();
    let mut v = g.outbox.clone();
    v.sort_by(|a, b| {
        b.created_at
            .cmp(&a.created_at)
            .then_with(|| b.id.cmp(&a.id))
    });
    v
}

pub async fn outbox_json(State(s): State<SandboxState>) -> Json<Vec<Email>> {
    Json(emails(&s))
}

pub async fn outbox_page(State(s): State<SandboxState>) -> Response {
    let list = emails(&s);
    let body = if list.is_empty() {
        "<p class=\"muted\">Aucun e-mail envoyé pour l'instant.</p>".to_string()
    } else {
        list.iter()
            .map(|e| {
                format!(
                    "<div class=\"card\"><h3>{subject}</h3><p class=\"muted\">À : {to} — {at}</p><pre>{body}</pre>\
                     <p><a class=\"button\" href=\"{link}\">Ouvrir le lien de paiement</a></p></div>",
                    subject = esc(&e.subject),
                    to = esc(&e.to),
                    at = esc(&format_paris(e.created_at)),
                    body = esc(&e.body),
                    link = esc(&e.link),
                )
            })
            .collect()
    };
    html_response(
        StatusCode::OK,
        page("Boîte d'envoi (e-mails simulés)", &body),
    )
}

// ---- static assets ----------------------------------------------------------------------------

pub async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        JS,
    )
        .into_response()
}

pub async fn stylesheet() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS).into_response()
}

// ---- HTML app -----------------------------------------------------------------------------------

fn find(id: &str) -> Result<&'static Scripted, ApiError> {
    beneficiaries::resolve(id)
        .map(|(_, b)| b)
        .map_err(ApiError::from)
}

fn error_page(e: &ApiError) -> Response {
    html_response(
        e.status,
        page(
            "Oups",
            &format!(
                "<p class=\"error\">{}</p><p><a href=\"/app\">Retour à l'accueil</a></p>",
                esc(&e.body.message_fr)
            ),
        ),
    )
}

fn scan_card(selected: Option<&str>) -> String {
    let options: String = TABLE
        .iter()
        .map(|b| {
            format!(
                "<option value=\"{id}\"{sel}>{holder} ({email})</option>",
                id = b.id,
                sel = if Some(b.id) == selected {
                    " selected"
                } else {
                    ""
                },
                holder = esc(b.holder),
                email = esc(b.email),
            )
        })
        .collect();
    format!(
        "<div class=\"card\"><h2>Scanner un QR code de paiement</h2>\
         <form method=\"post\" action=\"/app/scan\">\
         <label for=\"scan-b\">Compte</label><select id=\"scan-b\" name=\"beneficiary\">{options}</select>\
         <label for=\"payload\">Contenu du QR code (cvco:pay?…)</label>\
         <textarea id=\"payload\" name=\"qr_payload\" rows=\"2\" required></textarea>\
         <div class=\"row\"><button type=\"submit\">Payer</button></div></form></div>"
    )
}

pub async fn home(State(s): State<SandboxState>) -> Response {
    let list = s.lock().beneficiaries();
    let cards: String = list
        .iter()
        .map(|b| {
            format!(
                "<div class=\"card\"><h2><a href=\"/app/b/{id}\">{holder}</a></h2>\
                 <p class=\"muted\">{email}<br>Identifiant {id}</p><p>Solde : <strong>{bal}</strong>{lock}</p><p>{desc}</p>\
                 <a class=\"button\" href=\"/app/b/{id}\">Ouvrir l'appli</a></div>",
                id = esc(&b.id),
                holder = esc(&b.holder),
                email = esc(&b.email),
                bal = esc(&b.balance_cents.format_fr()),
                lock = if b.locked { " — <strong>compte bloqué</strong>" } else { "" },
                desc = esc(&b.description_fr),
            )
        })
        .collect();
    html_response(
        StatusCode::OK,
        page(
            "Appli bénéficiaire simulée",
            &format!(
                "<p>Choisissez un compte de test pour voir ses demandes de paiement, ajuster le montant, \
                 valider avec le code personnel (1234) ou refuser.</p><div class=\"cards\">{cards}</div>{}",
                scan_card(None)
            ),
        ),
    )
}

pub async fn id_qr(ApiPath(id): ApiPath<String>) -> Response {
    let r = find(&id).and_then(|b| qr::svg(&b.id_qr_payload(), 200).map_err(ApiError::from));
    match r {
        Ok(svg) => ([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response(),
        Err(e) => e.into_response(),
    }
}

pub async fn id_barcode(ApiPath(id): ApiPath<String>) -> Response {
    match find(&id) {
        Ok(b) => match crate::code128::svg(b.id) {
            Some(svg) => ([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response(),
            None => ApiError::from(ErrorCode::Internal).into_response(),
        },
        Err(e) => e.into_response(),
    }
}

fn tx_line(t: &Transaction, ben: &str, shop: &str) -> String {
    format!(
        "<tr><td><a href=\"/app/b/{ben}/tx/{id}\">{shop}</a></td><td>{reference}</td><td>{amount}</td><td>{label}</td></tr>",
        ben = esc(ben),
        id = esc(&t.id),
        shop = esc(shop),
        reference = esc(&t.merchant_order_id),
        amount = esc(&t.amount_cents.format_fr()),
        label = esc(t.state.status_label("fr", t.adjustable)),
    )
}

fn pt_line(p: &PreTransaction, ben: &str, shop: &str) -> String {
    format!(
        "<tr><td><a href=\"/app/pay/{id}?b={ben}\">{shop}</a></td><td>{reference}</td><td>{amount}</td><td>expire le {exp}</td></tr>",
        ben = esc(ben),
        id = esc(&p.id),
        shop = esc(shop),
        reference = esc(&p.merchant_order_id),
        amount = esc(&p.amount_cents.format_fr()),
        exp = esc(&format_paris(p.expires_at)),
    )
}

pub async fn beneficiary_page(
    State(s): State<SandboxState>,
    ApiPath(id): ApiPath<String>,
) -> Response {
    let ben = match find(&id) {
        Ok(b) => b,
        Err(e) => return error_page(&e),
    };
    let (view, pending, names) = {
        let mut g = s.lock();
        let pending = match g.pending(ben.id) {
            Ok(p) => p,
            Err(e) => return error_page(&e.into()),
        };
        let names: Vec<(String, String)> = g
            .shops
            .values()
            .map(|sh| (sh.shop_id.to_string(), sh.display_name()))
            .collect();
        (g.ben_view(ben), pending, names)
    };
    let name_of = |shop: &str| {
        names
            .iter()
            .find(|(id, _)| id == shop)
            .map(|(_, n)| n.clone())
            .unwrap_or_else(|| shop.to_string())
    };
    let txs: String = pending
        .transactions
        .iter()
        .map(|t| tx_line(t, ben.id, &name_of(t.shop_id.as_str())))
        .collect();
    let pts: String = pending
        .payment_requests
        .iter()
        .map(|p| pt_line(p, ben.id, &name_of(p.shop_id.as_str())))
        .collect();
    let qr_svg = qr::svg_inline(&view.id_qr_payload, 180).unwrap_or_default();
    let lock = if view.locked {
        format!(
            "<p class=\"error\">Compte bloqué après trois codes erronés.</p>\
             <form method=\"post\" action=\"/app/b/{id}/unlock\"><button type=\"submit\">Débloquer le compte</button></form>",
            id = ben.id
        )
    } else {
        String::new()
    };
    let reset = if ben.depletes() {
        format!(
            "<form method=\"post\" action=\"/app/b/{id}/reset-balance\"><button class=\"secondary\" type=\"submit\">Remettre le solde à {bal}</button></form>",
            id = ben.id,
            bal = esc(&ben.initial_balance().format_fr())
        )
    } else {
        String::new()
    };
    let body = format!(
        "<div class=\"cards\"><div class=\"card\"><p class=\"muted\">{email}</p><p>Solde disponible</p>\
         <p class=\"amount\">{bal}</p>{lock}{reset}</div>\
         <div class=\"card\"><h3>Mon identifiant</h3><p><strong>{id}</strong></p><div class=\"qr\">{qr_svg}</div>\
         <div class=\"barcode\">{barcode}</div>\
         <p class=\"muted\">QR code et code-barres d'identification à présenter au commerçant.</p></div></div>\
         <div class=\"card\"><h2>Demandes en attente</h2>{txs_table}</div>\
         <div class=\"card\"><h2>Demandes de paiement reçues par e-mail</h2>{pts_table}</div>{scan}",
        email = esc(ben.email),
        bal = esc(&view.balance_cents.format_fr()),
        id = ben.id,
        txs_table = if txs.is_empty() {
            "<p class=\"muted\">Aucune demande d'autorisation.</p>".to_string()
        } else {
            format!("<table><tr><th>Commerçant</th><th>Référence</th><th>Montant</th><th>État</th></tr>{txs}</table>")
        },
        pts_table = if pts.is_empty() {
            "<p class=\"muted\">Aucune demande de paiement.</p>".to_string()
        } else {
            format!("<table><tr><th>Commerçant</th><th>Référence</th><th>Montant</th><th>Validité</th></tr>{pts}</table>")
        },
        scan = scan_card(Some(ben.id)),
        barcode = crate::code128::svg(ben.id).unwrap_or_default(),
    );
    html_response(StatusCode::OK, page(ben.holder, &body))
}

#[derive(Deserialize)]
pub struct TxPath {
    id: String,
    tx_id: String,
}

fn keypad() -> String {
    let mut digits: Vec<u8> = (0..10).collect();
    digits.shuffle(&mut rand::thread_rng());
    let keys: String = digits
        .iter()
        .map(|d| format!("<button type=\"button\" data-digit=\"{d}\">{d}</button>"))
        .collect();
    format!(
        "<div class=\"keypad\" aria-label=\"Clavier dynamique\">{keys}\
         <button type=\"button\" id=\"pin-clear\" class=\"secondary\">⌫</button></div>"
    )
}

fn transaction_html(
    rec: &TxRec,
    ben: &'static Scripted,
    view: &BenView,
    shop: &str,
    message: Option<&str>,
) -> String {
    let t = &rec.tx;
    let error = message
        .map(|m| format!("<p class=\"error\">{}</p>", esc(m)))
        .unwrap_or_default();
    let path = format!("/app/b/{}/tx/{}", ben.id, esc(&t.id));
    let decline = format!(
        "<form method=\"post\" action=\"{path}/decline\"><button class=\"danger\" type=\"submit\">Refuser</button></form>"
    );
    let amount_due = rec.accepted_amount.unwrap_or(t.amount_cents);
    let action = match t.state {
        TransactionState::Processing => {
            let adjust = if t.adjustable {
                let max = t.amount_cents.min(view.balance_cents).max(Amount::from_cents(1).unwrap_or(Amount::ZERO));
                format!(
                    "<label for=\"amount\">Montant à payer en Chèque-Vacances Connect (entre 0,01 € et {max})</label>\
                     <input id=\"amount\" name=\"amount\" inputmode=\"decimal\" value=\"{val}\">",
                    max = esc(&max.format_fr()),
                    val = esc(&max.format_plain().replace('.', ",")),
                )
            } else {
                "<p class=\"muted\">Le commerçant n'autorise pas l'ajustement du montant.</p>".to_string()
            };
            format!(
                "<form method=\"post\" action=\"{path}/accept\">{adjust}<div class=\"row\"><button type=\"submit\">Payer</button></div></form>{decline}"
            )
        }
        TransactionState::Authorizing => format!(
            "<p>Montant validé : <strong>{amt}</strong></p>\
             <form method=\"post\" action=\"{path}/confirm\" autocomplete=\"off\">\
             <label for=\"pin\">Code personnel</label>\
             <input id=\"pin\" name=\"pin\" type=\"password\" inputmode=\"numeric\" maxlength=\"8\" required>{keypad}\
             <div class=\"row\"><button type=\"submit\">Valider</button></div></form>{decline}",
            amt = esc(&amount_due.min(view.balance_cents).format_fr()),
            keypad = keypad(),
        ),
        _ => {
            let outcome = match t.state {
                TransactionState::Validated | TransactionState::Authorized | TransactionState::Used => format!(
                    "<p class=\"success\">Paiement autorisé : {} (autorisation n° {}).</p>",
                    esc(&t.authorized_cents.format_fr()),
                    esc(t.payers.last().and_then(|p| p.authorizations.last()).map(|a| a.number.as_str()).unwrap_or("")),
                ),
                _ => format!("<p class=\"error\">{}</p>", esc(t.state.label("fr"))),
            };
            format!("{outcome}<p><a class=\"button\" href=\"/app/b/{}\">Retour</a></p>", ben.id)
        }
    };
    format!(
        "{error}<div class=\"card\"><p class=\"muted\">{shop}</p><p>Référence {reference}</p>\
         <p class=\"amount\">{amount}</p><p>État : <span class=\"state\">{label}</span></p>\
         <p>Solde disponible : {bal} — solde après paiement : {after}</p>{exp}</div><div class=\"card\">{action}</div>",
        shop = esc(shop),
        reference = esc(&t.merchant_order_id),
        amount = esc(&t.amount_cents.format_fr()),
        label = esc(t.state.status_label("fr", t.adjustable)),
        bal = esc(&view.balance_cents.format_fr()),
        after = esc(&view.balance_cents.saturating_sub(amount_due).format_fr()),
        exp = t
            .expires_at
            .filter(|_| t.state.is_awaiting_beneficiary())
            .map(|e| format!("<p class=\"muted\">À valider avant le {}.</p>", esc(&format_paris(e))))
            .unwrap_or_default(),
    )
}

fn render_tx(
    s: &SandboxState,
    ben_id: &str,
    tx_id: &str,
    message: Option<&str>,
    status: StatusCode,
) -> Response {
    let ben = match find(ben_id) {
        Ok(b) => b,
        Err(e) => return error_page(&e),
    };
    let (rec, view, shop) = {
        let mut g = s.lock();
        let rec = match g.tx_public(tx_id) {
            Ok(r) if r.beneficiary.as_deref() == Some(ben.id) => r,
            Ok(_) => return error_page(&CvcoError::new(ErrorCode::Forbidden).into()),
            Err(e) => return error_page(&e.into()),
        };
        let shop = g.shop_name(&rec.tx.shop_id);
        (rec, g.ben_view(ben), shop)
    };
    html_response(
        status,
        page(
            "Demande de paiement",
            &transaction_html(&rec, ben, &view, &shop, message),
        ),
    )
}

pub async fn transaction_page(
    State(s): State<SandboxState>,
    ApiPath(p): ApiPath<TxPath>,
) -> Response {
    render_tx(&s, &p.id, &p.tx_id, None, StatusCode::OK)
}

fn form<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_urlencoded::from_bytes(body).map_err(|e| {
        ApiError::invalid_request(
            &format!("Formulaire invalide : {e}."),
            &format!("Invalid form: {e}."),
        )
    })
}

fn back_to_tx(p: &TxPath) -> Response {
    Redirect::to(&format!("/app/b/{}/tx/{}", p.id, p.tx_id)).into_response()
}

#[derive(Deserialize)]
struct AcceptForm {
    #[serde(default)]
    amount: Option<String>,
}

pub async fn accept_form(
    State(s): State<SandboxState>,
    ApiPath(p): ApiPath<TxPath>,
    body: Bytes,
) -> Response {
    let result = form::<AcceptForm>(&body).and_then(|f| {
        let cents = match f.amount.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
            Some(a) => Some(Amount::parse(a)?.cents() as i64),
            None => None,
        };
        Ok(s.lock().app_accept(&p.tx_id, &p.id, cents)?)
    });
    s.wake();
    match result {
        Ok(_) => back_to_tx(&p),
        Err(e) => render_tx(&s, &p.id, &p.tx_id, Some(&e.body.message_fr), e.status),
    }
}

#[derive(Deserialize)]
struct PinForm {
    #[serde(default)]
    pin: String,
}

pub async fn confirm_form(
    State(s): State<SandboxState>,
    ApiPath(p): ApiPath<TxPath>,
    body: Bytes,
) -> Response {
    let result = form::<PinForm>(&body).and_then(|f| {
        let outcome = s.lock().app_confirm(&p.tx_id, &p.id, &f.pin, None)?;
        Ok(outcome?)
    });
    s.wake();
    match result {
        Ok(_) => back_to_tx(&p),
        Err(e) => render_tx(&s, &p.id, &p.tx_id, Some(&e.body.message_fr), e.status),
    }
}

pub async fn decline_form(State(s): State<SandboxState>, ApiPath(p): ApiPath<TxPath>) -> Response {
    let result = s.lock().app_decline(&p.tx_id, &p.id);
    s.wake();
    match result {
        Ok(_) => back_to_tx(&p),
        Err(e) => {
            let e = ApiError::from(e);
            render_tx(&s, &p.id, &p.tx_id, Some(&e.body.message_fr), e.status)
        }
    }
}

pub async fn unlock_form(State(s): State<SandboxState>, ApiPath(id): ApiPath<String>) -> Response {
    match s.lock().app_unlock(&id) {
        Ok(v) => Redirect::to(&format!("/app/b/{}", v.id)).into_response(),
        Err(e) => error_page(&e.into()),
    }
}

pub async fn reset_form(State(s): State<SandboxState>, ApiPath(id): ApiPath<String>) -> Response {
    match s.lock().app_reset_balance(&id) {
        Ok(v) => Redirect::to(&format!("/app/b/{}", v.id)).into_response(),
        Err(e) => error_page(&e.into()),
    }
}

#[derive(Deserialize)]
pub struct PayQuery {
    #[serde(default)]
    b: Option<String>,
    #[serde(default)]
    e: Option<String>,
}

fn pay_html(
    s: &SandboxState,
    pt_id: &str,
    selected: Option<&str>,
    message: Option<&str>,
) -> Result<String, ApiError> {
    let (pt, shop) = {
        let mut g = s.lock();
        let pt = g.pt_public(pt_id)?;
        let shop = g.shop_name(&pt.shop_id);
        (pt, shop)
    };
    let selected = selected
        .and_then(|b| beneficiaries::resolve(b).ok())
        .map(|(_, b)| b.id);
    let options: String = TABLE
        .iter()
        .filter(|b| b.behaviour != Behaviour::Blocked)
        .map(|b| {
            format!(
                "<option value=\"{id}\"{sel}>{holder} ({email})</option>",
                id = b.id,
                sel = if Some(b.id) == selected {
                    " selected"
                } else {
                    ""
                },
                holder = esc(b.holder),
                email = esc(b.email),
            )
        })
        .collect();
    let error = message
        .map(|m| format!("<p class=\"error\">{}</p>", esc(m)))
        .unwrap_or_default();
    let action = if pt.state == cvco_core::PreTransactionState::Created {
        format!(
            "<form method=\"post\" action=\"/app/pay/{id}\"><label for=\"b\">Payer avec le compte</label>\
             <select id=\"b\" name=\"beneficiary\">{options}</select>\
             <div class=\"row\"><button type=\"submit\">Continuer</button></div></form>",
            id = esc(&pt.id)
        )
    } else {
        format!(
            "<p class=\"warn\">Cette demande n'est plus payable (état {}).</p>",
            esc(pt.state.as_str())
        )
    };
    Ok(format!(
        "{error}<div class=\"card\"><p class=\"muted\">{shop}</p><p>Référence {reference}</p>\
         <p class=\"amount\">{amount}</p><p class=\"muted\">Valable jusqu'au {exp}</p>{action}</div>",
        shop = esc(&shop),
        reference = esc(&pt.merchant_order_id),
        amount = esc(&pt.amount_cents.format_fr()),
        exp = esc(&format_paris(pt.expires_at)),
    ))
}

pub async fn pay_page(
    State(s): State<SandboxState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<PayQuery>,
) -> Response {
    match pay_html(&s, &id, q.b.as_deref(), q.e.as_deref()) {
        Ok(body) => html_response(StatusCode::OK, page("Demande de paiement", &body)),
        Err(e) => error_page(&e),
    }
}

#[derive(Deserialize)]
struct PayForm {
    beneficiary: String,
    #[serde(default)]
    qr_payload: Option<String>,
}

fn paid(
    s: &SandboxState,
    r: Result<Transaction, ApiError>,
    ben: &str,
) -> Result<Response, ApiError> {
    s.wake();
    let tx = r?;
    let id = find(ben)?.id;
    Ok(Redirect::to(&format!("/app/b/{id}/tx/{}", tx.id)).into_response())
}

pub async fn pay_form(
    State(s): State<SandboxState>,
    ApiPath(id): ApiPath<String>,
    body: Bytes,
) -> Response {
    let f = match form::<PayForm>(&body) {
        Ok(f) => f,
        Err(e) => return error_page(&e),
    };
    let r = s
        .lock()
        .app_pay(&f.beneficiary, Some(&id), None)
        .map_err(ApiError::from);
    match paid(&s, r, &f.beneficiary) {
        Ok(resp) => resp,
        Err(e) => match pay_html(&s, &id, Some(&f.beneficiary), Some(&e.body.message_fr)) {
            Ok(body) => html_response(e.status, page("Demande de paiement", &body)),
            Err(e2) => error_page(&e2),
        },
    }
}

pub async fn scan_form(State(s): State<SandboxState>, body: Bytes) -> Response {
    let f = match form::<PayForm>(&body) {
        Ok(f) => f,
        Err(e) => return error_page(&e),
    };
    let payload = f.qr_payload.unwrap_or_default();
    let r = s
        .lock()
        .app_pay(&f.beneficiary, None, Some(&payload))
        .map_err(ApiError::from);
    match paid(&s, r, &f.beneficiary) {
        Ok(resp) => resp,
        Err(e) => error_page(&e),
    }
}
