//! The JSON contract of the Extism plugin (`cvco_plugin.wasm`): the input and output of every
//! export, shared by the plugin, the hosts (test host, reference backend) and the widget.
//!
//! Every export takes one JSON document and answers one JSON document, always of the form
//! `{"ok": <output>}` or `{"error": <CvcoError>}` ([`Reply`]), so a host tells a typed refusal from
//! an Extism-level failure (trap, timeout) without parsing messages. Inputs reject unknown fields:
//! a misspelt optional field on a money path is an error, not a silent default.
//!
//! Time: the plugin has no clock. Every export that needs "now" takes an optional `now`
//! (RFC 3339); without it the plugin uses the acquisition server's HTTP `Date` header.

use crate::amount::Amount;
use crate::error::{CvcoError, ErrorCode};
use crate::lifecycle::{
    summarize, AbortReason, CaptureMode, NormalizedStatus, PreTransactionState, StatusSummary,
    TransactionState,
};
use crate::shop::{Channel, OrderFacts};
use crate::time::{Date, Timestamp};
use crate::wire::{self, DailyTotal, Payer, RemittanceStatement};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Bumped when an export's input or output changes incompatibly.
pub const PLUGIN_API_VERSION: u32 = 1;

/// Largest input document an export accepts; anything bigger is refused before parsing.
pub const MAX_INPUT_BYTES: usize = 256 * 1024;

/// The envelope of every export's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply<T> {
    Ok(T),
    Error(CvcoError),
}

impl<T> Reply<T> {
    pub fn into_result(self) -> Result<T, CvcoError> {
        match self {
            Reply::Ok(v) => Ok(v),
            Reply::Error(e) => Err(e),
        }
    }
}

impl<T> From<Result<T, CvcoError>> for Reply<T> {
    fn from(r: Result<T, CvcoError>) -> Self {
        match r {
            Ok(v) => Reply::Ok(v),
            Err(e) => Reply::Error(e),
        }
    }
}

/// An input that carries nothing (`{}`), for exports that need no input.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

/// One export of the plugin: its public name and its JSON input and output, so the plugin's
/// dispatch and a Rust host's calls (`call::<exports::CreatePayment>(&input)`) name it once.
pub trait Export {
    const NAME: &'static str;
    type Input: Serialize;
    type Output: Serialize;
}

macro_rules! export_catalogue {
    ($($ty:ident = $name:literal: $input:ty => $output:ty;)*) => {
        /// One unit type per export (see [`Export`]).
        pub mod exports {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[doc = concat!("The `", $name, "` export.")]
                pub struct $ty;
                impl Export for $ty {
                    const NAME: &'static str = $name;
                    type Input = $input;
                    type Output = $output;
                }
            )*
        }

        /// The exports, by their public names, in catalogue order.
        pub const FUNCTIONS: &[&str] = &[$($name),*];
    };
}

export_catalogue! {
    Capabilities = "capabilities": Empty => crate::plugin_api::Capabilities;
    ValidateBeneficiary = "validate_beneficiary": ValidateBeneficiaryInput => ValidatedBeneficiary;
    CreatePayment = "create_payment": CreatePaymentInput => Payment;
    RequestAuthorization = "request_authorization": RequestAuthorizationInput => Payment;
    GetPayment = "get_payment": PaymentIdInput => Payment;
    CapturePayment = "capture_payment": CapturePaymentInput => Payment;
    CancelPayment = "cancel_payment": CancelPaymentInput => Payment;
    RefundPayment = "refund_payment": RefundPaymentInput => Payment;
    CreatePaymentRequest = "create_payment_request": CreatePaymentRequestInput => PaymentRequest;
    GetPaymentRequest = "get_payment_request": PaymentRequestIdInput => PaymentRequest;
    CancelPaymentRequest = "cancel_payment_request": PaymentRequestIdInput => PaymentRequest;
    VerifyNotification = "verify_notification": VerifyNotificationInput => crate::signature::VerifiedNotification;
    ListPayments = "list_payments": ListPaymentsInput => PaymentList;
    DailyTotals = "daily_totals": DailyTotalsInput => DailyReport;
    RenderQr = "render_qr": RenderQrInput => RenderedQr;
    CheckConnection = "check_connection": CheckConnectionInput => ConnectionStatus;
    Checkout = "checkout": crate::contract::CheckoutInput => crate::contract::Checkout;
    RenderPayment = "render_payment": crate::contract::RenderPaymentInput => crate::contract::ContractPayment;
    ErrorCatalogue = "error_catalogue": Empty => crate::contract::ErrorCatalogue;
    ParseRequest = "parse_request": crate::contract::ParseRequestInput => crate::contract::ParsedRequest;
}

/// `check_connection`: the host's start-up check (configuration, allowed host, credentials).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckConnectionInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub now: Option<Timestamp>,
}

/// What `check_connection` proved: the server answered and took the credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionStatus {
    pub ok: bool,
    pub api_base_url: String,
    pub shop_id: String,
    /// The server's `Date`, when the host exposes response headers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_time: Option<Timestamp>,
}

/// The text an Extism runtime gives when the manifest's `allowed_hosts` refuses the plugin's
/// request (the plugin traps and cannot answer itself): hosts match it to report a
/// configuration error instead of a retryable transport failure.
pub const HOST_NOT_ALLOWED_MARKER: &str = "is not allowed";

/// One manifest configuration key the plugin reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigKey {
    pub key: String,
    /// Needed by every export that talks to the acquisition server (or verifies notifications).
    pub required: bool,
    /// Never logged, never returned.
    pub secret: bool,
    /// Set in the host's manifest config for this plugin instance.
    pub present: bool,
    pub description: String,
}

/// `(key, required, secret, description)` of every configuration key.
pub const CONFIG_KEYS: &[(&str, bool, bool, &str)] = &[
    ("api_base_url", true, false, "Base URL of the acquisition server, e.g. https://host:port (no trailing path)."),
    ("shop_id", true, false, "The reception point's shopId."),
    ("client_id", true, false, "OAuth client id of the merchant."),
    ("client_secret", true, true, "OAuth client secret of the merchant."),
    ("notification_secret", false, true, "Secret that signs notifications; required by verify_notification."),
    ("min_amount_cents", false, false, "Smallest amount accepted, checked before any call (default 2000)."),
    ("remainder_min_cents", false, false, "Lowest amount of a chained payment for an order's remainder after an authorized CVCo payment, at most min_amount_cents (default: min_amount_cents)."),
    ("adjustable", false, false, "Default for create_payment's adjustable: true or false (default: the shop's setting)."),
    ("authorization_timeout_s", false, false, "Expected time for the beneficiary to answer, 1..3600 (default 180); used when the server gives no deadline."),
    ("request_timeout_ms", false, false, "Budget of one export call; the host sets it as the manifest timeout_ms (default 10000)."),
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    pub plugin: String,
    pub version: String,
    pub api_version: u32,
    pub channels: Vec<Channel>,
    pub functions: Vec<String>,
    pub config_keys: Vec<ConfigKey>,
}

/// `validate_beneficiary`: typed (`scanned: false`) or scanned from the app's barcode / QR code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidateBeneficiaryInput {
    pub input: String,
    #[serde(default)]
    pub scanned: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BeneficiaryKind {
    Email,
    CvConnectId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatedBeneficiary {
    pub kind: BeneficiaryKind,
    /// Normalised: lower-cased e-mail or the 11 digits.
    pub value: String,
    /// For receipts and logs.
    pub masked: String,
}

impl From<&crate::BeneficiaryId> for ValidatedBeneficiary {
    fn from(id: &crate::BeneficiaryId) -> Self {
        ValidatedBeneficiary {
            kind: match id {
                crate::BeneficiaryId::Email(_) => BeneficiaryKind::Email,
                crate::BeneficiaryId::CvConnectId(_) => BeneficiaryKind::CvConnectId,
            },
            value: id.as_str().into(),
            masked: id.masked(),
        }
    }
}

/// `validate_beneficiary` without the plugin: what the widget and native hosts run.
pub fn validate_beneficiary(
    input: &ValidateBeneficiaryInput,
) -> Result<ValidatedBeneficiary, CvcoError> {
    let id = if input.scanned {
        crate::BeneficiaryId::from_scan(&input.input)
    } else {
        crate::BeneficiaryId::parse(&input.input)
    };
    id.map(|id| ValidatedBeneficiary::from(&id))
        .map_err(|e| e.with_field("input"))
}

/// `create_payment`. With `beneficiary` the transaction is created and pushed to the app in ONE
/// upstream call, so a refused beneficiary (`beneficiary_unknown`, `beneficiary_blocked`) leaves
/// nothing at ANCV; without it the payment waits in `pending` with `next_action:
/// collect_beneficiary` (then `request_authorization`). The `idempotency_key` covers the whole
/// call, beneficiary included: retrying with the same key and input (after a retryable error, or
/// from several callers at once) answers the same transaction, never a second one; the same key
/// with another input after a success is `idempotency_conflict`. After a refusal nothing was
/// recorded under the key, so a corrected beneficiary may be sent with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreatePaymentInput {
    /// The merchant's reference (order, basket, file), 1–64 characters.
    pub order_ref: String,
    pub amount_cents: i64,
    pub channel: Channel,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beneficiary: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adjustable: Option<bool>,
    /// 1–128 printable ASCII characters, unique per payment attempt.
    pub idempotency_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture_mode: Option<CaptureMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub now: Option<Timestamp>,
    /// The order this payment is for, as the host knows it: a chained payment for exactly its
    /// rest after an authorized CVCo payment may go down to `remainder_min_cents`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<OrderFacts>,
}

/// `request_authorization`: push an existing `pending` payment to a beneficiary's app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestAuthorizationInput {
    pub payment_id: String,
    pub beneficiary: String,
    /// Sent as `Idempotency-Key`: a retry after a lost answer (or a concurrent duplicate) with the
    /// same key and beneficiary answers the same payment. Without it, a repeat that finds the
    /// payment already pushed answers the retryable `payment_in_progress`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub now: Option<Timestamp>,
}

/// `get_payment`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentIdInput {
    pub payment_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub now: Option<Timestamp>,
}

/// `capture_payment` (DEFERRED capture mode only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapturePaymentInput {
    pub payment_id: String,
    /// Everything authorized when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_cents: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub now: Option<Timestamp>,
}

/// `cancel_payment`: before capture, or a captured payment not yet remitted. Cancelling an
/// already cancelled payment answers the payment (the retry of a lost answer is not an error).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancelPaymentInput {
    pub payment_id: String,
    /// The shop's cancellation password, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub now: Option<Timestamp>,
}

/// `refund_payment`: full when `amount_cents` is absent, else partial.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefundPaymentInput {
    pub payment_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_cents: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub idempotency_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub now: Option<Timestamp>,
}

/// What the host does next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum NextAction {
    /// The beneficiary decides in the app: poll `get_payment` (or wait for a notification) until
    /// `final`, at the latest until `deadline`.
    WaitForApp {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        deadline: Option<Timestamp>,
    },
    /// Show this payment QR code (counter, kiosk) until `expires_at`.
    ShowQr {
        payload: String,
        svg: String,
        expires_at: Timestamp,
    },
    /// Ask for the beneficiary's e-mail or CV Connect id (or scan it), then `request_authorization`.
    CollectBeneficiary,
    /// Nothing to wait for.
    None,
}

/// A payment (an ANCV transaction) as hosts see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    /// The ANCV transaction id.
    pub id: String,
    pub order_ref: String,
    pub amount_cents: Amount,
    pub currency: String,
    pub channel: Channel,
    pub adjustable: bool,
    pub capture_mode: CaptureMode,
    pub status: NormalizedStatus,
    #[serde(rename = "final")]
    pub is_final: bool,
    pub authorized_cents: Amount,
    /// What is left to pay by another means ("reste dû").
    pub remaining_cents: Amount,
    pub captured_cents: Amount,
    pub refunded_cents: Amount,
    /// ANCV's own state and its wording.
    pub ancv_state: TransactionState,
    pub ancv_label_fr: String,
    pub ancv_label_en: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort_reason: Option<AbortReason>,
    /// The payers and their authorizations (numbers printed on receipts).
    pub payers: Vec<Payer>,
    pub refunds: Vec<wire::Refund>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_request_id: Option<String>,
    pub next_action: NextAction,
}

impl Payment {
    pub fn from_transaction(t: &wire::Transaction) -> Payment {
        let s = t.summary();
        let next_action = match t.state {
            TransactionState::Created => NextAction::CollectBeneficiary,
            TransactionState::Processing | TransactionState::Authorizing => {
                NextAction::WaitForApp {
                    deadline: t.expires_at,
                }
            }
            _ => NextAction::None,
        };
        Payment {
            id: t.id.clone(),
            order_ref: t.merchant_order_id.clone(),
            amount_cents: t.amount_cents,
            currency: t.currency.clone(),
            channel: t.channel,
            adjustable: t.adjustable,
            capture_mode: t.capture_mode,
            status: s.status,
            is_final: s.is_final,
            authorized_cents: s.authorized_cents,
            remaining_cents: s.remaining_cents,
            captured_cents: t.captured_cents,
            refunded_cents: t.refunded_cents,
            ancv_state: t.state,
            ancv_label_fr: t.state.status_label("fr", t.adjustable).into(),
            ancv_label_en: t.state.status_label("en", t.adjustable).into(),
            abort_reason: t.abort_reason,
            payers: t.payers.clone(),
            refunds: t.refunds.clone(),
            created_at: t.created_at,
            updated_at: t.updated_at,
            expires_at: t.expires_at,
            payment_request_id: t.pre_transaction_id.clone(),
            next_action,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryKind {
    /// ANCV e-mails the request to the beneficiary (MOTO with delay).
    Email,
    /// The merchant shows a payment QR code (counter, kiosk).
    Qr,
}

/// `create_payment_request`. `channel` defaults to `moto` for e-mail and `proximity` for QR.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreatePaymentRequestInput {
    pub order_ref: String,
    pub amount_cents: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<Channel>,
    pub delivery: DeliveryKind,
    /// Required with `delivery: "email"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_s: Option<u32>,
    /// Required: a request (an e-mail, a QR) is never created twice by a retry.
    pub idempotency_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adjustable: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture_mode: Option<CaptureMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub now: Option<Timestamp>,
    /// The order this payment is for, as the host knows it: a chained payment for exactly its
    /// rest after an authorized CVCo payment may go down to `remainder_min_cents`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<OrderFacts>,
}

/// `get_payment_request` and `cancel_payment_request`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentRequestIdInput {
    pub request_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub now: Option<Timestamp>,
}

/// A payment request (an ANCV pre-transaction) and, once a beneficiary paid, its payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRequest {
    pub id: String,
    pub order_ref: String,
    pub amount_cents: Amount,
    pub channel: Channel,
    pub delivery: DeliveryKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub status: NormalizedStatus,
    #[serde(rename = "final")]
    pub is_final: bool,
    pub authorized_cents: Amount,
    pub remaining_cents: Amount,
    pub refunded_cents: Amount,
    pub ancv_state: PreTransactionState,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    /// What the payment QR code encodes (`cvco:pay?...`).
    pub qr_payload: String,
    /// The link the e-mail carries.
    pub payment_url: String,
    /// SVG rendering of `qr_payload`, for `delivery: "qr"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub svg: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment: Option<Payment>,
    pub next_action: NextAction,
}

/// The normalised status of a payment request, given its latest transaction if any.
/// A declined attempt puts the request back to CREATED: it awaits a beneficiary again, not `declined`.
pub fn request_summary(
    state: PreTransactionState,
    amount: Amount,
    transaction: Option<&wire::Transaction>,
) -> StatusSummary {
    use PreTransactionState as P;
    let plain = |status: NormalizedStatus| StatusSummary {
        status,
        authorized_cents: Amount::ZERO,
        remaining_cents: amount,
        refunded_cents: Amount::ZERO,
        is_final: status.is_final(),
    };
    match (state, transaction) {
        // Nobody has paid yet: the beneficiary is awaited (PROTOCOL.md's word for a request).
        (P::Created, _) => plain(NormalizedStatus::AwaitingBeneficiary),
        (P::Cancelled, _) => plain(NormalizedStatus::Cancelled),
        (P::Expired, _) => plain(NormalizedStatus::Expired),
        (P::Processing, None) => plain(NormalizedStatus::AwaitingBeneficiary),
        (P::Processing | P::Used, Some(t)) => summarize(
            t.state,
            t.abort_reason,
            amount,
            t.authorized_cents,
            t.refunded_cents,
        ),
        // USED without a readable transaction: paid, amount unknown here.
        (P::Used, None) => StatusSummary {
            status: NormalizedStatus::Authorized,
            authorized_cents: amount,
            remaining_cents: Amount::ZERO,
            refunded_cents: Amount::ZERO,
            is_final: true,
        },
    }
}

/// `verify_notification`: the raw body exactly as received, and the request headers (names are
/// case-insensitive). The host decides replays with the returned `event_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyNotificationInput {
    pub headers: BTreeMap<String, String>,
    pub body: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub now: Option<Timestamp>,
    /// Seconds of clock difference tolerated (default 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance_s: Option<i64>,
}

/// `list_payments`: every filter optional, combined with AND; newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ListPaymentsInput {
    /// Created at or after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Timestamp>,
    /// Created before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Timestamp>,
    /// ANCV state ("VALIDATED", ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<TransactionState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_amount_cents: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_amount_cents: Option<u64>,
    /// Substring of the merchant reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_ref: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub now: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentList {
    pub items: Vec<Payment>,
    /// Matching payments in all pages.
    pub total: usize,
}

/// At most this many business days per `daily_totals` call (one statement read per day).
pub const MAX_TOTALS_DAYS: usize = 31;

/// `daily_totals`: business days `from..=to` (YYYY-MM-DD).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DailyTotalsInput {
    pub from: Date,
    pub to: Date,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub now: Option<Timestamp>,
}

/// Totals per business day (since the shop's closing hour) and ANCV's remittance statements, line
/// by line with the merchant's reference, for reconciliation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DailyReport {
    pub shop_id: String,
    pub closing_hour: u8,
    pub days: Vec<DailyTotal>,
    pub remittances: Vec<RemittanceStatement>,
}

impl DailyTotalsInput {
    /// The days asked for, or a typed error when the range is reversed or too long.
    pub fn days(&self) -> Result<Vec<Date>, CvcoError> {
        let bad = |fr: &str, en: &str| {
            CvcoError::new(ErrorCode::InvalidRequest)
                .with_detail(fr, en)
                .with_field("to")
        };
        if self.to < self.from {
            return Err(bad(
                "La date de fin précède la date de début.",
                "The end date is before the start date.",
            ));
        }
        let mut days = Vec::new();
        let mut d = self.from;
        while d <= self.to {
            if days.len() == MAX_TOTALS_DAYS {
                return Err(bad(
                    "31 jours au plus par appel.",
                    "At most 31 days per call.",
                ));
            }
            days.push(d);
            d = d.succ();
        }
        Ok(days)
    }
}

/// Longest payload `render_qr` accepts (a QR code holds at most 2953 bytes at level L).
pub const MAX_QR_PAYLOAD_BYTES: usize = 1024;

/// `render_qr`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenderQrInput {
    pub payload: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenderedQr {
    pub svg: String,
}

/// An idempotency key: 1–128 printable ASCII characters (it travels in an HTTP header).
pub fn check_idempotency_key(key: &str, field: &str) -> Result<(), CvcoError> {
    if key.is_empty() || key.len() > 128 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(CvcoError::new(ErrorCode::InvalidRequest)
            .with_detail(
                "Clé d'idempotence : 1 à 128 caractères ASCII imprimables, sans espace.",
                "Idempotency key: 1 to 128 printable ASCII characters, no space.",
            )
            .with_field(field));
    }
    Ok(())
}

/// An ANCV object id as the hosts pass it back: 1–64 of `[A-Za-z0-9_-]`, so it is safe in a path.
pub fn check_object_id(id: &str, field: &str) -> Result<(), CvcoError> {
    if id.is_empty()
        || id.len() > 64
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(CvcoError::new(ErrorCode::InvalidRequest)
            .with_detail(
                "Identifiant invalide (1 à 64 caractères : lettres, chiffres, - ou _).",
                "Invalid id (1 to 64 characters: letters, digits, - or _).",
            )
            .with_field(field));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shop::ShopId;

    fn tx(state: TransactionState, amount: u64, authorized: u64) -> wire::Transaction {
        let now = Timestamp(1_795_384_140_000);
        wire::Transaction {
            id: "tx_1".into(),
            shop_id: ShopId::parse("S1").unwrap(),
            merchant_order_id: "CMD-1".into(),
            amount_cents: Amount::from_cents(amount).unwrap(),
            currency: wire::eur(),
            channel: Channel::Ecommerce,
            adjustable: true,
            capture_mode: CaptureMode::Normal,
            state,
            abort_reason: None,
            created_at: now,
            updated_at: now,
            expires_at: Some(now.plus_secs(180)),
            payers: vec![],
            refunds: vec![],
            authorized_cents: Amount::from_cents(authorized).unwrap(),
            captured_cents: Amount::from_cents(authorized).unwrap(),
            refunded_cents: Amount::ZERO,
            pre_transaction_id: None,
            notification_url: None,
        }
    }

    #[test]
    fn reply_envelope_shape() {
        let ok: Reply<RenderedQr> = Reply::Ok(RenderedQr {
            svg: "<svg/>".into(),
        });
        assert_eq!(
            serde_json::to_string(&ok).unwrap(),
            r#"{"ok":{"svg":"<svg/>"}}"#
        );
        let err: Reply<RenderedQr> = Reply::Error(CvcoError::new(ErrorCode::InvalidRequest));
        let v = serde_json::to_value(&err).unwrap();
        assert_eq!(v["error"]["code"], "invalid_request");
        let back: Reply<RenderedQr> = serde_json::from_value(v).unwrap();
        assert_eq!(
            back.into_result().unwrap_err().code,
            ErrorCode::InvalidRequest
        );
    }

    #[test]
    fn payment_next_action_follows_state() {
        let p = Payment::from_transaction(&tx(TransactionState::Processing, 5000, 0));
        assert!(matches!(
            p.next_action,
            NextAction::WaitForApp { deadline: Some(_) }
        ));
        assert_eq!(p.status, NormalizedStatus::AwaitingBeneficiary);
        assert_eq!(p.ancv_label_fr, "Ajustement en cours");
        let mut fixed = tx(TransactionState::Processing, 5000, 0);
        fixed.adjustable = false;
        let p = Payment::from_transaction(&fixed);
        assert_eq!(
            (p.ancv_label_fr.as_str(), p.ancv_label_en.as_str()),
            ("Autorisation en cours", "Authorization in progress")
        );
        let p = Payment::from_transaction(&tx(TransactionState::Created, 5000, 0));
        assert_eq!(p.next_action, NextAction::CollectBeneficiary);
        let p = Payment::from_transaction(&tx(TransactionState::Validated, 5000, 3500));
        assert_eq!(p.status, NormalizedStatus::PartiallyAuthorized);
        assert_eq!(p.remaining_cents.cents(), 1500);
        assert_eq!(p.next_action, NextAction::None);
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["final"], true);
        assert_eq!(v["next_action"]["type"], "none");
    }

    #[test]
    fn request_summary_declined_attempt_awaits_a_beneficiary_again() {
        let a = Amount::from_cents(5000).unwrap();
        let declined = tx(TransactionState::Aborted, 5000, 0);
        let s = request_summary(PreTransactionState::Created, a, Some(&declined));
        assert_eq!(s.status, NormalizedStatus::AwaitingBeneficiary);
        assert!(!s.is_final);
        let paid = tx(TransactionState::Validated, 5000, 5000);
        let s = request_summary(PreTransactionState::Used, a, Some(&paid));
        assert_eq!(s.status, NormalizedStatus::Authorized);
        let s = request_summary(PreTransactionState::Expired, a, None);
        assert_eq!(s.status, NormalizedStatus::Expired);
    }

    #[test]
    fn inputs_reject_unknown_fields_and_wrong_types() {
        let ok: CreatePaymentInput = serde_json::from_str(
            r#"{"order_ref":"A","amount_cents":4550,"channel":"ecommerce","idempotency_key":"k1"}"#,
        )
        .unwrap();
        assert_eq!(ok.amount_cents, 4550);
        assert!(serde_json::from_str::<CreatePaymentInput>(
            r#"{"order_ref":"A","amount_cents":4550,"channel":"ecommerce","idempotency_key":"k1","adjustible":false}"#
        )
        .is_err());
        assert!(serde_json::from_str::<CreatePaymentInput>(
            r#"{"order_ref":"A","amount_cents":"45,50","channel":"ecommerce","idempotency_key":"k1"}"#
        )
        .is_err());
    }

    #[test]
    fn totals_range_limits() {
        let d = |s| Date::parse(s).unwrap();
        let input = |from, to| DailyTotalsInput {
            from: d(from),
            to: d(to),
            now: None,
        };
        assert_eq!(input("2026-02-27", "2026-03-02").days().unwrap().len(), 4);
        assert!(input("2026-03-02", "2026-02-27").days().is_err());
        assert!(input("2026-01-01", "2026-03-01").days().is_err());
        assert_eq!(input("2026-01-01", "2026-01-31").days().unwrap().len(), 31);
    }

    #[test]
    fn ids_and_keys() {
        assert!(check_object_id("tx_01ABC", "payment_id").is_ok());
        assert!(check_object_id("../admin", "payment_id").is_err());
        assert!(check_object_id("", "payment_id").is_err());
        assert!(check_idempotency_key("order-42-attempt-1", "idempotency_key").is_ok());
        assert!(check_idempotency_key("a b", "idempotency_key").is_err());
        assert!(check_idempotency_key(&"k".repeat(129), "idempotency_key").is_err());
    }

    #[test]
    fn validate_beneficiary_typed_and_scanned() {
        let typed = ValidateBeneficiaryInput {
            input: " Alice.Approve@Sandbox.CVCO.test ".into(),
            scanned: false,
        };
        let v = validate_beneficiary(&typed).unwrap();
        assert_eq!(v.kind, BeneficiaryKind::Email);
        assert_eq!(v.value, "alice.approve@sandbox.cvco.test");
        let scanned = ValidateBeneficiaryInput {
            input: "CVCO-ID:10000000001\r\n".into(),
            scanned: true,
        };
        assert_eq!(
            validate_beneficiary(&scanned).unwrap().kind,
            BeneficiaryKind::CvConnectId
        );
        let bad = ValidateBeneficiaryInput {
            input: "123".into(),
            scanned: false,
        };
        let e = validate_beneficiary(&bad).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidBeneficiary);
        assert_eq!(e.field.as_deref(), Some("input"));
    }
}
