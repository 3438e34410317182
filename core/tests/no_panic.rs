//! No parser of cvco-core panics, whatever it is given: arbitrary strings and bytes, near-misses
//! of valid input (one character replaced, inserted or cut), JSON-ish documents and mutated valid
//! documents of every plugin-API and wire type. `PROPTEST_CASES` raises the count (the fuzz step
//! of `cargo xtask test` does); the cargo-fuzz targets in `fuzz/` drive the same `parsers` module.

mod parsers;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Map, Value};

/// Valid examples each text test starts its near-misses from.
const TIMES: &[&str] = &[
    "2026-11-22T21:49:00Z",
    "2026-11-22T22:49:00.5+01:00",
    "2026-01-01t12:00:00.123456-09:30",
    "2026-11-22 21:49:60z",
    "2026-11-22",
];
const AMOUNTS: &[&str] = &[
    "45,50 €",
    "1\u{202f}234,56\u{a0}€",
    "€1,234.56",
    "1.234,56 EUR",
    "45.5",
    "1000000000,00",
];
const BENEFICIARIES: &[&str] = &[
    "12345678901",
    " 123 456 789-01 ",
    "Jeanne.Dupont@Example.FR",
    "a!#$%&'*+-/=?^_`{|}~@x-y.example.fr",
];
const SCANS: &[&str] = &[
    "12345678901\r\n",
    "CVCO-ID:12345678901",
    "]Q1CVCO-ID:jeanne@example.fr",
    "\u{1d}12345678901\u{1d}",
    "]C012345678901",
    "https://app.ancv.example/id?v=1&id=12345678901",
];
const NAMES: &[&str] = &[
    "SHOP-0001",
    "ecommerce",
    "proximity",
    "AUTHORIZING",
    "partially_authorized",
    "cvco:pay?v=1&pt=pt_01&shop=SHOP-1&amount=4550",
    "EUR",
    "idem-key_01",
];
const HEADERS: &[&str] = &[
    "t=1795384140,v1=03c44a379acc8cfe8ce36a61fc6f052a3fcb113b44bc38e158963584a9d2e90b",
    "t=1795384140,v1=00,v1=ABCDEF",
    " t = -9223372036854775808 , v1 = 00 ",
];

/// Characters that break naive parsers: multi-byte, separators, digits, controls.
fn tricky_char() -> impl Strategy<Value = char> {
    prop_oneof![
        any::<char>(),
        select(vec![
            'é', '€', '😀', '\u{a0}', '\u{202f}', '\u{1d}', '\r', '\n', '\0', '-', ':', '.', ',',
            '+', 'T', 'Z', '@', '=', '&', '?', ']', '0', '9', ' ',
        ]),
    ]
}

/// An edit of a valid example: replace, insert or remove a character, or cut the text.
#[derive(Debug, Clone)]
enum Edit {
    Replace(usize, char),
    Insert(usize, char),
    Remove(usize),
    Cut(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), tricky_char()).prop_map(|(i, c)| Edit::Replace(i, c)),
        (any::<usize>(), tricky_char()).prop_map(|(i, c)| Edit::Insert(i, c)),
        any::<usize>().prop_map(Edit::Remove),
        any::<usize>().prop_map(Edit::Cut),
    ]
}

fn apply(base: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = base.chars().collect();
    for e in edits {
        let n = chars.len();
        match *e {
            Edit::Replace(i, c) if n > 0 => chars[i % n] = c,
            Edit::Insert(i, c) => chars.insert(i % (n + 1), c),
            Edit::Remove(i) if n > 0 => {
                chars.remove(i % n);
            }
            Edit::Cut(i) => chars.truncate(i % (n + 1)),
            _ => {}
        }
    }
    chars.into_iter().collect()
}

/// Arbitrary text, lossy-decoded arbitrary bytes, and near-misses of `examples`.
fn text(examples: &'static [&'static str]) -> BoxedStrategy<String> {
    prop_oneof![
        any::<String>(),
        "\\PC{0,48}",
        vec(any::<u8>(), 0..64).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        (select(examples), vec(edit(), 1..4)).prop_map(|(base, edits)| apply(base, &edits)),
        (select(examples), select(examples)).prop_map(|(a, b)| format!("{a}{b}")),
    ]
    .boxed()
}

/// Every field name of the JSON types, so random objects often hit real fields.
const FIELDS: &[&str] = &[
    "input",
    "scanned",
    "order_ref",
    "amount_cents",
    "channel",
    "beneficiary",
    "adjustable",
    "idempotency_key",
    "capture_mode",
    "notification_url",
    "return_url",
    "cancel_url",
    "now",
    "payment_id",
    "password",
    "reason",
    "delivery",
    "email",
    "expires_in_s",
    "request_id",
    "headers",
    "body",
    "tolerance_s",
    "from",
    "to",
    "state",
    "min_amount_cents",
    "max_amount_cents",
    "limit",
    "offset",
    "payload",
    "id",
    "type",
    "created_at",
    "shop_id",
    "merchant_order_id",
    "transaction_id",
    "pre_transaction_id",
    "sequence",
    "currency",
    "payers",
    "refunds",
    "authorized_cents",
    "captured_cents",
    "refunded_cents",
    "updated_at",
    "expires_at",
    "abort_reason",
    "number",
    "holder",
    "validated_at",
    "authorizations",
    "items",
    "total",
    "ok",
    "error",
    "code",
    "message_fr",
    "message_en",
    "retryable",
    "field",
    "date",
    "lines",
    "fee_bps",
    "closing_hour",
    "days",
    "next_action",
    "deadline",
    "status",
    "final",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        prop_oneof![Just(0i64), Just(-1), Just(1), Just(100_000_000_001)].prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        text(TIMES).prop_map(Value::String),
        text(BENEFICIARIES).prop_map(Value::String),
        text(NAMES).prop_map(Value::String),
        select(FIELDS).prop_map(Value::from),
    ]
}

fn json_ish() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 8, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            vec(
                (
                    prop_oneof![4 => select(FIELDS).prop_map(String::from), 1 => "\\PC{0,8}"],
                    inner
                ),
                0..10
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// The valid documents in `fuzz/seeds/json/<Type>.json` (also the cargo-fuzz corpus seeds).
fn seeds() -> Vec<(String, Value)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/seeds/json");
    let mut out: Vec<(String, Value)> = std::fs::read_dir(dir)
        .expect("fuzz/seeds/json")
        .map(|e| {
            let path = e.unwrap().path();
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            (name, serde_json::from_str(&text).expect("seed is JSON"))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Walks `path` down objects and arrays, then replaces (or, without a value, removes) what it
/// lands on.
fn mutate(v: &mut Value, path: &[usize], new: Option<Value>) {
    let Some((&i, rest)) = path.split_first() else {
        return;
    };
    let descend = !rest.is_empty();
    match v {
        Value::Object(m) if !m.is_empty() => {
            let key = m.keys().nth(i % m.len()).unwrap().clone();
            match (descend, new) {
                (true, new) => mutate(m.get_mut(&key).unwrap(), rest, new),
                (false, Some(n)) => {
                    m.insert(key, n);
                }
                (false, None) => {
                    m.remove(&key);
                }
            }
        }
        Value::Array(a) if !a.is_empty() => {
            let n = a.len();
            match (descend, new) {
                (true, new) => mutate(&mut a[i % n], rest, new),
                (false, Some(x)) => a[i % n] = x,
                (false, None) => {
                    a.remove(i % n);
                }
            }
        }
        _ => {
            if let Some(n) = new {
                *v = n;
            }
        }
    }
}

proptest! {
    #[test]
    fn parse_rfc3339_never_panics_on_arbitrary_input(s in text(TIMES)) {
        parsers::rfc3339(&s);
    }

    #[test]
    fn date_parse_never_panics_on_arbitrary_input(s in text(TIMES)) {
        parsers::date(&s);
    }

    #[test]
    fn timestamp_methods_never_panic_on_any_instant(
        ms in prop_oneof![any::<i64>(), Just(i64::MIN), Just(i64::MAX), 0i64..253_402_300_800_000],
        hour in any::<u8>(),
    ) {
        parsers::instant(ms, hour);
    }

    #[test]
    fn amount_parse_never_panics_on_arbitrary_input(s in text(AMOUNTS)) {
        parsers::amount(&s);
    }

    #[test]
    fn beneficiary_parse_never_panics_on_arbitrary_input(s in text(BENEFICIARIES)) {
        parsers::beneficiary(&s);
    }

    #[test]
    fn scan_parse_never_panics_on_arbitrary_code128_or_id_qr(s in text(SCANS)) {
        parsers::scan(&s);
    }

    #[test]
    fn shop_channel_and_state_names_never_panic_on_arbitrary_input(s in text(NAMES)) {
        parsers::names(&s);
    }

    #[test]
    fn payment_qr_parse_never_panics_on_arbitrary_input(s in text(NAMES)) {
        parsers::payment_qr(&s);
    }

    #[test]
    fn reference_key_and_id_checks_never_panic_on_arbitrary_input(s in text(NAMES)) {
        parsers::checks(&s);
    }

    #[test]
    fn signature_verify_never_panics_on_arbitrary_header_and_body(
        header in text(HEADERS),
        body in prop_oneof![
            vec(any::<u8>(), 0..256),
            json_ish().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        ],
        now in prop_oneof![any::<i64>(), Just(1_795_384_140i64)],
        tolerance in prop_oneof![any::<i64>(), Just(300i64), Just(-1i64)],
    ) {
        parsers::signature(&header, &body, now, tolerance);
    }

    #[test]
    fn json_types_never_panic_on_arbitrary_bytes(bytes in vec(any::<u8>(), 0..512)) {
        parsers::json(&bytes);
    }

    #[test]
    fn json_types_never_panic_on_json_ish_text(v in json_ish(), cut in any::<usize>(), whole in any::<bool>()) {
        let text = serde_json::to_string(&v).unwrap();
        if whole {
            parsers::json(text.as_bytes());
        } else {
            let b = text.as_bytes();
            parsers::json(&b[..cut % (b.len() + 1)]);
        }
    }

    #[test]
    fn json_types_never_panic_on_mutated_valid_documents(
        pick in any::<usize>(),
        edits in vec((vec(any::<usize>(), 1..4), proptest::option::weighted(0.8, json_ish())), 1..4),
    ) {
        let all = seeds();
        let (_, seed) = &all[pick % all.len()];
        let mut doc = seed.clone();
        for (path, new) in edits {
            mutate(&mut doc, &path, new);
        }
        parsers::json(serde_json::to_string(&doc).unwrap().as_bytes());
    }
}

/// The seed documents stay valid documents of the type they are named after, and every type
/// has one: otherwise the mutations above (and the fuzz corpus) would start from garbage.
#[test]
fn json_seeds_are_valid_documents_of_their_type() {
    let all = seeds();
    for (name, decode) in parsers::TYPES {
        let (_, seed) = all
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no fuzz/seeds/json/{name}.json"));
        assert!(
            decode(seed.to_string().as_bytes()),
            "{name}.json does not decode as {name}"
        );
    }
    for (name, _) in &all {
        assert!(
            parsers::TYPES.iter().any(|(n, _)| n == name),
            "{name}.json: no such type"
        );
    }
}

/// The inputs this audit found, each of which panicked (or overflowed) before it was fixed.
#[test]
fn crafted_inputs_from_the_audit_are_typed_errors() {
    use cvco_core::{ErrorCode, Timestamp};
    for s in [
        "2026-01-01T12:00:0é",
        "2026-01-01T12:00:00+0é:00",
        "2026-01-01T1é:00:00Z",
    ] {
        let e = Timestamp::parse_rfc3339(s).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRequest, "{s:?}");
    }
    let query = r#"{"from":"2026-01-01T12:00:0é"}"#;
    assert!(serde_json::from_str::<cvco_core::plugin_api::ListPaymentsInput>(query).is_err());
    assert!(serde_json::from_str::<cvco_core::Amount>("100000000001").is_err());
    parsers::signature(&format!("t={},v1=00", i64::MIN), b"{}", 1_795_384_140, 300);
}
