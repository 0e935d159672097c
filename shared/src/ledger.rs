//! Offenses → blocks: escalation, expiry, safety caps, ranking.
//!
//! The ledger is the single source of truth for who is blocked. It is
//! where the safety rules are enforced, whatever produced the offense:
//! nothing allow-listed, no trusted proxy, nothing wider than the configured
//! widest prefix and never a `/0` ever becomes a block.

use crate::config::Config;
use crate::duration::Secs;
use crate::engine::{Evidence, Offense};
use crate::key::{Key, User};
use crate::printable::clip;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// The version of the ledger's stored layout.
pub const LEDGER_VERSION: u32 = 1;

/// How many manual actions the audit trail keeps.
const AUDIT_KEEP: usize = 1000;

/// One active block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Block {
    /// The rule that decided it, or `manual`.
    pub rule: String,
    /// Event time the block was decided (epoch ms).
    pub since_ms: i64,
    /// When it ends (epoch ms).
    pub until_ms: i64,
    /// The how-many-th offense of this key (escalation).
    pub offense: u32,
    /// Why (rule blocks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Evidence>,
    /// Who and why (manual blocks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manual: Option<Manual>,
}

impl Block {
    /// Why, in one line: the evidence (counts, window, threshold, an
    /// example request), who blocked by hand and why, or the GuardDuty
    /// finding. What `detect`, `status` and the events print.
    pub fn reason(&self) -> String {
        if let Some(m) = &self.manual {
            return format!("blocked by hand by {}: {}", m.by, m.reason);
        }
        let Some(e) = &self.evidence else {
            return self.rule.clone();
        };
        if let Some(f) = &e.finding {
            return format!(
                "GuardDuty finding {} (severity {:.1}, {} on {} in {}, seen {} times), id {}",
                f.kind, f.severity, f.action, f.account, f.region, f.count, f.id
            );
        }
        let mut s = format!(
            "{} of {} requests in {} matched `{}` (threshold {})",
            e.matched, e.requests, e.window, self.rule, e.threshold
        );
        if e.distinct_paths > 0 {
            s += &format!(", {}+ distinct paths", e.distinct_paths);
        }
        if e.members > 1 {
            // A user's addresses are counted up to a cap.
            let more = if e.members >= crate::engine::USER_ADDRESSES {
                "+"
            } else {
                ""
            };
            s += &format!(", {}{more} addresses", e.members);
        }
        if let Some(first) = e.samples.first() {
            s += &format!("; e.g. {first}");
        }
        if e.incident {
            s += " [incident mode]";
        }
        s
    }
}

/// A manual action's author and reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manual {
    /// Who did it.
    pub by: String,
    /// Why.
    pub reason: String,
}

/// Past offenses of one key, for escalation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    /// Offenses remembered.
    pub offenses: u32,
    /// Time of the last one (epoch ms).
    pub last_ms: i64,
    /// End of the ban it earned: memory of an offense starts fading
    /// only when its ban is over.
    #[serde(default)]
    pub until_ms: i64,
}

/// A manual action, kept in the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Wall-clock time (epoch ms).
    pub at_ms: i64,
    /// `block` or `unblock`.
    pub action: String,
    /// The network or user acted on (stored as `net` before users).
    #[serde(alias = "net")]
    pub key: Key,
    /// Who and why.
    pub by: String,
    /// Why.
    pub reason: String,
}

/// The decision ledger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ledger {
    /// [`LEDGER_VERSION`].
    pub version: u32,
    /// Blocks by network or user (some may have expired until
    /// [`Ledger::expire`]).
    pub blocks: BTreeMap<Key, Block>,
    /// Offense history by network or user.
    pub history: BTreeMap<Key, History>,
    /// Manual actions, newest last.
    #[serde(default)]
    pub audit: Vec<AuditEntry>,
    /// Incident mode is on until this wall-clock time (epoch ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident_until_ms: Option<i64>,
    /// GuardDuty finding occurrences acted on (`id#count` → when), so a
    /// re-delivered finding changes nothing; forgotten as offenses are.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub findings: BTreeMap<String, i64>,
}

impl Default for Ledger {
    fn default() -> Self {
        Ledger {
            version: LEDGER_VERSION,
            blocks: BTreeMap::new(),
            history: BTreeMap::new(),
            audit: Vec::new(),
            incident_until_ms: None,
            findings: BTreeMap::new(),
        }
    }
}

/// What became of an offense.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A new block.
    Blocked(Block),
    /// No block, and why.
    Refused(Refusal),
}

/// Why an offense did not become a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// An active block already covers the key.
    AlreadyBlocked(Key),
    /// The network overlaps the allow-list.
    Allowlisted(IpNet),
    /// The network overlaps a trusted proxy.
    TrustedProxy(IpNet),
    /// The network is wider than the widest prefix allowed.
    TooWide,
    /// The user matches this entry of the users' allow-list.
    AllowlistedUser(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::AlreadyBlocked(k) => write!(f, "already blocked as {k}"),
            Refusal::Allowlisted(n) => write!(f, "on the allow-list ({n})"),
            Refusal::TrustedProxy(n) => write!(f, "a trusted proxy ({n})"),
            Refusal::TooWide => write!(f, "wider than the widest prefix allowed"),
            Refusal::AllowlistedUser(a) => write!(f, "on the users' allow-list ({a})"),
        }
    }
}

/// The safety rules and ban lengths the ledger applies.
#[derive(Debug, Clone)]
pub struct Policy {
    allow: Vec<IpNet>,
    allow_users: Vec<String>,
    trusted: Vec<IpNet>,
    max_v4: u8,
    max_v6: u8,
    forget_ms: i64,
    /// Capacity of the IPv4 and IPv6 sets.
    pub capacity: (usize, usize),
    bans: HashMap<String, (Secs, f64, Secs)>,
    guardduty: crate::config::GuardDutyConfig,
}

impl Policy {
    /// The policy of a configuration.
    pub fn new(config: &Config) -> Policy {
        let f = &config.file;
        Policy {
            allow: f.allow.clone(),
            allow_users: f.users.allow.clone(),
            trusted: f.trusted_proxies.clone(),
            max_v4: f.max_prefix_v4,
            max_v6: f.max_prefix_v6,
            forget_ms: f.forget_after.ms(),
            capacity: (f.capacity_v4, f.capacity_v6),
            guardduty: f.guardduty.clone(),
            bans: config
                .rules
                .iter()
                .map(|r| {
                    (
                        r.config.name.clone(),
                        (r.config.ban, r.config.ban_factor, r.config.ban_max),
                    )
                })
                .collect(),
        }
    }

    /// May `key` ever be blocked? `Err` says why not.
    pub fn check(&self, key: &Key) -> Result<(), Refusal> {
        match key {
            Key::Net(net) => self.check_net(net),
            Key::User(user) => self.check_user(user),
        }
    }

    /// A user may be blocked unless an entry of the users' allow-list is
    /// the value itself or, ending in `*`, a prefix of it.
    fn check_user(&self, user: &User) -> Result<(), Refusal> {
        let u = user.as_str();
        let allowed = |a: &String| match a.strip_suffix('*') {
            Some(prefix) => u.starts_with(prefix),
            None => u == a,
        };
        match self.allow_users.iter().find(|a| allowed(a)) {
            Some(a) => Err(Refusal::AllowlistedUser(a.clone())),
            None => Ok(()),
        }
    }

    /// May `net` ever be blocked?
    fn check_net(&self, net: &IpNet) -> Result<(), Refusal> {
        let widest = match net {
            IpNet::V4(_) => self.max_v4,
            IpNet::V6(_) => self.max_v6,
        };
        if net.prefix_len() == 0 || net.prefix_len() < widest {
            return Err(Refusal::TooWide);
        }
        let overlaps = |a: &IpNet| a.contains(net) || net.contains(a);
        if let Some(a) = self.allow.iter().find(|a| overlaps(a)) {
            return Err(Refusal::Allowlisted(*a));
        }
        if let Some(t) = self.trusted.iter().find(|t| overlaps(t)) {
            return Err(Refusal::TrustedProxy(*t));
        }
        Ok(())
    }

    /// The ban for the `offense`th offense like `off`: its rule's, or for
    /// a GuardDuty finding its severity band's.
    fn ban_ms(&self, off: &Offense, offense: u32) -> i64 {
        let (ban, factor, max) = match &off.evidence.finding {
            Some(f) => self.guardduty.ban_for(f.severity),
            None => {
                self.bans
                    .get(&off.rule)
                    .copied()
                    .unwrap_or((Secs(3600), 2.0, Secs(7 * 86_400)))
            }
        };
        let exp = i32::try_from(offense.saturating_sub(1))
            .unwrap_or(i32::MAX)
            .min(64);
        let ms = (ban.ms() as f64) * factor.powi(exp);
        (ms.min(max.ms() as f64)) as i64
    }
}

/// The sets to enforce, ranked and cut to capacity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Desired {
    /// Blocked users, most severe then most recent first (the regex
    /// pattern set takes as many as fit, in this order).
    pub users: Vec<User>,
    /// IPv4 networks, host bits masked, sorted.
    pub v4: Vec<IpNet>,
    /// IPv6 networks, host bits masked, sorted.
    pub v6: Vec<IpNet>,
    /// Active IPv4 blocks left out for lack of capacity.
    pub overflow_v4: usize,
    /// Active IPv6 blocks left out for lack of capacity.
    pub overflow_v6: usize,
}

impl Ledger {
    /// Turn an offense into a block, if the policy allows and no active
    /// block covers it. Repeat offenders get `ban × factor^(n-1)`, capped.
    pub fn apply(&mut self, off: &Offense, policy: &Policy) -> Outcome {
        let net = off.key.trunc();
        if let Err(why) = policy.check(&net) {
            return Outcome::Refused(why);
        }
        if let Some(covering) = self.covering(&net, off.time_ms) {
            return Outcome::Refused(Refusal::AlreadyBlocked(covering));
        }
        let h = self.history.get(&net).copied();
        let offense = match h {
            Some(h) if off.time_ms.saturating_sub(h.last_ms.max(h.until_ms)) < policy.forget_ms => {
                h.offenses.saturating_add(1)
            }
            _ => 1,
        };
        let until_ms = off.time_ms.saturating_add(policy.ban_ms(off, offense));
        self.history.insert(
            net.clone(),
            History {
                offenses: offense,
                last_ms: off.time_ms,
                until_ms,
            },
        );
        let block = Block {
            rule: off.rule.clone(),
            since_ms: off.time_ms,
            until_ms,
            offense,
            evidence: Some(off.evidence.clone()),
            manual: None,
        };
        self.blocks.insert(net, block.clone());
        Outcome::Blocked(block)
    }

    /// The active block that equals or contains `key` at `now_ms` (a
    /// user's block is only its own).
    pub fn covering(&self, key: &Key, now_ms: i64) -> Option<Key> {
        let active = |k: &Key| self.blocks.get(k).is_some_and(|b| b.until_ms > now_ms);
        let Key::Net(net) = key else {
            return active(key).then(|| key.clone());
        };
        let mut n = *net;
        loop {
            if active(&Key::Net(n)) {
                return Some(Key::Net(n));
            }
            n = n.supernet()?;
        }
    }

    /// Block `net` (a network or a user) by hand for `ttl`, recorded in
    /// the audit trail.
    pub fn block_manual(
        &mut self,
        net: Key,
        ttl: Secs,
        by: &str,
        reason: &str,
        now_ms: i64,
        policy: &Policy,
    ) -> Result<Block, Refusal> {
        let net = net.trunc();
        policy.check(&net)?;
        let manual = Manual {
            by: clip(by, 100),
            reason: clip(reason, 500),
        };
        let block = Block {
            rule: "manual".into(),
            since_ms: now_ms,
            until_ms: now_ms.saturating_add(ttl.ms()),
            offense: self
                .history
                .get(&net)
                .map_or(1, |h| h.offenses.saturating_add(1)),
            evidence: None,
            manual: Some(manual.clone()),
        };
        self.blocks.insert(net.clone(), block.clone());
        self.record(now_ms, "block", net, manual);
        Ok(block)
    }

    /// Remove the block on `net` by hand (and forget its offenses, so the
    /// next one starts from the first ban again). Returns the removed block.
    pub fn unblock(&mut self, net: Key, by: &str, reason: &str, now_ms: i64) -> Option<Block> {
        let net = net.trunc();
        let removed = self.blocks.remove(&net);
        self.history.remove(&net);
        self.record(
            now_ms,
            "unblock",
            net,
            Manual {
                by: clip(by, 100),
                reason: clip(reason, 500),
            },
        );
        removed
    }

    fn record(&mut self, at_ms: i64, action: &str, key: Key, m: Manual) {
        self.audit.push(AuditEntry {
            at_ms,
            action: action.into(),
            key,
            by: m.by,
            reason: m.reason,
        });
        if self.audit.len() > AUDIT_KEEP {
            let extra = self.audit.len() - AUDIT_KEEP;
            self.audit.drain(..extra);
        }
    }

    /// Remove blocks that ended at or before `now_ms` and history older than
    /// the policy remembers. Returns the removed blocks.
    pub fn expire(&mut self, now_ms: i64, policy: &Policy) -> Vec<(Key, Block)> {
        let ended: Vec<Key> = self
            .blocks
            .iter()
            .filter(|(_, b)| b.until_ms <= now_ms)
            .map(|(n, _)| n.clone())
            .collect();
        self.history
            .retain(|_, h| now_ms.saturating_sub(h.last_ms.max(h.until_ms)) < policy.forget_ms);
        self.findings
            .retain(|_, at| now_ms.saturating_sub(*at) < policy.forget_ms);
        ended
            .into_iter()
            .filter_map(|n| self.blocks.remove(&n).map(|b| (n, b)))
            .collect()
    }

    /// Blocks active at `now_ms`.
    pub fn active(&self, now_ms: i64) -> impl Iterator<Item = (&Key, &Block)> {
        self.blocks.iter().filter(move |(_, b)| b.until_ms > now_ms)
    }

    /// What the IP sets should hold at `now_ms`: the active blocks that pass
    /// the policy, most severe (most offenses) then most recent first, cut
    /// to capacity.
    pub fn desired(&self, now_ms: i64, policy: &Policy) -> Desired {
        let mut ranked: Vec<(&Key, &Block)> = self
            .active(now_ms)
            .filter(|(n, _)| policy.check(n).is_ok())
            .collect();
        ranked.sort_by(|a, b| {
            (b.1.offense, b.1.since_ms, a.0).cmp(&(a.1.offense, a.1.since_ms, b.0))
        });
        let mut d = Desired::default();
        for (key, _) in ranked {
            let net = match key {
                Key::Net(net) => net,
                Key::User(user) => {
                    d.users.push(user.clone());
                    continue;
                }
            };
            let (list, cap, over) = match net {
                IpNet::V4(_) => (&mut d.v4, policy.capacity.0, &mut d.overflow_v4),
                IpNet::V6(_) => (&mut d.v6, policy.capacity.1, &mut d.overflow_v6),
            };
            if list.len() < cap {
                list.push(net.trunc());
            } else {
                *over += 1;
            }
        }
        d.v4.sort();
        d.v6.sort();
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offense(key: &str, rule: &str, t: i64) -> Offense {
        Offense {
            key: key.parse().unwrap(),
            rule: rule.into(),
            time_ms: t,
            evidence: Evidence {
                matched: 30,
                requests: 31,
                window: Secs(60),
                threshold: 30,
                distinct_paths: 15,
                members: 0,
                first_seen_ms: t.saturating_sub(5000),
                last_seen_ms: t,
                samples: vec![],
                user_agent: String::new(),
                incident: false,
                finding: None,
            },
        }
    }

    fn policy(extra: &str) -> Policy {
        Policy::new(&Config::parse(extra).unwrap())
    }

    const H: i64 = 3_600_000;

    /// Stored state is read back from S3 or a directory and may hold
    /// anything: extreme values never panic (found by the `state` fuzz
    /// target: `bucket_secs * 1000` overflowed in `Engine::import`).
    #[test]
    fn extreme_stored_values_never_panic() {
        let p = policy("");
        let mut l = Ledger::default();
        let net: Key = "192.0.2.1/32".parse().unwrap();
        for (last_ms, until_ms) in [(i64::MIN, i64::MIN), (i64::MAX, i64::MAX), (i64::MIN, 0)] {
            l.history.insert(
                net.clone(),
                History {
                    offenses: u32::MAX,
                    last_ms,
                    until_ms,
                },
            );
            for t in [i64::MIN, 0, i64::MAX] {
                let _ = l
                    .clone()
                    .apply(&offense("192.0.2.1/32", "scan-burst", t), &p);
                let _ = l.clone().expire(t, &p);
                let _ = l
                    .clone()
                    .block_manual(net.clone(), Secs(60), "me", "test", t, &p);
            }
        }
        let cfg = Config::default();
        let mut st = crate::engine::Engine::new(&cfg).export();
        st.bucket_secs = u64::MAX;
        crate::engine::Engine::new(&cfg).import(&st);
        st.bucket_secs = 10;
        st.newest = u32::MAX;
        let mut e = crate::engine::Engine::new(&cfg);
        e.import(&st);
        e.evaluate_all();
        e.prune();
    }

    #[test]
    fn escalates_repeat_offenders_up_to_the_cap() {
        let p = policy("");
        let mut l = Ledger::default();
        let mut t = 0;
        let mut lengths = vec![];
        for _ in 0..12 {
            match l.apply(&offense("192.0.2.1/32", "scan-burst", t), &p) {
                Outcome::Blocked(b) => {
                    lengths.push((b.until_ms - b.since_ms) / H);
                    t = b.until_ms + 1;
                }
                o => panic!("{o:?}"),
            }
        }
        assert_eq!(&lengths[..8], &[1, 2, 4, 8, 16, 32, 64, 128]);
        assert_eq!(
            &lengths[8..],
            &[168, 168, 168, 168],
            "capped at ban_max = 7d"
        );
    }

    #[test]
    fn active_block_is_not_renewed_and_history_is_forgotten() {
        let p = policy("forget_after = \"1d\"");
        let mut l = Ledger::default();
        assert!(matches!(
            l.apply(&offense("192.0.2.1/32", "scan-burst", 0), &p),
            Outcome::Blocked(_)
        ));
        assert!(matches!(
            l.apply(&offense("192.0.2.1/32", "scan-slow", H / 2), &p),
            Outcome::Refused(Refusal::AlreadyBlocked(_))
        ));
        // A /24 block covers its addresses.
        l.apply(&offense("198.51.100.0/24", "scan-subnet", 0), &p);
        assert_eq!(
            l.apply(&offense("198.51.100.9/32", "scan-burst", 10), &p),
            Outcome::Refused(Refusal::AlreadyBlocked("198.51.100.0/24".parse().unwrap()))
        );
        // Two days later the first offense is forgotten.
        match l.apply(&offense("192.0.2.1/32", "scan-burst", 48 * H), &p) {
            Outcome::Blocked(b) => assert_eq!(b.offense, 1),
            o => panic!("{o:?}"),
        }
        assert_eq!(l.expire(100 * H, &p).len(), 2);
        assert!(l.history.is_empty());
    }

    #[test]
    fn safety_caps_hold() {
        let p = policy("allow = [\"203.0.113.0/28\"]\ntrusted_proxies = [\"10.0.0.0/8\"]");
        let mut l = Ledger::default();
        assert!(matches!(
            l.apply(&offense("203.0.113.5/32", "r", 0), &p),
            Outcome::Refused(Refusal::Allowlisted(_))
        ));
        assert!(matches!(
            l.apply(&offense("203.0.113.0/24", "r", 0), &p),
            Outcome::Refused(Refusal::Allowlisted(_))
        ));
        assert!(matches!(
            l.apply(&offense("10.1.1.1/32", "r", 0), &p),
            Outcome::Refused(Refusal::TrustedProxy(_))
        ));
        assert_eq!(
            l.apply(&offense("198.51.0.0/16", "r", 0), &p),
            Outcome::Refused(Refusal::TooWide)
        );
        assert_eq!(
            l.apply(&offense("0.0.0.0/0", "r", 0), &p),
            Outcome::Refused(Refusal::TooWide)
        );
        assert_eq!(
            l.apply(&offense("2001:db8::/32", "r", 0), &p),
            Outcome::Refused(Refusal::TooWide)
        );
        assert!(l.blocks.is_empty());
        assert!(l
            .block_manual("10.0.0.0/8".parse().unwrap(), Secs(60), "me", "x", 0, &p)
            .is_err());
    }

    #[test]
    fn desired_sets_rank_by_severity_then_recency() {
        let p = policy("capacity_v4 = 2");
        let mut l = Ledger::default();
        // 192.0.2.1 offended before: its second offense makes it the most severe.
        l.apply(&offense("192.0.2.1/32", "scan-burst", -10 * H), &p);
        for (i, ip) in ["192.0.2.1/32", "192.0.2.2/32", "192.0.2.3/32"]
            .iter()
            .enumerate()
        {
            l.apply(&offense(ip, "scan-burst", i as i64 * 1000), &p);
        }
        l.apply(&offense("2001:db8:1:2::/64", "scan-burst", 0), &p);
        let d = l.desired(3000, &p);
        let v4: Vec<String> = d.v4.iter().map(ToString::to_string).collect();
        assert_eq!(v4, vec!["192.0.2.1/32", "192.0.2.3/32"]);
        assert_eq!(d.overflow_v4, 1);
        assert_eq!(d.v6.len(), 1);
    }

    #[test]
    fn manual_actions_are_audited() {
        let p = policy("");
        let mut l = Ledger::default();
        let b = l
            .block_manual(
                "192.0.2.77/24".parse().unwrap(),
                Secs(7200),
                "alice",
                "abuse\nreport",
                5,
                &p,
            )
            .unwrap();
        assert_eq!(b.until_ms, 5 + 7_200_000);
        assert!(l.blocks.contains_key(&"192.0.2.0/24".parse().unwrap()));
        assert!(l
            .unblock("192.0.2.0/24".parse().unwrap(), "bob", "customer", 9)
            .is_some());
        assert_eq!(l.audit.len(), 2);
        assert_eq!(l.audit[0].reason, "abuse\\nreport");
        assert_eq!(l.audit[1].action, "unblock");
    }

    /// Networks an offense or an operator may name: plain, nested, on the
    /// allow-list, a trusted proxy, too wide, `/0`, host bits set; and
    /// users, plain and allow-listed (by value and by prefix).
    const NETS: [&str; 18] = [
        "user:alice",
        "user:ak_live_1",
        "user:svc-monitor",
        "user:internal-key",
        "192.0.2.7/32",
        "192.0.2.9/32",
        "192.0.2.77/24",
        "198.51.100.4/32",
        "10.1.2.3/32",
        "203.0.113.0/16",
        "0.0.0.0/0",
        "192.0.2.0/25",
        "2001:db8::1/128",
        "2001:db8:1:2::/64",
        "2001:db8:1::/48",
        "2001:db8:ffff:1::/64",
        "2001:db8::/32",
        "::/0",
    ];

    proptest::proptest! {
        /// Whatever the offenses, manual actions and times, in any order:
        /// nothing the ledger holds or hands to WAF is allow-listed, a
        /// trusted proxy, wider than allowed, `/0` or unmasked; the sets stay
        /// within capacity, sorted, and account for every active block once
        /// (enforced or over capacity); an offense covered by an active
        /// block is refused, a repeat offense escalates by one with the
        /// rule's ban for that level; expire ends exactly the blocks that are
        /// over; the ledger reads back from its JSON unchanged.
        #[test]
        fn the_ledger_keeps_its_promises_whatever_happens(
            ops in proptest::collection::vec((0u8..4, 0..NETS.len(), 0i64..72, 0usize..4), 1..60),
        ) {
            use proptest::prop_assert as check;
            let p = policy(
                "allow = [\"198.51.100.0/24\", \"2001:db8:ffff::/48\"]\n\
                 trusted_proxies = [\"10.0.0.0/8\"]\n\
                 capacity_v4 = 2\ncapacity_v6 = 1\n\
                 [users]\nallow = [\"svc-*\", \"internal-key\"]\n",
            );
            let rules = ["scan-burst", "scan-slow", "fuzz-5xx", "no-such-rule"];
            let mut l = Ledger::default();
            for &(op, n, hour, r) in &ops {
                let t = hour * H / 2;
                let net: Key = NETS[n].parse().unwrap();
                let masked = net.trunc();
                let rule = rules[r];
                match op {
                    0 => {
                        let prior = l.history.get(&masked).copied();
                        let covered = l.covering(&masked, t);
                        let off = offense(NETS[n], rule, t);
                        match l.apply(&off, &p) {
                            Outcome::Blocked(b) => {
                                check!(p.check(&masked).is_ok() && covered.is_none());
                                proptest::prop_assert_eq!(b.offense, prior.map_or(1, |h| h.offenses + 1));
                                proptest::prop_assert_eq!(b.until_ms - b.since_ms, p.ban_ms(&off, b.offense));
                                check!(b.offense == 1 || b.until_ms - b.since_ms >= p.ban_ms(&off, b.offense - 1));
                            }
                            Outcome::Refused(Refusal::AlreadyBlocked(c)) => {
                                check!(p.check(&masked).is_ok());
                                proptest::prop_assert_eq!(Some(c), covered);
                            }
                            Outcome::Refused(why) => proptest::prop_assert_eq!(p.check(&masked), Err(why)),
                        }
                    }
                    1 => {
                        for (_, b) in l.expire(t, &p) {
                            check!(b.until_ms <= t);
                        }
                        check!(l.blocks.values().all(|b| b.until_ms > t));
                    }
                    2 => {
                        let got = l.block_manual(net.clone(), Secs(3600), "op", "test", t, &p);
                        proptest::prop_assert_eq!(got.is_ok(), p.check(&masked).is_ok());
                    }
                    _ => {
                        l.unblock(net.clone(), "op", "test", t);
                        check!(!l.blocks.contains_key(&masked));
                    }
                }
                for n in l.blocks.keys() {
                    check!(p.check(n).is_ok() && *n == n.trunc(), "{n} in the ledger");
                }
                let d = l.desired(t, &p);
                check!(d.v4.len() <= p.capacity.0 && d.v6.len() <= p.capacity.1);
                for (set, v6) in [(&d.v4, false), (&d.v6, true)] {
                    check!(set.windows(2).all(|w| w[0] < w[1]), "{set:?} sorted, no duplicate");
                    for n in set {
                        check!(p.check(&Key::Net(*n)).is_ok() && *n == n.trunc() && matches!(n, IpNet::V6(_)) == v6);
                    }
                }
                let active = |f: fn(&Key) -> bool| l.active(t).filter(|(k, _)| f(k)).count();
                proptest::prop_assert_eq!(d.v4.len() + d.overflow_v4, active(|k| matches!(k, Key::Net(IpNet::V4(_)))));
                proptest::prop_assert_eq!(d.v6.len() + d.overflow_v6, active(|k| matches!(k, Key::Net(IpNet::V6(_)))));
                proptest::prop_assert_eq!(d.users.len(), active(|k| matches!(k, Key::User(_))));
                for u in &d.users {
                    check!(!u.as_str().starts_with("svc-") && u.as_str() != "internal-key");
                }
                let back: Ledger = serde_json::from_str(&serde_json::to_string(&l).unwrap()).unwrap();
                proptest::prop_assert_eq!(&back, &l);
            }
        }
    }
}
