//! `cvco-sandbox --port 7070 [--host 127.0.0.1] [--data FILE.sqlite] [--approve-delay-ms 1000]`

use cvco_sandbox::{spawn, SandboxConfig};
use std::path::PathBuf;

const USAGE: &str = "usage: cvco-sandbox [--port 7070] [--host 127.0.0.1] [--data FILE.sqlite] \
[--approve-delay-ms 1000] [--public-url http://127.0.0.1:7070]";

fn parse_args() -> Result<SandboxConfig, String> {
    let mut config = SandboxConfig {
        port: 7070,
        ..SandboxConfig::default()
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--port" => {
                config.port = value("--port")?
                    .parse()
                    .map_err(|e| format!("--port: {e}"))?
            }
            "--host" => {
                config.host = value("--host")?
                    .parse()
                    .map_err(|e| format!("--host: {e}"))?
            }
            "--data" => config.data_file = Some(PathBuf::from(value("--data")?)),
            "--approve-delay-ms" => {
                config.approve_delay_ms = value("--approve-delay-ms")?
                    .parse()
                    .map_err(|e| format!("--approve-delay-ms: {e}"))?
            }
            "--public-url" => config.public_base_url = Some(value("--public-url")?),
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(config)
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt().with_target(false).init();
    let config = match parse_args() {
        Ok(c) => c,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("{e}");
            }
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    };
    if !config.host.is_loopback() {
        tracing::warn!(
            "listening on {}: /admin has no authentication, never expose the sandbox",
            config.host
        );
    }
    let handle = match spawn(config).await {
        Ok(h) => h,
        Err(e) => {
            eprintln!("cvco-sandbox: {e}");
            std::process::exit(1);
        }
    };
    tracing::info!(
        "CVCo sandbox on {} — app {}/app, outbox {}/outbox, API doc {}/openapi.json",
        handle.base_url,
        handle.base_url,
        handle.base_url,
        handle.base_url
    );
    stop_signal().await;
    tracing::info!("shutting down");
    handle.shutdown().await;
}

/// Ctrl-C, or SIGTERM from a service manager or `docker stop`.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
