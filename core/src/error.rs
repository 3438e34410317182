//! Every error a merchant, an integrator or a shopper can see: a stable code, a French and an
//! English message, and whether retrying the same call can succeed.

use core::fmt;
use serde::{Deserialize, Serialize};

/// Stable, machine-readable error codes. The snake_case names are part of the public API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidAmount,
    AmountOverflow,
    AmountBelowMinimum,
    CurrencyNotSupported,
    InvalidBeneficiary,
    BeneficiaryUnknown,
    BeneficiaryBlocked,
    InvalidShopId,
    InvalidChannel,
    ShopNotAffiliated,
    TransactionNotFound,
    PreTransactionNotFound,
    IllegalTransition,
    RefundExceedsCaptured,
    IdempotencyConflict,
    InvalidRequest,
    Unauthorized,
    Forbidden,
    ConfigMissing,
    ConfigInvalid,
    NotificationBadSignature,
    NotificationStale,
    NotificationMalformed,
    NotificationReplayed,
    WrongPin,
    AccountLocked,
    UpstreamUnavailable,
    UpstreamTimeout,
    UpstreamProtocol,
    OrderNotFound,
    PaymentNotFound,
    PaymentInProgress,
    CardDeclined,
    TooManyAttempts,
    NotFound,
    Internal,
}

impl ErrorCode {
    pub const ALL: &'static [ErrorCode] = &[
        ErrorCode::InvalidAmount,
        ErrorCode::AmountOverflow,
        ErrorCode::AmountBelowMinimum,
        ErrorCode::CurrencyNotSupported,
        ErrorCode::InvalidBeneficiary,
        ErrorCode::BeneficiaryUnknown,
        ErrorCode::BeneficiaryBlocked,
        ErrorCode::InvalidShopId,
        ErrorCode::InvalidChannel,
        ErrorCode::ShopNotAffiliated,
        ErrorCode::TransactionNotFound,
        ErrorCode::PreTransactionNotFound,
        ErrorCode::IllegalTransition,
        ErrorCode::RefundExceedsCaptured,
        ErrorCode::IdempotencyConflict,
        ErrorCode::InvalidRequest,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::ConfigMissing,
        ErrorCode::ConfigInvalid,
        ErrorCode::NotificationBadSignature,
        ErrorCode::NotificationStale,
        ErrorCode::NotificationMalformed,
        ErrorCode::NotificationReplayed,
        ErrorCode::WrongPin,
        ErrorCode::AccountLocked,
        ErrorCode::UpstreamUnavailable,
        ErrorCode::UpstreamTimeout,
        ErrorCode::UpstreamProtocol,
        ErrorCode::OrderNotFound,
        ErrorCode::PaymentNotFound,
        ErrorCode::PaymentInProgress,
        ErrorCode::CardDeclined,
        ErrorCode::TooManyAttempts,
        ErrorCode::NotFound,
        ErrorCode::Internal,
    ];

    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
            InvalidAmount => "invalid_amount",
            AmountOverflow => "amount_overflow",
            AmountBelowMinimum => "amount_below_minimum",
            CurrencyNotSupported => "currency_not_supported",
            InvalidBeneficiary => "invalid_beneficiary",
            BeneficiaryUnknown => "beneficiary_unknown",
            BeneficiaryBlocked => "beneficiary_blocked",
            InvalidShopId => "invalid_shop_id",
            InvalidChannel => "invalid_channel",
            ShopNotAffiliated => "shop_not_affiliated",
            TransactionNotFound => "transaction_not_found",
            PreTransactionNotFound => "pre_transaction_not_found",
            IllegalTransition => "illegal_transition",
            RefundExceedsCaptured => "refund_exceeds_captured",
            IdempotencyConflict => "idempotency_conflict",
            InvalidRequest => "invalid_request",
            Unauthorized => "unauthorized",
            Forbidden => "forbidden",
            ConfigMissing => "config_missing",
            ConfigInvalid => "config_invalid",
            NotificationBadSignature => "notification_bad_signature",
            NotificationStale => "notification_stale",
            NotificationMalformed => "notification_malformed",
            NotificationReplayed => "notification_replayed",
            WrongPin => "wrong_pin",
            AccountLocked => "account_locked",
            UpstreamUnavailable => "upstream_unavailable",
            UpstreamTimeout => "upstream_timeout",
            UpstreamProtocol => "upstream_protocol",
            OrderNotFound => "order_not_found",
            PaymentNotFound => "payment_not_found",
            PaymentInProgress => "payment_in_progress",
            CardDeclined => "card_declined",
            TooManyAttempts => "too_many_attempts",
            NotFound => "not_found",
            Internal => "internal",
        }
    }

    /// Default (French, English) wording; a `detail` may be appended by the caller.
    pub fn messages(self) -> (&'static str, &'static str) {
        use ErrorCode::*;
        match self {
            InvalidAmount => ("Montant invalide.", "Invalid amount."),
            AmountOverflow => ("Montant trop élevé.", "Amount too large."),
            AmountBelowMinimum => (
                "Montant inférieur au minimum accepté en Chèque-Vacances Connect.",
                "Amount below the minimum accepted for Chèque-Vacances Connect.",
            ),
            CurrencyNotSupported => (
                "Seul l'euro est accepté.",
                "Only euros are accepted.",
            ),
            InvalidBeneficiary => (
                "Saisissez l'adresse e-mail de votre compte Chèque-Vacances Connect ou votre identifiant à 11 chiffres.",
                "Enter the e-mail address of your Chèque-Vacances Connect account or your 11-digit id.",
            ),
            BeneficiaryUnknown => (
                "Ce compte Chèque-Vacances Connect est inconnu ou non valide.",
                "This Chèque-Vacances Connect account is unknown or not valid.",
            ),
            BeneficiaryBlocked => (
                "Ce compte Chèque-Vacances Connect est bloqué ou l'application n'est pas installée.",
                "This Chèque-Vacances Connect account is blocked or the app is not installed.",
            ),
            InvalidShopId => ("Identifiant de point d'accueil invalide.", "Invalid shop id."),
            InvalidChannel => ("Canal de vente invalide.", "Invalid sales channel."),
            ShopNotAffiliated => (
                "Ce point d'accueil n'est pas conventionné pour ce canal de vente.",
                "This shop is not affiliated for this sales channel.",
            ),
            TransactionNotFound => ("Transaction introuvable.", "Transaction not found."),
            PreTransactionNotFound => (
                "Demande de paiement introuvable.",
                "Payment request not found.",
            ),
            IllegalTransition => (
                "Opération impossible dans l'état actuel de la transaction.",
                "Operation not allowed in the transaction's current state.",
            ),
            RefundExceedsCaptured => (
                "Le remboursement dépasse le montant encaissé.",
                "The refund exceeds the captured amount.",
            ),
            IdempotencyConflict => (
                "Cette clé d'idempotence a déjà servi pour une autre demande.",
                "This idempotency key was already used for a different request.",
            ),
            InvalidRequest => ("Requête invalide.", "Invalid request."),
            Unauthorized => (
                "Identifiants marchand invalides ou jeton expiré.",
                "Invalid merchant credentials or expired token.",
            ),
            Forbidden => ("Accès refusé.", "Access denied."),
            ConfigMissing => ("Paramètre de configuration manquant.", "Missing configuration key."),
            ConfigInvalid => ("Paramètre de configuration invalide.", "Invalid configuration value."),
            NotificationBadSignature => (
                "Signature de la notification invalide.",
                "Invalid notification signature.",
            ),
            NotificationStale => (
                "Notification trop ancienne ou horodatage hors tolérance.",
                "Notification too old or timestamp outside tolerance.",
            ),
            NotificationMalformed => ("Notification mal formée.", "Malformed notification."),
            NotificationReplayed => ("Notification déjà traitée.", "Notification already processed."),
            WrongPin => ("Code personnel incorrect.", "Wrong personal code."),
            AccountLocked => (
                "Trop de codes incorrects : le compte est bloqué.",
                "Too many wrong codes: the account is locked.",
            ),
            UpstreamUnavailable => (
                "Le serveur d'acquisition ANCV est indisponible. Réessayez.",
                "The ANCV acquisition server is unavailable. Try again.",
            ),
            UpstreamTimeout => (
                "Le serveur d'acquisition ANCV n'a pas répondu à temps. Réessayez.",
                "The ANCV acquisition server did not answer in time. Try again.",
            ),
            UpstreamProtocol => (
                "Réponse inattendue du serveur d'acquisition ANCV.",
                "Unexpected answer from the ANCV acquisition server.",
            ),
            OrderNotFound => ("Commande introuvable.", "Order not found."),
            PaymentNotFound => ("Paiement introuvable.", "Payment not found."),
            PaymentInProgress => (
                "Un paiement Chèque-Vacances Connect est déjà en cours pour cette commande.",
                "A Chèque-Vacances Connect payment is already in progress for this order.",
            ),
            CardDeclined => (
                "Paiement par carte refusé.",
                "Card payment declined.",
            ),
            TooManyAttempts => (
                "Trop de tentatives. Réessayez dans quelques minutes.",
                "Too many attempts. Try again in a few minutes.",
            ),
            NotFound => ("Ressource introuvable.", "Not found."),
            Internal => ("Erreur interne.", "Internal error."),
        }
    }

    /// Whether the same call may succeed later without any change by the caller.
    pub fn retryable(self) -> bool {
        matches!(
            self,
            ErrorCode::UpstreamUnavailable
                | ErrorCode::UpstreamTimeout
                | ErrorCode::Internal
                | ErrorCode::PaymentInProgress
        )
    }

    /// Whether a mutating call that failed with this code may still have had its effect at ANCV
    /// (the request left, the answer did not come back usable). Such an operation is kept in an
    /// "unknown outcome" state and reconciled, never dropped; any other error is a refusal that
    /// left nothing behind.
    pub fn outcome_unknown(self) -> bool {
        self.retryable()
            || matches!(
                self,
                ErrorCode::UpstreamProtocol | ErrorCode::IdempotencyConflict
            )
    }

    /// The HTTP status an API answers with for this error.
    pub fn http_status(self) -> u16 {
        use ErrorCode::*;
        match self {
            Unauthorized => 401,
            CardDeclined => 402,
            TooManyAttempts => 429,
            Forbidden | ShopNotAffiliated => 403,
            TransactionNotFound
            | PreTransactionNotFound
            | OrderNotFound
            | PaymentNotFound
            | NotFound => 404,
            IllegalTransition | IdempotencyConflict | AccountLocked | PaymentInProgress => 409,
            UpstreamUnavailable => 502,
            UpstreamTimeout => 504,
            UpstreamProtocol => 502,
            Internal => 500,
            _ => 422,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error body of every API and every plugin export: `{code, message_fr, message_en, retryable}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CvcoError {
    pub code: ErrorCode,
    pub message_fr: String,
    pub message_en: String,
    pub retryable: bool,
    /// The input field or configuration key at fault, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// With `payment_in_progress`: the payment to follow instead of starting a new one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
}

impl CvcoError {
    pub fn new(code: ErrorCode) -> Self {
        let (fr, en) = code.messages();
        CvcoError {
            code,
            message_fr: fr.to_string(),
            message_en: en.to_string(),
            retryable: code.retryable(),
            field: None,
            payment_id: None,
        }
    }

    /// Appends a precise detail to both messages (e.g. the offending key or the limit).
    pub fn with_detail(mut self, fr: &str, en: &str) -> Self {
        self.message_fr.push(' ');
        self.message_fr.push_str(fr);
        self.message_en.push(' ');
        self.message_en.push_str(en);
        self
    }

    pub fn with_field(mut self, field: &str) -> Self {
        self.field = Some(field.to_string());
        self
    }

    pub fn with_payment_id(mut self, payment_id: &str) -> Self {
        self.payment_id = Some(payment_id.to_string());
        self
    }

    pub fn retryable(mut self, retryable: bool) -> Self {
        self.retryable = retryable;
        self
    }

    /// The message in the requested locale (`fr` unless `en` is asked for).
    pub fn message(&self, locale: &str) -> &str {
        if locale.starts_with("en") {
            &self.message_en
        } else {
            &self.message_fr
        }
    }
}

impl From<ErrorCode> for CvcoError {
    fn from(code: ErrorCode) -> Self {
        CvcoError::new(code)
    }
}

impl fmt::Display for CvcoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message_en)
    }
}

impl std::error::Error for CvcoError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_distinct_wire_name_and_both_messages() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()), "duplicate {code}");
            let json = serde_json::to_string(code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            let (fr, en) = code.messages();
            assert!(!fr.is_empty() && !en.is_empty());
            assert_ne!(fr, en, "{code} is not translated");
        }
    }

    #[test]
    fn error_body_shape() {
        let e = CvcoError::new(ErrorCode::UpstreamUnavailable).with_field("api_base_url");
        let v: serde_json::Value = serde_json::to_value(&e).unwrap();
        assert_eq!(v["code"], "upstream_unavailable");
        assert_eq!(v["retryable"], true);
        assert_eq!(v["field"], "api_base_url");
        assert!(v["message_fr"].as_str().unwrap().contains("ANCV"));
    }
}
