//! Reading the inputs for the report: the detector runs over them with a
//! [`Recorder`] that sees every counted request with its key and the rules
//! it matched, and keeps detail only for keys with matched requests
//! (bounded: [`MAX_KEYS`] keys, [`MAX_PATHS`] distinct paths per key).

use crate::detect::{input_bytes, open_input, progress, Sources};
use anyhow::Result;
use fail2waf_core::hit::Hit;
use fail2waf_core::key::{Key, User};
use fail2waf_core::pipeline::{FileReport, Pipeline, Recorder};
use fail2waf_core::printable::clip;
use fail2waf_core::route::RouteNamer;
use fail2waf_core::rules::RuleSet;
use ipnet::IpNet;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

/// Most keys (addresses, IPv6 /64s) with matched requests given detail.
pub(super) const MAX_KEYS: usize = 50_000;
/// Most keys whose requests are counted before they match anything.
pub(super) const MAX_QUIET_KEYS: usize = 500_000;
/// Most distinct paths kept per key (the rest are counted as "other").
pub(super) const MAX_PATHS: usize = 200;
/// Longest path or user agent kept, in bytes (before control characters
/// are escaped).
const MAX_TEXT: usize = 300;
/// Most (minute, route section) pairs with server errors tracked for the
/// site lane's outage bands (the rest are not judged; the page says so).
pub(super) const MAX_FAILING: usize = 100_000;
/// Most distinct clients remembered per minute and route section.
pub(super) const SECTION_CLIENTS: usize = 64;
/// Most (minute, section) pairs with server errors kept per client.
const MAX_KEY_SECTIONS: usize = 256;

/// What is known of one key with matched requests.
#[derive(Debug, Clone, Default)]
pub(super) struct KeyStats {
    /// Matched requests (any rule).
    pub(super) matched: u64,
    /// All requests.
    pub(super) requests: u64,
    /// Matched requests per minute (epoch minute).
    pub(super) per_minute: BTreeMap<i64, u32>,
    /// Per rule: matched requests per bucket (sparse).
    pub(super) per_rule: Vec<BTreeMap<i64, u32>>,
    /// Status codes of matched requests.
    pub(super) status: BTreeMap<u16, u64>,
    /// Matched paths (up to [`MAX_PATHS`]) and their counts.
    pub(super) paths: HashMap<String, u64>,
    /// Matched requests on paths beyond the cap.
    pub(super) other_paths: u64,
    /// User agent of the first matched request.
    pub(super) user_agent: String,
    /// (minute, route section) of matched server errors (up to
    /// [`MAX_KEY_SECTIONS`]).
    pub(super) failed_sections: BTreeSet<(i64, String)>,
    pub(super) first_ms: i64,
    pub(super) last_ms: i64,
}

impl KeyStats {
    /// Count a matched request on `path` (kept clipped; beyond
    /// [`MAX_PATHS`] paths, as another path).
    fn count_path(&mut self, path: &str) {
        if let Some(n) = self.paths.get_mut(path) {
            *n += 1;
            return;
        }
        // Not kept as it is: a long path or one with control characters
        // is kept clipped.
        let path = clip(path, MAX_TEXT);
        if let Some(n) = self.paths.get_mut(&path) {
            *n += 1;
        } else if self.paths.len() < MAX_PATHS {
            self.paths.insert(path, 1);
        } else {
            self.other_paths += 1;
        }
    }

    pub(super) fn merge(&mut self, o: &KeyStats) {
        if self.matched == 0 || (o.matched > self.matched && !o.user_agent.is_empty()) {
            self.user_agent = o.user_agent.clone();
        }
        if self.matched == 0 {
            self.first_ms = o.first_ms;
            self.last_ms = o.last_ms;
        }
        self.first_ms = self.first_ms.min(o.first_ms);
        self.last_ms = self.last_ms.max(o.last_ms);
        self.matched += o.matched;
        self.requests += o.requests;
        for (m, c) in &o.per_minute {
            *self.per_minute.entry(*m).or_insert(0) += c;
        }
        if self.per_rule.len() < o.per_rule.len() {
            self.per_rule.resize(o.per_rule.len(), BTreeMap::new());
        }
        for (r, buckets) in o.per_rule.iter().enumerate() {
            for (b, c) in buckets {
                *self.per_rule[r].entry(*b).or_insert(0) += c;
            }
        }
        for (s, c) in &o.status {
            *self.status.entry(*s).or_insert(0) += c;
        }
        for (p, c) in &o.paths {
            *self.paths.entry(p.clone()).or_insert(0) += c;
        }
        self.other_paths += o.other_paths;
        for e in &o.failed_sections {
            if self.failed_sections.len() >= MAX_KEY_SECTIONS {
                break;
            }
            self.failed_sections.insert(e.clone());
        }
    }
}

/// What the whole site got in one minute.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct SiteMinute {
    pub(super) requests: u64,
    pub(super) c4xx: u64,
    pub(super) c5xx: u64,
}

/// Everything the recorder collects.
#[derive(Debug, Default)]
pub(super) struct Data {
    pub(super) bucket_ms: i64,
    pub(super) rules: usize,
    /// The rules that count per user.
    pub(super) user_rules: RuleSet,
    pub(super) keys: HashMap<Key, KeyStats>,
    /// Requests of keys without matched requests (yet).
    pub(super) quiet: HashMap<Key, u64>,
    pub(super) quiet_full: bool,
    /// Matched requests of keys beyond [`MAX_KEYS`] (not detailed).
    pub(super) dropped_matched: u64,
    /// Counted requests, matched requests.
    pub(super) requests: u64,
    pub(super) matched: u64,
    pub(super) matched_by_rule: Vec<u64>,
    pub(super) first_ms: Option<i64>,
    pub(super) last_ms: Option<i64>,
    /// Every counted request per minute (epoch minute), with its 4xx and 5xx.
    pub(super) site: BTreeMap<i64, SiteMinute>,
    /// Names the route section of a server error.
    pub(super) namer: RouteNamer,
    /// Per (minute, route section): distinct clients with a 5xx there.
    pub(super) failing: HashMap<(i64, String), Vec<IpNet>>,
    /// Server errors whose (minute, section) was not tracked ([`MAX_FAILING`]).
    pub(super) failing_untracked: u64,
}

/// The route section of a path, as outage awareness groups routes: `/api/*`
/// for `/api/cart?x=1`, `/*` for `/login`, or the operator's route pattern
/// that names it.
fn section_of(namer: &RouteNamer, path: &str) -> String {
    let label = namer.label(path.as_bytes());
    RouteNamer::section_label(&label).unwrap_or(label)
}

impl Data {
    /// Count one request of `key`, which matched the rules `matched`: for
    /// the address, and for its user under the user rules.
    fn record(&mut self, key: IpNet, hit: &Hit<'_>, matched: RuleSet) {
        self.requests += 1;
        let t = hit.time_ms;
        self.first_ms = Some(self.first_ms.map_or(t, |f| f.min(t)));
        self.last_ms = Some(self.last_ms.map_or(t, |l| l.max(t)));
        self.matched += u64::from(!matched.is_empty());
        for r in matched.iter() {
            self.matched_by_rule[r] += 1;
        }
        let section = self.record_site(key, hit);
        let user = if self.user_rules.is_empty() {
            None
        } else {
            hit.user.as_deref().and_then(User::new)
        };
        let by_user = matched & self.user_rules;
        let keys = std::iter::once((Key::Net(key), matched & !self.user_rules))
            .chain(user.map(|u| (Key::User(u), by_user)));
        for (k, m) in keys {
            if m.is_empty() {
                self.record_quiet(k);
            } else {
                self.record_matched(k, hit, m, section.clone());
            }
        }
    }

    /// Count the request in its minute of the site lane. A server error is
    /// also counted for its (minute, route section), which is returned.
    fn record_site(&mut self, key: IpNet, hit: &Hit<'_>) -> Option<(i64, String)> {
        let minute = hit.time_ms.div_euclid(60_000);
        let site = self.site.entry(minute).or_default();
        site.requests += 1;
        match hit.status {
            400..=499 => {
                site.c4xx += 1;
                None
            }
            500..=599 => {
                site.c5xx += 1;
                let section = section_of(&self.namer, &hit.path);
                let slot = (minute, section);
                if let Some(clients) = self.failing.get_mut(&slot) {
                    if clients.len() < SECTION_CLIENTS && !clients.contains(&key) {
                        clients.push(key);
                    }
                } else if self.failing.len() < MAX_FAILING {
                    self.failing.insert(slot.clone(), vec![key]);
                } else {
                    self.failing_untracked += 1;
                }
                Some(slot)
            }
            _ => None,
        }
    }

    /// Count a request that matched no rule: in its key's detail if it has
    /// one, as a quiet key's otherwise.
    fn record_quiet(&mut self, key: Key) {
        if let Some(k) = self.keys.get_mut(&key) {
            k.requests += 1;
        } else if let Some(n) = self.quiet.get_mut(&key) {
            *n += 1;
        } else if self.quiet.len() < MAX_QUIET_KEYS {
            self.quiet.insert(key, 1);
        } else {
            self.quiet_full = true;
        }
    }

    /// Count a matched request in its key's detail (given one if there is
    /// room); `section` is the (minute, route section) of a server error.
    fn record_matched(
        &mut self,
        key: Key,
        hit: &Hit<'_>,
        matched: RuleSet,
        section: Option<(i64, String)>,
    ) {
        let t = hit.time_ms;
        if !self.keys.contains_key(&key) {
            if self.keys.len() >= MAX_KEYS {
                self.dropped_matched += 1;
                return;
            }
            let before = self.quiet.remove(&key).unwrap_or(0);
            self.keys.insert(
                key.clone(),
                KeyStats {
                    requests: before,
                    per_rule: vec![BTreeMap::new(); self.rules],
                    user_agent: clip(&hit.user_agent, MAX_TEXT),
                    first_ms: t,
                    last_ms: t,
                    ..KeyStats::default()
                },
            );
        }
        let k = self.keys.get_mut(&key).expect("inserted above");
        k.requests += 1;
        k.matched += 1;
        k.first_ms = k.first_ms.min(t);
        k.last_ms = k.last_ms.max(t);
        *k.per_minute.entry(t.div_euclid(60_000)).or_insert(0) += 1;
        let b = t.div_euclid(self.bucket_ms);
        for r in matched.iter() {
            *k.per_rule[r].entry(b).or_insert(0) += 1;
        }
        *k.status.entry(hit.status).or_insert(0) += 1;
        if let Some(slot) = section {
            if k.failed_sections.len() < MAX_KEY_SECTIONS {
                k.failed_sections.insert(slot);
            }
        }
        k.count_path(&hit.path);
    }
}

/// The recorder given to the detector; the data stays reachable through
/// the shared handle.
struct Shared(Arc<Mutex<Data>>);

impl Recorder for Shared {
    fn record(&mut self, key: IpNet, hit: &Hit<'_>, matched: RuleSet) {
        self.0
            .lock()
            .expect("recorder lock")
            .record(key, hit, matched);
    }
}

/// What reading the inputs left: the detector (its decisions and state at
/// the end), each input's report and what the recorder kept.
pub(super) struct Collected {
    pub(super) detector: Pipeline,
    pub(super) reports: Vec<FileReport>,
    pub(super) data: Data,
}

/// Run the detector over the sources, recording for the report.
pub(super) fn collect(sources: Sources) -> Result<Collected> {
    let bytes = input_bytes(&sources.inputs);
    let Sources {
        config,
        format,
        inputs,
        aws,
    } = sources;
    let _guard = aws.as_ref().map(|a| a.rt.enter());
    let data = Arc::new(Mutex::new(Data {
        bucket_ms: config.bucket_ms(),
        namer: RouteNamer::new(&config.file.outage.routes),
        rules: config.rules.len(),
        user_rules: RuleSet::of(&config.rules, |r| {
            r.config.key == fail2waf_core::rules::KeyKind::User
        }),
        matched_by_rule: vec![0; config.rules.len()],
        ..Data::default()
    }));
    let mut detector = Pipeline::new(config);
    detector.set_recorder(Box::new(Shared(Arc::clone(&data))));
    let bar = progress(bytes, false);
    let mut reports = Vec::new();
    for input in &inputs {
        let name = input.name();
        let reader = open_input(input, &bar, aws.as_ref())?;
        bar.set_message(name.clone());
        reports.push(detector.process(&name, reader, format.as_ref()));
    }
    bar.finish_and_clear();
    drop(detector.take_recorder());
    let data = std::mem::take(&mut *data.lock().expect("recorder lock"));
    Ok(Collected {
        detector,
        reports,
        data,
    })
}
