//! A real headless Chromium driven over WebDriver (fantoccini and a
//! chromedriver this harness starts on a free loopback port), with bounded
//! reads of what a page shows, screenshots into docs/dashboard/, and a tiny
//! HTTP server standing in for another web site.

use crate::common::{free_port, repo_root};
use fantoccini::wd::TimeoutConfiguration;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Longest a single WebDriver command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// How long chromedriver may take to answer `/status`.
const DRIVER_READY: Duration = Duration::from_secs(20);
/// Window size: tall enough that a screenshot holds a whole page.
const WINDOW: (u32, u32) = (1280, 1400);

/// Whether this run must fail (not skip) without a browser: set by
/// scripts/test.sh and CI.
fn required() -> bool {
    ["GANTRY_REQUIRE_SERVICES", "GANTRY_REQUIRE_DOCKER"]
        .iter()
        .any(|v| std::env::var(v).is_ok_and(|s| s == "1"))
}

/// `name` from the environment variable `var`, else the first match on PATH.
fn program(var: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(var).filter(|p| !p.is_empty()) {
        // Set but wrong counts as missing, not as "look elsewhere".
        return Some(PathBuf::from(p)).filter(|p| p.is_file());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

/// chromedriver and chromium, or `None` (skip) when either is missing and
/// nothing requires them; panics when GANTRY_REQUIRE_SERVICES=1 or
/// GANTRY_REQUIRE_DOCKER=1.
fn programs() -> Option<(PathBuf, PathBuf)> {
    let driver = program("CHROMEDRIVER", &["chromedriver"]);
    let chromium = program(
        "CHROMIUM",
        &["chromium", "chromium-browser", "google-chrome"],
    );
    match (driver, chromium) {
        (Some(d), Some(c)) => Some((d, c)),
        _ if required() => panic!(
            "chromium or chromedriver is missing and GANTRY_REQUIRE_SERVICES/GANTRY_REQUIRE_DOCKER \
             is set: run scripts/browser.sh (or set CHROMEDRIVER and CHROMIUM)"
        ),
        _ => {
            eprintln!(
                "SKIPPED: chromium or chromedriver is missing (run scripts/browser.sh); \
                 set GANTRY_REQUIRE_SERVICES=1 to make this a failure"
            );
            None
        }
    }
}

/// A chromedriver process in its own process group; the group (chromedriver
/// and the browsers it started) is killed when dropped, also on panic.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    async fn start(exe: &PathBuf, log: PathBuf) -> Driver {
        use std::os::unix::process::CommandExt;
        let port = free_port();
        let out = std::fs::File::create(&log).expect("create chromedriver log");
        let child = Command::new(exe)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::from(out.try_clone().expect("clone log handle")))
            .stderr(Stdio::from(out))
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", exe.display()));
        let driver = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let http = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + DRIVER_READY;
        loop {
            let ready = http
                .get(format!("{}/status", driver.url))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200);
            if ready {
                return driver;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "chromedriver did not answer /status within {DRIVER_READY:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The group id is chromedriver's pid (process_group(0) above): this
        // ends chromedriver and any browser it left behind, nothing else.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
    }
}

/// One headless Chromium session against a dashboard at `base`.
pub(crate) struct Browser {
    pub(crate) client: Client,
    pub(crate) base: String,
    _profile: tempfile::TempDir,
    _driver: Driver,
}

/// Run one WebDriver command, bounded in time.
pub(crate) async fn bounded<T, E: std::fmt::Display>(
    what: &str,
    fut: impl std::future::Future<Output = Result<T, E>>,
) -> T {
    tokio::time::timeout(COMMAND_TIMEOUT, fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {COMMAND_TIMEOUT:?}"))
        .unwrap_or_else(|e| panic!("{what}: {e}"))
}

impl Browser {
    /// Start chromedriver and a headless Chromium; `None` when they are
    /// not installed and nothing requires them (see [`programs`]).
    pub(crate) async fn start(base: &str) -> Option<Browser> {
        let (driver_exe, chromium) = programs()?;
        let profile = tempfile::tempdir().expect("browser profile dir");
        let driver = Driver::start(&driver_exe, profile.path().join("chromedriver.log")).await;
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--no-first-run", "--disable-extensions",
                    format!("--window-size={},{}", WINDOW.0, WINDOW.1),
                    format!("--user-data-dir={}", profile.path().join("profile").display()),
                ]
            }),
        );
        let client = bounded(
            "start a chromium session",
            ClientBuilder::new(HttpConnector::new())
                .capabilities(caps)
                .connect(&driver.url),
        )
        .await;
        let timeouts = TimeoutConfiguration::new(
            Some(Duration::from_secs(10)),
            Some(Duration::from_secs(20)),
            Some(Duration::ZERO),
        );
        bounded("set timeouts", client.update_timeouts(timeouts)).await;
        Some(Browser {
            client,
            base: base.to_owned(),
            _profile: profile,
            _driver: driver,
        })
    }

    /// End the browser session (the driver dies with `self`).
    pub(crate) async fn close(self) {
        let _ = tokio::time::timeout(COMMAND_TIMEOUT, self.client.clone().close()).await;
    }

    /// Open `path` of the dashboard and wait for the page to load.
    pub(crate) async fn goto(&self, path: &str) {
        let url = format!("{}{path}", self.base);
        bounded(&format!("open {url}"), self.client.goto(&url)).await;
    }

    /// The full URL of the page shown.
    pub(crate) async fn url(&self) -> String {
        bounded("current url", self.client.current_url())
            .await
            .to_string()
    }

    /// The path (and query) of the page shown.
    pub(crate) async fn path(&self) -> String {
        let url = bounded("current url", self.client.current_url()).await;
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// Run a script in the page and return its value.
    pub(crate) async fn js(&self, script: &str) -> Value {
        bounded("run a script", self.client.execute(script, vec![])).await
    }

    /// The HTTP status of the answer the page shown came from.
    pub(crate) async fn page_status(&self) -> u64 {
        let v = self
            .js("const n = performance.getEntriesByType('navigation')[0]; return n ? n.responseStatus : null;")
            .await;
        v.as_u64()
            .unwrap_or_else(|| panic!("no navigation status: {v}"))
    }

    /// Text of the first element matching `css`, `None` when there is none.
    pub(crate) async fn try_text(&self, css: &str) -> Option<String> {
        let el = tokio::time::timeout(COMMAND_TIMEOUT, self.client.find(Locator::Css(css)))
            .await
            .ok()?
            .ok()?;
        tokio::time::timeout(COMMAND_TIMEOUT, el.text())
            .await
            .ok()?
            .ok()
    }

    /// Attribute `name` of the first element matching `css`.
    pub(crate) async fn try_attr(&self, css: &str, name: &str) -> Option<String> {
        let el = tokio::time::timeout(COMMAND_TIMEOUT, self.client.find(Locator::Css(css)))
            .await
            .ok()?
            .ok()?;
        tokio::time::timeout(COMMAND_TIMEOUT, el.attr(name))
            .await
            .ok()?
            .ok()
            .flatten()
    }

    /// Text of the element `css`; panics with the page source when absent.
    pub(crate) async fn text(&self, css: &str) -> String {
        match self.try_text(css).await {
            Some(t) => t,
            None => panic!(
                "no element {css} on {}:\n{}",
                self.path().await,
                self.source().await
            ),
        }
    }

    /// Text of the element `css` with every closed `<details>` inside it
    /// opened first, as a reader would click them open.
    pub(crate) async fn text_opened(&self, css: &str) -> String {
        let closed = format!("{css} details:not([open]) > summary");
        let summaries = bounded(
            &format!("find {closed}"),
            self.client.find_all(Locator::Css(&closed)),
        )
        .await;
        for s in summaries {
            bounded("open a details", s.click()).await;
        }
        self.text(css).await
    }

    /// How many elements match `css`.
    pub(crate) async fn count(&self, css: &str) -> usize {
        bounded(
            &format!("find all {css}"),
            self.client.find_all(Locator::Css(css)),
        )
        .await
        .len()
    }

    /// The page's HTML, for failure messages (capped).
    pub(crate) async fn source(&self) -> String {
        let mut s = tokio::time::timeout(COMMAND_TIMEOUT, self.client.source())
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        s.truncate(8000);
        s
    }

    /// Click the element `css`.
    pub(crate) async fn click(&self, css: &str) {
        let el = bounded(
            &format!("find {css} on {}", self.path().await),
            self.client.find(Locator::Css(css)),
        )
        .await;
        bounded(&format!("click {css}"), el.click()).await;
    }

    /// Type `text` into the input `css`.
    pub(crate) async fn type_into(&self, css: &str, text: &str) {
        let el = bounded(&format!("find {css}"), self.client.find(Locator::Css(css))).await;
        bounded(&format!("type into {css}"), el.send_keys(text)).await;
    }

    /// Poll `probe` every 100 ms until it yields a value or `timeout`
    /// passes; panics with `what`, the last observation and the page.
    pub(crate) async fn wait<T, F, Fut>(&self, what: &str, timeout: Duration, mut probe: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, String>>,
    {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match probe().await {
                Ok(v) => return v,
                Err(last) if tokio::time::Instant::now() > deadline => panic!(
                    "timed out after {timeout:?} waiting for {what}; last seen: {last}\npage {}:\n{}",
                    self.path().await,
                    self.source().await
                ),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Wait until the text of `css` equals `want`.
    pub(crate) async fn wait_text(&self, css: &str, want: &str, timeout: Duration) {
        self.wait(&format!("{css} to read {want:?}"), timeout, || async {
            match self.try_text(css).await {
                Some(t) if t.trim() == want => Ok(()),
                other => Err(format!("{other:?}")),
            }
        })
        .await;
    }

    /// Wait until attribute `name` of `css` equals `want`.
    pub(crate) async fn wait_attr(&self, css: &str, name: &str, want: &str, timeout: Duration) {
        self.wait(&format!("{css} [{name}] = {want:?}"), timeout, || async {
            match self.try_attr(css, name).await {
                Some(v) if v == want => Ok(()),
                other => Err(format!("{other:?}")),
            }
        })
        .await;
    }

    /// Wait until the page shown is `path` (with its query, if any).
    pub(crate) async fn wait_path(&self, want: &str, timeout: Duration) {
        self.wait(&format!("the page {want}"), timeout, || async {
            let p = self.path().await;
            if p == want {
                Ok(())
            } else {
                Err(p)
            }
        })
        .await;
    }

    /// The `gantry_session` cookie as the browser holds it: (HttpOnly,
    /// Secure, SameSite, path), `None` when there is none.
    pub(crate) async fn session_cookie(&self) -> Option<(bool, bool, String, String)> {
        let cookies = bounded("read cookies", self.client.get_all_cookies()).await;
        cookies
            .iter()
            .find(|c| c.name() == "gantry_session")
            .map(|c| {
                (
                    c.http_only().unwrap_or(false),
                    c.secure().unwrap_or(false),
                    c.same_site()
                        .map_or("none given".to_owned(), |s| s.to_string()),
                    c.path().unwrap_or_default().to_owned(),
                )
            })
    }

    /// Log in through the login page with `token`; lands on `/`.
    pub(crate) async fn login(&self, token: &str) {
        self.goto("/login").await;
        self.type_into("input#token", token).await;
        self.click("button#login-submit").await;
        self.wait_path("/", Duration::from_secs(15)).await;
    }

    /// Save a screenshot of the page as docs/dashboard/NAME.png.
    pub(crate) async fn shot(&self, name: &str) {
        let png = bounded("screenshot", self.client.screenshot()).await;
        assert!(png.starts_with(b"\x89PNG"), "{name}: not a PNG");
        let dir = repo_root().join("docs/dashboard");
        std::fs::create_dir_all(&dir).expect("create docs/dashboard");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
    }
}

/// Another web site: answers every request on a free loopback port with
/// `html`, until dropped. `host` is how the browser is to address it
/// (`localhost` is another site than `127.0.0.1`; another port of the
/// same host is another origin but the same site).
pub(crate) struct OtherSite {
    pub(crate) url: String,
    task: tokio::task::JoinHandle<()>,
}

impl OtherSite {
    pub(crate) async fn serve(host: &str, html: String) -> OtherSite {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the other site");
        let port = listener.local_addr().expect("local addr").port();
        let task = tokio::spawn(async move {
            // Bounded: a handful of page loads is all a test makes.
            for _ in 0..32 {
                let Ok((mut conn, _)) = listener.accept().await else {
                    return;
                };
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
                    match tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf)).await {
                        Ok(Ok(n)) if n > 0 => head.extend_from_slice(&buf[..n]),
                        _ => break,
                    }
                }
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\n\
                     content-length: {}\r\ncache-control: no-store\r\nconnection: close\r\n\r\n{html}",
                    html.len()
                );
                let _ = conn.write_all(answer.as_bytes()).await;
                let _ = conn.shutdown().await;
            }
        });
        OtherSite {
            url: format!("http://{host}:{port}/"),
            task,
        }
    }
}

impl Drop for OtherSite {
    fn drop(&mut self) {
        self.task.abort();
    }
}
