//! Several cvco-host instances on one PostgreSQL database and one sandbox: live status crosses
//! instances, two pollers never read the same payment at once, and a killed instance's payment
//! is finished by another, recorded once. PostgreSQL only: skipped (with the reason printed)
//! without `CVCO_TEST_DATABASE_URL`.

mod common;

use axum::extract::{Request, State};
use axum::response::Response;
use common::*;
use cvco_host::store::testing::{PgDatabase, URL_ENV};
use cvco_host::{HostConfig, HostHandle};
use cvco_sandbox::{SandboxConfig, SandboxHandle};
use futures_util::StreamExt;
use reqwest::header::{HeaderMap, HeaderValue, COOKIE};
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Cluster {
    sandbox: SandboxHandle,
    a: Option<HostHandle>,
    b: HostHandle,
    cfg: HostConfig,
    // Dropped last: its drop removes the database.
    _db: PgDatabase,
}

/// A sandbox and two hosts on a fresh database; `tune_b` adjusts the second one's configuration.
async fn cluster(
    approve_delay_ms: u64,
    tune: impl Fn(&mut HostConfig),
    tune_b: impl Fn(&mut HostConfig),
) -> Option<Cluster> {
    let Some(db) = PgDatabase::create().await else {
        eprintln!("skipped: no {URL_ENV} (PostgreSQL only; `cargo xtask test` sets it)");
        return None;
    };
    let db = db.expect("test database");
    let sandbox = cvco_sandbox::spawn(SandboxConfig {
        approve_delay_ms,
        ..Default::default()
    })
    .await
    .expect("sandbox");
    let mut cfg = test_config(&sandbox.base_url);
    cfg.database = Some(db.url.clone());
    tune(&mut cfg);
    let a = cvco_host::spawn(cfg.clone()).await.expect("host A");
    let mut cfg_b = cfg.clone();
    tune_b(&mut cfg_b);
    let b = cvco_host::spawn(cfg_b).await.expect("host B");
    Some(Cluster {
        sandbox,
        a: Some(a),
        b,
        cfg,
        _db: db,
    })
}

/// A shopper (its cookie) talking to `base`; `on(other)` is the same shopper on another instance.
fn shopper(base: &str) -> Client {
    let token = cvco_host::util::random_token(32);
    let mut h = HeaderMap::new();
    h.insert(
        COOKIE,
        HeaderValue::from_str(&format!("cvco_shop={token}")).unwrap(),
    );
    Client {
        http: reqwest::Client::builder()
            .default_headers(h)
            .build()
            .unwrap(),
        base: base.into(),
        csrf: None,
    }
}

fn on(client: &Client, base: &str) -> Client {
    Client {
        base: base.into(),
        ..client.clone()
    }
}

/// The SSE events of a payment on `client`'s instance until the final one, each with when it
/// arrived.
async fn final_event(client: &Client, id: &str) -> (Value, Instant) {
    let r = client
        .http
        .get(format!("{}/cvco/v1/payments/{id}/events", client.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut stream = r.bytes_stream();
    let mut buf = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let chunk = tokio::time::timeout_at(deadline, stream.next())
            .await
            .expect("no final event in 30 s")
            .expect("stream ended before the final event")
            .unwrap();
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("data:") {
                    let data: Value = serde_json::from_str(v.trim()).unwrap();
                    if data["final"] == true {
                        return (data, Instant::now());
                    }
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_notification_received_by_instance_a_reaches_a_live_status_client_on_instance_b() {
    // Neither instance polls within the test: A learns the outcome from ANCV's notification
    // (its public URL is the one given to ANCV), B only from A through the database.
    let slow = |c: &mut HostConfig| {
        c.poll_interval_ms = 60_000;
        c.poll_max_ms = 60_000;
    };
    let Some(cl) = cluster(300, slow, slow).await else {
        return;
    };
    let a = cl.a.as_ref().unwrap();
    let shopper_a = shopper(&a.base_url);
    let order = shopper_a.test_order(4200).await;
    let created = shopper_a.pay(&order, ALICE, "x1").await;
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.body["payment_id"].as_str().unwrap().to_string();
    let started = Instant::now();
    let (last, at) = final_event(&on(&shopper_a, &cl.b.base_url), &id).await;
    assert_eq!(last["status"], "authorized");
    // B re-reads on its own only every 5 s: an earlier final event came through A's NOTIFY.
    let waited = at - started;
    assert!(
        waited < Duration::from_secs(3),
        "B saw the outcome after {waited:?}"
    );
}

/// Status reads (`GET /api/v1/transactions/{id}`) an instance sent, each with its start and end.
type Reads = Arc<Mutex<Vec<(String, Instant, Instant)>>>;

#[derive(Clone)]
struct Proxy {
    to: String,
    http: reqwest::Client,
    reads: Reads,
}

async fn forward(State(p): State<Proxy>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    let path = parts.uri.path().to_string();
    let target = match parts.uri.query() {
        Some(q) => format!("{}{path}?{q}", p.to),
        None => format!("{}{path}", p.to),
    };
    let mut out = p.http.request(parts.method.clone(), target).body(body);
    for (k, v) in &parts.headers {
        if k != axum::http::header::HOST {
            out = out.header(k, v);
        }
    }
    let started = Instant::now();
    let answer = out.send().await.unwrap();
    let status = answer.status();
    let headers = answer.headers().clone();
    let bytes = answer.bytes().await.unwrap();
    let is_read = parts.method == axum::http::Method::GET
        && path
            .strip_prefix("/api/v1/transactions/")
            .is_some_and(|id| !id.is_empty() && !id.contains('/'));
    if is_read {
        p.reads
            .lock()
            .unwrap()
            .push((path, started, Instant::now()));
    }
    let mut r = Response::new(axum::body::Body::from(bytes));
    *r.status_mut() = status;
    for (k, v) in &headers {
        if k != axum::http::header::TRANSFER_ENCODING && k != axum::http::header::CONTENT_LENGTH {
            r.headers_mut().insert(k, v.clone());
        }
    }
    r
}

/// A proxy to the sandbox counting one instance's status reads.
async fn proxy(to: &str) -> (String, Reads) {
    let reads = Reads::default();
    let state = Proxy {
        to: to.into(),
        http: reqwest::Client::new(),
        reads: reads.clone(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback(forward).with_state(state);
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, reads)
}

#[tokio::test(flavor = "multi_thread")]
async fn two_instances_never_poll_the_same_payment_at_once() {
    if std::env::var_os(URL_ENV).is_none() {
        eprintln!("skipped: no {URL_ENV} (PostgreSQL only; `cargo xtask test` sets it)");
        return;
    }
    // The sandbox behind one counting proxy per instance; no notification reaches the hosts
    // (a closed port), so every status read is the poller's.
    let sandbox = cvco_sandbox::spawn(SandboxConfig::default())
        .await
        .expect("sandbox");
    let (proxy_a, reads_a) = proxy(&sandbox.base_url).await;
    let (proxy_b, reads_b) = proxy(&sandbox.base_url).await;
    let fast = move |c: &mut HostConfig, via: &str| {
        c.sandbox_url = via.into();
        c.public_url = Some("http://127.0.0.1:9".into());
        c.poll_interval_ms = 100;
        c.poll_max_ms = 200;
    };
    let (pa, pb) = (proxy_a.clone(), proxy_b.clone());
    let Some(cl) = cluster(150, move |c| fast(c, &pa), move |c| fast(c, &pb)).await else {
        return;
    };
    let a = cl.a.as_ref().unwrap();
    // Ten payments nobody answers (silent beneficiary): open, polled again and again.
    let shopper_a = shopper(&a.base_url);
    for i in 0..10 {
        let order = shopper_a.test_order(3000 + i).await;
        let created = shopper_a.pay(&order, DAVID, "p").await;
        assert_eq!(created.status, 201, "{}", created.text);
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (ra, rb) = (
        reads_a.lock().unwrap().clone(),
        reads_b.lock().unwrap().clone(),
    );
    assert!(
        ra.len() >= 10 && rb.len() >= 10,
        "both instances poll: A {} reads, B {} reads",
        ra.len(),
        rb.len()
    );
    let paths: std::collections::BTreeSet<_> = ra.iter().chain(&rb).map(|r| &r.0).collect();
    assert_eq!(paths.len(), 10, "every payment polled");
    let mut overlaps = Vec::new();
    for (path, s1, e1) in &ra {
        for (p2, s2, e2) in &rb {
            if path == p2 && s1 < e2 && s2 < e1 {
                overlaps.push(path.clone());
            }
        }
    }
    assert!(
        overlaps.is_empty(),
        "read by both instances at once: {overlaps:?} ({} + {} reads)",
        ra.len(),
        rb.len()
    );
    drop(cl);
    drop(sandbox);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_instance_killed_mid_payment_leaves_it_to_another_which_records_the_money_once() {
    // The outcome comes 1.5 s after creation; A is killed at once (its notification has no
    // one to reach, its lease if any expires within 2 × 2 s + 5 s).
    let tune = |c: &mut HostConfig| {
        c.request_timeout_ms = 2000;
        c.poll_interval_ms = 300;
        c.poll_max_ms = 600;
    };
    let Some(mut cl) = cluster(1500, tune, |_| {}).await else {
        return;
    };
    let a = cl.a.take().unwrap();
    let shopper_a = shopper(&a.base_url);
    let order = shopper_a.test_order(5100).await;
    let created = shopper_a.pay(&order, ALICE, "k1").await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.body["final"], false, "{}", created.text);
    let id = created.body["payment_id"].as_str().unwrap().to_string();
    a.kill();
    let shopper_b = on(&shopper_a, &cl.b.base_url);
    let done = shopper_b.wait_final(&id).await;
    assert_eq!(done["status"], "authorized", "{done}");
    assert_eq!(done["amount_cents"], 5100);
    // Money once: one transaction at ANCV, one payment row for the order.
    let txs = cl.sandbox.state.lock().txs.len();
    assert_eq!(txs, 1, "one ANCV transaction");
    let store = cvco_host::store::Store::connect(cl.cfg.database.as_deref().unwrap())
        .await
        .unwrap();
    let rows = store.payments_of_order(&order).await.unwrap();
    assert_eq!(rows.len(), 1, "one payment row");
    assert!(rows[0].is_final);
    let order_view = shopper_b.get(&format!("/shop/api/orders/{order}")).await;
    if order_view.status == 200 {
        assert_eq!(order_view.body["remaining_cents"], 0, "{}", order_view.text);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_change_made_while_instance_b_was_not_listening_still_reaches_its_live_status_client() {
    let slow = |c: &mut HostConfig| {
        c.poll_interval_ms = 60_000;
        c.poll_max_ms = 60_000;
    };
    let Some(cl) = cluster(150, slow, slow).await else {
        return;
    };
    let a = cl.a.as_ref().unwrap();
    let shopper_a = shopper(&a.base_url);
    let order = shopper_a.test_order(3300).await;
    let created = shopper_a.pay(&order, JEANNE, "r1").await;
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.body["payment_id"].as_str().unwrap().to_string();
    let tx = created.body["transaction_id"].as_str().unwrap().to_string();
    // B's SSE client is live; then every LISTEN connection of the database is cut (B's and A's).
    let watcher = tokio::spawn({
        let b = on(&shopper_a, &cl.b.base_url);
        let id = id.clone();
        async move { final_event(&b, &id).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (admin, connection) =
        tokio_postgres::connect(cl.cfg.database.as_deref().unwrap(), tokio_postgres::NoTls)
            .await
            .unwrap();
    tokio::spawn(connection);
    let cut = admin
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = current_database() AND query LIKE 'LISTEN%'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(cut.len(), 2, "both instances were listening");
    // Decided at once, while nobody listens: the NOTIFY is lost for B, its reconnection is not.
    let decided = Instant::now();
    let r = reqwest::Client::new()
        .post(format!(
            "{}/app/api/transactions/{tx}/confirm",
            cl.sandbox.base_url
        ))
        .json(&serde_json::json!({"beneficiary": JEANNE, "pin": "1234"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "confirm: {}", r.status());
    let (last, at) = watcher.await.unwrap();
    assert_eq!(last["final"], true);
    let waited = at - decided;
    assert!(
        waited < Duration::from_secs(3),
        "B's client saw the outcome after {waited:?} (its safety net re-reads at 5 s)"
    );
}
