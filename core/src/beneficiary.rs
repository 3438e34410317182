//! Who pays: the e-mail of the CVCo account or the 11-digit CV Connect id, typed or scanned.

use crate::error::{CvcoError, ErrorCode};
use core::fmt;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A validated, normalised beneficiary identifier.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BeneficiaryId {
    /// Lower-cased e-mail of the CVCo account.
    Email(String),
    /// The 11-digit CV Connect id.
    CvConnectId(String),
}

/// Prefix of the identification QR code (version 1) the app shows; the Code 128 barcode is the bare id.
pub const ID_QR_PREFIX: &str = "CVCO-ID:";

impl BeneficiaryId {
    /// Typed input: an e-mail (at most 320 chars) or 11 digits, spaces and dashes tolerated in the id.
    pub fn parse(input: &str) -> Result<BeneficiaryId, CvcoError> {
        let s = input.trim();
        if s.contains('@') {
            return parse_email(s);
        }
        let digits: String = s
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '.'))
            .collect();
        if digits.len() == 11 && digits.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(BeneficiaryId::CvConnectId(digits));
        }
        let (fr, en) = if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            (
                "L'identifiant CV Connect compte exactement 11 chiffres.",
                "The CV Connect id has exactly 11 digits.",
            )
        } else {
            ("", "")
        };
        let err = CvcoError::new(ErrorCode::InvalidBeneficiary);
        Err(if fr.is_empty() {
            err
        } else {
            err.with_detail(fr, en)
        })
    }

    /// What a scanner reads from the app: the Code 128 barcode (bare id, maybe with a trailing
    /// CR/LF or GS from the scanner) or the identification QR code (`CVCO-ID:<id>`), or typed input.
    pub fn from_scan(payload: &str) -> Result<BeneficiaryId, CvcoError> {
        let cleaned: String = payload.chars().filter(|c| !c.is_control()).collect();
        let mut s = cleaned.trim();
        // AIM symbology identifier some scanners prepend ("]C0" for Code 128, "]Q1" for QR).
        if s.starts_with(']') && s.len() > 3 {
            s = s.get(3..).unwrap_or(s);
        }
        if let Some(rest) = s.strip_prefix(ID_QR_PREFIX) {
            return BeneficiaryId::parse(rest);
        }
        if let Ok(id) = BeneficiaryId::parse(s) {
            return Ok(id);
        }
        // Unknown framing around the id (AIM identifiers, URLs): accept it only when exactly one
        // run of exactly 11 digits stands in the payload, so nothing is guessed.
        let runs: Vec<&str> = s
            .split(|c: char| !c.is_ascii_digit())
            .filter(|r| !r.is_empty())
            .collect();
        let elevens: Vec<&&str> = runs.iter().filter(|r| r.len() == 11).collect();
        if elevens.len() == 1 {
            return Ok(BeneficiaryId::CvConnectId(elevens[0].to_string()));
        }
        Err(CvcoError::new(ErrorCode::InvalidBeneficiary)
            .with_detail("Code scanné non reconnu.", "Scanned code not recognised."))
    }

    pub fn as_str(&self) -> &str {
        match self {
            BeneficiaryId::Email(s) | BeneficiaryId::CvConnectId(s) => s,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            BeneficiaryId::Email(_) => "email",
            BeneficiaryId::CvConnectId(_) => "cv_connect_id",
        }
    }

    /// The payload of the identification QR code the app displays for this id.
    pub fn id_qr_payload(&self) -> String {
        format!("{ID_QR_PREFIX}{}", self.as_str())
    }

    /// For receipts and logs: "j***@example.fr", "*******8901".
    pub fn masked(&self) -> String {
        match self {
            BeneficiaryId::Email(e) => {
                let (local, domain) = e.split_once('@').unwrap_or((e, ""));
                let first: String = local.chars().take(1).collect();
                format!("{first}***@{domain}")
            }
            // `get`: the variant is public, so `d` may not be the 11 ASCII digits `parse` makes.
            BeneficiaryId::CvConnectId(d) => format!("*******{}", d.get(7..).unwrap_or("")),
        }
    }
}

/// An e-mail address alone (payment requests sent by e-mail): lower-cased, or an error that says
/// what is wrong with it (empty, no "@", no domain, too long, a character that cannot be in it).
pub fn parse_email_address(input: &str) -> Result<String, CvcoError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(email_error(
            "Saisissez l'adresse e-mail.",
            "Enter the e-mail address.",
        ));
    }
    if !s.contains('@') {
        return Err(email_error(
            "Il manque le « @ » dans l'adresse e-mail (exemple : nom@domaine.fr).",
            "The e-mail address is missing its \"@\" (for example name@domain.com).",
        ));
    }
    match parse_email(s)? {
        BeneficiaryId::Email(e) => Ok(e),
        BeneficiaryId::CvConnectId(_) => Err(email_error(
            "Adresse e-mail invalide.",
            "Invalid e-mail address.",
        )),
    }
}

fn email_error(fr: &str, en: &str) -> CvcoError {
    CvcoError::new(ErrorCode::InvalidBeneficiary).with_detail(fr, en)
}

/// The first thing wrong with an address that contains "@", said the way the person can fix it.
fn parse_email(s: &str) -> Result<BeneficiaryId, CvcoError> {
    let bad = |fr: &str, en: &str| Err(email_error(fr, en));
    if s.chars().count() > 320 {
        return bad(
            "L'adresse e-mail est trop longue (320 caractères au plus).",
            "The e-mail address is too long (320 characters at most).",
        );
    }
    if s.chars().any(char::is_whitespace) {
        return bad(
            "L'adresse e-mail ne peut pas contenir d'espace.",
            "The e-mail address cannot contain a space.",
        );
    }
    let Some((local, domain)) = s.rsplit_once('@') else {
        return bad(
            "Il manque le « @ » dans l'adresse e-mail.",
            "The e-mail address is missing its \"@\".",
        );
    };
    if local.is_empty() {
        return bad(
            "Il manque le nom avant le « @ » de l'adresse e-mail.",
            "The e-mail address has no name before the \"@\".",
        );
    }
    if domain.is_empty() {
        return bad(
            "Il manque le domaine après le « @ » (exemple : nom@domaine.fr).",
            "The e-mail address has no domain after the \"@\" (for example name@domain.com).",
        );
    }
    if local.contains('@') {
        return bad(
            "L'adresse e-mail contient plus d'un « @ ».",
            "The e-mail address contains more than one \"@\".",
        );
    }
    if local.len() > 64 {
        return bad(
            "Le nom avant le « @ » est trop long (64 caractères au plus).",
            "The name before the \"@\" is too long (64 characters at most).",
        );
    }
    if let Some(c) = local
        .chars()
        // Bytes, not `str::contains(char)`: the widget compiles this in (its download).
        .find(|&c| {
            !(c.is_ascii_alphanumeric()
                || (c.is_ascii() && b"!#$%&'*+-/=?^_`{|}~.".contains(&(c as u8))))
        })
    {
        return Err(invalid_char(c));
    }
    // Bytes, not `str::contains(&str)`: the string searcher cost the widget 4.6 KB brotli.
    if local.starts_with('.')
        || local.ends_with('.')
        || local.as_bytes().windows(2).any(|w| w == b"..")
    {
        return bad(
            "Le nom avant le « @ » ne peut pas commencer ni finir par un point, ni en contenir deux de suite.",
            "The name before the \"@\" cannot start or end with a dot, nor have two dots in a row.",
        );
    }
    if let Some(c) = domain
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || c == '-' || c == '.'))
    {
        return Err(invalid_char(c));
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return bad(
            "Le domaine de l'adresse e-mail est incomplet (exemple : domaine.fr).",
            "The domain of the e-mail address is incomplete (for example domain.com).",
        );
    }
    let labels_ok = domain.len() <= 253
        && labels
            .iter()
            .all(|l| !l.is_empty() && l.len() <= 63 && !l.starts_with('-') && !l.ends_with('-'));
    let tld_ok = labels
        .last()
        .is_some_and(|tld| tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()));
    if !labels_ok || !tld_ok {
        return bad(
            "Le domaine après le « @ » n'est pas valide (exemple : domaine.fr).",
            "The domain after the \"@\" is not valid (for example domain.com).",
        );
    }
    Ok(BeneficiaryId::Email(s.to_ascii_lowercase()))
}

/// Written by hand, not with `format!`: the widget compiles this in (keeps `core::fmt` out).
fn invalid_char(c: char) -> CvcoError {
    let mut shown = String::new();
    if c.is_control() {
        // Control characters are at most U+009F: four hex digits.
        shown.push_str("U+");
        for shift in [12, 8, 4, 0] {
            let d = (c as u32 >> shift) & 0xf;
            shown.push(char::from(if d < 10 {
                b'0' + d as u8
            } else {
                b'A' + d as u8 - 10
            }));
        }
    } else {
        shown.push(c);
    }
    email_error(
        &(String::from("L'adresse e-mail contient un caractère non permis : « ") + &shown + " »."),
        &(String::from("The e-mail address contains a character that is not allowed: \"")
            + &shown
            + "\"."),
    )
}

impl fmt::Display for BeneficiaryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for BeneficiaryId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for BeneficiaryId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        BeneficiaryId::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_ids_and_emails() {
        assert_eq!(
            BeneficiaryId::parse("12345678901").unwrap(),
            BeneficiaryId::CvConnectId("12345678901".into())
        );
        assert_eq!(
            BeneficiaryId::parse(" 123 456 789-01 ").unwrap().as_str(),
            "12345678901"
        );
        assert_eq!(
            BeneficiaryId::parse("  Jeanne.Dupont@Example.FR ").unwrap(),
            BeneficiaryId::Email("jeanne.dupont@example.fr".into())
        );
        assert_eq!(BeneficiaryId::parse("a@b.fr").unwrap().kind(), "email");
    }

    #[test]
    fn rejects_with_typed_error() {
        for bad in [
            "",
            "1234567890",
            "123456789012",
            "abc",
            "a@b",
            "a@b.c",
            "@example.fr",
            "jean@",
            "jean dupont@example.fr",
            "jean..d@example.fr",
            "jean@-example.fr",
            "jean@example..fr",
            "12345678901@",
            "x@y.z1",
        ] {
            let e = BeneficiaryId::parse(bad).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidBeneficiary, "{bad:?}");
        }
        let long = format!("{}@example.fr", "a".repeat(64)) + &".fr".repeat(100);
        assert!(long.len() > 320);
        assert!(BeneficiaryId::parse(&long).is_err());
    }

    /// What the person reads names the actual mistake, never a length range that is not the problem.
    #[test]
    fn email_errors_say_what_is_wrong_with_the_address() {
        let says = |input: &str, fr: &str, en: &str| {
            let e = parse_email_address(input).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidBeneficiary, "{input:?}");
            assert!(e.message_fr.contains(fr), "{input:?}: {}", e.message_fr);
            assert!(e.message_en.contains(en), "{input:?}: {}", e.message_en);
            assert!(
                !e.message_fr.contains("320 caractères") || fr.contains("320"),
                "{input:?}"
            );
        };
        says("", "Saisissez l'adresse e-mail", "Enter the e-mail address");
        says(
            "   ",
            "Saisissez l'adresse e-mail",
            "Enter the e-mail address",
        );
        says(
            "jeanne.example.fr",
            "Il manque le « @ »",
            "missing its \"@\"",
        );
        says("jeanne@", "Il manque le domaine", "no domain");
        says("@example.fr", "Il manque le nom avant", "no name before");
        says(
            "a@b",
            "domaine de l'adresse e-mail est incomplet",
            "domain of the e-mail address is incomplete",
        );
        says(
            "a@b.c",
            "domaine après le « @ » n'est pas valide",
            "domain after the \"@\" is not valid",
        );
        says("jean@-example.fr", "n'est pas valide", "is not valid");
        says("jean dupont@example.fr", "espace", "space");
        says(
            "jean(dupont)@example.fr",
            "caractère non permis : « ( »",
            "not allowed: \"(\"",
        );
        says(
            "jeanne@exämple.fr",
            "caractère non permis : « ä »",
            "not allowed: \"ä\"",
        );
        says("a@b@example.fr", "plus d'un « @ »", "more than one");
        says("jean..d@example.fr", "deux de suite", "two dots in a row");
        let long = format!("{}@example.fr", "a".repeat(64)) + &".fr".repeat(100);
        says(
            &long,
            "trop longue (320 caractères au plus)",
            "too long (320 characters at most)",
        );
        says(
            &format!("{}@example.fr", "a".repeat(65)),
            "trop long (64",
            "too long (64",
        );
        assert_eq!(
            parse_email_address(" Jeanne@Example.FR ").unwrap(),
            "jeanne@example.fr"
        );
        // The same words when the address is typed as a beneficiary id.
        let e = BeneficiaryId::parse("jeanne@").unwrap_err();
        assert!(
            e.message_fr.contains("Il manque le domaine"),
            "{}",
            e.message_fr
        );
    }

    #[test]
    fn scans() {
        let id = "12345678901";
        for payload in [
            "12345678901\r\n",
            "CVCO-ID:12345678901",
            "\u{1d}12345678901\u{1d}",
            "]C012345678901",
            "https://app.ancv.example/id?v=1&id=12345678901",
        ] {
            assert_eq!(
                BeneficiaryId::from_scan(payload).unwrap().as_str(),
                id,
                "{payload:?}"
            );
        }
        assert!(BeneficiaryId::from_scan("11111111111-22222222222").is_err());
        assert!(BeneficiaryId::from_scan("hello").is_err());
        let e = BeneficiaryId::parse("jeanne@example.fr").unwrap();
        assert_eq!(BeneficiaryId::from_scan(&e.id_qr_payload()).unwrap(), e);
    }

    #[test]
    fn masks() {
        assert_eq!(
            BeneficiaryId::parse("12345678901").unwrap().masked(),
            "*******8901"
        );
        assert_eq!(
            BeneficiaryId::parse("jeanne@example.fr").unwrap().masked(),
            "j***@example.fr"
        );
    }

    #[test]
    fn masking_a_hand_built_id_does_not_panic() {
        for d in ["", "123", "123456é8901", "éééééééééé"] {
            let m = BeneficiaryId::CvConnectId(d.into()).masked();
            assert!(m.starts_with("*******"), "{m}");
        }
        assert_eq!(BeneficiaryId::Email("é@x.fr".into()).masked(), "é***@x.fr");
    }

    proptest! {
        #[test]
        fn any_eleven_digits_is_an_id(d in "[0-9]{11}") {
            let id = BeneficiaryId::parse(&d).unwrap();
            prop_assert_eq!(id.as_str(), d.as_str());
            prop_assert_eq!(BeneficiaryId::from_scan(&id.id_qr_payload()).unwrap(), id);
        }

        #[test]
        fn parse_and_scan_never_panic(s in "\\PC{0,400}") {
            let _ = BeneficiaryId::parse(&s);
            let _ = BeneficiaryId::from_scan(&s);
        }

        #[test]
        fn normalisation_is_idempotent(local in "[a-zA-Z0-9._]{1,20}", domain in "[a-z]{1,10}\\.(fr|com)") {
            let input = format!("{local}@{domain}");
            if let Ok(id) = BeneficiaryId::parse(&input) {
                prop_assert_eq!(BeneficiaryId::parse(id.as_str()).unwrap(), id);
            }
        }
    }
}
