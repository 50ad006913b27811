//! A real browser for the dashboard's flows: Debian's Chromium, headless, driven over WebDriver
//! by `chromedriver` on a free loopback port (through fantoccini). Names under the test domain
//! resolve to this machine, so the browser reaches `http://deis.example.com:<router port>/`
//! through the platform's router as a user's browser would. Missing packages fail the test
//! with the command that installs them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use deis_testkit::{eventually, free_addr};
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;

/// How long page loads are tried again while the network changes under the browser.
const INTERRUPTED_FOR: Duration = Duration::from_secs(120);

/// A desktop window, and a phone's screen.
const DESKTOP: (u32, u32) = (1280, 800);
const PHONE: (u32, u32) = (390, 844);

/// A headless Chromium and its driver; both stopped when dropped.
pub(crate) struct Browser {
    pub(crate) client: Client,
    driver: tokio::process::Child,
    profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a Chromium session whose names under `example.com` resolve to
    /// this machine.
    pub(crate) async fn start() -> Browser {
        let chromium = deis_testkit::require("chromium", "chromium");
        let chromedriver = deis_testkit::require("chromedriver", "chromium-driver");
        let addr = free_addr();
        let profile = tempfile::tempdir().expect("a browser profile directory");
        let log = profile.path().join("chromedriver.log");
        let driver = tokio::process::Command::new(chromedriver)
            .arg(format!("--port={}", addr.port()))
            .arg(format!("--log-path={}", log.display()))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        eventually(
            Duration::from_secs(20),
            "chromedriver to listen",
            || async move {
                tokio::net::TcpStream::connect(addr)
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string())
            },
        )
        .await;
        let (w, h) = DESKTOP;
        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-gpu".to_owned(),
            "--no-first-run".to_owned(),
            format!("--window-size={w},{h}"),
            "--host-resolver-rules=MAP *.example.com 127.0.0.1, MAP *.example.org 127.0.0.1"
                .to_owned(),
            format!(
                "--user-data-dir={}",
                profile.path().join("chromium").display()
            ),
        ];
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".to_owned(),
            serde_json::json!({"binary": chromium, "args": args}),
        );
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://{addr}"))
            .await
            .unwrap_or_else(|e| {
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                panic!("a Chromium session: {e}; chromedriver's log: {log}")
            });
        Browser {
            client,
            driver,
            profile,
        }
    }

    /// Opens `url` (again when Chromium aborted the load for a network change, see
    /// [`Browser::interrupted`]).
    pub(crate) async fn goto(&self, url: &str) {
        // Other tests on the machine add and remove interfaces in bursts: try again for a
        // while, not a number of times.
        let deadline = std::time::Instant::now() + INTERRUPTED_FOR;
        loop {
            self.client
                .goto(url)
                .await
                .unwrap_or_else(|e| panic!("{url}: {e}"));
            if !self.interrupted().await {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{url}: every load was interrupted for {INTERRUPTED_FOR:?}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Whether the page is Chromium's "network changed" error: it aborts requests in flight
    /// whenever an interface comes or goes, which Docker does as app containers start.
    pub(crate) async fn interrupted(&self) -> bool {
        let text = self
            .client
            .execute(
                "return document.body ? document.body.innerText : '';",
                vec![],
            )
            .await
            .unwrap_or_default();
        text.as_str()
            .is_some_and(|t| t.contains("ERR_NETWORK_CHANGED"))
    }

    /// Opens `page`, fills `fields` (`(css, text)`) and clicks `button`; again from the start
    /// if the network change interrupted it.
    pub(crate) async fn submit(&self, page: &str, fields: &[(&str, &str)], button: &str) {
        let deadline = std::time::Instant::now() + INTERRUPTED_FOR;
        loop {
            self.goto(page).await;
            for (css, text) in fields {
                self.fill(css, text).await;
            }
            self.mark_document().await;
            self.click(button).await;
            self.until_replaced(&format!("the page after {button} on {page}"))
                .await;
            if !self.interrupted().await {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{button} on {page}: every submission was interrupted for {INTERRUPTED_FOR:?}"
            );
        }
    }

    /// Marks the document shown, for [`Browser::until_replaced`].
    async fn mark_document(&self) {
        self.client
            .execute("window.__deisSubmitted = true;", vec![])
            .await
            .expect("script runs");
    }

    /// Waits until another document than the marked one is shown and loaded: a click on a
    /// form's button returns before the browser has followed the form's answer.
    async fn until_replaced(&self, what: &str) {
        let script =
            "return window.__deisSubmitted === undefined && document.readyState === 'complete';";
        // A form that deploys answers once the deploy is done.
        eventually(Duration::from_secs(120), what, || async {
            match self.client.execute(script, vec![]).await {
                Ok(serde_json::Value::Bool(true)) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        })
        .await;
    }

    /// The path of the page shown.
    pub(crate) async fn path(&self) -> String {
        self.client
            .current_url()
            .await
            .expect("the URL")
            .path()
            .to_owned()
    }

    /// The text of the first element `css` selects.
    pub(crate) async fn text(&self, css: &str) -> String {
        match self.client.find(Locator::Css(css)).await {
            Ok(e) => e.text().await.unwrap_or_default(),
            Err(e) => {
                let main = match self.client.find(Locator::Css("body")).await {
                    Ok(body) => body.text().await.unwrap_or_default(),
                    Err(_) => String::new(),
                };
                panic!(
                    "no {css} on {}: {e}; the page says: {main}",
                    self.path().await
                )
            }
        }
    }

    /// How many elements `css` selects.
    pub(crate) async fn count(&self, css: &str) -> usize {
        self.client
            .find_all(Locator::Css(css))
            .await
            .map_or(0, |all| all.len())
    }

    /// Types into the field `css` selects (after clearing it); in a `<select>`, chooses the
    /// option whose value is `text`.
    pub(crate) async fn fill(&self, css: &str, text: &str) {
        let field = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no field {css}: {e}"));
        if field.tag_name().await.expect("tag name") == "select" {
            field
                .select_by_value(text)
                .await
                .unwrap_or_else(|e| panic!("no option {text} in {css}: {e}"));
            return;
        }
        field.clear().await.expect("clear");
        field.send_keys(text).await.expect("type");
    }

    /// Clicks the first element `css` selects.
    pub(crate) async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("nothing to click at {css}: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("clicking {css}: {e}"));
    }

    /// Waits until the text of `css` satisfies `want`; the text.
    pub(crate) async fn until_text(
        &self,
        css: &str,
        what: &str,
        want: impl Fn(&str) -> bool,
    ) -> String {
        eventually(Duration::from_secs(30), what, || async {
            let text = match self.client.find(Locator::Css(css)).await {
                Ok(e) => e.text().await.unwrap_or_default(),
                Err(e) => return Err(format!("no {css}: {e}")),
            };
            if want(&text) { Ok(text) } else { Err(text) }
        })
        .await
    }

    /// Shows pages as a phone of [`PHONE`]'s size does (Chromium's device emulation: a desktop
    /// window cannot be made that narrow), or as the desktop window again.
    pub(crate) async fn phone(&self, on: bool) {
        let (w, h) = PHONE;
        let cmd = if on {
            Cdp {
                cmd: "Emulation.setDeviceMetricsOverride",
                params: serde_json::json!({"width": w, "height": h, "deviceScaleFactor": 1, "mobile": true}),
            }
        } else {
            Cdp {
                cmd: "Emulation.clearDeviceMetricsOverride",
                params: serde_json::json!({}),
            }
        };
        self.client.issue_cmd(cmd).await.expect("device emulation");
    }

    /// Saves a PNG of the window as `docs/dashboard/<name>.png`.
    pub(crate) async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("a screenshot");
        let dir = screenshots();
        std::fs::create_dir_all(&dir).expect("docs/dashboard");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("saving a screenshot");
    }

    /// Ends the browser session (the browser exits).
    pub(crate) async fn close(self) {
        let _ = self.client.clone().close().await;
        // Dropping `self` stops the driver and whatever is left of the browser.
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // A test that failed half-way: Chromium would outlive a killed driver.
        let _ = self.driver.start_kill();
        stop_leftovers(self.profile.path());
    }
}

/// A Chrome DevTools command, through chromedriver's `goog/cdp/execute`.
#[derive(Debug)]
struct Cdp {
    cmd: &'static str,
    params: serde_json::Value,
}

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!(
            "session/{}/goog/cdp/execute",
            session.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        let body = serde_json::json!({"cmd": self.cmd, "params": self.params});
        (http::Method::POST, Some(body.to_string()))
    }
}

/// Kills any process of this browser's profile (its command line names the directory).
fn stop_leftovers(profile: &Path) {
    let _ = std::process::Command::new("pkill")
        .args(["-KILL", "-f"])
        .arg(profile.join("chromium"))
        .status();
}

/// Where the screenshots are committed.
pub(crate) fn screenshots() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/dashboard")
}
