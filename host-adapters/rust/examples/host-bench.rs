//! `host-bench`: the reference backend's figures, sandbox and host in-process on loopback.
//!
//! - `payment_flow_ms`: median over 20 runs of POST /cvco/v1/payments (alice) until the host
//!   reports `authorized`, the sandbox's scripted approve delay set to 0 (nothing to subtract).
//! - `host_status_rps`: GET /cvco/v1/payments/{id} on keep-alive connections from N tasks. A
//!   status read is served from the host's SQLite store (the plugin keeps it fresh from
//!   notifications and polling); it does not call ANCV.
//!
//! - With `CVCO_TEST_DATABASE_URL` (a PostgreSQL server; `cargo xtask bench` starts one), two
//!   instances on one fresh database: `host_status_rps_postgres` (the same reads spread over both)
//!   and `cross_instance_status_p95_ms` (p95 over 20 runs: the sandbox decides a payment made on
//!   instance A, ANCV's notification reaches A, an SSE client on instance B sees the final status;
//!   neither instance polls meanwhile).
//!
//! Prints `name value unit` lines (and context on stderr).

use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const FLOW_RUNS: usize = 20;
const CONNECTIONS: usize = 16;
const LOAD_SECONDS: u64 = 4;
const CROSS_RUNS: usize = 20;

/// One keep-alive HTTP/1.1 connection; enough of the protocol for our own JSON answers.
struct Conn {
    stream: BufReader<TcpStream>,
    host: String,
    cookie: String,
}

impl Conn {
    async fn open(addr: &str, cookie: &str) -> std::io::Result<Conn> {
        let s = TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        Ok(Conn {
            stream: BufReader::new(s),
            host: addr.into(),
            cookie: cookie.into(),
        })
    }

    async fn request(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> std::io::Result<(u16, String)> {
        let body = body.unwrap_or("");
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nCookie: cvco_shop={}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.host,
            self.cookie,
            body.len()
        );
        self.stream.get_mut().write_all(req.as_bytes()).await?;
        let mut line = String::new();
        self.stream.read_line(&mut line).await?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut len = 0usize;
        loop {
            line.clear();
            self.stream.read_line(&mut line).await?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut buf = vec![0; len];
        self.stream.read_exact(&mut buf).await?;
        Ok((status, String::from_utf8_lossy(&buf).into_owned()))
    }
}

fn field<'a>(v: &'a serde_json::Value, k: &str) -> &'a serde_json::Value {
    &v[k]
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("host-bench: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), String> {
    let sandbox = cvco_sandbox::spawn(cvco_sandbox::SandboxConfig {
        approve_delay_ms: 0,
        ..Default::default()
    })
    .await
    .map_err(|e| format!("sandbox: {e:?}"))?;
    let cfg = cvco_host::HostConfig {
        sandbox_url: sandbox.base_url.clone(),
        test_orders: true,
        argon2_m_kib: 1024,
        ..cvco_host::HostConfig::demo()
    };
    let host = cvco_host::spawn(cfg).await.map_err(|e| e.to_string())?;
    let addr = host.addr.to_string();
    let cookie = cvco_host::util::random_token(32);
    let mut c = Conn::open(&addr, &cookie)
        .await
        .map_err(|e| e.to_string())?;

    // payment_flow_ms
    let mut flows = Vec::new();
    let mut last_id = String::new();
    for i in 0..=FLOW_RUNS {
        let (s, o) = c
            .request(
                "POST",
                "/shop/api/test-orders",
                Some(r#"{"amount_cents": 4550}"#),
            )
            .await
            .map_err(|e| e.to_string())?;
        if s != 201 {
            return Err(format!("test order: {s} {o}"));
        }
        let order: serde_json::Value = serde_json::from_str(&o).map_err(|e| e.to_string())?;
        let body = format!(
            r#"{{"order_ref":{},"mode":"identifier","beneficiary":"alice.approve@sandbox.cvco.test","attempt":"bench-{i}"}}"#,
            field(&order, "order_ref")
        );
        let start = Instant::now();
        let (s, p) = c
            .request("POST", "/cvco/v1/payments", Some(&body))
            .await
            .map_err(|e| e.to_string())?;
        if s != 201 {
            return Err(format!("payment: {s} {p}"));
        }
        let p: serde_json::Value = serde_json::from_str(&p).map_err(|e| e.to_string())?;
        let id = field(&p, "payment_id")
            .as_str()
            .unwrap_or_default()
            .to_string();
        let path = format!("/cvco/v1/payments/{id}");
        loop {
            let (_, now) = c
                .request("GET", &path, None)
                .await
                .map_err(|e| e.to_string())?;
            let now: serde_json::Value = serde_json::from_str(&now).unwrap_or_default();
            if field(&now, "final") == true {
                if field(&now, "status") != "authorized" {
                    return Err(format!("flow ended {now}"));
                }
                break;
            }
            if start.elapsed() > Duration::from_secs(20) {
                return Err("flow did not end in 20 s".into());
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // The first run warms the plugin instances and the OAuth token: not counted.
        if i > 0 {
            flows.push(start.elapsed().as_secs_f64() * 1000.0);
        }
        last_id = id;
    }
    flows.sort_by(|a, b| a.total_cmp(b));
    let median = flows[flows.len() / 2];
    eprintln!(
        "payment_flow: {} runs, min {:.1} ms, median {:.1} ms, max {:.1} ms (approve delay 0)",
        flows.len(),
        flows[0],
        median,
        flows[flows.len() - 1]
    );

    // host_status_rps
    let path = format!("/cvco/v1/payments/{last_id}");
    let rps = status_reads(std::slice::from_ref(&addr), &cookie, &path, "sqlite").await?;
    println!("host_status_rps {rps:.0} rps");
    println!("payment_flow_ms {median:.1} ms");
    host.shutdown().await;
    sandbox.shutdown().await;
    postgres().await
}

/// Status reads of `path` for `LOAD_SECONDS` on `CONNECTIONS` keep-alive connections spread
/// over `addrs`; answers the reads per second.
async fn status_reads(
    addrs: &[String],
    cookie: &str,
    path: &str,
    what: &str,
) -> Result<f64, String> {
    let deadline = Instant::now() + Duration::from_secs(LOAD_SECONDS);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..CONNECTIONS {
        let (addr, cookie, path) = (
            addrs[i % addrs.len()].clone(),
            cookie.to_string(),
            path.to_string(),
        );
        tasks.push(tokio::spawn(async move {
            let mut c = Conn::open(&addr, &cookie)
                .await
                .map_err(|e| e.to_string())?;
            let mut n = 0u64;
            while Instant::now() < deadline {
                let (s, _) = c
                    .request("GET", &path, None)
                    .await
                    .map_err(|e| e.to_string())?;
                if s != 200 {
                    return Err(format!("status read answered {s}"));
                }
                n += 1;
            }
            Ok::<u64, String>(n)
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.map_err(|e| e.to_string())??;
    }
    let seconds = start.elapsed().as_secs_f64();
    eprintln!("host_status ({what}): {total} reads in {seconds:.1} s on {CONNECTIONS} connections");
    Ok(total as f64 / seconds)
}

/// A test order and an alice payment on `c`'s instance, until final; its id.
async fn paid(c: &mut Conn, attempt: &str) -> Result<String, String> {
    let (s, o) = c
        .request(
            "POST",
            "/shop/api/test-orders",
            Some(r#"{"amount_cents": 4550}"#),
        )
        .await
        .map_err(|e| e.to_string())?;
    if s != 201 {
        return Err(format!("test order: {s} {o}"));
    }
    let order: serde_json::Value = serde_json::from_str(&o).map_err(|e| e.to_string())?;
    let body = format!(
        r#"{{"order_ref":{},"mode":"identifier","beneficiary":"alice.approve@sandbox.cvco.test","attempt":"{attempt}"}}"#,
        field(&order, "order_ref")
    );
    let (s, p) = c
        .request("POST", "/cvco/v1/payments", Some(&body))
        .await
        .map_err(|e| e.to_string())?;
    if s != 201 {
        return Err(format!("payment: {s} {p}"));
    }
    let p: serde_json::Value = serde_json::from_str(&p).map_err(|e| e.to_string())?;
    let id = field(&p, "payment_id")
        .as_str()
        .unwrap_or_default()
        .to_string();
    let start = Instant::now();
    loop {
        let (_, now) = c
            .request("GET", &format!("/cvco/v1/payments/{id}"), None)
            .await
            .map_err(|e| e.to_string())?;
        let now: serde_json::Value = serde_json::from_str(&now).unwrap_or_default();
        if field(&now, "final") == true {
            return Ok(id);
        }
        if start.elapsed() > Duration::from_secs(20) {
            return Err("payment not final in 20 s".into());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The next SSE `data:` of `stream` as JSON.
async fn next_event(
    stream: &mut (impl futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
    buf: &mut String,
) -> Result<serde_json::Value, String> {
    use futures_util::StreamExt;
    loop {
        if let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            if let Some(data) = block.lines().find_map(|l| l.strip_prefix("data:")) {
                return serde_json::from_str(data.trim()).map_err(|e| e.to_string());
            }
            continue;
        }
        let chunk = tokio::time::timeout(Duration::from_secs(20), stream.next())
            .await
            .map_err(|_| "no SSE event in 20 s".to_string())?
            .ok_or("SSE stream ended")?
            .map_err(|e| e.to_string())?;
        buf.push_str(&String::from_utf8_lossy(&chunk));
    }
}

/// Two instances on one PostgreSQL database (see the module's documentation).
async fn postgres() -> Result<(), String> {
    eprintln!("two instances on PostgreSQL");
    let Some(db) = cvco_host::store::testing::PgDatabase::create().await else {
        eprintln!("no CVCO_TEST_DATABASE_URL: no PostgreSQL figures");
        return Ok(());
    };
    let db = db?;
    let sandbox = cvco_sandbox::spawn(cvco_sandbox::SandboxConfig {
        approve_delay_ms: 0,
        ..Default::default()
    })
    .await
    .map_err(|e| format!("sandbox: {e:?}"))?;
    let cfg = cvco_host::HostConfig {
        sandbox_url: sandbox.base_url.clone(),
        test_orders: true,
        argon2_m_kib: 1024,
        database: Some(db.url.clone()),
        // Only notifications move the payments: no poll shortens the cross-instance path.
        poll_interval_ms: 60_000,
        poll_max_ms: 60_000,
        ..cvco_host::HostConfig::demo()
    };
    let a = cvco_host::spawn(cfg.clone())
        .await
        .map_err(|e| e.to_string())?;
    let b = cvco_host::spawn(cfg).await.map_err(|e| e.to_string())?;
    let addrs = [a.addr.to_string(), b.addr.to_string()];
    let cookie = cvco_host::util::random_token(32);
    let mut c = Conn::open(&addrs[0], &cookie)
        .await
        .map_err(|e| e.to_string())?;
    let id = paid(&mut c, "pg-load").await?;

    // host_status_rps_postgres: the same reads, half the connections on each instance.
    let path = format!("/cvco/v1/payments/{id}");
    let rps = status_reads(&addrs, &cookie, &path, "postgres, 2 instances").await?;

    // cross_instance_status_p95_ms: jeanne's payment waits for her app; the sandbox decides.
    let jeanne = "jeanne.manual@sandbox.cvco.test";
    let http = reqwest::Client::new();
    let mut samples = Vec::new();
    for i in 0..=CROSS_RUNS {
        let (s, o) = c
            .request(
                "POST",
                "/shop/api/test-orders",
                Some(r#"{"amount_cents": 3100}"#),
            )
            .await
            .map_err(|e| e.to_string())?;
        if s != 201 {
            return Err(format!("test order: {s} {o}"));
        }
        let order: serde_json::Value = serde_json::from_str(&o).map_err(|e| e.to_string())?;
        let body = format!(
            r#"{{"order_ref":{},"mode":"identifier","beneficiary":"{jeanne}","attempt":"x{i}"}}"#,
            field(&order, "order_ref")
        );
        let (s, p) = c
            .request("POST", "/cvco/v1/payments", Some(&body))
            .await
            .map_err(|e| e.to_string())?;
        if s != 201 {
            return Err(format!("payment: {s} {p}"));
        }
        let p: serde_json::Value = serde_json::from_str(&p).map_err(|e| e.to_string())?;
        let (pid, tx) = (
            field(&p, "payment_id")
                .as_str()
                .unwrap_or_default()
                .to_string(),
            field(&p, "transaction_id")
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
        let sse = http
            .get(format!("http://{}/cvco/v1/payments/{pid}/events", addrs[1]))
            .header("cookie", format!("cvco_shop={cookie}"))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if sse.status() != 200 {
            return Err(format!("SSE on B: {}", sse.status()));
        }
        let mut stream = sse.bytes_stream();
        let mut buf = String::new();
        let first = next_event(&mut stream, &mut buf).await?;
        if field(&first, "final") == true {
            return Err(format!("decided before the app: {first}"));
        }
        let decided = Instant::now();
        let r = http
            .post(format!(
                "{}/app/api/transactions/{tx}/confirm",
                sandbox.base_url
            ))
            .json(&serde_json::json!({"beneficiary": jeanne, "pin": "1234"}))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !r.status().is_success() {
            return Err(format!("app confirm: {}", r.status()));
        }
        loop {
            let ev = next_event(&mut stream, &mut buf).await?;
            // Her balance decides authorized, partially or declined: any final outcome counts.
            if field(&ev, "final") == true {
                break;
            }
        }
        // The first run warms connections and statements: not counted.
        if i > 0 {
            samples.push(decided.elapsed().as_secs_f64() * 1000.0);
        }
    }
    samples.sort_by(|x, y| x.total_cmp(y));
    let p95 = samples[((samples.len() - 1) as f64 * 0.95).round() as usize];
    eprintln!(
        "cross_instance_status: {} runs, min {:.1} ms, median {:.1} ms, max {:.1} ms",
        samples.len(),
        samples[0],
        samples[samples.len() / 2],
        samples[samples.len() - 1]
    );
    println!("host_status_rps_postgres {rps:.0} rps");
    println!("cross_instance_status_p95_ms {p95:.1} ms");
    a.shutdown().await;
    b.shutdown().await;
    sandbox.shutdown().await;
    drop(db);
    Ok(())
}
