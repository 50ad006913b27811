//! A response body read from a cache file or from a download's growing file, in bounded
//! chunks on the blocking pool. While a download runs, its last byte is held back until the
//! blob passed its digest; a failed download cuts the stream.

use std::os::unix::fs::FileExt;
use std::sync::Arc;

use axum::body::Body;
use bytes::Bytes;
use tokio::sync::watch;

use super::flight::Recent;
use super::{Flight, Progress};
use crate::metrics::{Metrics, Source};

/// The most read from the file at once.
const READ_CHUNK: u64 = 1 << 20;

/// Bytes `start..end` of a file, as a streamed body.
pub(crate) struct FileBody {
    file: Arc<std::fs::File>,
    pos: u64,
    end: u64,
    progress: Option<watch::Receiver<Progress>>,
    recent: Option<Arc<std::sync::Mutex<Recent>>>,
    metrics: Arc<Metrics>,
    source: Source,
    finished: bool,
}

impl FileBody {
    /// Bytes `range` of a complete file.
    pub(crate) fn new(
        file: Arc<std::fs::File>,
        range: std::ops::Range<u64>,
        metrics: Arc<Metrics>,
        source: Source,
    ) -> FileBody {
        FileBody {
            file,
            pos: range.start,
            end: range.end,
            progress: None,
            recent: None,
            metrics,
            source,
            finished: false,
        }
    }

    /// Bytes `range` of a download's file as it grows (`range.end` may be `u64::MAX` while
    /// the size is unknown).
    pub(crate) fn following(
        flight: Flight,
        range: std::ops::Range<u64>,
        metrics: Arc<Metrics>,
    ) -> FileBody {
        FileBody {
            progress: Some(flight.progress),
            recent: Some(flight.recent),
            ..FileBody::new(flight.file, range, metrics, Source::Upstream)
        }
    }

    pub(crate) fn into_body(self) -> Body {
        Body::from_stream(futures_util::stream::unfold(self, FileBody::next))
    }

    async fn next(mut self) -> Option<(std::io::Result<Bytes>, FileBody)> {
        if self.finished {
            return None;
        }
        loop {
            let available = match self.available() {
                Ok(n) => n,
                Err(e) => {
                    self.finished = true;
                    return Some((Err(e), self));
                }
            };
            if self.pos >= self.end {
                return None;
            }
            if self.pos < available.min(self.end) {
                let len = (available.min(self.end) - self.pos).min(READ_CHUNK);
                let read = self.read(len).await;
                self.finished = read.is_err();
                return Some((read, self));
            }
            let changed = match &mut self.progress {
                Some(progress) => progress.changed().await,
                None => Ok(()),
            };
            if changed.is_err() {
                self.finished = true;
                return Some((Err(std::io::Error::other("the download stopped")), self));
            }
        }
    }

    /// How many bytes of the file may be sent now.
    fn available(&mut self) -> std::io::Result<u64> {
        let Some(progress) = &mut self.progress else {
            return Ok(self.end);
        };
        let now = *progress.borrow_and_update();
        Ok(match now {
            Progress::Connecting => 0,
            // The last byte waits for the digest check.
            Progress::Receiving { written, .. } => written.saturating_sub(1),
            Progress::Done { size } => {
                self.end = self.end.min(size);
                size
            }
            Progress::Failed(failure) => {
                return Err(std::io::Error::other(format!(
                    "the blob's download failed: {failure:?}"
                )));
            }
        })
    }

    async fn read(&mut self, len: u64) -> std::io::Result<Bytes> {
        let held = self.recent.as_ref().and_then(|recent| {
            let recent = recent.lock().unwrap_or_else(|e| e.into_inner());
            recent.slice(self.pos, len)
        });
        if let Some(bytes) = held {
            self.pos += bytes.len() as u64;
            self.metrics.served(self.source, bytes.len() as u64);
            return Ok(bytes);
        }
        let file = self.file.clone();
        let pos = self.pos;
        let bytes = tokio::task::spawn_blocking(move || {
            let mut buf = vec![0u8; usize::try_from(len).unwrap_or(0)];
            file.read_exact_at(&mut buf, pos).map(|()| Bytes::from(buf))
        })
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)))?;
        self.pos += len;
        self.metrics.served(self.source, len);
        Ok(bytes)
    }
}
