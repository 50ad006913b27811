//! `deisctl refresh-units [-p <dir>] [-t <tag>]`: writes the platform's unit files (systemd,
//! with `[X-Fleet]` sections for fleet) into a directory, rendered with the platform's settings:
//! each component's image is `/deis/<component>/image` if set, else `deis/<component>:<tag>`
//! (`<tag>` from `-t`, else `/deis/platform/version`, else `latest`). The templates are the files
//! of `systemd-units/`, built into this binary, so no network is needed.

use std::path::Path;

use deis_store::ConfigStore;
use deis_store::keys::{Component, Key};

use crate::Error;
use crate::config::value;

/// `(unit file, component, template)` for every template.
const UNITS: [(&str, Component, &str); 8] = [
    (
        "deis-builder.service",
        Component::Builder,
        include_str!("../../../systemd-units/deis-builder.service"),
    ),
    (
        "deis-controller.service",
        Component::Controller,
        include_str!("../../../systemd-units/deis-controller.service"),
    ),
    (
        "deis-database.service",
        Component::Database,
        include_str!("../../../systemd-units/deis-database.service"),
    ),
    (
        "deis-logspout.service",
        Component::Logger,
        include_str!("../../../systemd-units/deis-logspout.service"),
    ),
    (
        "deis-logger.service",
        Component::Logger,
        include_str!("../../../systemd-units/deis-logger.service"),
    ),
    (
        "deis-registry-proxy.service",
        Component::RegistryProxy,
        include_str!("../../../systemd-units/deis-registry-proxy.service"),
    ),
    (
        "deis-registry.service",
        Component::Registry,
        include_str!("../../../systemd-units/deis-registry.service"),
    ),
    (
        "deis-router@.service",
        Component::Router,
        include_str!("../../../systemd-units/deis-router@.service"),
    ),
];

/// One unit file rendered with the platform's settings.
pub(crate) struct Rendered {
    /// Its file name (`deis-router@.service`).
    pub(crate) file: &'static str,
    /// The image its container runs.
    pub(crate) image: String,
    pub(crate) text: String,
}

/// Every unit rendered with the store's settings, and the tag it used.
pub(crate) async fn render(
    store: &dyn ConfigStore,
    tag: Option<String>,
) -> Result<(String, Vec<Rendered>), Error> {
    let tag = match tag {
        Some(t) => t,
        None => value(store, &Key::platform_version())
            .await?
            .unwrap_or_else(|| "latest".to_owned()),
    };
    let mut rendered = Vec::with_capacity(UNITS.len());
    for (file, component, template) in UNITS {
        let image = match value(store, &Key::image(component)).await? {
            Some(image) => image,
            None => format!("deis/{component}:{tag}"),
        };
        let text = template.replace(&format!("deis/{component}:latest"), &image);
        rendered.push(Rendered { file, image, text });
    }
    Ok((tag, rendered))
}

/// Renders every unit into `dir`.
pub(crate) async fn refresh(
    store: &dyn ConfigStore,
    dir: &Path,
    tag: Option<String>,
) -> Result<(), Error> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::Message(format!("cannot create {}: {e}", dir.display())))?;
    let (tag, units) = render(store, tag).await?;
    for unit in units {
        let path = dir.join(unit.file);
        std::fs::write(&path, unit.text)
            .map_err(|e| Error::Message(format!("cannot write {}: {e}", path.display())))?;
        println!("Refreshed {} unit from {tag}", unit.file);
    }
    Ok(())
}
