//! Hits → offenses: the pure, deterministic heart of fail2waf.
//!
//! For every hit the engine resolves the client, adds the request to the
//! client's totals (and to its network's, when a rule counts per prefix),
//! and for every rule the hit matches adds it to that rule's window and
//! evaluates the windows that contain it. An [`Offense`] is emitted when a
//! window reaches the rule's threshold and every other condition of the
//! rule holds (ratio, minimum requests, distinct paths, distinct members,
//! outage awareness). The same hits in the same order always give the same
//! offenses; wall-clock time never enters.

use crate::client::{widen, ClientResolver};
use crate::config::{Config, OutageConfig};
use crate::duration::Secs;
use crate::hit::Hit;
use crate::key::{Key, User};
use crate::printable::{clip, clip_onto};
use crate::route::{route_hash, HeldSections, RouteCount, RouteCounts, RouteNamer};
use crate::rules::{KeyKind, Rule, RuleSet};
use crate::window::{stable_hash, window_start, Bucket, DistinctSet, Series};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, Ipv6Addr};

/// The version of [`StoredState`]'s layout.
pub const STATE_VERSION: u32 = 1;

/// How many example requests an offense keeps as evidence.
const SAMPLES: usize = 3;

/// Why a client offended: everything an operator needs to judge a block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// Matched requests in the offending window.
    pub matched: u64,
    /// All requests of the key in that window.
    pub requests: u64,
    /// The rule's window.
    pub window: Secs,
    /// The threshold in force (lowered in incident mode).
    pub threshold: u32,
    /// Distinct matched paths in the window (counted up to the rule's need).
    pub distinct_paths: u32,
    /// Distinct offending member addresses (prefix rules).
    pub members: u32,
    /// First matched request seen for this key and rule (epoch ms).
    pub first_seen_ms: i64,
    /// Last matched request seen (epoch ms).
    pub last_seen_ms: i64,
    /// Example matched requests: `STATUS METHOD path`.
    pub samples: Vec<String>,
    /// User agent of the first matched request.
    pub user_agent: String,
    /// Decided in incident mode.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub incident: bool,
    /// The GuardDuty finding that decided it (`guardduty:` rules).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finding: Option<Box<FindingRef>>,
}

/// A GuardDuty finding, as evidence of a block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FindingRef {
    /// The finding's id (the same across its recurrences).
    pub id: String,
    /// Its type (`Recon:EC2/PortProbeUnprotectedPort`).
    #[serde(rename = "type")]
    pub kind: String,
    /// Severity, 1.0–10.0.
    pub severity: f64,
    /// Occurrences GuardDuty counted so far.
    pub count: u64,
    /// The action type it saw (`PORT_PROBE`, `NETWORK_CONNECTION`, …).
    pub action: String,
    /// Account and region of the finding.
    pub account: String,
    /// Region of the finding.
    pub region: String,
}

/// A key crossed a rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Offense {
    /// The offending address (as /32, or the IPv6 /64), network or user.
    pub key: Key,
    /// The rule's name.
    pub rule: String,
    /// Event time of the decision (epoch ms).
    pub time_ms: i64,
    /// Why.
    pub evidence: Evidence,
}

/// Per-rule state of one key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RuleState {
    /// Matched requests per bucket.
    pub matched: Series,
    /// Distinct matched paths (hash, newest bucket).
    #[serde(default, skip_serializing_if = "DistinctSet::is_empty")]
    pub paths: DistinctSet,
    /// Distinct members of a prefix key.
    #[serde(default, skip_serializing_if = "DistinctSet::is_empty")]
    pub members: DistinctSet,
    /// First matched request (epoch ms).
    pub first_ms: i64,
    /// Last matched request (epoch ms).
    pub last_ms: i64,
    /// No new offense for this key and rule up to this bucket. Not
    /// stored: after a merge every window is judged again, and the ledger
    /// ignores offenses that an active block already covers.
    #[serde(skip)]
    pub quiet_until: Bucket,
    /// Example requests.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub samples: Vec<String>,
    /// User agent of the first matched request.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user_agent: String,
    /// Outage-aware rules: the key's failures and requests per route and
    /// bucket, on the routes where it failed.
    #[serde(default, skip_serializing_if = "RouteCounts::is_empty")]
    pub routes: RouteCounts,
}

impl RuleState {
    fn merge(&mut self, o: &RuleState, rule: &Rule) {
        let (pcap, mcap) = caps(rule);
        let mine_empty = self.matched.is_empty() && self.samples.is_empty();
        if mine_empty
            || (!o.matched.is_empty()
                && (o.first_ms, &o.user_agent) < (self.first_ms, &self.user_agent))
        {
            self.first_ms = o.first_ms;
            self.user_agent.clone_from(&o.user_agent);
        }
        self.matched.merge(&o.matched);
        self.paths.merge(&o.paths, pcap);
        self.members.merge(&o.members, mcap);
        self.routes.merge(&o.routes);
        self.last_ms = self.last_ms.max(o.last_ms);
        self.samples.extend(o.samples.iter().cloned());
        self.samples.sort();
        self.samples.dedup();
        self.samples.truncate(SAMPLES);
    }
}

/// How many distinct addresses a user rule's evidence counts (at least;
/// more when `min_members` asks for more).
pub const USER_ADDRESSES: u32 = 64;

fn caps(rule: &Rule) -> (usize, usize) {
    let members = match rule.config.key {
        KeyKind::User => rule.config.min_members.max(USER_ADDRESSES),
        _ => rule.config.min_members,
    };
    (rule.config.distinct_paths as usize, members as usize)
}

#[derive(Debug, Clone, Default)]
struct KeyState {
    /// All requests per bucket, but for `pending`.
    total: Series,
    /// Requests of the key's newest bucket not yet added to `total`: the
    /// bucket, and the count (none when 0). A client's request usually
    /// lands in the bucket of its previous one: counting it here, next to
    /// the key, spares a visit to the series' heap memory, which on a site
    /// with many clients is a cache miss per request. (Two fields, not a
    /// pair, so that `aliases` fits beside them.)
    pending_bucket: Bucket,
    pending_count: u16,
    /// The networks (bit i: the `i`th of [`Engine::prefix_lens`] of the
    /// client's family) whose only member this client is, and whose counts
    /// are the client's own ([`Engine::sole`]).
    aliases: u8,
    /// Whether `more` holds a rule's state: an eviction ([`Engine::prune_keys`])
    /// tells the keys to drop without a visit to each one's `more`.
    has_rules: bool,
    /// What only some keys have, boxed: this is the structure every
    /// request visits, and a busy site holds hundreds of thousands of
    /// them, most with nothing but their totals.
    more: Option<Box<MoreState>>,
}

// Every request visits one: the fields beside `total` and `more` fit in
// one word.
#[cfg(target_pointer_width = "64")]
const _: () = assert!(std::mem::size_of::<KeyState>() == 48);

/// Networks with one member ([`Engine::sole`]): network → (the member,
/// its bit in the member's [`KeyState::aliases`]). An IPv4 network of an
/// IPv4 client, most of them, takes 16 bytes (its address and prefix
/// length, the member's address, the bit) instead of 56, for the same
/// reason as a [`Brief`].
#[derive(Debug, Clone, Default)]
struct Sole {
    v4: HashMap<u64, (u32, u8), ahash::RandomState>,
    other: HashMap<NetKey, (NetKey, u8), ahash::RandomState>,
}

const _: () = assert!(std::mem::size_of::<(u64, (u32, u8))>() == 16);

impl Sole {
    /// The IPv4 key of `net`, if it is an IPv4 network.
    #[inline]
    fn v4_key(net: &NetKey) -> Option<u64> {
        (net.len & NetKey::V4 != 0).then_some(net.lo << 8 | (net.len & 0xff))
    }

    /// The network of an IPv4 key.
    fn v4_net(k: u64) -> NetKey {
        NetKey {
            hi: 0,
            lo: k >> 8,
            len: NetKey::V4 | (k & 0xff),
        }
    }

    fn len(&self) -> usize {
        self.v4.len() + self.other.len()
    }

    #[inline]
    fn contains_key(&self, net: &NetKey) -> bool {
        match Sole::v4_key(net) {
            Some(k) if self.v4.contains_key(&k) => true,
            _ => !self.other.is_empty() && self.other.contains_key(net),
        }
    }

    #[inline]
    fn remove(&mut self, net: &NetKey) -> Option<(NetKey, u8)> {
        let v4 = Sole::v4_key(net).and_then(|k| self.v4.remove(&k));
        match v4 {
            Some((m, bit)) => Some((brief_key(m), bit)),
            // (An IPv4 network of a member that is not an IPv4 address:
            // never made, as members are client keys.)
            None if self.other.is_empty() => None,
            None => self.other.remove(net),
        }
    }

    #[inline]
    fn insert(&mut self, net: NetKey, (member, bit): (NetKey, u8)) {
        match (Sole::v4_key(&net), brief_addr(member.net())) {
            (Some(k), Some(m)) => {
                self.v4.insert(k, (m, bit));
            }
            _ => {
                self.other.insert(net, (member, bit));
            }
        }
    }

    fn clear(&mut self) {
        self.v4.clear();
        self.other.clear();
    }

    /// Every network, with its member and the member's bit.
    fn iter(&self) -> impl Iterator<Item = (NetKey, (NetKey, u8))> + '_ {
        let v4 = self
            .v4
            .iter()
            .map(|(&k, &(m, bit))| (Sole::v4_net(k), (brief_key(m), bit)));
        v4.chain(self.other.iter().map(|(&n, &m)| (n, m)))
    }
}

/// The state of an IPv4 client seen in at most two buckets, without a
/// matched request or a gateway error: most clients of a busy site. It is
/// what its [`KeyState`] would hold ([`Brief::state`]), in 16 bytes instead
/// of 72, so that a table of as many as the key cap allows (20 bytes an
/// entry with the address) stays in the processor's cache where a table of
/// `KeyState`s does not; on a site with hundreds of thousands of clients
/// a request then no longer waits for a new client's entry to be written
/// to memory that is not in the cache. A client with more becomes a
/// `KeyState` ([`Engine::promote`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Brief {
    /// As [`KeyState::pending_bucket`].
    pending_bucket: Bucket,
    /// The one bucket of [`KeyState::total`], if its count is not 0.
    total_bucket: Bucket,
    total_count: u32,
    /// As [`KeyState::pending_count`].
    pending_count: u16,
    /// As [`KeyState::aliases`].
    aliases: u8,
}

#[cfg(target_pointer_width = "64")]
const _: () = assert!(std::mem::size_of::<(u32, Brief)>() == 20);

impl Brief {
    /// The [`KeyState`] this is.
    fn state(&self) -> KeyState {
        let mut total = Series::default();
        if self.total_count > 0 {
            total.add(self.total_bucket, self.total_count);
        }
        KeyState {
            total,
            pending_bucket: self.pending_bucket,
            pending_count: self.pending_count,
            aliases: self.aliases,
            ..KeyState::default()
        }
    }

    /// [`KeyState::count`], if what it makes is still brief (otherwise
    /// nothing changes).
    #[inline]
    fn count(&mut self, b: Bucket) -> bool {
        if self.pending_count > 0 && self.pending_bucket == b && self.pending_count < u16::MAX {
            self.pending_count += 1;
            return true;
        }
        if self.pending_count > 0 {
            // `flush`: the pending count joins the total's one bucket.
            let n = u32::from(self.pending_count);
            if self.total_count == 0 {
                (self.total_bucket, self.total_count) = (self.pending_bucket, n);
            } else if self.total_bucket == self.pending_bucket {
                self.total_count = self.total_count.saturating_add(n);
            } else {
                return false;
            }
        }
        (self.pending_bucket, self.pending_count) = (b, 1);
        true
    }

    /// As [`KeyState::is_blank`].
    fn is_blank(&self) -> bool {
        self.pending_count == 0 && self.total_count == 0
    }

    /// As an unevicted key's pruning ([`Engine::prune_keys`]): whether
    /// anything is left.
    fn prune(&mut self, horizon: Bucket) -> bool {
        let oldest = match (self.total_count > 0, self.pending_count > 0) {
            (true, true) => Some(self.total_bucket.min(self.pending_bucket)),
            (true, false) => Some(self.total_bucket),
            (false, true) => Some(self.pending_bucket),
            (false, false) => None,
        };
        if oldest.is_some_and(|o| o >= horizon) {
            return true;
        }
        if self.pending_bucket < horizon {
            self.pending_count = 0;
        }
        if self.total_bucket < horizon {
            self.total_count = 0;
        }
        !self.is_blank()
    }
}

/// An example of a matched request for [`Evidence::samples`]: `STATUS
/// METHOD path`, and ` from ADDRESS` for a user's. Built in one string, not
/// formatted: a site with many clients makes one for most of its matches.
fn sample(hit: &Hit<'_>, from: Option<IpNet>) -> String {
    // Exactly the length of a sample whose text needs no clipping: the
    // most common, and kept for as long as its client's counts.
    let mut s = String::with_capacity(5 + hit.method.len().min(16) + hit.path.len().min(160));
    match hit.status {
        n @ 100..=999 => {
            s.extend([n / 100, n / 10 % 10, n % 10].map(|d| char::from(b'0' + d as u8)))
        }
        n => s.push_str(&n.to_string()),
    }
    s.push(' ');
    clip_onto(&mut s, &hit.method, 16);
    s.push(' ');
    clip_onto(&mut s, &hit.path, 160);
    if let Some(key) = from {
        s.push_str(" from ");
        s.push_str(&crate::client::short(key));
    }
    s
}

/// The address of a client key that may be [`Brief`]: an IPv4 address.
#[inline]
fn brief_addr(key: IpNet) -> Option<u32> {
    match key {
        IpNet::V4(n) if n.prefix_len() == 32 => Some(n.addr().to_bits()),
        _ => None,
    }
}

/// The key of a [`Brief`]'s address.
fn brief_key(addr: u32) -> NetKey {
    NetKey::of(IpNet::V4(Ipv4Net::new_assert(
        Ipv4Addr::from_bits(addr),
        32,
    )))
}

/// Keys held, at least, for [`Engine::warm`] to read ahead: a table of
/// fewer (about 1 MiB) stays in the processor's cache.
const WARM_KEYS: usize = 16_384;

/// While most clients are new, one batch in this many is warmed.
const WARM_RETRY: u32 = 64;

/// An address or network as the key table's key: three aligned words.
/// A key is written once, when its entry is made, and read back at once
/// by the lookups that follow. `IpNet` (18 bytes, byte-aligned) is copied
/// in pieces that the processor cannot forward from its pending stores to
/// those reads, and each such read then waits for every earlier store to
/// reach the cache: on a site with many clients, stores to entries that
/// are not in the cache. Hashed as the words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct NetKey {
    hi: u64,
    lo: u64,
    /// The prefix length, and [`NetKey::V4`] for IPv4.
    len: u64,
}

impl NetKey {
    /// [`NetKey::len`]'s flag of IPv4.
    const V4: u64 = 1 << 8;

    /// The key of `net`.
    #[inline]
    fn of(net: IpNet) -> NetKey {
        match net {
            IpNet::V4(n) => NetKey {
                hi: 0,
                lo: u64::from(n.addr().to_bits()),
                len: NetKey::V4 | u64::from(n.prefix_len()),
            },
            IpNet::V6(n) => {
                let bits = n.addr().to_bits();
                NetKey {
                    hi: (bits >> 64) as u64,
                    lo: bits as u64,
                    len: u64::from(n.prefix_len()),
                }
            }
        }
    }

    /// The network this is the key of.
    #[inline]
    fn net(self) -> IpNet {
        let len = self.len as u8;
        if self.len & NetKey::V4 != 0 {
            IpNet::V4(Ipv4Net::new_assert(
                Ipv4Addr::from_bits(self.lo as u32),
                len,
            ))
        } else {
            let bits = u128::from(self.hi) << 64 | u128::from(self.lo);
            IpNet::V6(Ipv6Net::new_assert(Ipv6Addr::from_bits(bits), len))
        }
    }
}

/// The part of a [`KeyState`] that only keys with matched requests or
/// gateway errors have.
#[derive(Debug, Clone, Default)]
struct MoreState {
    /// Gateway errors (502/503/504) of outage-aware rules among `total`.
    gateway: Series,
    /// The rules (bit i: rule i) whose state may hold a failed route: a
    /// request on a failing route looks into no other rule's state.
    failed_routes: RuleSet,
    rules: Vec<(u16, RuleState)>,
}

impl KeyState {
    /// Count one request in bucket `b`.
    fn count(&mut self, b: Bucket) {
        if self.pending_count > 0 && self.pending_bucket == b && self.pending_count < u16::MAX {
            self.pending_count += 1;
        } else {
            self.flush();
            (self.pending_bucket, self.pending_count) = (b, 1);
        }
    }

    /// Move the pending count into `total`.
    fn flush(&mut self) {
        if self.pending_count > 0 {
            self.total
                .add(self.pending_bucket, u32::from(self.pending_count));
            self.pending_count = 0;
        }
    }

    /// The pending count's bucket, if it has one.
    fn pending(&self) -> Option<Bucket> {
        (self.pending_count > 0).then_some(self.pending_bucket)
    }

    /// Requests in buckets `lo ..= hi`.
    fn total_sum(&self, lo: Bucket, hi: Bucket) -> u64 {
        let extra = match self.pending() {
            Some(b) if (lo..=hi).contains(&b) => u64::from(self.pending_count),
            _ => 0,
        };
        self.total.sum(lo, hi) + extra
    }

    /// No request counted (the counts a network made now would start with).
    fn is_blank(&self) -> bool {
        self.pending_count == 0
            && self.total.is_empty()
            && self.more.as_ref().is_none_or(|m| m.gateway.is_empty())
    }

    /// The counts alone (totals, gateway errors), for a network whose only
    /// member this key was.
    fn counts_only(&self) -> KeyState {
        let gateway = self
            .more
            .as_ref()
            .map(|m| &m.gateway)
            .filter(|g| !g.is_empty());
        KeyState {
            total: self.total.clone(),
            pending_bucket: self.pending_bucket,
            pending_count: self.pending_count,
            aliases: 0,
            has_rules: false,
            more: gateway.map(|g| {
                Box::new(MoreState {
                    gateway: g.clone(),
                    ..MoreState::default()
                })
            }),
        }
    }

    /// All requests per bucket, the pending count included.
    fn stored_total(&self) -> Series {
        let mut t = self.total.clone();
        if let Some(b) = self.pending() {
            t.add(b, u32::from(self.pending_count));
        }
        t
    }

    /// Requests in buckets `lo ..= hi` that say what the client asked for:
    /// a gateway error (502/503/504) says the backend was unreachable, so
    /// 4xx rules' ratios leave it out (a scanner whose probes an outage
    /// swallowed in part keeps its 4xx share).
    fn asked_sum(&self, lo: Bucket, hi: Bucket) -> u64 {
        self.total_sum(lo, hi)
            .saturating_sub(self.gateway_sum(lo, hi))
    }

    /// Gateway errors in buckets `lo ..= hi`.
    fn gateway_sum(&self, lo: Bucket, hi: Bucket) -> u64 {
        self.more.as_ref().map_or(0, |m| m.gateway.sum(lo, hi))
    }

    /// Count a gateway error in bucket `b`.
    fn add_gateway(&mut self, b: Bucket, n: u32) {
        self.more_mut().gateway.add(b, n);
    }

    fn more_mut(&mut self) -> &mut MoreState {
        self.more.get_or_insert_default()
    }

    /// The key's rule states, by rule index.
    fn rules(&self) -> &[(u16, RuleState)] {
        self.more.as_ref().map_or(&[], |m| &m.rules)
    }

    /// The rules whose state may hold a failed route.
    fn failed_routes(&self) -> RuleSet {
        self.more
            .as_ref()
            .map_or(RuleSet::EMPTY, |m| m.failed_routes)
    }

    fn rule_mut(&mut self, r: u16) -> &mut RuleState {
        self.has_rules = true;
        let rules = &mut self.more_mut().rules;
        let i = match rules.binary_search_by_key(&r, |e| e.0) {
            Ok(i) => i,
            Err(i) => {
                // Most keys match one rule or two: grow one at a time (a
                // `RuleState` is large, and `Vec` would make room for four).
                rules.reserve_exact(1);
                rules.insert(i, (r, RuleState::default()));
                i
            }
        };
        &mut rules[i].1
    }

    fn rule(&self, r: u16) -> Option<&RuleState> {
        let rules = self.rules();
        rules
            .binary_search_by_key(&r, |e| e.0)
            .ok()
            .map(|i| &rules[i].1)
    }
}

impl MoreState {
    /// Set [`MoreState::failed_routes`] from the rules' states.
    fn index_routes(&mut self) {
        self.failed_routes = self
            .rules
            .iter()
            .filter(|(_, rs)| !rs.routes.is_empty())
            .map(|(r, _)| usize::from(*r))
            .collect();
    }

    fn is_empty(&self) -> bool {
        self.gateway.is_empty() && self.rules.is_empty()
    }
}

/// Which keys [`Engine::export_with`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportKeys {
    /// Only keys with matched requests (what is stored).
    Matched,
    /// Also keys that have totals only (a log object's counts, before they
    /// are merged into keys that matched elsewhere).
    AlsoTotalsOnly,
}

/// The engine's state as stored between runs and merged between log
/// objects: keyed by rule *name*, so a changed config keeps what still
/// applies and drops the rest.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoredState {
    /// [`STATE_VERSION`].
    pub version: u32,
    /// Bucket width the buckets were counted with.
    pub bucket_secs: u64,
    /// Newest bucket seen.
    pub newest: Bucket,
    /// Site-wide counts (outage awareness).
    pub site: StoredSite,
    /// Per-key state, only for keys with matched requests.
    pub keys: BTreeMap<Key, StoredKey>,
}

/// Site-wide counts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoredSite {
    /// All requests per bucket.
    pub total: Series,
    /// Requests per bucket but 4xx (outage awareness compares server
    /// errors with the answers that did not depend on the client's asking).
    #[serde(default)]
    pub answered: Series,
    /// Requests matching each rule, per bucket.
    pub matched: BTreeMap<String, Series>,
    /// Routes on which a request failed (matched an outage-aware rule)
    /// within the longest window, by label.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub routes: BTreeMap<String, RouteStats>,
}

/// What every client got on one route: the evidence that a route is down.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RouteStats {
    /// Requests on the route per bucket, counted from the route's first
    /// failure on.
    pub requests: Series,
    /// Failed requests per bucket.
    pub failed: Series,
    /// Distinct clients that failed there (hashes; newest bucket).
    pub clients: DistinctSet,
}

/// Distinct failing clients a route remembers: enough to tell "several".
const ROUTE_CLIENTS: usize = 16;

/// Most routes held: a route enters on its first failure. When full,
/// routes on which a single client failed make room (they can excuse
/// nobody), then new routes are not tracked until old ones expire.
pub const MAX_ROUTES: usize = 10_000;

/// Fewer other requests than this on a route in the client's buckets is too
/// few to judge the route's failure share there: the whole window is used.
const ROUTE_MIN_REQUESTS: u64 = 5;

/// Why an outage-aware rule held back a key whose count reached the threshold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutageHold {
    /// More than `outage.share` of the rest of the site failed.
    Site,
    /// Too little other traffic to tell, and the key's requests failed
    /// almost all.
    QuietSite,
    /// Failures on these failing routes did not count (labels).
    Routes(Vec<String>),
}

impl std::fmt::Display for OutageHold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OutageHold::Site => write!(f, "outage of the whole site"),
            OutageHold::QuietSite => write!(f, "too little other traffic to tell an outage"),
            OutageHold::Routes(r) => write!(f, "outage on {}", r.join(", ")),
        }
    }
}

/// One key's stored state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoredKey {
    /// All requests per bucket.
    pub total: Series,
    /// Gateway errors (502/503/504) of outage-aware rules among them.
    #[serde(default, skip_serializing_if = "Series::is_empty")]
    pub gateway: Series,
    /// Per-rule state by rule name.
    pub rules: RuleStates,
}

/// A stored key's rule states by rule name, sorted: a map in JSON, a
/// plain list in memory (most keys have one rule, and a `BTreeMap` would
/// allocate room for eleven: 3 KB a key).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuleStates(Vec<(String, RuleState)>);

impl RuleStates {
    /// The state of rule `name`.
    pub fn get(&self, name: &str) -> Option<&RuleState> {
        self.0
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()
            .map(|i| &self.0[i].1)
    }

    /// `(name, state)`, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &RuleState)> {
        self.0.iter().map(|(n, rs)| (n, rs))
    }

    /// No rule has a state.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many rules have a state.
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl FromIterator<(String, RuleState)> for RuleStates {
    /// The last state wins for a name given twice (as in a map).
    fn from_iter<I: IntoIterator<Item = (String, RuleState)>>(it: I) -> Self {
        let mut v: Vec<(String, RuleState)> = it.into_iter().collect();
        v.reverse();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v.dedup_by(|a, b| a.0 == b.0);
        v.shrink_to_fit();
        RuleStates(v)
    }
}

impl Serialize for RuleStates {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(n, rs)| (n, rs)))
    }
}

impl<'de> Deserialize<'de> for RuleStates {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        BTreeMap::<String, RuleState>::deserialize(d).map(|m| m.into_iter().collect())
    }
}

/// Counters of what the engine saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineStats {
    /// Hits observed.
    pub hits: u64,
    /// Hits that came only through trusted proxies and counted for nobody.
    pub proxy_only: u64,
    /// Hits that matched at least one rule.
    pub matched: u64,
    /// Hits not counted per client because [`MAX_KEYS`] keys were held.
    #[serde(default)]
    pub untracked: u64,
    /// Hits dated after the time limit (a clock error or a corrupt line):
    /// not counted, so they cannot push every window into the future.
    #[serde(default)]
    pub future: u64,
}

impl EngineStats {
    /// What was counted since `before`, an earlier reading of the same
    /// engine's counters.
    pub fn since(&self, before: &EngineStats) -> EngineStats {
        EngineStats {
            hits: self.hits - before.hits,
            proxy_only: self.proxy_only - before.proxy_only,
            matched: self.matched - before.matched,
            untracked: self.untracked - before.untracked,
            future: self.future - before.future,
        }
    }
}

/// Most keys (addresses and networks) the engine holds at once. Keys whose
/// counts are older than the longest window are pruned every quarter of it
/// in event time (5 minutes with the default rules); when the table is still full, a client with a matched
/// request takes the place of clients that only made good requests, and
/// beyond that new clients are not counted (and are reported as
/// `untracked`) until room frees up. About 1–2 KB a key at most: the
/// engine's memory stays under a few hundred MB whatever the input.
pub const MAX_KEYS: usize = 100_000;

/// Hits in, offenses out.
#[derive(Debug, Clone)]
pub struct Engine {
    rules: Vec<Rule>,
    /// The networks that prefix rules count: their prefix lengths, IPv4's
    /// and IPv6's, each list without repeats (rules of /24 and /48 and of
    /// /24 and /56 count a request once in its IPv4 /24).
    prefix_lens: [Vec<u8>; 2],
    /// Whether networks with one member are aliases ([`Engine::sole`]);
    /// off only in tests, to compare.
    aliasing: bool,
    /// Whether clients may be [`Brief`]; off only in tests, to compare.
    briefing: bool,
    own_waf_rule: String,
    outage: OutageConfig,
    resolver: ClientResolver,
    bucket_ms: i64,
    longest: u32,
    threshold_factor: f64,
    /// Addresses and networks: the map every request visits.
    keys: HashMap<NetKey, KeyState, ahash::RandomState>,
    /// Networks with one member so far: network → (the member, its bit in
    /// the member's [`KeyState::aliases`]). Such a network's counts are
    /// its member's, so they are not counted twice: where clients are
    /// alone in their networks (clients spread over the address space),
    /// each request then visits one entry of `keys`, not two. A second
    /// member, a match of a prefix rule, or counts imported into the
    /// network or its member give it counts of its own
    /// ([`Engine::materialize`]); an export writes its member's. Each
    /// counts as a key held.
    sole: Sole,
    /// IPv4 clients with brief state ([`Brief`]), by address: each counts
    /// as a key held, and none is also in `keys`.
    briefs: HashMap<u32, Brief, ahash::RandomState>,
    /// Evictions so far ([`Engine::prune_keys`]): they end every alias.
    evictions: u64,
    /// Users (only with user rules, for hits that name one).
    users: HashMap<User, KeyState, ahash::RandomState>,
    site_total: Series,
    /// Requests of the site but 4xx, per bucket (outage awareness).
    site_answered: Series,
    site_matched: Vec<Series>,
    newest: Bucket,
    last_prune: Bucket,
    offenses: Vec<Offense>,
    stats: EngineStats,
    max_keys: usize,
    /// Keys being warmed ([`Engine::warm`]), kept for their memory.
    warming: Vec<NetKey>,
    /// Whether most clients of the last batch warmed were held, and the
    /// batches since ([`Engine::warm`]).
    warm_pays: (bool, u32),
    full_until: Bucket,
    /// For each status code, the rules whose status condition it passes
    /// (rules without one always): most requests match no rule, and this
    /// says so without looking at each.
    status_mask: Vec<RuleSet>,
    /// The rules without a status condition.
    statusless: RuleSet,
    /// The rules that match only requests with a WAF verdict.
    waf_only: RuleSet,
    /// Hits dated after this (epoch ms) are not counted.
    time_limit_ms: i64,
    /// The outage-aware rules.
    outage_rules: RuleSet,
    /// The rules that count per application user.
    user_rules: RuleSet,
    namer: RouteNamer,
    /// The namer's last answers.
    route_cache: crate::route::RouteCache,
    /// Failing routes: hash → (label, stats).
    routes: HashMap<u64, (String, RouteStats), ahash::RandomState>,
    /// The sections among `routes`: most requests need only to know that
    /// their section is not one.
    sections: HeldSections,
    url_prefix: crate::route::UrlPrefix,
    /// Offenses of outage-aware rules found while reading, held until
    /// event time has moved [`Engine::settle_buckets`] past their window
    /// (key, rule, window end), so that other clients' failures in the same
    /// buckets are seen before a client is judged.
    pending: Vec<(Key, u16, Bucket)>,
    /// Hold outage-aware offenses back (while reading records).
    deferring: bool,
}

/// How long outage-aware offenses wait for the rest of the site's records
/// of the same moment (event time).
const SETTLE_MS: i64 = 20_000;

impl Engine {
    /// An empty engine for `config`.
    pub fn new(config: &Config) -> Engine {
        let f = &config.file;
        let lens = |len: fn(&Rule) -> u8| {
            let prefix = config
                .rules
                .iter()
                .filter(|r| r.config.key == KeyKind::Prefix);
            let mut v: Vec<u8> = prefix.map(len).collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        Engine {
            rules: config.rules.clone(),
            prefix_lens: [lens(|r| r.config.prefix_v4), lens(|r| r.config.prefix_v6)],
            aliasing: true,
            briefing: true,
            own_waf_rule: f.own_waf_rule.clone(),
            outage: f.outage.clone(),
            resolver: ClientResolver::new(f.trusted_proxies.clone(), f.ipv6_key_prefix),
            bucket_ms: config.bucket_ms(),
            longest: config.longest_window_buckets(),
            threshold_factor: 1.0,
            keys: HashMap::default(),
            sole: Sole::default(),
            briefs: HashMap::default(),
            evictions: 0,
            users: HashMap::default(),
            site_total: Series::default(),
            site_answered: Series::default(),
            site_matched: vec![Series::default(); config.rules.len()],
            newest: 0,
            last_prune: 0,
            offenses: Vec::new(),
            stats: EngineStats::default(),
            max_keys: MAX_KEYS,
            warming: Vec::new(),
            warm_pays: (true, 0),
            full_until: 0,
            status_mask: crate::rules::status_table(&config.rules),
            statusless: RuleSet::of(&config.rules, |r| !r.uses_status()),
            waf_only: RuleSet::of(&config.rules, Rule::needs_waf_verdict),
            time_limit_ms: i64::MAX,
            outage_rules: RuleSet::of(&config.rules, |r| r.outage_aware),
            user_rules: RuleSet::of(&config.rules, |r| r.config.key == KeyKind::User),
            namer: RouteNamer::new(&f.outage.routes),
            route_cache: Default::default(),
            routes: HashMap::default(),
            sections: HeldSections::default(),
            url_prefix: Default::default(),
            pending: Vec::new(),
            deferring: true,
        }
    }

    fn settle_buckets(&self) -> Bucket {
        u32::try_from((SETTLE_MS / self.bucket_ms).max(1)).unwrap_or(1)
    }

    /// Judge the held-back outage-aware offenses whose window is settled
    /// (all of them with `all`), as of event time `now_ms`.
    fn run_pending(&mut self, all: bool, now_ms: i64) {
        let settle = self.settle_buckets();
        let newest = self.newest;
        let (due, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|&(_, _, e)| all || e.saturating_add(settle) <= newest);
        self.pending = rest;
        let deferring = std::mem::replace(&mut self.deferring, false);
        for (key, r, e) in due {
            self.evaluate(&key, usize::from(r), e, now_ms);
        }
        self.deferring = deferring;
    }

    /// Judge every held-back offense now (end of input).
    pub fn flush_pending(&mut self) {
        let now = self.bucket_end_ms(self.newest);
        self.run_pending(true, now);
    }

    /// The statuses some rule may match in a log that records WAF verdicts
    /// or not (`waf_verdicts`: WAF logs do); every status when a rule that
    /// may match has no status condition. Requests with any other status
    /// are only counted in totals, and a parser need not read their text
    /// ([`crate::formats::LineParser::set_detail`]).
    pub fn detail_statuses(&self, waf_verdicts: bool) -> crate::formats::StatusSet {
        let possible = if waf_verdicts {
            RuleSet::ALL
        } else {
            !self.waf_only
        };
        let mut set = crate::formats::StatusSet::NONE;
        for (st, mask) in (0u16..).zip(&self.status_mask) {
            if !(*mask & possible).is_empty() {
                set.insert(st);
            }
        }
        set
    }

    /// Do not count hits dated after `limit_ms` (callers pass the wall clock
    /// plus a day: a log line cannot come from the future, and one dated
    /// year 9999 would otherwise move every window past all real records).
    pub fn set_time_limit(&mut self, limit_ms: i64) {
        self.time_limit_ms = limit_ms;
    }

    /// Hold at most `n` keys (tests; the default is [`MAX_KEYS`]).
    pub fn set_max_keys(&mut self, n: usize) {
        self.max_keys = n.max(1);
    }

    /// May `key` be held? Makes room for a client with a matched request by
    /// pruning and then dropping clients without any; when that fails, no
    /// new key is taken (nor room sought again) for a minute of event time,
    /// so a flood of addresses cannot make every request cost a full scan.
    #[inline]
    fn room_for(&mut self, key: &Key, matched: bool) -> bool {
        self.key_count() < self.max_keys || self.make_room_for(key, matched)
    }

    /// [`Engine::room_for`] a network (the key made only when needed).
    #[inline]
    fn room_for_net(&mut self, net: IpNet, matched: bool) -> bool {
        self.key_count() < self.max_keys || self.make_room_for(&Key::Net(net), matched)
    }

    #[inline(never)]
    fn make_room_for(&mut self, key: &Key, matched: bool) -> bool {
        let sole = matches!(key, Key::Net(n) if self.sole.contains_key(&NetKey::of(*n)));
        let brief = matches!(key, Key::Net(n) if brief_addr(*n).is_some_and(|a| self.briefs.contains_key(&a)));
        if sole || brief || self.state(key).is_some() {
            return true;
        }
        if !matched || self.newest < self.full_until {
            return false;
        }
        // One pass: prune, and drop the clients without matched requests.
        self.prune_keys(true);
        if self.key_count() >= self.max_keys {
            self.full_until = self.newest.saturating_add(6);
            return false;
        }
        true
    }

    /// The state of `key`, if held.
    #[inline]
    fn state(&self, key: &Key) -> Option<&KeyState> {
        match key {
            Key::Net(n) => self.keys.get(&NetKey::of(*n)),
            Key::User(u) => self.users.get(u),
        }
    }

    /// The state of `key`, if held.
    #[inline]
    fn state_mut(&mut self, key: &Key) -> Option<&mut KeyState> {
        match key {
            Key::Net(n) => self.keys.get_mut(&NetKey::of(*n)),
            Key::User(u) => self.users.get_mut(u),
        }
    }

    /// The state of `key`, held from now on.
    #[inline]
    fn state_entry(&mut self, key: &Key) -> &mut KeyState {
        match key {
            Key::Net(n) => self.keys.entry(NetKey::of(*n)).or_default(),
            Key::User(u) => self.users.entry(u.clone()).or_default(),
        }
    }

    /// Every key held, with its state (but the [`Brief`] ones: they have
    /// no rule's state).
    fn states(&self) -> impl Iterator<Item = (Key, &KeyState)> {
        let nets = self.keys.iter().map(|(n, ks)| (Key::Net(n.net()), ks));
        nets.chain(self.users.iter().map(|(u, ks)| (Key::User(u.clone()), ks)))
    }

    /// Multiply every threshold by `factor` (incident mode: < 1).
    pub fn set_threshold_factor(&mut self, factor: f64) {
        self.threshold_factor = factor.clamp(0.01, 1.0);
    }

    /// The rules in use.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// What the engine has seen.
    pub fn stats(&self) -> EngineStats {
        self.stats
    }

    /// The bucket of an event time.
    pub fn bucket_of(&self, time_ms: i64) -> Bucket {
        u32::try_from(time_ms.max(0) / self.bucket_ms).unwrap_or(u32::MAX)
    }

    fn bucket_end_ms(&self, b: Bucket) -> i64 {
        (i64::from(b) + 1) * self.bucket_ms - 1
    }

    /// Are offenses waiting to be taken?
    pub fn has_offenses(&self) -> bool {
        !self.offenses.is_empty()
    }

    /// Offenses found since the last call.
    pub fn take_offenses(&mut self) -> Vec<Offense> {
        std::mem::take(&mut self.offenses)
    }

    /// Number of keys held (addresses, networks and users).
    pub fn key_count(&self) -> usize {
        self.keys.len() + self.briefs.len() + self.sole.len() + self.users.len()
    }

    /// The prefix lengths of the networks counted for a key of `key`'s
    /// family.
    #[inline]
    fn lens_of(&self, key: IpNet) -> &[u8] {
        lens_for(&self.prefix_lens, key)
    }

    /// The bit of [`KeyState::aliases`] of the `i`th network of a key (0:
    /// never an alias).
    #[inline]
    fn alias_bit(&self, i: usize) -> u8 {
        if self.aliasing {
            bit_of(i)
        } else {
            0
        }
    }

    /// Count one request. Returns the key it counted for and the rules it
    /// matched (bit `i` for rule `i`), or `None` when it counted for nobody
    /// (trusted proxies only).
    pub fn observe(&mut self, hit: &Hit<'_>) -> Option<(IpNet, RuleSet)> {
        self.stats.hits += 1;
        let Some(ip) = self.resolver.client(hit) else {
            self.stats.proxy_only += 1;
            return None;
        };
        if hit.time_ms > self.time_limit_ms {
            self.stats.future += 1;
            return None;
        }
        let b = self.bucket_of(hit.time_ms);
        if b > self.newest {
            self.newest = b;
            if !self.pending.is_empty() {
                self.run_pending(false, hit.time_ms);
            }
        }
        let key = self.resolver.key(ip);
        let user = if self.user_rules.is_empty() {
            None
        } else {
            hit.user.as_deref().and_then(User::new)
        };
        let matched = self.matching(hit, user.is_some());
        self.count_site(hit, b, matched);
        // The route, where outage awareness needs it: a failure, or any
        // request while some route is failing.
        let failed = !(matched & self.outage_rules).is_empty();
        let route = if failed || !self.routes.is_empty() {
            self.count_route(hit, key, b, failed)
        } else {
            None
        };
        let gateway = failed && matches!(hit.status, 502..=504);
        if !matched.is_empty() {
            self.stats.matched += 1;
        }
        let mut untracked = false;
        let by_address = matched & !self.user_rules;
        if self.room_for_net(key, !by_address.is_empty()) {
            self.count_request(key, b, by_address, gateway, route);
            for r in by_address.iter() {
                self.count_match(hit, key, None, r, b, route);
            }
        } else {
            untracked = true;
        }
        if let Some(u) = user {
            let by_user = matched & self.user_rules;
            let k = Key::User(u);
            if self.room_for(&k, !by_user.is_empty()) {
                self.count_user_request(&k, b, by_user, gateway, route);
                for r in by_user.iter() {
                    self.count_match(hit, key, Some(&k), r, b, route);
                }
            } else {
                untracked = true;
            }
        }
        if untracked {
            self.stats.untracked += 1;
        }
        // Windows sum only their own buckets, so older ones cost memory, not
        // correctness: drop them every quarter of the longest window (at
        // least every minute of 10 s buckets), not after every bucket, as
        // pruning visits every key.
        if self.newest >= self.last_prune.saturating_add((self.longest / 4).max(6)) {
            self.prune();
        }
        Some((key, matched))
    }

    /// Whether the next batch of requests is worth [`Engine::warm`]ing. A
    /// table this small stays in the cache. Where most clients are new (a
    /// flood of addresses) their entries do not exist yet, and looking for
    /// them costs more than it saves: then one batch in `WARM_RETRY` is
    /// warmed, to find out whether that has changed.
    pub(crate) fn reads_ahead(&mut self) -> bool {
        self.warm_pays.1 = self.warm_pays.1.wrapping_add(1);
        self.keys.len() >= WARM_KEYS && (self.warm_pays.0 || self.warm_pays.1 % WARM_RETRY == 0)
    }

    /// Read what [`Engine::observe`] will read first for `hits`: the key
    /// table's entries of their clients and of the clients' networks, then
    /// the newest bucket of their series. Changes nothing that counts. A
    /// caller that warms a few requests before observing them lets their
    /// cache misses overlap each other instead of following one another
    /// (on a site with many clients these misses are most of a request's
    /// cost).
    pub(crate) fn warm<'a, 'b: 'a>(&mut self, hits: impl Iterator<Item = &'a Hit<'b>>) {
        let mut keys = std::mem::take(&mut self.warming);
        keys.clear();
        keys.extend(
            hits.filter_map(|hit| self.resolver.client(hit))
                .map(|ip| NetKey::of(self.resolver.key(ip))),
        );
        // In passes, each short enough that the processor runs many of its
        // lookups at once: the clients' entries; their networks' (where
        // `observe` will count them: a client held, or room for one); the
        // newest buckets of the series of those held.
        let (clients, room) = (keys.len(), self.key_count() < self.max_keys);
        let (mut sum, mut found) = (0u64, 0);
        // The entries found, for the last pass to read without looking
        // them up again.
        let mut held = [None; 64];
        let mut n = 0;
        for i in 0..clients {
            let key = keys[i];
            let ks = self.keys.get(&key);
            sum = sum.wrapping_add(ks.map_or(0, |ks| u64::from(ks.pending_count)));
            found += usize::from(ks.is_some());
            if ks.is_some() && n < held.len() {
                (held[n], n) = (ks, n + 1);
            }
            if ks.is_some() || room {
                let (aliases, key) = (ks.map_or(0, |ks| ks.aliases), key.net());
                for (i, &len) in self.lens_of(key).iter().enumerate() {
                    let net = widen(key, len, len);
                    if net != key && aliases & self.alias_bit(i) == 0 {
                        keys.push(NetKey::of(net));
                    }
                }
            }
        }
        self.warm_pays.0 = found * 2 >= clients;
        if self.warm_pays.0 {
            for k in &keys[clients..] {
                let ks = self.keys.get(k);
                sum = sum.wrapping_add(ks.map_or(0, |ks| u64::from(ks.pending_count)));
                if ks.is_some() && n < held.len() {
                    (held[n], n) = (ks, n + 1);
                }
            }
            for ks in held[..n].iter().flatten() {
                sum = sum.wrapping_add(ks.total.newest_stored().map_or(0, u64::from));
            }
        }
        std::hint::black_box(sum);
        self.warming = keys;
    }

    /// The rules `hit` matches (user rules only for a hit with a user).
    #[inline]
    fn matching(&self, hit: &Hit<'_>, has_user: bool) -> RuleSet {
        let mut candidates = self
            .status_mask
            .get(usize::from(hit.status))
            .copied()
            .unwrap_or(self.statusless);
        if hit.blocked_by_waf {
            candidates &= self.statusless;
        }
        if !has_user {
            candidates &= !self.user_rules;
        }
        candidates
            .iter()
            .filter(|&i| self.rules[i].matches(hit, &self.own_waf_rule))
            .collect()
    }

    /// Count a request in the site-wide series.
    #[inline]
    fn count_site(&mut self, hit: &Hit<'_>, b: Bucket, matched: RuleSet) {
        self.site_total.add(b, 1);
        if hit.status / 100 != 4 {
            self.site_answered.add(b, 1);
        }
        for r in matched.iter() {
            self.site_matched[r].add(b, 1);
        }
    }

    /// Count a request of `key` (held) in its totals and those of its
    /// networks, and on the routes where it failed before.
    #[inline]
    fn count_request(
        &mut self,
        key: IpNet,
        b: Bucket,
        matched: RuleSet,
        gateway: bool,
        route: Option<(u64, u64)>,
    ) {
        let outage = self.outage_rules;
        // A network made now starts with this request: where the client
        // has no other, the network can be its alias. (A new entry is
        // known to be blank without a read: a read of memory just written
        // can wait for the write to reach the cache.)
        let nk = NetKey::of(key);
        let (mut aliases, blank) = if let Some(ks) = self.keys.get_mut(&nk) {
            let held = (ks.aliases, ks.is_blank());
            count_in(ks, b, (matched, outage), gateway, route);
            held
        } else if let Some(held) = self.count_brief(key, b, matched, gateway) {
            held
        } else {
            let (ks, blank) = match self.keys.entry(nk) {
                Entry::Occupied(o) => {
                    let ks = o.into_mut();
                    let blank = ks.is_blank();
                    (ks, blank)
                }
                Entry::Vacant(v) => (v.insert(KeyState::default()), true),
            };
            let aliases = ks.aliases;
            count_in(ks, b, (matched, outage), gateway, route);
            (aliases, blank)
        };
        let evictions = self.evictions;
        for i in 0..self.lens_of(key).len() {
            let len = self.lens_of(key)[i];
            let wide = widen(key, len, len);
            let net = NetKey::of(wide);
            if self.evictions != evictions {
                // An eviction (making room for a wider network) ended them.
                // Not seen: a wider network is held wherever a narrower
                // one is an alias. A guard all the same.
                aliases = 0;
            }
            let bit = self.alias_bit(i);
            if wide == key || aliases & bit != 0 {
                continue; // no network, or the client's counts are its
            }
            if let Some(ns) = self.keys.get_mut(&net) {
                ns.count(b);
                if gateway {
                    ns.add_gateway(b, 1);
                }
                continue;
            }
            if !self.room_for_net(wide, !matched.is_empty()) {
                continue;
            }
            if let Some((member, bit)) = self.sole.remove(&net) {
                // A second member.
                self.own_counts(net, member, bit);
            } else if blank && bit != 0 && self.evictions == evictions {
                // Not after an eviction: it may have pruned the client's
                // counts (a late record's), which `blank` predates.
                let held = match self.keys.get_mut(&nk) {
                    Some(ks) => Some(&mut ks.aliases),
                    None => brief_addr(key)
                        .and_then(|a| self.briefs.get_mut(&a))
                        .map(|br| &mut br.aliases),
                };
                if let Some(aliases) = held {
                    *aliases |= bit;
                    self.sole.insert(net, (nk, bit));
                    continue;
                }
            }
            let ns = self.keys.entry(net).or_default();
            ns.count(b);
            if gateway {
                ns.add_gateway(b, 1);
            }
        }
    }

    /// Count a request of client `key`, not in `keys`, in its [`Brief`]
    /// state if the client has or may have one: the client's aliases and
    /// whether it was blank, before. `None` where the request needs a
    /// [`KeyState`] (the client's brief state, if any, moved into `keys`).
    #[inline]
    fn count_brief(
        &mut self,
        key: IpNet,
        b: Bucket,
        matched: RuleSet,
        gateway: bool,
    ) -> Option<(u8, bool)> {
        let addr = brief_addr(key).filter(|_| self.briefing)?;
        if matched.is_empty() && !gateway {
            match self.briefs.entry(addr) {
                Entry::Occupied(mut o) => {
                    let br = o.get_mut();
                    let before = (br.aliases, br.is_blank());
                    if br.count(b) {
                        return Some(before);
                    }
                }
                Entry::Vacant(v) => {
                    v.insert(Brief {
                        pending_bucket: b,
                        pending_count: 1,
                        ..Brief::default()
                    });
                    return Some((0, true));
                }
            }
        }
        self.promote(addr);
        None
    }

    /// Move client `addr`'s [`Brief`] state, if it has one, into `keys`.
    fn promote(&mut self, addr: u32) {
        if let Some(br) = self.briefs.remove(&addr) {
            self.keys.insert(brief_key(addr), br.state());
        }
    }

    /// [`Engine::promote`] client `key`, if it may be brief.
    fn promote_key(&mut self, key: IpNet) {
        if let Some(addr) = brief_addr(key) {
            self.promote(addr);
        }
    }

    /// [`Engine::materialize`] the networks that are aliases of `member`.
    fn end_aliases_of(&mut self, member: IpNet) {
        self.promote_key(member);
        let Some(aliases) = self.keys.get(&NetKey::of(member)).map(|ks| ks.aliases) else {
            return;
        };
        for i in 0..self.lens_of(member).len() {
            if aliases & self.alias_bit(i) != 0 {
                let len = self.lens_of(member)[i];
                self.materialize(NetKey::of(widen(member, len, len)));
            }
        }
    }

    /// Give network `net`, if it is an alias of its only member
    /// ([`Engine::sole`]), counts of its own: a copy of the member's.
    fn materialize(&mut self, net: NetKey) {
        if let Some((member, bit)) = self.sole.remove(&net) {
            self.own_counts(net, member, bit);
        }
    }

    /// Network `net`, no longer an alias of `member` (its `bit`), with a
    /// copy of the member's counts.
    fn own_counts(&mut self, net: NetKey, member: NetKey, bit: u8) {
        self.promote_key(member.net());
        let Some(ms) = self.keys.get_mut(&member) else {
            debug_assert!(false, "an alias outlived its member");
            return;
        };
        ms.aliases &= !bit;
        let counts = ms.counts_only();
        self.keys.insert(net, counts);
    }

    /// Count a request of user `key` (held) in its totals, and on the
    /// routes where it failed before.
    fn count_user_request(
        &mut self,
        key: &Key,
        b: Bucket,
        matched: RuleSet,
        gateway: bool,
        route: Option<(u64, u64)>,
    ) {
        let outage = self.outage_rules;
        count_in(self.state_entry(key), b, (matched, outage), gateway, route);
    }

    /// Count a request of address `key` that matched rule `r` (for its
    /// network, on a network rule; for `user`, on a user rule) with its
    /// evidence, and judge the rule's windows.
    fn count_match(
        &mut self,
        hit: &Hit<'_>,
        key: IpNet,
        user: Option<&Key>,
        r: usize,
        b: Bucket,
        route: Option<(u64, u64)>,
    ) {
        if self.rules[r].config.key == KeyKind::Prefix && !self.quiet_member(key, r, b) {
            return;
        }
        let rule = &self.rules[r];
        let (k, member) = match (rule.config.key, user) {
            (KeyKind::Ip, _) => (Key::Net(key), None),
            (KeyKind::Prefix, _) => (
                Key::Net(widen(key, rule.config.prefix_v4, rule.config.prefix_v6)),
                Some(net_hash(key)),
            ),
            (KeyKind::User, Some(u)) => (u.clone(), Some(net_hash(key))),
            (KeyKind::User, None) => return,
        };
        if let (KeyKind::Prefix, Key::Net(n)) = (rule.config.key, &k) {
            // The network's state is about to differ from its member's.
            self.materialize(NetKey::of(*n));
        }
        let rule = &self.rules[r];
        let (pcap, mcap) = caps(rule);
        let ks = match &k {
            Key::Net(n) => self.keys.get_mut(&NetKey::of(*n)),
            Key::User(u) => self.users.get_mut(u),
        };
        let Some(ks) = ks else {
            return;
        };
        if route.is_some() && rule.outage_aware {
            ks.more_mut().failed_routes.insert(r);
        }
        let rs = ks.rule_mut(r as u16);
        rs.matched.add(b, 1);
        if rs.last_ms == 0 && rs.first_ms == 0 {
            rs.first_ms = hit.time_ms;
            rs.user_agent = clip(&hit.user_agent, 200);
        }
        rs.first_ms = rs.first_ms.min(hit.time_ms);
        rs.last_ms = rs.last_ms.max(hit.time_ms);
        if pcap > 0 {
            let path = if rule.config.distinct_include_query {
                &hit.path
            } else {
                hit.path.split('?').next().unwrap_or("")
            };
            rs.paths.insert(stable_hash(path.as_bytes()), b, pcap);
        }
        if let Some(m) = member {
            rs.members.insert(m, b, mcap);
        }
        if let Some(h) = route.filter(|_| rule.outage_aware) {
            rs.routes.add(b, h, 1, 1);
        }
        if rs.samples.len() < SAMPLES {
            // A user's requests name the address they came from.
            let s = sample(hit, user.map(|_| key));
            if !rs.samples.contains(&s) {
                rs.samples.reserve_exact(1);
                rs.samples.push(s);
            }
        }
        self.evaluate(&k, r, b, hit.time_ms);
    }

    /// Count a request on its route and the route's section: every
    /// request on a failing route, and a failure (which makes its
    /// route and section failing ones). The hashes of the route and its
    /// section (0: none), when the route is held.
    fn count_route(
        &mut self,
        hit: &Hit<'_>,
        key: IpNet,
        b: Bucket,
        failed: bool,
    ) -> Option<(u64, u64)> {
        // A lean line's path is read from its raw request field, after
        // the `scheme://host` of the line before.
        let path = match hit.raw_request {
            Some(raw) if hit.path.is_empty() => self.url_prefix.path_start(raw),
            _ => None,
        }
        .unwrap_or_else(|| hit.path_bytes());
        // Most requests are on sections where nothing failed: the first
        // byte or segment of their path tells.
        if !failed && !self.sections.may_hold(&self.namer, path) {
            return None;
        }
        let (h, section) = self.route_cache.hash(&self.namer, path);
        if !failed {
            // The route and the section count apart: a section's requests
            // are every request on it, whether its route failed or not.
            let mut held = false;
            for hash in std::iter::once(h).chain(section) {
                if let Some((_, st)) = self.routes.get_mut(&hash) {
                    st.requests.add(b, 1);
                    held = true;
                }
            }
            return held.then_some((h, section.unwrap_or(0)));
        }
        let label = self.namer.label(path);
        let section_label = section.and_then(|_| RouteNamer::section_label(&label));
        let client = net_hash(key);
        let mut held = None;
        for (hash, label) in
            std::iter::once((h, Some(label))).chain(section.map(|s| (s, section_label)))
        {
            let Some(label) = label else { continue };
            if !self.make_room_for_route(hash) {
                continue;
            }
            let (label, st) = self
                .routes
                .entry(hash)
                .or_insert_with(|| (label, RouteStats::default()));
            st.requests.add(b, 1);
            st.failed.add(b, 1);
            st.clients.insert(client, b, ROUTE_CLIENTS);
            held.get_or_insert((h, section.unwrap_or(0)));
            if Some(hash) == section {
                self.sections.insert(hash, label);
            }
        }
        held
    }

    /// [`Engine::sections`] anew from the routes held.
    fn index_sections(&mut self) {
        let held = self
            .routes
            .iter()
            .map(|(h, (label, _))| (*h, label.as_str()));
        self.sections
            .set(held.filter(|(_, label)| label.ends_with("/*")));
    }

    /// May the route `h` be held? Makes room when [`MAX_ROUTES`] are.
    fn make_room_for_route(&mut self, h: u64) -> bool {
        if self.routes.len() < MAX_ROUTES || self.routes.contains_key(&h) {
            return true;
        }
        self.prune_routes(self.newest.saturating_sub(self.longest));
        if self.routes.len() >= MAX_ROUTES {
            self.routes.retain(|_, (_, st)| st.clients.len() > 1);
            self.index_sections();
        }
        self.routes.len() < MAX_ROUTES
    }

    fn prune_routes(&mut self, horizon: Bucket) {
        self.routes.retain(|_, (_, st)| {
            st.requests.prune_before(horizon);
            st.failed.prune_before(horizon);
            st.clients.prune_before(horizon);
            !st.failed.is_empty()
        });
        self.index_sections();
    }

    /// The buckets to compare a key's failures with: each bucket where it
    /// failed and the settling time after it (the rest of the site's
    /// records of the same moment), as sorted, disjoint ranges.
    fn spans(&self, buckets: impl Iterator<Item = Bucket>) -> Vec<(Bucket, Bucket)> {
        let s = self.settle_buckets();
        let mut v: Vec<Bucket> = buckets.collect();
        v.sort_unstable();
        let mut out: Vec<(Bucket, Bucket)> = Vec::new();
        for b in v {
            let end = b.saturating_add(s);
            match out.last_mut() {
                Some(last) if b <= last.1.saturating_add(1) => last.1 = last.1.max(end),
                _ => out.push((b, end)),
            }
        }
        out
    }

    /// Outage awareness for the window `lo ..= e` of `key` under rule `r`:
    /// how many of its `matched` failures count, or why none do.
    fn outage_verdict(
        &self,
        key: &Key,
        (ks, rs): (&KeyState, &RuleState),
        r: usize,
        (lo, e): (Bucket, Bucket),
        (matched, requests): (u64, u64),
    ) -> (u64, Option<OutageHold>) {
        let o = &self.outage;
        if self.site_answered.sum(lo, e).saturating_sub(requests) < u64::from(o.min_requests)
            && matched as f64 >= o.victim_ratio * requests as f64 - 1e-9
        {
            // Too quiet to tell: only a client that also got good answers
            // can be told apart from the victim of an outage.
            return (0, Some(OutageHold::QuietSite));
        }
        // The rest of the site in the buckets where this key failed and
        // just after: at the onset of an outage the window is mostly the
        // healthy time before.
        let spans = self.spans(rs.matched.buckets_in(lo, e));
        let sum = |s: &Series| spans.iter().map(|&(a, z)| s.sum(a, z)).sum::<u64>();
        let own_total: u64 = spans.iter().map(|&(a, z)| ks.total_sum(a, z)).sum();
        let others = sum(&self.site_answered).saturating_sub(own_total);
        let others_matched = sum(&self.site_matched[r]).saturating_sub(sum(&rs.matched));
        // The site is failing as a whole: most of the rest of the site
        // failed then. That excuses the key's gateway errors (502/503/504:
        // what an outage answers), not the errors its requests caused (a
        // fuzzer's 500s while an API that makes most of the traffic is
        // down).
        let site_failing = (others >= ROUTE_MIN_REQUESTS
            && others_matched as f64 >= o.share * others as f64)
            || self.app_failing(&spans, &rs.routes);
        let gateway = if site_failing {
            ks.gateway_sum(lo, e).min(matched)
        } else {
            0
        };
        // Failures on a route (or in a section) failing for others too do
        // not count: a section's verdict covers all its routes.
        let me = key_hash(key);
        let own = rs.routes.by_route(lo, e);
        let mut excused = 0;
        let mut labels = Vec::new();
        let mut sections: Vec<RouteCount> =
            own.iter().filter(|c| c.section != 0).copied().collect();
        sections.sort_unstable_by_key(|c| (c.section, c.bucket));
        let mut excused_sections = Vec::new();
        for group in sections.chunk_by(|a, b| a.section == b.section) {
            // One count per bucket of the section.
            let per_bucket: Vec<RouteCount> = group
                .chunk_by(|a, b| a.bucket == b.bucket)
                .map(|g| RouteCount {
                    route: g[0].section,
                    failed: g.iter().map(|c| c.failed).sum(),
                    requests: g.iter().map(|c| c.requests).sum(),
                    ..g[0]
                })
                .collect();
            if let Some((f, label)) = self.route_excuse(me, &per_bucket, &rs.routes, (lo, e)) {
                excused += f;
                labels.push(label);
                excused_sections.push(group[0].section);
            }
        }
        let mut rest: Vec<RouteCount> = Vec::new();
        for group in own.chunk_by(|a, b| a.route == b.route) {
            if group[0].section != 0 && excused_sections.contains(&group[0].section) {
                continue;
            }
            if let Some((f, label)) = self.route_excuse(me, group, &rs.routes, (lo, e)) {
                excused += f;
                labels.push(label);
            } else {
                rest.extend_from_slice(group);
            }
        }
        // Failures left, each on a section too quiet to judge alone (a
        // crawler's one request per section during an outage of the whole
        // application): judged together, from what the others got in the
        // same sections and buckets.
        if let Some((f, mut names)) = self.pooled_excuse(&rest, &rs.routes, (lo, e)) {
            excused += f;
            labels.append(&mut names);
        }
        if gateway > excused {
            return (matched - gateway, Some(OutageHold::Site));
        }
        let hold = (!labels.is_empty()).then_some(OutageHold::Routes(labels));
        (matched.saturating_sub(excused), hold)
    }

    /// A key's failures on one route (or section), `own` being its counts
    /// there per bucket: excused when the route is failing for other
    /// clients too and the key fails there no more than they do (within the
    /// margin). The failures excused and the route's label.
    fn route_excuse(
        &self,
        me: u64,
        own: &[RouteCount],
        all: &RouteCounts,
        (lo, e): (Bucket, Bucket),
    ) -> Option<(u64, String)> {
        let o = &self.outage;
        let (f, n) = own.iter().fold((0u64, 0u64), |(f, n), c| {
            (f + u64::from(c.failed), n + u64::from(c.requests))
        });
        let hash = own.first()?.route;
        let (label, st) = self.routes.get(&hash).filter(|_| f > 0)?;
        // What the others got there in the buckets where this key failed
        // and just after (or in the whole window, if that is too little).
        let spans = self.spans(own.iter().map(|c| c.bucket));
        let (mut of, mut on) = self.others_in(&spans, &[(hash, st)], all);
        if on < ROUTE_MIN_REQUESTS {
            of = st.failed.sum(lo, e).saturating_sub(f);
            on = st.requests.sum(lo, e).saturating_sub(n);
        }
        let others_share = if on == 0 { 0.0 } else { of as f64 / on as f64 };
        let clients = st.clients.count_since(lo) - u32::from(st.clients.contains_since(me, lo));
        let failing = clients >= o.route_clients
            || (on >= ROUTE_MIN_REQUESTS && others_share >= o.route_share);
        (failing && self.explained(f, n, others_share)).then(|| (f, label.clone()))
    }

    /// Failures and requests of the other clients on these routes or
    /// sections (hash, stats) within `spans`: everyone's, less the key's
    /// own (`all`).
    fn others_in(
        &self,
        spans: &[(Bucket, Bucket)],
        routes: &[(u64, &RouteStats)],
        all: &RouteCounts,
    ) -> (u64, u64) {
        let inside = |b: Bucket| spans.iter().any(|&(a, z)| (a..=z).contains(&b));
        let (mut of, mut on) = (0u64, 0u64);
        for (hash, st) in routes {
            for &(a, z) in spans {
                of += st.failed.sum(a, z);
                on += st.requests.sum(a, z);
            }
            for c in all.iter() {
                if (c.route == *hash || c.section == *hash) && inside(c.bucket) {
                    of = of.saturating_sub(u64::from(c.failed));
                    on = on.saturating_sub(u64::from(c.requests));
                }
            }
        }
        (of, on)
    }

    /// Is the part of the site that fails at all (every section with a
    /// failure in the window: static files that keep working are not in
    /// it) failing for the other clients in `spans`, at `outage.share`?
    fn app_failing(&self, spans: &[(Bucket, Bucket)], all: &RouteCounts) -> bool {
        let sections: Vec<(u64, &RouteStats)> = self
            .routes
            .iter()
            .filter(|(_, (label, _))| label.ends_with("/*"))
            .map(|(h, (_, st))| (*h, st))
            .collect();
        let (of, on) = self.others_in(spans, &sections, all);
        on >= ROUTE_MIN_REQUESTS && of as f64 >= self.outage.share * on as f64
    }

    /// Are `f` failures in `n` requests within what a failure rate `p`
    /// explains? A binomial tail of `route_tolerance` deviations, and two
    /// failures of slack (a key's counts start at its first failure).
    fn explained(&self, f: u64, n: u64, p: f64) -> bool {
        let n = n.max(f) as f64;
        f as f64 <= n * p + self.outage.route_tolerance * (n * p * (1.0 - p)).sqrt() + 2.0
    }

    /// [`Engine::route_excuse`] for failures spread over several sections,
    /// with the others' counts of those sections added up: the share
    /// criterion only, as distinct clients cannot be added.
    fn pooled_excuse(
        &self,
        rest: &[RouteCount],
        all: &RouteCounts,
        (lo, e): (Bucket, Bucket),
    ) -> Option<(u64, Vec<String>)> {
        let mut sections: Vec<u64> = rest.iter().map(|c| c.section).filter(|&s| s != 0).collect();
        sections.sort_unstable();
        sections.dedup();
        let mut names = Vec::new();
        let mut stats = Vec::new();
        for s in &sections {
            let (label, st) = self.routes.get(s)?;
            names.push(label.clone());
            stats.push((*s, st));
        }
        let own: Vec<&RouteCount> = rest.iter().filter(|c| c.section != 0).collect();
        let (f, n) = own.iter().fold((0u64, 0u64), |(f, n), c| {
            (f + u64::from(c.failed), n + u64::from(c.requests))
        });
        let spans = self.spans(own.iter().map(|c| c.bucket));
        let (mut of, mut on) = self.others_in(&spans, &stats, all);
        if on < ROUTE_MIN_REQUESTS {
            // The same over the whole window.
            let (wf, wn) = stats.iter().fold((0u64, 0u64), |(a, b), (_, st)| {
                (a + st.failed.sum(lo, e), b + st.requests.sum(lo, e))
            });
            of = wf.saturating_sub(f);
            on = wn.saturating_sub(n);
        }
        if names.len() < 2 || f == 0 || on < ROUTE_MIN_REQUESTS {
            return None;
        }
        let p = of as f64 / on as f64;
        (p >= self.outage.route_share && self.explained(f, n, p)).then_some((f, names))
    }

    /// Why outage awareness keeps rule `rule` from firing for `key` in the
    /// window ending at bucket `end`, if it does (for `explain` and the
    /// report's near misses).
    pub fn outage_hold(&self, key: &Key, rule: &str, end: Bucket) -> Option<OutageHold> {
        let r = self.rule_index(rule)?;
        let rule = &self.rules[r];
        if !rule.outage_aware {
            return None;
        }
        let ks = self.state(key)?;
        let rs = ks.rule(r as u16)?;
        let lo = window_start(end, rule.window_buckets);
        let matched = rs.matched.sum(lo, end);
        let requests = ks.total_sum(lo, end).max(matched);
        let (counted, hold) = self.outage_verdict(key, (ks, rs), r, (lo, end), (matched, requests));
        let threshold = self.threshold_of(rule);
        (matched >= u64::from(threshold) && counted < u64::from(threshold))
            .then_some(hold)
            .flatten()
    }

    fn threshold_of(&self, rule: &Rule) -> u32 {
        ((f64::from(rule.config.threshold) * self.threshold_factor).ceil() as u32).max(1)
    }

    /// Count a hit of prefix rule `r` for the member address `key` itself,
    /// and tell whether the member may count towards its network: a member
    /// counts while its own matches are quiet (at most half the threshold in
    /// the window: loud clients are left to the per-address rules) and make
    /// at least the rule's `min_ratio` of its own requests. So a network is
    /// never blocked for one loud client, or for bystanders (crawlers, users)
    /// whose errors are a small share of what they ask for.
    fn quiet_member(&mut self, key: IpNet, r: usize, b: Bucket) -> bool {
        let rule = &self.rules[r];
        let lo = window_start(b, rule.window_buckets);
        let threshold = f64::from(rule.config.threshold) * self.threshold_factor;
        let min_ratio = rule.config.min_ratio.unwrap_or(0.0);
        self.promote_key(key);
        let ks = self.keys.entry(NetKey::of(key)).or_default();
        let total = ks.asked_sum(lo, b);
        let own = &mut ks.rule_mut(r as u16).matched;
        own.add(b, 1);
        let matched = own.sum(lo, b) as f64;
        matched * 2.0 <= threshold && matched >= min_ratio * total as f64
    }

    /// Evaluate the windows of `key` for rule `r` that contain bucket `b`.
    fn evaluate(&mut self, key: &Key, r: usize, b: Bucket, time_ms: i64) {
        let rule = &self.rules[r];
        let n = rule.window_buckets;
        let Some(ks) = self.state(key) else {
            return;
        };
        let Some(rs) = ks.rule(r as u16) else { return };
        if b <= rs.quiet_until && rs.quiet_until != 0 {
            return;
        }
        let last = rs
            .matched
            .newest()
            .unwrap_or(b)
            .min(b.saturating_add(n - 1));
        let ends = std::iter::once(b).chain(rs.matched.buckets_in(b.saturating_add(1), last));
        let mut found = None;
        for e in ends {
            if let Some(ev) = self.check_window(key, ks, rs, r, e) {
                found = Some((e, ev));
                break;
            }
        }
        let Some((e, evidence)) = found else { return };
        if self.deferring
            && rule.outage_aware
            && e.saturating_add(self.settle_buckets()) > self.newest
        {
            let p = (key.clone(), r as u16, e);
            if !self.pending.contains(&p) {
                self.pending.push(p);
            }
            return;
        }
        let t = if !self.deferring && rule.outage_aware {
            // Judged once settled: at the time of judging.
            time_ms.max(evidence.last_seen_ms)
        } else if e == b {
            time_ms
        } else {
            self.bucket_end_ms(e).min(evidence.last_seen_ms)
        };
        let quiet = e.saturating_add(n - 1);
        let name = rule.config.name.clone();
        if let Some(rs) = self.state_mut(key).map(|k| k.rule_mut(r as u16)) {
            rs.quiet_until = quiet;
        }
        self.offenses.push(Offense {
            key: key.clone(),
            rule: name,
            time_ms: t,
            evidence,
        });
    }

    /// Does the window of rule `r` ending at `e` offend? The evidence if so.
    fn check_window(
        &self,
        key: &Key,
        ks: &KeyState,
        rs: &RuleState,
        r: usize,
        e: Bucket,
    ) -> Option<Evidence> {
        let rule = &self.rules[r];
        let c = &rule.config;
        let n = rule.window_buckets;
        let lo = window_start(e, n);
        let threshold = self.threshold_of(rule);
        let mut matched = rs.matched.sum(lo, e);
        if matched < u64::from(threshold) {
            return None;
        }
        let requests = if rule.outage_aware {
            ks.total_sum(lo, e)
        } else {
            ks.asked_sum(lo, e)
        }
        .max(matched);
        if requests < u64::from(c.min_requests) {
            return None;
        }
        let ratio_ok = |matched: u64| {
            c.min_ratio
                .is_none_or(|r| matched as f64 >= r * requests as f64)
        };
        if !ratio_ok(matched) {
            return None;
        }
        let distinct_paths = rs.paths.count_since(lo);
        if distinct_paths < c.distinct_paths {
            return None;
        }
        let members = rs.members.count_since(lo);
        if c.key != KeyKind::Ip && members < c.min_members {
            return None;
        }
        if rule.outage_aware {
            // Failures that other clients got too are the server's fault.
            matched = self
                .outage_verdict(key, (ks, rs), r, (lo, e), (matched, requests))
                .0;
            if matched < u64::from(threshold) || !ratio_ok(matched) {
                return None;
            }
        }
        Some(Evidence {
            matched,
            requests,
            window: c.window,
            threshold,
            distinct_paths,
            members,
            first_seen_ms: rs.first_ms,
            last_seen_ms: rs.last_ms,
            samples: rs.samples.clone(),
            user_agent: rs.user_agent.clone(),
            incident: self.threshold_factor < 1.0,
            finding: None,
        })
    }

    /// Drop counts older than the longest window before the newest bucket.
    pub fn prune(&mut self) {
        self.prune_keys(false);
    }

    /// [`Engine::prune`], and with `evict` drop the keys without matched
    /// requests too (the key cap is reached).
    fn prune_keys(&mut self, evict: bool) {
        self.last_prune = self.newest;
        let horizon = self.newest.saturating_sub(self.longest);
        self.site_total.prune_before(horizon);
        self.site_answered.prune_before(horizon);
        for s in &mut self.site_matched {
            s.prune_before(horizon);
        }
        self.prune_routes(horizon);
        let keep = |ks: &mut KeyState| {
            if evict && !ks.has_rules {
                return false;
            }
            // Nothing in a key is older than its oldest request: a key
            // whose oldest request is inside the horizon is kept as it is,
            // without a visit to its rules' memory.
            let oldest = match (ks.total.oldest(), ks.pending()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if oldest.is_some_and(|o| o >= horizon) {
                return true;
            }
            // Not `flush`: a key's newest bucket stays beside it, and
            // moving it would allocate for most keys of a busy site.
            if ks.pending_bucket < horizon {
                ks.pending_count = 0;
            }
            ks.total.prune_before(horizon);
            if let Some(m) = &mut ks.more {
                m.gateway.prune_before(horizon);
                m.rules.retain_mut(|(_, rs)| {
                    rs.matched.prune_before(horizon);
                    rs.paths.prune_before(horizon);
                    rs.members.prune_before(horizon);
                    rs.routes.prune_before(horizon);
                    !rs.matched.is_empty() || rs.quiet_until >= horizon
                });
                m.index_routes();
                ks.has_rules = !m.rules.is_empty();
                if m.is_empty() {
                    ks.more = None;
                }
            }
            debug_assert_eq!(ks.has_rules, !ks.rules().is_empty());
            ks.pending_count > 0 || !ks.total.is_empty() || ks.more.is_some()
        };
        // An alias ends where its network would have been dropped: at an
        // eviction (it has no matched request), or when its member's
        // counts (the network's) are all pruned.
        let mut ended = Vec::new();
        self.keys.retain(|k, ks| {
            let kept = keep(ks);
            if ks.aliases != 0 && (evict || ks.is_blank()) {
                let aliases = std::mem::take(&mut ks.aliases);
                if !evict {
                    ended.push((k.net(), aliases));
                }
            }
            kept
        });
        self.briefs.retain(|&addr, br| {
            let kept = !evict && br.prune(horizon);
            if br.aliases != 0 && (evict || br.is_blank()) {
                let aliases = std::mem::take(&mut br.aliases);
                if !evict {
                    ended.push((brief_key(addr).net(), aliases));
                }
            }
            kept
        });
        self.users.retain(|_, ks| keep(ks));
        if evict {
            self.evictions += 1;
            self.sole.clear();
        } else {
            for (member, aliases) in ended {
                for (i, &len) in lens_for(&self.prefix_lens, member).iter().enumerate() {
                    if aliases & bit_of(i) != 0 {
                        self.sole.remove(&NetKey::of(widen(member, len, len)));
                    }
                }
            }
        }
    }

    /// The state worth keeping: keys with matched requests inside the
    /// longest window, and the site-wide counts.
    pub fn export(&self) -> StoredState {
        self.export_where(|_| true)
    }

    /// [`Engine::export`] restricted to keys for which `keep` holds
    /// (a shard of the state).
    pub fn export_where(&self, keep: impl Fn(&Key) -> bool) -> StoredState {
        self.export_with(keep, ExportKeys::Matched)
    }

    /// [`Engine::export_where`], with [`ExportKeys::AlsoTotalsOnly`] also
    /// the keys that have no matched requests (their totals can then be
    /// added to keys that have them elsewhere: the ratio of a key counted
    /// in several objects).
    pub fn export_with(&self, keep: impl Fn(&Key) -> bool, which: ExportKeys) -> StoredState {
        let mut keys = BTreeMap::new();
        // Brief clients have no matched request either.
        let briefs: HashMap<NetKey, KeyState> = self
            .briefs
            .iter()
            .filter(|_| which == ExportKeys::AlsoTotalsOnly)
            .map(|(&a, br)| (brief_key(a), br.state()))
            .collect();
        // Networks that are aliases have no matched request: their counts
        // are their member's (and its rules are not theirs).
        let aliases = self
            .sole
            .iter()
            .filter(|_| which == ExportKeys::AlsoTotalsOnly)
            .filter_map(|(net, (member, _))| {
                let ms = self.keys.get(&member).or_else(|| briefs.get(&member))?;
                Some((Key::Net(net.net()), ms, false))
            });
        let held = self.states().map(|(k, ks)| (k, ks, true));
        let brief = briefs.iter().map(|(k, ks)| (Key::Net(k.net()), ks, true));
        for (k, ks, own) in held.chain(brief).chain(aliases) {
            let rules = if own { ks.rules() } else { &[] };
            if (rules.is_empty() && which == ExportKeys::Matched) || !keep(&k) {
                continue;
            }
            let rules = rules
                .iter()
                .map(|(r, rs)| (self.rules[*r as usize].config.name.clone(), rs.clone()))
                .collect();
            keys.insert(
                k,
                StoredKey {
                    total: ks.stored_total(),
                    gateway: ks
                        .more
                        .as_ref()
                        .map(|m| m.gateway.clone())
                        .unwrap_or_default(),
                    rules,
                },
            );
        }
        StoredState {
            version: STATE_VERSION,
            bucket_secs: u64::try_from(self.bucket_ms / 1000).unwrap_or(0),
            newest: self.newest,
            site: StoredSite {
                total: self.site_total.clone(),
                answered: self.site_answered.clone(),
                matched: self
                    .rules
                    .iter()
                    .zip(&self.site_matched)
                    .map(|(r, s)| (r.config.name.clone(), s.clone()))
                    .collect(),
                routes: self
                    .routes
                    .values()
                    .map(|(label, st)| (label.clone(), st.clone()))
                    .collect(),
            },
            keys,
        }
    }

    /// Add stored counts to this engine (merge). State of rules that no
    /// longer exist, or counted with another bucket width, is dropped.
    pub fn import(&mut self, st: &StoredState) {
        if st.version != STATE_VERSION
            || st.bucket_secs.checked_mul(1000) != Some(self.bucket_ms as u64)
        {
            return;
        }
        self.newest = self.newest.max(st.newest);
        self.site_total.merge(&st.site.total);
        self.site_answered.merge(&st.site.answered);
        for (name, s) in &st.site.matched {
            if let Some(r) = self.rule_index(name) {
                self.site_matched[r].merge(s);
            }
        }
        for (label, st) in &st.site.routes {
            let (_, mine) = self
                .routes
                .entry(route_hash(label))
                .or_insert_with(|| (label.clone(), RouteStats::default()));
            mine.requests.merge(&st.requests);
            mine.failed.merge(&st.failed);
            mine.clients.merge(&st.clients, ROUTE_CLIENTS);
        }
        self.index_sections();
        for (k, sk) in &st.keys {
            let idx: Vec<(usize, &RuleState)> = sk
                .rules
                .iter()
                .filter_map(|(n, rs)| self.rule_index(n).map(|r| (r, rs)))
                .collect();
            let ks = match k {
                Key::Net(n) => {
                    // Counts from elsewhere make a network and its only
                    // member differ.
                    self.promote_key(*n);
                    self.materialize(NetKey::of(*n));
                    self.end_aliases_of(*n);
                    self.keys.entry(NetKey::of(*n)).or_default()
                }
                Key::User(u) => self.users.entry(u.clone()).or_default(),
            };
            ks.flush();
            ks.total.merge(&sk.total);
            if !sk.gateway.is_empty() {
                ks.more_mut().gateway.merge(&sk.gateway);
            }
            for (r, rs) in idx {
                ks.rule_mut(r as u16).merge(rs, &self.rules[r]);
            }
            if let Some(m) = &mut ks.more {
                m.index_routes();
            }
        }
    }

    fn rule_index(&self, name: &str) -> Option<usize> {
        self.rules.iter().position(|r| r.config.name == name)
    }

    /// Evaluate every window of every key held (after [`Engine::import`]
    /// brought counts from elsewhere) and queue the offenses found.
    pub fn evaluate_all(&mut self) {
        self.evaluate_keys(None);
    }

    /// Evaluate every window of the keys in `only` (all keys: `None`), in
    /// key and time order, and queue the offenses found.
    pub fn evaluate_keys(&mut self, only: Option<&std::collections::BTreeSet<Key>>) {
        let deferring = std::mem::replace(&mut self.deferring, false);
        self.evaluate_keys_now(only);
        self.deferring = deferring;
    }

    fn evaluate_keys_now(&mut self, only: Option<&std::collections::BTreeSet<Key>>) {
        let mut todo: Vec<(Key, usize)> = Vec::new();
        for (k, ks) in self.states() {
            if only.is_some_and(|o| !o.contains(&k)) {
                continue;
            }
            todo.extend(ks.rules().iter().map(|(r, _)| (k.clone(), *r as usize)));
        }
        todo.sort_unstable();
        for (k, r) in todo {
            let buckets: Vec<Bucket> = self
                .state(&k)
                .and_then(|ks| ks.rule(r as u16))
                .map(|rs| rs.matched.iter().map(|(b, _)| b).collect())
                .unwrap_or_default();
            for b in buckets {
                let t = self.bucket_end_ms(b);
                self.evaluate(&k, r, b, t);
            }
        }
    }

    /// Drop every count older than bucket `b` (wall-clock pruning of
    /// stored state that sees no new records).
    pub fn prune_before(&mut self, b: Bucket) {
        let newest = self.newest;
        self.newest = b.saturating_add(self.longest).max(newest);
        self.prune();
        self.newest = newest;
    }
}

/// Count one request in `ks` (totals, gateway errors), and on the routes
/// where the key failed before, for the outage-aware rules there that it
/// did not match now.
#[inline(always)]
fn count_in(
    ks: &mut KeyState,
    b: Bucket,
    (matched, outage_rules): (RuleSet, RuleSet),
    gateway: bool,
    route: Option<(u64, u64)>,
) {
    ks.count(b);
    if gateway {
        ks.add_gateway(b, 1);
    }
    let Some(h) = route else { return };
    let asking = ks.failed_routes() & outage_rules & !matched;
    if let Some(m) = ks.more.as_mut().filter(|_| !asking.is_empty()) {
        // A request on a route where the key failed before counts
        // towards its share there (failures are counted in
        // `count_match`).
        for (r, rs) in &mut m.rules {
            if asking.contains(usize::from(*r)) && rs.routes.failed_on(h) {
                rs.routes.add(b, h, 0, 1);
            }
        }
    }
}

/// The bit of [`KeyState::aliases`] for a key's `i`th network (0 past
/// the eighth: never an alias).
fn bit_of(i: usize) -> u8 {
    u8::try_from(i)
        .ok()
        .and_then(|i| 1u8.checked_shl(u32::from(i)))
        .unwrap_or(0)
}

/// Of `lens` (IPv4's, IPv6's), those of `key`'s family.
fn lens_for(lens: &[Vec<u8>; 2], key: IpNet) -> &[u8] {
    &lens[usize::from(matches!(key, IpNet::V6(_)))]
}

/// A stable hash of a key (a client among a route's failing clients).
fn key_hash(key: &Key) -> u64 {
    match key {
        Key::Net(n) => net_hash(*n),
        Key::User(u) => stable_hash(u.as_str().as_bytes()),
    }
}

fn net_hash(net: IpNet) -> u64 {
    match net {
        IpNet::V4(n) => stable_hash(&n.addr().octets()),
        IpNet::V6(n) => stable_hash(&n.addr().octets()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

    fn hit(t_s: f64, ip: &str, status: u16, method: &'static str, path: String) -> Hit<'static> {
        let mut h = Hit::new(T0 + (t_s * 1000.0) as i64, ip.parse().unwrap(), status);
        h.method = Cow::Borrowed(method);
        h.path = Cow::Owned(path);
        h
    }

    #[test]
    fn a_sample_reads_as_the_request_clipped_and_escaped() {
        let h = hit(0.0, "192.0.2.1", 404, "GET", "/wp-login.php?x=1".into());
        assert_eq!(sample(&h, None), "404 GET /wp-login.php?x=1");
        let net: IpNet = "203.0.113.9/32".parse().unwrap();
        let h = hit(0.0, "203.0.113.9", 401, "POST", "/login".into());
        assert_eq!(sample(&h, Some(net)), "401 POST /login from 203.0.113.9");
        // A status that is not three digits (CloudFront's `000` reads as 0).
        let h = hit(0.0, "192.0.2.1", 0, "GET", "/".into());
        assert_eq!(sample(&h, None), "0 GET /");
        let h = hit(0.0, "192.0.2.1", 1000, "GET", "/".into());
        assert_eq!(sample(&h, None), "1000 GET /");
        // Control characters escaped, long text cut.
        let long = format!("/a\n{}", "b".repeat(300));
        let h = hit(0.0, "192.0.2.1", 500, "PROPFINDXXXXXXXXXXXX", long.clone());
        assert_eq!(
            sample(&h, None),
            format!(
                "500 {} {}",
                clip("PROPFINDXXXXXXXXXXXX", 16),
                clip(&long, 160)
            )
        );
        assert!(sample(&h, None).starts_with("500 PROPFINDXXXXXXXX… /a\\n"));
    }

    fn run(engine: &mut Engine, hits: &[Hit<'_>]) -> Vec<Offense> {
        for h in hits {
            engine.observe(h);
        }
        engine.take_offenses()
    }

    #[test]
    fn a_net_key_is_its_network_and_no_other() {
        let nets: Vec<IpNet> = [
            "192.0.2.7/32",
            "192.0.2.0/24",
            "0.0.0.0/0",
            "0.0.0.0/32",
            "255.255.255.255/32",
            "::/0",
            "::/32",
            "::/128",
            "::c000:207/128",
            "::ffff:192.0.2.7/128",
            "2001:db8:1::/48",
            "2001:db8:1::/64",
            "2001:db8:1:2:3:4:5:6/128",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128",
        ]
        .iter()
        .map(|n| n.parse().unwrap())
        .collect();
        for a in &nets {
            assert_eq!(NetKey::of(*a).net(), *a);
            for b in &nets {
                assert_eq!(NetKey::of(*a) == NetKey::of(*b), a == b, "{a} {b}");
            }
        }
    }

    #[test]
    fn ipv6_rotation_inside_a_64_is_one_client() {
        let mut e = Engine::new(&Config::default());
        let hits: Vec<_> = (0..40)
            .map(|i| {
                hit(
                    f64::from(i) * 0.2,
                    &format!("2001:db8:bad:1:{i:x}::{i:x}"),
                    404,
                    "GET",
                    format!("/w{i}"),
                )
            })
            .collect();
        let off = run(&mut e, &hits);
        // scan-burst, and scan-slow too (40 probes on 40 paths): one key.
        assert!(!off.is_empty());
        assert!(
            off.iter()
                .all(|o| o.key.to_string() == "2001:db8:bad:1::/64"),
            "{off:?}"
        );
    }

    fn with_user(mut h: Hit<'static>, user: &'static str) -> Hit<'static> {
        h.user = Some(Cow::Borrowed(user));
        h
    }

    /// The issue's case: one API key, 500 addresses, a failed login from
    /// each every 100 ms, among shoppers. The key is blocked within a
    /// minute of event time, as a user; no address is.
    #[test]
    fn a_credential_stuffer_rotating_addresses_is_blocked_by_its_key_not_its_addresses() {
        let mut e = Engine::new(&Config::default());
        let mut hits = vec![];
        for i in 0..500u32 {
            let t = f64::from(i) * 0.1;
            let ip = format!("203.0.{}.{}", 100 + i / 250, i % 250 + 1);
            hits.push(with_user(
                hit(t, &ip, 401, "POST", "/api/login".into()),
                "ak_live_stuffer",
            ));
            // Shoppers with their own keys, some of them mistyping once.
            let shopper = ["ak_live_a", "ak_live_b", "ak_live_c"][i as usize % 3];
            let status = if i % 50 == 0 { 401 } else { 200 };
            hits.push(with_user(
                hit(
                    t,
                    &format!("192.0.2.{}", i % 3 + 1),
                    status,
                    "POST",
                    "/api/login".into(),
                ),
                shopper,
            ));
        }
        let off = run(&mut e, &hits);
        let keys: Vec<String> = off.iter().map(|o| o.key.to_string()).collect();
        assert_eq!(keys, ["user:ak_live_stuffer"], "{off:?}");
        let o = &off[0];
        assert_eq!(o.rule, "user-auth");
        assert!(o.time_ms - T0 < 60_000, "decided at {} ms", o.time_ms - T0);
        // The evidence names the addresses it came from.
        assert!(o.evidence.members >= 10, "{:?}", o.evidence);
        assert!(o.evidence.samples[0].starts_with("401 POST /api/login from 203.0.100."));
    }

    /// A user whose one page is broken (404 on every visit) is not a
    /// scanner: many failures, one path.
    #[test]
    fn a_user_on_a_broken_page_is_not_blocked() {
        let mut e = Engine::new(&Config::default());
        let hits: Vec<_> = (0..200)
            .map(|i| {
                let status = if i % 2 == 0 { 404 } else { 200 };
                let path = if i % 2 == 0 {
                    "/account/avatar.png"
                } else {
                    "/account"
                };
                with_user(
                    hit(
                        f64::from(i) * 0.25,
                        "192.0.2.50",
                        status,
                        "GET",
                        path.into(),
                    ),
                    "alice",
                )
            })
            .collect();
        assert!(run(&mut e, &hits).is_empty());
    }

    /// A hit without a user, or with one that names nobody, counts for no
    /// user rule; the same user on a rule counts per address as before.
    #[test]
    fn users_that_name_nobody_count_for_no_user_rule() {
        let mut e = Engine::new(&Config::default());
        for user in ["", "-", "REDACTED"] {
            let hits: Vec<_> = (0..40)
                .map(|i| {
                    let ip = format!("203.0.113.{}", i + 1);
                    with_user(
                        hit(f64::from(i) * 0.5, &ip, 401, "POST", "/login".into()),
                        user,
                    )
                })
                .collect();
            assert!(run(&mut e, &hits).is_empty(), "{user:?}");
        }
        assert!(e.users.is_empty());
    }

    #[test]
    fn a_nat_with_many_users_is_not_a_scanner() {
        // 2000 good requests and 60 404s on 40 paths in a minute.
        let mut e = Engine::new(&Config::default());
        let mut hits = vec![];
        for i in 0..2000 {
            hits.push(hit(
                f64::from(i) * 0.03,
                "192.0.2.10",
                200,
                "GET",
                format!("/p/{}", i % 300),
            ));
            if i % 33 == 0 {
                hits.push(hit(
                    f64::from(i) * 0.03,
                    "192.0.2.10",
                    404,
                    "GET",
                    format!("/gone/{}", i % 40),
                ));
            }
        }
        assert!(run(&mut e, &hits).is_empty());
    }

    #[test]
    fn outage_victims_are_not_fuzzers_but_a_fuzzer_on_a_healthy_site_is() {
        let site = |e: &mut Engine, status: u16| {
            let hits: Vec<_> = (0..600)
                .map(|i| {
                    hit(
                        f64::from(i) * 0.1,
                        &format!("172.20.0.{}", i % 50 + 1),
                        status,
                        "GET",
                        "/".into(),
                    )
                })
                .collect();
            run(e, &hits)
        };
        let client = |from: f64| -> Vec<Hit<'static>> {
            (0..30)
                .map(|i| {
                    hit(
                        from + f64::from(i),
                        "198.51.100.9",
                        500,
                        "GET",
                        format!("/x?id={i}"),
                    )
                })
                .collect()
        };
        // Everyone gets 503: the client's 500s are the outage's.
        let mut e = Engine::new(&Config::default());
        assert!(site(&mut e, 503).is_empty());
        assert!(run(&mut e, &client(0.0)).is_empty());
        // The site is healthy: the same client is a fuzzer.
        let mut e = Engine::new(&Config::default());
        site(&mut e, 200);
        let off = run(&mut e, &client(0.0));
        assert_eq!(off.len(), 1);
        assert_eq!(off[0].rule, "fuzz-5xx");
        // A quiet site: only a client that also got good answers is judged.
        let mut e = Engine::new(&Config::default());
        assert!(
            run(&mut e, &client(0.0)).is_empty(),
            "100 % 5xx on a quiet site: a victim"
        );
    }

    /// Observe `hits` in time order, then judge what waited (end of input).
    fn run_all(engine: &mut Engine, mut hits: Vec<Hit<'static>>) -> Vec<Offense> {
        hits.sort_by_key(|h| h.time_ms);
        let mut off = run(engine, &hits);
        engine.flush_pending();
        off.extend(engine.take_offenses());
        off
    }

    /// A shop whose lines are mostly scanner 404s: 20 scanners, 30 shoppers
    /// on pages, static files and the API, `/api/*` down from minute 3 to
    /// minute 6 (502) while the pages keep working, and `/api/report`
    /// always a little flaky (8 %). Seeded so it is the same every run.
    fn shop(fuzzer: Option<(&'static str, f64)>) -> Vec<Hit<'static>> {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 11) as f64 / (1u64 << 53) as f64
        };
        let down = |t: f64| (180.0..360.0).contains(&t);
        let mut hits = Vec::new();
        for s in 0..20 {
            let ip = format!("203.0.113.{}", s + 1);
            for i in 0..25 {
                // Loud but slow: a probe every 20 s, far below the scan rules.
                let t = f64::from(s) * 7.0 + f64::from(i) * 20.0;
                hits.push(hit(t, &ip, 404, "GET", format!("/probe{s}-{i}.php")));
            }
        }
        for u in 0..30 {
            let ip = format!("172.20.1.{}", u + 1);
            let mut t = rnd() * 60.0;
            while t < 540.0 {
                hits.push(hit(t, &ip, 200, "GET", "/".into()));
                hits.push(hit(t + 0.2, &ip, 200, "GET", "/static/app.js".into()));
                for k in 0..3 {
                    let path = if k == 0 {
                        "/api/cart".to_string()
                    } else {
                        format!("/api/products?id={}", (rnd() * 1000.0) as u32)
                    };
                    let st = if down(t) { 502 } else { 200 };
                    hits.push(hit(t + 0.5 + f64::from(k) * 0.3, &ip, st, "GET", path));
                }
                let rt = t + 1.5;
                let st = if down(rt) {
                    502
                } else if rnd() < 0.08 {
                    500
                } else {
                    200
                };
                let id = (rnd() * 50.0) as u32;
                hits.push(hit(rt, &ip, st, "GET", format!("/api/report?id={id}")));
                // Retrying through the outage, browsing on otherwise.
                t += if down(t) {
                    2.0 + rnd() * 4.0
                } else {
                    8.0 + rnd() * 20.0
                };
            }
        }
        if let Some((path, from)) = fuzzer {
            // sqlmap-like: 2 req/s, a new payload each time, a third break.
            for i in 0..120 {
                let t = from + f64::from(i) * 0.5;
                let st = if i % 3 == 0 { 500 } else { 200 };
                hits.push(hit(t, "198.51.100.66", st, "GET", format!("{path}{i}%27")));
            }
        }
        hits
    }

    #[test]
    fn a_route_outage_on_a_scanner_heavy_site_blocks_no_shopper() {
        let off = run_all(&mut Engine::new(&Config::default()), shop(None));
        let fuzz: Vec<&Offense> = off.iter().filter(|o| o.rule == "fuzz-5xx").collect();
        assert!(fuzz.is_empty(), "{fuzz:#?}");
        // The shoppers did fail: it is outage awareness that holds them back.
        let mut e = Engine::new(&Config::default());
        run_all(&mut e, shop(None));
        let b = e.bucket_of(T0 + 300_000);
        let hold = e.outage_hold(&"172.20.1.1/32".parse().unwrap(), "fuzz-5xx", b);
        assert!(
            matches!(&hold, Some(OutageHold::Routes(r)) if r.iter().any(|l| l.starts_with("/api/"))),
            "{hold:?}"
        );
        assert!(hold.unwrap().to_string().starts_with("outage on /api/"));
    }

    #[test]
    fn a_fuzzer_is_blocked_within_a_minute_while_an_unrelated_route_is_down() {
        // During the /api outage, on a route that works for everyone else.
        let off = run_all(
            &mut Engine::new(&Config::default()),
            shop(Some(("/search?q=", 240.0))),
        );
        let fuzz: Vec<&Offense> = off.iter().filter(|o| o.rule == "fuzz-5xx").collect();
        assert_eq!(fuzz.len(), 1, "{fuzz:#?}");
        assert_eq!(fuzz[0].key.to_string(), "198.51.100.66/32");
        let after = (fuzz[0].time_ms - T0) as f64 / 1000.0 - 240.0;
        assert!(after <= 60.0, "blocked {after} s after its first request");
    }

    #[test]
    fn a_fuzzer_breaking_a_flaky_route_is_still_a_fuzzer() {
        // /api/report fails 8 % for everyone, and a third for the fuzzer.
        let off = run_all(
            &mut Engine::new(&Config::default()),
            shop(Some(("/api/report?id=", 420.0))),
        );
        let fuzz: Vec<&Offense> = off.iter().filter(|o| o.rule == "fuzz-5xx").collect();
        assert_eq!(fuzz.len(), 1, "{fuzz:#?}");
        assert_eq!(fuzz[0].key.to_string(), "198.51.100.66/32");
    }

    #[test]
    fn outage_aware_offenses_wait_for_the_rest_of_the_site() {
        // A fuzzer alone on a healthy site: its offense is held until event
        // time has moved on by the settling time, or the input ends.
        let mut e = Engine::new(&Config::default());
        let mut hits: Vec<_> = (0..40)
            .map(|i| {
                hit(
                    f64::from(i) * 0.5,
                    "198.51.100.66",
                    if i % 2 == 0 { 500 } else { 200 },
                    "GET",
                    format!("/q?{i}"),
                )
            })
            .collect();
        hits.extend((0..40).map(|i| hit(f64::from(i) * 0.5, "172.20.0.1", 200, "GET", "/".into())));
        hits.sort_by_key(|h| h.time_ms);
        assert!(
            run(&mut e, &hits).is_empty(),
            "judged before the site settled"
        );
        assert!(
            run(&mut e, &[hit(45.0, "172.20.0.1", 200, "GET", "/".into())])
                .iter()
                .any(|o| o.rule == "fuzz-5xx")
        );
        // The end of the input judges it too.
        let mut e = Engine::new(&Config::default());
        assert!(run(&mut e, &hits).is_empty());
        e.flush_pending();
        assert!(e.take_offenses().iter().any(|o| o.rule == "fuzz-5xx"));
    }

    #[test]
    fn late_records_complete_an_earlier_window() {
        let mut e = Engine::new(&Config::default());
        // 20 probes from one node's file, then 10 more from another node's
        // file that arrived later but happened in the same minute.
        let a: Vec<_> = (0..20)
            .map(|i| hit(f64::from(i), "198.51.100.7", 404, "GET", format!("/a{i}")))
            .collect();
        assert!(run(&mut e, &a).is_empty());
        // Time moves on (other clients), then the late file.
        run(&mut e, &[hit(300.0, "192.0.2.1", 200, "GET", "/".into())]);
        let b: Vec<_> = (0..10)
            .map(|i| {
                hit(
                    f64::from(i) + 0.5,
                    "198.51.100.7",
                    404,
                    "GET",
                    format!("/b{i}"),
                )
            })
            .collect();
        let off = run(&mut e, &b);
        assert_eq!(off.len(), 1);
        assert_eq!(off[0].rule, "scan-burst");
        assert!(
            off[0].time_ms < T0 + 60_000,
            "decided at the event time of the window"
        );
    }

    proptest::proptest! {
        /// Every key's exported totals are the requests it made, bucket by
        /// bucket, in whatever order they come and wherever a prune falls
        /// (the `pending` count of a key's newest bucket included).
        #[test]
        fn totals_count_every_request_once(
            hits in proptest::collection::vec((0usize..4, 0u32..300, proptest::bool::ANY, proptest::bool::ANY), 1..200),
        ) {
            let ips = ["198.51.100.1", "198.51.100.2", "203.0.113.9", "2001:db8::1"];
            let mut e = Engine::new(&Config::default());
            let mut want: BTreeMap<IpNet, BTreeMap<Bucket, u32>> = BTreeMap::new();
            for &(who, t, err, prune) in &hits {
                let h = hit(f64::from(t), ips[who], if err { 404 } else { 200 }, "GET", format!("/{t}"));
                let (key, _) = e.observe(&h).unwrap();
                let b = e.bucket_of(h.time_ms);
                for k in std::iter::once(key).chain(e.lens_of(key).to_vec().into_iter().map(|l| widen(key, l, l))) {
                    *want.entry(k).or_default().entry(b).or_default() += 1;
                }
                if prune {
                    e.prune();
                }
            }
            let got: BTreeMap<IpNet, BTreeMap<Bucket, u32>> = e
                .export_with(|_| true, ExportKeys::AlsoTotalsOnly)
                .keys
                .into_iter()
                .map(|(k, sk)| (k.net().unwrap(), sk.total.buckets_in(0, Bucket::MAX).map(|b| (b, sk.total.sum(b, b) as u32)).collect()))
                .collect();
            proptest::prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn a_client_whose_errors_are_a_small_share_is_not_a_scanner() {
        // Within one bucket, so the requests are still in `pending` when
        // the ratio is judged: 40 404s among 160 requests (25 %) stay
        // under scan-burst's 50 %; the same 404s alone do not.
        let config = Config::default();
        let mut mixed = Engine::new(&config);
        let mut alone = Engine::new(&config);
        for i in 0..40 {
            let t = f64::from(i) * 0.1;
            for _ in 0..3 {
                mixed.observe(&hit(t, "198.51.100.7", 200, "GET", "/".into()));
            }
            let scan = hit(t, "198.51.100.7", 404, "GET", format!("/p{i}"));
            mixed.observe(&scan);
            alone.observe(&scan);
        }
        assert_eq!(mixed.take_offenses(), vec![]);
        assert!(alone.take_offenses().iter().any(|o| o.rule == "scan-burst"));
    }

    #[test]
    fn stored_state_merges_in_either_order_and_survives_serde() {
        let config = Config::default();
        let part = |from: u32| -> StoredState {
            let mut e = Engine::new(&config);
            for i in from..from + 15 {
                e.observe(&hit(
                    f64::from(i),
                    "198.51.100.7",
                    404,
                    "GET",
                    format!("/p{i}"),
                ));
                e.observe(&hit(f64::from(i), "192.0.2.1", 200, "GET", "/".into()));
            }
            e.export()
        };
        let (a, b) = (part(0), part(15));
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<StoredState>(&json).unwrap(), a);
        let merged = |x: &StoredState, y: &StoredState| {
            let mut e = Engine::new(&config);
            e.import(x);
            e.import(y);
            e
        };
        let (mut ab, mut ba) = (merged(&a, &b), merged(&b, &a));
        assert_eq!(ab.export(), ba.export());
        // Neither half offends alone; together they do.
        ab.evaluate_all();
        ba.evaluate_all();
        let (oa, ob) = (ab.take_offenses(), ba.take_offenses());
        assert_eq!(oa, ob);
        assert_eq!(oa.len(), 1, "{oa:?}");
        assert_eq!(oa[0].key.to_string(), "198.51.100.7/32");
        // Keys without matched requests are not kept.
        assert!(!a.keys.contains_key(&"192.0.2.1/32".parse().unwrap()));
    }

    #[test]
    fn an_offense_found_alone_is_found_again_after_a_merge() {
        // The offense quiets the key in the engine that found it; the merged
        // state must judge it afresh (the ledger drops duplicates).
        let config = Config::default();
        let mut e = Engine::new(&config);
        let hits: Vec<_> = (0..30)
            .map(|i| {
                hit(
                    f64::from(i) + 0.458,
                    "198.51.100.100",
                    404,
                    "GET",
                    format!("/s{i}"),
                )
            })
            .collect();
        assert_eq!(run(&mut e, &hits).len(), 1);
        let mut merged = Engine::new(&config);
        merged.import(&e.export_with(|_| true, ExportKeys::AlsoTotalsOnly));
        merged.evaluate_all();
        let again = merged.take_offenses();
        assert!(
            again
                .iter()
                .any(|o| o.rule == "scan-burst" && o.key.to_string() == "198.51.100.100/32"),
            "{again:?}"
        );
    }

    #[test]
    fn rule_states_are_stored_as_a_map_by_name() {
        let rs = |first_ms| RuleState {
            first_ms,
            ..RuleState::default()
        };
        let states: RuleStates = [
            ("b".into(), rs(1)),
            ("a".into(), rs(2)),
            ("b".into(), rs(3)),
        ]
        .into_iter()
        .collect();
        assert_eq!(states.len(), 2);
        assert_eq!(states.get("b").map(|r| r.first_ms), Some(3));
        let json = serde_json::to_value(&states).unwrap();
        assert_eq!(
            json.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(serde_json::from_value::<RuleStates>(json).unwrap(), states);
    }

    #[test]
    fn same_records_same_decisions() {
        let hits: Vec<_> = (0..500)
            .map(|i| {
                hit(
                    f64::from(i) * 0.5,
                    &format!("198.51.100.{}", i % 7),
                    if i % 3 == 0 { 200 } else { 404 },
                    "GET",
                    format!("/{}", i % 37),
                )
            })
            .collect();
        let mut x = Engine::new(&Config::default());
        let mut y = Engine::new(&Config::default());
        assert_eq!(run(&mut x, &hits), run(&mut y, &hits));
        assert_eq!(x.export(), y.export());
    }

    /// Bench-shaped traffic (`sim::bench`: a request every 20 ms from
    /// 50,000 clients over the address space, 3 % 404 on random paths,
    /// 0.5 % 500) with a scanner, a slow scanner, a brute-forcer, a fuzzer
    /// and a scan spread over a /24 in it.
    fn busy_site_with_attackers() -> Vec<Hit<'static>> {
        let mut x: u64 = 7;
        let mut next = move || {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            x >> 33
        };
        let mut hits = Vec::new();
        for i in 0..120_000u32 {
            let c = (next() % 50_000) as u32;
            let ip = std::net::Ipv4Addr::from(c.wrapping_mul(2_654_435_761));
            let (status, path) = match next() % 1000 {
                0..=29 => (404, format!("/missing/{}", next() % 100_000)),
                30..=34 => (500, "/api/v1/checkout".to_string()),
                _ => (200, format!("/products/{}", next() % 50)),
            };
            hits.push(hit(
                f64::from(i) * 0.02,
                &ip.to_string(),
                status,
                "GET",
                path,
            ));
        }
        for i in 0..200u32 {
            let t = 600.0 + f64::from(i) * 0.2;
            hits.push(hit(t, "198.51.100.7", 404, "GET", format!("/w/{i}")));
        }
        for i in 0..60u32 {
            let t = 900.0 + f64::from(i) * 9.0;
            hits.push(hit(t, "198.51.100.8", 404, "GET", format!("/slow/{i}")));
        }
        for i in 0..40u32 {
            let t = 1200.0 + f64::from(i) * 2.0;
            hits.push(hit(t, "198.51.100.9", 401, "POST", "/login".into()));
        }
        for i in 0..30u32 {
            let t = 1500.0 + f64::from(i) * 1.5;
            hits.push(hit(
                t,
                "198.51.100.10",
                500,
                "GET",
                format!("/search?q='{i}"),
            ));
        }
        for i in 0..120u32 {
            let t = 1800.0 + f64::from(i) * 5.0;
            let ip = format!("203.0.113.{}", 10 + i % 12);
            hits.push(hit(t, &ip, 404, "GET", format!("/sub/{i}")));
        }
        hits
    }

    #[test]
    fn the_key_cap_changes_no_decision_on_a_busy_site() {
        let decisions = |cap: Option<usize>| {
            let mut e = Engine::new(&Config::default());
            if let Some(n) = cap {
                e.set_max_keys(n);
            }
            let mut d: Vec<(String, String, i64)> = run_all(&mut e, busy_site_with_attackers())
                .into_iter()
                .map(|o| (o.key.to_string(), o.rule, o.time_ms))
                .collect();
            d.sort();
            (d, e.stats())
        };
        let (free, free_stats) = decisions(None);
        // A cap of a tenth of the keys the site needs (50,000 addresses
        // and as many /24s): it is reached, clients are evicted and new
        // ones go uncounted for a while.
        let (capped, stats) = decisions(Some(10_000));
        assert_eq!(free_stats.untracked, 0);
        assert!(stats.untracked > 100, "{stats:?}");
        let blocked: Vec<&str> = free.iter().map(|d| d.0.as_str()).collect();
        for who in [
            "198.51.100.7/32",
            "198.51.100.8/32",
            "198.51.100.9/32",
            "198.51.100.10/32",
            "203.0.113.0/24",
        ] {
            assert!(blocked.contains(&who), "{who} not blocked: {free:?}");
        }
        assert!(
            free.iter()
                .all(|d| d.0.starts_with("198.51.100.") || d.0 == "203.0.113.0/24"),
            "{free:?}"
        );
        assert_eq!(capped, free);
    }

    #[test]
    fn reading_ahead_changes_no_count_and_no_decision() {
        // 20,000 clients of 2,000 networks that come back every 200 s
        // (22,000 keys with their /24s: reading ahead pays), then a flood
        // of 30,000 new addresses (it does not); a scanner in each.
        let mut hits = Vec::new();
        for i in 0..100_000u32 {
            let (net, member) = ((i % 20_000) / 10, i % 10);
            let ip = std::net::Ipv4Addr::from(net.wrapping_mul(2_654_435_761) << 8 | member);
            let (status, path) = if i % 37 == 0 {
                (404, format!("/missing/{i}"))
            } else {
                (200, format!("/p/{}", i % 50))
            };
            hits.push(hit(
                f64::from(i) * 0.01,
                &ip.to_string(),
                status,
                "GET",
                path,
            ));
        }
        for i in 0..30_000u32 {
            let ip = std::net::Ipv4Addr::from(0x0a00_0000 + i * 7);
            let t = 1000.0 + f64::from(i) * 0.01;
            hits.push(hit(t, &ip.to_string(), 200, "GET", "/".into()));
        }
        for (ip, t0) in [("198.51.100.7", 300.0), ("198.51.100.8", 800.0)] {
            for i in 0..40u32 {
                let t = t0 + f64::from(i) * 0.5;
                hits.push(hit(t, ip, 404, "GET", format!("/w/{i}")));
            }
        }
        hits.sort_by_key(|h| h.time_ms);
        let run = |warm: bool| {
            let mut e = Engine::new(&Config::default());
            // Reached in the flood: keys are evicted and refused too.
            e.set_max_keys(30_000);
            let (mut off, mut warmed) = (Vec::new(), [0; 2]);
            for batch in hits.chunks(16) {
                if warm && e.reads_ahead() {
                    e.warm(batch.iter());
                    warmed[usize::from(e.warm_pays.0)] += 1;
                }
                for h in batch {
                    e.observe(h);
                }
                off.extend(e.take_offenses());
            }
            e.flush_pending();
            off.extend(e.take_offenses());
            (off, e.export(), e.stats(), warmed)
        };
        let (off, state, stats, warmed) = run(true);
        // Both ways were taken: read ahead, and found not to pay.
        assert!(warmed[1] > 1000 && warmed[0] > 0, "{warmed:?}");
        let keys: Vec<String> = off.iter().map(|o| o.key.to_string()).collect();
        assert!(keys.contains(&"198.51.100.7/32".to_string()), "{keys:?}");
        assert!(keys.contains(&"198.51.100.8/32".to_string()), "{keys:?}");
        assert!(stats.untracked > 0, "{stats:?}");
        let (off2, state2, stats2, _) = run(false);
        assert_eq!(off, off2);
        assert_eq!(stats, stats2);
        assert!(state == state2, "the stored windows differ");
    }

    /// Traffic of clients alone in their network and of networks with
    /// many, over IPv4 and IPv6: page views, scanners' 404s, failed
    /// logins, gateway errors of an outage, 500s of a fuzzer, a subnet
    /// scan, and clients that come back after their counts were pruned.
    fn networks_and_members(seed: u64, n: u32) -> Vec<Hit<'static>> {
        let mut x = seed;
        let mut next = move |m: u64| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (x >> 33) % m
        };
        let mut hits = Vec::new();
        for i in 0..n {
            // A client: alone in its /24 (or IPv6 /48), or one of a few
            // networks' many members.
            let ip = match next(10) {
                0..=5 => {
                    std::net::Ipv4Addr::from((next(20_000) as u32).wrapping_mul(2_654_435_761))
                        .to_string()
                }
                6 | 7 => format!("192.0.2.{}", next(40)),
                8 => format!("2001:db8:{:x}::{:x}", next(300), next(3)),
                _ => format!("2001:db8:7::{:x}:0:0:1", next(30)),
            };
            let t = f64::from(i) * 0.05
                + if i > n / 2 { 1800.0 } else { 0.0 }
                + next(1000) as f64 / 1000.0;
            let (status, method, path) = match next(100) {
                0..=9 => (404, "GET", format!("/missing/{}", next(500))),
                10..=12 => (401, "POST", "/login".to_string()),
                // An outage of one route, early on.
                13..=15 if i < n / 4 => (502, "GET", "/api/cart".to_string()),
                16 if i < n / 4 => (500, "GET", format!("/search?q={}", next(100))),
                _ => (200, "GET", format!("/p/{}", next(50))),
            };
            hits.push(hit(t, &ip, status, method, path));
        }
        for i in 0..120u32 {
            let t = 600.0 + f64::from(i) * 5.0;
            let ip = format!("203.0.113.{}", 10 + i % 12);
            hits.push(hit(t, &ip, 404, "GET", format!("/sub/{i}")));
        }
        // A password guesser and a fuzzer, each alone in its network.
        for i in 0..40u32 {
            let t = 1900.0 + f64::from(i) * 2.0;
            hits.push(hit(t, "198.51.100.9", 401, "POST", "/login".into()));
            let path = format!("/search?q='{i}");
            hits.push(hit(t + 1.0, "198.51.99.10", 500, "GET", path));
        }
        hits.sort_by_key(|h| h.time_ms);
        // Late records: one in 50 arrives 30 minutes after its time, past
        // the longest window.
        for h in hits.iter_mut().step_by(50) {
            h.time_ms -= 1_800_000;
        }
        hits
    }

    /// The default rules and a copy of `scan-subnet` for networks of
    /// `v4` and `v6` bits.
    fn with_prefix_rule(v4: u8, v6: u8) -> Config {
        let mut config = Config::default();
        let prefix = config
            .rules
            .iter()
            .find(|r| r.config.key == KeyKind::Prefix);
        let mut rule = prefix.unwrap().clone();
        rule.config.name = format!("prefix-{v4}-{v6}");
        (rule.config.prefix_v4, rule.config.prefix_v6) = (v4, v6);
        config.rules.push(rule);
        config
    }

    #[test]
    fn a_request_counts_once_in_a_network_that_two_rules_count() {
        // /24 and /48, /24 and /56: one IPv4 /24, two IPv6 networks.
        let mut e = Engine::new(&with_prefix_rule(24, 56));
        for i in 0..5 {
            let t = f64::from(i);
            e.observe(&hit(t, "192.0.2.1", 200, "GET", "/".into()));
            e.observe(&hit(t, "192.0.2.2", 200, "GET", "/".into()));
            e.observe(&hit(t, "2001:db8::1", 200, "GET", "/".into()));
        }
        let st = e.export_with(|_| true, ExportKeys::AlsoTotalsOnly);
        let total = |k: &str| {
            st.keys[&Key::Net(k.parse().unwrap())]
                .total
                .sum(0, Bucket::MAX)
        };
        assert_eq!(total("192.0.2.0/24"), 10);
        assert_eq!(total("2001:db8::/48"), 5);
        assert_eq!(total("2001:db8::/56"), 5);
        assert_eq!(total("2001:db8::/64"), 5);
    }

    #[test]
    fn an_eviction_while_a_late_record_is_counted_makes_no_alias() {
        // A client with a rule's state and no counts (imported) sends a
        // record older than the longest window while the cap is reached:
        // making room for its network evicts, and prunes the record from
        // the client, but not from the network made after.
        let t0 = 3_600.0;
        let mut past = Engine::new(&Config::default());
        past.observe(&hit(t0, "198.51.100.9", 401, "POST", "/login".into()));
        let mut st = past.export();
        for k in st.keys.values_mut() {
            k.total = Series::default();
        }
        let go = |aliasing: bool| {
            let mut e = Engine::new(&Config::default());
            e.aliasing = aliasing;
            e.set_max_keys(3);
            e.import(&st);
            e.observe(&hit(t0, "203.0.113.5", 200, "GET", "/".into()));
            e.observe(&hit(
                t0 - 3_000.0,
                "198.51.100.9",
                401,
                "POST",
                "/login".into(),
            ));
            (
                e.stats(),
                e.export_with(|_| true, ExportKeys::AlsoTotalsOnly),
            )
        };
        let (with, without) = (go(true), go(false));
        assert_eq!(with.0, without.0);
        assert!(
            with.1 == without.1,
            "{:?}\n{:?}",
            with.1.keys,
            without.1.keys
        );
    }

    #[test]
    fn a_network_of_one_client_counts_as_if_counted_apart() {
        // An alias (a network counted as its only member) and a brief
        // client ([`Brief`]) must change no count, no decision and no
        // stored window: the same traffic with and without aliases, with
        // and without brief clients, with and without a cap that is
        // reached, and with counts from elsewhere imported half way.
        // Also with a second prefix rule (/16 and /32): two networks a client.
        let wide = with_prefix_rule(16, 32);
        let runs = [
            (1, None, Config::default()),
            (2, Some(900), Config::default()),
            (3, Some(2_500), Config::default()),
            (4, None, wide.clone()),
            (5, Some(1_500), wide),
        ];
        for (seed, cap, config) in runs {
            // Counts of the same clients from elsewhere: those with matched
            // requests (a member's without its network's).
            let elsewhere = {
                let mut e = Engine::new(&config);
                run(&mut e, &networks_and_members(seed + 99, 3_000));
                e.export()
            };
            let hits = networks_and_members(seed, 12_000);
            let go = |aliases: bool, briefs: bool| {
                let mut e = Engine::new(&config);
                e.aliasing = aliases;
                e.briefing = briefs;
                if let Some(n) = cap {
                    e.set_max_keys(n);
                }
                let (first, second) = hits.split_at(hits.len() / 3);
                let mut off = run(&mut e, first);
                let before = (e.key_count(), e.sole.len(), e.briefs.len());
                let midway = e.export_with(|_| true, ExportKeys::AlsoTotalsOnly);
                e.import(&elsewhere);
                e.evaluate_all();
                off.extend(e.take_offenses());
                off.extend(run(&mut e, second));
                let all = e.export_with(|_| true, ExportKeys::AlsoTotalsOnly);
                (
                    off,
                    e.stats(),
                    before,
                    e.export(),
                    (midway, all),
                    e.sole.len(),
                )
            };
            let (with, without) = (go(true, true), go(false, true));
            assert!(
                with.2 .1 + with.5 > 20,
                "seed {seed}: aliases {:?} {}",
                with.2,
                with.5
            );
            assert_eq!(without.2 .1 + without.5, 0);
            let rules: Vec<&str> = with.0.iter().map(|o| o.rule.as_str()).collect();
            for rule in ["scan-subnet", "auth-brute", "fuzz-5xx"] {
                assert!(rules.contains(&rule), "seed {seed}: {rules:?}");
            }
            if cap.is_some() {
                assert!(with.1.untracked > 0, "seed {seed}: the cap was not reached");
            }
            assert_eq!(with.0, without.0, "seed {seed}: offenses");
            assert_eq!(with.1, without.1, "seed {seed}: stats");
            assert_eq!(with.2 .0, without.2 .0, "seed {seed}: keys held");
            assert!(
                with.3 == without.3,
                "seed {seed}: the stored windows differ"
            );
            assert!(
                with.4 == without.4,
                "seed {seed}: the exported totals differ"
            );
            let full = go(true, false);
            assert!(with.2 .2 > 20, "seed {seed}: brief clients {:?}", with.2);
            assert_eq!(full.2 .2, 0);
            assert_eq!(with.0, full.0, "seed {seed}: offenses, brief");
            assert_eq!(with.1, full.1, "seed {seed}: stats, brief");
            assert_eq!((with.2 .0, with.2 .1), (full.2 .0, full.2 .1));
            assert_eq!(with.5, full.5, "seed {seed}: aliases, brief");
            assert!(with.3 == full.3, "seed {seed}: stored windows, brief");
            assert!(with.4 == full.4, "seed {seed}: exported totals, brief");
        }
    }

    proptest::proptest! {
        /// A brief client counts as its [`KeyState`] would, late records
        /// and pruning included, for as long as it stays brief.
        #[test]
        fn a_brief_state_is_its_key_state(
            steps in proptest::collection::vec((0..6u32, proptest::bool::ANY, 0..4u32), 1..40),
        ) {
            let (mut br, mut ks) = (Brief::default(), KeyState::default());
            for (b, prune, horizon) in steps {
                let b = 100 + b;
                if prune {
                    let kept = br.prune(100 + horizon);
                    ks.pending_count *= u16::from(ks.pending_bucket >= 100 + horizon);
                    ks.total.prune_before(100 + horizon);
                    proptest::prop_assert_eq!(kept, !ks.is_blank());
                } else if br.count(b) {
                    ks.count(b);
                } else {
                    // Not brief any more: the state unchanged.
                    let mut next = ks.clone();
                    next.count(b);
                    proptest::prop_assert!(next.total.iter().count() > 1);
                    break;
                }
                let st = br.state();
                proptest::prop_assert_eq!(&st.total, &ks.total);
                proptest::prop_assert_eq!(st.pending(), ks.pending());
                proptest::prop_assert_eq!(st.pending_bucket, ks.pending_bucket);
                proptest::prop_assert_eq!(st.is_blank(), ks.is_blank());
            }
        }
    }

    #[test]
    fn which_keys_are_held_does_not_depend_on_the_tables_layout() {
        // A flood of addresses at a cap of 1,560 keys (87 % of a table of
        // 2,048 slots, as 100,000 keys of the default's 131,072): keys are
        // evicted and new ones refused. Each engine's key table has a hash
        // seed of its own, and so a layout of its own (and its own moment
        // to grow: removed keys' marks use up its room).
        let flood = || {
            let mut e = Engine::new(&Config::default());
            e.set_max_keys(1560);
            for i in 0..100_000u32 {
                let ip = std::net::Ipv4Addr::from(0x0a00_0000 + i * 7919);
                let status = if i % 30 == 0 { 404 } else { 200 };
                let t = f64::from(i) / 100.0;
                e.observe(&hit(t, &ip.to_string(), status, "GET", "/".into()));
            }
            (e.stats(), e.export())
        };
        let (stats, state) = flood();
        assert!(stats.untracked > 50_000, "{stats:?}");
        for _ in 0..3 {
            let (again, again_state) = flood();
            assert_eq!(again, stats);
            assert!(again_state == state, "the stored windows differ");
        }
    }

    #[test]
    fn a_flood_of_addresses_stays_bounded_and_a_scanner_is_still_seen() {
        let mut e = Engine::new(&Config::default());
        e.set_max_keys(2000);
        // 300,000 distinct clients with one good request each, in a minute.
        for i in 0..300_000u32 {
            let ip = std::net::Ipv4Addr::from(0x0a00_0000 + i * 7);
            e.observe(&hit(
                f64::from(i) / 5000.0,
                &ip.to_string(),
                200,
                "GET",
                "/".into(),
            ));
        }
        assert!(e.key_count() <= 2000, "{}", e.key_count());
        assert!(e.stats().untracked > 290_000);
        // A scanner arriving in the flood still gets counted and blocked.
        let scan: Vec<_> = (0..40)
            .map(|i| {
                hit(
                    60.0 + f64::from(i),
                    "198.51.100.9",
                    404,
                    "GET",
                    format!("/s{i}"),
                )
            })
            .collect();
        let off = run(&mut e, &scan);
        assert!(
            off.iter().any(|o| o.key.to_string() == "198.51.100.9/32"),
            "{off:?}"
        );
        assert!(e.key_count() <= 2000);
    }

    #[test]
    fn a_line_from_the_far_future_neither_panics_nor_blinds_the_engine() {
        // Found by fuzzing: two lines dated 9999 overflowed the prune check,
        // and a future `newest` pruned every real count.
        let mut e = Engine::new(&Config::default());
        e.set_time_limit(T0 + 86_400_000);
        let far = Hit::new(253_402_300_799_000, "192.0.2.1".parse().unwrap(), 404);
        e.observe(&far);
        e.observe(&far);
        assert_eq!(e.stats().future, 2);
        let scan: Vec<_> = (0..40)
            .map(|i| hit(f64::from(i), "198.51.100.9", 404, "GET", format!("/s{i}")))
            .collect();
        assert!(!run(&mut e, &scan).is_empty());
        // Without a limit the overflow must not panic either.
        let mut e = Engine::new(&Config::default());
        e.observe(&far);
        e.observe(&far);
    }

    #[test]
    fn an_ipv6_attacker_rotating_across_a_48_is_blocked_as_the_48() {
        // A new /64 of one /48 for every request: no /64 is ever loud, the
        // /48 is.
        let mut e = Engine::new(&Config::default());
        let hits: Vec<_> = (0..400u32)
            .map(|i| {
                hit(
                    f64::from(i) * 0.5,
                    &format!("2001:db8:bad:{:x}::1", i % 97),
                    404,
                    "GET",
                    format!("/r{i}"),
                )
            })
            .collect();
        let off = run(&mut e, &hits);
        assert!(
            off.iter()
                .any(|o| o.rule == "scan-subnet" && o.key.to_string() == "2001:db8:bad::/48"),
            "{off:?}"
        );
        assert!(off.iter().all(|o| o.key.net().unwrap().prefix_len() >= 48));
    }

    #[test]
    fn state_is_pruned_to_the_longest_window() {
        let mut e = Engine::new(&Config::default());
        for i in 0..1000 {
            e.observe(&hit(
                f64::from(i),
                &format!("10.0.{}.{}", i / 250, i % 250),
                404,
                "GET",
                "/x".into(),
            ));
        }
        assert!(e.key_count() > 1000);
        // An hour later only the newest client is held.
        e.observe(&hit(3600.0, "192.0.2.1", 200, "GET", "/".into()));
        e.prune();
        assert!(e.key_count() <= 2, "{}", e.key_count());
    }
}
