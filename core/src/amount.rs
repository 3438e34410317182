//! Euro amounts as integer cents. There is no float anywhere on the money path.

use crate::error::{CvcoError, ErrorCode};
use core::fmt;
use serde::{Deserialize, Deserializer, Serialize};

/// A non-negative amount of euro cents. Serialises as a bare integer (`4550` is 45,50 €).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
#[serde(transparent)]
pub struct Amount(u64);

/// Bounded like [`Amount::from_cents`]: an answer claiming more than [`Amount::MAX`] is refused,
/// so hosts storing cents as `i64` (or JS numbers) never see a wrapped value.
impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Amount::from_cents(u64::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl Amount {
    pub const ZERO: Amount = Amount(0);
    /// Far above any real holiday purchase; keeps every sum well inside `u64` and JS' safe integers.
    pub const MAX: Amount = Amount(100_000_000_000);

    pub fn from_cents(cents: u64) -> Result<Amount, CvcoError> {
        if cents > Self::MAX.0 {
            return Err(CvcoError::new(ErrorCode::AmountOverflow).with_detail(
                "Maximum : 1 000 000 000,00 €.",
                "Maximum: €1,000,000,000.00.",
            ));
        }
        Ok(Amount(cents))
    }

    /// For signed inputs coming from JSON or forms: negative is an invalid amount, not a panic.
    pub fn from_i64(cents: i64) -> Result<Amount, CvcoError> {
        if cents < 0 {
            return Err(CvcoError::new(ErrorCode::InvalidAmount).with_detail(
                "Le montant doit être positif.",
                "The amount must be positive.",
            ));
        }
        Self::from_cents(cents as u64)
    }

    pub fn cents(self) -> u64 {
        self.0
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    pub fn checked_add(self, other: Amount) -> Result<Amount, CvcoError> {
        self.0
            .checked_add(other.0)
            .ok_or_else(|| CvcoError::new(ErrorCode::AmountOverflow))
            .and_then(Amount::from_cents)
    }

    pub fn checked_sub(self, other: Amount) -> Result<Amount, CvcoError> {
        self.0.checked_sub(other.0).map(Amount).ok_or_else(|| {
            CvcoError::new(ErrorCode::InvalidAmount)
                .with_detail("Résultat négatif.", "Negative result.")
        })
    }

    /// For totals over already-valid amounts: clamps at [`Amount::MAX`] instead of failing.
    pub fn saturating_add_amount(self, other: Amount) -> Amount {
        Amount(self.0.saturating_add(other.0).min(Self::MAX.0))
    }

    /// `self - other`, floored at zero: what remains to pay can never be negative.
    pub fn saturating_sub(self, other: Amount) -> Amount {
        Amount(self.0.saturating_sub(other.0))
    }

    /// A share in basis points (250 = 2.5 %), rounded half up to the cent.
    pub fn basis_points(self, bps: u32) -> Amount {
        let v = (self.0 as u128 * bps as u128 + 5_000) / 10_000;
        Amount(v as u64)
    }

    /// Parses "45,50 €", "1 234,56 €", "45.50", "45", "45,5", "45,50 EUR".
    pub fn parse(input: &str) -> Result<Amount, CvcoError> {
        let invalid = || {
            CvcoError::new(ErrorCode::InvalidAmount).with_detail(
                "Exemples : 45,50 € ou 45.50.",
                "Examples: 45,50 € or 45.50.",
            )
        };
        let mut s = input.trim();
        for suffix in ["€", "EUR", "eur", "Eur"] {
            if let Some(rest) = s.strip_suffix(suffix) {
                s = rest.trim_end();
                break;
            }
        }
        if let Some(rest) = s.strip_prefix('€') {
            s = rest.trim_start();
        }
        if s.starts_with('-') {
            return Err(CvcoError::new(ErrorCode::InvalidAmount).with_detail(
                "Le montant doit être positif.",
                "The amount must be positive.",
            ));
        }
        // Group separators: ASCII space, no-break space, narrow no-break space.
        let mut compact: String = s
            .chars()
            .filter(|c| !matches!(c, ' ' | '\u{a0}' | '\u{202f}'))
            .collect();
        // "1,234.56" and "1.234,56": when both separators appear, the last one is the decimal mark.
        if compact.contains(',') && compact.contains('.') {
            let decimal = compact.chars().rev().find(|c| matches!(c, ',' | '.'));
            let group = if decimal == Some(',') { '.' } else { ',' };
            compact.retain(|c| c != group);
        }
        let (int_part, frac_part) = match compact.find([',', '.']) {
            Some(i) => (&compact[..i], &compact[i + 1..]),
            None => (compact.as_str(), ""),
        };
        let has_sep = compact.len() != int_part.len();
        if int_part.is_empty()
            || !int_part.bytes().all(|b| b.is_ascii_digit())
            || !frac_part.bytes().all(|b| b.is_ascii_digit())
            || frac_part.len() > 2
            || (has_sep && frac_part.is_empty())
        {
            return Err(invalid());
        }
        let overflow = || CvcoError::new(ErrorCode::AmountOverflow);
        let mut euros: u64 = 0;
        for b in int_part.bytes() {
            euros = euros
                .checked_mul(10)
                .and_then(|v| v.checked_add((b - b'0') as u64))
                .ok_or_else(overflow)?;
        }
        let frac = match frac_part.len() {
            0 => 0,
            1 => (frac_part.as_bytes()[0] - b'0') as u64 * 10,
            _ => frac_part.parse::<u64>().map_err(|_| invalid())?,
        };
        let cents = euros
            .checked_mul(100)
            .and_then(|v| v.checked_add(frac))
            .ok_or_else(overflow)?;
        Amount::from_cents(cents)
    }

    /// French display, as `Intl.NumberFormat("fr-FR", {style: "currency"})` writes it: "1 234,56 €".
    pub fn format_fr(self) -> String {
        let mut out = String::new();
        self.write(&mut out, Some('\u{202f}'), ',');
        out.push_str("\u{a0}€");
        out
    }

    /// English display: "€1,234.56".
    pub fn format_en(self) -> String {
        let mut out = String::from("€");
        self.write(&mut out, Some(','), '.');
        out
    }

    /// Machine form: "45.50".
    pub fn format_plain(self) -> String {
        let mut out = String::new();
        self.write(&mut out, None, '.');
        out
    }

    /// Euros (digits grouped by three with `thousands`), `decimal`, two-digit cents. By hand rather
    /// than `format!`: the widget compiles this into the shopper's download, where `core::fmt`
    /// weighs kilobytes.
    fn write(self, out: &mut String, thousands: Option<char>, decimal: char) {
        let mut digits = [0u8; 20];
        let (mut len, mut euros) = (0, self.0 / 100);
        loop {
            digits[len] = b'0' + (euros % 10) as u8;
            len += 1;
            euros /= 10;
            if euros == 0 {
                break;
            }
        }
        for i in (0..len).rev() {
            out.push(char::from(digits[i]));
            if let Some(sep) = thousands.filter(|_| i > 0 && i % 3 == 0) {
                out.push(sep);
            }
        }
        out.push(decimal);
        let cents = (self.0 % 100) as u8;
        out.push(char::from(b'0' + cents / 10));
        out.push(char::from(b'0' + cents % 10));
    }

    pub fn format(self, locale: &str) -> String {
        if locale.starts_with("en") {
            self.format_en()
        } else {
            self.format_fr()
        }
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.format_plain())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_french_and_plain_forms() {
        let cases = [
            ("45,50 €", 4550),
            ("45,50€", 4550),
            ("45.50", 4550),
            ("45", 4500),
            ("45,5", 4550),
            ("0,01", 1),
            ("1 234,56 €", 123456),
            ("1\u{202f}234,56\u{a0}€", 123456),
            ("1\u{a0}234,56 EUR", 123456),
            (" 20 ", 2000),
            ("€20.00", 2000),
        ];
        for (input, cents) in cases {
            assert_eq!(Amount::parse(input).unwrap().cents(), cents, "{input:?}");
        }
    }

    #[test]
    fn rejects_garbage_with_typed_errors() {
        for input in [
            "", "€", "abc", "45,505", "-3", "4,5,6", "45,", ",50", "1e3", "12a", "١٢",
        ] {
            let err = Amount::parse(input).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidAmount, "{input:?}");
        }
        assert_eq!(
            Amount::parse("99999999999999999999999").unwrap_err().code,
            ErrorCode::AmountOverflow
        );
        assert_eq!(
            Amount::from_i64(-1).unwrap_err().code,
            ErrorCode::InvalidAmount
        );
    }

    #[test]
    fn formats() {
        let a = Amount::from_cents(123456).unwrap();
        assert_eq!(a.format_fr(), "1\u{202f}234,56\u{a0}€");
        assert_eq!(a.format_en(), "€1,234.56");
        assert_eq!(a.format_plain(), "1234.56");
        assert_eq!(Amount::from_cents(5).unwrap().format_fr(), "0,05\u{a0}€");
    }

    #[test]
    fn arithmetic_is_checked() {
        let max = Amount::MAX;
        assert_eq!(
            max.checked_add(Amount(1)).unwrap_err().code,
            ErrorCode::AmountOverflow
        );
        assert!(Amount(1).checked_sub(Amount(2)).is_err());
        assert_eq!(Amount(1).saturating_sub(Amount(2)), Amount::ZERO);
        assert_eq!(Amount(10_000).basis_points(250).cents(), 250);
        assert_eq!(Amount(4550).basis_points(250).cents(), 114); // 113.75 rounds up
    }

    #[test]
    fn json_amounts_are_bounded_like_from_cents() {
        let max = Amount::MAX.cents();
        assert_eq!(
            serde_json::from_str::<Amount>(&max.to_string()).unwrap(),
            Amount::MAX
        );
        for over in [max + 1, u64::MAX] {
            assert!(
                serde_json::from_str::<Amount>(&over.to_string()).is_err(),
                "{over}"
            );
        }
        assert!(serde_json::from_str::<Amount>("-1").is_err());
        assert_eq!(serde_json::to_string(&Amount(4550)).unwrap(), "4550");
    }

    proptest! {
        #[test]
        fn format_then_parse_round_trips(cents in 0u64..=Amount::MAX.cents()) {
            let a = Amount::from_cents(cents).unwrap();
            prop_assert_eq!(Amount::parse(&a.format_fr()).unwrap(), a);
            prop_assert_eq!(Amount::parse(&a.format_plain()).unwrap(), a);
            prop_assert_eq!(Amount::parse(&a.format_en()).unwrap(), a);
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,24}") {
            let _ = Amount::parse(&s);
        }

        #[test]
        fn add_sub_inverse(a in 0u64..=1_000_000_000, b in 0u64..=1_000_000_000) {
            let (a, b) = (Amount(a), Amount(b));
            prop_assert_eq!(a.checked_add(b).unwrap().checked_sub(b).unwrap(), a);
        }
    }
}
