//! Secrets the platform's components share through the config store (the logger's API secret),
//! and the gRPC interceptor that presents one as `authorization: Bearer <secret>`.

use deis_store::keys::Key;
use deis_store::{ConfigStore, Txn};
use rand::RngCore;

/// Why a shared secret could not be had.
#[derive(Debug, thiserror::Error)]
#[error("cannot read or create the shared secret {key} in the config store: {reason}")]
pub struct SecretError {
    key: String,
    reason: String,
}

/// The secret at `key`, created (32 random bytes, hex) by whichever component asks first.
pub async fn shared_secret(store: &dyn ConfigStore, key: &Key) -> Result<String, SecretError> {
    let path = key.path();
    let error = |reason: String| SecretError {
        key: path.clone(),
        reason,
    };
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    store
        .txn(Txn::create(path.clone(), hex::encode(bytes)))
        .await
        .map_err(|e| error(e.to_string()))?;
    match store.get(&path).await.map_err(|e| error(e.to_string()))? {
        Some(kv) if !kv.value.is_empty() => Ok(kv.value),
        _ => Err(error("it is empty".to_owned())),
    }
}

/// Adds `authorization: Bearer <secret>` to every gRPC request.
#[derive(Clone)]
pub struct Bearer(tonic::metadata::MetadataValue<tonic::metadata::Ascii>);

impl Bearer {
    /// The interceptor for `secret` (hex, so always a valid header value).
    pub fn new(secret: &str) -> Bearer {
        let value = format!("Bearer {secret}")
            .parse()
            .unwrap_or_else(|_| tonic::metadata::MetadataValue::from_static("Bearer -"));
        Bearer(value)
    }
}

impl std::fmt::Debug for Bearer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Bearer(..)")
    }
}

impl tonic::service::Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

/// Whether an `authorization` header value presents `secret` (compared in constant time).
pub fn presents(header: Option<&str>, secret: &str) -> bool {
    use subtle::ConstantTimeEq;
    header
        .and_then(|h| h.strip_prefix("Bearer "))
        .is_some_and(|given| given.as_bytes().ct_eq(secret.as_bytes()).into())
}

/// A client of the logger's gRPC API that presents the platform's logger secret.
pub type LogClient = deis_proto::logger::v1::log_service_client::LogServiceClient<
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, Bearer>,
>;

/// Why no log client could be made.
#[derive(Debug, thiserror::Error)]
pub enum LogClientError {
    /// The secret is not to be had.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// The logger cannot be reached at that URL.
    #[error("cannot reach the logger at {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: tonic::transport::Error,
    },
}

/// Connects to the logger at `url` (`http://host:port`) with the secret from `store`.
pub async fn log_client(store: &dyn ConfigStore, url: String) -> Result<LogClient, LogClientError> {
    let secret = shared_secret(store, &Key::logger_secret()).await?;
    let channel = tonic::transport::Endpoint::from_shared(url.clone())
        .map_err(|source| LogClientError::Connect {
            url: url.clone(),
            source,
        })?
        .connect()
        .await
        .map_err(|source| LogClientError::Connect { url, source })?;
    Ok(
        deis_proto::logger::v1::log_service_client::LogServiceClient::with_interceptor(
            channel,
            Bearer::new(&secret),
        ),
    )
}
