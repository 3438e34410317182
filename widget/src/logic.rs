//! What the widget decides, without a browser: texts, amounts, countdown, beneficiary input, the view
//! a payment calls for and the event the page hears. Built natively too, so plain `#[test]`s cover it.

use cvco_core::{Amount, BeneficiaryId};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Locale {
    Fr,
    En,
}

impl Locale {
    /// `en…` is English, everything else French (the merchant's and ANCV's default language).
    pub fn from_tag(tag: &str) -> Locale {
        if tag.trim().to_ascii_lowercase().starts_with("en") {
            Locale::En
        } else {
            Locale::Fr
        }
    }
    pub fn tag(self) -> &'static str {
        match self {
            Locale::Fr => "fr",
            Locale::En => "en",
        }
    }
}

/// Every text the widget shows. One table so a translation never goes missing silently.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Text {
    Name,
    Explain,
    FieldLabel,
    FieldHint,
    Pay,
    Scan,
    ScanStop,
    ShowQr,
    Loading,
    Sending,
    OpenApp,
    TimeLeft,
    Cancel,
    Cancelled,
    Paid,
    PartPaid,
    RemainingCard,
    Remaining,
    ChainRemainder,
    Declined,
    Refused,
    NoBalance,
    Locked,
    Expired,
    OneMinute,
    Error,
    Retry,
    QrTitle,
    QrExpires,
    QrWaiting,
    Ineligible,
    Reconnecting,
    NetworkError,
    Refunded,
    Amount,
    Checking,
}

pub const ALL_TEXTS: &[Text] = &[
    Text::Name,
    Text::Explain,
    Text::FieldLabel,
    Text::FieldHint,
    Text::Pay,
    Text::Scan,
    Text::ScanStop,
    Text::ShowQr,
    Text::Loading,
    Text::Sending,
    Text::OpenApp,
    Text::TimeLeft,
    Text::Cancel,
    Text::Cancelled,
    Text::Paid,
    Text::PartPaid,
    Text::RemainingCard,
    Text::Remaining,
    Text::ChainRemainder,
    Text::Declined,
    Text::Refused,
    Text::NoBalance,
    Text::Locked,
    Text::Expired,
    Text::OneMinute,
    Text::Error,
    Text::Retry,
    Text::QrTitle,
    Text::QrExpires,
    Text::QrWaiting,
    Text::Ineligible,
    Text::Reconnecting,
    Text::NetworkError,
    Text::Refunded,
    Text::Amount,
    Text::Checking,
];

/// `{}` in a text is replaced by an amount or a duration (see [`fill`]).
pub fn t(locale: Locale, text: Text) -> &'static str {
    let (fr, en) = match text {
        Text::Name => ("Chèque-Vacances Connect", "Chèque-Vacances Connect"),
        Text::Explain => (
            "Payez avec vos Chèques-Vacances dématérialisés : vous validez dans l'application ANCV.",
            "Pay with your digital holiday vouchers: you confirm in the ANCV app.",
        ),
        Text::FieldLabel => (
            "E-mail ou identifiant CV Connect (11 chiffres)",
            "E-mail or CV Connect id (11 digits)",
        ),
        Text::FieldHint => (
            "Saisissez-le ou scannez le code de votre application.",
            "Type it or scan the code shown in your app.",
        ),
        Text::Pay => ("Payer {}", "Pay {}"),
        Text::Scan => ("Scanner", "Scan"),
        Text::ScanStop => ("Arrêter le scan", "Stop scanning"),
        Text::ShowQr => ("Afficher un QR code de paiement", "Show a payment QR code"),
        Text::Loading => ("Chargement…", "Loading…"),
        Text::Sending => ("Envoi de la demande…", "Sending the request…"),
        Text::OpenApp => (
            "Ouvrez votre application ANCV Chèque-Vacances et validez le paiement de {}.",
            "Open your ANCV Chèque-Vacances app and confirm the payment of {}.",
        ),
        Text::TimeLeft => ("Temps restant : {}", "Time left: {}"),
        Text::Cancel => ("Annuler", "Cancel"),
        Text::Cancelled => ("Paiement annulé.", "Payment cancelled."),
        Text::Paid => ("Paiement de {} accepté.", "Payment of {} accepted."),
        Text::PartPaid => (
            "{} payés en Chèques-Vacances.",
            "{} paid with holiday vouchers.",
        ),
        Text::RemainingCard => (
            "Reste à payer : {}. Terminez le paiement par carte.",
            "Still to pay: {}. Finish the payment by card.",
        ),
        Text::Remaining => ("Reste à payer : {}.", "Still to pay: {}."),
        Text::ChainRemainder => (
            "Nouveau paiement CVCo pour {}",
            "New CVCo payment for {}",
        ),
        Text::Declined => (
            "Paiement refusé dans l'application.",
            "Payment declined in the app.",
        ),
        Text::Refused => ("Paiement refusé par l'ANCV.", "Payment refused by ANCV."),
        Text::NoBalance => (
            "Paiement refusé : votre solde de Chèques-Vacances est insuffisant.",
            "Payment refused: your holiday voucher balance is too low.",
        ),
        Text::Locked => (
            "Paiement refusé : votre compte est bloqué après trois codes erronés. Débloquez-le dans l'application ANCV.",
            "Payment refused: your account is locked after three wrong codes. Unlock it in the ANCV app.",
        ),
        Text::Expired => (
            "Le délai de validation est dépassé.",
            "The time to confirm has run out.",
        ),
        Text::OneMinute => (
            "Plus qu'une minute pour valider.",
            "One minute left to confirm.",
        ),
        Text::Error => ("Le paiement n'a pas abouti.", "The payment did not go through."),
        Text::Retry => ("Réessayer", "Try again"),
        Text::QrTitle => (
            "Scannez ce QR code avec l'application ANCV pour payer {}.",
            "Scan this QR code with the ANCV app to pay {}.",
        ),
        Text::QrExpires => ("Valable encore {}", "Valid for {}"),
        Text::QrWaiting => (
            "QR code scanné : validez dans l'application.",
            "QR code scanned: confirm in the app.",
        ),
        Text::Ineligible => (
            "Indisponible pour cette commande.",
            "Not available for this order.",
        ),
        Text::Reconnecting => (
            "Connexion interrompue, nouvelle tentative…",
            "Connection lost, retrying…",
        ),
        Text::NetworkError => (
            "Le serveur ne répond pas. Vérifiez votre connexion.",
            "The server does not answer. Check your connection.",
        ),
        Text::Refunded => ("Paiement remboursé.", "Payment refunded."),
        Text::Amount => ("Montant : {}", "Amount: {}"),
        Text::Checking => (
            "Vérification de votre paiement précédent auprès de l'ANCV…",
            "Checking your previous payment with ANCV…",
        ),
    };
    match locale {
        Locale::Fr => fr,
        Locale::En => en,
    }
}

/// Replaces the first `{}` (by hand: `replacen` and `format!` cost the download their searcher and
/// formatter).
pub fn fill(template: &str, value: &str) -> String {
    let at = template.as_bytes().windows(2).position(|w| w == b"{}");
    let (head, tail) = match at {
        Some(i) => (template.get(..i), template.get(i + 2..)),
        None => (Some(template), None),
    };
    let mut out = String::with_capacity(template.len() + value.len());
    out.push_str(head.unwrap_or_default());
    if at.is_some() {
        out.push_str(value);
    }
    out.push_str(tail.unwrap_or_default());
    out
}

/// Joins texts with one space.
pub fn join(parts: &[&str]) -> String {
    let mut out = String::new();
    for part in parts {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(part);
    }
    out
}

/// `text` for HTML text or a double-quoted attribute value: `&`, `<` and `"` escaped.
pub fn push_escaped(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
}

/// Decimal digits of `n`, without `core::fmt`.
pub fn push_number(out: &mut String, n: u64) {
    if n >= 10 {
        push_number(out, n / 10);
    }
    out.push(char::from(b'0' + (n % 10) as u8));
}

pub fn money(cents: u64, locale: Locale) -> String {
    match Amount::from_cents(cents) {
        Ok(a) => a.format(locale.tag()),
        Err(_) => String::new(),
    }
}

/// Lower-case hex digits of `n`, zero-padded to `width` (at most 16): `{:0width$x}` without
/// `core::fmt`.
pub fn push_hex(out: &mut String, n: u64, width: u32) {
    let digits = (64 - n.leading_zeros()).div_ceil(4).max(width).min(16);
    for i in (0..digits).rev() {
        let d = ((n >> (4 * i)) & 0xf) as u8;
        out.push(char::from(if d < 10 { b'0' + d } else { b'a' + d - 10 }));
    }
}

/// "2:05" for what is left before a deadline; never negative.
pub fn countdown(ms_left: i64) -> String {
    let secs = (ms_left.max(0) + 999) / 1000;
    let (m, s) = (secs as u64 / 60, secs as u64 % 60);
    let mut out = String::new();
    push_number(&mut out, m);
    out.push(':');
    if s < 10 {
        out.push('0');
    }
    push_number(&mut out, s);
    out
}

/// Typed or scanner-typed input: the cvco-core rules, the normalised id, or the message to show.
/// A scanner's framing (AIM prefix, `CVCO-ID:` QR payload) is accepted; a typing error keeps the
/// precise message of the typed rules.
pub fn read_beneficiary(input: &str, locale: Locale) -> Result<String, String> {
    match BeneficiaryId::parse(input) {
        Ok(id) => Ok(id.as_str().to_string()),
        Err(typed) => match BeneficiaryId::from_scan(input) {
            Ok(id) => Ok(id.as_str().to_string()),
            Err(_) => Err(typed.message(locale.tag()).to_string()),
        },
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Status {
    Pending,
    AwaitingBeneficiary,
    Authorized,
    PartiallyAuthorized,
    Declined,
    Expired,
    Cancelled,
    Refunded,
    Failed,
    /// The backend lost ANCV's answer to the creation and is checking what ANCV holds.
    Unknown,
}

impl Status {
    pub fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "pending" => Status::Pending,
            "awaiting_beneficiary" => Status::AwaitingBeneficiary,
            "authorized" => Status::Authorized,
            "partially_authorized" => Status::PartiallyAuthorized,
            "declined" => Status::Declined,
            "expired" => Status::Expired,
            "cancelled" => Status::Cancelled,
            "refunded" => Status::Refunded,
            "failed" => Status::Failed,
            "unknown" => Status::Unknown,
            _ => return None,
        })
    }
    pub fn is_final(self) -> bool {
        !matches!(
            self,
            Status::Pending | Status::AwaitingBeneficiary | Status::Unknown
        )
    }
}

/// The fields of the protocol's Payment object the widget uses.
#[derive(Clone, Debug, PartialEq)]
pub struct Payment {
    pub payment_id: String,
    pub status: Status,
    pub is_final: bool,
    pub amount_cents: u64,
    pub authorized_cents: u64,
    pub remaining_cents: u64,
    pub order_remaining_cents: u64,
    /// Milliseconds since the epoch, from `deadline`.
    pub deadline_ms: Option<i64>,
    pub next_action: String,
    pub qr_payload: Option<String>,
    pub qr_expires_ms: Option<i64>,
    pub events_url: String,
    pub sequence: u64,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    /// Why ANCV ended it (`abort_reason`: `insufficient_balance`, `account_locked`…).
    pub abort_reason: Option<String>,
    /// Where the sale happens (`channel`): only a web shop hands the rest to a card.
    pub channel: Option<String>,
}

impl Payment {
    /// A backend may leave `final` out; the status decides then.
    pub fn done(&self) -> bool {
        self.is_final || self.status.is_final()
    }
}

pub fn parse_time_ms(s: &str) -> Option<i64> {
    cvco_core::Timestamp::parse_rfc3339(s)
        .ok()
        .map(|t| t.millis())
}

/// What the shopper sees.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum View {
    Loading,
    Ineligible,
    Form,
    Sending,
    ShowQr,
    Waiting,
    Authorized,
    PartiallyAuthorized,
    Declined,
    Expired,
    Failed,
}

/// What a declined payment tells the shopper: the reason ANCV gave, else a plain refusal.
pub fn declined_text(p: &Payment) -> Text {
    match p.abort_reason.as_deref() {
        Some("declined_by_beneficiary") => Text::Declined,
        Some("insufficient_balance") => Text::NoBalance,
        Some("account_locked") => Text::Locked,
        _ => Text::Refused,
    }
}

/// The hand-off of a partial payment's rest: "by card" on a web shop (or a backend that does not
/// say), no tender named at a counter, kiosk or back-office, whose page says what comes next.
pub fn remaining_text(p: &Payment) -> Text {
    match p.channel.as_deref() {
        Some("ecommerce") | None => Text::RemainingCard,
        Some(_) => Text::Remaining,
    }
}

pub fn view_for(p: &Payment) -> View {
    match p.status {
        Status::Authorized | Status::Refunded => View::Authorized,
        Status::PartiallyAuthorized => View::PartiallyAuthorized,
        Status::Declined => View::Declined,
        Status::Expired => View::Expired,
        Status::Failed => View::Failed,
        // A cancelled payment gives the form back (with a note).
        Status::Cancelled => View::Form,
        Status::Unknown => View::Waiting,
        Status::Pending | Status::AwaitingBeneficiary => {
            if p.next_action == "show_qr" && p.qr_payload.is_some() {
                View::ShowQr
            } else {
                View::Waiting
            }
        }
    }
}

/// The event the page hears when a payment reaches this status (`cvco-change` is sent for every
/// change besides).
pub fn event_for(status: Status) -> Option<&'static str> {
    Some(match status {
        Status::Pending | Status::AwaitingBeneficiary | Status::Unknown => "cvco-pending",
        Status::Authorized => "cvco-authorized",
        Status::PartiallyAuthorized => "cvco-partially-authorized",
        Status::Declined => "cvco-declined",
        Status::Expired => "cvco-expired",
        Status::Failed => "cvco-error",
        Status::Cancelled | Status::Refunded => return None,
    })
}

/// Whether an update is news: the backend's `sequence` only grows, so an older or repeated status
/// (SSE replay after a reconnect, a slow poll answer) is dropped.
pub fn is_newer(current: Option<&Payment>, incoming: &Payment) -> bool {
    match current {
        Some(c) if c.payment_id == incoming.payment_id => {
            incoming.sequence > c.sequence || (incoming.done() && !c.done())
        }
        _ => true,
    }
}

/// Delay before the next poll: quick while waiting, backing off after network failures.
pub fn poll_delay_ms(failures: u32) -> u32 {
    match failures {
        0 => 1000,
        1 => 1500,
        2 => 2500,
        _ => 4000,
    }
}

/// The CVCo mark, drawn here so the widget needs no external asset: a voucher with a sun.
pub const LOGO_SVG: &str = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 48 32\" aria-hidden=\"true\" focusable=\"false\"><rect x=\"1\" y=\"1\" width=\"46\" height=\"30\" rx=\"5\" fill=\"#0a5c8f\"/><path d=\"M33 1v30\" stroke=\"#fff\" stroke-width=\"1.5\" stroke-dasharray=\"2 2\"/><circle cx=\"40\" cy=\"11\" r=\"4\" fill=\"#ffc629\"/><path d=\"M35 24c2-3 8-3 10 0\" stroke=\"#ffc629\" stroke-width=\"2\" fill=\"none\"/><path d=\"M7 12h18M7 17h14M7 22h10\" stroke=\"#fff\" stroke-width=\"2.5\" stroke-linecap=\"round\"/></svg>";

#[cfg(test)]
mod tests {
    use super::*;

    fn payment(status: Status) -> Payment {
        Payment {
            payment_id: "pay_1".into(),
            status,
            is_final: status.is_final(),
            amount_cents: 12000,
            authorized_cents: 0,
            remaining_cents: 12000,
            order_remaining_cents: 12000,
            deadline_ms: None,
            next_action: "wait_for_app".into(),
            qr_payload: None,
            qr_expires_ms: None,
            events_url: "/cvco/v1/payments/pay_1/events".into(),
            sequence: 1,
            error_code: None,
            error_message: None,
            abort_reason: None,
            channel: None,
        }
    }

    #[test]
    fn the_rest_of_a_partial_payment_goes_to_a_card_only_on_a_web_shop() {
        let mut p = payment(Status::PartiallyAuthorized);
        assert_eq!(remaining_text(&p), Text::RemainingCard);
        p.channel = Some("ecommerce".into());
        assert_eq!(remaining_text(&p), Text::RemainingCard);
        for c in ["proximity", "kiosk", "moto"] {
            p.channel = Some(c.into());
            assert_eq!(remaining_text(&p), Text::Remaining, "{c}");
        }
        assert!(!t(Locale::Fr, Text::Remaining).contains("carte"));
        assert!(!t(Locale::En, Text::Remaining).contains("card"));
    }

    #[test]
    fn a_declined_payment_says_why() {
        let mut p = payment(Status::Declined);
        for (reason, text) in [
            (Some("declined_by_beneficiary"), Text::Declined),
            (Some("insufficient_balance"), Text::NoBalance),
            (Some("account_locked"), Text::Locked),
            (Some("technical"), Text::Refused),
            (None, Text::Refused),
        ] {
            p.abort_reason = reason.map(str::to_string);
            assert_eq!(declined_text(&p), text, "{reason:?}");
        }
        assert!(t(Locale::Fr, Text::NoBalance).contains("solde"));
        assert!(t(Locale::En, Text::Locked).contains("locked"));
    }

    #[test]
    fn every_text_exists_in_both_languages_and_differs_where_it_should() {
        for &text in ALL_TEXTS {
            let (fr, en) = (t(Locale::Fr, text), t(Locale::En, text));
            assert!(!fr.is_empty() && !en.is_empty(), "{text:?}");
            assert_eq!(
                fr.matches("{}").count(),
                en.matches("{}").count(),
                "{text:?}"
            );
            if text != Text::Name {
                assert_ne!(fr, en, "{text:?} is not translated");
            }
        }
    }

    #[test]
    fn locale_tags() {
        assert_eq!(Locale::from_tag("en-GB"), Locale::En);
        assert_eq!(Locale::from_tag("EN"), Locale::En);
        assert_eq!(Locale::from_tag("fr-FR"), Locale::Fr);
        assert_eq!(Locale::from_tag(""), Locale::Fr);
        assert_eq!(Locale::from_tag("de"), Locale::Fr);
    }

    #[test]
    fn amounts_are_formatted_like_intl() {
        assert_eq!(money(123456, Locale::Fr), "1\u{202f}234,56\u{a0}€");
        assert_eq!(money(123456, Locale::En), "€1,234.56");
        assert_eq!(
            fill(t(Locale::En, Text::Pay), &money(4550, Locale::En)),
            "Pay €45.50"
        );
    }

    #[test]
    fn fill_join_and_numbers() {
        assert_eq!(fill("Pay {} now", "€1"), "Pay €1 now");
        assert_eq!(fill("{}", "x"), "x");
        assert_eq!(fill("Valid for {}", "2:00"), "Valid for 2:00");
        assert_eq!(fill("{} then {}", "a"), "a then {}");
        assert_eq!(fill("no slot", "x"), "no slot");
        assert_eq!(
            fill("Paiement de {} accepté.", "1\u{a0}€"),
            "Paiement de 1\u{a0}€ accepté."
        );
        assert_eq!(join(&["A.", "B."]), "A. B.");
        let mut html = String::new();
        push_escaped(&mut html, "<b class=\"x\">A & B</b> l'app");
        assert_eq!(html, "&lt;b class=&quot;x&quot;>A &amp; B&lt;/b> l'app");
        assert_eq!(join(&["A.", ""]), "A. ");
        for n in [0, 9, 10, 59, 100, 1_234_567, u64::MAX] {
            let mut s = String::new();
            push_number(&mut s, n);
            assert_eq!(s, n.to_string());
        }
        for n in [0, 9, 10, 255, 0xabc_def0_1234, (1 << 48) - 1, u64::MAX] {
            for width in [1, 12] {
                let mut s = String::new();
                push_hex(&mut s, n, width);
                assert_eq!(s, format!("{n:0width$x}", width = width as usize));
            }
        }
    }

    #[test]
    fn countdown_rounds_up_and_stops_at_zero() {
        assert_eq!(countdown(180_000), "3:00");
        assert_eq!(countdown(179_001), "3:00");
        assert_eq!(countdown(65_000), "1:05");
        assert_eq!(countdown(1), "0:01");
        assert_eq!(countdown(0), "0:00");
        assert_eq!(countdown(-5000), "0:00");
    }

    #[test]
    fn beneficiary_input_follows_core_rules() {
        assert_eq!(
            read_beneficiary(" 100-0000-0001 ", Locale::Fr).unwrap(),
            "10000000001"
        );
        assert_eq!(
            read_beneficiary("Alice.Approve@Sandbox.CVCO.test", Locale::En).unwrap(),
            "alice.approve@sandbox.cvco.test"
        );
        // What hand-held scanners send: AIM prefix, trailing CR, the app's id QR payload.
        assert_eq!(
            read_beneficiary("]C010000000002\r", Locale::Fr).unwrap(),
            "10000000002"
        );
        assert_eq!(
            read_beneficiary("CVCO-ID:10000000003", Locale::Fr).unwrap(),
            "10000000003"
        );
        let err = read_beneficiary("1234", Locale::En).unwrap_err();
        assert!(err.contains("11 digits"), "{err}");
        let err = read_beneficiary("1234", Locale::Fr).unwrap_err();
        assert!(err.contains("11 chiffres"), "{err}");
        assert!(read_beneficiary("not an id", Locale::En).is_err());
        assert!(read_beneficiary("", Locale::En).is_err());
    }

    #[test]
    fn views_follow_the_payment() {
        assert_eq!(view_for(&payment(Status::Pending)), View::Waiting);
        let mut qr = payment(Status::Pending);
        qr.next_action = "show_qr".into();
        assert_eq!(view_for(&qr), View::Waiting, "no payload, nothing to show");
        qr.qr_payload = Some("https://x/pay/1".into());
        assert_eq!(view_for(&qr), View::ShowQr);
        assert_eq!(view_for(&payment(Status::Authorized)), View::Authorized);
        assert_eq!(
            view_for(&payment(Status::PartiallyAuthorized)),
            View::PartiallyAuthorized
        );
        assert_eq!(view_for(&payment(Status::Declined)), View::Declined);
        assert_eq!(view_for(&payment(Status::Expired)), View::Expired);
        assert_eq!(view_for(&payment(Status::Cancelled)), View::Form);
        assert_eq!(view_for(&payment(Status::Failed)), View::Failed);
        // A lost answer being checked: still waiting, never final.
        assert_eq!(view_for(&payment(Status::Unknown)), View::Waiting);
        assert!(!Status::parse("unknown").unwrap().is_final());
        assert_eq!(
            event_for(Status::PartiallyAuthorized),
            Some("cvco-partially-authorized")
        );
        assert_eq!(event_for(Status::Failed), Some("cvco-error"));
        assert_eq!(event_for(Status::Cancelled), None);
    }

    #[test]
    fn stale_updates_are_dropped() {
        let mut current = payment(Status::AwaitingBeneficiary);
        current.sequence = 3;
        let mut older = payment(Status::Pending);
        older.sequence = 2;
        assert!(!is_newer(Some(&current), &older));
        assert!(!is_newer(Some(&current), &current.clone()));
        let mut newer = payment(Status::Authorized);
        newer.sequence = 4;
        assert!(is_newer(Some(&current), &newer));
        assert!(is_newer(None, &older));
        let mut other = payment(Status::Pending);
        other.payment_id = "pay_2".into();
        assert!(is_newer(Some(&current), &other));
    }

    #[test]
    fn statuses_parse_and_know_when_they_are_final() {
        for s in [
            "pending",
            "awaiting_beneficiary",
            "authorized",
            "partially_authorized",
            "declined",
            "expired",
            "cancelled",
            "refunded",
            "failed",
        ] {
            let st = Status::parse(s).unwrap();
            assert_eq!(
                st.is_final(),
                !matches!(s, "pending" | "awaiting_beneficiary")
            );
        }
        assert_eq!(Status::parse("PAID"), None);
        assert_eq!(
            parse_time_ms("2026-11-22T21:52:00.000Z"),
            Some(1_795_384_320_000)
        );
        assert_eq!(parse_time_ms("soon"), None);
    }

    #[test]
    fn poll_backs_off() {
        assert!(poll_delay_ms(0) < poll_delay_ms(1));
        assert_eq!(poll_delay_ms(9), poll_delay_ms(3));
    }
}
