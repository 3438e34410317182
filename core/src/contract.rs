//! The merchant HTTP contract's rules (`host-adapters/PROTOCOL.md`) as pure functions: checkout
//! eligibility, the Payment object, the error catalogue, request bodies and the notification's
//! object key. The plugin exports them, so every adapter (Rust, Python, TypeScript, …) answers the
//! same JSON from the same code instead of keeping its own copy.

use crate::amount::Amount;
use crate::beneficiary::BeneficiaryId;
use crate::error::{CvcoError, ErrorCode};
use crate::lifecycle::{AbortReason, CaptureMode, NormalizedStatus};
use crate::plugin_api::{check_idempotency_key, DeliveryKind, NextAction, Payment};
use crate::shop::{Channel, MerchantSettings, OrderFacts};
use crate::time::Timestamp;
use crate::wire::Notification;
use serde::{Deserialize, Serialize};

/// How the beneficiary is reached: an identifier typed or scanned, or a payment QR code shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentMode {
    Identifier,
    Qr,
}

fn euro() -> String {
    "EUR".into()
}

fn yes() -> bool {
    true
}

// ----- checkout -------------------------------------------------------------------------------

/// `checkout`: the host's facts about one order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckoutInput {
    pub order_ref: String,
    pub order_total_cents: Amount,
    pub order_remaining_cents: Amount,
    #[serde(default = "euro")]
    pub currency: String,
    /// False when the platform's order cannot take a payment (cancelled, paid, not placed).
    #[serde(default = "yes")]
    pub payable: bool,
    /// What the adapter offers; empty means identifier only.
    #[serde(default)]
    pub modes: Vec<PaymentMode>,
    /// One of the order's CVCo payments holds an authorization: the remaining amount is a
    /// chained payment's, which may go down to the merchant's `remainder_min_cents`.
    #[serde(default)]
    pub cvco_authorized: bool,
}

/// `GET /cvco/v1/checkout`: what the widget needs to offer CVCo for an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkout {
    pub order_ref: String,
    pub order_total_cents: Amount,
    pub order_remaining_cents: Amount,
    pub currency: String,
    pub eligible: bool,
    pub ineligible_reason: Option<CvcoError>,
    pub min_amount_cents: Amount,
    pub adjustable: bool,
    pub authorization_timeout_s: u32,
    pub modes: Vec<PaymentMode>,
    /// The order's non-final Payment: filled by the adapter, which knows its payments.
    pub current_payment: Option<ContractPayment>,
}

/// Eligibility of an order for CVCo under the merchant's settings.
pub fn checkout(settings: &MerchantSettings, i: CheckoutInput) -> Checkout {
    let reason = if i.currency != "EUR" {
        Some(CvcoError::new(ErrorCode::CurrencyNotSupported))
    } else if !i.payable || i.order_remaining_cents.is_zero() {
        Some(CvcoError::new(ErrorCode::IllegalTransition).with_detail(
            "La commande n'attend pas de paiement.",
            "The order is not awaiting payment.",
        ))
    } else {
        let order = OrderFacts {
            remaining_cents: i.order_remaining_cents,
            cvco_authorized: i.cvco_authorized,
        };
        settings
            .check_amount_for(i.order_remaining_cents, Some(order))
            .err()
    };
    Checkout {
        order_ref: i.order_ref,
        order_total_cents: i.order_total_cents,
        order_remaining_cents: i.order_remaining_cents,
        currency: i.currency,
        eligible: reason.is_none(),
        ineligible_reason: reason,
        min_amount_cents: settings.min_amount_cents,
        adjustable: settings.adjustable,
        authorization_timeout_s: settings.authorization_timeout_s,
        modes: if i.modes.is_empty() {
            vec![PaymentMode::Identifier]
        } else {
            i.modes
        },
        current_payment: None,
    }
}

// ----- the Payment object ---------------------------------------------------------------------

/// A payment request that has no transaction yet (nobody paid, or it ended unpaid).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestFacts {
    pub status: NormalizedStatus,
    pub expires_at: Timestamp,
    /// Set for a payment QR code shown at a counter or kiosk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qr_payload: Option<String>,
}

/// `render_payment`: what the host recorded about one of its payments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenderPaymentInput {
    /// The adapter's own id.
    pub payment_id: String,
    pub order_ref: String,
    pub mode: PaymentMode,
    pub order_total_cents: Amount,
    pub order_remaining_cents: Amount,
    pub sequence: u64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub events_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beneficiary_masked: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<Channel>,
    /// What ANCV last said about the transaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment: Option<Payment>,
    /// Without `payment`: the payment request behind it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<RequestFacts>,
    /// Without `payment`: the amount asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_cents: Option<Amount>,
    /// The refusal that ended it (status `failed`); without `payment`, `request` or `error`
    /// the outcome is unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<CvcoError>,
    /// The merchant's `deferred_capture_window_s`: an authorization awaiting its capture reads
    /// the sooner of ANCV's deadline and the window's end as its `deadline`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture_window_s: Option<u32>,
}

/// `next_action` of the contract's Payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContractNextAction {
    WaitForApp {
        deadline: Option<Timestamp>,
    },
    ShowQr {
        qr_payload: String,
        expires_at: Option<Timestamp>,
    },
    None,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContractAuthorization {
    pub number: String,
    pub amount_cents: Amount,
    pub validated_at: Timestamp,
    pub holder: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContractRefund {
    pub id: String,
    pub amount_cents: Amount,
    pub created_at: Timestamp,
    pub reason: Option<String>,
}

/// The status of a payment whose creation's answer never came back usable.
pub const UNKNOWN: &str = "unknown";

/// The Payment object of PROTOCOL.md: every key always present (null when not known).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContractPayment {
    pub payment_id: String,
    pub order_ref: String,
    pub amount_cents: Amount,
    pub currency: String,
    pub mode: PaymentMode,
    pub channel: Option<Channel>,
    /// A `NormalizedStatus`, or `unknown`.
    pub status: String,
    #[serde(rename = "final")]
    pub is_final: bool,
    pub authorized_cents: Amount,
    pub remaining_cents: Amount,
    pub refunded_cents: Amount,
    pub captured_cents: Amount,
    /// PROTOCOL.md's words (`immediate`, `deferred`), not ANCV's.
    pub capture: Option<CaptureChoice>,
    pub order_total_cents: Amount,
    pub order_remaining_cents: Amount,
    pub beneficiary_masked: Option<String>,
    pub deadline: Option<Timestamp>,
    pub next_action: ContractNextAction,
    pub ancv_state: Option<String>,
    pub ancv_label_fr: Option<String>,
    pub ancv_label_en: Option<String>,
    pub abort_reason: Option<AbortReason>,
    pub transaction_id: Option<String>,
    pub request_id: Option<String>,
    pub authorizations: Vec<ContractAuthorization>,
    pub refunds: Vec<ContractRefund>,
    pub error: Option<CvcoError>,
    pub sequence: u64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub events_url: String,
}

/// The error of a payment ANCV ended on a technical failure, when the host recorded none.
pub fn technical_failure() -> CvcoError {
    CvcoError::new(ErrorCode::UpstreamProtocol).with_detail(
        "ANCV a interrompu la transaction (erreur technique).",
        "ANCV stopped the transaction (technical error).",
    )
}

/// The contract's Payment from the host's record and ANCV's last answer.
pub fn render_payment(i: RenderPaymentInput) -> ContractPayment {
    let mut out = ContractPayment {
        payment_id: i.payment_id,
        order_ref: i.order_ref,
        amount_cents: i.amount_cents.unwrap_or(Amount::ZERO),
        currency: euro(),
        mode: i.mode,
        channel: i.channel,
        status: UNKNOWN.into(),
        is_final: false,
        authorized_cents: Amount::ZERO,
        remaining_cents: i.amount_cents.unwrap_or(Amount::ZERO),
        refunded_cents: Amount::ZERO,
        captured_cents: Amount::ZERO,
        capture: None,
        order_total_cents: i.order_total_cents,
        order_remaining_cents: i.order_remaining_cents,
        beneficiary_masked: i.beneficiary_masked,
        deadline: None,
        next_action: ContractNextAction::WaitForApp { deadline: None },
        ancv_state: None,
        ancv_label_fr: None,
        ancv_label_en: None,
        abort_reason: None,
        transaction_id: None,
        request_id: i.request_id,
        authorizations: Vec::new(),
        refunds: Vec::new(),
        error: None,
        sequence: i.sequence,
        created_at: i.created_at,
        updated_at: i.updated_at,
        events_url: i.events_url,
    };
    if let Some(p) = i.payment {
        let deadline = match &p.next_action {
            NextAction::WaitForApp { deadline } => deadline.or(p.expires_at),
            NextAction::ShowQr { expires_at, .. } => Some(*expires_at),
            _ => p.expires_at,
        };
        out.next_action = match p.next_action {
            _ if p.is_final => ContractNextAction::None,
            NextAction::ShowQr {
                payload,
                expires_at,
                ..
            } => ContractNextAction::ShowQr {
                qr_payload: payload,
                expires_at: Some(expires_at),
            },
            _ => ContractNextAction::WaitForApp { deadline },
        };
        out.deadline = if p.ancv_state.awaits_capture() {
            let authorized_at = p
                .payers
                .iter()
                .flat_map(|x| x.authorizations.iter())
                .map(|a| a.validated_at)
                .min();
            crate::lifecycle::capture_deadline(authorized_at, deadline, i.capture_window_s)
        } else {
            deadline
        };
        out.amount_cents = p.amount_cents;
        out.currency = p.currency;
        out.channel = out.channel.or(Some(p.channel));
        out.status = p.status.as_str().into();
        out.is_final = p.is_final;
        out.authorized_cents = p.authorized_cents;
        out.remaining_cents = p.remaining_cents;
        out.refunded_cents = p.refunded_cents;
        out.captured_cents = p.captured_cents;
        out.capture = Some(match p.capture_mode {
            CaptureMode::Normal => CaptureChoice::Immediate,
            CaptureMode::Deferred => CaptureChoice::Deferred,
        });
        out.ancv_state = Some(p.ancv_state.as_str().into());
        out.ancv_label_fr = Some(p.ancv_label_fr);
        out.ancv_label_en = Some(p.ancv_label_en);
        out.abort_reason = p.abort_reason;
        out.transaction_id = Some(p.id);
        out.request_id = out.request_id.or(p.payment_request_id);
        out.authorizations = p
            .payers
            .into_iter()
            .flat_map(|payer| payer.authorizations)
            .map(|a| ContractAuthorization {
                number: a.number,
                amount_cents: a.amount_cents,
                validated_at: a.validated_at,
                holder: a.holder,
            })
            .collect();
        out.refunds = p
            .refunds
            .into_iter()
            .map(|r| ContractRefund {
                id: r.id,
                amount_cents: r.amount_cents,
                created_at: r.created_at,
                reason: r.reason,
            })
            .collect();
        if p.updated_at > out.updated_at {
            out.updated_at = p.updated_at;
        }
        if p.status == NormalizedStatus::Failed {
            out.error = Some(i.error.unwrap_or_else(technical_failure));
        }
    } else if let Some(e) = i.error {
        out.status = NormalizedStatus::Failed.as_str().into();
        out.is_final = true;
        out.next_action = ContractNextAction::None;
        out.error = Some(e);
    } else if let Some(r) = i.request {
        out.status = r.status.as_str().into();
        out.is_final = r.status.is_final();
        out.deadline = Some(r.expires_at);
        out.next_action = match r.qr_payload {
            _ if out.is_final => ContractNextAction::None,
            Some(qr_payload) => ContractNextAction::ShowQr {
                qr_payload,
                expires_at: Some(r.expires_at),
            },
            None => ContractNextAction::WaitForApp {
                deadline: Some(r.expires_at),
            },
        };
    }
    out
}

// ----- the error catalogue --------------------------------------------------------------------

/// One error code and everything an adapter needs to answer it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorEntry {
    pub code: ErrorCode,
    pub http_status: u16,
    pub retryable: bool,
    /// A mutating call that failed with it may still have taken effect at ANCV.
    pub outcome_unknown: bool,
    pub message_fr: String,
    pub message_en: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorCatalogue {
    pub errors: Vec<ErrorEntry>,
}

pub fn error_catalogue() -> ErrorCatalogue {
    ErrorCatalogue {
        errors: ErrorCode::ALL
            .iter()
            .map(|&code| {
                let (fr, en) = code.messages();
                ErrorEntry {
                    code,
                    http_status: code.http_status(),
                    retryable: code.retryable(),
                    outcome_unknown: code.outcome_unknown(),
                    message_fr: fr.into(),
                    message_en: en.into(),
                }
            })
            .collect(),
    }
}

// ----- request bodies -------------------------------------------------------------------------

/// `parse_request`: one body of the contract, as received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParseRequestInput {
    pub operation: Operation,
    pub body: String,
}

/// The contract's operations that take a JSON body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    /// §1 `POST /payments`.
    CreatePayment,
    /// §2 `POST /back-office/payments`.
    BackOfficePayment,
    /// §2 `POST /payment-requests`.
    CreatePaymentRequest,
    /// §2 `POST /payments/{id}/refund`.
    Refund,
    /// §2 `POST /payment-requests/{id}/finalise`.
    Finalise,
    /// §2 `POST /payments/{id}/cancel-by-reference`.
    CancelByReference,
}

impl Operation {
    pub const ALL: [Operation; 6] = [
        Operation::CreatePayment,
        Operation::BackOfficePayment,
        Operation::CreatePaymentRequest,
        Operation::Refund,
        Operation::Finalise,
        Operation::CancelByReference,
    ];
}

/// §1 `POST /payments`, checked. An amount sent by the browser is ignored: the order says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShopperPaymentBody {
    pub order_ref: String,
    pub mode: PaymentMode,
    /// Normalised (lower-cased e-mail or 11 digits); only for mode `identifier`.
    pub beneficiary: Option<String>,
    pub beneficiary_masked: Option<String>,
    pub attempt: String,
}

/// §2 `POST /back-office/payments`, checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackOfficePaymentBody {
    pub order_ref: String,
    pub amount_cents: Option<Amount>,
    pub channel: Channel,
    pub mode: PaymentMode,
    pub beneficiary: Option<String>,
    pub beneficiary_masked: Option<String>,
    pub attempt: String,
    pub label: Option<String>,
    /// A pre-reservation (`deferred`): authorized now, captured by the merchant later.
    pub capture: CaptureChoice,
}

/// When a payment request's money is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaptureChoice {
    Immediate,
    Deferred,
}

impl CaptureChoice {
    pub fn mode(self) -> CaptureMode {
        match self {
            CaptureChoice::Immediate => CaptureMode::Normal,
            CaptureChoice::Deferred => CaptureMode::Deferred,
        }
    }
}

/// §2 `POST /payment-requests`, checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRequestBody {
    pub order_ref: String,
    pub amount_cents: Option<Amount>,
    pub delivery: DeliveryKind,
    pub email: Option<String>,
    pub expires_in_s: Option<u32>,
    pub capture: CaptureChoice,
    pub attempt: String,
    pub label: Option<String>,
}

/// §2 `POST /payments/{id}/refund`, checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundBody {
    pub amount_cents: Option<Amount>,
    pub reason: Option<String>,
    pub attempt: String,
}

/// §2 `POST /payment-requests/{id}/finalise`, checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinaliseBody {
    pub amount_cents: Option<Amount>,
}

/// §2 `POST /payments/{id}/cancel-by-reference`, checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelByReferenceBody {
    pub transaction_id: String,
    pub password: Option<String>,
}

/// Any checked body (the export's output is the body itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ParsedRequest {
    CreatePayment(ShopperPaymentBody),
    BackOfficePayment(BackOfficePaymentBody),
    CreatePaymentRequest(PaymentRequestBody),
    Refund(RefundBody),
    Finalise(FinaliseBody),
    CancelByReference(CancelByReferenceBody),
}

/// One body value, read loosely so a wrong type gets this module's error naming the field
/// (not serde's). `null` reads as absent.
enum Loose {
    Text(String),
    Int(i64),
    Other,
}

impl<'de> Deserialize<'de> for Loose {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Loose;
            fn expecting(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_str<E>(self, v: &str) -> Result<Loose, E> {
                Ok(Loose::Text(v.into()))
            }
            fn visit_string<E>(self, v: String) -> Result<Loose, E> {
                Ok(Loose::Text(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Loose, E> {
                Ok(Loose::Int(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Loose, E> {
                Ok(i64::try_from(v).map(Loose::Int).unwrap_or(Loose::Other))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Loose, E> {
                Ok(Loose::Other)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Loose, E> {
                Ok(Loose::Other)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Loose, A::Error> {
                while a.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(Loose::Other)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<Loose, A::Error> {
                while a
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(Loose::Other)
            }
        }
        d.deserialize_any(V)
    }
}

type Field = Option<Loose>;

/// What every body is read as first: unknown keys are ignored (a browser may send more).
#[derive(Deserialize, Default)]
#[serde(default)]
struct RawBody {
    order_ref: Field,
    mode: Field,
    beneficiary: Field,
    attempt: Field,
    amount_cents: Field,
    channel: Field,
    delivery: Field,
    email: Field,
    expires_in_s: Field,
    capture: Field,
    reason: Field,
    label: Field,
    transaction_id: Field,
    password: Field,
}

fn bad(field: &str, fr: &str, en: &str) -> CvcoError {
    CvcoError::new(ErrorCode::InvalidRequest)
        .with_detail(fr, en)
        .with_field(field)
}

/// `capture`: `immediate` (the default) or `deferred`.
fn capture(v: Field) -> Result<CaptureChoice, CvcoError> {
    Ok(match choice(v, "capture", "immediate, deferred")? {
        Some(1) => CaptureChoice::Deferred,
        _ => CaptureChoice::Immediate,
    })
}

fn missing(field: &str) -> CvcoError {
    bad(field, "Champ obligatoire.", "Required field.")
}

fn text(v: Field, field: &str) -> Result<Option<String>, CvcoError> {
    match v {
        None => Ok(None),
        Some(Loose::Text(s)) => Ok(Some(s)),
        Some(_) => Err(bad(field, "Texte attendu.", "Text expected.")),
    }
}

fn required_text(v: Field, field: &str) -> Result<String, CvcoError> {
    text(v, field)?.ok_or_else(|| missing(field))
}

/// Optional free text (a reason, a label): at most `max` characters, no control characters.
fn note(v: Field, field: &str, max: usize) -> Result<Option<String>, CvcoError> {
    let Some(s) = text(v, field)? else {
        return Ok(None);
    };
    if s.chars().count() > max || s.chars().any(|c| c.is_control()) {
        return Err(bad(
            field,
            &format!("{max} caractères imprimables au plus."),
            &format!("At most {max} printable characters."),
        ));
    }
    Ok(Some(s))
}

fn amount(v: Field, field: &str) -> Result<Option<Amount>, CvcoError> {
    let not_cents = || {
        CvcoError::new(ErrorCode::InvalidAmount)
            .with_detail(
                "Entier positif de centimes attendu.",
                "Positive integer number of cents expected.",
            )
            .with_field(field)
    };
    match v {
        None => Ok(None),
        Some(Loose::Int(cents)) => {
            let a = Amount::from_i64(cents).map_err(|e| e.with_field(field))?;
            if a.is_zero() {
                return Err(not_cents());
            }
            Ok(Some(a))
        }
        Some(_) => Err(not_cents()),
    }
}

/// A client-generated token per user action: 1–64 printable ASCII characters.
pub fn check_attempt(attempt: &str) -> Result<(), CvcoError> {
    if attempt.is_empty() || attempt.len() > 64 || !attempt.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad(
            "attempt",
            "1 à 64 caractères ASCII imprimables, sans espace.",
            "1 to 64 printable ASCII characters, no space.",
        ));
    }
    Ok(())
}

/// An order reference: 1–64 of letters, digits, `-_./`.
pub fn check_order_ref(value: &str, field: &str) -> Result<(), CvcoError> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/'));
    if ok {
        Ok(())
    } else {
        Err(bad(
            field,
            "1 à 64 caractères : lettres, chiffres, - _ . /",
            "1 to 64 characters: letters, digits, - _ . /",
        ))
    }
}

fn order_ref(v: Field) -> Result<String, CvcoError> {
    let r = required_text(v, "order_ref")?;
    check_order_ref(&r, "order_ref")?;
    Ok(r)
}

fn attempt(v: Field) -> Result<String, CvcoError> {
    let a = required_text(v, "attempt")?;
    check_attempt(&a)?;
    check_idempotency_key(&a, "attempt")?;
    Ok(a)
}

/// One of `values` (comma-separated), as its index.
fn choice(v: Field, field: &str, values: &str) -> Result<Option<usize>, CvcoError> {
    let wrong = || {
        bad(
            field,
            &format!("Valeurs : {values}."),
            &format!("Values: {values}."),
        )
    };
    match v {
        None => Ok(None),
        Some(Loose::Text(s)) => values
            .split(", ")
            .position(|x| x == s)
            .map(Some)
            .ok_or_else(wrong),
        Some(_) => Err(wrong()),
    }
}

/// The beneficiary of mode `identifier` (required), refused with mode `qr`.
fn beneficiary(mode: PaymentMode, v: Field) -> Result<(Option<String>, Option<String>), CvcoError> {
    let raw = text(v, "beneficiary")?;
    match (mode, raw) {
        (PaymentMode::Qr, None) => Ok((None, None)),
        (PaymentMode::Qr, Some(_)) => Err(bad(
            "beneficiary",
            "Pas de bénéficiaire avec un QR code : il le scanne.",
            "No beneficiary with a QR code: they scan it.",
        )),
        (PaymentMode::Identifier, raw) => {
            let id = BeneficiaryId::parse(raw.as_deref().unwrap_or(""))
                .map_err(|e| e.with_field("beneficiary"))?;
            Ok((Some(id.as_str().into()), Some(id.masked())))
        }
    }
}

fn mode(v: Field) -> Result<PaymentMode, CvcoError> {
    Ok(match choice(v, "mode", "identifier, qr")? {
        Some(1) => PaymentMode::Qr,
        _ => PaymentMode::Identifier,
    })
}

/// Checks one request body of the contract: the typed body, or the error every adapter answers.
pub fn parse_request(operation: Operation, body: &str) -> Result<ParsedRequest, CvcoError> {
    // An empty body reads as `{}`, so a missing field is named rather than "EOF".
    let body = if body.trim().is_empty() { "{}" } else { body };
    if !body.trim_start().starts_with('{') {
        return Err(bad(
            "body",
            "Un objet JSON est attendu.",
            "A JSON object is expected.",
        ));
    }
    let b: RawBody = serde_json::from_str(body).map_err(|e| {
        let d = e.to_string();
        let d: String = d.chars().take(200).collect();
        bad(
            "body",
            &format!("JSON invalide : {d}"),
            &format!("Invalid JSON: {d}"),
        )
    })?;
    Ok(match operation {
        Operation::CreatePayment => {
            let order_ref = order_ref(b.order_ref)?;
            let mode = mode(b.mode)?;
            let attempt = attempt(b.attempt)?;
            let (beneficiary, beneficiary_masked) = beneficiary(mode, b.beneficiary)?;
            ParsedRequest::CreatePayment(ShopperPaymentBody {
                order_ref,
                mode,
                beneficiary,
                beneficiary_masked,
                attempt,
            })
        }
        Operation::BackOfficePayment => {
            let order_ref = order_ref(b.order_ref)?;
            let amount_cents = amount(b.amount_cents, "amount_cents")?;
            let channel = match choice(b.channel, "channel", "moto, proximity, kiosk")? {
                Some(1) => Channel::Proximity,
                Some(2) => Channel::Kiosk,
                _ => Channel::Moto,
            };
            let mode = mode(b.mode)?;
            let attempt = attempt(b.attempt)?;
            let (beneficiary, beneficiary_masked) = beneficiary(mode, b.beneficiary)?;
            ParsedRequest::BackOfficePayment(BackOfficePaymentBody {
                order_ref,
                amount_cents,
                channel,
                mode,
                beneficiary,
                beneficiary_masked,
                attempt,
                label: note(b.label, "label", 200)?,
                capture: capture(b.capture)?,
            })
        }
        Operation::CreatePaymentRequest => {
            let order_ref = order_ref(b.order_ref)?;
            let amount_cents = amount(b.amount_cents, "amount_cents")?;
            let delivery = match choice(b.delivery, "delivery", "email, qr")? {
                Some(0) => DeliveryKind::Email,
                Some(_) => DeliveryKind::Qr,
                None => return Err(missing("delivery")),
            };
            let email = match (delivery, text(b.email, "email")?) {
                (DeliveryKind::Email, None) => return Err(missing("email")),
                // The error says what is wrong with the address (no "@", no domain...).
                (DeliveryKind::Email, Some(e)) => {
                    match crate::beneficiary::parse_email_address(&e) {
                        Ok(e) => Some(e),
                        Err(err) => return Err(err.with_field("email")),
                    }
                }
                (DeliveryKind::Qr, _) => None,
            };
            let expires_in_s = match b.expires_in_s {
                None => None,
                Some(v) => Some(
                    Some(v)
                        .and_then(|v| match v {
                            Loose::Int(s) if (60..=30 * 24 * 3600).contains(&s) => Some(s),
                            _ => None,
                        })
                        .ok_or_else(|| {
                            bad(
                                "expires_in_s",
                                "Entre 60 s et 30 jours.",
                                "Between 60 s and 30 days.",
                            )
                        })? as u32,
                ),
            };
            let capture = capture(b.capture)?;
            ParsedRequest::CreatePaymentRequest(PaymentRequestBody {
                order_ref,
                amount_cents,
                delivery,
                email,
                expires_in_s,
                capture,
                attempt: attempt(b.attempt)?,
                label: note(b.label, "label", 200)?,
            })
        }
        Operation::Refund => ParsedRequest::Refund(RefundBody {
            amount_cents: amount(b.amount_cents, "amount_cents")?,
            reason: note(b.reason, "reason", 200)?,
            attempt: attempt(b.attempt)?,
        }),
        Operation::Finalise => ParsedRequest::Finalise(FinaliseBody {
            amount_cents: amount(b.amount_cents, "amount_cents")?,
        }),
        Operation::CancelByReference => {
            let transaction_id = required_text(b.transaction_id, "transaction_id")?;
            crate::plugin_api::check_object_id(&transaction_id, "transaction_id")?;
            ParsedRequest::CancelByReference(CancelByReferenceBody {
                transaction_id,
                password: note(b.password, "password", 128)?,
            })
        }
    })
}

// ----- notifications --------------------------------------------------------------------------

/// What a host dedups a notification on, with its `sequence`: the ANCV object it is about.
pub fn object_key(n: &Notification) -> String {
    match (&n.transaction_id, &n.pre_transaction_id) {
        (Some(t), _) => format!("transaction:{t}"),
        (None, Some(p)) => format!("pre_transaction:{p}"),
        (None, None) => format!("order:{}", n.merchant_order_id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(min: u64) -> MerchantSettings {
        MerchantSettings {
            min_amount_cents: Amount::from_cents(min).unwrap(),
            ..MerchantSettings::default()
        }
    }

    fn order(total: u64, remaining: u64) -> CheckoutInput {
        CheckoutInput {
            order_ref: "CMD-1".into(),
            order_total_cents: Amount::from_cents(total).unwrap(),
            order_remaining_cents: Amount::from_cents(remaining).unwrap(),
            currency: euro(),
            payable: true,
            modes: vec![],
            cvco_authorized: false,
        }
    }

    #[test]
    fn checkout_offers_a_remainder_below_the_minimum_only_after_an_authorized_cvco_payment() {
        let mut s = settings(2000);
        s.remainder_min_cents = Some(Amount::from_cents(500).unwrap());
        let first = checkout(&s, order(1000, 1000));
        assert_eq!(
            first.ineligible_reason.unwrap().code,
            ErrorCode::AmountBelowMinimum
        );
        let chained = CheckoutInput {
            cvco_authorized: true,
            ..order(4000, 1000)
        };
        assert!(checkout(&s, chained.clone()).eligible);
        let too_small = CheckoutInput {
            cvco_authorized: true,
            ..order(4000, 400)
        };
        assert!(!checkout(&s, too_small).eligible);
        s.remainder_min_cents = None;
        let c = checkout(&s, chained);
        assert_eq!(
            c.ineligible_reason.unwrap().code,
            ErrorCode::AmountBelowMinimum
        );
        // An adapter that does not say leaves the field out: the merchant's minimum.
        let i: CheckoutInput = serde_json::from_str(
            r#"{"order_ref":"CMD-1","order_total_cents":4000,"order_remaining_cents":1000}"#,
        )
        .unwrap();
        assert!(!i.cvco_authorized);
    }

    #[test]
    fn checkout_follows_the_merchants_minimum_not_a_constant() {
        let c = checkout(&settings(2000), order(5000, 1500));
        assert!(!c.eligible);
        assert_eq!(
            c.ineligible_reason.unwrap().code,
            ErrorCode::AmountBelowMinimum
        );
        let c = checkout(&settings(1000), order(5000, 1500));
        assert!(c.eligible, "{:?}", c.ineligible_reason);
        assert_eq!(c.min_amount_cents.cents(), 1000);
        assert_eq!(c.modes, vec![PaymentMode::Identifier]);
    }

    #[test]
    fn checkout_refuses_paid_unpayable_and_foreign_orders_in_that_order() {
        let code = |i: CheckoutInput| checkout(&settings(2000), i).ineligible_reason.unwrap().code;
        assert_eq!(code(order(5000, 0)), ErrorCode::IllegalTransition);
        let mut closed = order(5000, 5000);
        closed.payable = false;
        assert_eq!(code(closed), ErrorCode::IllegalTransition);
        let mut dollars = order(5000, 0);
        dollars.currency = "USD".into();
        assert_eq!(code(dollars), ErrorCode::CurrencyNotSupported);
    }

    fn facts() -> RenderPaymentInput {
        RenderPaymentInput {
            payment_id: "pay_1".into(),
            order_ref: "CMD-1".into(),
            mode: PaymentMode::Identifier,
            order_total_cents: Amount::from_cents(5000).unwrap(),
            order_remaining_cents: Amount::from_cents(5000).unwrap(),
            sequence: 1,
            created_at: Timestamp(1_000),
            updated_at: Timestamp(2_000),
            events_url: "/cvco/v1/payments/pay_1/events".into(),
            beneficiary_masked: None,
            request_id: None,
            channel: None,
            payment: None,
            request: None,
            amount_cents: Some(Amount::from_cents(5000).unwrap()),
            error: None,
            capture_window_s: None,
        }
    }

    #[test]
    fn a_payment_without_answer_is_unknown_and_never_final() {
        let p = render_payment(facts());
        assert_eq!(p.status, UNKNOWN);
        assert!(!p.is_final);
        assert_eq!(
            p.next_action,
            ContractNextAction::WaitForApp { deadline: None }
        );
        assert_eq!(p.transaction_id, None);
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(
            v["next_action"],
            serde_json::json!({"type": "wait_for_app", "deadline": null})
        );
    }

    #[test]
    fn a_refused_replay_is_failed_with_its_error() {
        let mut f = facts();
        f.error = Some(CvcoError::new(ErrorCode::BeneficiaryUnknown));
        let p = render_payment(f);
        assert_eq!(p.status, "failed");
        assert!(p.is_final);
        assert_eq!(p.error.unwrap().code, ErrorCode::BeneficiaryUnknown);
    }

    #[test]
    fn an_unpaid_qr_request_shows_its_code_until_it_expires() {
        let mut f = facts();
        f.request = Some(RequestFacts {
            status: NormalizedStatus::AwaitingBeneficiary,
            expires_at: Timestamp(9_000),
            qr_payload: Some("cvco:pay?v=1".into()),
        });
        let p = render_payment(f.clone());
        assert_eq!(p.status, "awaiting_beneficiary");
        assert!(matches!(p.next_action, ContractNextAction::ShowQr { .. }));
        f.request.as_mut().unwrap().status = NormalizedStatus::Expired;
        let p = render_payment(f);
        assert!(p.is_final);
        assert_eq!(p.next_action, ContractNextAction::None);
    }

    #[test]
    fn every_payment_key_is_always_present() {
        let v = serde_json::to_value(render_payment(facts())).unwrap();
        for key in [
            "payment_id",
            "order_ref",
            "amount_cents",
            "currency",
            "mode",
            "channel",
            "status",
            "final",
            "authorized_cents",
            "remaining_cents",
            "refunded_cents",
            "captured_cents",
            "capture",
            "order_total_cents",
            "order_remaining_cents",
            "beneficiary_masked",
            "deadline",
            "next_action",
            "ancv_state",
            "ancv_label_fr",
            "ancv_label_en",
            "abort_reason",
            "transaction_id",
            "request_id",
            "authorizations",
            "refunds",
            "error",
            "sequence",
            "created_at",
            "updated_at",
            "events_url",
        ] {
            assert!(v.get(key).is_some(), "{key}");
        }
    }

    #[test]
    fn the_catalogue_covers_every_code_with_the_same_rules_as_core() {
        let c = error_catalogue();
        assert_eq!(c.errors.len(), ErrorCode::ALL.len());
        let internal = c
            .errors
            .iter()
            .find(|e| e.code == ErrorCode::Internal)
            .unwrap();
        assert!(internal.retryable);
        assert_eq!(internal.http_status, 500);
        let protocol = c
            .errors
            .iter()
            .find(|e| e.code == ErrorCode::UpstreamProtocol)
            .unwrap();
        assert!(protocol.outcome_unknown && !protocol.retryable);
    }

    fn field_of(op: Operation, body: &str) -> (ErrorCode, Option<String>) {
        let e = parse_request(op, body).unwrap_err();
        (e.code, e.field)
    }

    #[test]
    fn shopper_bodies_name_the_field_at_fault() {
        use Operation::CreatePayment as C;
        assert_eq!(field_of(C, "").1.as_deref(), Some("order_ref"));
        assert_eq!(field_of(C, "[1]").1.as_deref(), Some("body"));
        assert_eq!(field_of(C, "{bad").1.as_deref(), Some("body"));
        assert_eq!(
            field_of(C, r#"{"order_ref":"A","attempt":"x"}"#),
            (ErrorCode::InvalidBeneficiary, Some("beneficiary".into()))
        );
        let long = "x".repeat(65);
        assert_eq!(
            field_of(
                C,
                &format!(r#"{{"order_ref":"A","attempt":"{long}","beneficiary":"a@b.fr"}}"#)
            )
            .1
            .as_deref(),
            Some("attempt")
        );
        assert_eq!(
            field_of(C, r#"{"order_ref":"A","attempt":"x","mode":"card"}"#)
                .1
                .as_deref(),
            Some("mode")
        );
        let ok = parse_request(
            C,
            r#"{"order_ref":"A","attempt":"x","beneficiary":" B@Sandbox.cvco.test ","amount_cents":1}"#,
        )
        .unwrap();
        let ParsedRequest::CreatePayment(b) = ok else {
            panic!()
        };
        assert_eq!(b.beneficiary.as_deref(), Some("b@sandbox.cvco.test"));
        assert_eq!(b.mode, PaymentMode::Identifier);
    }

    #[test]
    fn back_office_bodies_check_amounts_and_choices() {
        assert_eq!(
            field_of(Operation::Refund, r#"{"attempt":"r1","amount_cents":-5}"#)
                .1
                .as_deref(),
            Some("amount_cents")
        );
        assert_eq!(
            field_of(Operation::Refund, "{}").1.as_deref(),
            Some("attempt")
        );
        assert_eq!(
            field_of(
                Operation::CreatePaymentRequest,
                r#"{"order_ref":"A","attempt":"a","delivery":"email"}"#
            )
            .1
            .as_deref(),
            Some("email")
        );
        let ok = parse_request(
            Operation::CreatePaymentRequest,
            r#"{"order_ref":"A","attempt":"a","delivery":"qr","capture":"deferred","amount_cents":4500}"#,
        )
        .unwrap();
        let ParsedRequest::CreatePaymentRequest(r) = ok else {
            panic!()
        };
        assert_eq!(r.capture.mode(), CaptureMode::Deferred);
        // Direct MOTO and counter payments can be pre-reservations too (000 §4.3.2).
        let bo = |capture: &str| {
            parse_request(
                Operation::BackOfficePayment,
                &format!(
                    r#"{{"order_ref":"A","attempt":"a","channel":"proximity","mode":"qr"{capture}}}"#
                ),
            )
        };
        for (capture, want) in [
            ("", CaptureChoice::Immediate),
            (r#","capture":"immediate""#, CaptureChoice::Immediate),
            (r#","capture":"deferred""#, CaptureChoice::Deferred),
        ] {
            let Ok(ParsedRequest::BackOfficePayment(b)) = bo(capture) else {
                panic!("{capture}")
            };
            assert_eq!(b.capture, want, "{capture}");
        }
        assert_eq!(
            bo(r#","capture":"later""#).unwrap_err().field.as_deref(),
            Some("capture")
        );
        assert_eq!(
            field_of(
                Operation::BackOfficePayment,
                r#"{"order_ref":"A","attempt":"a","channel":"ecommerce"}"#
            )
            .1
            .as_deref(),
            Some("channel")
        );
    }
}
