//! `tenants-host-bench [--merchants 1000] [--concurrency 16]`: resident memory of one cvco-host
//! serving many merchants (`[[merchants]]`, own ANCV shop id, credentials and notification
//! secret each) that each made one payment: the order and payment through the host's engine,
//! approved by the sandbox's scripted beneficiary, the decision brought back by the sandbox's
//! notification to that merchant's URL. The sandbox runs as its own process (`cvco-sandbox`
//! beside the examples' directory, or `CVCO_SANDBOX_BIN`) so its memory is not counted.
//! Prints `tenants_host_rss_mib <v> MiB` (and context on stderr).

use cvco_core::Channel;
use cvco_host::payments::{AmountSpec, Start};
use cvco_host::tenants::MerchantConfig;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The sandbox's scripted beneficiary who approves the full amount.
const APPROVER: &str = "10000000001";

fn fail(msg: impl std::fmt::Display) -> ! {
    eprintln!("tenants-host-bench: {msg}");
    std::process::exit(1);
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("VmRSS:")?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

struct Sandbox(Child);

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn merchant(i: usize) -> MerchantConfig {
    MerchantConfig {
        id: format!("m{i:05}"),
        name: format!("Camping {i}"),
        shop_id: Some(format!("HOST-TENANT-{i:05}")),
        client_id: format!("client-{i:05}"),
        client_secret: Some(format!("secret-{i:05}")),
        notification_secret: Some(format!("whsec-{i:05}")),
        ..MerchantConfig::default()
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |name: &str, default: usize| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map(|v| v.parse().unwrap_or_else(|_| fail(format!("{name} {v:?}"))))
            .unwrap_or(default)
    };
    let (merchants, concurrency) = (arg("--merchants", 1000), arg("--concurrency", 16));
    let bin = std::env::var_os("CVCO_SANDBOX_BIN")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            let exe = std::env::current_exe().ok()?;
            Some(exe.parent()?.parent()?.join("cvco-sandbox"))
        })
        .filter(|p| p.exists())
        .unwrap_or_else(|| {
            fail("no cvco-sandbox binary: `cargo build -p cvco-sandbox` or set CVCO_SANDBOX_BIN")
        });
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap_or_else(|e| fail(format!("free port: {e}")))
        .port();
    let _sandbox = Sandbox(
        Command::new(&bin)
            .args(["--port", &port.to_string(), "--approve-delay-ms", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| fail(format!("starting {}: {e}", bin.display()))),
    );
    let sb = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !http
        .get(format!("{sb}/healthz"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        if Instant::now() > deadline {
            fail("the sandbox did not answer /healthz in 30 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let configs: Vec<MerchantConfig> = (0..merchants).map(merchant).collect();
    for m in &configs {
        let body = serde_json::json!({
            "shop_id": m.shop_id, "client_id": m.client_id, "client_secret": m.client_secret,
            "notification_secret": m.notification_secret, "channels": ["ecommerce"],
        });
        let r = http
            .post(format!("{sb}/admin/shops"))
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|e| fail(format!("creating shop {}: {e}", m.id)));
        if r.status() != 201 {
            fail(format!("creating shop {}: {}", m.id, r.status()));
        }
    }
    let plugin = std::env::var_os(cvco_plugin_host::WASM_ENV)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            fail(format!(
                "set {} (`cargo xtask plugin`)",
                cvco_plugin_host::WASM_ENV
            ))
        });
    let cfg = cvco_host::HostConfig {
        sandbox_url: sb.clone(),
        plugin: Some(plugin),
        merchants: configs,
        argon2_m_kib: 1024,
        poll_interval_ms: 2000,
        ..cvco_host::HostConfig::demo()
    };
    let host = cvco_host::spawn(cfg)
        .await
        .unwrap_or_else(|e| fail(format!("host: {e}")));
    let base_kib = rss_kib();
    eprintln!(
        "host started with {merchants} merchants: {:.1} MiB",
        mib(base_kib)
    );
    let engine = host.engine.clone();
    let started = Instant::now();
    let gate = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
    let mut tasks = Vec::new();
    for i in 0..merchants {
        let (engine, gate) = (engine.clone(), gate.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire().await;
            let m = format!("m{i:05}");
            let order = format!("ORD-{i:05}");
            let lines = serde_json::json!([{"sku": "night", "name": "Nuit", "quantity": 1,
                "unit_price_cents": 2500, "total_cents": 2500}]);
            engine
                .insert_order_for(&m, &order, None, "shop", &lines, 2500)
                .await?;
            let (row, _) = engine
                .start(
                    &order,
                    "a1",
                    Channel::Ecommerce,
                    Start::Identifier {
                        beneficiary: APPROVER.into(),
                    },
                    AmountSpec::Remaining,
                )
                .await?;
            // Until the sandbox's notification (to this merchant's URL) has brought the decision.
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let p = engine.store.payment(&row.payment_id).await?;
                if p.as_ref()
                    .is_some_and(|p| p.is_final || p.status.is_authorized())
                {
                    return Ok::<bool, cvco_core::CvcoError>(
                        p.is_some_and(|p| p.status.is_authorized()),
                    );
                }
                if Instant::now() > deadline {
                    return Ok(false);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }));
    }
    let mut authorized = 0;
    for t in tasks {
        match t.await {
            Ok(Ok(true)) => authorized += 1,
            Ok(Ok(false)) => {}
            Ok(Err(e)) => eprintln!("payment: {} {}", e.code, e.message_en),
            Err(e) => eprintln!("task: {e}"),
        }
    }
    let elapsed = started.elapsed();
    if authorized != merchants {
        fail(format!("{authorized} of {merchants} payments authorized"));
    }
    let stats = host.tenants.stats();
    let rss = rss_kib();
    eprintln!(
        "{merchants} payments authorized in {:.1} s; pools live {} (bound {}), built {}, evicted {}, modules compiled {}",
        elapsed.as_secs_f64(),
        stats.live,
        host.tenants.max_live(),
        stats.created,
        stats.evicted,
        stats.modules_compiled
    );
    println!("tenants_host_rss_mib {:.1} MiB", mib(rss));
    host.shutdown().await;
}
