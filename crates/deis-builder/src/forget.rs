//! Forgets destroyed apps: when `/deis/services/<app>` is deleted (the controller destroys the
//! app), the app's repository and buildpack cache volume go too, so `deis destroy` leaves
//! nothing behind. At start, what the builder holds of apps the controller no longer knows (a
//! destroy it missed while down) is swept, once the controller answers: the store cannot tell,
//! as a single-host platform's in-process store starts empty and fills as the controller
//! mirrors its apps.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use deis_store::keys::{Key, prefix};
use deis_store::{ConfigStore, EventKind, Follower, Update};
use deis_types::AppName;
use tokio_util::sync::CancellationToken;

/// The app a `/deis/services/<app>` key names (not its containers' keys below it).
fn app_of(key: &str) -> Option<AppName> {
    match Key::parse(key) {
        Ok(Key::App(app)) => Some(app),
        _ => None,
    }
}

async fn forget(repos: &Path, docker: &bollard::Docker, app: &str) {
    let repo = repos.join(format!("{app}.git"));
    match tokio::fs::remove_dir_all(&repo).await {
        Ok(()) => tracing::info!(app.name = %app, "Removed the destroyed app's repository"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(app.name = %app, error = %e, "Removing a repository failed"),
    }
    let volume = crate::build::cache_volume(app);
    let _ = docker
        .remove_volume(
            &volume,
            None::<bollard::query_parameters::RemoveVolumeOptions>,
        )
        .await;
}

/// Once the controller lists its apps, removes the repositories and build caches of every
/// other app; gives up at `shutdown`.
pub(crate) async fn sweep(
    controller: crate::controller::Controller,
    docker: bollard::Docker,
    repos: std::path::PathBuf,
    shutdown: CancellationToken,
) {
    let mut held: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    if let Ok(mut entries) = tokio::fs::read_dir(&repos).await {
        while let Ok(Some(entry)) = entries.next_entry().await {
            if let Some(app) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".git"))
            {
                held.insert(app.to_owned());
            }
        }
    }
    let filters = std::collections::HashMap::from([(
        "name".to_owned(),
        vec![crate::build::cache_volume("")],
    )]);
    if let Ok(volumes) = docker
        .list_volumes(Some(
            bollard::query_parameters::ListVolumesOptionsBuilder::new()
                .filters(&filters)
                .build(),
        ))
        .await
    {
        for volume in volumes.volumes.unwrap_or_default() {
            if let Some(app) = volume.name.strip_prefix(&crate::build::cache_volume("")) {
                held.insert(app.to_owned());
            }
        }
    }
    let mut delay = Duration::from_millis(500);
    let apps: std::collections::HashSet<String> = loop {
        match controller.list_apps().await {
            Ok(apps) => break apps.into_iter().collect(),
            Err(e) => tracing::debug!(error = %e, "The controller cannot list the apps yet"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(10));
    };
    for app in held.iter().filter(|app| !apps.contains(*app)) {
        tracing::info!(app.name = %app, "Sweeping what a destroyed app left");
        forget(&repos, &docker, app).await;
    }
}

/// Follows the store until `shutdown`, removing what destroyed apps left.
pub(crate) async fn run(
    store: Arc<dyn ConfigStore>,
    docker: bollard::Docker,
    repos: std::path::PathBuf,
    shutdown: CancellationToken,
) {
    let mut follower = Follower::new(store.clone(), prefix::SERVICES, shutdown);
    while let Some(update) = follower.next().await {
        let Update::Changed(events) = update else {
            continue;
        };
        for event in events.iter().filter(|e| e.kind == EventKind::Delete) {
            // Unless the app was made again since.
            if let Some(app) = app_of(&event.kv.key)
                && matches!(store.get(&event.kv.key).await, Ok(None))
            {
                forget(&repos, &docker, app.as_str()).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{AppName, app_of};

    #[test]
    fn only_the_apps_own_key_names_it() {
        assert_eq!(
            app_of("/deis/services/shop").as_ref().map(AppName::as_str),
            Some("shop")
        );
        assert_eq!(app_of("/deis/services/shop/shop_v2.web.1"), None);
        assert_eq!(app_of("/deis/services/"), None);
    }
}
