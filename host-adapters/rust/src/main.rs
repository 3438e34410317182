//! `cvco-host`: the reference merchant backend as a process.

use cvco_host::HostConfig;
use std::path::PathBuf;

const HELP: &str = "cvco-host: reference merchant backend for Chèque-Vacances Connect

USAGE: cvco-host [--port 8080] [--host 127.0.0.1] [--sandbox-url URL] [--plugin FILE.wasm]
                 [--data FILE.sqlite] [--config cvco-host.toml] [--public-url URL] [--test-orders]

Configuration: defaults (the sandbox demo shop) < --config TOML file < CVCO_HOST_* environment
variables < flags. Keys: host-adapters/rust/README.md.";

fn main() {
    let code = match run() {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("cvco-host: {e}");
            2
        }
    };
    std::process::exit(code);
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let mut flags: Vec<(String, Option<String>)> = Vec::new();
    let mut config_file: Option<PathBuf> = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "-h" | "--help" => {
                println!("{HELP}");
                return Ok(());
            }
            "--test-orders" => flags.push((a, None)),
            "--port" | "--host" | "--sandbox-url" | "--plugin" | "--data" | "--public-url" => {
                let v = args.next().ok_or_else(|| format!("{a} needs a value"))?;
                flags.push((a, Some(v)));
            }
            "--config" => config_file = Some(args.next().ok_or("--config needs a value")?.into()),
            other => return Err(format!("unknown argument {other:?} (see --help)")),
        }
    }
    let mut cfg = HostConfig {
        port: 8080,
        ..HostConfig::default()
    };
    if let Some(f) = &config_file {
        cfg.apply_file(f)?;
    }
    cfg.apply_env()?;
    for (k, v) in flags {
        let v = v.unwrap_or_default();
        match k.as_str() {
            "--port" => cfg.port = v.parse().map_err(|_| format!("--port {v:?}"))?,
            "--host" => cfg.host = v.parse().map_err(|_| format!("--host {v:?}"))?,
            "--sandbox-url" => cfg.sandbox_url = v,
            "--plugin" => cfg.plugin = Some(v.into()),
            "--data" => cfg.data_file = Some(v.into()),
            "--public-url" => cfg.public_url = Some(v),
            "--test-orders" => cfg.test_orders = true,
            _ => {}
        }
    }
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let host = cvco_host::spawn(cfg).await.map_err(|e| e.to_string())?;
        println!("cvco-host listening on {}", host.base_url);
        wait_for_stop().await;
        host.shutdown().await;
        Ok(())
    })
}

async fn wait_for_stop() {
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
