//! Keeps the routing table in step with the config store: one listing, then a watch from the
//! listing's revision; every change builds a new table that replaces the old one at once. If the
//! watch fails (history compacted, store gone), it lists again.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use deis_store::keys::prefix;
use deis_store::{ConfigStore, EventKind};
use futures_util::StreamExt;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::table::Table;

/// Follows the store until `shutdown`, publishing each new table on `tables`.
pub(crate) async fn follow(
    store: Arc<dyn ConfigStore>,
    default_domain: String,
    tables: watch::Sender<Arc<Table>>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let mut delay = Duration::from_millis(100);
    while !shutdown.is_cancelled() {
        match once(&store, &default_domain, &tables, &metrics, &shutdown).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, "Following the config store failed; listing again")
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

async fn once(
    store: &Arc<dyn ConfigStore>,
    default_domain: &str,
    tables: &watch::Sender<Arc<Table>>,
    metrics: &Metrics,
    shutdown: &CancellationToken,
) -> Result<(), deis_store::StoreError> {
    let listing = store.list(prefix::ALL).await?;
    let mut kvs: BTreeMap<String, String> = listing
        .kvs
        .into_iter()
        .map(|kv| (kv.key, kv.value))
        .collect();
    let table = Table::build(&kvs, default_domain, &tables.borrow());
    publish(tables, metrics, table);
    let mut events = store.watch(prefix::ALL, listing.revision + 1).await?;
    loop {
        let event = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            event = events.next() => event,
        };
        let Some(event) = event else {
            return Err(deis_store::StoreError::InvalidRequest(
                "the watch ended".into(),
            ));
        };
        let mut apply = |e: deis_store::Event| match e.kind {
            EventKind::Put => {
                kvs.insert(e.kv.key, e.kv.value);
            }
            EventKind::Delete => {
                kvs.remove(&e.kv.key);
            }
        };
        apply(event?);
        // Apply whatever else has already arrived before building the next table.
        while let Some(Some(more)) = events.next().now_or_never() {
            apply(more?);
        }
        let table = Table::build(&kvs, default_domain, &tables.borrow());
        publish(tables, metrics, table);
    }
}

fn publish(tables: &watch::Sender<Arc<Table>>, metrics: &Metrics, table: Table) {
    metrics.table_updates.inc();
    tables.send_replace(Arc::new(table));
}

use futures_util::FutureExt;
