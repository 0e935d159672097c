//! Counting log objects into the shared state: parse them, merge their
//! counts into the site object and into the shards they touched (once per
//! object: a retry or a duplicate event changes nothing), judge the keys
//! they touched, decide and enforce.
//!
//! The objects of one invocation (an SQS batch, an S3 event's records) are
//! counted into one engine, and the site object and each shard are read,
//! merged and written once for the batch, not once per object. At 50,000
//! clients an object touches every shard, so this cycle (the whole state
//! read and written) is what bounds how many objects a second one stack
//! counts (docs/architecture.md, "Capacity").

use super::{Deadline, EnforceReport, Service, ServiceError, StatePart};
use crate::aws::events::{decode_s3_key, ObjectRef};
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
    /// Shards written (for the whole batch: see [`BatchReport`]).
    pub shards_written: u32,
    /// New blocks (for the whole batch).
    pub blocks: Vec<(Key, Block)>,
    /// Newest event time seen in the object (epoch ms).
    pub newest_event_ms: Option<i64>,
    /// What the engine counted, and what it could not (`untracked`:
    /// beyond the key cap; `future`: dated over a day ahead).
    pub counts: EngineStats,
    /// The enforcement that followed new blocks (for the whole batch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enforce: Option<EnforceReport>,
}

/// What ingesting a batch of objects did ([`Service::ingest_objects`]).
#[derive(Debug, Default)]
pub struct BatchReport {
    /// Each object's report (its `shards_written`, `blocks` and `enforce`
    /// left empty: they are the batch's, below), or the error that keeps
    /// it from being counted, in the order given.
    pub objects: Vec<Result<IngestReport, ServiceError>>,
    /// Shards written for the batch.
    pub shards_written: u32,
    /// New blocks.
    pub blocks: Vec<(Key, Block)>,
    /// The enforcement that followed new blocks.
    pub enforce: Option<EnforceReport>,
    /// Objects merged one at a time because a state object had absorbed
    /// some of the batch but not all (a retry of a batch that got part of
    /// the way): each was read and parsed again.
    pub merged_alone: usize,
}

impl BatchReport {
    /// The report of a batch of one, the batch's results in it.
    fn into_single(mut self) -> Result<IngestReport, ServiceError> {
        let mut rep = self.objects.pop().expect("a batch of one")?;
        rep.shards_written = self.shards_written;
        rep.blocks = self.blocks;
        rep.enforce = self.enforce;
        Ok(rep)
    }
}

/// What counting one object into a batch's engine came to.
enum Counted {
    /// Counted: its report, and what the absorbed records know it by.
    Yes(IngestReport, String),
    /// Passed over (not a log, no requests in it): nothing counted.
    Skipped(IngestReport),
    /// Its download broke mid-stream: the engine holds part of it.
    Broken(ServiceError),
}

/// Whether a state object took a batch's counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Absorbed {
    /// Merged now.
    Merged,
    /// Every object of the batch was in it already.
    Before,
    /// Some were, some were not: the batch cannot be merged as one.
    Partly,
}

/// What merging a batch's counts into the state did.
#[derive(Default)]
struct Merge {
    duplicate: bool,
    partly: bool,
    shards_written: u32,
    offenses: Vec<Offense>,
}

/// A copy of an error, for every object of a batch it stopped.
fn shared(e: &ServiceError) -> ServiceError {
    if e.retryable() {
        ServiceError::Retryable(e.to_string())
    } else {
        ServiceError::Invalid(e.to_string())
    }
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
        let o = ObjectRef::new(bucket, key);
        self.ingest_objects(std::slice::from_ref(&o), now_ms, holder, deadline)
            .await
            .into_single()
    }

    /// Count S3 log objects into the shared state as one batch: each is
    /// read and parsed (one after the other) into one engine, and the
    /// site object and every touched shard are merged once for
    /// all of them; then decide and enforce once. An object that cannot be
    /// read (or is reached past `deadline`) gets its error and the others
    /// are counted; an error while merging is every merged object's.
    pub async fn ingest_objects(
        &self,
        objects: &[ObjectRef],
        now_ms: i64,
        holder: &str,
        deadline: Option<&Deadline>,
    ) -> BatchReport {
        let mut out = BatchReport::default();
        let factor = match self.store.ledger().await {
            Ok(l) => self.threshold_factor(&l.value, now_ms),
            Err(e) => {
                let e = ServiceError::from(e);
                out.objects = objects.iter().map(|_| Err(shared(&e))).collect();
                return out;
            }
        };
        let mut results: Vec<Option<Result<IngestReport, ServiceError>>> =
            objects.iter().map(|_| None).collect();
        let mut members: Vec<(usize, IngestReport)> = Vec::new();
        let mut ids: Vec<String> = Vec::new();
        // Every object is counted into one engine. One whose download
        // breaks mid-stream leaves part of itself in it: it gets its error
        // and the batch starts over without it (rare: a reset connection).
        let local = 'batch: loop {
            members.clear();
            ids.clear();
            let mut d = Pipeline::new(self.config.clone());
            for (i, o) in objects.iter().enumerate() {
                if results[i].as_ref().is_some_and(Result::is_err) {
                    continue;
                }
                if !members.is_empty() && deadline.is_some_and(Deadline::merge_now) {
                    results[i] = Some(Err(ServiceError::Retryable(format!(
                        "deadline: s3://{}/{} not read, to leave time to merge the batch's \
                         other objects; a retry counts it",
                        o.bucket, o.key
                    ))));
                    continue;
                }
                let input = match self.fetch(o, deadline).await {
                    Ok(Ok(input)) => input,
                    Ok(Err(skipped)) => {
                        results[i] = Some(Ok(skipped));
                        continue;
                    }
                    Err(e) => {
                        results[i] = Some(Err(e));
                        continue;
                    }
                };
                if ids.contains(&input.id) {
                    results[i] = Some(Ok(IngestReport {
                        object: input.object,
                        duplicate: true,
                        ..IngestReport::default()
                    }));
                    continue;
                }
                let counted = match self.count_into(d, input).await {
                    Ok((back, counted)) => {
                        d = back;
                        counted
                    }
                    Err(e) => {
                        results[i] = Some(Err(e));
                        continue 'batch;
                    }
                };
                match counted {
                    Counted::Yes(report, id) => {
                        ids.push(id);
                        members.push((i, report));
                    }
                    Counted::Skipped(report) => results[i] = Some(Ok(report)),
                    Counted::Broken(e) => {
                        results[i] = Some(Err(e));
                        continue 'batch;
                    }
                }
            }
            break d
                .into_parts()
                .0
                .export_with(|_| true, ExportKeys::AlsoTotalsOnly);
        };
        if members.is_empty() {
            out.objects = results.into_iter().map(Option::unwrap).collect();
            return out;
        }
        let newest = self.newest_event_ms(&local);
        for (_, r) in &mut members {
            r.newest_event_ms = Some(newest);
        }
        let what = match members.as_slice() {
            [(_, r)] => r.object.clone(),
            _ => format!("a batch of {} objects", members.len()),
        };
        let merged = self
            .merge_counts(&ids, &local, factor, now_ms, &what, deadline)
            .await;
        drop(local);
        let mut offenses = match merged {
            Ok(m) if !m.partly => {
                out.shards_written = m.shards_written;
                for (i, mut r) in members.drain(..) {
                    r.duplicate = m.duplicate;
                    results[i] = Some(Ok(r));
                }
                m.offenses
            }
            Ok(m) => {
                // A retry of a batch that got part of the way (or a
                // duplicate in another batch): each object on its own,
                // which every state object can tell absorbed or not.
                out.shards_written = m.shards_written;
                let mut offenses = m.offenses;
                for (i, _) in members.drain(..) {
                    out.merged_alone += 1;
                    results[i] = Some(
                        match self
                            .ingest_alone(&objects[i], factor, now_ms, deadline)
                            .await
                        {
                            Ok((r, m)) => {
                                out.shards_written += m.shards_written;
                                offenses.extend(m.offenses);
                                Ok(r)
                            }
                            Err(e) => Err(e),
                        },
                    );
                }
                offenses
            }
            Err(e) => {
                for (i, _) in members.drain(..) {
                    results[i] = Some(Err(shared(&e)));
                }
                Vec::new()
            }
        };
        if let Err(e) = self
            .decide_and_enforce(&mut offenses, &mut out, now_ms, holder, &what, deadline)
            .await
        {
            // The counts are in; the blocks are not all decided: retry
            // (the merge is found absorbed, the offenses found again).
            for r in results.iter_mut().flatten() {
                if r.as_ref().is_ok_and(|r| r.skipped.is_none()) {
                    *r = Err(shared(&e));
                }
            }
        }
        out.objects = results.into_iter().map(Option::unwrap).collect();
        out
    }

    /// Read, parse and merge one object of a batch on its own.
    async fn ingest_alone(
        &self,
        o: &ObjectRef,
        factor: f64,
        now_ms: i64,
        deadline: Option<&Deadline>,
    ) -> Result<(IngestReport, Merge), ServiceError> {
        match self.fetch(o, deadline).await? {
            Ok(input) => self.merge_alone(input, factor, now_ms, deadline).await,
            Err(skipped) => Ok((skipped, Merge::default())),
        }
    }

    /// Count one object on its own and merge it.
    async fn merge_alone<R: Read + Send + 'static>(
        &self,
        input: LogObject<R>,
        factor: f64,
        now_ms: i64,
        deadline: Option<&Deadline>,
    ) -> Result<(IngestReport, Merge), ServiceError> {
        let (mut report, id, local) = match self.count_alone(input).await? {
            Ok(counted) => counted,
            Err(skipped) => return Ok((skipped, Merge::default())),
        };
        let m = self
            .merge_counts(&[id], &local, factor, now_ms, &report.object, deadline)
            .await?;
        report.duplicate = m.duplicate;
        Ok((report, m))
    }

    /// Decide on `offenses` and enforce new blocks, into `out`.
    async fn decide_and_enforce(
        &self,
        offenses: &mut Vec<Offense>,
        out: &mut BatchReport,
        now_ms: i64,
        holder: &str,
        what: &str,
        deadline: Option<&Deadline>,
    ) -> Result<(), ServiceError> {
        if offenses.is_empty() {
            return Ok(());
        }
        // A block written to the ledger is enforced now (a retry would find
        // it decided already and not enforce it): the margin is for this.
        Deadline::check(deadline, &format!("before deciding and enforcing {what}"))?;
        out.blocks = self.decide(std::mem::take(offenses)).await?;
        if !out.blocks.is_empty() {
            out.enforce = Some(self.enforce(now_ms, holder).await?);
        }
        Ok(())
    }

    /// Start reading an S3 object, or pass it over (its report says why).
    async fn fetch(
        &self,
        o: &ObjectRef,
        deadline: Option<&Deadline>,
    ) -> Result<Result<LogObject<BodyReader>, IngestReport>, ServiceError> {
        let (bucket, key) = (o.bucket.as_str(), o.key.as_str());
        let skip = |why: &str| {
            Ok(Err(IngestReport {
                object: format!("s3://{bucket}/{key}"),
                skipped: Some(why.into()),
                ..IngestReport::default()
            }))
        };
        let loc = self.store.location();
        if bucket == loc.bucket && key.starts_with(&loc.prefix) {
            return skip("fail2waf's own state");
        }
        if self.format.is_none() {
            if let NameHint::Skip(why) = hint_from_name(key) {
                return skip(why);
            }
        }
        Deadline::check(deadline, &format!("before reading s3://{bucket}/{key}"))?;
        let s3 = self.store.client();
        // EventBridge keys come as they are; if that name does not exist,
        // try it form-decoded.
        let decoded = decode_s3_key(key).ok().filter(|d| d != key);
        let mut tried = Some(key.to_string()).into_iter().chain(decoded);
        let (key, obj) = loop {
            let Some(k) = tried.next() else {
                return skip("the object no longer exists");
            };
            match s3.get_object().bucket(bucket).key(&k).send().await {
                Ok(obj) => break (k, obj),
                Err(e) => {
                    let err = S3Error::from_sdk("GetObject", bucket, &k, &e);
                    if !err.is_not_found() {
                        return Err(err.into());
                    }
                }
            }
        };
        let etag = obj
            .e_tag()
            .unwrap_or_default()
            .trim_matches('"')
            .to_string();
        let reader = BodyReader::spawn(obj.body, 8);
        Ok(Ok(LogObject {
            object: format!("s3://{bucket}/{key}"),
            id: format!("{bucket}/{key}@{etag}"),
            name: key,
            transport_failed: Some(reader.transport_failed()),
            reader,
        }))
    }

    /// Count any reader (an S3 body, a local file) as one log object.
    pub async fn ingest_reader<R: Read + Send + 'static>(
        &self,
        input: LogObject<R>,
        now_ms: i64,
        holder: &str,
        deadline: Option<&Deadline>,
    ) -> Result<IngestReport, ServiceError> {
        let ledger = self.store.ledger().await?;
        let factor = self.threshold_factor(&ledger.value, now_ms);
        let (report, mut m) = self.merge_alone(input, factor, now_ms, deadline).await?;
        let what = report.object.clone();
        let mut out = BatchReport {
            shards_written: m.shards_written,
            objects: vec![Ok(report)],
            ..BatchReport::default()
        };
        self.decide_and_enforce(&mut m.offenses, &mut out, now_ms, holder, &what, deadline)
            .await?;
        out.into_single()
    }

    /// Count one object on its own: its report, id and counts, or passed
    /// over.
    async fn count_alone<R: Read + Send + 'static>(
        &self,
        input: LogObject<R>,
    ) -> Result<Result<(IngestReport, String, StoredState), IngestReport>, ServiceError> {
        let (d, counted) = self
            .count_into(Pipeline::new(self.config.clone()), input)
            .await?;
        match counted {
            Counted::Yes(mut report, id) => {
                let local = d
                    .into_parts()
                    .0
                    .export_with(|_| true, ExportKeys::AlsoTotalsOnly);
                report.newest_event_ms = Some(self.newest_event_ms(&local));
                Ok(Ok((report, id, local)))
            }
            Counted::Skipped(report) => Ok(Err(report)),
            Counted::Broken(e) => Err(e),
        }
    }

    /// Parse a log object into `d`'s engine on a blocking thread (every
    /// key, those without matched requests for their totals): the pipeline
    /// back, and what came of the object. An error: the pipeline is lost.
    async fn count_into<R: Read + Send + 'static>(
        &self,
        mut d: Pipeline,
        input: LogObject<R>,
    ) -> Result<(Pipeline, Counted), ServiceError> {
        let LogObject {
            object,
            name,
            id,
            reader,
            transport_failed,
        } = input;
        let format = self.format.clone();
        let (d, file, counts) = tokio::task::spawn_blocking(move || {
            let before = d.engine().stats();
            let file = d.process(&name, reader, format.as_ref());
            let counts = d.engine().stats().since(&before);
            (d, file, counts)
        })
        .await
        .map_err(|e| ServiceError::Retryable(format!("{object}: parser task: {e}")))?;
        if transport_failed.is_some_and(|f| f.load(Ordering::SeqCst)) {
            let e = ServiceError::Retryable(format!(
                "{object}: download failed mid-stream ({}); nothing was counted",
                file.error.clone().unwrap_or_default()
            ));
            return Ok((d, Counted::Broken(e)));
        }
        let mut report = IngestReport {
            object,
            file,
            counts,
            ..IngestReport::default()
        };
        if report.file.skipped.is_some() || report.file.lines_parsed == 0 {
            report.skipped = report
                .file
                .skipped
                .clone()
                .or_else(|| Some("no requests in it".into()));
            return Ok((d, Counted::Skipped(report)));
        }
        Ok((d, Counted::Yes(report, id)))
    }

    /// The end of the newest bucket counted in `local` (epoch ms).
    fn newest_event_ms(&self, local: &StoredState) -> i64 {
        (i64::from(local.newest) + 1) * self.config.bucket_ms() - 1
    }

    /// Merge the counts `local` of the objects `ids` into the site object
    /// and into every shard they touched, and judge the keys touched. A
    /// state object that absorbed some of `ids` but not all is left as it
    /// is (`partly`: merge the objects one at a time).
    async fn merge_counts(
        &self,
        ids: &[String],
        local: &StoredState,
        factor: f64,
        now_ms: i64,
        what: &str,
        deadline: Option<&Deadline>,
    ) -> Result<Merge, ServiceError> {
        Deadline::check(
            deadline,
            &format!("after parsing {what}, before merging it"),
        )?;
        let mut out = Merge::default();
        // Site-wide counts first: the shards are judged against them.
        let key = self.store.site_key();
        let (site, absorbed) = self
            .absorb(&key, ids, local, StatePart::Site, now_ms)
            .await?;
        match absorbed {
            Absorbed::Partly => {
                out.partly = true;
                return Ok(out);
            }
            Absorbed::Before => out.duplicate = true,
            Absorbed::Merged => {}
        }
        // Then each touched shard, SHARD_WRITES at a time: merge, and judge
        // the keys the batch touched. Past the deadline no shard is
        // started; those in flight finish (or, dropped with the error, land
        // or not: the retry finds them absorbed or merges them).
        let site = &site;
        let shards: Vec<(Vec<Offense>, Absorbed)> = stream::iter(self.touched_shards(local))
            .map(|(n, touched)| async move {
                Deadline::check(deadline, &format!("before merging {what} into shard {n}"))?;
                let key = self.store.shard_key(n);
                let (shard, absorbed) = self
                    .absorb(&key, ids, local, StatePart::Shard(n), now_ms)
                    .await?;
                if absorbed == Absorbed::Partly {
                    return Ok((Vec::new(), absorbed));
                }
                let mut engine = self.engine_for(factor, site, &shard);
                engine.evaluate_keys(Some(&touched));
                Ok::<_, ServiceError>((engine.take_offenses(), absorbed))
            })
            .buffered(SHARD_WRITES)
            .try_collect()
            .await?;
        for (found, absorbed) in shards {
            out.offenses.extend(found);
            out.shards_written += u32::from(absorbed == Absorbed::Merged);
            out.partly |= absorbed == Absorbed::Partly;
        }
        Ok(out)
    }

    /// Merge `local` into the state object `key` (the site object or a
    /// shard, `part`) unless it absorbed the objects `ids` already: its
    /// counts after, and whether it took them.
    async fn absorb(
        &self,
        key: &str,
        ids: &[String],
        local: &StoredState,
        part: StatePart,
        now_ms: i64,
    ) -> Result<(StoredState, Absorbed), ServiceError> {
        let mut absorbed = Absorbed::Before;
        let v = self
            .store
            .update::<Shard, _>(key, |sh| {
                let seen = ids
                    .iter()
                    .filter(|id| sh.absorbed.contains_key(*id))
                    .count();
                absorbed = match seen {
                    0 => Absorbed::Merged,
                    n if n == ids.len() => Absorbed::Before,
                    _ => Absorbed::Partly,
                };
                if absorbed != Absorbed::Merged {
                    return false;
                }
                sh.state = self.merge(&sh.state, local, part, now_ms);
                for id in ids {
                    sh.absorbed.insert(id.clone(), now_ms);
                }
                sh.prune_absorbed(now_ms);
                true
            })
            .await?;
        Ok((v.value.state, absorbed))
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
}
