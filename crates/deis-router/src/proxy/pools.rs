//! A worker's pools of connections to backends: one for apps, one for the controller, each made
//! with the connect timeout the current settings give it (`controller/timeout/connect` for the
//! controller) and made again, empty, when that setting changes.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::{Client, ResponseFuture};
use hyper_util::rt::TokioExecutor;

use crate::settings::Settings;

/// The two pools of one worker.
pub(super) struct Pools {
    apps: Mutex<Pool>,
    controller: Mutex<Pool>,
}

/// A client whose connector gives up connecting after `connect_timeout`.
struct Pool {
    connect_timeout: Duration,
    client: Client<HttpConnector, Body>,
}

impl Pools {
    /// Pools with the connect timeouts of `settings`.
    pub(super) fn new(settings: &Settings) -> Pools {
        let pool = |controller| Mutex::new(Pool::new(settings.timeouts(controller).connect));
        Pools {
            apps: pool(false),
            controller: pool(true),
        }
    }

    /// Sends `request` through the controller's pool or the apps', connecting within
    /// `connect_timeout`.
    pub(super) fn request(
        &self,
        controller: bool,
        connect_timeout: Duration,
        request: Request<Body>,
    ) -> ResponseFuture {
        let mut pool = lock(if controller {
            &self.controller
        } else {
            &self.apps
        });
        if pool.connect_timeout != connect_timeout {
            *pool = Pool::new(connect_timeout);
        }
        pool.client.request(request)
    }
}

impl Pool {
    fn new(connect_timeout: Duration) -> Pool {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(connect_timeout));
        Pool {
            connect_timeout,
            client: Client::builder(TokioExecutor::new())
                .http1_writev(false)
                .build(connector),
        }
    }
}

fn lock(pool: &Mutex<Pool>) -> MutexGuard<'_, Pool> {
    pool.lock().unwrap_or_else(PoisonError::into_inner)
}
