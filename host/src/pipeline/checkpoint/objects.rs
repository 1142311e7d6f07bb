//! The checkpoint store in an S3-compatible object store, for hosts on many machines: one
//! object per unit holding its claim (owner epoch and owner) and its cut together, so that
//! a conditional put fences a host that lost the unit. Taking a unit rewrites its object
//! with the epoch raised, if the object is still the version read (`If-Match`); a cut is
//! written only over the version this host wrote last. Once another host took the unit,
//! that version is gone and the write fails: the store itself refuses the zombie, with no
//! lock and no clock.
//!
//! Where and how: `s3://bucket/prefix`, with the credentials, region and endpoint from the
//! `AWS_*` environment variables (`AWS_ENDPOINT_URL` and `AWS_ALLOW_HTTP=true` for a store
//! of one's own), as object_store reads them.

use super::file::{self, Checkpoint};
use super::unit::{Claim, StoreError, Unit};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path;
use object_store::{
    Error, ObjectStore, PutMode, PutOptions, PutPayload, RetryConfig, UpdateVersion,
};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The most a unit's object may hold: more is damage (a cut holds a partition's states,
/// each within its stage's memory budget).
const MAX_OBJECT_BYTES: u64 = 2 << 30;
/// How long a request's retries may go on (object_store bounds each try at 30 s, and its
/// connection at 5 s, unless `AWS_TIMEOUT` and `AWS_CONNECT_TIMEOUT` say otherwise).
const RETRY_TIMEOUT: Duration = Duration::from_secs(60);
/// How often a claim is tried again when another host's claim came between its read and
/// its write.
const CLAIM_TRIES: usize = 5;

/// A unit's object as read: its version, its claim, its cut's bytes.
struct Read {
    version: UpdateVersion,
    epoch: u64,
    owner: String,
    cut: Vec<u8>,
}

pub(super) struct Objects {
    url: String,
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    /// Requests run here, whatever thread asks (the source's rebalance callback, the
    /// checkpoint writer's blocking task, the pipeline's start).
    runtime: Option<tokio::runtime::Runtime>,
    /// Per unit this host holds: its epoch and the version of the object it wrote last.
    held: Mutex<BTreeMap<Unit, (u64, UpdateVersion)>>,
}

impl std::fmt::Debug for Objects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Objects({})", self.url)
    }
}

impl Drop for Objects {
    fn drop(&mut self) {
        // Dropped maybe inside the pipeline's runtime, where a runtime must not block.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl Objects {
    /// The store at `url` (`s3://bucket/prefix`).
    pub fn open(url: &str) -> Result<Objects, StoreError> {
        Objects::open_with(url, AmazonS3Builder::from_env(), RETRY_TIMEOUT)
    }

    /// [`open`](Self::open) with the settings of `builder` and retries for at most `retry`.
    fn open_with(
        url: &str,
        builder: AmazonS3Builder,
        retry: Duration,
    ) -> Result<Objects, StoreError> {
        let fail = |e: &dyn std::fmt::Display| objects_error(url, e);
        let (bucket_url, prefix) = split(url).ok_or_else(|| fail(&"not s3://bucket/prefix"))?;
        let retry = RetryConfig {
            retry_timeout: retry,
            ..RetryConfig::default()
        };
        let store = (builder.with_url(bucket_url).with_retry(retry))
            .build()
            .map_err(|e| fail(&e))?;
        let runtime = (tokio::runtime::Builder::new_multi_thread())
            .worker_threads(1)
            .thread_name("adstream-store")
            .enable_all()
            .build()
            .map_err(|e| fail(&e))?;
        Ok(Objects {
            url: url.into(),
            store: Arc::new(store),
            prefix: Path::from(prefix),
            runtime: Some(runtime),
            held: Mutex::default(),
        })
    }

    /// Runs a request on the store's own runtime and waits for it, from any thread.
    fn run<T: Send + 'static>(&self, fut: impl Future<Output = T> + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        let rt = self.runtime.as_ref().expect("running");
        rt.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv()
            .expect("the store's runtime runs until the store is dropped")
    }

    fn error(&self, e: &dyn std::fmt::Display) -> StoreError {
        objects_error(&self.url, e)
    }

    fn path(&self, name: &str) -> Path {
        self.prefix.child(name)
    }

    /// Creates the group object, or reads the group it names.
    pub fn group(&self, group: &str) -> Result<String, StoreError> {
        let path = self.path("group");
        let put = put(
            self,
            &path,
            format!("{group}\n").into_bytes(),
            PutMode::Create,
        );
        match put {
            Ok(_) => Ok(group.into()),
            Err(Error::AlreadyExists { .. }) => {
                let read =
                    get(self, &path)?.ok_or_else(|| self.error(&"the group object vanished"))?;
                let text = String::from_utf8_lossy(&read.1);
                Ok(text.trim().to_string())
            }
            Err(e) => Err(self.error(&chain(&e))),
        }
    }

    /// The unit's object, if it has one.
    fn read(&self, unit: Unit) -> Result<Option<Read>, StoreError> {
        let Some((version, bytes)) = get(self, &self.path(&unit.stem()))? else {
            return Ok(None);
        };
        let damaged = || self.error(&format!("the object of {unit} does not start with a claim"));
        let split = bytes.iter().position(|&b| b == b'\n').ok_or_else(damaged)?;
        let head = std::str::from_utf8(&bytes[..split]).map_err(|_| damaged())?;
        let (epoch, owner) = head.split_once(' ').ok_or_else(damaged)?;
        Ok(Some(Read {
            version,
            epoch: epoch.parse().map_err(|_| damaged())?,
            owner: owner.into(),
            cut: bytes[split + 1..].to_vec(),
        }))
    }

    /// Takes `unit` for `owner`: its object rewritten with the epoch raised, if no other
    /// host rewrote it in between (then read again and tried again).
    pub fn claim(&self, unit: Unit, owner: &str) -> Result<Claim, StoreError> {
        let path = self.path(&unit.stem());
        for _ in 0..CLAIM_TRIES {
            let read = self.read(unit)?;
            let epoch = read.as_ref().map_or(0, |r| r.epoch) + 1;
            let cut = read.as_ref().map_or(&[][..], |r| &r.cut);
            let mode =
                (read.as_ref()).map_or(PutMode::Create, |r| PutMode::Update(r.version.clone()));
            match put(self, &path, object(epoch, owner, cut), mode) {
                Ok(version) => {
                    self.held
                        .lock()
                        .expect("held")
                        .insert(unit, (epoch, version));
                    return Ok(Claim { unit, epoch });
                }
                Err(Error::Precondition { .. } | Error::AlreadyExists { .. }) => continue,
                Err(e) => return Err(self.error(&chain(&e))),
            }
        }
        Err(self.error(&format!(
            "{unit}: other hosts' claims kept coming between ours"
        )))
    }

    /// Who holds `unit`, at which epoch (0 and nobody without an object).
    pub fn holder(&self, unit: Unit) -> Result<(u64, String), StoreError> {
        let read = self.read(unit)?;
        Ok(read.map_or((0, "nobody".into()), |r| (r.epoch, r.owner)))
    }

    pub fn load(&self, unit: Unit) -> Result<Option<Checkpoint>, StoreError> {
        let Some(read) = self.read(unit)? else {
            return Ok(None);
        };
        if read.cut.is_empty() {
            return Ok(None); // claimed, never cut
        }
        let cut = file::decode(&read.cut);
        cut.map(Some)
            .map_err(|why| self.error(&format!("the cut of {unit}: {why}")))
    }

    /// Writes `cp` over the version this host wrote last, under `claim`.
    pub fn save(&self, claim: Claim, owner: &str, cp: &Checkpoint) -> Result<(), StoreError> {
        let held = self.held.lock().expect("held").get(&claim.unit).cloned();
        let fenced = |this: &Self| -> StoreError {
            let (theirs, owner) = this.holder(claim.unit).unwrap_or((0, "nobody".into()));
            StoreError::Fenced {
                unit: claim.unit,
                owner,
                theirs,
                ours: claim.epoch,
            }
        };
        let Some((_, version)) = held.filter(|(epoch, _)| *epoch == claim.epoch) else {
            return Err(fenced(self));
        };
        let bytes = object(claim.epoch, owner, &file::encode(cp));
        let path = self.path(&claim.unit.stem());
        match put(self, &path, bytes, PutMode::Update(version)) {
            Ok(version) => {
                let mut held = self.held.lock().expect("held");
                held.insert(claim.unit, (claim.epoch, version));
                Ok(())
            }
            Err(Error::Precondition { .. }) => Err(fenced(self)),
            Err(e) => Err(self.error(&chain(&e))),
        }
    }
}

/// A unit's object: its claim line, then its cut.
fn object(epoch: u64, owner: &str, cut: &[u8]) -> Vec<u8> {
    let mut out = format!("{epoch} {owner}\n").into_bytes();
    out.extend_from_slice(cut);
    out
}

fn put(o: &Objects, path: &Path, bytes: Vec<u8>, mode: PutMode) -> Result<UpdateVersion, Error> {
    let (store, path) = (o.store.clone(), path.clone());
    let opts = PutOptions {
        mode,
        ..PutOptions::default()
    };
    let done = o.run(async move { store.put_opts(&path, PutPayload::from(bytes), opts).await })?;
    Ok(UpdateVersion {
        e_tag: done.e_tag,
        version: done.version,
    })
}

/// The object at `path` and its version, if there is one; refused past the bound.
fn get(o: &Objects, path: &Path) -> Result<Option<(UpdateVersion, Vec<u8>)>, StoreError> {
    let (store, at) = (o.store.clone(), path.clone());
    let got = o.run(async move {
        let got = store.get(&at).await?;
        if got.meta.size > MAX_OBJECT_BYTES {
            return Ok(Err(got.meta.size));
        }
        let version = UpdateVersion {
            e_tag: got.meta.e_tag.clone(),
            version: got.meta.version.clone(),
        };
        Ok(Ok((version, got.bytes().await?.to_vec())))
    });
    match got {
        Ok(Ok(found)) => Ok(Some(found)),
        Ok(Err(size)) => Err(o.error(&format!(
            "{path} holds {size} bytes, over the {MAX_OBJECT_BYTES} a unit may hold"
        ))),
        Err(Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(o.error(&chain(&e))),
    }
}

/// `s3://bucket/prefix` as the bucket's URL and the prefix.
fn split(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("s3://")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    (!bucket.is_empty()).then(|| (format!("s3://{bucket}"), prefix.trim_matches('/').into()))
}

/// An error with its causes: object_store's own says "HTTP error" and its source why.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            out = format!("{out}: {text}");
        }
        cause = c.source();
    }
    out
}

fn objects_error(url: &str, e: &dyn std::fmt::Display) -> StoreError {
    StoreError::Objects {
        url: url.into(),
        message: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::ClientConfigKey;
    use object_store::aws::AmazonS3ConfigKey;

    /// A store that takes connections and never answers: each request gives up at the
    /// client's timeout, retries stop at the retry bound, and the claim fails, saying so,
    /// instead of holding the rebalance that asked for it forever.
    #[test]
    fn a_store_that_never_answers_fails_the_claim_within_its_bounds() {
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", silent.local_addr().unwrap());
        std::thread::spawn(move || {
            let held: Vec<_> = silent.incoming().take(64).collect();
            std::thread::sleep(Duration::from_secs(60));
            drop(held);
        });
        let builder = (AmazonS3Builder::new().with_endpoint(endpoint))
            .with_allow_http(true)
            .with_access_key_id("k")
            .with_secret_access_key("s")
            .with_region("us-east-1")
            .with_config(AmazonS3ConfigKey::Client(ClientConfigKey::Timeout), "300ms");
        let store = Objects::open_with("s3://b/p", builder, Duration::from_secs(1)).unwrap();
        let e = store
            .claim(Unit::Partition(0), "a/1")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("checkpoint store s3://b/p: ") && e.contains("timed out"),
            "{e}"
        );
    }

    #[test]
    fn a_url_names_the_bucket_and_the_prefix() {
        assert_eq!(
            split("s3://ads/state/prod/"),
            Some(("s3://ads".into(), "state/prod".into()))
        );
        assert_eq!(split("s3://ads"), Some(("s3://ads".into(), String::new())));
        assert_eq!(split("s3:///x"), None);
        assert_eq!(split("/var/lib/adstream"), None);
    }
}
