//! `cargo run -p cvco-test-host --bin tenants-bench [-- --merchants 1000] [--max-live N]
//! [--unshared K]`: resident memory of one process holding a plugin `Registry` for many
//! merchants (own shop id and credentials each) that each made one real payment against the
//! sandbox (created, then approved by the scripted beneficiary). The sandbox runs as its own
//! process (`cvco-sandbox` next to this binary, or `CVCO_SANDBOX_BIN`) so its memory is not
//! counted. `--unshared K` instead builds K pools that each compile the module (`Pool::build`),
//! the cost the shared `ModuleCache` avoids. One `name value unit` line per figure on stdout.

use cvco_core::plugin_api::exports::{CreatePayment, GetPayment};
use cvco_core::plugin_api::{CreatePaymentInput, PaymentIdInput};
use cvco_core::{Channel, NormalizedStatus};
use cvco_plugin_host::{Pool, PoolBuilder, Registry, DEFAULT_MAX_LIVE};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The sandbox's scripted beneficiary who approves the full amount.
const APPROVER: &str = "10000000001";

fn fail(msg: impl std::fmt::Display) -> ! {
    eprintln!("tenants-bench: {msg}");
    std::process::exit(1);
}

/// `VmRSS` or `VmHWM` of this process, in KiB.
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| {
            l.strip_prefix(field)?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or_else(|| fail(format!("no {field} in /proc/self/status")))
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// One HTTP/1.1 request on loopback; returns the status code and body.
fn http(addr: &str, method: &str, path: &str, body: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes())?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let code = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    Ok((code, body))
}

struct Sandbox {
    child: Child,
    addr: String,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_sandbox() -> Sandbox {
    let bin = std::env::var_os("CVCO_SANDBOX_BIN")
        .map(std::path::PathBuf::from)
        .or_else(|| Some(std::env::current_exe().ok()?.with_file_name("cvco-sandbox")))
        .filter(|p| p.exists())
        .unwrap_or_else(|| {
            fail("no cvco-sandbox binary: `cargo build -p cvco-sandbox` or set CVCO_SANDBOX_BIN")
        });
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap_or_else(|e| fail(format!("free port: {e}")))
        .port();
    let child = Command::new(&bin)
        .args(["--port", &port.to_string(), "--approve-delay-ms", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| fail(format!("starting {}: {e}", bin.display())));
    let sandbox = Sandbox {
        child,
        addr: format!("127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !matches!(http(&sandbox.addr, "GET", "/healthz", ""), Ok((200, _))) {
        if Instant::now() > deadline {
            fail("the sandbox did not answer /healthz in 30 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    sandbox
}

fn shop_id(i: usize) -> String {
    format!("TENANT-{i:05}")
}

fn builder(wasm: &[u8], base_url: &str, i: usize) -> PoolBuilder {
    Pool::builder(wasm)
        .config("api_base_url", base_url)
        .config("shop_id", shop_id(i))
        .config("client_id", format!("client-{i:05}"))
        .config("client_secret", format!("secret-{i:05}"))
        .config("notification_secret", format!("whsec-{i:05}"))
        .allowed_host("127.0.0.1")
}

/// One payment: created for the approving beneficiary, read until the sandbox's decision.
fn pay(pool: &Pool, i: usize) -> Result<NormalizedStatus, cvco_core::CvcoError> {
    let created = pool.call::<CreatePayment>(&CreatePaymentInput {
        order_ref: format!("order-{i}"),
        amount_cents: 5000,
        channel: Channel::Ecommerce,
        beneficiary: Some(APPROVER.into()),
        adjustable: None,
        idempotency_key: format!("bench-{i}"),
        capture_mode: None,
        notification_url: None,
        return_url: None,
        cancel_url: None,
        now: None,
        order: None,
    })?;
    let mut payment = created;
    for _ in 0..200 {
        if payment.status != NormalizedStatus::Pending
            && payment.status != NormalizedStatus::AwaitingBeneficiary
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
        payment = pool.call::<GetPayment>(&PaymentIdInput {
            payment_id: payment.id.clone(),
            now: None,
        })?;
    }
    Ok(payment.status)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn main() {
    let mut merchants = 1000usize;
    let mut max_live = DEFAULT_MAX_LIVE;
    let mut unshared = 0usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut n = || {
            args.next()
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or_else(|| fail(format!("{a} needs a number")))
        };
        match a.as_str() {
            "--merchants" => merchants = n(),
            "--max-live" => max_live = n(),
            "--unshared" => unshared = n(),
            other => fail(format!("unknown argument {other}")),
        }
    }
    let wasm = cvco_test_host::plugin_wasm().unwrap_or_else(|e| fail(e));
    let profile = if cfg!(debug_assertions) {
        "dev"
    } else {
        "release"
    };
    eprintln!("profile: {profile}");
    let sandbox = start_sandbox();
    let base_url = format!("http://{}", sandbox.addr);
    let count = if unshared > 0 { unshared } else { merchants };
    for i in 0..count {
        let body = format!(
            r#"{{"shop_id":"{}","client_id":"client-{i:05}","client_secret":"secret-{i:05}","notification_secret":"whsec-{i:05}","channels":["ecommerce"]}}"#,
            shop_id(i)
        );
        match http(&sandbox.addr, "POST", "/admin/shops", &body) {
            Ok((201, _)) => {}
            other => fail(format!("creating shop {i}: {other:?}")),
        }
    }
    let base_kib = status_kib("VmRSS:");
    eprintln!("rss before any pool: {:.1} MiB", mib(base_kib));

    if unshared > 0 {
        // Each pool compiles its own module: what one merchant costs without sharing.
        let mut pools = Vec::new();
        let mut compile_ms = Vec::new();
        for i in 0..unshared {
            let start = Instant::now();
            let pool = builder(wasm, &base_url, i)
                .build()
                .unwrap_or_else(|e| fail(format!("pool {i}: {e:?}")));
            compile_ms.push(start.elapsed().as_secs_f64() * 1e3);
            match pay(&pool, i) {
                Ok(NormalizedStatus::Authorized) => {}
                other => fail(format!("payment {i}: {other:?}")),
            }
            pools.push(pool);
        }
        let rss = status_kib("VmRSS:");
        println!("unshared_pools {unshared} pools");
        println!("unshared_pool_build_ms {:.1} ms", median(compile_ms));
        println!(
            "unshared_rss_per_pool_mib {:.2} MiB",
            mib(rss.saturating_sub(base_kib)) / unshared as f64
        );
        return;
    }

    let registry: Registry<usize> = {
        let (wasm, base_url) = (wasm.to_vec(), base_url.clone());
        Registry::builder(move |i: &usize| Ok(builder(&wasm, &base_url, *i)))
            .max_live(max_live)
            .build()
    };
    let mut build_ms = Vec::new();
    let mut first_build_ms = 0.0;
    let mut after_first_kib = 0;
    let started = Instant::now();
    for i in 0..merchants {
        let start = Instant::now();
        let pool = registry
            .get(&i)
            .unwrap_or_else(|e| fail(format!("pool {i}: {e:?}")));
        let ms = start.elapsed().as_secs_f64() * 1e3;
        if i == 0 {
            first_build_ms = ms;
        } else {
            build_ms.push(ms);
        }
        match pay(&pool, i) {
            Ok(NormalizedStatus::Authorized) => {}
            other => fail(format!("payment of merchant {i}: {other:?}")),
        }
        if i == 0 {
            after_first_kib = status_kib("VmRSS:");
        }
    }
    let elapsed = started.elapsed();
    let rss = status_kib("VmRSS:");
    let peak = status_kib("VmHWM:");
    let stats = registry.stats();
    eprintln!(
        "{merchants} merchants paid in {:.1} s; {stats:?}",
        elapsed.as_secs_f64()
    );
    let per_pool = mib(rss.saturating_sub(after_first_kib)) / (stats.live.max(2) - 1) as f64;
    println!("tenants_merchants {merchants} merchants");
    println!("tenants_max_live {max_live} pools");
    println!(
        "tenants_modules_compiled {} modules",
        stats.modules_compiled
    );
    println!("tenants_first_pool_ms {first_build_ms:.1} ms");
    println!("tenants_pool_build_ms {:.2} ms", median(build_ms));
    println!("tenants_rss_per_live_pool_mib {per_pool:.3} MiB");
    println!("tenants_rss_peak_mib {:.1} MiB", mib(peak));
    println!("tenants_rss_mib {:.1} MiB", mib(rss));
}
