//! The store against a real etcd that serves TLS and requires client certificates
//! (`--client-cert-auth`): what a component with the right files, the wrong files or no files
//! meets.

use std::path::PathBuf;

use deis_store::{ConfigStore, EtcdStore, EtcdTls, StoreConfig, StoreError};
use deis_testkit::{Etcd, TestCa};

fn tls(etcd: &Etcd, cert: Option<deis_testkit::CertFiles>) -> EtcdTls {
    EtcdTls {
        ca_file: Some(etcd.ca_file()),
        cert_file: cert.as_ref().map(|c| c.cert_file.clone()),
        key_file: cert.map(|c| c.key_file),
    }
}

/// The first store call's error (the connection is made on first use).
async fn first_call_error(endpoint: String, tls: Option<&EtcdTls>) -> StoreError {
    let store = match EtcdStore::connect_with_tls(&[endpoint], "", tls).await {
        Ok(store) => store,
        Err(e) => return e,
    };
    match store.put("/deis/tls-probe", "x", None).await {
        Ok(_) => panic!("the write was accepted"),
        Err(e) => e,
    }
}

/// The error with its causes, as a component's log line shows it.
fn chain(e: &StoreError) -> String {
    let mut line = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        line.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    line
}

#[tokio::test]
async fn the_right_ca_and_client_certificate_read_and_write() {
    let etcd = Etcd::start_tls().await;
    let ns = format!("/{}", deis_testkit::unique_id());
    let config = StoreConfig::Etcd {
        endpoints: vec![etcd.endpoint()],
        namespace: ns,
        tls: Some(tls(&etcd, Some(etcd.client_cert("controller")))),
    };
    let store = deis_store::connect(&config).await.expect("connect");
    store
        .put("/deis/platform/domain", "example.com", None)
        .await
        .expect("write over TLS");
    let kv = store
        .get("/deis/platform/domain")
        .await
        .expect("read over TLS")
        .expect("the key exists");
    assert_eq!(kv.value, "example.com");
}

#[tokio::test]
async fn without_a_client_certificate_etcd_refuses_and_the_error_says_so() {
    let etcd = Etcd::start_tls().await;
    let err = first_call_error(etcd.endpoint(), Some(&tls(&etcd, None))).await;
    let line = chain(&err);
    assert!(line.contains("TLS"), "{line}");
    assert!(line.contains("client certificate"), "{line}");
}

#[tokio::test]
async fn a_client_certificate_from_another_ca_is_refused() {
    let etcd = Etcd::start_tls().await;
    let other = TestCa::new("another CA");
    let err = first_call_error(
        etcd.endpoint(),
        Some(&tls(&etcd, Some(other.client_cert("intruder")))),
    )
    .await;
    let line = chain(&err);
    assert!(line.contains("TLS"), "{line}");
    assert!(line.contains("client certificate"), "{line}");
}

#[tokio::test]
async fn plain_http_to_a_tls_etcd_is_refused() {
    let etcd = Etcd::start_tls().await;
    let plain = etcd.endpoint().replacen("https://", "http://", 1);
    let err = first_call_error(plain, None).await;
    let line = chain(&err);
    assert!(line.contains("serves TLS"), "{line}");
    assert!(line.contains("https://"), "{line}");
}

#[tokio::test]
async fn a_server_certificate_from_another_ca_is_refused() {
    let etcd = Etcd::start_tls().await;
    let other = TestCa::new("another CA");
    let cert = etcd.client_cert("controller");
    let config = EtcdTls {
        ca_file: Some(other.ca_file().to_owned()),
        cert_file: Some(cert.cert_file),
        key_file: Some(cert.key_file),
    };
    let err = first_call_error(etcd.endpoint(), Some(&config)).await;
    let line = chain(&err);
    assert!(line.contains("TLS"), "{line}");
    assert!(line.contains("server certificate"), "{line}");
}

#[tokio::test]
async fn a_missing_file_is_named() {
    let etcd = Etcd::start_tls().await;
    let cert = etcd.client_cert("controller");
    let missing = PathBuf::from("/nonexistent/etcd/controller-key.pem");
    let config = EtcdTls {
        ca_file: Some(etcd.ca_file()),
        cert_file: Some(cert.cert_file),
        key_file: Some(missing.clone()),
    };
    let err = EtcdStore::connect_with_tls(&[etcd.endpoint()], "", Some(&config))
        .await
        .err()
        .expect("a missing key file is refused before connecting");
    let line = err.to_string();
    assert!(matches!(err, StoreError::Tls(_)), "{err:?}");
    assert!(!err.is_retryable());
    assert!(line.contains(&missing.display().to_string()), "{line}");
    assert!(line.contains("No such file"), "{line}");
}

#[tokio::test]
async fn a_key_of_another_certificate_or_a_scheme_that_does_not_fit_is_refused_before_connecting() {
    let etcd = Etcd::start_tls().await;
    let (a, b) = (etcd.client_cert("a"), etcd.client_cert("b"));
    let swapped = EtcdTls {
        ca_file: Some(etcd.ca_file()),
        cert_file: Some(a.cert_file.clone()),
        key_file: Some(b.key_file),
    };
    let err = EtcdStore::connect_with_tls(&[etcd.endpoint()], "", Some(&swapped))
        .await
        .err()
        .expect("the key of another certificate");
    assert!(err.to_string().contains("does not belong"), "{err}");

    let no_key = EtcdTls {
        key_file: None,
        ..swapped.clone()
    };
    let err = EtcdStore::connect_with_tls(&[etcd.endpoint()], "", Some(&no_key))
        .await
        .err()
        .expect("a certificate without its key");
    assert!(err.to_string().contains("without its key"), "{err}");

    let plain = etcd.endpoint().replacen("https://", "http://", 1);
    let err = EtcdStore::connect_with_tls(&[plain], "", Some(&tls(&etcd, Some(a))))
        .await
        .err()
        .expect("TLS files with an http:// endpoint");
    assert!(matches!(err, StoreError::Tls(_)), "{err:?}");
    assert!(err.to_string().contains("not https://"), "{err}");

    let err = EtcdStore::connect_with_tls(&[etcd.endpoint()], "", None)
        .await
        .err()
        .expect("an https:// endpoint without a CA bundle");
    assert!(err.to_string().contains("no CA bundle"), "{err}");
}
