//! The etcd v3 backend (cluster mode), through etcd-client. Works with etcd 3.4 and later, in
//! plain HTTP/2 or over TLS with a client certificate ([`EtcdTls`]; failures the TLS layer
//! causes are explained by `tls.rs`).
//!
//! A watch runs as a task that owns the gRPC stream and feeds the caller's [`WatchStream`]. When
//! the connection breaks (a member stopped or restarted) it opens a new watch from the revision
//! after the last event it delivered, so no event is lost or repeated. The task ends when the
//! caller drops the stream.

use std::time::Duration;

use etcd_client::{
    Client, Compare as EtcdCompare, CompareOp, ConnectOptions, DeleteOptions, EventType,
    GetOptions, PutOptions, Txn as EtcdTxn, TxnOp, WatchOptions,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::model::{Compare, Event, EventKind, KeyValue, LeaseId, Listing, Op, Revision, Txn};
use crate::tls::{EtcdTls, Transport, explain};
use crate::{ConfigStore, StoreError, TxnOutcome, WatchStream, check_key, ttl_seconds};

/// The etcd-backed config store. Cloning gives another handle on the same connection.
#[derive(Clone)]
pub struct EtcdStore {
    client: Client,
    namespace: String,
    transport: Transport,
}

const RECONNECT_MIN: Duration = Duration::from_millis(50);
const RECONNECT_MAX: Duration = Duration::from_secs(2);
/// How many times a request that reached no member is sent (see [`EtcdStore::send`]).
const UNSENT_ATTEMPTS: u32 = 6;

impl EtcdStore {
    /// Connects to the cluster at `endpoints` over plain HTTP/2; every key is stored under
    /// `namespace` (empty in production). See [`EtcdStore::connect_with_tls`].
    pub async fn connect(endpoints: &[String], namespace: &str) -> Result<Self, StoreError> {
        Self::connect_with_tls(endpoints, namespace, None).await
    }

    /// Connects to the cluster at `endpoints`, over TLS when `tls` is given (and not empty):
    /// then every endpoint must be `https://` and the files are read and checked now, so that a
    /// missing file or a key that does not match its certificate is a [`StoreError::Tls`] naming
    /// the file. Without TLS settings an `https://` endpoint is refused the same way.
    ///
    /// The connection itself is made on first use: an unreachable etcd, or a handshake etcd
    /// refuses, is a [`StoreError::Unavailable`] from the first call (one that says TLS and
    /// what was refused, for the latter).
    pub async fn connect_with_tls(
        endpoints: &[String],
        namespace: &str,
        tls: Option<&EtcdTls>,
    ) -> Result<Self, StoreError> {
        if endpoints.is_empty() {
            return Err(StoreError::InvalidRequest(
                "no etcd endpoints were given".into(),
            ));
        }
        let tls = tls.filter(|t| !t.is_empty());
        for endpoint in endpoints {
            let https = endpoint.starts_with("https://");
            if tls.is_some() && !https {
                return Err(StoreError::Tls(format!(
                    "the endpoint {endpoint} is not https:// but TLS files are given"
                )));
            }
            if tls.is_none() && https {
                return Err(StoreError::Tls(format!(
                    "the endpoint {endpoint} is https:// but no CA bundle is given to verify etcd's certificate"
                )));
            }
        }
        let mut options = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(3))
            .with_timeout(Duration::from_secs(10))
            .with_keep_alive(Duration::from_secs(5), Duration::from_secs(3))
            .with_keep_alive_while_idle(true);
        let transport = match tls {
            Some(tls) => {
                let (tls_options, transport) = tls.load(endpoints)?;
                options = options.with_tls(tls_options);
                transport
            }
            None => Transport::plain(endpoints),
        };
        let client = match Client::connect(endpoints, Some(options)).await {
            Ok(client) => client,
            Err(e) => {
                return Err(StoreError::Unavailable {
                    op: format!("connect to {endpoints:?}"),
                    source: explain(&transport, e).await,
                });
            }
        };
        Ok(EtcdStore {
            client,
            namespace: namespace.to_owned(),
            transport,
        })
    }

    /// Sends a request, again when it never reached a member: the client spreads requests over
    /// every endpoint, and one whose host is lost fails them at connect time (a third of all
    /// requests with one member of three lost). Only such failures are retried, so a request
    /// etcd received is never applied twice, and a cluster without a majority still answers
    /// with its own error at once.
    async fn send<T, F, Fut>(&self, call: F) -> Result<T, etcd_client::Error>
    where
        F: Fn(Client) -> Fut,
        Fut: std::future::Future<Output = Result<T, etcd_client::Error>>,
    {
        let mut attempt = 1;
        loop {
            match call(self.client.clone()).await {
                Err(e) if attempt < UNSENT_ATTEMPTS && never_sent(&e) => {
                    tracing::debug!(error = %e, attempt, "An etcd request reached no member; sending it again");
                    tokio::time::sleep(RECONNECT_MIN * attempt).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    fn full(&self, key: &str) -> String {
        format!("{}{key}", self.namespace)
    }

    fn kv(&self, kv: &etcd_client::KeyValue) -> Result<KeyValue, StoreError> {
        let full = String::from_utf8_lossy(kv.key());
        let key = full
            .strip_prefix(&self.namespace)
            .unwrap_or(&full)
            .to_owned();
        let value = kv
            .value_str()
            .map_err(|_| StoreError::InvalidValue { key: key.clone() })?
            .to_owned();
        Ok(KeyValue {
            key,
            value,
            create_revision: kv.create_revision(),
            mod_revision: kv.mod_revision(),
            lease: (kv.lease() != 0).then_some(LeaseId(kv.lease())),
        })
    }

    /// `result`, with a client error mapped to ours (see [`EtcdStore::map_error`]).
    async fn checked<T>(
        &self,
        op: impl FnOnce() -> String,
        lease: Option<LeaseId>,
        result: Result<T, etcd_client::Error>,
    ) -> Result<T, StoreError> {
        match result {
            Ok(value) => Ok(value),
            Err(e) => Err(self.map_error(op(), lease, e).await),
        }
    }

    /// Maps a client error to ours, keeping what the caller can act on; a connection that failed
    /// in its TLS layer is explained (see [`explain`]).
    async fn map_error(
        &self,
        op: String,
        lease: Option<LeaseId>,
        e: etcd_client::Error,
    ) -> StoreError {
        if let (etcd_client::Error::LeaseKeepAliveError(message), Some(lease)) = (&e, lease)
            && message.contains("not found")
        {
            return StoreError::LeaseNotFound(lease);
        }
        if let etcd_client::Error::GRpcStatus(status) = &e {
            match status.code() {
                tonic::Code::NotFound if status.message().contains("lease") => {
                    if let Some(lease) = lease {
                        return StoreError::LeaseNotFound(lease);
                    }
                }
                tonic::Code::InvalidArgument => {
                    return StoreError::InvalidRequest(status.message().to_owned());
                }
                _ => {}
            }
        }
        StoreError::Unavailable {
            op,
            source: explain(&self.transport, e).await,
        }
    }

    fn op(&self, op: &Op) -> TxnOp {
        match op {
            Op::Put { key, value, lease } => TxnOp::put(
                self.full(key),
                value.as_str(),
                lease.map(|l| PutOptions::new().with_lease(l.0)),
            ),
            Op::Delete { key } => TxnOp::delete(self.full(key), None),
        }
    }
}

/// Whether `e` says the request never left this process: no connection to the member it was
/// sent to could be made.
fn never_sent(e: &etcd_client::Error) -> bool {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    let text = text.to_ascii_lowercase();
    [
        "tcp connect error",
        "error trying to connect",
        "connection refused",
        "no route to host",
    ]
    .iter()
    .any(|m| text.contains(m))
}

fn lease_of(ops: &[Op]) -> Option<LeaseId> {
    ops.iter().find_map(|op| match op {
        Op::Put { lease, .. } => *lease,
        Op::Delete { .. } => None,
    })
}

/// A member of an etcd cluster, as its member list says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdMember {
    pub id: u64,
    /// Empty until the member has started and joined.
    pub name: String,
    pub peer_urls: Vec<String>,
    pub client_urls: Vec<String>,
}

impl EtcdMember {
    fn from(member: &etcd_client::Member) -> EtcdMember {
        EtcdMember {
            id: member.id(),
            name: member.name().to_owned(),
            peer_urls: member.peer_urls().to_vec(),
            client_urls: member.client_urls().to_vec(),
        }
    }
}

/// The cluster's membership, for the operator's tool (replacing a lost member).
impl EtcdStore {
    /// Every member, started or not.
    pub async fn members(&self) -> Result<Vec<EtcdMember>, StoreError> {
        let resp = self
            .send(|c| async move { c.cluster_client().member_list().await })
            .await;
        let resp = self
            .checked(|| "list members".to_owned(), None, resp)
            .await?;
        Ok(resp.members().iter().map(EtcdMember::from).collect())
    }

    /// Removes the member `id` from the cluster.
    pub async fn remove_member(&self, id: u64) -> Result<(), StoreError> {
        let resp = self.client.cluster_client().member_remove(id).await;
        self.checked(|| format!("remove member {id:x}"), None, resp)
            .await
            .map(|_| ())
    }

    /// Adds a voting member that will listen for peers at `peer_url`: the new member and
    /// the cluster's members with it.
    pub async fn add_member(
        &self,
        peer_url: &str,
    ) -> Result<(EtcdMember, Vec<EtcdMember>), StoreError> {
        let resp = self
            .client
            .cluster_client()
            .member_add(vec![peer_url.to_owned()], None)
            .await;
        let resp = self
            .checked(|| format!("add a member at {peer_url}"), None, resp)
            .await?;
        let added = resp.member().map(EtcdMember::from).ok_or_else(|| {
            StoreError::InvalidRequest(format!("etcd added no member at {peer_url}"))
        })?;
        Ok((
            added,
            resp.member_list().iter().map(EtcdMember::from).collect(),
        ))
    }
}

#[async_trait::async_trait]
impl ConfigStore for EtcdStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let full = self.full(key);
        let resp = self
            .send(|c| {
                let full = full.clone();
                async move { c.kv_client().get(full, None).await }
            })
            .await;
        let resp = self.checked(|| format!("get {key}"), None, resp).await?;
        resp.kvs().first().map(|kv| self.kv(kv)).transpose()
    }

    async fn list(&self, prefix: &str) -> Result<Listing, StoreError> {
        let full = self.full(prefix);
        let resp = self
            .send(|c| {
                let full = full.clone();
                async move {
                    c.kv_client()
                        .get(full, Some(GetOptions::new().with_prefix()))
                        .await
                }
            })
            .await;
        let resp = self
            .checked(|| format!("list {prefix}"), None, resp)
            .await?;
        let revision = resp.header().map_or(0, |h| h.revision());
        let kvs = resp
            .kvs()
            .iter()
            .map(|kv| self.kv(kv))
            .collect::<Result<_, _>>()?;
        Ok(Listing { kvs, revision })
    }

    async fn put(
        &self,
        key: &str,
        value: &str,
        lease: Option<LeaseId>,
    ) -> Result<Revision, StoreError> {
        check_key(key)?;
        let full = self.full(key);
        let resp = self
            .send(|c| {
                let (full, value) = (full.clone(), value.to_owned());
                let options = lease.map(|l| PutOptions::new().with_lease(l.0));
                async move { c.kv_client().put(full, value, options).await }
            })
            .await;
        let resp = self.checked(|| format!("put {key}"), lease, resp).await?;
        Ok(resp.header().map_or(0, |h| h.revision()))
    }

    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        check_key(key)?;
        let full = self.full(key);
        let resp = self
            .send(|c| {
                let full = full.clone();
                async move { c.kv_client().delete(full, None).await }
            })
            .await;
        let resp = self.checked(|| format!("delete {key}"), None, resp).await?;
        Ok(resp.deleted() > 0)
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<u64, StoreError> {
        let full = self.full(prefix);
        let resp = self
            .send(|c| {
                let full = full.clone();
                async move {
                    c.kv_client()
                        .delete(full, Some(DeleteOptions::new().with_prefix()))
                        .await
                }
            })
            .await;
        let resp = self
            .checked(|| format!("delete {prefix}*"), None, resp)
            .await?;
        Ok(resp.deleted().max(0) as u64)
    }

    async fn txn(&self, txn: Txn) -> Result<TxnOutcome, StoreError> {
        for op in txn.success.iter().chain(&txn.failure) {
            let (Op::Put { key, .. } | Op::Delete { key }) = op;
            check_key(key)?;
        }
        let compares: Vec<EtcdCompare> = txn
            .compares
            .iter()
            .map(|c| match c {
                Compare::Value { key, value } => {
                    EtcdCompare::value(self.full(key), CompareOp::Equal, value.as_str())
                }
                Compare::ModRevision { key, revision } => {
                    EtcdCompare::mod_revision(self.full(key), CompareOp::Equal, *revision)
                }
                Compare::Absent { key } => {
                    EtcdCompare::create_revision(self.full(key), CompareOp::Equal, 0)
                }
            })
            .collect();
        let request = EtcdTxn::new()
            .when(compares)
            .and_then(txn.success.iter().map(|op| self.op(op)).collect::<Vec<_>>())
            .or_else(txn.failure.iter().map(|op| self.op(op)).collect::<Vec<_>>());
        let lease = lease_of(&txn.success).or_else(|| lease_of(&txn.failure));
        let resp = self
            .send(|c| {
                let request = request.clone();
                async move { c.kv_client().txn(request).await }
            })
            .await;
        let resp = self.checked(|| "txn".to_owned(), lease, resp).await?;
        Ok(TxnOutcome {
            succeeded: resp.succeeded(),
            revision: resp.header().map_or(0, |h| h.revision()),
        })
    }

    async fn grant_lease(&self, ttl: Duration) -> Result<LeaseId, StoreError> {
        let ttl = ttl_seconds(ttl)?;
        let resp = self
            .send(|c| async move { c.lease_client().grant(ttl, None).await })
            .await;
        let resp = self
            .checked(|| "grant lease".to_owned(), None, resp)
            .await?;
        Ok(LeaseId(resp.id()))
    }

    async fn keep_alive(&self, lease: LeaseId) -> Result<(), StoreError> {
        // Opening the keep-alive stream sends one renewal and checks its answer.
        let resp = self
            .send(|c| async move { c.lease_client().keep_alive(lease.0).await })
            .await;
        self.checked(|| format!("keep lease {lease} alive"), Some(lease), resp)
            .await
            .map(|_| ())
    }

    async fn revoke_lease(&self, lease: LeaseId) -> Result<(), StoreError> {
        let resp = self
            .send(|c| async move { c.lease_client().revoke(lease.0).await })
            .await;
        self.checked(|| format!("revoke lease {lease}"), Some(lease), resp)
            .await
            .map(|_| ())
    }

    async fn watch(&self, prefix: &str, from: Revision) -> Result<WatchStream, StoreError> {
        // Pin "from now" to a revision so that a reconnect resumes from the right place.
        let start = if from > 0 {
            from
        } else {
            let full = self.full(prefix);
            let resp = self
                .send(|c| {
                    let full = full.clone();
                    async move {
                        let options = GetOptions::new().with_prefix().with_count_only();
                        c.kv_client().get(full, Some(options)).await
                    }
                })
                .await;
            let resp = self
                .checked(|| format!("watch {prefix}"), None, resp)
                .await?;
            resp.header().map_or(0, |h| h.revision()) + 1
        };
        let (tx, rx) = mpsc::channel(1024);
        tokio::spawn(run_watch(self.clone(), self.full(prefix), start, tx));
        Ok(Box::pin(ReceiverStream::new(rx)))
    }
}

type EventSender = mpsc::Sender<Result<Event, StoreError>>;

/// Feeds `tx` with every event under `key` from revision `next` on, reconnecting as needed,
/// until the receiver is dropped or the history is compacted away.
async fn run_watch(store: EtcdStore, key: String, mut next: Revision, tx: EventSender) {
    let mut backoff = RECONNECT_MIN;
    loop {
        let options = WatchOptions::new().with_prefix().with_start_revision(next);
        let mut client = store.client.watch_client();
        let opened = tokio::select! {
            _ = tx.closed() => return,
            opened = client.watch(key.clone(), Some(options)) => opened,
        };
        match opened {
            Ok(mut stream) => loop {
                let message = tokio::select! {
                    _ = tx.closed() => return,
                    message = stream.message() => message,
                };
                let resp = match message {
                    Ok(Some(resp)) => resp,
                    Ok(None) => break,
                    Err(e) => {
                        tracing::debug!(store.key = %key, error = %e, "Watch stream broke; reconnecting");
                        break;
                    }
                };
                if resp.compact_revision() > 0 {
                    let _ = tx
                        .send(Err(StoreError::Compacted {
                            requested: next,
                            compacted: resp.compact_revision(),
                        }))
                        .await;
                    return;
                }
                if resp.canceled() {
                    tracing::debug!(store.key = %key, reason = resp.cancel_reason(), "Watch canceled by the server; reconnecting");
                    break;
                }
                backoff = RECONNECT_MIN;
                let mut last = None;
                for event in resp.events() {
                    let Some(kv) = event.kv() else { continue };
                    if kv.mod_revision() < next {
                        continue;
                    }
                    last = Some(kv.mod_revision());
                    let converted = store.kv(kv).map(|kv| Event {
                        kind: match event.event_type() {
                            EventType::Put => EventKind::Put,
                            EventType::Delete => EventKind::Delete,
                        },
                        kv,
                    });
                    if tx.send(converted).await.is_err() {
                        return;
                    }
                }
                if let Some(last) = last {
                    next = last + 1;
                }
            },
            Err(e) => {
                tracing::debug!(store.key = %key, error = %e, "Opening a watch failed; retrying");
            }
        }
        tokio::select! {
            _ = tx.closed() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(RECONNECT_MAX);
    }
}
