//! The merchant side: reception point id, sales channels and the settings ANCV agrees with it.

use crate::amount::Amount;
use crate::error::{CvcoError, ErrorCode};
use core::fmt;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The `shopId` of one reception point ("point d'accueil"), as shown in the merchant space.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShopId(String);

impl ShopId {
    pub fn parse(input: &str) -> Result<ShopId, CvcoError> {
        let s = input.trim();
        if s.is_empty()
            || s.len() > 32
            || !s
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(CvcoError::new(ErrorCode::InvalidShopId).with_detail(
                "1 à 32 caractères : lettres, chiffres, - ou _.",
                "1 to 32 characters: letters, digits, - or _.",
            ));
        }
        Ok(ShopId(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ShopId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for ShopId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ShopId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ShopId::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Where the sale happens; a shop is affiliated per channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// Vente à distance: a web shop.
    Ecommerce,
    /// Mail order / telephone order, direct or with an e-mailed payment request.
    Moto,
    /// Face to face, at a counter.
    Proximity,
    /// Unattended kiosk or ticket machine.
    Kiosk,
}

impl Channel {
    pub const ALL: [Channel; 4] = [
        Channel::Ecommerce,
        Channel::Moto,
        Channel::Proximity,
        Channel::Kiosk,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Ecommerce => "ecommerce",
            Channel::Moto => "moto",
            Channel::Proximity => "proximity",
            Channel::Kiosk => "kiosk",
        }
    }

    pub fn parse(input: &str) -> Result<Channel, CvcoError> {
        Channel::ALL
            .into_iter()
            .find(|c| c.as_str() == input.trim())
            .ok_or_else(|| {
                CvcoError::new(ErrorCode::InvalidChannel).with_detail(
                    "Valeurs : ecommerce, moto, proximity, kiosk.",
                    "Values: ecommerce, moto, proximity, kiosk.",
                )
            })
    }
}

/// What the merchant agreed with ANCV; defaults follow CVCO-FACTS.md.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MerchantSettings {
    pub min_amount_cents: Amount,
    /// Whether the beneficiary may lower the amount in the app.
    pub adjustable: bool,
    /// Time the beneficiary has to confirm in the app after the push.
    pub authorization_timeout_s: u32,
    /// Default life of an e-mailed payment request.
    pub email_request_expiry_s: u32,
    /// Default life of a payment QR code shown at a counter or kiosk.
    pub qr_request_expiry_s: u32,
    /// Local (Europe/Paris) hour at which the day's totals close, 0–23.
    pub closing_hour: u8,
    /// Window to capture a deferred authorization.
    pub deferred_capture_window_s: u32,
    /// Refuse a partial authorization (cancel it, tell the beneficiary) where the point of sale
    /// has no other tender for the rest, e.g. an unattended kiosk (TETRA "paiement partiel").
    pub refuse_partial: bool,
    /// Tickets printed per transaction at the counter, 1 or 2 (merchant copy + customer copy).
    pub tickets: u8,
    /// Print the transaction's QR code on the ticket.
    pub ticket_qr: bool,
    /// At the counter, chain a new CVCo transaction for the "reste dû" without asking.
    pub auto_remainder: bool,
    /// Lowest amount of a chained payment for an order's remainder, where the merchant's contract
    /// allows one below `min_amount_cents`; `None`: the same minimum, the rest goes to another tender.
    pub remainder_min_cents: Option<Amount>,
    /// ANCV's fee on reimbursed transactions, in basis points (250 = 2.5 %).
    pub fee_rate_bps: u32,
}

impl Default for MerchantSettings {
    fn default() -> Self {
        MerchantSettings {
            min_amount_cents: Amount::from_cents(2000).expect("constant"),
            adjustable: true,
            authorization_timeout_s: 180,
            email_request_expiry_s: 24 * 3600,
            qr_request_expiry_s: 15 * 60,
            closing_hour: 0,
            deferred_capture_window_s: 6 * 24 * 3600,
            refuse_partial: false,
            tickets: 1,
            ticket_qr: false,
            auto_remainder: false,
            remainder_min_cents: None,
            fee_rate_bps: 250,
        }
    }
}

impl MerchantSettings {
    /// Rejects settings no merchant could mean, so a typo does not become a silent default.
    pub fn validate(&self) -> Result<(), CvcoError> {
        let bad = |field: &str, fr: &str, en: &str| {
            Err(CvcoError::new(ErrorCode::ConfigInvalid)
                .with_detail(fr, en)
                .with_field(field))
        };
        if self.authorization_timeout_s == 0 || self.authorization_timeout_s > 3600 {
            return bad(
                "authorization_timeout_s",
                "Délai d'autorisation entre 1 et 3600 s.",
                "Authorization timeout between 1 and 3600 s.",
            );
        }
        if self.email_request_expiry_s == 0 || self.qr_request_expiry_s == 0 {
            return bad(
                "request_expiry_s",
                "La durée de validité d'une demande doit être positive.",
                "A request's expiry must be positive.",
            );
        }
        if self.closing_hour > 23 {
            return bad(
                "closing_hour",
                "Heure de clôture entre 0 et 23.",
                "Closing hour between 0 and 23.",
            );
        }
        if !(1..=2).contains(&self.tickets) {
            return bad(
                "tickets",
                "Nombre de tickets : 1 ou 2.",
                "Number of tickets: 1 or 2.",
            );
        }
        if self.fee_rate_bps > 10_000 {
            return bad(
                "fee_rate_bps",
                "Commission entre 0 et 10000 points de base (0 à 100 %).",
                "Fee between 0 and 10000 basis points (0 to 100 %).",
            );
        }
        if self
            .remainder_min_cents
            .is_some_and(|m| m.is_zero() || m > self.min_amount_cents)
        {
            return bad(
                "remainder_min_cents",
                "Le minimum d'un reste dû doit être positif et au plus le montant minimum.",
                "The minimum of a remainder must be positive and at most the minimum amount.",
            );
        }
        Ok(())
    }

    /// The amount is acceptable for a first CVCo payment (or any payment but a chained
    /// remainder) with these settings.
    pub fn check_amount(&self, amount: Amount) -> Result<(), CvcoError> {
        self.check_amount_for(amount, None)
    }

    /// The lowest amount of a new payment: the remainder's minimum only for a chained payment,
    /// i.e. exactly what the order still needs after one of its CVCo payments was authorized;
    /// `min_amount_cents` for a first payment or any other amount.
    pub fn minimum_for(&self, amount: Amount, order: Option<OrderFacts>) -> Amount {
        match order {
            Some(o) if o.cvco_authorized && amount == o.remaining_cents => {
                self.remainder_minimum().min(self.min_amount_cents)
            }
            _ => self.min_amount_cents,
        }
    }

    /// [`check_amount`](Self::check_amount) knowing the order the payment is for.
    pub fn check_amount_for(
        &self,
        amount: Amount,
        order: Option<OrderFacts>,
    ) -> Result<(), CvcoError> {
        if amount.is_zero() {
            return Err(CvcoError::new(ErrorCode::InvalidAmount)
                .with_detail(
                    "Le montant doit être positif.",
                    "The amount must be positive.",
                )
                .with_field("amount_cents"));
        }
        let minimum = self.minimum_for(amount, order);
        if amount < minimum {
            return Err(CvcoError::new(ErrorCode::AmountBelowMinimum)
                .with_detail(
                    &format!("Minimum : {}.", minimum.format_fr()),
                    &format!("Minimum: {}.", minimum.format_en()),
                )
                .with_field("amount_cents"));
        }
        Ok(())
    }

    /// The lowest amount a chained payment for an order's remainder may ask (TETRA's "reste dû").
    pub fn remainder_minimum(&self) -> Amount {
        self.remainder_min_cents.unwrap_or(self.min_amount_cents)
    }

    /// What the counter does with an order's remainder after a partial payment: chain a new CVCo
    /// transaction (by itself when `auto_remainder`), or leave it to another tender when it is
    /// below what the merchant accepts.
    pub fn remainder_step(&self, remaining: Amount) -> RemainderStep {
        if remaining.is_zero() {
            RemainderStep::Settled
        } else if remaining >= self.remainder_minimum() {
            RemainderStep::Chain {
                amount: remaining,
                automatic: self.auto_remainder,
            }
        } else {
            RemainderStep::OtherTender {
                amount: remaining,
                minimum: self.remainder_minimum(),
            }
        }
    }

    /// Whether a partial authorization on `channel` must be voided: only where the point of sale
    /// has no other tender for the rest (an unattended kiosk) and the merchant chose it.
    pub fn refuses_partial(&self, channel: Channel) -> bool {
        self.refuse_partial && channel == Channel::Kiosk
    }
}

/// What the host knows of the order a new payment is for (it tells the plugin and the checkout).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderFacts {
    /// What the order still needs, before this payment.
    pub remaining_cents: Amount,
    /// One of the order's CVCo payments holds an authorization: its rest is a "reste dû".
    pub cvco_authorized: bool,
}

/// The counter's next move for an order's remainder ([`MerchantSettings::remainder_step`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum RemainderStep {
    /// Nothing left to pay.
    Settled,
    /// A new CVCo transaction for `amount`; `automatic`: without the seller asking.
    Chain { amount: Amount, automatic: bool },
    /// Below the merchant's minimum for a remainder: another tender pays it.
    OtherTender { amount: Amount, minimum: Amount },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shop_ids() {
        assert!(ShopId::parse("SHOP-0001").is_ok());
        assert_eq!(
            ShopId::parse("").unwrap_err().code,
            ErrorCode::InvalidShopId
        );
        assert!(ShopId::parse("a b").is_err());
        assert!(ShopId::parse(&"x".repeat(33)).is_err());
    }

    #[test]
    fn channels_round_trip() {
        for c in Channel::ALL {
            assert_eq!(Channel::parse(c.as_str()).unwrap(), c);
            assert_eq!(
                serde_json::to_string(&c).unwrap(),
                format!("\"{}\"", c.as_str())
            );
        }
        assert_eq!(
            Channel::parse("pos").unwrap_err().code,
            ErrorCode::InvalidChannel
        );
    }

    #[test]
    fn settings_defaults_and_minimum() {
        let s = MerchantSettings::default();
        assert_eq!(s.min_amount_cents.cents(), 2000);
        assert_eq!(s.authorization_timeout_s, 180);
        s.validate().unwrap();
        assert_eq!(
            s.check_amount(Amount::from_cents(1999).unwrap())
                .unwrap_err()
                .code,
            ErrorCode::AmountBelowMinimum
        );
        s.check_amount(Amount::from_cents(2000).unwrap()).unwrap();
        assert_eq!(
            s.check_amount(Amount::ZERO).unwrap_err().code,
            ErrorCode::InvalidAmount
        );
        let partial: MerchantSettings = serde_json::from_str(r#"{"closing_hour": 22}"#).unwrap();
        assert_eq!(partial.closing_hour, 22);
        assert_eq!(partial.authorization_timeout_s, 180);
    }
}

#[cfg(test)]
mod remainder_tests {
    use super::*;

    fn cents(n: u64) -> Amount {
        Amount::from_cents(n).unwrap()
    }

    #[test]
    fn a_remainder_at_or_above_the_minimum_is_chained_automatically_only_when_set() {
        let mut s = MerchantSettings::default();
        assert_eq!(
            s.remainder_step(cents(2000)),
            RemainderStep::Chain {
                amount: cents(2000),
                automatic: false
            }
        );
        s.auto_remainder = true;
        assert_eq!(
            s.remainder_step(cents(8500)),
            RemainderStep::Chain {
                amount: cents(8500),
                automatic: true
            }
        );
        assert_eq!(s.remainder_step(Amount::ZERO), RemainderStep::Settled);
    }

    #[test]
    fn a_remainder_below_the_minimum_goes_to_another_tender_unless_the_merchant_lowered_it() {
        let mut s = MerchantSettings {
            auto_remainder: true,
            ..MerchantSettings::default()
        };
        assert_eq!(
            s.remainder_step(cents(1500)),
            RemainderStep::OtherTender {
                amount: cents(1500),
                minimum: cents(2000)
            }
        );
        s.remainder_min_cents = Some(cents(500));
        s.validate().unwrap();
        assert_eq!(
            s.remainder_step(cents(1500)),
            RemainderStep::Chain {
                amount: cents(1500),
                automatic: true
            }
        );
        assert_eq!(
            s.remainder_step(cents(499)),
            RemainderStep::OtherTender {
                amount: cents(499),
                minimum: cents(500)
            }
        );
        let json = serde_json::to_value(s.remainder_step(cents(499))).unwrap();
        assert_eq!(json["step"], "other_tender");
    }

    #[test]
    fn only_a_chained_payment_of_exactly_the_remainder_goes_below_the_minimum() {
        let mut s = MerchantSettings {
            remainder_min_cents: Some(cents(500)),
            ..MerchantSettings::default()
        };
        let after_partial = Some(OrderFacts {
            remaining_cents: cents(1000),
            cvco_authorized: true,
        });
        s.check_amount_for(cents(1000), after_partial).unwrap();
        // A first payment, or any amount but the remainder, keeps the merchant's minimum.
        let first = Some(OrderFacts {
            remaining_cents: cents(1000),
            cvco_authorized: false,
        });
        for (amount, order) in [
            (1000, first),
            (1000, None),
            (900, after_partial),
            (1999, first),
        ] {
            let e = s.check_amount_for(cents(amount), order).unwrap_err();
            assert_eq!(e.code, ErrorCode::AmountBelowMinimum, "{amount} {order:?}");
            assert!(e.message_fr.contains("Minimum : 20,00"), "{}", e.message_fr);
        }
        let small = Some(OrderFacts {
            remaining_cents: cents(400),
            cvco_authorized: true,
        });
        let e = s.check_amount_for(cents(400), small).unwrap_err();
        assert!(e.message_fr.contains("Minimum : 5,00"), "{}", e.message_fr);
        // Without a lower remainder minimum the chained payment keeps 20 €.
        s.remainder_min_cents = None;
        let e = s.check_amount_for(cents(1000), after_partial).unwrap_err();
        assert_eq!(e.code, ErrorCode::AmountBelowMinimum);
        assert!(e.message_fr.contains("Minimum : 20,00"), "{}", e.message_fr);
        s.check_amount_for(cents(2000), first).unwrap();
    }

    #[test]
    fn partial_authorizations_are_refused_only_at_a_kiosk_whose_merchant_chose_it() {
        let mut s = MerchantSettings::default();
        assert!(!s.refuses_partial(Channel::Kiosk));
        s.refuse_partial = true;
        assert!(s.refuses_partial(Channel::Kiosk));
        for c in [Channel::Proximity, Channel::Moto, Channel::Ecommerce] {
            assert!(!s.refuses_partial(c), "{c:?} has another tender");
        }
    }
}
