//! `cvco-host merchant add|list|set-secret`: merchants in the configured database, their
//! secrets read from stdin (never a flag) and sealed with `CVCO_HOST_SECRET_KEY`.

use super::{valid_id, Merchant, MerchantRow, ReceptionPoint};
use crate::config::HostConfig;
use crate::secrets::{Keyring, Secret};
use crate::store::Store;

pub const USAGE: &str = "usage:
  cvco-host merchant add --id ID --client-id ID --shop-id SHOP[=LABEL] [--shop-id SHOP[=LABEL] …]
                 [--name NAME] [--min-amount-cents N] [--adjustable true|false]
                 [--authorization-timeout-s N] [--data FILE | --database URL] [--config FILE]
      stdin: the ANCV client secret on the first line, the notification secret on the second
  cvco-host merchant list [--data FILE | --database URL] [--config FILE]
  cvco-host merchant set-secret --id ID --secret client|notification [--data …] [--config FILE]
      stdin: the new secret on the first line
Secrets are sealed with CVCO_HOST_SECRET_KEY (64 hex digits or base64 of 32 bytes); a running
host picks the change up within seconds.";

#[derive(Debug, Default)]
struct Args {
    id: Option<String>,
    name: String,
    client_id: Option<String>,
    points: Vec<ReceptionPoint>,
    min_amount_cents: Option<u64>,
    adjustable: Option<bool>,
    authorization_timeout_s: Option<u32>,
    secret: Option<String>,
    data: Option<String>,
    database: Option<String>,
    config: Option<std::path::PathBuf>,
}

fn parse(args: &[String]) -> Result<Args, String> {
    let mut a = Args::default();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        let num = |v: String| {
            v.parse::<u64>()
                .map_err(|_| format!("{flag} {v:?}: a whole number"))
        };
        match flag.as_str() {
            "--id" => a.id = Some(value()?),
            "--name" => a.name = value()?,
            "--client-id" => a.client_id = Some(value()?),
            "--shop-id" => {
                let v = value()?;
                let (shop_id, label) = v.split_once('=').unwrap_or((&v, ""));
                a.points.push(ReceptionPoint {
                    shop_id: shop_id.into(),
                    label: label.into(),
                });
            }
            "--min-amount-cents" => a.min_amount_cents = Some(num(value()?)?),
            "--authorization-timeout-s" => {
                a.authorization_timeout_s = Some(
                    u32::try_from(num(value()?)?)
                        .map_err(|_| "--authorization-timeout-s: too large".to_string())?,
                )
            }
            "--adjustable" => {
                a.adjustable = Some(match value()?.as_str() {
                    "true" => true,
                    "false" => false,
                    v => return Err(format!("--adjustable {v:?}: true or false")),
                })
            }
            "--secret" => a.secret = Some(value()?),
            "--data" => a.data = Some(value()?),
            "--database" => a.database = Some(value()?),
            "--config" => a.config = Some(value()?.into()),
            "--client-secret" | "--notification-secret" => {
                return Err(format!(
                    "{flag} takes no value: secrets are read from stdin"
                ))
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(a)
}

/// Runs `merchant …`; `load` reads the configuration (defaults < file < environment).
pub fn run(
    args: &[String],
    load: impl FnOnce(Option<std::path::PathBuf>) -> Result<HostConfig, String>,
) -> Result<(), String> {
    let (command, rest) = args.split_first().ok_or(USAGE)?;
    if matches!(command.as_str(), "-h" | "--help") {
        println!("{USAGE}");
        return Ok(());
    }
    let a = parse(rest)?;
    let mut cfg = load(a.config.clone())?;
    if let Some(d) = &a.data {
        cfg.data_file = Some(d.into());
    }
    if a.database.is_some() {
        cfg.database = a.database.clone();
    }
    if cfg.data_file.is_none() && cfg.database.is_none() {
        return Err("merchant needs the database: --data FILE, --database URL, CVCO_HOST_DATA / CVCO_HOST_DATABASE or the --config file".into());
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let store = match &cfg.database {
            Some(d) => Store::connect(d).await,
            None => Store::open(cfg.data_file.as_deref()),
        }
        .map_err(|e| format!("database: {}", e.message_en))?;
        match command.as_str() {
            "add" => add(&store, a).await,
            "list" => list(&store).await,
            "set-secret" => set_secret(&store, a).await,
            other => Err(format!("merchant {other:?}?\n{USAGE}")),
        }
    })
}

fn keyring() -> Result<Keyring, String> {
    Keyring::from_env().map_err(|e| e.to_string())
}

fn read_secret(stdin: &mut impl std::io::BufRead, what: &str) -> Result<Secret, String> {
    let mut line = String::new();
    stdin
        .read_line(&mut line)
        .map_err(|e| format!("reading the {what}: {e}"))?;
    let s = line.trim_end_matches(['\r', '\n']);
    if s.trim().is_empty() || s.len() > 1024 {
        return Err(format!(
            "{what}: one non-empty line on stdin (at most 1024 bytes)"
        ));
    }
    Ok(Secret::new(s))
}

async fn add(store: &Store, a: Args) -> Result<(), String> {
    let id = a.id.ok_or(USAGE)?;
    if !valid_id(&id) || id == super::DEFAULT_MERCHANT {
        return Err(format!(
            "--id {id:?}: 1 to 64 characters a-z 0-9 - _ (and not \"default\")"
        ));
    }
    let ring = keyring()?;
    let mut stdin = std::io::stdin().lock();
    let client_secret = read_secret(&mut stdin, "client secret")?;
    let notification_secret = read_secret(&mut stdin, "notification secret")?;
    let d = cvco_core::shop::MerchantSettings::default();
    let row = MerchantRow {
        merchant_id: id.clone(),
        name: a.name,
        client_id: a.client_id.ok_or(USAGE)?,
        client_secret_sealed: ring.seal(&id, &client_secret),
        notification_secret_sealed: ring.seal(&id, &notification_secret),
        min_amount_cents: a.min_amount_cents.unwrap_or(d.min_amount_cents.cents()) as i64,
        adjustable: a.adjustable,
        authorization_timeout_s: a
            .authorization_timeout_s
            .unwrap_or(d.authorization_timeout_s) as i64,
        reception_points: a.points.into_iter().map(|p| (p.shop_id, p.label)).collect(),
        updated_at: 0,
        version: 0,
    };
    let problems = Merchant::from_row(&row).problems();
    if !problems.is_empty() {
        return Err(problems.join("\n"));
    }
    if !store
        .insert_merchant(&row, crate::util::now_ms())
        .await
        .map_err(|e| e.message_en)?
    {
        return Err(format!(
            "merchant {id:?} or one of its shop ids exists already (nothing written)"
        ));
    }
    println!("created merchant {id:?}: notification URL {{public_url}}/cvco/v1/notifications/{id}");
    Ok(())
}

async fn list(store: &Store) -> Result<(), String> {
    for m in store.merchants().await.map_err(|e| e.message_en)? {
        let points: Vec<String> = m
            .reception_points
            .iter()
            .map(|(s, l)| {
                if l.is_empty() {
                    s.clone()
                } else {
                    format!("{s}={l}")
                }
            })
            .collect();
        // Never a secret, not even sealed.
        println!(
            "{}\t{}\tclient_id={}\tshops={}\tmin_amount_cents={}\tadjustable={}\tauthorization_timeout_s={}",
            m.merchant_id,
            m.name,
            m.client_id,
            points.join(","),
            m.min_amount_cents,
            m.adjustable.map_or("shop".to_string(), |a| a.to_string()),
            m.authorization_timeout_s
        );
    }
    Ok(())
}

async fn set_secret(store: &Store, a: Args) -> Result<(), String> {
    let id = a.id.ok_or(USAGE)?;
    let which = a.secret.ok_or(USAGE)?;
    let ring = keyring()?;
    let secret = read_secret(&mut std::io::stdin().lock(), &format!("{which} secret"))?;
    let sealed = ring.seal(&id, &secret);
    let (client, notification) = match which.as_str() {
        "client" => (Some(sealed.as_str()), None),
        "notification" => (None, Some(sealed.as_str())),
        other => return Err(format!("--secret {other:?}: client or notification")),
    };
    let found = store
        .update_merchant(&id, client, notification, crate::util::now_ms())
        .await
        .map_err(|e| e.message_en)?;
    if !found {
        return Err(format!("no merchant {id:?}"));
    }
    println!("{which} secret of {id:?} replaced (sealed)");
    Ok(())
}
