//! Load balancing: the order in which a request tries a target's backends.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::Ordering;

use super::Proxy;
use crate::settings::Settings;

/// The order to try backends in: round-robin (or by the affinity argument's hash), backends
/// in rotation before those marked down.
pub(crate) fn backend_order<'a>(
    proxy: &Proxy,
    settings: &Settings,
    backends: &'a [String],
    query: Option<&str>,
) -> Vec<&'a String> {
    let affinity = settings.affinity_arg.as_deref().and_then(|arg| {
        query?.split('&').find_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            (name == arg && !value.is_empty()).then_some(value)
        })
    });
    let mut order: Vec<&String> = match affinity {
        Some(value) => by_affinity(value, backends),
        None => {
            let start = proxy.next.fetch_add(1, Ordering::Relaxed);
            (0..backends.len())
                .map(|i| &backends[(start + i) % backends.len()])
                .collect()
        }
    };
    if proxy.health.any_down() {
        order.sort_by_key(|b| proxy.health.is_down(b));
    }
    order
}

/// Rendezvous hashing: a value keeps its backend while others come and go.
fn by_affinity<'a>(value: &str, backends: &'a [String]) -> Vec<&'a String> {
    let mut ranked: Vec<(u64, &String)> = backends
        .iter()
        .map(|b| {
            let mut h = DefaultHasher::new();
            (value, b).hash(&mut h);
            (h.finish(), b)
        })
        .collect();
    ranked.sort_unstable_by_key(|r| std::cmp::Reverse(r.0));
    ranked.into_iter().map(|(_, b)| b).collect()
}
