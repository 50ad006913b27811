//! domains:add (a request with that Host reaches the app) and certs:add (HTTPS with SNI).

use std::time::Duration;

use super::Day;
use crate::setup::Setup;
use crate::support::{certificate, http, https_get, path_str};

pub(crate) async fn custom_domain_and_certificate(day: &Day<'_, impl Setup>) {
    let domain = "www.shop.test";
    day.deis(&["domains:add", domain]).await;
    assert!(day.deis(&["domains"]).await.contains(domain));
    deis_testkit::eventually(Duration::from_secs(30), "the custom domain", || async {
        match http(day.setup.router(), "GET", domain, "/", None, "").await {
            (200, body) if body.starts_with("bonjour ") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;

    let (cert, key) = certificate(domain);
    let cert_file = day.setup.dir().join("shop.crt");
    let key_file = day.setup.dir().join("shop.key");
    std::fs::write(&cert_file, &cert).expect("certificate file");
    std::fs::write(&key_file, &key).expect("key file");
    day.deis(&["certs:add", &path_str(&cert_file), &path_str(&key_file)])
        .await;
    let certs = day.deis(&["certs"]).await;
    assert!(certs.contains(domain), "{certs}");
    let https = day.setup.https();
    deis_testkit::eventually(
        Duration::from_secs(30),
        "HTTPS with the certificate",
        || async {
            match https_get(https, domain, &cert).await {
                Ok((200, body)) if body.starts_with("bonjour ") => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
}
