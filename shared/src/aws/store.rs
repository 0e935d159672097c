//! Shared state in S3 under optimistic concurrency.
//!
//! Layout under `FAIL2WAF_STATE=s3://bucket/prefix/` (format version 1):
//!
//! | object | holds |
//! |---|---|
//! | `v1/shard-NN.json` (NN = 00..shards-1) | windows of the keys whose network (/24, /48) hashes to NN, and the log objects absorbed into it |
//! | `v1/site.json` | site-wide counts (outage awareness), and the log objects absorbed into them |
//! | `v1/ledger.json` | blocks, offense history, audit trail, incident mode |
//! | `v1/waf-writer.json` | the lease of the one WAF writer, and when it last wrote |
//!
//! Every write is conditional: `If-Match` on the ETag read, or
//! `If-None-Match: *` for a new object. On a conflict the writer re-reads,
//! re-applies its change and tries again with jittered backoff. Each shard
//! (and the site object) records the log objects (bucket, key and ETag) it
//! has absorbed, so a duplicated event or a retried invocation changes
//! nothing, even after a crash half-way through the shards.

use super::s3::{get_json, put_json, S3Error, S3Loc, Versioned};
use crate::engine::StoredState;
use crate::key::Key;
use crate::ledger::Ledger;
use aws_sdk_s3::Client;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The version of the layout (`v1/` in every key).
pub const LAYOUT: &str = "v1";

/// How long an absorbed-object record is kept (S3 redelivers duplicates
/// within hours; a day is ample).
pub const ABSORBED_KEEP_MS: i64 = 24 * 3600 * 1000;

/// Most attempts of one conditional update before giving up.
const MAX_ATTEMPTS: u32 = 25;

/// A shard of the windows (or the site object).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Shard {
    /// The windows.
    pub state: StoredState,
    /// Log objects already counted: `bucket/key@etag` → wall-clock ms.
    pub absorbed: BTreeMap<String, i64>,
}

impl Shard {
    /// Forget absorbed records older than [`ABSORBED_KEEP_MS`].
    pub fn prune_absorbed(&mut self, now_ms: i64) {
        self.absorbed.retain(|_, t| now_ms - *t < ABSORBED_KEEP_MS);
    }
}

/// The WAF writer's lease.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// Who holds it (an invocation's request id); empty when free.
    pub holder: String,
    /// Held until (wall-clock ms).
    pub until_ms: i64,
    /// The last UpdateIPSet call (wall-clock ms), for pacing.
    pub last_write_ms: i64,
}

/// Counters of the S3 traffic of one invocation.
#[derive(Debug, Default)]
pub struct StoreStats {
    /// GET requests.
    pub gets: AtomicU64,
    /// PUT requests.
    pub puts: AtomicU64,
    /// Conditional writes that lost a race and were retried.
    pub cas_retries: AtomicU64,
}

/// The state store in S3.
pub struct S3Store {
    s3: Client,
    loc: S3Loc,
    shards: u32,
    /// Request counters.
    pub stats: StoreStats,
}

impl S3Store {
    /// A store at `loc` with `shards` shards (the shard count is part of the
    /// layout: change it only with a fresh prefix).
    pub fn new(s3: Client, loc: S3Loc, shards: u32) -> S3Store {
        S3Store {
            s3,
            loc,
            shards: shards.clamp(1, 256),
            stats: StoreStats::default(),
        }
    }

    /// The S3 client.
    pub fn client(&self) -> &Client {
        &self.s3
    }

    /// Where the state lives.
    pub fn location(&self) -> &S3Loc {
        &self.loc
    }

    /// Number of shards.
    pub fn shards(&self) -> u32 {
        self.shards
    }

    /// The shard of a key: a network's by its /24 or /48, so a network and
    /// all its members live in the same shard; a user's by its value.
    pub fn shard_of(&self, key: &Key) -> u32 {
        let h = match key {
            Key::Net(n) => {
                let net = crate::client::widen(*n, 24, 48);
                crate::window::stable_hash(net.network().to_string().as_bytes())
            }
            Key::User(_) => crate::window::stable_hash(key.to_string().as_bytes()),
        };
        (h % u64::from(self.shards)) as u32
    }

    /// Object key of shard `n`.
    pub fn shard_key(&self, n: u32) -> String {
        self.loc.key(&format!("{LAYOUT}/shard-{n:02}.json"))
    }

    /// Object key of the site counts.
    pub fn site_key(&self) -> String {
        self.loc.key(&format!("{LAYOUT}/site.json"))
    }

    /// Object key of the ledger.
    pub fn ledger_key(&self) -> String {
        self.loc.key(&format!("{LAYOUT}/ledger.json"))
    }

    /// Object key of the WAF writer lease.
    pub fn lease_key(&self) -> String {
        self.loc.key(&format!("{LAYOUT}/waf-writer.json"))
    }

    /// Read a JSON object.
    pub async fn get<T: DeserializeOwned + Default>(
        &self,
        key: &str,
    ) -> Result<Versioned<T>, S3Error> {
        self.stats.gets.fetch_add(1, Ordering::Relaxed);
        get_json(&self.s3, &self.loc.bucket, key).await
    }

    /// Write a JSON object if still at `etag`; `Ok(None)` on a lost race.
    pub async fn put<T: Serialize>(
        &self,
        key: &str,
        value: &T,
        etag: Option<&str>,
    ) -> Result<Option<String>, S3Error> {
        self.stats.puts.fetch_add(1, Ordering::Relaxed);
        Ok(put_json(&self.s3, &self.loc.bucket, key, value, etag)
            .await?
            .ok())
    }

    /// Read–modify–write `key` until the conditional write wins. `change`
    /// returns whether it changed anything (nothing is written otherwise)
    /// and may be called several times, always on a fresh read. Returns the
    /// value as written (or as read when unchanged) and its ETag.
    pub async fn update<T, F>(&self, key: &str, mut change: F) -> Result<Versioned<T>, S3Error>
    where
        T: DeserializeOwned + Serialize + Default,
        F: FnMut(&mut T) -> bool,
    {
        for attempt in 0..MAX_ATTEMPTS {
            let mut v: Versioned<T> = self.get(key).await?;
            if !change(&mut v.value) {
                return Ok(v);
            }
            if let Some(etag) = self.put(key, &v.value, v.etag.as_deref()).await? {
                return Ok(Versioned {
                    value: v.value,
                    etag: Some(etag),
                });
            }
            self.stats.cas_retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(backoff(attempt)).await;
        }
        Err(S3Error {
            op: "PutObject",
            bucket: self.loc.bucket.clone(),
            key: key.to_string(),
            status: Some(412),
            code: Some("TooMuchContention".into()),
            message: format!("gave up after {MAX_ATTEMPTS} conflicting writes"),
        })
    }

    /// The ledger as stored.
    pub async fn ledger(&self) -> Result<Versioned<Ledger>, S3Error> {
        self.get(&self.ledger_key()).await
    }
}

/// Jittered exponential backoff: 20 ms × 2^attempt, capped at 2 s, times a
/// random factor in [0.5, 1.5).
pub fn backoff(attempt: u32) -> Duration {
    let base = 20u64.saturating_mul(1 << attempt.min(7)).min(2000);
    Duration::from_millis(base / 2 + jitter(base))
}

/// A cheap random number in `0..n` (no dependency on a RNG crate: the
/// clock's nanoseconds mixed with a counter).
pub fn jitter(n: u64) -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as u64);
    let mut x = nanos ^ COUNTER.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    if n == 0 {
        0
    } else {
        x % n
    }
}
