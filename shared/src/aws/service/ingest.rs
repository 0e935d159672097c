//! Counting a log object into the shared state: parse it, merge its
//! counts into the site object and into the shards it touched (once per
//! object: a retry or a duplicate event changes nothing), judge the keys it
//! touched, decide and enforce.

use super::{Deadline, EnforceReport, Service, ServiceError, StatePart};
use crate::aws::s3::{BodyReader, S3Error};
use crate::aws::store::Shard;
use crate::engine::{EngineStats, ExportKeys, Offense, StoredState};
use crate::formats::{hint_from_name, NameHint};
use crate::key::Key;
use crate::ledger::Block;
use crate::pipeline::{FileReport, Pipeline};
use futures_util::stream::{self, StreamExt, TryStreamExt};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// How many shards one ingest reads, merges and writes at once: an object
/// from many clients touches every shard, and one after the other they
/// cost it 16 × 2 S3 round trips (about 1 s); each one in flight holds its
/// shard's state in memory.
pub const SHARD_WRITES: usize = 4;

/// A log object to count ([`Service::ingest_reader`]).
pub struct LogObject<R> {
    /// How reports and errors name it: `s3://bucket/key`, a path.
    pub object: String,
    /// The name its format is detected from: the key, the file name.
    pub name: String,
    /// What the objects already counted know it by (`bucket/key@etag` for
    /// S3): an object counted before is not counted again.
    pub id: String,
    /// Its bytes, compressed or not.
    pub reader: R,
    /// Raised when the download failed mid-stream
    /// ([`BodyReader::transport_failed`]): the object was not read whole,
    /// so nothing is counted and the error is retryable.
    pub transport_failed: Option<Arc<AtomicBool>>,
}

/// What ingesting one object did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IngestReport {
    /// `s3://bucket/key`.
    pub object: String,
    /// Why it was passed over, if it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// Counted before (a duplicate event or a retry): nothing changed.
    pub duplicate: bool,
    /// Lines and formats.
    pub file: FileReport,
    /// Shards written.
    pub shards_written: u32,
    /// New blocks.
    pub blocks: Vec<(Key, Block)>,
    /// Newest event time seen in the object (epoch ms).
    pub newest_event_ms: Option<i64>,
    /// What the engine counted, and what it could not (`untracked`:
    /// beyond the key cap; `future`: dated over a day ahead).
    pub counts: EngineStats,
    /// The enforcement that followed new blocks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enforce: Option<EnforceReport>,
}

impl Service {
    /// Count one S3 log object into the shared state, decide, and enforce.
    /// `now_ms` is wall-clock time (absorbed records, lease, expiry). Past
    /// `deadline`, stop between atomic steps with a retryable error.
    pub async fn ingest_object(
        &self,
        bucket: &str,
        key: &str,
        now_ms: i64,
        holder: &str,
        deadline: Option<&Deadline>,
    ) -> Result<IngestReport, ServiceError> {
        let mut rep = IngestReport {
            object: format!("s3://{bucket}/{key}"),
            ..IngestReport::default()
        };
        let loc = self.store.location();
        if bucket == loc.bucket && key.starts_with(&loc.prefix) {
            rep.skipped = Some("fail2waf's own state".into());
            return Ok(rep);
        }
        if self.format.is_none() {
            if let NameHint::Skip(why) = hint_from_name(key) {
                rep.skipped = Some(why.into());
                return Ok(rep);
            }
        }
        Deadline::check(deadline, &format!("before reading {}", rep.object))?;
        let s3 = self.store.client();
        let obj = match s3.get_object().bucket(bucket).key(key).send().await {
            Ok(o) => o,
            Err(e) => {
                let err = S3Error::from_sdk("GetObject", bucket, key, &e);
                if err.is_not_found() {
                    rep.skipped = Some("the object no longer exists".into());
                    return Ok(rep);
                }
                return Err(err.into());
            }
        };
        let etag = obj
            .e_tag()
            .unwrap_or_default()
            .trim_matches('"')
            .to_string();
        let reader = BodyReader::spawn(obj.body, 8);
        let input = LogObject {
            object: rep.object,
            name: key.to_string(),
            id: format!("{bucket}/{key}@{etag}"),
            transport_failed: Some(reader.transport_failed()),
            reader,
        };
        self.ingest_reader(input, now_ms, holder, deadline).await
    }

    /// Count any reader (an S3 body, a local file) as one log object.
    pub async fn ingest_reader<R: Read + Send + 'static>(
        &self,
        input: LogObject<R>,
        now_ms: i64,
        holder: &str,
        deadline: Option<&Deadline>,
    ) -> Result<IngestReport, ServiceError> {
        let LogObject {
            object,
            name,
            id,
            reader,
            transport_failed,
        } = input;
        let mut rep = IngestReport {
            object,
            ..IngestReport::default()
        };
        let ledger = self.store.ledger().await?;
        let factor = self.threshold_factor(&ledger.value, now_ms);
        let (file, local, counts) = self.parse(name, reader).await?;
        if transport_failed.is_some_and(|f| f.load(Ordering::SeqCst)) {
            return Err(ServiceError::Retryable(format!(
                "{}: download failed mid-stream ({}); nothing was counted",
                rep.object,
                file.error.clone().unwrap_or_default()
            )));
        }
        rep.file = file;
        rep.counts = counts;
        if rep.file.skipped.is_some() || rep.file.lines_parsed == 0 {
            rep.skipped = rep
                .file
                .skipped
                .clone()
                .or_else(|| Some("no requests in it".into()));
            return Ok(rep);
        }
        Deadline::check(
            deadline,
            &format!("after parsing {}, before merging it", rep.object),
        )?;
        let bucket_ms = self.config.bucket_ms();
        rep.newest_event_ms = Some((i64::from(local.newest) + 1) * bucket_ms - 1);

        // Site-wide counts first: the shards are judged against them.
        let (site, duplicate) = self.absorb_site(&id, &local, now_ms).await?;
        rep.duplicate = duplicate;

        // Then each touched shard, SHARD_WRITES at a time: merge, and judge
        // the keys this object touched. Past the deadline no shard is
        // started; those in flight finish (or, dropped with the error, land
        // or not: the retry finds them absorbed or merges them).
        let (object, id, local, site) = (&rep.object, &id, &local, &site);
        let shards: Vec<(Vec<Offense>, bool)> = stream::iter(self.touched_shards(local))
            .map(|(n, touched)| async move {
                Deadline::check(deadline, &format!("before merging {object} into shard {n}"))?;
                let (shard, wrote) = self.absorb_shard(id, local, n, now_ms).await?;
                let mut engine = self.engine_for(factor, site, &shard);
                engine.evaluate_keys(Some(&touched));
                Ok::<_, ServiceError>((engine.take_offenses(), wrote))
            })
            .buffered(SHARD_WRITES)
            .try_collect()
            .await?;
        let mut offenses = Vec::new();
        for (found, wrote) in shards {
            offenses.extend(found);
            rep.shards_written += u32::from(wrote);
        }
        // A block written to the ledger is enforced now (a retry would find
        // it decided already and not enforce it): the margin is for this.
        if !offenses.is_empty() {
            Deadline::check(
                deadline,
                &format!("before deciding and enforcing {}", rep.object),
            )?;
        }
        rep.blocks = self.decide(offenses).await?;
        if !rep.blocks.is_empty() {
            rep.enforce = Some(self.enforce(now_ms, holder).await?);
        }
        Ok(rep)
    }

    /// Parse `reader` on a blocking thread: the file report, the object's
    /// counts (every key, those without matched requests for their totals)
    /// and what the engine could not count.
    async fn parse<R: Read + Send + 'static>(
        &self,
        name: String,
        reader: R,
    ) -> Result<(FileReport, StoredState, EngineStats), ServiceError> {
        let config = self.config.clone();
        let format = self.format.clone();
        tokio::task::spawn_blocking(move || {
            let mut d = Pipeline::new(config);
            let r = d.process(&name, reader, format.as_ref());
            let (engine, _) = d.into_parts();
            (
                r,
                engine.export_with(|_| true, ExportKeys::AlsoTotalsOnly),
                engine.stats(),
            )
        })
        .await
        .map_err(|e| ServiceError::Retryable(format!("parser task: {e}")))
    }

    /// Merge the site-wide counts of `local` into the site object, unless
    /// the object `id` is absorbed there already: the site counts after,
    /// and whether the object was a duplicate.
    async fn absorb_site(
        &self,
        id: &str,
        local: &StoredState,
        now_ms: i64,
    ) -> Result<(StoredState, bool), ServiceError> {
        let site_only = StoredState {
            version: local.version,
            bucket_secs: local.bucket_secs,
            newest: local.newest,
            site: local.site.clone(),
            keys: BTreeMap::new(),
        };
        let mut duplicate = true;
        let site = self
            .store
            .update::<Shard, _>(&self.store.site_key(), |sh| {
                if sh.absorbed.contains_key(id) {
                    return false;
                }
                duplicate = false;
                sh.state = self.merge(&sh.state, &site_only, StatePart::Site, now_ms);
                sh.absorbed.insert(id.to_string(), now_ms);
                sh.prune_absorbed(now_ms);
                true
            })
            .await?;
        Ok((site.value.state, duplicate))
    }

    /// The shards that hold the keys of `local` with matched requests,
    /// each with those keys.
    fn touched_shards(&self, local: &StoredState) -> BTreeMap<u32, BTreeSet<Key>> {
        let mut parts: BTreeMap<u32, BTreeSet<Key>> = BTreeMap::new();
        for (k, sk) in &local.keys {
            if !sk.rules.is_empty() {
                parts
                    .entry(self.store.shard_of(k))
                    .or_default()
                    .insert(k.clone());
            }
        }
        parts
    }

    /// Merge the keys of `local` that live in shard `n` into it, unless the
    /// object `id` is absorbed there already: the shard's counts after, and
    /// whether it was written.
    async fn absorb_shard(
        &self,
        id: &str,
        local: &StoredState,
        n: u32,
        now_ms: i64,
    ) -> Result<(StoredState, bool), ServiceError> {
        let mut wrote = false;
        let shard = self
            .store
            .update::<Shard, _>(&self.store.shard_key(n), |sh| {
                wrote = false;
                if sh.absorbed.contains_key(id) {
                    return false;
                }
                sh.state = self.merge(&sh.state, local, StatePart::Shard(n), now_ms);
                sh.absorbed.insert(id.to_string(), now_ms);
                sh.prune_absorbed(now_ms);
                wrote = true;
                true
            })
            .await?;
        Ok((shard.value.state, wrote))
    }
}
