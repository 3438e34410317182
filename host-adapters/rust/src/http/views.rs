//! The JSON views of orders and payment requests the shop, the counter and the back-office
//! answer with (the contract's Payment itself is cvco-core's).

use crate::payments::Engine;
use crate::store::{OrderRow, PaymentRow, RequestRow};
use crate::util::rfc3339;
use cvco_core::contract::UNKNOWN;
use cvco_core::plugin_api::{exports::CreatePaymentRequest, Export};
use cvco_core::{CvcoError, NormalizedStatus};
use serde_json::{json, Value};

pub async fn order_json(engine: &Engine, order: &OrderRow) -> Result<Value, CvcoError> {
    let a = engine.amounts(order).await?;
    let payments = engine
        .store
        .payments_of_order(&order.order_ref)
        .await?
        .iter()
        .map(|p| engine.payment_json_with(p, a))
        .collect::<Vec<_>>();
    Ok(json!({
        "order_ref": order.order_ref,
        "kind": order.kind,
        "lines": serde_json::from_str::<Value>(&order.lines).unwrap_or(json!([])),
        "total_cents": a.total,
        "paid_cvco_cents": a.paid_cvco,
        "paid_card_cents": a.paid_card,
        "remaining_cents": a.remaining,
        "status": if a.remaining == 0 { "paid" } else { "awaiting_payment" },
        "payments": payments,
        "card_payments": serde_json::from_str::<Value>(&order.card_payments).unwrap_or(json!([])),
        "created_at": rfc3339(order.created_at),
    }))
}

/// Payment requests whose creation outcome is unknown (no ANCV id yet), newest first: the
/// back-office lists them so a lost answer never hides an e-mail that may have gone out.
pub async fn unknown_requests(
    engine: &Engine,
    merchant_id: &str,
    from: Option<i64>,
    to: Option<i64>,
) -> Result<Vec<Value>, CvcoError> {
    let rows = engine
        .store
        .unknown_creations(merchant_id, CreatePaymentRequest::NAME, from, to, 500)
        .await?;
    Ok(rows
        .iter()
        .map(|pay| {
            let input: Value = serde_json::from_str(&pay.create_input).unwrap_or(Value::Null);
            json!({
                "request_id": null,
                "payment_id": pay.payment_id,
                "order_ref": pay.order_ref,
                "amount_cents": pay.amount_cents,
                "delivery": input["delivery"],
                "email_masked": pay.beneficiary_masked,
                "capture": if input["capture_mode"] == "DEFERRED" { "deferred" } else { "immediate" },
                "status": UNKNOWN,
                "final": false,
                "finalised": false,
                "expires_at": null,
                "capture_deadline": null,
                "qr_payload": null,
                "qr_svg": null,
                "payment": null,
                "created_at": rfc3339(pay.created_at),
                "updated_at": rfc3339(pay.updated_at),
            })
        })
        .collect())
}

pub async fn request_json(
    engine: &Engine,
    req: &RequestRow,
    pay: &PaymentRow,
) -> Result<Value, CvcoError> {
    let payment = match pay.transaction_id {
        Some(_) => Some(engine.payment_json(pay).await?),
        None => None,
    };
    Ok(json!({
        "request_id": req.request_id,
        "payment_id": pay.payment_id,
        "order_ref": pay.order_ref,
        "amount_cents": pay.amount_cents,
        "delivery": req.delivery,
        "email_masked": req.email_masked,
        "capture": if req.capture == "DEFERRED" { "deferred" } else { "immediate" },
        // A request nobody paid yet waits for its beneficiary (a declined attempt included).
        "status": if pay.status.is(NormalizedStatus::Pending) { "awaiting_beneficiary" } else { pay.status.as_str() },
        "final": pay.is_final,
        "finalised": req.finalised,
        "expires_at": rfc3339(req.expires_at),
        // While the authorization awaits its capture: the last moment to finalise it.
        "capture_deadline": engine.capture_deadline(pay).map(rfc3339),
        "qr_payload": req.qr_payload,
        "qr_svg": req.qr_svg,
        "payment": payment,
        "created_at": rfc3339(pay.created_at),
        "updated_at": rfc3339(pay.updated_at),
    }))
}
