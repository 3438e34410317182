//! A throwaway PostgreSQL cluster for the tests and benchmarks, from Debian's `postgresql` package
//! (installed when missing, like Chromium): `initdb` into a fresh directory, 127.0.0.1 only on a
//! free port, test-only settings (no fsync), one role and one database `cvco`, stopped and deleted
//! when its [`PgHandle`] drops. The tests read the URL from [`URL_ENV`].
//!
//! `cargo xtask postgres` starts one and prints its URL until Ctrl-C.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::Read;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::{describe, ensure_debian_packages, reject_args, workspace, Workspace};

/// The variable the test steps read: `postgres://cvco:<password>@127.0.0.1:<port>/cvco`.
pub const URL_ENV: &str = "CVCO_TEST_DATABASE_URL";
/// The role and the database the tests use (the role may create databases, so a suite can give
/// each test its own).
pub const ROLE: &str = "cvco";
pub const DATABASE: &str = "cvco";
/// Where Debian puts each major version's server binaries.
const DEBIAN_LIB: &str = "/usr/lib/postgresql";
/// A file of the `postgresql` metapackage: missing means the package is not installed.
const PACKAGE_MARKER: &str = "/usr/share/doc/postgresql/copyright";
/// PostgreSQL refuses to run as root: as root we run it as the user the package creates.
const SYSTEM_USER: &str = "postgres";
/// The superuser initdb creates (local socket, trust): only xtask itself uses it.
const SUPERUSER: &str = "postgres";
/// A Unix socket path is at most 107 bytes on Linux.
const MAX_SOCKET_PATH: usize = 100;
/// Appended to postgresql.conf: durability off (a test cluster is thrown away), enough
/// connections for several host instances with their pools plus parallel tests.
const TEST_SETTINGS: &[(&str, &str)] = &[
    ("listen_addresses", "'127.0.0.1'"),
    ("fsync", "off"),
    ("synchronous_commit", "off"),
    ("full_page_writes", "off"),
    ("wal_level", "minimal"),
    ("max_wal_senders", "0"),
    ("max_connections", "200"),
    ("shared_buffers", "128MB"),
    ("log_min_messages", "warning"),
];

/// A running throwaway cluster; dropping it stops the server and deletes its files.
pub struct PgHandle {
    /// `<base>/<port>`: data/, the lock file and the server log.
    cluster_dir: PathBuf,
    bin_dir: PathBuf,
    run_as: Option<String>,
    port: u16,
    password: String,
    /// Held (flock) for the handle's life: a cluster whose lock is free belongs to a dead run.
    _lock: File,
    stopped: bool,
}

impl PgHandle {
    /// `postgres://cvco:<password>@127.0.0.1:<port>/cvco`
    pub fn url(&self) -> String {
        database_url(&self.password, self.port, DATABASE)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn data_dir(&self) -> PathBuf {
        self.cluster_dir.join("data")
    }

    /// Stops the server and deletes the cluster, reporting what failed (Drop does the same quietly).
    pub fn stop(mut self) -> Result<()> {
        self.stopped = true;
        stop_cluster(&self.bin_dir, self.run_as.as_deref(), &self.cluster_dir)
    }
}

impl Drop for PgHandle {
    fn drop(&mut self) {
        if !self.stopped {
            if let Err(error) =
                stop_cluster(&self.bin_dir, self.run_as.as_deref(), &self.cluster_dir)
            {
                eprintln!("xtask: stopping PostgreSQL: {error:#}");
            }
        }
    }
}

/// `postgres://cvco:<password>@127.0.0.1:<port>/<database>`; the password is hex, so nothing
/// needs escaping.
pub fn database_url(password: &str, port: u16, database: &str) -> String {
    format!("postgres://{ROLE}:{password}@127.0.0.1:{port}/{database}")
}

/// Starts a cluster for this run under the target dir (`<target>/postgres/<port>`), or under the
/// system temp dir when the server's user cannot reach the target dir (root's home is 0700) or the
/// socket path would be too long.
pub fn start(workspace: &Workspace) -> Result<PgHandle> {
    let started = Instant::now();
    let bin_dir = ensure_installed()?;
    let run_as = server_user()?;
    let base = cluster_base(&workspace.target_dir, run_as.as_deref())?;
    let handle = start_in(&base, &bin_dir, run_as)?;
    eprintln!(
        "PostgreSQL ({}) on 127.0.0.1:{} in {}, started in {:.1} s",
        bin_dir.display(),
        handle.port(),
        handle.cluster_dir.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(handle)
}

/// `cargo xtask postgres`: one cluster, its URL on stdout, until Ctrl-C.
pub fn command(args: &[String]) -> Result<()> {
    reject_args(args)?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))
        .context("installing the Ctrl-C handler")?;
    let handle = start(workspace()?)?;
    println!("{}", handle.url());
    eprintln!(
        "export {URL_ENV}={}\nCtrl-C stops it and deletes its data.",
        handle.url()
    );
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(200));
    }
    handle.stop()
}

/// The newest `/usr/lib/postgresql/<major>/bin` with an `initdb`, installing `postgresql` first
/// when there is none.
pub fn ensure_installed() -> Result<PathBuf> {
    if let Some(bin) = newest_bin_dir(Path::new(DEBIAN_LIB)) {
        return Ok(bin);
    }
    ensure_debian_packages(&[(PACKAGE_MARKER, "postgresql")])
        .context("PostgreSQL is needed for the database tests")?;
    newest_bin_dir(Path::new(DEBIAN_LIB)).with_context(|| {
        format!("postgresql is installed but no {DEBIAN_LIB}/<major>/bin/initdb was found")
    })
}

/// The bin dir of the highest major version under `lib` that has `initdb` and `pg_ctl`.
pub fn newest_bin_dir(lib: &Path) -> Option<PathBuf> {
    let mut majors: Vec<(u32, PathBuf)> = fs::read_dir(lib)
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let major: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("pg_ctl").is_file()).then_some((major, bin))
        })
        .collect();
    majors.sort();
    majors.pop().map(|(_, bin)| bin)
}

/// `Some("postgres")` when we are root (PostgreSQL refuses root), `None` to run as ourselves.
fn server_user() -> Result<Option<String>> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    if user_ids(SYSTEM_USER).is_none() {
        bail!("running as root but there is no `{SYSTEM_USER}` user (the postgresql package creates it)");
    }
    Ok(Some(SYSTEM_USER.to_owned()))
}

/// The uid and gid of a system user.
fn user_ids(name: &str) -> Option<(libc::uid_t, libc::gid_t)> {
    let name = std::ffi::CString::new(name).ok()?;
    // SAFETY: getpwnam takes a NUL-terminated name; the result is read at once, before any other
    // getpw* call on this thread could overwrite it.
    let entry = unsafe { libc::getpwnam(name.as_ptr()) };
    if entry.is_null() {
        return None;
    }
    // SAFETY: non-null entry returned by getpwnam.
    Some(unsafe { ((*entry).pw_uid, (*entry).pw_gid) })
}

fn chown(path: &Path, user: &str) -> Result<()> {
    let (uid, gid) = user_ids(user).with_context(|| format!("no user `{user}`"))?;
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
        .with_context(|| format!("chown {user} {}", path.display()))
}

/// The directory holding the clusters: `<target>/postgres`, unless the server's user cannot use
/// it or the socket path would be too long; then `<tmp>/cvco-postgres`.
fn cluster_base(target_dir: &Path, run_as: Option<&str>) -> Result<PathBuf> {
    let preferred = target_dir.join("postgres");
    let reason = if socket_path(&preferred, u16::MAX).as_os_str().len() > MAX_SOCKET_PATH {
        Some("its socket path would be too long")
    } else if !user_can(run_as, "-x", target_dir) {
        Some("the server's user cannot reach it")
    } else {
        prepare_base(&preferred, run_as)?;
        (!user_can_write(&preferred, run_as)).then_some("the server's user cannot write it")
    };
    let Some(reason) = reason else {
        return Ok(preferred);
    };
    let fallback = std::env::temp_dir().join("cvco-postgres");
    eprintln!(
        "PostgreSQL: not under {} ({reason}); using {}",
        preferred.display(),
        fallback.display()
    );
    prepare_base(&fallback, run_as)?;
    if !user_can_write(&fallback, run_as) {
        bail!(
            "the PostgreSQL server's user cannot write {} nor {}",
            preferred.display(),
            fallback.display()
        );
    }
    Ok(fallback)
}

fn prepare_base(base: &Path, run_as: Option<&str>) -> Result<()> {
    fs::create_dir_all(base).with_context(|| format!("creating {}", base.display()))?;
    if let Some(user) = run_as {
        chown(base, user)?;
    }
    Ok(())
}

fn user_can_write(dir: &Path, run_as: Option<&str>) -> bool {
    user_can(run_as, "-w", dir) && user_can(run_as, "-x", dir)
}

/// `test <flag> <path>` as the server's user.
fn user_can(run_as: Option<&str>, flag: &str, path: &Path) -> bool {
    as_user(run_as, "test")
        .arg(flag)
        .arg(path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// The server's socket for `port` when its directory is the cluster's data dir.
fn socket_path(base: &Path, port: u16) -> PathBuf {
    base.join(port.to_string())
        .join("data")
        .join(format!(".s.PGSQL.{port}"))
}

/// `program` run as `user` (`runuser -u user --`), or as ourselves.
fn as_user(run_as: Option<&str>, program: impl AsRef<OsStr>) -> Command {
    match run_as {
        Some(user) => {
            let mut command = Command::new("runuser");
            command.args(["-u", user, "--"]).arg(program);
            command
        }
        None => Command::new(program),
    }
}

/// Runs a command quietly, its output shown only when it fails.
fn run_quiet(command: &mut Command) -> Result<String> {
    let line = describe(command);
    let output = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("could not start `{line}`"))?;
    if !output.status.success() {
        bail!(
            "`{line}` failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Starts a new cluster in `<base>/<port>`, after removing the clusters of dead runs. A port taken
/// between our probe and the server's bind gets another try on a new port.
pub fn start_in(base: &Path, bin_dir: &Path, run_as: Option<String>) -> Result<PgHandle> {
    remove_stale_clusters(base, bin_dir, run_as.as_deref());
    let mut last_error = None;
    for _ in 0..3 {
        let port = free_port()?;
        match start_on(base, bin_dir, run_as.clone(), port) {
            Ok(handle) => return Ok(handle),
            // Only a lost race for the port is worth another try.
            Err(error) if format!("{error:#}").contains("Address already in use") => {
                last_error = Some(error)
            }
            Err(error) => return Err(error),
        }
    }
    Err(last_error.expect("three tries ran"))
}

fn start_on(base: &Path, bin_dir: &Path, run_as: Option<String>, port: u16) -> Result<PgHandle> {
    let cluster_dir = base.join(port.to_string());
    if cluster_dir.exists() {
        bail!("{} is in use by another run", cluster_dir.display());
    }
    fs::create_dir(&cluster_dir).with_context(|| format!("creating {}", cluster_dir.display()))?;
    let lock = lock_file(&cluster_dir)?;
    let password = random_hex(16)?;
    // From here on, Drop cleans up whatever was created.
    let handle = PgHandle {
        cluster_dir,
        bin_dir: bin_dir.to_owned(),
        run_as,
        port,
        password,
        _lock: lock,
        stopped: false,
    };
    if let Some(user) = handle.run_as.as_deref() {
        chown(&handle.cluster_dir, user)?;
    }
    if let Err(error) = init_and_start(&handle) {
        let log = fs::read_to_string(handle.cluster_dir.join("postgres.log")).unwrap_or_default();
        return Err(error.context(format!("PostgreSQL on port {port}; its log:\n{log}")));
    }
    Ok(handle)
}

fn init_and_start(handle: &PgHandle) -> Result<()> {
    let data = handle.data_dir();
    let user = handle.run_as.as_deref();
    let bin = |name: &str| handle.bin_dir.join(name);
    let in_cluster = |mut command: Command| {
        // The server's user may not be able to enter our working directory.
        command.current_dir(&handle.cluster_dir);
        command
    };
    run_quiet(
        in_cluster(as_user(user, bin("initdb")))
            .args(initdb_args(&data))
            .env("LC_ALL", "C"),
    )?;
    let mut settings = String::from("\n# cvco test cluster (xtask/src/postgres.rs)\n");
    for (key, value) in test_settings(handle.port, &data) {
        settings.push_str(&format!("{key} = {value}\n"));
    }
    let conf = data.join("postgresql.conf");
    let mut text =
        fs::read_to_string(&conf).with_context(|| format!("reading {}", conf.display()))?;
    text.push_str(&settings);
    fs::write(&conf, text).with_context(|| format!("writing {}", conf.display()))?;
    run_quiet(
        in_cluster(as_user(user, bin("pg_ctl")))
            .args(["start", "--wait", "--timeout=60", "--silent", "-D"])
            .arg(&data)
            .arg("-l")
            .arg(handle.cluster_dir.join("postgres.log")),
    )?;
    // The role's password travels as a literal: hex, so it cannot break out of the quotes.
    let role = format!(
        "CREATE ROLE {ROLE} LOGIN CREATEDB PASSWORD '{}'",
        handle.password
    );
    // Two -c: CREATE DATABASE cannot share a transaction with another statement.
    run_quiet(
        Command::new(bin("psql"))
            .args([
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-U",
                SUPERUSER,
                "-d",
                "postgres",
            ])
            .arg("-h")
            .arg(&data)
            .args(["-p", &handle.port.to_string()])
            .args(["-c", &role])
            .args(["-c", &format!("CREATE DATABASE {DATABASE} OWNER {ROLE}")]),
    )
    .context("creating the cvco role and database")?;
    // The URL the tests get, checked over TCP with its password.
    let answer = run_quiet(
        Command::new(bin("psql"))
            .args([
                "-X",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                "SELECT current_user",
            ])
            .arg(handle.url()),
    )
    .context("connecting with the test URL")?;
    if answer.trim() != ROLE {
        bail!("connected as `{}` instead of `{ROLE}`", answer.trim());
    }
    Ok(())
}

/// initdb: the superuser trusted on the socket only, passwords (SCRAM) over TCP, no locale, no sync.
pub fn initdb_args(data: &Path) -> Vec<String> {
    vec![
        "--pgdata".to_owned(),
        data.display().to_string(),
        format!("--username={SUPERUSER}"),
        "--auth-local=trust".to_owned(),
        "--auth-host=scram-sha-256".to_owned(),
        "--encoding=UTF8".to_owned(),
        "--no-locale".to_owned(),
        "--no-sync".to_owned(),
        "--no-instructions".to_owned(),
    ]
}

/// The settings appended to postgresql.conf: [`TEST_SETTINGS`], the port and the socket in the
/// data dir (no other run's socket in /var/run/postgresql to clash with).
pub fn test_settings(port: u16, data: &Path) -> Vec<(String, String)> {
    let mut settings: Vec<(String, String)> = TEST_SETTINGS
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect();
    settings.push(("port".to_owned(), port.to_string()));
    settings.push((
        "unix_socket_directories".to_owned(),
        format!("'{}'", data.display().to_string().replace('\'', "''")),
    ));
    settings
}

/// Stops the server (fast shutdown, then immediate if that hangs) and deletes the cluster dir.
fn stop_cluster(bin_dir: &Path, run_as: Option<&str>, cluster_dir: &Path) -> Result<()> {
    let data = cluster_dir.join("data");
    let mut result = Ok(());
    if data.join("postmaster.pid").exists() {
        let pg_ctl = |mode: &str| {
            let mut command = as_user(run_as, bin_dir.join("pg_ctl"));
            command
                .current_dir(cluster_dir)
                .args([
                    "stop",
                    "--wait",
                    "--timeout=20",
                    "--silent",
                    "-m",
                    mode,
                    "-D",
                ])
                .arg(&data);
            run_quiet(&mut command)
        };
        if let Err(error) = pg_ctl("fast") {
            result = pg_ctl("immediate").map(drop).map_err(|_| error);
        }
    }
    fs::remove_dir_all(cluster_dir)
        .with_context(|| format!("removing {}", cluster_dir.display()))?;
    result
}

/// Stops and deletes every cluster under `base` whose lock no live process holds (a run that was
/// killed); clusters of runs still going are left alone.
fn remove_stale_clusters(base: &Path, bin_dir: &Path, run_as: Option<&str>) {
    let Ok(entries) = fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let dir = entry.path();
        let is_cluster = entry
            .file_name()
            .to_str()
            .is_some_and(|name| name.parse::<u16>().is_ok());
        if !is_cluster || !dir.is_dir() || lock_is_held(&dir) {
            continue;
        }
        eprintln!("PostgreSQL: removing the stale cluster {}", dir.display());
        if let Err(error) = stop_cluster(bin_dir, run_as, &dir) {
            eprintln!("xtask: {error:#}");
        }
    }
}

fn lock_path(cluster_dir: &Path) -> PathBuf {
    cluster_dir.join("owner.lock")
}

/// Creates and locks the cluster's lock file; the lock goes with our process, however it ends.
fn lock_file(cluster_dir: &Path) -> Result<File> {
    let path = lock_path(cluster_dir);
    let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    // SAFETY: flock on a file descriptor we own.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        bail!("{} is locked by another run", path.display());
    }
    Ok(file)
}

/// Whether a live process holds the cluster's lock. A cluster without a lock file was being
/// created by a run that died before locking it, or is being created right now: one that young
/// is left alone.
fn lock_is_held(cluster_dir: &Path) -> bool {
    let Ok(file) = File::open(lock_path(cluster_dir)) else {
        let young = fs::metadata(cluster_dir)
            .and_then(|meta| meta.modified())
            .ok()
            .and_then(|modified| modified.elapsed().ok())
            .is_none_or(|age| age < Duration::from_secs(60));
        return young;
    };
    // SAFETY: flock on a file descriptor we own; a lock we get is released when `file` closes.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) != 0 }
}

/// A port free on 127.0.0.1 right now (the kernel's choice).
fn free_port() -> Result<u16> {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port on 127.0.0.1")?;
    Ok(listener.local_addr()?.port())
}

fn random_hex(bytes: usize) -> Result<String> {
    let mut buffer = vec![0u8; bytes];
    File::open("/dev/urandom")
        .and_then(|mut urandom| urandom.read_exact(&mut buffer))
        .context("reading /dev/urandom")?;
    Ok(buffer.iter().map(|byte| format!("{byte:02x}")).collect())
}

/// The SQL cvco-host's PostgreSQL store needs (lease, LISTEN/NOTIFY, transactions page), proved
/// against a real server with the client crate chosen for it.
#[cfg(test)]
mod store_sql;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_started_cluster_answers_on_its_url_and_is_deleted_when_dropped() {
        let started = Instant::now();
        let handle = start(workspace().unwrap()).unwrap();
        let elapsed = started.elapsed();
        assert!(elapsed < Duration::from_secs(10), "started in {elapsed:?}");
        let (dir, port) = (handle.cluster_dir.clone(), handle.port());
        let show = |setting: &str| {
            run_quiet(
                Command::new(handle.bin_dir.join("psql"))
                    .args(["-X", "-A", "-t", "-c", &format!("SHOW {setting}")])
                    .arg(handle.url()),
            )
            .unwrap()
            .trim()
            .to_owned()
        };
        assert_eq!(show("fsync"), "off");
        assert_eq!(show("listen_addresses"), "127.0.0.1");
        let wrong_password = database_url("00", port, DATABASE);
        assert!(run_quiet(
            Command::new(handle.bin_dir.join("psql"))
                .args(["-X", "-c", "SELECT 1"])
                .arg(wrong_password)
                .env("PGCONNECT_TIMEOUT", "5")
        )
        .is_err());
        drop(handle);
        assert!(!dir.exists(), "{} is left", dir.display());
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    }

    #[test]
    fn the_cluster_of_a_killed_run_is_stopped_and_deleted_by_the_next_start() {
        let handle = start(workspace().unwrap()).unwrap();
        let (dir, port) = (handle.cluster_dir.clone(), handle.port());
        // The run dies: its lock goes, its server keeps running.
        // SAFETY: flock on the handle's own descriptor.
        assert_eq!(
            unsafe { libc::flock(handle._lock.as_raw_fd(), libc::LOCK_UN) },
            0
        );
        std::mem::forget(handle);
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
        let next = start(workspace().unwrap()).unwrap();
        assert!(!dir.exists(), "{} is left", dir.display());
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
        assert_ne!(next.port(), port);
    }

    #[test]
    fn url_names_role_password_loopback_port_and_database() {
        assert_eq!(
            database_url("00ff", 54321, "cvco"),
            "postgres://cvco:00ff@127.0.0.1:54321/cvco"
        );
    }

    #[test]
    fn newest_major_with_initdb_and_pg_ctl_wins() {
        let lib = std::env::temp_dir().join(format!("cvco-pg-lib-{}", std::process::id()));
        let _ = fs::remove_dir_all(&lib);
        for (major, files) in [
            ("13", &["initdb", "pg_ctl"][..]),
            ("15", &["initdb", "pg_ctl"][..]),
            ("16", &["psql"][..]), // a client-only install
            ("notes", &["initdb", "pg_ctl"][..]),
        ] {
            let bin = lib.join(major).join("bin");
            fs::create_dir_all(&bin).unwrap();
            for file in files {
                fs::write(bin.join(file), "").unwrap();
            }
        }
        assert_eq!(newest_bin_dir(&lib), Some(lib.join("15/bin")));
        assert_eq!(newest_bin_dir(&lib.join("missing")), None);
        fs::remove_dir_all(&lib).unwrap();
    }

    #[test]
    fn settings_listen_on_loopback_only_without_fsync_with_the_socket_in_the_data_dir() {
        let settings = test_settings(5555, Path::new("/t/pg/5555/data"));
        let get = |key: &str| {
            settings
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("listen_addresses"), Some("'127.0.0.1'"));
        assert_eq!(get("fsync"), Some("off"));
        assert_eq!(get("port"), Some("5555"));
        assert_eq!(get("unix_socket_directories"), Some("'/t/pg/5555/data'"));
        let quoted = test_settings(1, Path::new("/it's"));
        assert!(quoted.contains(&("unix_socket_directories".into(), "'/it''s'".into())));
    }

    #[test]
    fn initdb_trusts_the_socket_only_and_asks_passwords_over_tcp() {
        let args = initdb_args(Path::new("/d"));
        assert_eq!(args[..2], ["--pgdata", "/d"]);
        assert!(args.contains(&"--auth-local=trust".to_owned()));
        assert!(args.contains(&"--auth-host=scram-sha-256".to_owned()));
        assert!(args.contains(&"--no-sync".to_owned()));
    }

    #[test]
    fn a_long_target_dir_keeps_the_socket_path_under_the_limit() {
        let long = Path::new("/").join("x".repeat(120));
        let base = cluster_base(&long, None);
        // The fallback is the temp dir, whose socket path fits.
        let base = base.unwrap();
        assert!(base.starts_with(std::env::temp_dir()));
        assert!(socket_path(&base, u16::MAX).as_os_str().len() <= MAX_SOCKET_PATH);
    }

    #[test]
    fn a_lock_held_by_a_live_handle_is_seen_and_a_released_one_is_not() {
        let dir = std::env::temp_dir().join(format!("cvco-pg-lock-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let lock = lock_file(&dir).unwrap();
        assert!(lock_is_held(&dir));
        assert!(
            lock_file(&dir).is_err(),
            "a second run cannot take the lock"
        );
        drop(lock);
        assert!(!lock_is_held(&dir), "the lock goes with its owner");
        fs::remove_dir_all(&dir).unwrap();
    }
}
