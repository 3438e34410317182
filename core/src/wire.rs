//! The acquisition server's REST/JSON API, as the sandbox serves it and the plugin calls it.
//!
//! Paths (all under the server's base URL):
//! - `POST /oauth/token`: client-credentials token (form or JSON body).
//! - `POST /api/v1/transactions` (+ `Idempotency-Key`), `GET /api/v1/transactions` (filters),
//!   `GET /api/v1/transactions/{id}`, `POST .../{id}/authorizations`, `POST .../{id}/capture`,
//!   `POST .../{id}/cancel`, `POST .../{id}/refunds`.
//! - `POST /api/v1/pre-transactions`, `GET .../{id}`, `GET .../{id}/qrcode?format=svg|png`,
//!   `POST .../{id}/cancel`.
//! - `GET /api/v1/remittances?shop_id&date`, `GET /api/v1/totals?shop_id&from&to`.
//!
//! Amounts are integer cents; timestamps RFC 3339 UTC; states use ANCV's upper-case names.

use crate::amount::Amount;
use crate::error::{CvcoError, ErrorCode};
use crate::lifecycle::{
    summarize, AbortReason, CaptureMode, PreTransactionState, StatusSummary, TransactionState,
};
use crate::shop::{Channel, ShopId};
use crate::time::{Date, Timestamp};
use serde::{Deserialize, Serialize};

pub const API_PREFIX: &str = "/api/v1";
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRequest {
    pub grant_type: String,
    pub client_id: String,
    pub client_secret: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    /// Always "Bearer".
    pub token_type: String,
    /// Seconds of validity from issue.
    pub expires_in: u32,
    pub shop_id: ShopId,
}

/// Step 4 of the seeds' sequence, optionally merged with step 6 when `beneficiary` is given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateTransaction {
    pub shop_id: ShopId,
    /// The merchant's own reference (order, basket, file), shown on remittance statements.
    pub merchant_order_id: String,
    /// Signed so a negative amount is a typed error rather than a parse failure.
    pub amount_cents: i64,
    #[serde(default = "eur")]
    pub currency: String,
    pub channel: Channel,
    /// Whether the beneficiary may lower the amount; the shop's setting when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adjustable: Option<bool>,
    #[serde(default)]
    pub capture_mode: CaptureMode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_url: Option<String>,
    /// E-mail or CV Connect id: requests the authorization at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beneficiary: Option<String>,
}

pub fn eur() -> String {
    "EUR".to_string()
}

impl CreateTransaction {
    /// Checks what can be checked without the shop's settings.
    pub fn validate(&self) -> Result<Amount, CvcoError> {
        check_currency(&self.currency)?;
        check_reference(&self.merchant_order_id)?;
        Amount::from_i64(self.amount_cents).map_err(|e| e.with_field("amount_cents"))
    }
}

pub fn check_currency(currency: &str) -> Result<(), CvcoError> {
    if currency.eq_ignore_ascii_case("EUR") {
        Ok(())
    } else {
        Err(CvcoError::new(ErrorCode::CurrencyNotSupported).with_field("currency"))
    }
}

/// A merchant reference: 1–64 printable characters.
pub fn check_reference(reference: &str) -> Result<(), CvcoError> {
    let len = reference.chars().count();
    if len == 0 || len > 64 || reference.chars().any(|c| c.is_control()) {
        return Err(CvcoError::new(ErrorCode::InvalidRequest)
            .with_detail(
                "Référence marchand : 1 à 64 caractères imprimables.",
                "Merchant reference: 1 to 64 printable characters.",
            )
            .with_field("merchant_order_id"));
    }
    Ok(())
}

/// Step 6: ask the beneficiary to authorize.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestAuthorization {
    pub beneficiary: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CancelRequest {
    /// The merchant's cancellation password, when the shop set one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CaptureRequest {
    /// Defaults to everything authorized; may be lower, never higher.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_cents: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct RefundRequest {
    /// Defaults to everything not yet refunded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_cents: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One authorization given by a payer in the app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authorization {
    /// Authorization number, printed on receipts.
    pub number: String,
    /// "DEBIT".
    #[serde(rename = "type")]
    pub kind: String,
    pub amount_cents: Amount,
    pub validated_at: Timestamp,
    /// Holder's name as ANCV knows it ("J. Dupont").
    pub holder: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payer {
    /// The identifier the merchant sent, or the one that scanned the payment QR code.
    pub beneficiary: String,
    /// What the payer agreed to pay (after any adjustment).
    pub amount_cents: Amount,
    pub authorizations: Vec<Authorization>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    pub id: String,
    pub amount_cents: Amount,
    pub created_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    pub id: String,
    pub shop_id: ShopId,
    pub merchant_order_id: String,
    pub amount_cents: Amount,
    pub currency: String,
    pub channel: Channel,
    pub adjustable: bool,
    pub capture_mode: CaptureMode,
    pub state: TransactionState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort_reason: Option<AbortReason>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Deadline of the current step: the beneficiary's answer, or a deferred capture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    pub payers: Vec<Payer>,
    pub refunds: Vec<Refund>,
    /// Sum of the payers' authorizations.
    pub authorized_cents: Amount,
    /// What was captured (equal to authorized in NORMAL capture).
    pub captured_cents: Amount,
    pub refunded_cents: Amount,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_transaction_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification_url: Option<String>,
}

impl Transaction {
    /// The normalised merchant-facing status.
    pub fn summary(&self) -> StatusSummary {
        summarize(
            self.state,
            self.abort_reason,
            self.amount_cents,
            self.authorized_cents,
            self.refunded_cents,
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionList {
    pub items: Vec<Transaction>,
    pub total: usize,
}

/// Query string of `GET /api/v1/transactions`; every filter optional and combined with AND.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct TransactionFilter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<TransactionState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_amount_cents: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_amount_cents: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_order_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<usize>,
}

impl TransactionFilter {
    pub fn matches(&self, t: &Transaction) -> bool {
        self.from.is_none_or(|f| t.created_at >= f)
            && self.to.is_none_or(|to| t.created_at < to)
            && self.state.is_none_or(|s| t.state == s)
            && self
                .min_amount_cents
                .is_none_or(|m| t.amount_cents.cents() >= m)
            && self
                .max_amount_cents
                .is_none_or(|m| t.amount_cents.cents() <= m)
            && self
                .merchant_order_id
                .as_deref()
                .is_none_or(|r| t.merchant_order_id.contains(r))
    }
}

/// How a payment request reaches the beneficiary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Delivery {
    /// MOTO with delay: ANCV e-mails the request.
    Email { email: String },
    /// Counter or kiosk: the merchant shows a payment QR code.
    Qr,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatePreTransaction {
    pub shop_id: ShopId,
    pub merchant_order_id: String,
    pub amount_cents: i64,
    #[serde(default = "eur")]
    pub currency: String,
    pub channel: Channel,
    pub delivery: Delivery,
    /// Life of the request; the shop's default for the delivery when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_s: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adjustable: Option<bool>,
    /// DEFERRED makes it a pre-reservation: the merchant finalises (captures) it later.
    #[serde(default)]
    pub capture_mode: CaptureMode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification_url: Option<String>,
}

impl CreatePreTransaction {
    pub fn validate(&self) -> Result<Amount, CvcoError> {
        check_currency(&self.currency)?;
        check_reference(&self.merchant_order_id)?;
        if let Delivery::Email { email } = &self.delivery {
            match crate::BeneficiaryId::parse(email) {
                Ok(crate::BeneficiaryId::Email(_)) => {}
                _ => {
                    return Err(CvcoError::new(ErrorCode::InvalidBeneficiary)
                        .with_detail(
                            "Une adresse e-mail est attendue.",
                            "An e-mail address is expected.",
                        )
                        .with_field("delivery.email"))
                }
            }
        }
        Amount::from_i64(self.amount_cents).map_err(|e| e.with_field("amount_cents"))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreTransaction {
    pub id: String,
    pub shop_id: ShopId,
    pub merchant_order_id: String,
    pub amount_cents: Amount,
    pub currency: String,
    pub channel: Channel,
    pub delivery: Delivery,
    pub adjustable: bool,
    #[serde(default)]
    pub capture_mode: CaptureMode,
    pub state: PreTransactionState,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub expires_at: Timestamp,
    /// What the payment QR code encodes (see [`PaymentQr`]).
    pub qr_payload: String,
    /// The link the beneficiary follows from the e-mail.
    pub payment_url: String,
    /// The transaction the beneficiary's payment created, once there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification_url: Option<String>,
}

/// The payload of a merchant-shown payment QR code: `cvco:pay?v=1&pt=<id>&shop=<shop>&amount=<cents>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentQr {
    pub pre_transaction_id: String,
    pub shop_id: ShopId,
    pub amount_cents: Amount,
}

impl PaymentQr {
    pub fn payload(&self) -> String {
        format!(
            "cvco:pay?v=1&pt={}&shop={}&amount={}",
            self.pre_transaction_id,
            self.shop_id,
            self.amount_cents.cents()
        )
    }

    pub fn parse(payload: &str) -> Result<PaymentQr, CvcoError> {
        let bad = || {
            CvcoError::new(ErrorCode::InvalidRequest).with_detail(
                "QR code de paiement non reconnu.",
                "Payment QR code not recognised.",
            )
        };
        let query = payload.trim().strip_prefix("cvco:pay?").ok_or_else(bad)?;
        let (mut v, mut pt, mut shop, mut amount) = (None, None, None, None);
        for pair in query.split('&') {
            let (k, val) = pair.split_once('=').ok_or_else(bad)?;
            match k {
                "v" => v = Some(val),
                "pt" => pt = Some(val),
                "shop" => shop = Some(val),
                "amount" => amount = Some(val),
                _ => {}
            }
        }
        if v != Some("1") {
            return Err(bad());
        }
        let pt = pt
            .filter(|p| {
                !p.is_empty()
                    && p.len() <= 64
                    && p.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            })
            .ok_or_else(bad)?;
        Ok(PaymentQr {
            pre_transaction_id: pt.to_string(),
            shop_id: ShopId::parse(shop.ok_or_else(bad)?).map_err(|_| bad())?,
            amount_cents: Amount::from_cents(amount.ok_or_else(bad)?.parse().map_err(|_| bad())?)?,
        })
    }
}

/// What a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NotificationKind {
    #[serde(rename = "transaction.updated")]
    TransactionUpdated,
    #[serde(rename = "pre_transaction.updated")]
    PreTransactionUpdated,
}

/// The body ANCV posts to the merchant's notification URL ("service de réponse automatique").
/// A hint only: the merchant reads the status to learn the truth.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// Unique per event; the same id is re-sent on retries.
    pub id: String,
    #[serde(rename = "type")]
    pub kind: NotificationKind,
    pub created_at: Timestamp,
    pub shop_id: ShopId,
    pub merchant_order_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_transaction_id: Option<String>,
    /// The transaction's (or pre-transaction's) state when the event was emitted.
    pub state: String,
    /// Monotonic per object, so a receiver can tell an old event from a new one.
    pub sequence: u64,
}

/// One transaction on a remittance statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemittanceLine {
    pub transaction_id: String,
    pub merchant_order_id: String,
    pub channel: Channel,
    pub authorized_at: Timestamp,
    pub gross_cents: Amount,
    pub refunded_cents: Amount,
    pub fee_cents: Amount,
    pub net_cents: Amount,
}

/// ANCV's reimbursement statement for one shop and one business day (Connect form factor).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemittanceStatement {
    pub shop_id: ShopId,
    pub date: Date,
    /// "CONNECT": statements separate Classic (paper) from Connect.
    pub form_factor: String,
    /// Fee in basis points (250 = 2.5 %).
    pub fee_bps: u32,
    pub lines: Vec<RemittanceLine>,
    pub count: usize,
    pub gross_cents: Amount,
    pub refunded_cents: Amount,
    pub fee_cents: Amount,
    pub net_cents: Amount,
}

/// Totals of one business day (since the previous closing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DailyTotal {
    pub date: Date,
    /// Transactions with money authorized.
    pub count: usize,
    pub gross_cents: Amount,
    pub refunded_cents: Amount,
    pub net_cents: Amount,
    pub cancelled_count: usize,
    pub declined_count: usize,
    pub expired_count: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DailyTotals {
    pub shop_id: ShopId,
    pub closing_hour: u8,
    pub days: Vec<DailyTotal>,
}

/// Builds one statement line with the fee rounded per line, so lines add up to the total.
pub fn remittance_line(t: &Transaction, fee_bps: u32) -> Option<RemittanceLine> {
    if !matches!(
        t.state,
        TransactionState::Validated | TransactionState::Used
    ) {
        return None;
    }
    let authorized_at = t
        .payers
        .iter()
        .flat_map(|p| p.authorizations.iter().map(|a| a.validated_at))
        .max()
        .unwrap_or(t.updated_at);
    let gross = t.captured_cents;
    let kept = gross.saturating_sub(t.refunded_cents);
    let fee = kept.basis_points(fee_bps);
    Some(RemittanceLine {
        transaction_id: t.id.clone(),
        merchant_order_id: t.merchant_order_id.clone(),
        channel: t.channel,
        authorized_at,
        gross_cents: gross,
        refunded_cents: t.refunded_cents,
        fee_cents: fee,
        net_cents: kept.saturating_sub(fee),
    })
}

/// Sums lines into a statement.
pub fn remittance_statement(
    shop_id: ShopId,
    date: Date,
    fee_bps: u32,
    lines: Vec<RemittanceLine>,
) -> RemittanceStatement {
    let sum = |f: fn(&RemittanceLine) -> Amount| {
        lines
            .iter()
            .fold(Amount::ZERO, |acc, l| acc.saturating_add_amount(f(l)))
    };
    RemittanceStatement {
        shop_id,
        date,
        form_factor: "CONNECT".to_string(),
        fee_bps,
        count: lines.len(),
        gross_cents: sum(|l| l.gross_cents),
        refunded_cents: sum(|l| l.refunded_cents),
        fee_cents: sum(|l| l.fee_cents),
        net_cents: sum(|l| l.net_cents),
        lines,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payment_qr_round_trips_and_rejects_garbage() {
        let qr = PaymentQr {
            pre_transaction_id: "pt_01".into(),
            shop_id: ShopId::parse("SHOP-1").unwrap(),
            amount_cents: Amount::from_cents(4550).unwrap(),
        };
        assert_eq!(
            qr.payload(),
            "cvco:pay?v=1&pt=pt_01&shop=SHOP-1&amount=4550"
        );
        assert_eq!(PaymentQr::parse(&qr.payload()).unwrap(), qr);
        for bad in [
            "",
            "cvco:pay?",
            "cvco:pay?v=2&pt=a&shop=b&amount=1",
            "cvco:pay?v=1&pt=a&shop=b&amount=-1",
            "https://x",
            "cvco:pay?v=1&pt=a b&shop=b&amount=1",
        ] {
            assert!(PaymentQr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn create_transaction_validation() {
        let json = r#"{"shop_id":"S1","merchant_order_id":"CMD-1","amount_cents":4550,"channel":"ecommerce"}"#;
        let c: CreateTransaction = serde_json::from_str(json).unwrap();
        assert_eq!(c.currency, "EUR");
        assert_eq!(c.capture_mode, CaptureMode::Normal);
        assert_eq!(c.validate().unwrap().cents(), 4550);
        let mut usd = c.clone();
        usd.currency = "USD".into();
        assert_eq!(
            usd.validate().unwrap_err().code,
            ErrorCode::CurrencyNotSupported
        );
        let mut neg = c.clone();
        neg.amount_cents = -5;
        assert_eq!(neg.validate().unwrap_err().code, ErrorCode::InvalidAmount);
        let mut noref = c;
        noref.merchant_order_id = String::new();
        assert_eq!(
            noref.validate().unwrap_err().field.as_deref(),
            Some("merchant_order_id")
        );
    }

    #[test]
    fn delivery_is_tagged() {
        let d: Delivery = serde_json::from_str(r#"{"type":"email","email":"a@b.fr"}"#).unwrap();
        assert_eq!(
            d,
            Delivery::Email {
                email: "a@b.fr".into()
            }
        );
        assert_eq!(
            serde_json::to_string(&Delivery::Qr).unwrap(),
            r#"{"type":"qr"}"#
        );
    }

    #[test]
    fn remittance_fee_per_line_adds_up() {
        let now = Timestamp(1_795_384_140_000);
        let t = |id: &str, cents: u64, refunded: u64| Transaction {
            id: id.into(),
            shop_id: ShopId::parse("S1").unwrap(),
            merchant_order_id: format!("ref-{id}"),
            amount_cents: Amount::from_cents(cents).unwrap(),
            currency: eur(),
            channel: Channel::Ecommerce,
            adjustable: true,
            capture_mode: CaptureMode::Normal,
            state: TransactionState::Validated,
            abort_reason: None,
            created_at: now,
            updated_at: now,
            expires_at: None,
            payers: vec![],
            refunds: vec![],
            authorized_cents: Amount::from_cents(cents).unwrap(),
            captured_cents: Amount::from_cents(cents).unwrap(),
            refunded_cents: Amount::from_cents(refunded).unwrap(),
            pre_transaction_id: None,
            notification_url: None,
        };
        let lines: Vec<_> = [t("a", 4550, 0), t("b", 10000, 2000)]
            .iter()
            .filter_map(|t| remittance_line(t, 250))
            .collect();
        assert_eq!(lines[0].fee_cents.cents(), 114);
        assert_eq!(lines[0].net_cents.cents(), 4436);
        assert_eq!(lines[1].fee_cents.cents(), 200);
        assert_eq!(lines[1].net_cents.cents(), 7800);
        let st = remittance_statement(ShopId::parse("S1").unwrap(), now.utc_date(), 250, lines);
        assert_eq!(st.gross_cents.cents(), 14550);
        assert_eq!(st.fee_cents.cents(), 314);
        assert_eq!(st.net_cents.cents(), 12236);
        assert_eq!(st.count, 2);
    }
}
