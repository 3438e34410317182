//! Test support: the store a test runs on. `CVCO_HOST_TEST_STORE=postgres` with
//! `CVCO_TEST_DATABASE_URL` (what `cargo xtask test` sets) gives each test a PostgreSQL database of
//! its own, `cvco_t_<random>`, dropped with its [`PgDatabase`]; otherwise SQLite.

use super::Store;

pub const STORE_ENV: &str = "CVCO_HOST_TEST_STORE";
pub const URL_ENV: &str = "CVCO_TEST_DATABASE_URL";

/// Whether the tests of this run are on PostgreSQL.
pub fn wants_postgres() -> bool {
    std::env::var(STORE_ENV).is_ok_and(|v| v == "postgres")
}

/// A database created for one test; dropped (connections closed by force) with this value.
pub struct PgDatabase {
    pub url: String,
    admin_url: String,
    name: String,
}

/// `url` with its database name replaced.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let base = match base.rsplit_once('/') {
        Some((head, _)) if head.contains("://") => head,
        _ => base,
    };
    format!("{base}/{name}{query}")
}

async fn admin(url: &str) -> Result<tokio_postgres::Client, String> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(|e| format!("{URL_ENV}: {e}"))?;
    tokio::spawn(connection);
    Ok(client)
}

impl PgDatabase {
    /// A fresh database on the server of `CVCO_TEST_DATABASE_URL`; `None` without it.
    pub async fn create() -> Option<Result<PgDatabase, String>> {
        let admin_url = std::env::var(URL_ENV).ok()?;
        Some(Self::create_on(admin_url).await)
    }

    async fn create_on(admin_url: String) -> Result<PgDatabase, String> {
        let name = format!("cvco_t_{:016x}", rand::random::<u64>());
        admin(&admin_url)
            .await?
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .map_err(|e| format!("CREATE DATABASE {name}: {e}"))?;
        Ok(PgDatabase {
            url: with_database(&admin_url, &name),
            admin_url,
            name,
        })
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let (url, name) = (self.admin_url.clone(), self.name.clone());
        // Its own runtime on its own thread: a drop may happen inside or outside a runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let c = admin(&url).await.ok()?;
                c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                    .ok()
            })
        })
        .join();
    }
}

/// The store of one test: SQLite in memory, or a database of its own on PostgreSQL (keep the
/// second value alive as long as the store).
pub async fn store() -> (Store, Option<PgDatabase>) {
    if !wants_postgres() {
        return (Store::open(None).expect("sqlite in memory"), None);
    }
    let db = PgDatabase::create()
        .await
        .unwrap_or_else(|| panic!("{STORE_ENV}=postgres needs {URL_ENV}"))
        .expect("test database");
    let store = Store::connect(&db.url).await.expect("postgres store");
    (store, Some(db))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_test_database_url_keeps_credentials_host_and_options() {
        assert_eq!(
            super::with_database("postgres://u:p@127.0.0.1:5432/cvco", "cvco_t_1"),
            "postgres://u:p@127.0.0.1:5432/cvco_t_1"
        );
        assert_eq!(
            super::with_database("postgres://u@h/cvco?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
        assert_eq!(
            super::with_database("postgres://u@h", "x"),
            "postgres://u@h/x"
        );
    }
}
