//! The report's data model: the offenders drawn, the near misses and the
//! clients held back by a condition other than the count, a row per rule,
//! and the route outages of the site lane, built from what was collected.

use super::collect::{Collected, Data, KeyStats, SECTION_CLIENTS};
use crate::output::Summary;
use fail2waf_core::client::widen;
use fail2waf_core::key::Key;
use fail2waf_core::pipeline::{Decision, FileReport, Pipeline};
use fail2waf_core::rules::{KeyKind, Rule};
use fail2waf_core::window::{window_start, Bucket};
use ipnet::IpNet;
use std::collections::{BTreeMap, HashMap};

/// Near misses shown.
const NEAR_MISSES: usize = 10;

/// A route section that answered server errors to several clients in a
/// run of consecutive minutes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Outage {
    /// `/api/*`, `/*`, or an operator's route pattern.
    pub(super) section: String,
    /// First and last minute (epoch minutes, inclusive).
    pub(super) from: i64,
    pub(super) to: i64,
    /// Most distinct clients with a 5xx there in one of its minutes
    /// (counted up to [`SECTION_CLIENTS`]).
    pub(super) clients: usize,
}

/// One lane of the timeline: a blocked network or an unblocked key.
pub(super) struct Offender {
    pub(super) key: Key,
    pub(super) stats: KeyStats,
    /// Indices into the decisions.
    pub(super) blocks: Vec<usize>,
}

/// A client that came close to a rule without being blocked.
pub(super) struct NearMiss {
    pub(super) rule: usize,
    pub(super) key: Key,
    pub(super) max: u64,
    pub(super) threshold: u32,
    /// End of the fullest window (epoch ms).
    pub(super) at_ms: i64,
    /// For those that reached the count: what held them back, if known.
    pub(super) why: Option<String>,
}

impl NearMiss {
    pub(super) fn ratio(&self) -> f64 {
        self.max as f64 / f64::from(self.threshold.max(1))
    }
}

pub(super) struct RuleRow {
    pub(super) blocks: u64,
    pub(super) refused: u64,
    pub(super) matched: u64,
    pub(super) clients: u64,
}

pub(super) struct Model {
    pub(super) inputs: Vec<String>,
    pub(super) reports: Vec<FileReport>,
    pub(super) summary: Summary,
    pub(super) rules: Vec<Rule>,
    pub(super) rule_rows: Vec<RuleRow>,
    pub(super) decisions: Vec<Decision>,
    pub(super) refused: BTreeMap<String, u64>,
    pub(super) offenders: Vec<Offender>,
    /// Blocked networks not drawn (beyond `--top`).
    pub(super) blocked_not_shown: usize,
    pub(super) near: Vec<NearMiss>,
    /// Count reached, held back by another condition.
    pub(super) held: Vec<NearMiss>,
    /// Route outages recognised from the server errors, by first minute.
    pub(super) outages: Vec<Outage>,
    /// `[outage] route_clients`.
    pub(super) route_clients: u32,
    pub(super) data: Data,
}

/// The route outages in `failing`: the minutes in which a route section
/// answered server errors to at least `route_clients` distinct clients,
/// consecutive minutes of a section merged into one.
pub(super) fn outages(
    failing: &HashMap<(i64, String), Vec<IpNet>>,
    route_clients: u32,
) -> Vec<Outage> {
    let need = (route_clients as usize).clamp(1, SECTION_CLIENTS);
    let mut minutes: Vec<(&str, i64, usize)> = failing
        .iter()
        .filter(|(_, c)| c.len() >= need)
        .map(|((m, s), c)| (s.as_str(), *m, c.len()))
        .collect();
    minutes.sort_unstable();
    let mut out: Vec<Outage> = Vec::new();
    for (section, m, clients) in minutes {
        match out.last_mut() {
            Some(o) if o.section == section && o.to + 1 == m => {
                o.to = m;
                o.clients = o.clients.max(clients);
            }
            _ => out.push(Outage {
                section: section.to_string(),
                from: m,
                to: m,
                clients,
            }),
        }
    }
    out.sort_by(|a, b| (a.from, &a.section).cmp(&(b.from, &b.section)));
    out
}

/// Why a client that reached a rule's count was not blocked: the first
/// condition of the rule its fullest window failed, as the detector's
/// engine still holds it at the end of the run, or, for a window the engine
/// no longer holds (older than the longest window before the end), the
/// route outages of the site lane in which the client got server errors.
fn held_why(
    detector: &Pipeline,
    rule: &Rule,
    n: &NearMiss,
    data: &Data,
    outages: &[Outage],
) -> Option<String> {
    let c = &rule.config;
    let engine = detector.engine();
    let end = engine.bucket_of(n.at_ms - 1);
    let lo = window_start(end, rule.window_buckets);
    let st = engine.export_where(|k| *k == n.key);
    let held = st
        .keys
        .get(&n.key)
        .and_then(|k| Some((k, k.rules.get(&c.name)?)))
        .filter(|(_, rs)| rs.matched.sum(lo, end) >= u64::from(c.threshold));
    let Some((sk, rs)) = held else {
        // Not in the engine's memory any more: the site lane's outages.
        return site_outage_why(rule, n, data, outages, lo);
    };
    let matched = rs.matched.sum(lo, end);
    let total = sk.total.sum(lo, end);
    let requests = if rule.outage_aware {
        total
    } else {
        total.saturating_sub(sk.gateway.sum(lo, end))
    }
    .max(matched);
    if requests < u64::from(c.min_requests) {
        return Some(format!("{requests} requests, under {}", c.min_requests));
    }
    if let Some(r) = c
        .min_ratio
        .filter(|r| (matched as f64) < r * requests as f64)
    {
        return Some(format!(
            "ratio {matched}/{requests} ({:.0} %), under {:.0} %",
            matched as f64 * 100.0 / requests as f64,
            r * 100.0
        ));
    }
    let paths = rs.paths.count_since(lo);
    if paths < c.distinct_paths {
        return Some(format!(
            "{paths} distinct paths, under {}",
            c.distinct_paths
        ));
    }
    let members = rs.members.count_since(lo);
    if c.key != KeyKind::Ip && members < c.min_members {
        return Some(format!(
            "{members} quiet addresses, under {}",
            c.min_members
        ));
    }
    engine
        .outage_hold(&n.key, &c.name, end)
        .map(|h| h.to_string())
}

/// Why a client whose fullest window the engine no longer holds was held
/// back: the route outages the site lane recognised in that window (from
/// `lo`, a bucket) in which the client got server errors. Only for rules
/// with outage awareness.
fn site_outage_why(
    rule: &Rule,
    n: &NearMiss,
    data: &Data,
    outages: &[Outage],
    lo: Bucket,
) -> Option<String> {
    if !rule.outage_aware {
        return None;
    }
    let (first, last) = (
        (i64::from(lo) * data.bucket_ms).div_euclid(60_000),
        (n.at_ms - 1).div_euclid(60_000),
    );
    let mut sections: Vec<&str> = Vec::new();
    for (m, s) in data
        .keys
        .iter()
        .filter(|(k, _)| covers(&n.key, k))
        .flat_map(|(_, k)| &k.failed_sections)
    {
        let down = (first..=last).contains(m)
            && outages
                .iter()
                .any(|o| o.section == *s && (o.from..=o.to).contains(m));
        if down && !sections.contains(&s.as_str()) {
            sections.push(s);
        }
    }
    sections.sort_unstable();
    (!sections.is_empty()).then(|| {
        format!(
            "outage on {} (site lane; window no longer in the engine)",
            sections.join(", ")
        )
    })
}

/// The fullest window of `width` buckets: (count, last bucket).
pub(super) fn max_window(buckets: &BTreeMap<i64, u32>, width: i64) -> (u64, i64) {
    let items: Vec<(i64, u32)> = buckets.iter().map(|(b, c)| (*b, *c)).collect();
    let (mut best, mut at, mut sum, mut start) = (0u64, 0i64, 0u64, 0usize);
    for &(b, c) in &items {
        sum += u64::from(c);
        while items[start].0 <= b - width {
            sum -= u64::from(items[start].1);
            start += 1;
        }
        if sum > best {
            best = sum;
            at = b;
        }
    }
    (best, at)
}

impl Model {
    pub(super) fn build(inputs: &[String], collected: Collected, top: usize) -> Model {
        let Collected {
            detector,
            reports,
            data,
        } = collected;
        let mut summary = Summary::default();
        for r in &reports {
            summary.add(r);
        }
        let decisions = detector.decisions().to_vec();
        summary.blocks = decisions.len() as u64;
        let rules = detector.config().rules.clone();
        let (offenders, blocked_not_shown) = offenders(&decisions, &data, top);
        let route_clients = detector.config().file.outage.route_clients;
        let outages = outages(&data.failing, route_clients);
        let (near, held) = near_misses(&detector, &rules, &decisions, &data, &outages);
        let rule_rows = rule_rows(&detector, &rules, &decisions, &data);
        let refused = detector
            .refused()
            .iter()
            .map(|(k, v)| ((*k).to_string(), *v))
            .collect();
        Model {
            inputs: inputs.to_vec(),
            reports,
            summary,
            rules,
            rule_rows,
            decisions,
            refused,
            offenders,
            blocked_not_shown,
            near,
            held,
            outages,
            route_clients,
            data,
        }
    }

    pub(super) fn blocked_nets(&self) -> usize {
        let mut nets: Vec<&Key> = self.decisions.iter().map(|d| &d.key).collect();
        nets.sort();
        nets.dedup();
        nets.len()
    }
}

/// Whether one of the decisions blocks `key`.
fn is_blocked(decisions: &[Decision], key: &Key) -> bool {
    decisions.iter().any(|d| covers(&d.key, key))
}

/// Is `key` `outer` or inside it (a user only itself)?
fn covers(outer: &Key, key: &Key) -> bool {
    match (outer, key) {
        (Key::Net(o), Key::Net(k)) => o.contains(k),
        _ => outer == key,
    }
}

/// The lanes of the timeline, `top` in all: the blocked networks with the
/// most matched requests first, then the busiest keys never blocked; and
/// how many blocked networks did not fit.
fn offenders(decisions: &[Decision], data: &Data, top: usize) -> (Vec<Offender>, usize) {
    let mut keys: Vec<&Key> = Vec::new();
    for d in decisions {
        if !keys.contains(&&d.key) {
            keys.push(&d.key);
        }
    }
    let mut offenders: Vec<Offender> = keys
        .into_iter()
        .map(|key| blocked_offender(key, decisions, data))
        .collect();
    offenders.sort_by_key(|o| std::cmp::Reverse(o.stats.matched));
    let blocked_not_shown = offenders.len().saturating_sub(top);
    offenders.truncate(top);
    if offenders.len() < top {
        let mut others: Vec<(&Key, &KeyStats)> = data
            .keys
            .iter()
            .filter(|(k, _)| !is_blocked(decisions, k))
            .collect();
        others.sort_by(|a, b| b.1.matched.cmp(&a.1.matched).then(a.0.cmp(b.0)));
        for (k, s) in others.into_iter().take(top - offenders.len()) {
            offenders.push(Offender {
                key: k.clone(),
                stats: s.clone(),
                blocks: Vec::new(),
            });
        }
    }
    (offenders, blocked_not_shown)
}

/// The lane of the blocked network or user `key`: its own figures when
/// it is a key, its members' summed otherwise, with the decisions that
/// blocked it.
fn blocked_offender(key: &Key, decisions: &[Decision], data: &Data) -> Offender {
    let mut stats = KeyStats::default();
    if let Some(s) = data.keys.get(key) {
        stats.merge(s);
    } else {
        for (k, s) in &data.keys {
            if covers(key, k) {
                stats.merge(s);
            }
        }
    }
    if stats.matched == 0 {
        // A blocked network whose requests were not detailed.
        stats.requests = data.quiet.get(key).copied().unwrap_or(0);
    }
    let blocks = (0..decisions.len())
        .filter(|&i| decisions[i].key == *key)
        .collect();
    Offender {
        key: key.clone(),
        stats,
        blocks,
    }
}

/// The clients never blocked by a rule, by their fullest window for it
/// (the count condition only), closest to the threshold first, split in
/// two: the near misses, under the count, and those held back by another
/// condition, at or over it (with why). [`NEAR_MISSES`] of each.
fn near_misses(
    detector: &Pipeline,
    rules: &[Rule],
    decisions: &[Decision],
    data: &Data,
    outages: &[Outage],
) -> (Vec<NearMiss>, Vec<NearMiss>) {
    let mut near = Vec::new();
    for (r, rule) in rules.iter().enumerate() {
        let width = i64::from(rule.window_buckets);
        for (key, buckets) in candidates(r, rule, decisions, data) {
            if decisions
                .iter()
                .any(|d| d.key == key && d.block.rule == rule.config.name)
            {
                continue;
            }
            let (max, at) = max_window(&buckets, width);
            near.push(NearMiss {
                rule: r,
                key,
                max,
                threshold: rule.config.threshold,
                at_ms: (at + 1) * data.bucket_ms,
                why: None,
            });
        }
    }
    near.sort_by(|a, b| {
        b.ratio()
            .total_cmp(&a.ratio())
            .then(b.max.cmp(&a.max))
            .then(a.rule.cmp(&b.rule))
            .then(a.key.cmp(&b.key))
    });
    let (mut held, mut near): (Vec<NearMiss>, Vec<NearMiss>) = near
        .into_iter()
        .partition(|n| n.max >= u64::from(n.threshold));
    near.truncate(NEAR_MISSES);
    held.truncate(NEAR_MISSES);
    for n in &mut held {
        n.why = held_why(detector, &rules[n.rule], n, data, outages);
    }
    (near, held)
}

/// The matched requests per bucket of rule `r` (the `r`th of the config,
/// `rule`) of each key no decision blocks: per address, or per network
/// (its members' summed) for a prefix rule.
fn candidates(
    r: usize,
    rule: &Rule,
    decisions: &[Decision],
    data: &Data,
) -> HashMap<Key, BTreeMap<i64, u32>> {
    let mut candidates: HashMap<Key, BTreeMap<i64, u32>> = HashMap::new();
    for (k, s) in &data.keys {
        let Some(buckets) = s.per_rule.get(r).filter(|b| !b.is_empty()) else {
            continue;
        };
        if is_blocked(decisions, k) {
            continue;
        }
        match (rule.config.key, k) {
            (KeyKind::Ip, Key::Net(_)) | (KeyKind::User, Key::User(_)) => {
                candidates.insert(k.clone(), buckets.clone());
            }
            (KeyKind::Prefix, Key::Net(n)) => {
                let net = candidates
                    .entry(Key::Net(widen(
                        *n,
                        rule.config.prefix_v4,
                        rule.config.prefix_v6,
                    )))
                    .or_default();
                for (b, c) in buckets {
                    *net.entry(*b).or_insert(0) += c;
                }
            }
            _ => {}
        }
    }
    candidates
}

/// A row of the rules table per rule.
fn rule_rows(
    detector: &Pipeline,
    rules: &[Rule],
    decisions: &[Decision],
    data: &Data,
) -> Vec<RuleRow> {
    rules
        .iter()
        .enumerate()
        .map(|(r, rule)| RuleRow {
            blocks: decisions
                .iter()
                .filter(|d| d.block.rule == rule.config.name)
                .count() as u64,
            refused: detector
                .refused_by_rule()
                .get(&rule.config.name)
                .copied()
                .unwrap_or(0),
            matched: data.matched_by_rule.get(r).copied().unwrap_or(0),
            clients: data
                .keys
                .values()
                .filter(|s| s.per_rule.get(r).is_some_and(|b| !b.is_empty()))
                .count() as u64,
        })
        .collect()
}
