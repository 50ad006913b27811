//! HTTPS: certificates chosen by SNI from the store, added without a restart, HTTP/2 by ALPN,
//! HSTS and HTTPS enforcement.

use crate::fixture::{certificate, get_path, https_get, raw, router, tls_connect, upstream};
use deis_testkit::eventually;
use std::time::Duration;

#[tokio::test]
async fn sni_picks_the_custom_domain_certificate_else_the_platform_wildcard() {
    let r = router().await;
    let app = upstream("shop").await;
    r.app("shop", &[app]).await;
    r.put("/deis/domains/shop.example.org", "shop").await;
    let (platform_cert, platform_key) = certificate("*.example.com");
    r.put("/deis/router/sslCert", &platform_cert).await;
    r.put("/deis/router/sslKey", &platform_key).await;

    // The platform's wildcard certificate serves the app's platform host, over HTTP/1.1.
    let seen = eventually(
        Duration::from_secs(10),
        "the platform certificate is served",
        || async { https_get(r.https, "shop.example.com", &platform_cert, &["http/1.1"]).await },
    )
    .await;
    assert_eq!(seen.status, 200);
    assert_eq!(seen.version, http::Version::HTTP_11);
    assert!(
        seen.body.starts_with("shop 127.0.0.1 https true"),
        "{}",
        seen.body
    );

    // Until the custom domain has a certificate of its own, the platform's answers for it.
    assert!(
        https_get(r.https, "shop.example.org", &platform_cert, &["http/1.1"])
            .await
            .is_err(),
        "the wildcard does not cover shop.example.org, so the client refuses it"
    );

    // Adding the domain's certificate takes effect on the next handshake, without a restart.
    let (shop_cert, shop_key) = certificate("shop.example.org");
    r.put("/deis/certs/shop.example.org/cert", &shop_cert).await;
    r.put("/deis/certs/shop.example.org/key", &shop_key).await;
    let seen = eventually(
        Duration::from_secs(10),
        "the custom domain's certificate is served",
        || async { https_get(r.https, "shop.example.org", &shop_cert, &["h2", "http/1.1"]).await },
    )
    .await;
    assert_eq!(seen.status, 200);
    assert_eq!(seen.version, http::Version::HTTP_2, "ALPN chose HTTP/2");
    assert!(
        seen.body.starts_with("shop 127.0.0.1 https"),
        "{}",
        seen.body
    );

    // The platform host still gets the wildcard.
    https_get(r.https, "shop.example.com", &platform_cert, &["h2"])
        .await
        .expect("the wildcard still serves the platform host");
}

#[tokio::test]
async fn hsts_and_https_enforcement() {
    let r = router().await;
    let app = upstream("secure").await;
    r.app("secure", &[app]).await;
    let (cert, key) = certificate("*.example.com");
    r.put("/deis/router/sslCert", &cert).await;
    r.put("/deis/router/sslKey", &key).await;
    r.put("/deis/router/hsts/enabled", "true").await;
    r.put("/deis/router/hsts/maxAge", "600").await;

    // HSTS enables enforcement: plain HTTP is redirected to HTTPS with the same path.
    let location = eventually(Duration::from_secs(10), "a redirect to HTTPS", || async {
        let (status, text) = raw(
            r.http,
            "GET /cart?item=1 HTTP/1.1\r\nHost: secure.example.com\r\nConnection: close\r\n\r\n",
        )
        .await;
        match (
            status,
            text.lines()
                .find(|l| l.to_ascii_lowercase().starts_with("location:")),
        ) {
            (301, Some(line)) => Ok(line.to_owned()),
            _ => Err(text),
        }
    })
    .await;
    assert!(
        location.ends_with("https://secure.example.com/cart?item=1"),
        "{location}"
    );
    let seen = https_get(r.https, "secure.example.com", &cert, &["http/1.1"])
        .await
        .expect("https");
    assert_eq!(seen.status, 200);
    assert_eq!(
        seen.headers
            .get("strict-transport-security")
            .and_then(|v| v.to_str().ok()),
        Some("max-age=600")
    );

    // enforceHTTPS=false wins over HSTS; a TLS-terminating balancer's X-Forwarded-Proto counts.
    r.put("/deis/router/enforceHTTPS", "false").await;
    eventually(
        Duration::from_secs(10),
        "plain HTTP served again",
        || async {
            match get_path(r.http, "secure.example.com", "/").await {
                (200, body) if body.contains(" http ") => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    let forwarded = "GET / HTTP/1.1\r\nHost: secure.example.com\r\nX-Forwarded-Proto: http, https\r\nConnection: close\r\n\r\n";
    let (status, text) = raw(r.http, forwarded).await;
    assert_eq!(status, 200);
    assert!(
        text.contains("secure 127.0.0.1 http "),
        "a client cannot claim HTTPS: {text}"
    );
    r.put("/deis/router/proxyRealIpCidr", "127.0.0.0/8").await;
    eventually(
        Duration::from_secs(10),
        "the balancer's word to count",
        || async {
            let (status, text) = raw(r.http, forwarded).await;
            if status == 200 && text.contains("secure 127.0.0.1 https") {
                Ok(())
            } else {
                Err(text)
            }
        },
    )
    .await;
}

#[tokio::test]
async fn aes_128_gcm_is_chosen_first_and_the_others_still_serve() {
    use rustls::CipherSuite::{TLS13_AES_128_GCM_SHA256, TLS13_AES_256_GCM_SHA384};
    let r = router().await;
    let (cert, key) = certificate("*.example.com");
    r.put("/deis/router/sslCert", &cert).await;
    r.put("/deis/router/sslKey", &key).await;
    // What a client prefers first (AES-256-GCM, as OpenSSL's clients do), and only that.
    let offering = |only_aes_256: bool| {
        let mut provider = rustls::crypto::ring::default_provider();
        provider
            .cipher_suites
            .sort_by_key(|s| s.suite() != TLS13_AES_256_GCM_SHA384);
        if only_aes_256 {
            provider.cipher_suites.truncate(1);
        }
        provider
    };
    let (https, trusted) = (r.https, cert.as_str());
    let chosen = |only_aes_256: bool| async move {
        let tls = tls_connect(https, "a.example.com", trusted, &[], offering(only_aes_256)).await?;
        let suite = tls.get_ref().1.negotiated_cipher_suite();
        Ok::<_, String>(suite.map(|s| s.suite()))
    };
    let first = eventually(Duration::from_secs(10), "a handshake", || chosen(false)).await;
    assert_eq!(first, Some(TLS13_AES_128_GCM_SHA256));
    assert_eq!(chosen(true).await, Ok(Some(TLS13_AES_256_GCM_SHA384)));
}
