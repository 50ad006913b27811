//! The gRPC `LogService` (`proto/deis/logger/v1`): shippers push batches, the controller queries
//! and follows.

use std::pin::Pin;

use deis_proto::logger::v1 as pb;
use deis_proto::logger::v1::log_service_server::LogService;
use futures_util::Stream;
use tonic::{Request, Response, Status};

use crate::backend::{Backend, Next};
use crate::entry::Entry;

/// The service over the stored logs.
pub(crate) struct Service {
    pub(crate) logs: Backend,
    pub(crate) gate: std::sync::Arc<crate::gate::Gate>,
}

fn to_pb(e: Entry) -> pb::LogEntry {
    pb::LogEntry {
        app: e.app,
        source: e.source,
        time: Some(prost_types::Timestamp {
            seconds: e.time.div_euclid(1_000_000),
            nanos: i32::try_from(e.time.rem_euclid(1_000_000) * 1000).unwrap_or(0),
        }),
        message: e.message,
        offset: e.offset,
    }
}

fn from_pb(e: pb::LogEntry, now: i64) -> Entry {
    let time = e
        .time
        .map(|t| t.seconds.saturating_mul(1_000_000) + i64::from(t.nanos / 1000))
        .unwrap_or(now);
    // On a push, `offset` is the entry's position in its source (see `Logs::push`).
    Entry {
        app: e.app,
        source: e.source,
        time,
        message: e.message,
        offset: e.offset,
    }
}

/// Microseconds since the epoch, now.
pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

type EntryStream = Pin<Box<dyn Stream<Item = Result<pb::LogEntry, Status>> + Send>>;

#[tonic::async_trait]
impl LogService for Service {
    async fn push(
        &self,
        request: Request<pb::PushRequest>,
    ) -> Result<Response<pb::PushResponse>, Status> {
        let r = request.into_inner();
        let now = now();
        let entries = r.entries.into_iter().map(|e| from_pb(e, now)).collect();
        // Pushes present the platform's secret: its shippers and the controller.
        let entries = self.gate.known(entries, true).await;
        if entries.is_empty() {
            return Ok(Response::new(pb::PushResponse { stored: 0 }));
        }
        let stored = self.logs.push(&r.shipper, r.sequence, entries).await?;
        Ok(Response::new(pb::PushResponse { stored }))
    }

    async fn query(
        &self,
        request: Request<pb::QueryRequest>,
    ) -> Result<Response<pb::QueryResponse>, Status> {
        let r = request.into_inner();
        let lines = if r.lines == 0 { 100 } else { r.lines as usize };
        let entries = self
            .logs
            .tail(&r.app, lines)
            .await?
            .into_iter()
            .map(to_pb)
            .collect();
        Ok(Response::new(pb::QueryResponse { entries }))
    }

    type FollowStream = EntryStream;

    async fn follow(
        &self,
        request: Request<pb::FollowRequest>,
    ) -> Result<Response<Self::FollowStream>, Status> {
        let r = request.into_inner();
        let (tail, mut live) = self.logs.follow(&r.app, r.lines as usize).await?;
        let app = r.app;
        let stream = async_stream(move |tx| async move {
            for e in tail {
                if tx.send(Ok(to_pb(e))).await.is_err() {
                    return;
                }
            }
            loop {
                // A follower that went away (Ctrl-C) ends this task at once, not at the next line.
                let next = tokio::select! {
                    _ = tx.closed() => return,
                    next = live.next() => next,
                };
                let next = match next {
                    Next::Line(e) => to_pb(e),
                    // Never silently: a follower too slow for the app is told what it missed.
                    Next::Skipped(n) => to_pb(Entry {
                        app: app.clone(),
                        source: "deis-logger".to_owned(),
                        time: now(),
                        message: format!(
                            "{n} lines skipped: this follower read too slowly (deis logs shows them)"
                        ),
                        offset: 0,
                    }),
                    Next::End => return,
                };
                if tx.send(Ok(next)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(stream))
    }

    async fn delete(
        &self,
        request: Request<pb::DeleteRequest>,
    ) -> Result<Response<pb::DeleteResponse>, Status> {
        self.logs.delete(&request.into_inner().app).await?;
        Ok(Response::new(pb::DeleteResponse {}))
    }
}

/// A stream fed by a task through a small channel.
fn async_stream<F, Fut>(body: F) -> EntryStream
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<pb::LogEntry, Status>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(256);
    tokio::spawn(body(tx));
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}
