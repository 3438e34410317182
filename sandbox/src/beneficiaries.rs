//! The scripted beneficiaries: every use case a merchant needs, reachable by id and by e-mail.

use cvco_core::{Amount, BeneficiaryId, CvcoError, ErrorCode};
use serde::Serialize;

/// What a scripted account does when an authorization request reaches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Behaviour {
    /// Pays the full amount after the scripted delay.
    Approve,
    /// Pays min(amount, balance): a partial authorization.
    Partial,
    /// Refuses after the scripted delay.
    Decline,
    /// Never answers: the transaction expires.
    Silent,
    /// Blocked account: the request is refused at once.
    Blocked,
    /// Waits for a person in /app; the only balance that depletes.
    Manual,
    /// Pays half when the merchant allows adjustment, else the full amount.
    Adjust,
    /// Empty balance: declined for insufficient balance.
    Empty,
}

#[derive(Debug, Clone, Serialize)]
pub struct Scripted {
    pub id: &'static str,
    pub email: &'static str,
    pub holder: &'static str,
    pub behaviour: Behaviour,
    pub balance_cents: u64,
    #[serde(skip)]
    pub pin: &'static str,
    pub description_fr: &'static str,
}

pub const PIN: &str = "1234";

pub static TABLE: [Scripted; 8] = [
    Scripted {
        id: "10000000001",
        email: "alice.approve@sandbox.cvco.test",
        holder: "A. Martin",
        behaviour: Behaviour::Approve,
        balance_cents: 100_000,
        pin: PIN,
        description_fr: "Accepte le montant total après le délai.",
    },
    Scripted {
        id: "10000000002",
        email: "bruno.partial@sandbox.cvco.test",
        holder: "B. Petit",
        behaviour: Behaviour::Partial,
        balance_cents: 3_500,
        pin: PIN,
        description_fr: "Solde de 35,00 € : autorisation partielle au-delà.",
    },
    Scripted {
        id: "10000000003",
        email: "chloe.decline@sandbox.cvco.test",
        holder: "C. Durand",
        behaviour: Behaviour::Decline,
        balance_cents: 100_000,
        pin: PIN,
        description_fr: "Refuse le paiement après le délai.",
    },
    Scripted {
        id: "10000000004",
        email: "david.silent@sandbox.cvco.test",
        holder: "D. Bernard",
        behaviour: Behaviour::Silent,
        balance_cents: 100_000,
        pin: PIN,
        description_fr: "Ne répond jamais : la transaction expire.",
    },
    Scripted {
        id: "10000000005",
        email: "eve.blocked@sandbox.cvco.test",
        holder: "E. Robert",
        behaviour: Behaviour::Blocked,
        balance_cents: 100_000,
        pin: PIN,
        description_fr: "Compte bloqué : demande d'autorisation refusée.",
    },
    Scripted {
        id: "10000000006",
        email: "jeanne.manual@sandbox.cvco.test",
        holder: "J. Dupont",
        behaviour: Behaviour::Manual,
        balance_cents: 50_000,
        pin: PIN,
        description_fr: "Manuel : attend une personne dans /app ; le solde diminue.",
    },
    Scripted {
        id: "10000000007",
        email: "hugo.adjust@sandbox.cvco.test",
        holder: "H. Moreau",
        behaviour: Behaviour::Adjust,
        balance_cents: 100_000,
        pin: PIN,
        description_fr: "Paie la moitié si le montant est ajustable, sinon le total.",
    },
    Scripted {
        id: "10000000008",
        email: "ines.empty@sandbox.cvco.test",
        holder: "I. Laurent",
        behaviour: Behaviour::Empty,
        balance_cents: 0,
        pin: PIN,
        description_fr: "Solde nul : refus pour solde insuffisant.",
    },
];

impl Scripted {
    pub fn initial_balance(&self) -> Amount {
        Amount::from_cents(self.balance_cents).unwrap_or(Amount::ZERO)
    }

    /// Whether payments lower the balance (only the manual account's does).
    pub fn depletes(&self) -> bool {
        self.behaviour == Behaviour::Manual
    }

    /// Whether a background script answers for it (the manual and silent ones never do).
    pub fn acts_alone(&self) -> bool {
        !matches!(
            self.behaviour,
            Behaviour::Manual | Behaviour::Silent | Behaviour::Blocked
        )
    }

    /// What the script agrees to pay before the balance cap; `None` means it refuses.
    pub fn scripted_amount(&self, amount: Amount, adjustable: bool) -> Option<Amount> {
        match self.behaviour {
            Behaviour::Decline => None,
            Behaviour::Adjust if adjustable => {
                Some(Amount::from_cents((amount.cents() / 2).max(1)).unwrap_or(amount))
            }
            _ => Some(amount),
        }
    }

    pub fn id_qr_payload(&self) -> String {
        BeneficiaryId::CvConnectId(self.id.to_string()).id_qr_payload()
    }
}

/// Resolves what a merchant or the app typed: malformed → `invalid_beneficiary`,
/// well-formed but absent from the table → `beneficiary_unknown`.
pub fn resolve(input: &str) -> Result<(BeneficiaryId, &'static Scripted), CvcoError> {
    let id = BeneficiaryId::parse(input).map_err(|e| e.with_field("beneficiary"))?;
    let found = TABLE.iter().find(|b| match &id {
        BeneficiaryId::CvConnectId(d) => b.id == d,
        BeneficiaryId::Email(e) => b.email == e,
    });
    match found {
        Some(b) => Ok((id, b)),
        None => Err(CvcoError::new(ErrorCode::BeneficiaryUnknown).with_field("beneficiary")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_account_resolves_by_id_and_email() {
        for b in &TABLE {
            assert_eq!(resolve(b.id).unwrap().1.id, b.id);
            assert_eq!(resolve(&b.email.to_uppercase()).unwrap().1.id, b.id);
        }
        assert_eq!(
            resolve("19999999999").unwrap_err().code,
            ErrorCode::BeneficiaryUnknown
        );
        assert_eq!(
            resolve("123").unwrap_err().code,
            ErrorCode::InvalidBeneficiary
        );
    }

    #[test]
    fn adjuster_pays_half_rounded_down_at_least_one_cent() {
        let hugo = &TABLE[6];
        let a = |c| Amount::from_cents(c).unwrap();
        assert_eq!(hugo.scripted_amount(a(4551), true), Some(a(2275)));
        assert_eq!(hugo.scripted_amount(a(1), true), Some(a(1)));
        assert_eq!(hugo.scripted_amount(a(4551), false), Some(a(4551)));
    }
}
