//! `cvco-host`: the reference merchant backend as a process.

use cvco_host::config::refusal;
use cvco_host::HostConfig;
use std::path::PathBuf;

const HELP: &str = "cvco-host: reference merchant backend for Chèque-Vacances Connect

USAGE: cvco-host [--demo] [--port 8080] [--host 127.0.0.1] [--api-base-url URL] [--plugin FILE.wasm]
                 [--shop-id ID] [--client-id ID] [--data FILE.sqlite | --database URL]
                 [--config cvco-host.toml] [--public-url URL] [--test-orders]
       cvco-host user add --role manager|seller --username NAME [--password-stdin]
                 [--data FILE.sqlite | --database URL] [--config cvco-host.toml]
       cvco-host merchant add|list|set-secret … (many merchants; `cvco-host merchant --help`)

Production mode (the default) refuses to start without the merchant's ANCV shop id, client id,
client secret and notification secret, an https API base URL (plain http only to a loopback host),
a plugin file and, when not listening on loopback, an https public URL; it says what is missing.
Secrets have no flag (a command line is visible to every local user): CVCO_HOST_CLIENT_SECRET,
CVCO_HOST_NOTIFICATION_SECRET or the TOML file. There is no default account: create the first
manager with `cvco-host user add --role manager --username NAME` (password read from stdin).

--demo (or CVCO_HOST_DEMO=1): the sandbox's demo shop (http://127.0.0.1:7070, SHOP-DEMO-01), the
demo accounts manager/manager-demo and seller/seller-demo, the demo shop and the
simulated card. `cargo xtask demo` passes it.

Database: SQLite by default (--data FILE, in memory without it); --database postgres://USER:PASS@HOST/DB
(or CVCO_HOST_DATABASE) for PostgreSQL, which any number of instances may share; --database
sqlite:FILE or a path is SQLite again. Migrations run at start (a newer schema is refused).

Configuration: defaults < --config TOML file < CVCO_HOST_* environment variables < flags.
--sandbox-url is an alias of --api-base-url. Keys: host-adapters/rust/README.md.";

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

/// The command line once read: flags in order, the TOML file, demo mode.
#[derive(Debug, Default)]
struct Cli {
    flags: Vec<(String, String)>,
    config_file: Option<PathBuf>,
    demo: bool,
    password_stdin: bool,
    role: Option<String>,
    username: Option<String>,
    merchant: Option<String>,
}

/// Flags taking a value; `user_add` adds the ones of `user add`.
fn parse(args: &[String], user_add: bool) -> Result<Option<Cli>, String> {
    let mut cli = Cli::default();
    let mut args = args.iter();
    while let Some(a) = args.next() {
        let mut value = || {
            args.next()
                .cloned()
                .ok_or_else(|| format!("{a} needs a value"))
        };
        match a.as_str() {
            "-h" | "--help" => return Ok(None),
            "--config" => cli.config_file = Some(value()?.into()),
            "--data" | "--database" => cli.flags.push((a.clone(), value()?)),
            "--role" if user_add => cli.role = Some(value()?),
            "--username" if user_add => cli.username = Some(value()?),
            "--merchant" if user_add => cli.merchant = Some(value()?),
            "--password-stdin" if user_add => cli.password_stdin = true,
            "--demo" if !user_add => cli.demo = true,
            "--test-orders" if !user_add => cli.flags.push((a.clone(), String::new())),
            "--port" | "--host" | "--sandbox-url" | "--api-base-url" | "--plugin"
            | "--public-url" | "--shop-id" | "--client-id"
                if !user_add =>
            {
                cli.flags.push((a.clone(), value()?))
            }
            "--password" if user_add => {
                return Err(
                    "--password takes no value: the password is read from stdin (--password-stdin)"
                        .into(),
                )
            }
            other => return Err(format!("unknown argument {other:?} (see --help)")),
        }
    }
    Ok(Some(cli))
}

/// `CVCO_HOST_DEMO`: 1/true/yes or 0/false/no (empty: off).
fn demo_from_env(value: Option<String>) -> Result<bool, String> {
    match value.as_deref().map(str::trim) {
        None | Some("") | Some("0") | Some("false") | Some("no") => Ok(false),
        Some("1") | Some("true") | Some("yes") => Ok(true),
        Some(v) => Err(format!("CVCO_HOST_DEMO: cannot read {v:?} (1 or 0)")),
    }
}

/// Defaults (production, or demo) < TOML file < environment < flags.
fn load(cli: &Cli) -> Result<HostConfig, String> {
    let demo = cli.demo || demo_from_env(std::env::var("CVCO_HOST_DEMO").ok())?;
    let base = if demo {
        HostConfig::demo()
    } else {
        HostConfig::default()
    };
    let mut cfg = HostConfig { port: 8080, ..base };
    if let Some(f) = &cli.config_file {
        cfg.apply_file(f)?;
    }
    cfg.apply_env()?;
    for (k, v) in &cli.flags {
        let v = v.clone();
        match k.as_str() {
            "--port" => cfg.port = v.parse().map_err(|_| format!("--port {v:?}"))?,
            "--host" => cfg.host = v.parse().map_err(|_| format!("--host {v:?}"))?,
            "--sandbox-url" | "--api-base-url" => cfg.sandbox_url = v,
            "--plugin" => cfg.plugin = Some(v.into()),
            "--data" => cfg.data_file = Some(v.into()),
            "--database" => cfg.database = Some(v),
            "--public-url" => cfg.public_url = Some(v),
            "--shop-id" => cfg.shop_id = v,
            "--client-id" => cfg.client_id = v,
            "--test-orders" => cfg.test_orders = true,
            _ => {}
        }
    }
    Ok(cfg)
}

fn run() -> Result<(), String> {
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("user") {
        return user_command(&args[1..]);
    }
    if args.first().map(String::as_str) == Some("merchant") {
        return cvco_host::tenants::cli::run(&args[1..], |config_file| {
            load(&Cli {
                config_file,
                ..Cli::default()
            })
        });
    }
    let Some(cli) = parse(&args, false)? else {
        println!("{HELP}");
        return Ok(());
    };
    let cfg = load(&cli)?;
    // Merchants only in the store: checked by `spawn` once it has read them.
    if !cfg.may_use_stored_merchants() {
        cfg.check().map_err(|problems| refusal(&problems))?;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let demo = cfg.demo;
        let host = cvco_host::spawn(cfg).await.map_err(|e| e.to_string())?;
        if demo {
            tracing::warn!("demo mode: demo accounts, demo shop and simulated card are on; never expose this host");
        } else if !has_active_manager(&host.engine.store).await {
            tracing::warn!(
                "no back-office manager yet: create one with `cvco-host user add --role manager --username NAME --data FILE` or `--database URL` (password on stdin)"
            );
        }
        println!("cvco-host listening on {}", host.base_url);
        wait_for_stop().await;
        host.shutdown().await;
        Ok(())
    })
}

async fn has_active_manager(store: &cvco_host::store::Store) -> bool {
    // An unreadable store says "yes": the warning is advice, not a check.
    store.users().await.map_or(true, |users| {
        users.iter().any(|u| u.role == "manager" && u.active)
    })
}

const USER_USAGE: &str =
    "usage: cvco-host user add --role manager|seller --username NAME [--merchant ID] [--password-stdin] [--data FILE | --database URL] [--config FILE]";

/// `cvco-host user add`: creates a back-office account in the configured database (argon2id,
/// the host's own cost). The password comes from stdin, never from a flag.
fn user_command(args: &[String]) -> Result<(), String> {
    if args.first().map(String::as_str) != Some("add") {
        return Err(USER_USAGE.into());
    }
    let Some(cli) = parse(&args[1..], true)? else {
        println!("{USER_USAGE}");
        return Ok(());
    };
    let role = cli.role.as_deref().ok_or(USER_USAGE)?;
    let permissions = match role {
        "manager" => cvco_host::auth::Permissions::ALL,
        "seller" => cvco_host::auth::Permissions {
            moto: true,
            counter: true,
            ..Default::default()
        },
        other => return Err(format!("--role {other:?}: manager or seller")),
    };
    let username = cli.username.as_deref().ok_or(USER_USAGE)?;
    // The back-office's own rule for user names.
    if !(3..=32).contains(&username.len())
        || !username.bytes().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'_' | b'-')
        })
    {
        return Err(format!(
            "--username {username:?}: 3 to 32 characters, a-z 0-9 . _ -"
        ));
    }
    let cfg = load(&cli)?;
    let database = match (&cfg.database, &cfg.data_file) {
        (Some(url), _) => url.clone(),
        (None, Some(file)) => format!("sqlite:{}", file.display()),
        (None, None) => return Err(
            "user add needs the database: --data FILE or --database URL (CVCO_HOST_DATA, CVCO_HOST_DATABASE, or the --config file)"
                .into(),
        ),
    };
    // Never the password in a message: only the database's name without its credentials.
    let shown = shown_database(&database);
    let password = read_password(username, cli.password_stdin)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let store = cvco_host::store::Store::connect(&database)
            .await
            .map_err(|e| format!("database {shown}: {}", e.message_en))?;
        let exists = store
            .user(username)
            .await
            .map_err(|e| e.message_en)?
            .is_some();
        if exists {
            return Err(format!(
                "user {username:?} exists already in {shown} (change its password in the back-office)"
            ));
        }
        let auth = cvco_host::auth::Auth::new(cfg.argon2_m_kib, true, cfg.session_ttl_s, 1);
        // A user of another merchant than `default` sees that merchant's data only.
        let merchant = cli.merchant.as_deref().unwrap_or("default");
        if merchant != "default" && store.merchant(merchant).await.map_err(|e| e.message_en)?.is_none() {
            return Err(format!("--merchant {merchant:?}: no such merchant (cvco-host merchant list)"));
        }
        let hash = auth.hash(&password).map_err(|e| e.message_en)?;
        let permissions = serde_json::to_string(&permissions).map_err(|e| e.to_string())?;
        let created = store
            .insert_user_for(merchant, username, role, &hash, &permissions, cvco_host::util::now_ms())
            .await
            .map_err(|e| e.message_en)?;
        if !created {
            return Err(format!("user {username:?} exists already in {shown}"));
        }
        println!("created {role} {username:?} in {shown}");
        Ok(())
    })
}

/// The database as a message may show it: a URL without its user and password.
fn shown_database(database: &str) -> String {
    match database.split_once("://") {
        Some((scheme, rest)) => {
            let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
            format!("{scheme}://{rest}")
        }
        None => database
            .strip_prefix("sqlite:")
            .unwrap_or(database)
            .to_string(),
    }
}

/// The first line of stdin; a prompt on a terminal unless `--password-stdin`.
fn read_password(username: &str, quiet: bool) -> Result<String, String> {
    use std::io::{BufRead, IsTerminal, Write};
    let stdin = std::io::stdin();
    if !quiet && stdin.is_terminal() {
        eprint!("password for {username} (shown as typed; or pipe it with --password-stdin): ");
        let _ = std::io::stderr().flush();
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("reading the password: {e}"))?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    // The back-office's own rule for passwords.
    if password.chars().count() < 8 || password.len() > 256 {
        return Err("password: at least 8 characters (at most 256 bytes), on stdin".into());
    }
    Ok(password)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_database_url_is_shown_without_its_credentials() {
        assert_eq!(
            shown_database("postgres://cvco:secret@db:5432/cvco"),
            "postgres://db:5432/cvco"
        );
        assert_eq!(
            shown_database("sqlite:/var/lib/h.sqlite"),
            "/var/lib/h.sqlite"
        );
    }

    #[test]
    fn demo_env_values() {
        assert_eq!(demo_from_env(None), Ok(false));
        assert_eq!(demo_from_env(Some("1".into())), Ok(true));
        assert_eq!(demo_from_env(Some("0".into())), Ok(false));
        assert!(demo_from_env(Some("maybe".into())).is_err());
    }

    #[test]
    fn user_add_takes_no_password_flag_and_serve_takes_no_user_flags() {
        assert!(parse(&args(&["--password", "x"]), true).is_err());
        assert!(parse(&args(&["--username", "x"]), false).is_err());
        assert!(parse(&args(&["--demo"]), true).is_err());
        let cli = parse(&args(&["--demo", "--shop-id", "S1"]), false)
            .unwrap()
            .unwrap();
        assert!(cli.demo);
        assert_eq!(cli.flags, vec![("--shop-id".into(), "S1".into())]);
    }
}
