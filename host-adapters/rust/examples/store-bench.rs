//! `cargo run --release -p cvco-host --example store-bench [-- --payments 1000000] [--rounds 40]
//! [--database PATH | postgres://…]`: the back-office transactions page over many stored payments,
//! read through the store's own method (`Store::transactions`, what `GET /cvco/v1/transactions`
//! calls, filtered to the session's merchant as it always is) on the schema and indexes of the
//! store's migrations. Prints `transactions_page_p95_ms_sqlite <v> ms` (or `_postgres` for a
//! `postgres://` database: give it an empty one) — p95 over every page shape below — and, on stderr,
//! p50/p95 per shape.

use cvco_core::{Channel, NormalizedStatus};
use cvco_host::store::{is_postgres_url, PaymentStatus, Store, TransactionFilter};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// 2026-01-01T00:00:00Z in ms; payments follow every 30 s (1,000,000 span 347 days).
const START_MS: i64 = 1_767_225_600_000;
const STEP_MS: i64 = 30_000;
const DAY_MS: i64 = 86_400_000;
const PAGE: i64 = 50;

fn fail(msg: impl std::fmt::Display) -> ! {
    eprintln!("store-bench: {msg}");
    std::process::exit(1);
}

/// The status of payment `n`, as a SQL CASE over `k = (n * 7) % 1000`: a shop's mix (mostly
/// authorized, a few still open, a few whose creation is unknown and so never listed).
fn status_case() -> String {
    use NormalizedStatus::*;
    let mix: [(i64, PaymentStatus); 9] = [
        (600, PaymentStatus::Known(Authorized)),
        (650, PaymentStatus::Known(PartiallyAuthorized)),
        (800, PaymentStatus::Known(Cancelled)),
        (880, PaymentStatus::Known(Refunded)),
        (960, PaymentStatus::Known(Declined)),
        (990, PaymentStatus::Known(Expired)),
        (995, PaymentStatus::Known(Failed)),
        (999, PaymentStatus::Unknown),
        (1000, PaymentStatus::Known(Pending)),
    ];
    let arms: String = mix
        .iter()
        .map(|(below, s)| format!(" WHEN (n * 7) % 1000 < {below} THEN '{s}'"))
        .collect();
    format!("CASE{arms} END")
}

/// The SQL the two databases spell differently: a numbers table `g(n)` of 1..=`count` and a
/// zero-padded text.
struct Dialect {
    postgres: bool,
}

impl Dialect {
    fn numbers(&self, count: i64) -> String {
        if self.postgres {
            format!("g(n) AS (SELECT generate_series(1::bigint, {count}))")
        } else {
            format!("RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < {count})")
        }
    }

    fn padded(&self, prefix: &str, width: usize, n: &str) -> String {
        if self.postgres {
            format!("'{prefix}' || lpad(({n})::text, {width}, '0')")
        } else {
            format!("printf('{prefix}%0{width}d', {n})")
        }
    }
}

/// `payments` rows over `payments * 9 / 10` orders (one in ten orders has a second attempt),
/// inserted by the database itself in one transaction into the migrated schema.
fn fill(rt: &tokio::runtime::Runtime, store: &Store, payments: i64) {
    let d = Dialect {
        postgres: store.is_postgres(),
    };
    let orders = payments * 9 / 10;
    let order_of = "((n - 1) * 9 / 10 + 1)";
    let status = status_case();
    let (unknown, pending) = (PaymentStatus::Unknown, NormalizedStatus::Pending.as_str());
    let (ecommerce, moto) = (Channel::Ecommerce.as_str(), Channel::Moto.as_str());
    let (order_numbers, payment_numbers) = (d.numbers(orders), d.numbers(payments));
    let order_ref = d.padded("CMD-", 7, "n");
    let payment_order = d.padded("CMD-", 7, order_of);
    let payment_id = d.padded("pay_", 8, "n");
    let transaction_id = d.padded("TX", 9, "n");
    let sql = format!(
        "INSERT INTO orders (order_ref, owner, kind, lines, total_cents, card_payments, created_at)
         WITH {order_numbers}
         SELECT {order_ref}, NULL, 'shop', '[]', 1000 + (n * 37) % 100000, '[]',
                {START_MS} + n * {STEP_MS} FROM g;
         INSERT INTO payments (payment_id, order_ref, attempt, mode, channel, amount_cents,
             create_call, create_input, transaction_id, status, final, authorized_cents,
             refunded_cents, created_at, updated_at, next_poll_at)
         WITH {payment_numbers},
              s(n, status) AS (SELECT n, {status} FROM g)
         SELECT {payment_id}, {payment_order}, 'att-' || n,
                'identifier', CASE WHEN n % 5 = 0 THEN '{moto}' ELSE '{ecommerce}' END,
                1000 + (n * 37) % 100000, 'create_payment', '{{}}',
                CASE WHEN status = '{unknown}' THEN NULL ELSE {transaction_id} END,
                status, CASE WHEN status IN ('{unknown}', '{pending}') THEN FALSE ELSE TRUE END,
                CASE WHEN status IN ('authorized', 'partially_authorized', 'refunded')
                     THEN 1000 + (n * 37) % 100000 ELSE 0 END,
                CASE WHEN status = 'refunded' THEN 1000 + (n * 37) % 100000 ELSE 0 END,
                {START_MS} + n * {STEP_MS}, {START_MS} + n * {STEP_MS},
                {START_MS} + n * {STEP_MS}
         FROM s;"
    );
    rt.block_on(store.batch(&format!("BEGIN; {sql} COMMIT;")))
        .unwrap_or_else(|e| fail(format!("loading: {e:?}")));
    // PostgreSQL plans from statistics its autovacuum gathers a little after a bulk load; a
    // deployment is measured in that steady state, not in the seconds after the load.
    if d.postgres {
        rt.block_on(store.batch("ANALYZE orders; ANALYZE payments;"))
            .unwrap_or_else(|e| fail(format!("analyze: {e:?}")));
    }
}

fn percentile(samples: &mut [Duration], fraction: f64) -> Duration {
    samples.sort_unstable();
    samples[((samples.len() as f64 - 1.0) * fraction).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// A page shape: its name and the filter of round `r`.
type Shape = (&'static str, Box<dyn Fn(usize) -> TransactionFilter>);

/// The page shapes a back-office user makes.
fn shapes(payments: i64) -> Vec<Shape> {
    let span_days = payments * STEP_MS / DAY_MS;
    let statuses = ["authorized", "refunded", "declined", "cancelled", "pending"];
    let page = |offset: i64| TransactionFilter {
        merchant_id: Some("default".into()),
        limit: PAGE,
        offset,
        ..Default::default()
    };
    // A month start somewhere in the stored range.
    let month = move |r: usize| START_MS + ((r as i64 * 37) % (span_days - 61).max(1)) * DAY_MS;
    vec![
        ("newest page, no filter", Box::new(move |_| page(0))),
        (
            "next pages, no filter (offset up to 1,000)",
            Box::new(move |r| page(PAGE * (1 + r as i64 % 20))),
        ),
        (
            "status + one month, first page",
            Box::new(move |r| TransactionFilter {
                status: Some(statuses[r % statuses.len()].into()),
                from: Some(month(r)),
                to: Some(month(r) + 30 * DAY_MS),
                ..page(0)
            }),
        ),
        (
            "status + one month, next pages",
            Box::new(move |r| TransactionFilter {
                status: Some(statuses[r % 3].into()),
                from: Some(month(r)),
                to: Some(month(r) + 30 * DAY_MS),
                ..page(PAGE * (1 + r as i64 % 10))
            }),
        ),
        (
            "one day",
            Box::new(move |r| TransactionFilter {
                from: Some(month(r)),
                to: Some(month(r) + DAY_MS),
                ..page(0)
            }),
        ),
        (
            "order ref (one order)",
            Box::new(move |r| TransactionFilter {
                order_ref: Some(format!(
                    "CMD-{:07}",
                    (r as i64 * 7919) % (payments * 9 / 10)
                )),
                ..page(0)
            }),
        ),
        (
            "order ref prefix + status + two months",
            Box::new(move |r| TransactionFilter {
                status: Some(statuses[r % 3].into()),
                from: Some(month(r)),
                to: Some(month(r) + 61 * DAY_MS),
                order_ref: Some(format!("CMD-0{}", r % 10)),
                ..page(0)
            }),
        ),
    ]
}

fn main() {
    let mut payments = 1_000_000i64;
    let mut rounds = 40usize;
    let mut database: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let value = args
            .next()
            .unwrap_or_else(|| fail(format!("{a} needs a value")));
        let number = || {
            value
                .parse::<usize>()
                .unwrap_or_else(|_| fail(format!("{a} needs a number")))
        };
        match a.as_str() {
            "--payments" => payments = number() as i64,
            "--rounds" => rounds = number(),
            "--database" => database = Some(value),
            other => fail(format!("unknown argument {other}")),
        }
    }
    if payments < 1000 || rounds == 0 {
        fail("--payments at least 1000, --rounds at least 1");
    }
    let profile = if cfg!(debug_assertions) {
        "dev"
    } else {
        "release"
    };
    let postgres = database.as_deref().is_some_and(is_postgres_url);
    // SQLite: a file like a deployment's (WAL, page cache cold after the load's connection is
    // reused), removed before and after.
    let sqlite_path = (!postgres).then(|| {
        database.clone().map(PathBuf::from).unwrap_or_else(|| {
            std::env::temp_dir().join(format!("cvco-store-bench-{}.sqlite", std::process::id()))
        })
    });
    let remove_sqlite = || {
        for suffix in ["", "-wal", "-shm"] {
            if let Some(path) = &sqlite_path {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
        }
    };
    remove_sqlite();
    // The store is async: one thread, as a back-office request runs.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail(e));
    let store = match (&sqlite_path, &database) {
        (Some(path), _) => Store::open(Some(path)),
        (None, Some(url)) => rt.block_on(Store::connect(url)),
        (None, None) => unreachable!("postgres implies a database URL"),
    }
    .unwrap_or_else(|e| fail(format!("{e:?}")));
    let place = sqlite_path
        .as_ref()
        .map_or_else(|| "PostgreSQL".to_string(), |p| p.display().to_string());
    let loading = Instant::now();
    fill(&rt, &store, payments);
    eprintln!(
        "profile {profile}: {payments} payments stored in {place} in {:.1} s",
        loading.elapsed().as_secs_f64()
    );

    let mut all = Vec::new();
    for (name, filter) in shapes(payments) {
        let mut samples = Vec::new();
        let mut listed = 0;
        for r in 0..rounds {
            let f = filter(r);
            let started = Instant::now();
            let cvco_host::store::TransactionPage { rows, total, .. } = rt
                .block_on(store.transactions(&f))
                .unwrap_or_else(|e| fail(format!("{name}: {e:?}")));
            samples.push(started.elapsed());
            if rows.len() as i64 > total || rows.len() as i64 > f.limit {
                fail(format!("{name}: {} rows of {total}", rows.len()));
            }
            listed += rows.len();
        }
        if listed == 0 {
            fail(format!("{name}: no row in any round"));
        }
        eprintln!(
            "transactions page, {name}: p50 {:.2} ms, p95 {:.2} ms",
            ms(percentile(&mut samples, 0.5)),
            ms(percentile(&mut samples, 0.95))
        );
        all.extend(samples);
    }
    drop(store);
    remove_sqlite();
    let backend = if postgres { "postgres" } else { "sqlite" };
    println!(
        "transactions_page_p95_ms_{backend} {:.2} ms",
        ms(percentile(&mut all, 0.95))
    );
}
