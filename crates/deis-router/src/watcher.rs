//! Keeps the routing table in step with the config store: it follows `/deis/`
//! ([`deis_store::Follower`]: a listing, then the changes since, a new listing after a compaction
//! or failure), and every update builds a new table that replaces the old one at once.

use std::collections::BTreeMap;
use std::sync::Arc;

use deis_store::keys::prefix;
use deis_store::{ConfigStore, EventKind, Follower, Update};
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
    let mut follower = Follower::new(store, prefix::ALL, shutdown);
    let mut kvs = BTreeMap::new();
    while let Some(update) = follower.next().await {
        match update {
            Update::Listed(listing) => {
                kvs = listing
                    .kvs
                    .into_iter()
                    .map(|kv| (kv.key, kv.value))
                    .collect();
            }
            Update::Changed(events) => {
                for e in events {
                    match e.kind {
                        EventKind::Put => kvs.insert(e.kv.key, e.kv.value),
                        EventKind::Delete => kvs.remove(&e.kv.key),
                    };
                }
            }
        }
        let table = Table::build(&kvs, &default_domain, &tables.borrow());
        metrics.table_updates.inc();
        tables.send_replace(Arc::new(table));
    }
}
