//! The deployed product's operations: ingest a log object, enforce the
//! ledger on WAF, expire blocks, react to an alarm. The Lambda handlers
//! and the CLI call these; everything here goes through the real AWS SDK.
//!
//! Here: the [`Service`], its errors, and how stored counts merge. Beside
//! it: `service/settings.rs` (the functions' environment),
//! `service/deadline.rs` (when an invocation stops starting new work),
//! `service/ingest.rs` (count a log object into the shared state and judge
//! it), `service/enforce.rs` (decide blocks, make the IP sets hold them,
//! expire them) and `service/incident.rs` (incident mode: judge everything
//! again, find the objects to re-scan).

mod deadline;
mod enforce;
mod guardduty;
mod incident;
mod ingest;
mod reload;
mod settings;

pub use deadline::Deadline;
pub use enforce::EnforceReport;
pub use guardduty::{rule_of, FindingReport};
pub use ingest::{BatchReport, IngestReport, LogObject, SHARD_WRITES};
pub use reload::Current;
pub use settings::{Settings, SettingsError};

use super::notify::{Action, Decision, Notifier};
use super::s3::{client_from_env, S3Error, S3Loc};
use super::store::{S3Store, Shard};
use super::waf::WafError;
use crate::config::Config;
use crate::engine::{Engine, StoredState};
use crate::formats::Format;
use crate::key::Key;
use crate::ledger::Block;
use crate::ledger::{Ledger, Policy};
use std::sync::atomic::{AtomicU64, Ordering};

/// Counts older than this before now (beyond the longest window) are
/// pruned from stored state: logs arrive minutes to hours late.
const LATE_SLACK_MS: i64 = 2 * 3600 * 1000;

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

/// Which stored object a merge is for: the site-wide counts, or shard `n`
/// (the keys [`S3Store::shard_of`] puts there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StatePart {
    /// The site object: the site-wide counts, no keys.
    Site,
    /// Shard `n`: its keys, no site-wide counts.
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
    notifier: Option<Notifier>,
    /// Decision events sent and given up on.
    pub events: EventStats,
    /// The ETag of the rules file read from S3 (`FAIL2WAF_CONFIG=s3://…`).
    pub config_etag: Option<String>,
}

/// Decision events sent (and given up on) by a service.
#[derive(Debug, Default)]
pub struct EventStats {
    /// Events EventBridge accepted.
    pub sent: AtomicU64,
    /// Events given up on.
    pub failed: AtomicU64,
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
        let mut config_etag = None;
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
                        config_etag = out.e_tag().map(str::to_string);
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
        let mut config = config;
        let users = &mut config.file.users;
        if users.header.is_none() && users.cookie.is_none() {
            (users.header, users.cookie) = settings.user_source.clone();
        }
        let format = match &settings.format {
            None => None,
            Some(name) => Some(config.format(name).ok_or_else(|| {
                ServiceError::Invalid(format!("FAIL2WAF_FORMAT: unknown format `{name}`"))
            })?),
        };
        // The sets of one deployment share a region: the IPv4 set's.
        let waf = match (&settings.ipset_v4, settings.dry_run) {
            (Some(set), false) => Some(super::waf::client_for(sdk, set)),
            _ => None,
        };
        let notifier = settings
            .event_bus
            .as_deref()
            .map(|bus| Notifier::new(sdk, bus, settings.dry_run));
        let mut svc = Service::from_parts(s3, waf, settings, config, format);
        svc.notifier = notifier;
        svc.config_etag = config_etag;
        Ok(svc)
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
            notifier: None,
            events: EventStats::default(),
            config_etag: None,
        }
    }

    /// Send decision events through `notifier` (tests; [`Service::with_sdk`]
    /// makes one when `FAIL2WAF_EVENT_BUS` is set).
    pub fn set_notifier(&mut self, notifier: Option<Notifier>) {
        self.notifier = notifier;
    }

    /// Announce decisions on the event bus, if one is set. Never fails:
    /// what could not be sent is logged and counted.
    pub async fn announce(&self, action: Action, blocks: &[(Key, Block)]) {
        let Some(n) = &self.notifier else { return };
        if blocks.is_empty() {
            return;
        }
        let decisions: Vec<Decision> = blocks
            .iter()
            .map(|(key, block)| Decision {
                action,
                key: key.clone(),
                block: block.clone(),
            })
            .collect();
        let rep = n.send(&decisions).await;
        self.events
            .sent
            .fetch_add(rep.sent as u64, Ordering::Relaxed);
        self.events
            .failed
            .fetch_add(rep.failed as u64, Ordering::Relaxed);
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
    pub async fn windows_of(&self, key: &Key) -> Result<StoredState, ServiceError> {
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

    /// What the thresholds are multiplied by at `now_ms`: incident mode's
    /// factor while it lasts, else 1.
    fn threshold_factor(&self, ledger: &Ledger, now_ms: i64) -> f64 {
        match ledger.incident_until_ms {
            Some(t) if t > now_ms => self.config.file.incident.threshold_factor,
            _ => 1.0,
        }
    }

    /// An engine over the site-wide counts and one shard, its thresholds
    /// scaled by `factor` (incident mode), to judge the shard's keys.
    fn engine_for(&self, factor: f64, site: &StoredState, shard: &StoredState) -> Engine {
        let mut engine = Engine::new(&self.config);
        engine.set_threshold_factor(factor);
        engine.import(site);
        engine.import(shard);
        engine
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
        let keep = |k: &Key| match part {
            StatePart::Site => false,
            StatePart::Shard(n) => self.store.shard_of(k) == n,
        };
        // Only this part's keys are copied (a large object's state holds
        // every client it saw).
        let add = StoredState {
            version: add.version,
            bucket_secs: add.bucket_secs,
            newest: add.newest,
            site: add.site.clone(),
            keys: add
                .keys
                .iter()
                .filter(|(k, sk)| keep(k) && (!sk.rules.is_empty() || base.keys.contains_key(k)))
                .map(|(k, sk)| (k.clone(), sk.clone()))
                .collect(),
        };
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
}
