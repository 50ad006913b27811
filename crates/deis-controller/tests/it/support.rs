//! A controller on a real database over real HTTP, and a raw HTTP client that shows exactly
//! what the Deis client sees (status line with its reason phrase, headers, body).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use deis_controller::{Config, Listeners};
use deis_store::{ConfigStore, MemoryStore};
use deis_testkit::Postgres;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

/// Which database the controller runs on.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

/// A client of the REST API at `addr`, speaking raw HTTP/1.1.
pub(crate) struct Api {
    pub(crate) addr: SocketAddr,
}

/// A running controller (its API is [`Api`]'s); stopped when dropped.
pub(crate) struct Controller {
    api: Api,
    pub(crate) store: Arc<dyn ConfigStore>,
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<Result<(), deis_controller::Error>>>,
    dir: Option<tempfile::TempDir>,
    _postgres: Option<Postgres>,
}

impl std::ops::Deref for Controller {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// What came back.
#[derive(Debug)]
pub(crate) struct Resp {
    pub(crate) status: u16,
    /// The status line after the code (`NOT FOUND`).
    pub(crate) reason: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl Resp {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Asserts the status line, showing the body when it is not what was expected.
    pub(crate) fn expect(&self, status: u16, reason: &str) -> &Self {
        assert_eq!(
            (self.status, self.reason.as_str()),
            (status, reason),
            "body: {}",
            self.body
        );
        self
    }
}

impl Controller {
    pub(crate) async fn start(backend: Backend) -> Controller {
        Self::start_with(
            backend,
            deis_controller::SchedulerKind::None,
            Default::default(),
        )
        .await
    }

    /// A controller with the given scheduler, labelling app containers with `labels`.
    pub(crate) async fn start_with(
        backend: Backend,
        scheduler: deis_controller::SchedulerKind,
        labels: std::collections::HashMap<String, String>,
    ) -> Controller {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store: Arc<dyn ConfigStore> = Arc::new(MemoryStore::new());
        Self::start_full(backend, scheduler, labels, dir, store, |_| {}).await
    }

    /// A controller on an existing data directory and store (a restart, or a store other
    /// components share), with `tweak` applied to its configuration.
    pub(crate) async fn start_full(
        backend: Backend,
        scheduler: deis_controller::SchedulerKind,
        labels: std::collections::HashMap<String, String>,
        dir: tempfile::TempDir,
        store: Arc<dyn ConfigStore>,
        tweak: impl FnOnce(&mut Config),
    ) -> Controller {
        deis_runtime::init_tracing();
        let (database_url, postgres) = match backend {
            Backend::Sqlite => (None, None),
            Backend::Postgres => {
                let pg = Postgres::start().await;
                (Some(pg.create_database("deis")), Some(pg))
            }
        };
        let mut config = Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: dir.path().to_owned(),
            database_url,
            platform_domain: "example.com".into(),
            scheduler,
            container_labels: labels,
            reconcile_interval: Duration::from_secs(1),
            ..Config::default()
        };
        tweak(&mut config);
        let listeners = Listeners::bind(&config).await.expect("bind");
        let addr = listeners.http.local_addr().expect("address");
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(deis_controller::run(
            config,
            store.clone(),
            listeners,
            shutdown.clone(),
        ));
        let mut controller = Controller {
            api: Api { addr },
            store,
            shutdown,
            task: None,
            dir: Some(dir),
            _postgres: postgres,
        };
        deis_testkit::eventually(
            Duration::from_secs(30),
            "the controller to answer /healthz",
            || async {
                if task.is_finished() {
                    panic!("the controller stopped during start-up");
                }
                match controller.call("GET", "/healthz", None, None).await {
                    Ok(r) if r.status == 200 => Ok(()),
                    other => Err(format!("{other:?}")),
                }
            },
        )
        .await;
        controller.task = Some(task);
        controller
    }

    /// Stops the controller (as SIGTERM would) and hands back its data directory.
    /// Stops the controller's PostgreSQL at once (its host lost): the controller keeps running.
    pub(crate) fn lose_database(&mut self) {
        if let Some(postgres) = self._postgres.as_mut() {
            postgres.stop_now();
        }
    }

    pub(crate) async fn stop(mut self) -> tempfile::TempDir {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            task.await.expect("controller task").expect("a clean stop");
        }
        self.dir.take().expect("the data directory")
    }
}

impl Api {
    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> std::io::Result<Resp> {
        self.raw(method, path, &auth_headers(token), body).await
    }

    /// Sends one request with extra header lines and returns the whole response.
    pub(crate) async fn raw(
        &self,
        method: &str,
        path: &str,
        headers: &[String],
        body: Option<&str>,
    ) -> std::io::Result<Resp> {
        let mut stream = tokio::net::TcpStream::connect(self.addr).await?;
        let body = body.unwrap_or("");
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        );
        if !headers
            .iter()
            .any(|h| h.to_ascii_lowercase().starts_with("content-type:"))
        {
            request.push_str("Content-Type: application/json\r\n");
        }
        for h in headers {
            request.push_str(h);
            request.push_str("\r\n");
        }
        request.push_str("\r\n");
        request.push_str(body);
        stream.write_all(request.as_bytes()).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let mut lines = head.lines();
        let status_line = lines.next().unwrap_or_default();
        let mut parts = status_line.splitn(3, ' ');
        let _version = parts.next();
        let status = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        let reason = parts.next().unwrap_or_default().to_owned();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        let chunked = headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
        let body = if chunked {
            dechunk(body)
        } else {
            body.to_owned()
        };
        Ok(Resp {
            status,
            reason,
            headers,
            body,
        })
    }

    /// Sends a JSON request as the holder of `token` (or anonymously).
    pub(crate) async fn req(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let body = body.map(|b| b.to_string());
        self.call(method, path, token, body.as_deref())
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// Registers a user and logs in; returns the token.
    pub(crate) async fn user(&self, name: &str) -> String {
        let body = serde_json::json!({"username": name, "password": "opensesame", "email": format!("{name}@example.com")});
        self.req("POST", "/v1/auth/register", None, Some(body))
            .await
            .expect(201, "CREATED");
        let login = serde_json::json!({"username": name, "password": "opensesame"});
        let r = self.req("POST", "/v1/auth/login/", None, Some(login)).await;
        r.expect(200, "OK");
        r.json()["token"].as_str().expect("a token").to_owned()
    }

    /// Creates an app as the holder of `token`.
    pub(crate) async fn app(&self, token: &str, id: &str) {
        self.req(
            "POST",
            "/v1/apps",
            Some(token),
            Some(serde_json::json!({"id": id})),
        )
        .await
        .expect(201, "CREATED");
    }
}

fn auth_headers(token: Option<&str>) -> Vec<String> {
    token
        .map(|t| vec![format!("Authorization: token {t}")])
        .unwrap_or_default()
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Runs each flow on SQLite and on PostgreSQL.
macro_rules! on_both_databases {
    ($($flow:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $flow() {
                    super::$flow(crate::support::Controller::start(crate::support::Backend::Sqlite).await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $flow() {
                    super::$flow(crate::support::Controller::start(crate::support::Backend::Postgres).await).await;
                }
            )*
        }
    };
}
