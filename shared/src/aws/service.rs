//! The deployed product's operations: ingest a log object, enforce the
//! ledger on WAF, expire blocks, react to an alarm. The Lambda handlers
//! and the CLI call these; everything here goes through the real AWS SDK.

use super::s3::{client_from_env, BodyReader, S3Error, S3Loc, S3LocError};
use super::store::{Lease, S3Store, Shard};
use super::waf::{sync_set, validate, IpSetArnError, IpSetRef, IpVersion, WafError};
use crate::config::Config;
use crate::engine::{Engine, EngineStats, ExportKeys, Offense, StoredState};
use crate::formats::{detect_from_name, Format, NameHint};
use crate::ledger::{Block, Ledger, Outcome, Policy};
use crate::pipeline::{Detector, FileReport};
use ipnet::IpNet;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// How long a WAF writer may hold the lease before others may take over.
const LEASE_MS: i64 = 30_000;

/// Minimum time between two UpdateIPSet calls (the account-wide limit).
const WRITE_SPACING_MS: i64 = 1000;

/// Counts older than this before now (beyond the longest window) are
/// pruned from stored state: logs arrive minutes to hours late.
const LATE_SLACK_MS: i64 = 2 * 3600 * 1000;

/// The safety margin left before a Lambda deadline: this long, or a tenth
/// of the time remaining at the start of the invocation if that is shorter.
const DEADLINE_MARGIN_MS: i64 = 3000;

/// When an invocation must stop starting new work: the Lambda deadline
/// less a safety margin. Work is checked against it between atomic steps
/// (after parsing an object, before each shard merge, before the ledger
/// write that leads to enforcement); past it, the operation stops with a
/// retryable error and the retry, made idempotent by the absorbed records,
/// finishes the work.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    cutoff: std::time::Instant,
}

impl Deadline {
    /// From a Lambda deadline (`Lambda-Runtime-Deadline-Ms`, epoch ms) and
    /// the wall-clock time now.
    pub fn from_epoch_ms(deadline_ms: i64, now_ms: i64) -> Deadline {
        let remaining = (deadline_ms - now_ms).max(0);
        let margin = DEADLINE_MARGIN_MS.min(remaining / 10);
        Deadline::after(std::time::Duration::from_millis(
            (remaining - margin) as u64,
        ))
    }

    /// Stop starting new work `budget` from now (no further margin).
    pub fn after(budget: std::time::Duration) -> Deadline {
        Deadline {
            cutoff: std::time::Instant::now() + budget,
        }
    }

    /// Has the cutoff passed?
    pub fn reached(&self) -> bool {
        std::time::Instant::now() >= self.cutoff
    }

    /// `Err(Retryable)` once the cutoff has passed, naming what was left undone.
    pub fn check(deadline: Option<&Deadline>, what: &str) -> Result<(), ServiceError> {
        match deadline {
            Some(d) if d.reached() => Err(ServiceError::Retryable(format!(
                "deadline: stopped {what} to leave a safety margin before the Lambda timeout; \
                 a retry finishes the work"
            ))),
            _ => Ok(()),
        }
    }
}

/// Settings of a deployed function, from its environment.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `FAIL2WAF_STATE`: where state lives.
    pub state: S3Loc,
    /// `FAIL2WAF_IPSET_V4_ARN`.
    pub ipset_v4: Option<IpSetRef>,
    /// `FAIL2WAF_IPSET_V6_ARN`.
    pub ipset_v6: Option<IpSetRef>,
    /// `FAIL2WAF_DRY_RUN=true`: decide and log, never touch WAF.
    pub dry_run: bool,
    /// `FAIL2WAF_SHARDS` (default 16).
    pub shards: u32,
    /// `FAIL2WAF_LOG_PREFIXES`: comma-separated `s3://bucket/prefix/` the
    /// alarm function re-scans; `{date}` expands to `YYYY/MM/DD`.
    pub log_prefixes: Vec<String>,
    /// `FAIL2WAF_CONFIG`: a path or `s3://` URI of the rules file.
    pub config: Option<String>,
    /// `FAIL2WAF_FORMAT`: force a log format instead of detecting it.
    pub format: Option<String>,
}

/// A setting of a deployed function that is missing or wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// `FAIL2WAF_STATE` is not set.
    #[error("FAIL2WAF_STATE is not set (s3://bucket/prefix/)")]
    NoState,
    /// `FAIL2WAF_STATE` is not an `s3://` location.
    #[error("FAIL2WAF_STATE: {0}")]
    State(S3LocError),
    /// An IP set variable does not hold an IP set ARN.
    #[error("{var}: {error}")]
    IpSetArn {
        /// The variable.
        var: &'static str,
        /// What is wrong with its value.
        error: IpSetArnError,
    },
    /// `FAIL2WAF_DRY_RUN` is neither true nor false.
    #[error("FAIL2WAF_DRY_RUN: `{0}` is not true or false")]
    DryRun(String),
    /// `FAIL2WAF_SHARDS` is not a number from 1 to 256.
    #[error("FAIL2WAF_SHARDS: 1–256")]
    Shards,
    /// Not a dry run, and an IP set is missing.
    #[error(
        "FAIL2WAF_IPSET_V4_ARN and FAIL2WAF_IPSET_V6_ARN are required unless FAIL2WAF_DRY_RUN=true"
    )]
    NoIpSets,
}

impl Settings {
    /// Read the settings from environment variables (see DESIGN and
    /// docs/deploy.md).
    pub fn from_env() -> Result<Settings, SettingsError> {
        Settings::from_lookup(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()))
    }

    /// Read the settings through `get`.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Settings, SettingsError> {
        let state = get("FAIL2WAF_STATE")
            .ok_or(SettingsError::NoState)?
            .parse::<S3Loc>()
            .map_err(SettingsError::State)?;
        let arn = |var: &'static str| -> Result<Option<IpSetRef>, SettingsError> {
            get(var)
                .map(|a| {
                    a.parse::<IpSetRef>()
                        .map_err(|error| SettingsError::IpSetArn { var, error })
                })
                .transpose()
        };
        let dry_run = match get("FAIL2WAF_DRY_RUN")
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("false" | "0" | "no") => false,
            Some("true" | "1" | "yes") => true,
            Some(other) => return Err(SettingsError::DryRun(other.to_string())),
        };
        let shards = match get("FAIL2WAF_SHARDS") {
            None => 16,
            Some(s) => s
                .parse()
                .ok()
                .filter(|n| (1..=256).contains(n))
                .ok_or(SettingsError::Shards)?,
        };
        let settings = Settings {
            state,
            ipset_v4: arn("FAIL2WAF_IPSET_V4_ARN")?,
            ipset_v6: arn("FAIL2WAF_IPSET_V6_ARN")?,
            dry_run,
            shards,
            log_prefixes: get("FAIL2WAF_LOG_PREFIXES")
                .map(|v| {
                    v.split(',')
                        .map(|p| p.trim().to_string())
                        .filter(|p| !p.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            config: get("FAIL2WAF_CONFIG"),
            format: get("FAIL2WAF_FORMAT"),
        };
        if !settings.dry_run && (settings.ipset_v4.is_none() || settings.ipset_v6.is_none()) {
            return Err(SettingsError::NoIpSets);
        }
        Ok(settings)
    }
}

/// A failure of an operation, and whether a retry may help.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// S3 failed.
    #[error(transparent)]
    S3(#[from] S3Error),
    /// WAF failed.
    #[error(transparent)]
    Waf(#[from] WafError),
    /// The configuration or the input is wrong: a retry will not help.
    #[error("{0}")]
    Invalid(String),
    /// A passing failure (a download broken mid-stream): retry.
    #[error("{0}")]
    Retryable(String),
}

impl ServiceError {
    /// May a retry succeed?
    pub fn retryable(&self) -> bool {
        match self {
            ServiceError::S3(e) => e.retryable(),
            ServiceError::Waf(e) => e.retryable(),
            ServiceError::Invalid(_) => false,
            ServiceError::Retryable(_) => true,
        }
    }
}

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
    pub blocks: Vec<(IpNet, Block)>,
    /// Newest event time seen in the object (epoch ms).
    pub newest_event_ms: Option<i64>,
    /// What the engine counted, and what it could not (`untracked`:
    /// beyond the key cap; `future`: dated over a day ahead).
    pub counts: EngineStats,
    /// The enforcement that followed new blocks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enforce: Option<EnforceReport>,
}

/// What an enforcement did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EnforceReport {
    /// Another invocation holds the writer lease and will pick our change up.
    pub deferred: bool,
    /// Dry run: WAF was not touched.
    pub dry_run: bool,
    /// Networks in each set after the sync.
    pub v4: usize,
    /// Networks in each set after the sync.
    pub v6: usize,
    /// Active blocks left out for lack of capacity.
    pub overflow: usize,
    /// UpdateIPSet calls made.
    pub writes: u32,
    /// Networks added and removed.
    pub added: usize,
    /// Networks removed.
    pub removed: usize,
    /// Lock-token conflicts retried.
    pub lock_retries: u32,
    /// Throttled WAF calls retried.
    pub throttled: u32,
    /// Networks refused by validation (should be none).
    pub invalid: Vec<String>,
}

/// Which stored object a merge is for: the site-wide counts, or shard `n`
/// (the keys [`S3Store::shard_of`] puts there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StatePart {
    Site,
    Shard(u32),
}

/// The service: configuration, state store and WAF.
pub struct Service {
    /// The state store.
    pub store: S3Store,
    waf: Option<aws_sdk_wafv2::Client>,
    /// The settings.
    pub settings: Settings,
    /// The rules.
    pub config: Config,
    policy: Policy,
    format: Option<Format>,
}

impl Service {
    /// Build clients from the environment (`AWS_ENDPOINT_URL` included) and
    /// load the configuration (`FAIL2WAF_CONFIG`, a path or an s3:// URI).
    pub async fn from_env() -> Result<Service, ServiceError> {
        let settings = Settings::from_env().map_err(|e| ServiceError::Invalid(e.to_string()))?;
        Service::new(settings).await
    }

    /// Build clients from the environment for `settings`.
    pub async fn new(settings: Settings) -> Result<Service, ServiceError> {
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        Service::with_sdk(settings, &sdk).await
    }

    /// Build clients from an SDK configuration for `settings`.
    pub async fn with_sdk(
        settings: Settings,
        sdk: &aws_config::SdkConfig,
    ) -> Result<Service, ServiceError> {
        let s3 = client_from_env(sdk).await;
        let config = match &settings.config {
            None => Config::default(),
            Some(src) => {
                let text = match src.parse::<S3Loc>() {
                    Ok(loc) => {
                        let out = s3
                            .get_object()
                            .bucket(&loc.bucket)
                            .key(&loc.prefix)
                            .send()
                            .await
                            .map_err(|e| {
                                ServiceError::Invalid(format!(
                                    "FAIL2WAF_CONFIG {src}: {}",
                                    aws_sdk_s3::error::DisplayErrorContext(&e)
                                ))
                            })?;
                        let bytes = out
                            .body
                            .collect()
                            .await
                            .map_err(|e| ServiceError::Retryable(e.to_string()))?;
                        String::from_utf8(bytes.to_vec())
                            .map_err(|_| ServiceError::Invalid(format!("{src}: not UTF-8")))?
                    }
                    Err(_) => std::fs::read_to_string(src).map_err(|e| {
                        ServiceError::Invalid(format!("FAIL2WAF_CONFIG {src}: {e}"))
                    })?,
                };
                Config::parse(&text)
                    .map_err(|e| ServiceError::Invalid(format!("FAIL2WAF_CONFIG {src}: {e}")))?
            }
        };
        let format = match &settings.format {
            None => None,
            Some(name) => Some(config.format(name).ok_or_else(|| {
                ServiceError::Invalid(format!("FAIL2WAF_FORMAT: unknown format `{name}`"))
            })?),
        };
        let waf = (!settings.dry_run).then(|| super::waf::client_from_env(sdk));
        Ok(Service::from_parts(s3, waf, settings, config, format))
    }

    /// A service over given clients (tests inject faults this way).
    pub fn from_parts(
        s3: aws_sdk_s3::Client,
        waf: Option<aws_sdk_wafv2::Client>,
        settings: Settings,
        config: Config,
        format: Option<Format>,
    ) -> Service {
        Service {
            store: S3Store::new(s3, settings.state.clone(), settings.shards),
            waf,
            policy: Policy::new(&config),
            config,
            settings,
            format,
        }
    }

    /// The safety policy in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Change the ledger under optimistic concurrency (manual actions);
    /// `change` returns whether it changed anything.
    pub async fn update_ledger(
        &self,
        change: impl FnMut(&mut Ledger) -> bool,
    ) -> Result<Ledger, ServiceError> {
        Ok(self
            .store
            .update(&self.store.ledger_key(), change)
            .await?
            .value)
    }

    /// The stored windows of `key` (the shard it lives in) and the site counts.
    pub async fn windows_of(&self, key: &IpNet) -> Result<StoredState, ServiceError> {
        let shard = self
            .store
            .get::<Shard>(&self.store.shard_key(self.store.shard_of(key)))
            .await?;
        let site = self.store.get::<Shard>(&self.store.site_key()).await?;
        let mut e = Engine::new(&self.config);
        e.import(&site.value.state);
        e.import(&shard.value.state);
        Ok(e.export())
    }

    /// Use `config` instead of the one the settings named.
    pub fn set_config(&mut self, config: Config) {
        self.policy = Policy::new(&config);
        self.config = config;
    }

    fn threshold_factor(&self, ledger: &Ledger, now_ms: i64) -> f64 {
        match ledger.incident_until_ms {
            Some(t) if t > now_ms => self.config.file.incident.threshold_factor,
            _ => 1.0,
        }
    }

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
            if let NameHint::Skip(why) = detect_from_name(key) {
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
        let id = id.as_str();
        let ledger = self.store.ledger().await?;
        let factor = self.threshold_factor(&ledger.value, now_ms);
        let config = self.config.clone();
        let format = self.format.clone();
        let (file, local, counts) = tokio::task::spawn_blocking(move || {
            let mut d = Detector::new(config);
            let r = d.process(&name, reader, format.as_ref());
            let (engine, _) = d.into_parts();
            (
                r,
                engine.export_with(|_| true, ExportKeys::AlsoTotalsOnly),
                engine.stats(),
            )
        })
        .await
        .map_err(|e| ServiceError::Retryable(format!("parser task: {e}")))?;
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
        let site_only = StoredState {
            keys: BTreeMap::new(),
            ..local.clone()
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
        rep.duplicate = duplicate;

        // Then each touched shard: merge, and judge the keys this object touched.
        let mut parts: BTreeMap<u32, BTreeSet<IpNet>> = BTreeMap::new();
        for (k, sk) in &local.keys {
            if !sk.rules.is_empty() {
                parts.entry(self.store.shard_of(k)).or_default().insert(*k);
            }
        }
        let mut offenses: Vec<Offense> = Vec::new();
        for (n, touched) in parts {
            Deadline::check(
                deadline,
                &format!("before merging {} into shard {n}", rep.object),
            )?;
            let mut wrote = false;
            let shard = self
                .store
                .update::<Shard, _>(&self.store.shard_key(n), |sh| {
                    wrote = false;
                    if sh.absorbed.contains_key(id) {
                        return false;
                    }
                    sh.state = self.merge(&sh.state, &local, StatePart::Shard(n), now_ms);
                    sh.absorbed.insert(id.to_string(), now_ms);
                    sh.prune_absorbed(now_ms);
                    wrote = true;
                    true
                })
                .await?;
            rep.shards_written += u32::from(wrote);
            let mut engine = Engine::new(&self.config);
            engine.set_threshold_factor(factor);
            engine.import(&site.value.state);
            engine.import(&shard.value.state);
            engine.evaluate_keys(Some(&touched));
            offenses.extend(engine.take_offenses());
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

    /// `base` plus what of `add` belongs in `part` (for a shard, its keys
    /// that have matched requests or already exist in `base`), pruned. The
    /// site object keeps only the site-wide counts; a shard only its keys.
    fn merge(
        &self,
        base: &StoredState,
        add: &StoredState,
        part: StatePart,
        now_ms: i64,
    ) -> StoredState {
        let mut e = Engine::new(&self.config);
        e.import(base);
        let keep = |k: &IpNet| match part {
            StatePart::Site => false,
            StatePart::Shard(n) => self.store.shard_of(k) == n,
        };
        let mut add = add.clone();
        add.keys
            .retain(|k, sk| keep(k) && (!sk.rules.is_empty() || base.keys.contains_key(k)));
        e.import(&add);
        e.prune_before(
            e.bucket_of(now_ms - LATE_SLACK_MS)
                .saturating_sub(self.config.longest_window_buckets()),
        );
        e.prune();
        let mut out = e.export();
        match part {
            StatePart::Site => out.keys.clear(),
            StatePart::Shard(_) => out.site = Default::default(),
        }
        out
    }

    /// Apply offenses to the ledger; the new blocks.
    async fn decide(
        &self,
        mut offenses: Vec<Offense>,
    ) -> Result<Vec<(IpNet, Block)>, ServiceError> {
        if offenses.is_empty() {
            return Ok(Vec::new());
        }
        offenses.sort_by(|a, b| (a.time_ms, a.key, &a.rule).cmp(&(b.time_ms, b.key, &b.rule)));
        let mut added = Vec::new();
        self.store
            .update::<Ledger, _>(&self.store.ledger_key(), |l| {
                added.clear();
                for o in &offenses {
                    if let Outcome::Blocked(b) = l.apply(o, &self.policy) {
                        added.push((o.key.trunc(), b));
                    }
                }
                !added.is_empty()
            })
            .await?;
        Ok(added)
    }

    /// Make both IP sets hold the ledger's active blocks. One writer at a
    /// time (a lease in S3): a concurrent caller returns `deferred` and the
    /// holder, which re-reads the ledger until it is stable, picks its
    /// change up. Writes are spaced by at least a second.
    pub async fn enforce(&self, now_ms: i64, holder: &str) -> Result<EnforceReport, ServiceError> {
        let mut rep = EnforceReport {
            dry_run: self.settings.dry_run,
            ..EnforceReport::default()
        };
        let (Some(waf), Some(v4), Some(v6)) =
            (&self.waf, &self.settings.ipset_v4, &self.settings.ipset_v6)
        else {
            let ledger = self.store.ledger().await?;
            let d = ledger.value.desired(now_ms, &self.policy);
            (rep.v4, rep.v6, rep.overflow) =
                (d.v4.len(), d.v6.len(), d.overflow_v4 + d.overflow_v6);
            return Ok(rep);
        };
        let lease_key = self.store.lease_key();
        for _round in 0..5 {
            let lease = self.store.get::<Lease>(&lease_key).await?;
            if !lease.value.holder.is_empty()
                && lease.value.holder != holder
                && lease.value.until_ms > now_ms
            {
                rep.deferred = true;
                return Ok(rep);
            }
            let last_write = Arc::new(Mutex::new(lease.value.last_write_ms));
            let mine = Lease {
                holder: holder.into(),
                until_ms: now_ms + LEASE_MS,
                last_write_ms: lease.value.last_write_ms,
            };
            let Some(etag) = self
                .store
                .put(&lease_key, &mine, lease.etag.as_deref())
                .await?
            else {
                rep.deferred = true;
                return Ok(rep);
            };
            // A failed sync still releases the lease (below), so the next
            // writer or the expire reconcile need not wait for it to run out.
            let synced: Result<_, ServiceError> = async {
                loop {
                    let ledger = self.store.ledger().await?;
                    let d = ledger.value.desired(now_ms, &self.policy);
                    rep.overflow = d.overflow_v4 + d.overflow_v6;
                    for (set, nets, version, widest, count) in [
                        (
                            v4,
                            &d.v4,
                            IpVersion::V4,
                            self.config.file.max_prefix_v4,
                            &mut rep.v4,
                        ),
                        (
                            v6,
                            &d.v6,
                            IpVersion::V6,
                            self.config.file.max_prefix_v6,
                            &mut rep.v6,
                        ),
                    ] {
                        let mut want = BTreeSet::new();
                        for n in nets {
                            match validate(n, version, widest) {
                                Ok(_) => {
                                    want.insert(*n);
                                }
                                Err(e) => rep.invalid.push(e.to_string()),
                            }
                        }
                        *count = want.len();
                        let lw = last_write.clone();
                        let out = sync_set(waf, set, &want, move || pace(lw.clone())).await?;
                        rep.writes += u32::from(out.written);
                        rep.added += out.added;
                        rep.removed += out.removed;
                        rep.lock_retries += out.lock_retries;
                        rep.throttled += out.throttled;
                    }
                    let again = self.store.ledger().await?;
                    if again.etag == ledger.etag {
                        break Ok(ledger.etag);
                    }
                }
            }
            .await;
            let released = Lease {
                holder: String::new(),
                until_ms: 0,
                last_write_ms: *last_write.lock().expect("lock"),
            };
            let synced = match synced {
                Ok(etag) => etag,
                Err(e) => {
                    let _ = self.store.put(&lease_key, &released, Some(&etag)).await;
                    return Err(e);
                }
            };
            self.store.put(&lease_key, &released, Some(&etag)).await?;
            if self.store.ledger().await?.etag == synced {
                return Ok(rep);
            }
        }
        Ok(rep)
    }

    /// Remove ended blocks, end incident mode when its time is up, prune
    /// stored windows and absorbed records, and reconcile both IP sets with
    /// the ledger (so a lost update heals). Returns the removed blocks.
    pub async fn expire(
        &self,
        now_ms: i64,
        holder: &str,
    ) -> Result<(Vec<(IpNet, Block)>, EnforceReport), ServiceError> {
        let mut removed = Vec::new();
        self.store
            .update::<Ledger, _>(&self.store.ledger_key(), |l| {
                removed = l.expire(now_ms, &self.policy);
                let incident_over = l.incident_until_ms.is_some_and(|t| t <= now_ms);
                if incident_over {
                    l.incident_until_ms = None;
                }
                !removed.is_empty() || incident_over
            })
            .await?;
        let shards =
            (0..self.store.shards()).map(|n| (self.store.shard_key(n), StatePart::Shard(n)));
        for (key, part) in shards.chain([(self.store.site_key(), StatePart::Site)]) {
            self.store
                .update::<Shard, _>(&key, |sh| {
                    if *sh == Shard::default() {
                        return false; // never written
                    }
                    let before = sh.clone();
                    sh.state = self.merge(&sh.state, &StoredState::default(), part, now_ms);
                    sh.prune_absorbed(now_ms);
                    *sh != before
                })
                .await?;
        }
        let rep = self.enforce(now_ms, holder).await?;
        Ok((removed, rep))
    }

    /// Judge everything already counted again, with the current thresholds
    /// (after incident mode began), and block what offends.
    pub async fn rejudge(
        &self,
        now_ms: i64,
        holder: &str,
    ) -> Result<Vec<(IpNet, Block)>, ServiceError> {
        let ledger = self.store.ledger().await?;
        let factor = self.threshold_factor(&ledger.value, now_ms);
        let site = self.store.get::<Shard>(&self.store.site_key()).await?;
        let mut offenses = Vec::new();
        for n in 0..self.store.shards() {
            let shard = self.store.get::<Shard>(&self.store.shard_key(n)).await?;
            if shard.etag.is_none() {
                continue;
            }
            let mut engine = Engine::new(&self.config);
            engine.set_threshold_factor(factor);
            engine.import(&site.value.state);
            engine.import(&shard.value.state);
            engine.evaluate_all();
            offenses.extend(engine.take_offenses());
        }
        let blocks = self.decide(offenses).await?;
        if !blocks.is_empty() {
            self.enforce(now_ms, holder).await?;
        }
        Ok(blocks)
    }

    /// Enter incident mode until `until_ms` (`None`: leave it).
    pub async fn set_incident(&self, until_ms: Option<i64>) -> Result<(), ServiceError> {
        self.store
            .update::<Ledger, _>(&self.store.ledger_key(), |l| {
                let changed = l.incident_until_ms != until_ms;
                l.incident_until_ms = until_ms;
                changed
            })
            .await?;
        Ok(())
    }

    /// The log objects under the configured prefixes modified at or after
    /// `since_ms` (`{date}` in a prefix expands to each day from then to now).
    pub async fn recent_objects(
        &self,
        since_ms: i64,
        now_ms: i64,
    ) -> Result<Vec<(String, String)>, ServiceError> {
        let mut out = Vec::new();
        for p in &self.settings.log_prefixes {
            let mut prefixes = Vec::new();
            if p.contains("{date}") {
                let mut day = since_ms.div_euclid(86_400_000);
                while day <= now_ms.div_euclid(86_400_000) {
                    let d = chrono::DateTime::from_timestamp(day * 86_400, 0).unwrap_or_default();
                    prefixes.push(p.replace("{date}", &d.format("%Y/%m/%d").to_string()));
                    day += 1;
                }
            } else {
                prefixes.push(p.clone());
            }
            for prefix in prefixes {
                let loc: S3Loc = prefix
                    .parse()
                    .map_err(|e| ServiceError::Invalid(format!("FAIL2WAF_LOG_PREFIXES: {e}")))?;
                let mut pages = self
                    .store
                    .client()
                    .list_objects_v2()
                    .bucket(&loc.bucket)
                    .prefix(&loc.prefix)
                    .into_paginator()
                    .send();
                let mut listed = 0usize;
                while let Some(page) = pages.next().await {
                    let page = page.map_err(|e| {
                        S3Error::from_sdk("ListObjectsV2", &loc.bucket, &loc.prefix, &e)
                    })?;
                    for o in page.contents() {
                        listed += 1;
                        let modified = o.last_modified().map_or(0, |t| t.to_millis().unwrap_or(0));
                        if modified >= since_ms {
                            if let Some(k) = o.key() {
                                out.push((loc.bucket.clone(), k.to_string()));
                            }
                        }
                    }
                    if listed >= 50_000 {
                        break;
                    }
                }
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }
}

async fn pace(last_write: Arc<Mutex<i64>>) {
    let now = wall_ms();
    let last = *last_write.lock().expect("lock");
    let wait = last + WRITE_SPACING_MS - now;
    if wait > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(wait as u64)).await;
    }
    *last_write.lock().expect("lock") = wall_ms();
}

pub use crate::duration::wall_ms;

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(pairs: &[(&str, &str)], k: &str) -> Option<String> {
        pairs
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| (*v).to_string())
    }

    #[test]
    fn settings_from_the_environment() {
        const ARN4: &str = "arn:aws:wafv2:us-east-1:123456789012:regional/ipset/f-v4/id4";
        const ARN6: &str = "arn:aws:wafv2:us-east-1:123456789012:regional/ipset/f-v6/id6";
        let full = [
            ("FAIL2WAF_STATE", "s3://state/fail2waf/"),
            ("FAIL2WAF_IPSET_V4_ARN", ARN4),
            ("FAIL2WAF_IPSET_V6_ARN", ARN6),
        ];
        let s = Settings::from_lookup(|k| lookup(&full, k)).unwrap();
        assert_eq!(
            (s.state.bucket.as_str(), s.shards, s.dry_run),
            ("state", 16, false)
        );
        let no_sets = [("FAIL2WAF_STATE", "s3://state/")];
        assert_eq!(
            Settings::from_lookup(|k| lookup(&no_sets, k)).unwrap_err(),
            SettingsError::NoIpSets
        );
        let dry = [
            ("FAIL2WAF_STATE", "s3://state/"),
            ("FAIL2WAF_DRY_RUN", "TRUE"),
        ];
        assert!(Settings::from_lookup(|k| lookup(&dry, k)).unwrap().dry_run);
        let bad = [
            ("FAIL2WAF_STATE", "s3://state/"),
            ("FAIL2WAF_DRY_RUN", "maybe"),
        ];
        assert!(Settings::from_lookup(|k| lookup(&bad, k)).is_err());
        assert!(Settings::from_lookup(|_| None)
            .unwrap_err()
            .to_string()
            .contains("FAIL2WAF_STATE"));
        let local = [("FAIL2WAF_STATE", "/tmp")];
        assert!(Settings::from_lookup(|k| lookup(&local, k)).is_err());
    }
}
