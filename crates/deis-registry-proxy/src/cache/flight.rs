//! Single-flight downloads: the first request for an uncached blob starts one download from
//! the registry into a temporary file; every request for the same blob (and repository) while
//! it runs reads that file as it grows (its latest 8 MiB from memory, so readers that keep up
//! do not read the file back). The blob's SHA-256 is checked before it is filed in the cache,
//! and readers get the last byte only once it passed: a blob that does not match its digest is
//! never served whole nor kept, and every reader's stream is cut.

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, StatusCode, header};
use http_body_util::BodyExt;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use super::{Cache, Object, blocking};
use crate::metrics::{Kind, Stage};
use crate::names::{Repository, Sha256Hex};
use crate::upstream::Upstream;

/// How long the registry may send nothing in the middle of a blob.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Bytes gathered before they are handed to the writer.
const WRITE_CHUNK: usize = 256 << 10;
/// The most of a download's latest bytes kept in memory for its readers.
const RECENT_BYTES: usize = 8 << 20;

/// Downloads in progress, by repository and digest.
pub(super) type Flights = HashMap<(Repository, Sha256Hex), Flight>;

/// How a download is going; every reader watches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Progress {
    /// Asking the registry.
    Connecting,
    /// Bytes arriving: `written` of them are in the file.
    Receiving { total: Option<u64>, written: u64 },
    /// All `size` bytes are in the file and matched the digest.
    Done { size: u64 },
    /// The download ended without a verified blob.
    Failed(Failure),
}

/// Why a download ended without a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The registry does not have it (in that repository).
    NotFound,
    /// The registry cannot be reached.
    Unreachable,
    /// The registry answered with another status.
    Refused(StatusCode),
    /// The bytes did not match the digest.
    Mismatch,
    /// The transfer or the file broke off.
    Broken,
}

/// One download: its file (readers use positioned reads, so one handle serves all), its
/// progress, and its latest bytes in memory.
#[derive(Debug, Clone)]
pub(crate) struct Flight {
    pub(crate) file: Arc<std::fs::File>,
    pub(crate) progress: watch::Receiver<Progress>,
    pub(crate) recent: Arc<Mutex<Recent>>,
}

/// The latest bytes written to a download's file (at most [`RECENT_BYTES`]), so readers that
/// keep up take them from memory instead of reading the file back.
#[derive(Debug, Default)]
pub(crate) struct Recent {
    /// The file offset of the first chunk.
    start: u64,
    chunks: VecDeque<Bytes>,
    bytes: usize,
}

impl Recent {
    fn push(&mut self, batch: &[Bytes]) {
        for chunk in batch {
            self.bytes += chunk.len();
            self.chunks.push_back(chunk.clone());
        }
        while self.bytes > RECENT_BYTES {
            let Some(oldest) = self.chunks.pop_front() else {
                break;
            };
            self.bytes -= oldest.len();
            self.start += oldest.len() as u64;
        }
    }

    /// Up to `len` bytes from offset `pos`, if still held (without copying).
    pub(crate) fn slice(&self, pos: u64, len: u64) -> Option<Bytes> {
        let mut offset = self.start;
        if pos < offset {
            return None;
        }
        for chunk in &self.chunks {
            let end = offset + chunk.len() as u64;
            if pos < end {
                let from = usize::try_from(pos - offset).ok()?;
                let take = usize::try_from(len.min(end - pos)).ok()?;
                return Some(chunk.slice(from..from + take));
            }
            offset = end;
        }
        None
    }
}

/// What joining a download found.
pub(crate) enum Joined {
    /// The blob got cached meanwhile: read it from the cache.
    Cached,
    /// A download to read from.
    Flight(Flight),
}

/// What a download needs from the proxy.
pub(crate) struct Downloads {
    pub(crate) upstream: Arc<Upstream>,
    pub(crate) tasks: TaskTracker,
    pub(crate) stop: CancellationToken,
}

impl Cache {
    /// Joins the download of `hex` for `repository`, starting one if none runs.
    pub(crate) fn join(
        self: &Arc<Self>,
        repository: &Repository,
        hex: &Sha256Hex,
        downloads: &Downloads,
    ) -> std::io::Result<Joined> {
        let key = (repository.clone(), hex.clone());
        let mut flights = self.flights.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(flight) = flights.get(&key) {
            return Ok(Joined::Flight(flight.clone()));
        }
        if self.has_blob(hex) {
            return Ok(Joined::Cached);
        }
        let temp = self.temp_path();
        let writer = std::fs::File::options()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        let reader = std::fs::File::open(&temp)?;
        let (tx, rx) = watch::channel(Progress::Connecting);
        let flight = Flight {
            file: Arc::new(reader),
            progress: rx,
            recent: Arc::default(),
        };
        flights.insert(key, flight.clone());
        drop(flights);
        self.metrics.fetched(Kind::Blob);
        let span =
            tracing::info_span!("download", repository = %repository, digest = %hex.digest());
        let task = Download {
            cache: self.clone(),
            upstream: downloads.upstream.clone(),
            repository: repository.clone(),
            hex: hex.clone(),
            temp,
            progress: Arc::new(tx),
            recent: flight.recent.clone(),
        };
        downloads
            .tasks
            .spawn(task.run(writer, downloads.stop.clone()).instrument(span));
        Ok(Joined::Flight(flight))
    }

    fn reserve(&self, bytes: u64) -> Option<Reservation<'_>> {
        let evicted = self.lock_index().reserve(bytes)?;
        self.remove_files(&evicted);
        Some(Reservation { cache: self, bytes })
    }
}

/// Cache space set aside for a download, given back when dropped unless filed.
struct Reservation<'a> {
    cache: &'a Cache,
    bytes: u64,
}

impl Reservation<'_> {
    fn take(mut self) -> u64 {
        std::mem::take(&mut self.bytes)
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if self.bytes > 0 {
            self.cache.lock_index().release(self.bytes);
        }
    }
}

struct Download {
    cache: Arc<Cache>,
    upstream: Arc<Upstream>,
    repository: Repository,
    hex: Sha256Hex,
    temp: PathBuf,
    progress: Arc<watch::Sender<Progress>>,
    recent: Arc<Mutex<Recent>>,
}

impl Download {
    async fn run(self, writer: std::fs::File, stop: CancellationToken) {
        let outcome = tokio::select! {
            outcome = self.fetch(writer) => outcome,
            _ = stop.cancelled() => Err(Failure::Broken),
        };
        let end = match outcome {
            Ok(size) => {
                tracing::debug!(size, "Blob downloaded and verified");
                Progress::Done { size }
            }
            Err(failure) => {
                tracing::debug!(?failure, "Blob download failed");
                let _ = tokio::fs::remove_file(&self.temp).await;
                Progress::Failed(failure)
            }
        };
        let key = (self.repository.clone(), self.hex.clone());
        self.cache
            .flights
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key);
        self.progress.send_replace(end);
    }

    /// Downloads into the file, verifies, files it in the cache; the blob's size.
    async fn fetch(&self, writer: std::fs::File) -> Result<u64, Failure> {
        let path = format!("/v2/{}/blobs/{}", self.repository, self.hex.digest());
        let response = self
            .upstream
            .get_following(&path, &HeaderMap::new())
            .await
            .map_err(|e| {
                tracing::warn!(error = %crate::error::Chain(&e), "Cannot fetch a blob");
                Failure::Unreachable
            })?;
        match response.status() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return Err(Failure::NotFound),
            status => return Err(Failure::Refused(status)),
        }
        let total = response
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        let reservation = total.and_then(|n| self.cache.reserve(n));
        self.progress
            .send_replace(Progress::Receiving { total, written: 0 });
        let (chunks, receiver) = mpsc::channel(16);
        let progress = self.progress.clone();
        let recent = self.recent.clone();
        let sums = super::Sums::new(self.cache.seed, true);
        let writing = tokio::task::spawn_blocking(move || {
            write_chunks(writer, sums, receiver, &recent, &progress)
        });
        let mut body = response.into_body();
        // Frames are gathered (not copied) until there is enough to hand to the writer.
        let mut pending: Vec<Bytes> = Vec::new();
        let mut pending_bytes = 0;
        let received: Result<(), Failure> = async {
            loop {
                let frame = tokio::time::timeout(IDLE_TIMEOUT, body.frame())
                    .await
                    .map_err(|_| Failure::Broken)?;
                let data = match frame {
                    None => break,
                    Some(Ok(frame)) => frame.into_data().unwrap_or_default(),
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "The registry's blob broke off");
                        return Err(Failure::Broken);
                    }
                };
                pending_bytes += data.len();
                pending.push(data);
                if pending_bytes >= WRITE_CHUNK {
                    pending_bytes = 0;
                    let batch = std::mem::take(&mut pending);
                    chunks.send(batch).await.map_err(|_| Failure::Broken)?;
                }
            }
            if !pending.is_empty() {
                chunks.send(pending).await.map_err(|_| Failure::Broken)?;
            }
            Ok(())
        }
        .await;
        drop(chunks);
        let written = writing.await.map_err(|_| Failure::Broken)?;
        received?;
        let sums = written
            .map_err(|e| {
                tracing::warn!(error = %e, "Cannot write a downloaded blob");
                Failure::Broken
            })?
            .finish();
        let size = sums.size;
        if total.is_some_and(|total| total != size) {
            return Err(Failure::Broken);
        }
        if sums.sha256.as_ref() != Some(&self.hex) {
            tracing::warn!("The registry sent a blob that does not match its digest");
            self.cache.metrics.verification_failed(Stage::Download);
            return Err(Failure::Mismatch);
        }
        let reserved = reservation.map_or(0, Reservation::take);
        let (cache, temp, object) = (
            self.cache.clone(),
            self.temp.clone(),
            Object::Blob(self.hex.clone()),
        );
        let check = Some(sums.fast);
        if let Err(e) = blocking(move || cache.keep(&temp, object, size, reserved, check)).await {
            tracing::warn!(error = %e, "Cannot file a blob in the cache");
        }
        self.cache.link(&self.repository, &self.hex).await;
        Ok(size)
    }
}

/// Writes and checksums what arrives, publishing how much is in the file.
fn write_chunks(
    mut file: std::fs::File,
    mut sums: super::Sums,
    mut batches: mpsc::Receiver<Vec<Bytes>>,
    recent: &Mutex<Recent>,
    progress: &watch::Sender<Progress>,
) -> std::io::Result<super::Sums> {
    let mut written = 0;
    while let Some(batch) = batches.blocking_recv() {
        for chunk in &batch {
            file.write_all(chunk)?;
            written += chunk.len() as u64;
        }
        recent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(&batch);
        // Readers go on while the batch is hashed; the last byte waits for the verdict.
        progress.send_modify(|p| {
            if let Progress::Receiving { written: w, .. } = p {
                *w = written;
            }
        });
        for chunk in &batch {
            sums.update(chunk);
        }
    }
    Ok(sums)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_bytes_are_found_by_file_offset_within_their_bound() {
        const MIB: u64 = 1 << 20;
        let chunk = |fill: u8| Bytes::from(vec![fill; 4 << 20]);
        let mut recent = Recent::default();
        recent.push(&[chunk(1), chunk(2)]);
        // Past 8 MiB the oldest chunk goes.
        recent.push(&[chunk(3)]);
        for (pos, len, expect) in [
            (0, 10, None),
            (4 * MIB, 10, Some((2, 10))),
            (8 * MIB - 2, 10, Some((2, 2))),
            (8 * MIB, 5, Some((3, 5))),
            (12 * MIB, 10, None),
        ] {
            let got = recent.slice(pos, len).map(|b| {
                assert!(b.iter().all(|&x| x == b[0]), "one chunk's bytes");
                (b[0], b.len())
            });
            assert_eq!(got, expect, "{pos}+{len}");
        }
    }
}
