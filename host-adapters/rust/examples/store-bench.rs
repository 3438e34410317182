//! `cargo run --release -p cvco-host --example store-bench [-- --payments 1000000] [--rounds 40]
//! [--database PATH]`: the back-office transactions page over many stored payments, read through
//! the store's own method (`Store::transactions`, what `GET /cvco/v1/transactions` calls) on the
//! schema and indexes of the store's migrations. Prints `transactions_page_p95_ms_sqlite <v> ms`
//! (p95 over every page shape below) and, on stderr, p50/p95 per shape.

use cvco_core::{Channel, NormalizedStatus};
use cvco_host::store::{PaymentStatus, Store, TransactionFilter};
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

/// `payments` rows over `payments * 9 / 10` orders (one in ten orders has a second attempt),
/// inserted by SQLite itself in one transaction into the migrated schema.
fn fill(rt: &tokio::runtime::Runtime, store: &Store, payments: i64) {
    let orders = payments * 9 / 10;
    let order_of = "((n - 1) * 9 / 10 + 1)";
    let status = status_case();
    let (unknown, pending) = (PaymentStatus::Unknown, NormalizedStatus::Pending.as_str());
    let (ecommerce, moto) = (Channel::Ecommerce.as_str(), Channel::Moto.as_str());
    let sql = format!(
        "INSERT INTO orders (order_ref, owner, kind, lines, total_cents, card_payments, created_at)
         WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < {orders})
         SELECT printf('CMD-%07d', n), NULL, 'shop', '[]', 1000 + (n * 37) % 100000, '[]',
                {START_MS} + n * {STEP_MS} FROM g;
         INSERT INTO payments (payment_id, order_ref, attempt, mode, channel, amount_cents,
             create_call, create_input, transaction_id, status, final, authorized_cents,
             refunded_cents, created_at, updated_at, next_poll_at)
         WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < {payments}),
              s(n, status) AS (SELECT n, {status} FROM g)
         SELECT printf('pay_%08d', n), printf('CMD-%07d', {order_of}), printf('att-%d', n),
                'identifier', CASE WHEN n % 5 = 0 THEN '{moto}' ELSE '{ecommerce}' END,
                1000 + (n * 37) % 100000, 'create_payment', '{{}}',
                CASE WHEN status = '{unknown}' THEN NULL ELSE printf('TX%09d', n) END,
                status, CASE WHEN status IN ('{unknown}', '{pending}') THEN 0 ELSE 1 END,
                CASE WHEN status IN ('authorized', 'partially_authorized', 'refunded')
                     THEN 1000 + (n * 37) % 100000 ELSE 0 END,
                CASE WHEN status = 'refunded' THEN 1000 + (n * 37) % 100000 ELSE 0 END,
                {START_MS} + n * {STEP_MS}, {START_MS} + n * {STEP_MS},
                {START_MS} + n * {STEP_MS}
         FROM s;"
    );
    rt.block_on(store.batch(&format!("BEGIN; {sql} COMMIT;")))
        .unwrap_or_else(|e| fail(format!("loading: {e:?}")));
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
    let mut database: Option<PathBuf> = None;
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
            // PostgreSQL needs Store::connect (the PostgreSQL store); until then, refused.
            "--database" if value.starts_with("postgres") => {
                fail("this store opens SQLite only: no transactions_page_p95_ms_postgres yet")
            }
            "--database" => database = Some(value.into()),
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
    // A file like a deployment's (WAL, page cache cold after the load's connection is reused).
    let path = database.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("cvco-store-bench-{}.sqlite", std::process::id()))
    });
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let store = Store::open(Some(&path)).unwrap_or_else(|e| fail(format!("{e:?}")));
    // The store is async: one thread, as the sync store ran.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail(e));
    let loading = Instant::now();
    fill(&rt, &store, payments);
    eprintln!(
        "profile {profile}: {payments} payments stored in {} in {:.1} s",
        path.display(),
        loading.elapsed().as_secs_f64()
    );

    let mut all = Vec::new();
    for (name, filter) in shapes(payments) {
        let mut samples = Vec::new();
        let mut listed = 0;
        for r in 0..rounds {
            let f = filter(r);
            let started = Instant::now();
            let (rows, total) = rt
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
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    println!(
        "transactions_page_p95_ms_sqlite {:.2} ms",
        ms(percentile(&mut all, 0.95))
    );
}
