//! The example configuration under deploy/ loads, and a mistake in a file is named.

use deis_platform::Config;
use deis_store::StoreConfig;

#[test]
fn the_example_configuration_loads_and_matches_the_defaults() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/platform.example.toml"
    );
    let config = Config::load(std::path::Path::new(path)).expect("the example loads");
    let defaults = Config::default();
    assert_eq!(config.store, StoreConfig::Memory);
    assert_eq!(config.controller.listen, defaults.controller.listen);
    assert_eq!(config.controller.data_dir, defaults.controller.data_dir);
    assert_eq!(config.controller.drain, defaults.controller.drain);
    assert_eq!(config.router.listen, defaults.router.listen);
    assert_eq!(config.router.admin_listen, defaults.router.admin_listen);
    assert_eq!(config.builder.http_listen, defaults.builder.http_listen);
    assert_eq!(config.logger.listen, defaults.logger.listen);
    assert_eq!(config.registry_proxy.listen, defaults.registry_proxy.listen);
    assert_eq!(
        config.registry_proxy.upstream,
        defaults.registry_proxy.upstream
    );
    assert_eq!(
        config.registry_proxy.cache_dir,
        defaults.registry_proxy.cache_dir
    );
    assert_eq!(
        config.registry_proxy.cache_max_bytes,
        defaults.registry_proxy.cache_max_bytes
    );
    assert_eq!(config.controller.limits, defaults.controller.limits);
    assert_eq!(config.no_app_isolation, defaults.no_app_isolation);
    assert_eq!(config.builder.build_memory, defaults.builder.build_memory);
    assert_eq!(config.logger.syslog_from, defaults.logger.syslog_from);
}

#[test]
fn etcd_is_chosen_in_the_file() {
    let config =
        Config::parse("[store]\nbackend = \"etcd\"\nendpoints = [\"http://10.0.0.1:2379\"]\n")
            .expect("valid");
    assert_eq!(
        config.store,
        StoreConfig::Etcd {
            endpoints: vec!["http://10.0.0.1:2379".into()],
            namespace: String::new(),
            tls: None,
        }
    );
}

#[test]
fn etcd_tls_files_are_read_from_the_file() {
    let config = Config::parse(
        "[store]\nbackend = \"etcd\"\nendpoints = [\"https://10.0.0.1:2379\"]\n\
         [store.tls]\nca_file = \"/etc/deis/ca.pem\"\ncert_file = \"/etc/deis/platform.pem\"\n\
         key_file = \"/etc/deis/platform-key.pem\"\n",
    )
    .expect("valid");
    let StoreConfig::Etcd { tls: Some(tls), .. } = config.store else {
        panic!("etcd with TLS: {:?}", config.store);
    };
    assert_eq!(tls.ca_file, Some("/etc/deis/ca.pem".into()));
    assert_eq!(tls.cert_file, Some("/etc/deis/platform.pem".into()));
    assert_eq!(tls.key_file, Some("/etc/deis/platform-key.pem".into()));
}

#[test]
fn an_unknown_field_is_named() {
    let err = Config::parse("[router]\nlisten = \"0.0.0.0:80\"\nlistn = \"x\"\n")
        .expect_err("a typo must not be ignored")
        .to_string();
    assert!(err.contains("listn"), "{err}");
    let err = Config::parse("[controller]\nlisten = \"not an address\"\n")
        .expect_err("bad value")
        .to_string();
    assert!(err.contains("listen") || err.contains("address"), "{err}");
}

#[test]
fn a_missing_file_says_which() {
    let err = Config::load(std::path::Path::new("/nonexistent/deis.toml")).expect_err("missing");
    assert!(err.to_string().contains("/nonexistent/deis.toml"), "{err}");
}
