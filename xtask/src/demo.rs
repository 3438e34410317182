//! `cargo xtask demo`: builds what the demo needs, starts every service on 127.0.0.1, waits until
//! each answers its health URL, prints where to click, and stays in the foreground until Ctrl-C.
//!
//! Services are entries of [`services`]: adding one is one more entry.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::{http_get, plugin, widget, workspace, Workspace};

/// How long a service may take from start to a healthy answer (a cold sandbox opens SQLite).
const HEALTH_DEADLINE: Duration = Duration::from_secs(60);
/// How long a stopped service may take to exit before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);

const HOST_PACKAGE: &str = "cvco-host";

/// One process of the demo.
pub struct Service {
    pub name: &'static str,
    pub package: &'static str,
    pub bin: &'static str,
    pub args: Vec<String>,
    pub env: Vec<(&'static str, PathBuf)>,
    pub health_url: String,
    /// What to open, and what to do there.
    pub urls: Vec<(String, &'static str)>,
    /// Extra lines for the banner (credentials of demo accounts and the like).
    pub notes: Vec<String>,
}

/// Ports of the demo. Defaults are the documented ones; `--port-base N` moves them all
/// (sandbox N, reference backend N+1) to run a second demo beside the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    pub sandbox: u16,
    pub host: u16,
}

impl Ports {
    pub fn new(base: Option<u16>) -> Result<Self> {
        match base {
            None => Ok(Ports {
                sandbox: 7070,
                host: 8080,
            }),
            Some(base) => Ok(Ports {
                sandbox: base,
                host: base.checked_add(1).context("--port-base too high")?,
            }),
        }
    }
}

/// Each port base its own data directory (`<target>/demo/default`, `<target>/demo/<N>`): two demos
/// side by side never share a SQLite file.
pub fn demo_dir(target_dir: &Path, base: Option<u16>) -> PathBuf {
    let name = base.map_or_else(|| "default".to_string(), |n| n.to_string());
    target_dir.join("demo").join(name)
}

fn parse_port_base(args: &[String]) -> Result<Option<u16>> {
    let mut base = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let value = match arg.as_str() {
            "--port-base" => args.next().context("--port-base needs a port")?.as_str(),
            other => match other.strip_prefix("--port-base=") {
                Some(value) => value,
                None => bail!("unexpected argument `{other}` (demo [--port-base N])"),
            },
        };
        let port: u16 = value
            .parse()
            .with_context(|| format!("--port-base {value}: not a port"))?;
        if port < 1024 {
            bail!("--port-base {port}: use a port of 1024 or more");
        }
        base = Some(port);
    }
    Ok(base)
}

/// The demo's services, in start order. The reference backend joins as soon as its crate exists.
pub fn services(ports: Ports, demo_dir: &Path, plugin_wasm: &Path) -> Vec<Service> {
    let sandbox = format!("http://127.0.0.1:{}", ports.sandbox);
    let mut services = vec![Service {
        name: "sandbox (simulated ANCV acquisition server)",
        package: "cvco-sandbox",
        bin: "cvco-sandbox",
        args: vec![
            "--host".into(),
            "127.0.0.1".into(),
            "--port".into(),
            ports.sandbox.to_string(),
            "--data".into(),
            demo_dir.join("sandbox.sqlite").display().to_string(),
        ],
        env: Vec::new(),
        health_url: format!("{sandbox}/healthz"),
        urls: vec![
            (
                format!("{sandbox}/app"),
                "the simulated ANCV app: pick a beneficiary, open a pending payment, confirm with code 1234",
            ),
            (
                format!("{sandbox}/outbox"),
                "payment requests \"sent\" by e-mail, with their pay links",
            ),
            (
                format!("{sandbox}/openapi.json"),
                "the acquisition API the plugin talks to",
            ),
        ],
        notes: vec![
            "demo shop: shop_id SHOP-DEMO-01, client_id demo-client, client_secret demo-secret (sandbox only)".into(),
            "beneficiaries: alice.approve@sandbox.cvco.test approves, bruno.partial@… pays 35,00 € (see sandbox/README.md)".into(),
        ],
    }];
    let host = format!("http://127.0.0.1:{}", ports.host);
    services.push(Service {
        name: "reference merchant backend (cvco-host)",
        package: HOST_PACKAGE,
        bin: HOST_PACKAGE,
        // The cvco-host crate owns these flags: keep this entry in step with its --help.
        args: vec![
            // Demo defaults, demo accounts, demo shop, counter and simulated card: off without it.
            "--demo".into(),
            "--port".into(),
            ports.host.to_string(),
            "--sandbox-url".into(),
            sandbox.clone(),
            "--plugin".into(),
            plugin_wasm.display().to_string(),
            "--data".into(),
            demo_dir.join("host.sqlite").display().to_string(),
        ],
        env: vec![(plugin::WASM_ENV, plugin_wasm.to_path_buf())],
        health_url: format!("{host}/healthz"),
        urls: vec![
            (
                format!("{host}/"),
                "the demo shop: fill a cart, pay with Chèque-Vacances Connect",
            ),
            (
                format!("{host}/back-office"),
                "the merchant back-office: payments, e-mail payment requests, refunds",
            ),
            (
                format!("{host}/counter"),
                "the counter: show a payment QR or scan the customer's id",
            ),
        ],
        notes: vec![
            "back-office: manager / manager-demo (everything), seller / seller-demo (MOTO, counter)"
                .into(),
        ],
    });
    services
}

/// `cargo xtask demo`
pub fn command(args: &[String]) -> Result<()> {
    let base = parse_port_base(args)?;
    let ports = Ports::new(base)?;
    let workspace = workspace()?;
    let demo_dir = demo_dir(&workspace.target_dir, base);
    std::fs::create_dir_all(&demo_dir)
        .with_context(|| format!("creating {}", demo_dir.display()))?;

    let plugin_wasm = plugin::build()?;
    // The storefront and the counter embed <cvco-checkout>: cvco-host serves it from dist/widget.
    let dist = widget::build()?;
    let mut services = services(ports, &demo_dir, &plugin_wasm);
    for service in services.iter_mut().filter(|s| s.package == HOST_PACKAGE) {
        service.env.push((widget::DIST_ENV, dist.clone()));
    }
    for service in &services {
        ensure_port_free(&service.health_url)?;
    }
    // The paths cargo reports: never a stale binary left in the target dir under an older name.
    let programs = services
        .iter()
        .map(|service| workspace.build_bin(service.package, service.bin))
        .collect::<Result<Vec<_>>>()?;

    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))
        .context("installing the Ctrl-C handler")?;

    let mut running = Running::default();
    for (service, program) in services.iter().zip(&programs) {
        let child = spawn(workspace, service, program)?;
        running.children.push((service.name, child));
        wait_healthy(service, &mut running, &stop)?;
    }
    print_banner(&services, &demo_dir);

    while !stop.load(Ordering::SeqCst) {
        if let Some(exited) = running.first_exited() {
            // A terminal's Ctrl-C reaches the services too: their exit is then expected.
            std::thread::sleep(Duration::from_millis(300));
            if stop.load(Ordering::SeqCst) {
                break;
            }
            bail!("{exited}; stopping the demo");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("\nstopping the demo…");
    running.stop_all();
    Ok(())
}

/// A port already taken would make the health check succeed against someone else's server.
fn ensure_port_free(health_url: &str) -> Result<()> {
    let (address, _) = crate::split_http_url(health_url)?;
    TcpListener::bind(&address).map(drop).with_context(|| {
        format!("{address} is already in use (another demo running? try --port-base)")
    })
}

fn spawn(workspace: &Workspace, service: &Service, program: &Path) -> Result<Child> {
    let mut command = Command::new(program);
    command
        .args(&service.args)
        .envs(service.env.iter().map(|(key, value)| (*key, value)))
        .current_dir(&workspace.root);
    die_with_parent(&mut command);
    eprintln!("$ {}", crate::describe(&command));
    command
        .spawn()
        .with_context(|| format!("starting {}", program.display()))
}

/// On Linux, the kernel stops a service if xtask itself is killed without a chance to clean up.
#[cfg(target_os = "linux")]
fn die_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_command: &mut Command) {}

fn wait_healthy(service: &Service, running: &mut Running, stop: &AtomicBool) -> Result<()> {
    let started = Instant::now();
    loop {
        if stop.load(Ordering::SeqCst) {
            bail!("interrupted while waiting for {}", service.name);
        }
        if let Some(exited) = running.first_exited() {
            bail!("{exited} before answering {}", service.health_url);
        }
        match http_get(&service.health_url, Duration::from_secs(2)) {
            Ok((200..=299, _)) => {
                eprintln!(
                    "{} healthy after {:.1} s",
                    service.name,
                    started.elapsed().as_secs_f64()
                );
                return Ok(());
            }
            _ if started.elapsed() > HEALTH_DEADLINE => bail!(
                "{} did not answer {} within {} s",
                service.name,
                service.health_url,
                HEALTH_DEADLINE.as_secs()
            ),
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

fn print_banner(services: &[Service], demo_dir: &Path) {
    let mut banner =
        String::from("\n=== cvco demo is running on 127.0.0.1 — Ctrl-C stops everything ===\n");
    for service in services {
        banner.push_str(&format!("\n{}\n", service.name));
        for (url, what) in &service.urls {
            banner.push_str(&format!("  {url:<40} {what}\n"));
        }
        for note in &service.notes {
            banner.push_str(&format!("  {note}\n"));
        }
    }
    banner.push_str(&format!("\ndata: {}\n", demo_dir.display()));
    println!("{banner}");
}

/// The started services; stopped on every way out, including errors.
#[derive(Default)]
struct Running {
    children: Vec<(&'static str, Child)>,
}

impl Running {
    fn first_exited(&mut self) -> Option<String> {
        self.children
            .iter_mut()
            .find_map(|(name, child)| match child.try_wait() {
                Ok(Some(status)) => Some(format!("{name} exited ({status})")),
                _ => None,
            })
    }

    /// SIGTERM first so services close their stores cleanly, then SIGKILL after a grace period.
    fn stop_all(&mut self) {
        for (_, child) in &self.children {
            if let Ok(pid) = libc::pid_t::try_from(child.id()) {
                // SAFETY: kill has no memory preconditions; the pid is our own child.
                unsafe {
                    libc::kill(pid, libc::SIGTERM);
                }
            }
        }
        let deadline = Instant::now() + STOP_GRACE;
        for (name, child) in &mut self.children {
            loop {
                match child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(50))
                    }
                    Ok(None) => {
                        eprintln!("{name} did not stop in time: killing it");
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                }
            }
        }
        self.children.clear();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn ports_default_and_shift_with_a_base() {
        assert_eq!(
            Ports::new(None).unwrap(),
            Ports {
                sandbox: 7070,
                host: 8080
            }
        );
        assert_eq!(
            Ports::new(parse_port_base(&args(&["--port-base", "9000"])).unwrap()).unwrap(),
            Ports {
                sandbox: 9000,
                host: 9001
            }
        );
        assert!(parse_port_base(&args(&["--port-base=80"])).is_err());
        assert!(parse_port_base(&args(&["--port-base", "x"])).is_err());
        assert!(parse_port_base(&args(&["--verbose"])).is_err());
        assert!(Ports::new(Some(u16::MAX)).is_err());
    }

    #[test]
    fn each_port_base_gets_its_own_data_directory() {
        let target = Path::new("/t");
        assert_eq!(demo_dir(target, None), Path::new("/t/demo/default"));
        assert_eq!(demo_dir(target, Some(9000)), Path::new("/t/demo/9000"));
        let files = |base| -> Vec<String> {
            let dir = demo_dir(target, base);
            services(Ports::new(base).unwrap(), &dir, Path::new("/p.wasm"))
                .iter()
                .flat_map(|s| s.args.iter().filter(|a| a.ends_with(".sqlite")).cloned())
                .collect()
        };
        let (one, two) = (files(None), files(Some(9000)));
        assert_eq!(one.len(), 2, "{one:?}");
        assert!(one.iter().all(|f| !two.contains(f)), "{one:?} {two:?}");
    }

    #[test]
    fn the_backend_starts_in_demo_mode() {
        let list = services(
            Ports::new(None).unwrap(),
            Path::new("/tmp/demo"),
            Path::new("/tmp/cvco_plugin.wasm"),
        );
        let host = list.iter().find(|s| s.package == HOST_PACKAGE).unwrap();
        assert!(host.args.iter().any(|a| a == "--demo"), "{:?}", host.args);
    }

    #[test]
    fn a_taken_port_is_refused_before_starting_anything() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/healthz", listener.local_addr().unwrap());
        assert!(ensure_port_free(&url).is_err());
        drop(listener);
        assert!(ensure_port_free(&url).is_ok());
    }

    #[test]
    fn every_service_has_a_health_url_on_loopback_and_urls_to_print() {
        let list = services(
            Ports::new(None).unwrap(),
            Path::new("/tmp/demo"),
            Path::new("/tmp/cvco_plugin.wasm"),
        );
        assert_eq!(list[0].package, "cvco-sandbox");
        assert!(list.iter().any(|s| s.package == HOST_PACKAGE));
        for service in &list {
            assert!(service.health_url.starts_with("http://127.0.0.1:"));
            assert!(!service.urls.is_empty());
        }
    }
}
