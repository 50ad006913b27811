//! The controller's REST API as the Deis v1 client calls it: JSON bodies, `Authorization: token`,
//! the client's User-Agent, and error statuses turned into [`CliError::Api`].

use std::time::Duration;

use serde_json::Value;

use crate::error::CliError;
use crate::settings::Settings;

/// The version the Deis v1 client reports.
pub(crate) const CLIENT_VERSION: &str = "1.13.4";

/// A client of one controller.
pub(crate) struct Client {
    pub(crate) controller: String,
    token: Option<String>,
    agent: ureq::Agent,
    pub(crate) limit: i64,
}

/// A response body (JSON, or text) with its status code.
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) text: String,
    pub(crate) release: Option<String>,
}

impl Reply {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }
}

impl Client {
    pub(crate) fn new(
        controller: &str,
        token: Option<String>,
        ssl_verify: bool,
        limit: i64,
    ) -> Client {
        let tls = ureq::tls::TlsConfig::builder()
            .disable_verification(!ssl_verify)
            .build();
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(20 * 60)))
            .tls_config(tls)
            .user_agent(format!("Deis Client v{CLIENT_VERSION}"))
            .build()
            .into();
        Client {
            controller: controller.trim_end_matches('/').to_owned(),
            token,
            agent,
            limit,
        }
    }

    /// A client from the saved settings.
    pub(crate) fn from_settings(settings: &Settings) -> Client {
        Client::new(
            &settings.controller,
            Some(settings.token.clone()),
            settings.ssl_verify,
            settings.limit(),
        )
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.controller)
    }

    /// Sends a request; any status is returned.
    pub(crate) fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Reply, CliError> {
        let url = self.url(path);
        let unreachable = |e: ureq::Error| CliError::Unreachable {
            url: self.controller.clone(),
            reason: e.to_string(),
        };
        let auth = self.token.as_ref().map(|t| format!("token {t}"));
        let text = body.map(Value::to_string);
        let result =
            match (method, text) {
                ("GET", _) => with_headers(self.agent.get(&url), auth.as_deref()).call(),
                ("DELETE", None) => with_headers(self.agent.delete(&url), auth.as_deref()).call(),
                ("DELETE", Some(text)) => with_headers(self.agent.delete(&url), auth.as_deref())
                    .force_send_body()
                    .send(text),
                ("PUT", text) => with_headers(self.agent.put(&url), auth.as_deref())
                    .send(text.unwrap_or_default()),
                (_, text) => with_headers(self.agent.post(&url), auth.as_deref())
                    .send(text.unwrap_or_default()),
            };
        let mut response = result.map_err(unreachable)?;
        let status = response.status().as_u16();
        let release = response
            .headers()
            .get("Deis-Release")
            .or_else(|| response.headers().get("X-Deis-Release"))
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let reason = response
            .status()
            .canonical_reason()
            .unwrap_or("")
            .to_owned();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        if status >= 400 {
            return Err(CliError::api(status, &reason, &text));
        }
        Ok(Reply {
            status,
            text,
            release,
        })
    }

    pub(crate) fn get(&self, path: &str) -> Result<Reply, CliError> {
        self.send("GET", path, None)
    }

    pub(crate) fn post(&self, path: &str, body: &Value) -> Result<Reply, CliError> {
        self.send("POST", path, Some(body))
    }

    pub(crate) fn delete(&self, path: &str) -> Result<Reply, CliError> {
        self.send("DELETE", path, None)
    }

    pub(crate) fn delete_with(&self, path: &str, body: &Value) -> Result<Reply, CliError> {
        self.send("DELETE", path, Some(body))
    }

    /// Streams a `text/plain` response line by line into `each` until the server ends it.
    pub(crate) fn stream_lines(
        &self,
        path: &str,
        mut each: impl FnMut(&str),
    ) -> Result<(), CliError> {
        use std::io::BufRead;
        let url = self.url(path);
        let auth = self.token.as_ref().map(|t| format!("token {t}"));
        let request = with_headers(self.agent.get(&url), auth.as_deref())
            .config()
            .timeout_global(None)
            .build();
        let mut response = request.call().map_err(|e| CliError::Unreachable {
            url: self.controller.clone(),
            reason: e.to_string(),
        })?;
        let status = response.status().as_u16();
        if status >= 400 {
            let reason = response
                .status()
                .canonical_reason()
                .unwrap_or("")
                .to_owned();
            let text = response.body_mut().read_to_string().unwrap_or_default();
            return Err(CliError::api(status, &reason, &text));
        }
        let reader = std::io::BufReader::new(response.body_mut().as_reader());
        for line in reader.lines() {
            match line {
                Ok(line) => each(&line),
                Err(e) => {
                    return Err(CliError::Message(format!(
                        "the log stream from {} ended: {e}",
                        self.controller
                    )));
                }
            }
        }
        Ok(())
    }

    /// A list endpoint's `results` and `count` (one page of `limit`).
    pub(crate) fn list(
        &self,
        path: &str,
        limit: Option<i64>,
    ) -> Result<(Vec<Value>, i64), CliError> {
        let size = limit.filter(|l| *l > 0).unwrap_or(self.limit);
        let sep = if path.contains('?') { '&' } else { '?' };
        let reply = self.get(&format!("{path}{sep}page_size={size}"))?;
        let json = reply.json();
        let results = json["results"].as_array().cloned().unwrap_or_default();
        let count = json["count"].as_i64().unwrap_or(results.len() as i64);
        Ok((results, count))
    }
}

/// The JSON content type and the token, on every request.
fn with_headers<B>(
    request: ureq::RequestBuilder<B>,
    auth: Option<&str>,
) -> ureq::RequestBuilder<B> {
    let request = request.header("Content-Type", "application/json");
    match auth {
        Some(a) => request.header("Authorization", a),
        None => request,
    }
}

/// `(x of y)` when a page shows fewer than all.
pub(crate) fn of_count(shown: usize, count: i64) -> String {
    if (shown as i64) < count {
        format!(" ({shown} of {count})")
    } else {
        String::new()
    }
}
