//! End-to-end harness: a test's own Postgres database and Redis prefix, the
//! real `gantry` binary spawned per role, and HTTP helpers against its API.
#![allow(dead_code)] // each test binary uses a different part of the harness

mod api;
mod proc;

pub(crate) use api::node_of;
pub(crate) use proc::Proc;

use serde_json::Value;
use sqlx::Connection;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tempfile::TempDir;

/// How long a spawned API may take to answer `/readyz` with 200.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// One test's world: a fresh database, a fresh Redis prefix, a temp dir for
/// logs and scripts, and (once started) the base URL of an API.
pub(crate) struct Env {
    /// URL of the test's own database.
    pub(crate) db_url: String,
    db_name: String,
    admin_url: String,
    pub(crate) redis_url: String,
    pub(crate) prefix: String,
    pub(crate) dir: TempDir,
    /// `http://127.0.0.1:PORT` of the API, once one is ready.
    pub(crate) base: String,
    pub(crate) http: reqwest::Client,
}

fn required_env(name: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!(
            "{name} is not set: run `eval \"$(scripts/services.sh)\"` in /work/main before \
             `cargo test -p gantry --tests` (end-to-end tests need real Postgres and Redis)"
        ),
    }
}

/// Replace the database name of a Postgres URL.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let root = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{root}/{db}?{q}"),
        None => format!("{root}/{db}"),
    }
}

/// Path of the `gantry` binary cargo built for these tests.
pub(crate) fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_gantry")
}

/// The repository root (for `examples/`).
pub(crate) fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A free TCP port on loopback (bound, read, released).
pub(crate) fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

impl Env {
    /// Every row of the tables a run and its definitions write, as text:
    /// what a test searches for values that must never be stored.
    pub(crate) async fn database_text(&self) -> String {
        let mut conn = sqlx::PgConnection::connect(&self.db_url)
            .await
            .expect("connect to the test database");
        let mut all = String::new();
        for table in ["runs", "nodes", "attempts", "agents", "workflows"] {
            let (text,): (Option<String>,) = sqlx::query_as(&format!(
                "SELECT string_agg(t::text, E'\\n') FROM {table} t"
            ))
            .fetch_one(&mut conn)
            .await
            .expect("dump table");
            all.push_str(&text.unwrap_or_default());
        }
        all
    }

    /// Create a database `e2e_<random>` and a Redis prefix `e2e-<uuid>`;
    /// panics with a clear message when either service is unreachable.
    pub(crate) async fn new() -> Env {
        let admin_url = required_env("GANTRY_DATABASE_URL");
        let redis_url = required_env("GANTRY_REDIS_URL");
        let id = uuid::Uuid::new_v4().simple().to_string();
        let db_name = format!("e2e_{id}");
        // Everything that can fail comes before the database is created, so
        // that a failure leaves nothing behind.
        redis_ping(&redis_url).await;
        let dir = tempfile::tempdir().expect("temp dir");
        // Workers run process agents from here, as uid 65534 when root.
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
                .expect("make the test dir traversable");
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("http client");
        let mut admin = tokio::time::timeout(
            Duration::from_secs(10),
            sqlx::PgConnection::connect(&admin_url),
        )
        .await
        .unwrap_or_else(|_| panic!("connecting to Postgres (GANTRY_DATABASE_URL) timed out"))
        .unwrap_or_else(|e| panic!("cannot reach Postgres (GANTRY_DATABASE_URL): {e}"));
        sqlx::query(&format!("CREATE DATABASE {db_name}"))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("cannot create database {db_name}: {e}"));
        let _ = admin.close().await;
        Env {
            db_url: with_database(&admin_url, &db_name),
            db_name,
            admin_url,
            redis_url,
            prefix: format!("e2e-{id}"),
            dir,
            base: String::new(),
            http,
        }
    }

    /// Spawn `gantry ARGS` with this test's database and Redis prefix, the
    /// test dir as the only place process agents may run from
    /// (`GANTRY_PROCESS_COMMANDS`, where [`Env::script`] writes), plus `extra`
    /// environment variables (which win). Its output goes to a log file.
    pub(crate) fn spawn(&self, name: &str, args: &[&str], extra: &[(&str, &str)]) -> Proc {
        self.spawn_exe(Path::new(bin()), name, args, extra)
    }

    /// Like [`Env::spawn`] with another build of the binary.
    pub(crate) fn spawn_exe(
        &self,
        exe: &Path,
        name: &str,
        args: &[&str],
        extra: &[(&str, &str)],
    ) -> Proc {
        let mut vars: Vec<(String, String)> = vec![
            ("GANTRY_DATABASE_URL".into(), self.db_url.clone()),
            ("GANTRY_REDIS_URL".into(), self.redis_url.clone()),
            ("GANTRY_REDIS_PREFIX".into(), self.prefix.clone()),
            ("GANTRY_LOG".into(), "info,sqlx=warn".into()),
            ("GANTRY_DB_POOL".into(), "5".into()),
            (
                "GANTRY_PROCESS_COMMANDS".into(),
                self.dir.path().to_str().expect("utf-8 temp dir").into(),
            ),
        ];
        vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Proc::spawn(exe, name, args, &vars, self.dir.path())
    }

    /// Spawn a role that serves the API (`api` or `dev`) on a free port and
    /// wait until `/readyz` answers 200.
    pub(crate) async fn serve(&mut self, role: &str, extra: &[(&str, &str)]) -> Proc {
        let listen = format!("127.0.0.1:{}", free_port());
        // Existing suites register process agents; the security suite
        // turns this off again through `extra` (later values win).
        let mut vars = vec![
            ("GANTRY_LISTEN", listen.as_str()),
            ("GANTRY_ALLOW_PROCESS_AGENTS", "1"),
        ];
        vars.extend_from_slice(extra);
        let mut p = self.spawn(role, &[role], &vars);
        self.base = format!("http://{listen}");
        self.wait_ready(&mut p).await;
        p
    }

    /// `gantry dev` (every role in one process), ready.
    pub(crate) async fn dev(&mut self, extra: &[(&str, &str)]) -> Proc {
        self.serve("dev", extra).await
    }

    async fn wait_ready(&self, p: &mut Proc) {
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = p.try_exit() {
                panic!(
                    "{} exited ({status}) before it was ready:\n{}",
                    p.name,
                    p.log_text()
                );
            }
            let ok = self
                .http
                .get(format!("{}/readyz", self.base))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200);
            if ok {
                return;
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "{} not ready within {READY_TIMEOUT:?}:\n{}",
                    p.name,
                    p.log_text()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A worker (`--queues default`) with a fixed id, started and pulling.
    pub(crate) async fn worker(&self, id: &str, extra: &[(&str, &str)]) -> Proc {
        let mut vars = vec![("GANTRY_WORKER_ID", id)];
        vars.extend_from_slice(extra);
        let mut p = self.spawn(id, &["worker", "--queues", "default"], &vars);
        p.wait_log("worker started", READY_TIMEOUT).await;
        p
    }

    /// A coordinator, started.
    pub(crate) async fn coordinator(&self, name: &str, extra: &[(&str, &str)]) -> Proc {
        let mut p = self.spawn(name, &["coordinator"], extra);
        p.wait_log("coordinator started", READY_TIMEOUT).await;
        p
    }

    /// Run a client command (`gantry agents apply ...`) against the API,
    /// bounded in time; returns (exit code, stdout, stderr).
    pub(crate) async fn cli(&self, args: &[&str], timeout: Duration) -> (i32, String, String) {
        let mut cmd = tokio::process::Command::new(bin());
        cmd.args(args)
            .env("GANTRY_API_URL", &self.base)
            .kill_on_drop(true);
        let out = tokio::time::timeout(timeout, cmd.output())
            .await
            .unwrap_or_else(|_| panic!("`gantry {}` took over {timeout:?}", args.join(" ")))
            .expect("run the gantry cli");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `UID:GID` of this test process, for `GANTRY_PROCESS_USER` when an
    /// agent must act as the worker's user (e.g. kill it).
    pub(crate) fn own_user() -> String {
        let id = |flag: &str| {
            let out = std::process::Command::new("id")
                .arg(flag)
                .output()
                .expect("run id");
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        };
        format!("{}:{}", id("-u"), id("-g"))
    }

    /// Write an executable `#!/bin/sh` script into the temp dir (agents run
    /// it with no PATH: dash falls back to its default one).
    pub(crate) fn script(&self, name: &str, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = self.dir.path().join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    }
}

async fn redis_ping(url: &str) {
    let client = redis::Client::open(url)
        .unwrap_or_else(|e| panic!("GANTRY_REDIS_URL is not a redis url: {e}"));
    let mut conn = tokio::time::timeout(
        Duration::from_secs(10),
        client.get_multiplexed_async_connection(),
    )
    .await
    .unwrap_or_else(|_| panic!("connecting to Redis (GANTRY_REDIS_URL) timed out"))
    .unwrap_or_else(|e| panic!("cannot reach Redis (GANTRY_REDIS_URL): {e}"));
    let pong: String = redis::cmd("PING")
        .query_async(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("Redis (GANTRY_REDIS_URL) does not answer PING: {e}"));
    assert_eq!(pong, "PONG");
}

impl Env {
    /// Delete every key of this test's Redis prefix: for this test's
    /// deliveries, what a FLUSHALL (or a restart with empty data) does,
    /// without touching tests running beside it. Returns how many keys.
    pub(crate) async fn flush_redis(&self) -> usize {
        let client = redis::Client::open(self.redis_url.as_str()).expect("redis url");
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .expect("connect to redis");
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}:*", self.prefix))
            .query_async(&mut conn)
            .await
            .expect("KEYS");
        for chunk in keys.chunks(500) {
            redis::cmd("DEL")
                .arg(chunk)
                .query_async::<()>(&mut conn)
                .await
                .expect("DEL");
        }
        keys.len()
    }
}

/// `pg_ctl ACTION -m fast` on the server scripts/services.sh started, as
/// the user that owns it (initdb and postgres refuse to run as root).
fn pg_ctl(action: &str) {
    let data = std::env::var("GANTRY_PG_DATA")
        .expect("GANTRY_PG_DATA is not set: run `eval \"$(scripts/services.sh)\"` first");
    let bin = std::env::var("GANTRY_PG_BIN").expect("GANTRY_PG_BIN is not set");
    let pg_ctl = format!("{bin}/pg_ctl");
    // A restarted server must log to its file, not to this process's
    // output, which closes when the test ends.
    let log = format!("{data}/postgres.log");
    let args = [
        "-D", &data, "-l", &log, "-w", "-t", "60", action, "-m", "fast",
    ];
    let is_root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"));
    let status = if is_root {
        std::process::Command::new("runuser")
            .args(["-u", "postgres", "--", &pg_ctl])
            .args(args)
            .status()
    } else {
        std::process::Command::new(&pg_ctl).args(args).status()
    }
    .expect("run pg_ctl");
    assert!(status.success(), "pg_ctl {action} failed: {status}");
}

/// Restart Postgres (fast shutdown, then up again at once).
pub(crate) fn restart_postgres() {
    pg_ctl("restart");
}

/// Stop Postgres; [`start_services`] brings it back.
pub(crate) fn stop_postgres() {
    pg_ctl("stop");
}

/// scripts/services.sh: starts whatever of Redis and Postgres is down, with
/// the options the suite runs them with.
pub(crate) fn start_services() {
    let status = std::process::Command::new("bash")
        .arg(repo_root().join("scripts/services.sh"))
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run scripts/services.sh");
    assert!(status.success(), "scripts/services.sh failed: {status}");
}

/// Drop the test's database (forcing its connections closed) and delete its
/// Redis keys. Runs on its own thread and runtime so that it works from a
/// `Drop` inside (or outside) a tokio runtime.
fn cleanup(admin_url: String, db_name: String, redis_url: String, prefix: String) {
    let worker = std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async move {
            let limit = Duration::from_secs(10);
            if let Ok(Ok(mut admin)) =
                tokio::time::timeout(limit, sqlx::PgConnection::connect(&admin_url)).await
            {
                let drop_db = format!("DROP DATABASE IF EXISTS {db_name} WITH (FORCE)");
                let _ =
                    tokio::time::timeout(limit, sqlx::query(&drop_db).execute(&mut admin)).await;
            }
            let Ok(client) = redis::Client::open(redis_url) else {
                return;
            };
            let Ok(Ok(mut conn)) =
                tokio::time::timeout(limit, client.get_multiplexed_async_connection()).await
            else {
                return;
            };
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{prefix}:*"))
                .query_async(&mut conn)
                .await
                .unwrap_or_default();
            for chunk in keys.chunks(500) {
                let _: Result<(), _> = redis::cmd("DEL").arg(chunk).query_async(&mut conn).await;
            }
        });
    });
    let _ = worker.join();
}

impl Drop for Env {
    fn drop(&mut self) {
        cleanup(
            self.admin_url.clone(),
            self.db_name.clone(),
            self.redis_url.clone(),
            self.prefix.clone(),
        );
    }
}

/// Poll `probe` every 100 ms until it yields a value or `timeout` passes;
/// panics with `what` and the last observation on timeout.
pub(crate) async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Value>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match probe().await {
            Ok(v) => return v,
            Err(last) => {
                if tokio::time::Instant::now() > deadline {
                    panic!("timed out after {timeout:?} waiting for {what}; last seen: {last:#}");
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `s` in standard base64, as an agent's `base64 -w0` prints it.
pub(crate) fn base64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Asserts that a 422 body lists a problem for each `(field, code)` of
/// `want` (among possibly more).
pub(crate) fn assert_problems(body: &Value, want: &[(&str, &str)]) {
    let got: Vec<(&str, &str)> = body["error"]["details"]
        .as_array()
        .unwrap_or_else(|| panic!("no problem list in {body}"))
        .iter()
        .map(|p| {
            let field = p["field"].as_str().unwrap_or_default();
            (field, p["code"].as_str().unwrap_or_default())
        })
        .collect();
    for w in want {
        assert!(got.contains(w), "{w:?} missing from {got:?}");
    }
}
