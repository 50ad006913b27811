//! The blob and manifest cache on local disk, named by content digest. Layout under the cache
//! directory:
//!
//! - `blobs/<hex>`: a blob's bytes; `manifests/<hex>`: a manifest's media type, a newline, its
//!   bytes. Every serve checks the file before a byte is sent, and a file whose bytes changed is
//!   removed and fetched again, never served. Manifests are checked against their SHA-256 each
//!   time. A blob is checked against its SHA-256 as it is downloaded, or the first time this
//!   process serves it; that pass also computes an XXH3-128 checksum (seeded at random per
//!   process, kept in memory only), which later serves re-verify at a tenth of the cost.
//! - `repos/<repository>/_links/<hex>`: the registry said `<repository>` holds that digest, so
//!   the cache may answer for that repository without asking it (`_` cannot start a name
//!   component, so these never clash with a repository's own path).
//! - `repos/<repository>/_tags/<tag>`: the manifest digest the tag had at its last check,
//!   used only while the registry cannot be reached.
//! - `tmp/`: downloads in progress, emptied at start.
//!
//! Blobs and manifests count against `cache_max_bytes` (downloads reserve their size before
//! they start); the least recently used go first. The order of use survives restarts as the
//! files' modification times, which each hit updates; the index is rebuilt from them.

mod flight;
mod index;
mod read;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use bytes::Bytes;
use sha2::Digest as _;

pub(crate) use flight::{Downloads, Failure, Flight, Joined, Progress};
use index::{Index, Object};
pub(crate) use read::FileBody;

use crate::metrics::{Metrics, Stage};
use crate::names::{Repository, Sha256Hex, Tag};

/// How long a download's file may stay untouched before a starting proxy removes it.
const ABANDONED: std::time::Duration = std::time::Duration::from_secs(600);
/// The buffer files are hashed through.
const HASH_BUFFER: usize = 1 << 20;

/// A manifest as stored and served.
#[derive(Debug, Clone)]
pub(crate) struct Manifest {
    pub(crate) media_type: String,
    pub(crate) bytes: Bytes,
    pub(crate) hex: Sha256Hex,
}

/// The cache. Its methods do their file work on the blocking pool.
pub(crate) struct Cache {
    dir: PathBuf,
    index: Mutex<Index>,
    flights: Mutex<flight::Flights>,
    metrics: Arc<Metrics>,
    next_temp: AtomicU64,
    /// The seed of the fast checksums.
    seed: u64,
}

impl Cache {
    /// Opens (or creates) the cache at `dir`, rebuilding its index from the files there.
    pub(crate) async fn open(
        dir: PathBuf,
        max_bytes: u64,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Arc<Cache>> {
        let cache = Arc::new(Cache {
            dir,
            index: Mutex::new(Index::new(max_bytes)),
            flights: Mutex::new(flight::Flights::default()),
            metrics,
            next_temp: AtomicU64::new(0),
            seed: {
                use std::hash::BuildHasher;
                std::collections::hash_map::RandomState::new().hash_one(std::process::id())
            },
        });
        let rebuilding = cache.clone();
        blocking(move || rebuilding.rebuild()).await?;
        Ok(cache)
    }

    fn rebuild(&self) -> std::io::Result<()> {
        for sub in ["tmp", "blobs", "manifests", "repos"] {
            std::fs::create_dir_all(self.dir.join(sub))?;
        }
        self.remove_abandoned_downloads()?;
        let mut found = Vec::new();
        for (sub, make) in [
            ("blobs", Object::Blob as fn(Sha256Hex) -> Object),
            ("manifests", Object::Manifest),
        ] {
            for entry in std::fs::read_dir(self.dir.join(sub))?.flatten() {
                // A file another proxy on this directory removed meanwhile is skipped.
                let Ok(meta) = entry.metadata() else {
                    continue;
                };
                let name = entry.file_name();
                match name.to_str().and_then(Sha256Hex::parse) {
                    Some(hex) if meta.is_file() => {
                        let used = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                        found.push((used, make(hex), meta.len()));
                    }
                    _ => {
                        tracing::warn!(file = %entry.path().display(), "Not a cache file; left alone")
                    }
                }
            }
        }
        found.sort_by_key(|(used, _, _)| *used);
        let count = found.len();
        for (_, object, size) in found {
            let evicted = self.lock_index().insert(object.clone(), size, None);
            match evicted {
                Some(evicted) => self.remove_files(&evicted),
                None => self.remove_files(&[object]),
            }
        }
        let used = self.lock_index().used();
        self.metrics.set_cache_size(used);
        tracing::info!(cache.dir = %self.dir.display(), cache.objects = count, cache.bytes = used, "Cache index rebuilt");
        Ok(())
    }

    /// Removes downloads a stopped proxy left (`*.part` untouched for [`ABANDONED`]; another
    /// proxy on the same directory may be writing newer ones).
    fn remove_abandoned_downloads(&self) -> std::io::Result<()> {
        for entry in std::fs::read_dir(self.dir.join("tmp"))?.flatten() {
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            let idle = meta
                .modified()
                .ok()
                .and_then(|m| m.elapsed().ok())
                .unwrap_or_default();
            let ours = entry.file_name().to_string_lossy().ends_with(".part");
            if ours && idle >= ABANDONED {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(())
    }

    fn lock_index(&self) -> MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn path(&self, object: &Object) -> PathBuf {
        match object {
            Object::Blob(hex) => self.dir.join("blobs").join(hex.as_str()),
            Object::Manifest(hex) => self.dir.join("manifests").join(hex.as_str()),
        }
    }

    fn repo_dir(&self, repository: &Repository) -> PathBuf {
        self.dir.join("repos").join(repository.as_str())
    }

    fn link_path(&self, repository: &Repository, hex: &Sha256Hex) -> PathBuf {
        self.repo_dir(repository).join("_links").join(hex.as_str())
    }

    fn tag_path(&self, repository: &Repository, tag: &Tag) -> PathBuf {
        self.repo_dir(repository).join("_tags").join(tag.as_str())
    }

    fn temp_path(&self) -> PathBuf {
        let n = self.next_temp.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        self.dir.join("tmp").join(format!("{pid}-{n}.part"))
    }

    /// Removes evicted objects' files and counts them.
    fn remove_files(&self, objects: &[Object]) {
        for object in objects {
            if let Err(e) = std::fs::remove_file(self.path(object)) {
                tracing::warn!(error = %e, object = ?object, "Cannot remove an evicted file");
            }
        }
        if !objects.is_empty() {
            self.metrics.evicted(objects.len() as u64);
            self.metrics.set_cache_size(self.lock_index().used());
        }
    }

    /// Files `temp` as `object` (with the fast checksum of its verified content, if known),
    /// evicting to make room; removes it when it cannot be kept.
    fn keep(
        &self,
        temp: &Path,
        object: Object,
        size: u64,
        reserved: u64,
        check: Option<u128>,
    ) -> std::io::Result<()> {
        let evicted = {
            let mut index = self.lock_index();
            index.release(reserved);
            index.insert(object.clone(), size, check)
        };
        let Some(evicted) = evicted else {
            return std::fs::remove_file(temp);
        };
        self.remove_files(&evicted);
        if let Err(e) = std::fs::rename(temp, self.path(&object)) {
            self.lock_index().remove(&object);
            return Err(e);
        }
        self.metrics.set_cache_size(self.lock_index().used());
        Ok(())
    }

    /// Forgets `object` whose file failed its digest, and removes the file.
    fn discard_corrupt(&self, object: &Object) {
        tracing::warn!(object = ?object, "A cached file does not match its digest; removed");
        self.metrics.verification_failed(Stage::Disk);
        self.lock_index().remove(object);
        let _ = std::fs::remove_file(self.path(object));
        self.metrics.set_cache_size(self.lock_index().used());
    }

    /// Whether the blob is cached (not yet verified).
    pub(crate) fn has_blob(&self, hex: &Sha256Hex) -> bool {
        self.lock_index().contains(&Object::Blob(hex.clone()))
    }

    /// The cached blob's size, without reading it (for `HEAD`).
    pub(crate) fn blob_size(&self, hex: &Sha256Hex) -> Option<u64> {
        self.lock_index().touch(&Object::Blob(hex.clone()))
    }

    /// The cached blob opened, after checking its bytes against its digest; `None` when it is
    /// not cached or failed the check (then it is gone).
    pub(crate) async fn open_blob(
        self: &Arc<Self>,
        hex: &Sha256Hex,
    ) -> std::io::Result<Option<(std::fs::File, u64)>> {
        let cache = self.clone();
        let object = Object::Blob(hex.clone());
        let hex = hex.clone();
        blocking(move || {
            let path = cache.path(&object);
            let mut file = match std::fs::File::open(&path) {
                Ok(file) => file,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    cache.lock_index().remove(&object);
                    return Ok(None);
                }
                Err(e) => return Err(e),
            };
            let known = cache.lock_index().check(&object);
            let sums = checksums(&mut file, cache.seed, known.is_none())?;
            let intact = match known {
                Some(check) => sums.fast == check,
                None => sums.sha256.as_ref() == Some(&hex),
            };
            if !intact {
                cache.discard_corrupt(&object);
                return Ok(None);
            }
            if known.is_none() {
                cache.lock_index().set_check(&object, sums.fast);
            }
            cache.lock_index().touch(&object);
            // The order of use outlives restarts as the modification time.
            let _ = file.set_modified(SystemTime::now());
            Ok(Some((file, sums.size)))
        })
        .await
    }

    /// The cached manifest, checked against its digest.
    pub(crate) async fn manifest(self: &Arc<Self>, hex: &Sha256Hex) -> Option<Manifest> {
        let object = Object::Manifest(hex.clone());
        if !self.lock_index().contains(&object) {
            return None;
        }
        let cache = self.clone();
        let hex = hex.clone();
        let read = blocking(move || {
            let path = cache.path(&object);
            let data = std::fs::read(&path)?;
            let manifest = parse_manifest(&data).filter(|m| m.hex == hex);
            match &manifest {
                Some(_) => {
                    cache.lock_index().touch(&object);
                    let _ = std::fs::File::open(&path)?.set_modified(SystemTime::now());
                }
                None => cache.discard_corrupt(&object),
            }
            Ok(manifest)
        })
        .await;
        read.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "Cannot read a cached manifest");
            None
        })
    }

    /// Stores a manifest whose digest the caller checked.
    pub(crate) async fn put_manifest(self: &Arc<Self>, manifest: &Manifest) {
        let cache = self.clone();
        let manifest = manifest.clone();
        let stored = blocking(move || {
            let temp = cache.temp_path();
            let mut data = Vec::with_capacity(manifest.media_type.len() + 1 + manifest.bytes.len());
            data.extend_from_slice(manifest.media_type.as_bytes());
            data.push(b'\n');
            data.extend_from_slice(&manifest.bytes);
            std::fs::write(&temp, &data)?;
            cache.keep(
                &temp,
                Object::Manifest(manifest.hex),
                data.len() as u64,
                0,
                None,
            )
        })
        .await;
        if let Err(e) = stored {
            tracing::warn!(error = %e, "Cannot cache a manifest");
        }
    }

    /// Records that the registry holds `hex` in `repository`.
    pub(crate) async fn link(self: &Arc<Self>, repository: &Repository, hex: &Sha256Hex) {
        let path = self.link_path(repository, hex);
        let linked = blocking(move || {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::File::create(&path).map(drop)
        })
        .await;
        if let Err(e) = linked {
            tracing::warn!(error = %e, "Cannot record a repository's digest");
        }
    }

    /// Whether the registry was seen holding `hex` in `repository`.
    pub(crate) async fn linked(&self, repository: &Repository, hex: &Sha256Hex) -> bool {
        tokio::fs::try_exists(self.link_path(repository, hex))
            .await
            .unwrap_or(false)
    }

    /// Forgets that `repository` holds `hex`, and its tags that pointed at it.
    pub(crate) async fn unlink(self: &Arc<Self>, repository: &Repository, hex: &Sha256Hex) {
        let link = self.link_path(repository, hex);
        let tags = self.repo_dir(repository).join("_tags");
        let digest = hex.digest().to_string();
        let _ = blocking(move || {
            let _ = std::fs::remove_file(link);
            for entry in std::fs::read_dir(tags)?.flatten() {
                if std::fs::read_to_string(entry.path()).is_ok_and(|d| d == digest) {
                    std::fs::remove_file(entry.path())?;
                }
            }
            Ok(())
        })
        .await;
    }

    /// Records the manifest a tag has now.
    pub(crate) async fn set_tag(
        self: &Arc<Self>,
        repository: &Repository,
        tag: &Tag,
        hex: &Sha256Hex,
    ) {
        let path = self.tag_path(repository, tag);
        let temp = self.temp_path();
        let digest = hex.digest().to_string();
        let written = blocking(move || {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&temp, digest)?;
            std::fs::rename(&temp, &path)
        })
        .await;
        if let Err(e) = written {
            tracing::warn!(error = %e, "Cannot record a tag");
        }
    }

    /// The manifest a tag had at its last check.
    pub(crate) async fn tag(&self, repository: &Repository, tag: &Tag) -> Option<Sha256Hex> {
        let text = tokio::fs::read_to_string(self.tag_path(repository, tag))
            .await
            .ok()?;
        text.strip_prefix("sha256:").and_then(Sha256Hex::parse)
    }

    /// Forgets a tag the registry no longer has.
    pub(crate) async fn forget_tag(&self, repository: &Repository, tag: &Tag) {
        let _ = tokio::fs::remove_file(self.tag_path(repository, tag)).await;
    }
}

/// What one pass over a file found.
struct Checksums {
    sha256: Option<Sha256Hex>,
    fast: u128,
    size: u64,
}

/// The fast checksum (and the SHA-256 when `sha256` is asked) of what `file` holds.
fn checksums(file: &mut std::fs::File, seed: u64, sha256: bool) -> std::io::Result<Checksums> {
    use std::io::Read;
    let mut sums = Sums::new(seed, sha256);
    let mut buf = vec![0u8; HASH_BUFFER];
    loop {
        match file.read(&mut buf) {
            Ok(0) => return Ok(sums.finish()),
            Ok(n) => sums.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// The checksums of bytes as they go by.
pub(crate) struct Sums {
    sha256: Option<sha2::Sha256>,
    fast: xxhash_rust::xxh3::Xxh3,
    size: u64,
}

impl Sums {
    pub(crate) fn new(seed: u64, sha256: bool) -> Sums {
        Sums {
            sha256: sha256.then(sha2::Sha256::new),
            fast: xxhash_rust::xxh3::Xxh3::with_seed(seed),
            size: 0,
        }
    }

    pub(crate) fn update(&mut self, bytes: &[u8]) {
        if let Some(sha256) = &mut self.sha256 {
            sha256.update(bytes);
        }
        self.fast.update(bytes);
        self.size += bytes.len() as u64;
    }

    fn finish(self) -> Checksums {
        Checksums {
            sha256: self.sha256.map(Sha256Hex::of),
            fast: self.fast.digest128(),
            size: self.size,
        }
    }
}

/// `<media type>\n<bytes>` back into a manifest, hashing the bytes.
fn parse_manifest(data: &[u8]) -> Option<Manifest> {
    let newline = data.iter().position(|&b| b == b'\n')?;
    let media_type = std::str::from_utf8(&data[..newline]).ok()?.to_owned();
    let bytes = Bytes::copy_from_slice(&data[newline + 1..]);
    let hex = Sha256Hex::of(sha2::Sha256::new_with_prefix(&bytes));
    Some(Manifest {
        media_type,
        bytes,
        hex,
    })
}

/// Runs file work on the blocking pool.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)))
}
