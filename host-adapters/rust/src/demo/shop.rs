//! The demo shop: a catalogue of holiday rentals and a simulated card payment.

use crate::http::ApiError;
use crate::util::invalid;
use cvco_core::{CvcoError, ErrorCode, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

#[derive(Debug, Clone, Serialize)]
pub struct Product {
    pub sku: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub price_cents: i64,
    pub unit: &'static str,
}

pub fn catalogue() -> Vec<Product> {
    vec![
        Product {
            sku: "MOBIL-HOME-NUIT",
            name: "Nuit en mobil-home",
            description: "Mobil-home 4 personnes au bord du lac, terrasse couverte.",
            price_cents: 8900,
            unit: "nuit",
        },
        Product {
            sku: "CHALET-NUIT",
            name: "Nuit en chalet bois",
            description: "Chalet 6 personnes, deux chambres, vue sur la montagne.",
            price_cents: 12500,
            unit: "nuit",
        },
        Product {
            sku: "EMPLACEMENT-NUIT",
            name: "Emplacement de camping",
            description: "Emplacement ombragé 100 m², électricité comprise.",
            price_cents: 2450,
            unit: "nuit",
        },
        Product {
            sku: "KAYAK-SORTIE",
            name: "Sortie kayak accompagnée",
            description: "Demi-journée sur la rivière avec un moniteur diplômé.",
            price_cents: 3500,
            unit: "personne",
        },
        Product {
            sku: "PARC-BILLET",
            name: "Billet parc aquatique",
            description: "Entrée journée au parc aquatique, toboggans et piscine à vagues.",
            price_cents: 2200,
            unit: "billet",
        },
        Product {
            sku: "VELO-JOUR",
            name: "Location de vélo",
            description: "Vélo tout chemin, casque et antivol fournis.",
            price_cents: 1500,
            unit: "jour",
        },
    ]
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Item {
    pub sku: String,
    pub quantity: i64,
}

/// Order lines and total, from the catalogue only.
/// Token buckets bounding anonymous order creation: one per client and one for everybody, each
/// refilled at `per_minute` and holding at most that many (a burst of one minute's worth).
pub struct OrderLimit {
    per_client: u32,
    total: u32,
    state: std::sync::Mutex<(Bucket, std::collections::HashMap<String, Bucket>)>,
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: std::time::Instant,
}

impl Bucket {
    fn full(per_minute: u32, now: std::time::Instant) -> Bucket {
        Bucket {
            tokens: per_minute as f64,
            at: now,
        }
    }

    fn refill(&mut self, per_minute: u32, now: std::time::Instant) {
        let gained = now.duration_since(self.at).as_secs_f64() * per_minute as f64 / 60.0;
        self.tokens = (self.tokens + gained).min(per_minute as f64);
        self.at = now;
    }
}

impl OrderLimit {
    pub fn new(per_client: u32, total: u32) -> OrderLimit {
        let now = std::time::Instant::now();
        OrderLimit {
            per_client,
            total,
            state: std::sync::Mutex::new((Bucket::full(total, now), Default::default())),
        }
    }

    /// Takes one order from the client's bucket and the global one, or answers 429.
    pub fn take(&self, client: &str) -> Result<(), ApiError> {
        let now = std::time::Instant::now();
        let mut g = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (global, clients) = &mut *g;
        if clients.len() > 10_000 {
            // Full buckets carry no information: forget them.
            let per = self.per_client;
            clients.retain(|_, b| {
                b.refill(per, now);
                b.tokens < per as f64
            });
        }
        global.refill(self.total, now);
        let b = clients
            .entry(client.to_string())
            .or_insert_with(|| Bucket::full(self.per_client, now));
        b.refill(self.per_client, now);
        if b.tokens < 1.0 || global.tokens < 1.0 {
            return Err(CvcoError::new(ErrorCode::TooManyAttempts)
                .with_detail(
                    "Trop de commandes en peu de temps : réessayez dans une minute.",
                    "Too many orders in a short time: try again in a minute.",
                )
                .retryable(true)
                .into());
        }
        b.tokens -= 1.0;
        global.tokens -= 1.0;
        Ok(())
    }
}

pub fn price(items: &[Item]) -> Result<(Value, i64), ApiError> {
    if items.is_empty() || items.len() > 20 {
        return Err(invalid("items", "1 à 20 articles.", "1 to 20 items.").into());
    }
    let cat = catalogue();
    let mut lines = Vec::new();
    let mut total = 0i64;
    for item in items {
        let p = cat
            .iter()
            .find(|p| p.sku == item.sku)
            .ok_or_else(|| ApiError::from(invalid("sku", "Article inconnu.", "Unknown item.")))?;
        if !(1..=99).contains(&item.quantity) {
            return Err(invalid("quantity", "Entre 1 et 99.", "Between 1 and 99.").into());
        }
        let line_total = p.price_cents * item.quantity;
        total += line_total;
        lines.push(
            json!({"sku": p.sku, "name": p.name, "quantity": item.quantity,
            "unit_price_cents": p.price_cents, "total_cents": line_total}),
        );
    }
    Ok((Value::Array(lines), total))
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Card {
    pub card_number: String,
    pub expiry: String,
    pub cvc: String,
}

fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            let d = (*d - b'0') as u32;
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Checks the (simulated) card; answers its last four digits. Ending in 0002: declined.
pub fn check_card(card: &Card, now: Timestamp) -> Result<String, ApiError> {
    let digits: Vec<u8> = card
        .card_number
        .bytes()
        .filter(|b| !matches!(b, b' ' | b'-'))
        .collect();
    if !(12..=19).contains(&digits.len())
        || !digits.iter().all(u8::is_ascii_digit)
        || !luhn(&digits)
    {
        return Err(invalid(
            "card_number",
            "Numéro de carte invalide.",
            "Invalid card number.",
        )
        .into());
    }
    let bad_expiry = || {
        ApiError::from(invalid(
            "expiry",
            "Date d'expiration invalide (MM/AA).",
            "Invalid expiry date (MM/YY).",
        ))
    };
    let (mm, yy) = card.expiry.trim().split_once('/').ok_or_else(bad_expiry)?;
    let (mm, yy): (u32, u32) = (
        mm.trim().parse().map_err(|_| bad_expiry())?,
        yy.trim().parse().map_err(|_| bad_expiry())?,
    );
    let year = if yy < 100 {
        2000 + yy as i32
    } else {
        yy as i32
    };
    let today = now.utc_date();
    if !(1..=12).contains(&mm) || (year, mm as u8) < (today.year, today.month) {
        return Err(bad_expiry());
    }
    let cvc = card.cvc.trim();
    if !(3..=4).contains(&cvc.len()) || !cvc.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid("cvc", "Cryptogramme invalide.", "Invalid security code.").into());
    }
    let last4 = String::from_utf8_lossy(&digits[digits.len() - 4..]).to_string();
    if last4 == "0002" {
        return Err(CvcoError::new(ErrorCode::CardDeclined).into());
    }
    Ok(last4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cards() {
        let now = Timestamp::parse_rfc3339("2026-11-25T10:00:00Z").unwrap();
        let card = |n: &str, e: &str| Card {
            card_number: n.into(),
            expiry: e.into(),
            cvc: "123".into(),
        };
        assert_eq!(
            check_card(&card("4242 4242 4242 4242", "12/30"), now).ok(),
            Some("4242".into())
        );
        assert!(check_card(&card("4242 4242 4242 4241", "12/30"), now).is_err());
        assert!(check_card(&card("4242 4242 4242 4242", "10/26"), now).is_err());
        let declined = check_card(&card("4000 0000 0000 0002", "12/30"), now)
            .err()
            .unwrap();
        assert_eq!(declined.0.code, ErrorCode::CardDeclined);
    }

    #[test]
    fn prices_come_from_the_catalogue() {
        let (lines, total) = price(&[
            Item {
                sku: "CHALET-NUIT".into(),
                quantity: 2,
            },
            Item {
                sku: "KAYAK-SORTIE".into(),
                quantity: 1,
            },
        ])
        .unwrap();
        assert_eq!(total, 28500);
        assert_eq!(lines[0]["total_cents"], 25000);
        assert!(price(&[Item {
            sku: "NOPE".into(),
            quantity: 1
        }])
        .is_err());
        assert!(price(&[Item {
            sku: "CHALET-NUIT".into(),
            quantity: 0
        }])
        .is_err());
    }
}
