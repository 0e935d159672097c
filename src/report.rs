//! `fail2waf report`: a backtest of the rules on history, as one
//! self-contained HTML page (inline CSS and SVG, no scripts, no external
//! assets): who would be blocked, why, and how close others came.
//!
//! A [`Recorder`] sees every counted request with its key and the rules it
//! matched; it keeps detail only for keys with matched requests (bounded:
//! [`MAX_KEYS`] keys, [`MAX_PATHS`] distinct paths per key).

use crate::detect::{list_s3, progress};
use crate::inputs::{expand, Input};
use crate::output::{reason, rfc3339, Summary};
use crate::InputError;
use anyhow::{Context, Result};
use fail2waf_core::config::Config;
use fail2waf_core::hit::Hit;
use fail2waf_core::pipeline::{Decision, Detector, FileReport, Recorder};
use fail2waf_core::route::RouteNamer;
use fail2waf_core::rules::{KeyKind, Rule};
use fail2waf_core::window::window_start;
use ipnet::IpNet;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

/// Most keys (addresses, IPv6 /64s) with matched requests given detail.
pub const MAX_KEYS: usize = 50_000;
/// Most keys whose requests are counted before they match anything.
pub const MAX_QUIET_KEYS: usize = 500_000;
/// Most distinct paths kept per key (the rest are counted as "other").
pub const MAX_PATHS: usize = 200;
/// Longest path or user agent kept, in bytes.
const MAX_TEXT: usize = 300;
/// Near misses shown.
const NEAR_MISSES: usize = 10;
/// Most (minute, route section) pairs with server errors tracked for the
/// site lane's outage bands (the rest are not judged; the page says so).
const MAX_FAILING: usize = 100_000;
/// Most distinct clients remembered per minute and route section.
const SECTION_CLIENTS: usize = 64;
/// Most (minute, section) pairs with server errors kept per client.
const MAX_KEY_SECTIONS: usize = 256;
/// Outage bands drawn (the longest first; the rest are counted).
const MAX_BANDS: usize = 40;

/// Arguments of `fail2waf report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Log files or directories (read recursively), `s3://bucket/prefix`
    /// (every object under it), or `-` for stdin.
    #[arg(required = true)]
    paths: Vec<String>,
    /// The HTML file to write.
    #[arg(long, short)]
    output: PathBuf,
    /// Log format: alb, waf, cloudfront, nginx-combined, apache-combined,
    /// common, or a format defined in the config. Default: detected per file.
    #[arg(long)]
    format: Option<String>,
    /// Rules and settings (TOML). Default: the built-in rules.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Offenders shown in the timeline and the detail (blocked first).
    #[arg(long, default_value_t = 10)]
    top: usize,
}

/// What is known of one key with matched requests.
#[derive(Debug, Clone, Default)]
struct KeyStats {
    /// Matched requests (any rule).
    matched: u64,
    /// All requests.
    requests: u64,
    /// Matched requests per minute (epoch minute).
    per_minute: BTreeMap<i64, u32>,
    /// Per rule: matched requests per bucket (sparse).
    per_rule: Vec<BTreeMap<i64, u32>>,
    /// Status codes of matched requests.
    status: BTreeMap<u16, u64>,
    /// Matched paths (up to [`MAX_PATHS`]) and their counts.
    paths: HashMap<String, u64>,
    /// Matched requests on paths beyond the cap.
    other_paths: u64,
    /// User agent of the first matched request.
    user_agent: String,
    /// (minute, route section) of matched server errors (up to
    /// [`MAX_KEY_SECTIONS`]).
    failed_sections: BTreeSet<(i64, String)>,
    first_ms: i64,
    last_ms: i64,
}

impl KeyStats {
    fn merge(&mut self, o: &KeyStats) {
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
struct SiteMinute {
    requests: u64,
    c4xx: u64,
    c5xx: u64,
}

/// A route section that answered server errors to several clients in a
/// run of consecutive minutes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Outage {
    /// `/api/*`, `/*`, or an operator's route pattern.
    section: String,
    /// First and last minute (epoch minutes, inclusive).
    from: i64,
    to: i64,
    /// Most distinct clients with a 5xx there in one of its minutes
    /// (counted up to [`SECTION_CLIENTS`]).
    clients: usize,
}

/// Everything the recorder collects.
#[derive(Debug, Default)]
struct Data {
    bucket_ms: i64,
    rules: usize,
    keys: HashMap<IpNet, KeyStats>,
    /// Requests of keys without matched requests (yet).
    quiet: HashMap<IpNet, u64>,
    quiet_full: bool,
    /// Matched requests of keys beyond [`MAX_KEYS`] (not detailed).
    dropped_matched: u64,
    /// Counted requests, matched requests.
    requests: u64,
    matched: u64,
    matched_by_rule: Vec<u64>,
    first_ms: Option<i64>,
    last_ms: Option<i64>,
    /// Every counted request per minute (epoch minute), with its 4xx and 5xx.
    site: BTreeMap<i64, SiteMinute>,
    /// Names the route section of a server error.
    namer: RouteNamer,
    /// Per (minute, route section): distinct clients with a 5xx there.
    failing: HashMap<(i64, String), Vec<IpNet>>,
    /// Server errors whose (minute, section) was not tracked ([`MAX_FAILING`]).
    failing_untracked: u64,
}

/// The route section of a path, as outage awareness groups routes: `/api/*`
/// for `/api/cart?x=1`, `/*` for `/login`, or the operator's route pattern
/// that names it.
fn section_of(namer: &RouteNamer, path: &str) -> String {
    let label = namer.label(path.as_bytes());
    RouteNamer::section_label(&label).unwrap_or(label)
}

fn clip(s: &str) -> String {
    if s.len() <= MAX_TEXT {
        return s.to_string();
    }
    let mut end = MAX_TEXT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

impl Data {
    fn record(&mut self, key: IpNet, hit: &Hit<'_>, matched: u64) {
        self.requests += 1;
        let t = hit.time_ms;
        self.first_ms = Some(self.first_ms.map_or(t, |f| f.min(t)));
        self.last_ms = Some(self.last_ms.map_or(t, |l| l.max(t)));
        let minute = t.div_euclid(60_000);
        let site = self.site.entry(minute).or_default();
        site.requests += 1;
        let section = match hit.status {
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
        };
        if matched == 0 {
            if let Some(k) = self.keys.get_mut(&key) {
                k.requests += 1;
            } else if let Some(n) = self.quiet.get_mut(&key) {
                *n += 1;
            } else if self.quiet.len() < MAX_QUIET_KEYS {
                self.quiet.insert(key, 1);
            } else {
                self.quiet_full = true;
            }
            return;
        }
        self.matched += 1;
        for r in 0..self.rules {
            if matched & (1 << r) != 0 {
                self.matched_by_rule[r] += 1;
            }
        }
        if !self.keys.contains_key(&key) {
            if self.keys.len() >= MAX_KEYS {
                self.dropped_matched += 1;
                return;
            }
            let before = self.quiet.remove(&key).unwrap_or(0);
            self.keys.insert(
                key,
                KeyStats {
                    requests: before,
                    per_rule: vec![BTreeMap::new(); self.rules],
                    user_agent: clip(&hit.user_agent),
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
        for (r, buckets) in k.per_rule.iter_mut().enumerate() {
            if matched & (1 << r) != 0 {
                *buckets.entry(b).or_insert(0) += 1;
            }
        }
        *k.status.entry(hit.status).or_insert(0) += 1;
        if let Some(slot) = section {
            if k.failed_sections.len() < MAX_KEY_SECTIONS {
                k.failed_sections.insert(slot);
            }
        }
        let path = hit.path.as_ref();
        if let Some(n) = k.paths.get_mut(path) {
            *n += 1;
        } else if k.paths.len() < MAX_PATHS {
            k.paths.insert(clip(path), 1);
        } else {
            k.other_paths += 1;
        }
    }
}

/// The recorder given to the detector; the data stays reachable through
/// the shared handle.
struct Shared(Arc<Mutex<Data>>);

impl Recorder for Shared {
    fn record(&mut self, key: IpNet, hit: &Hit<'_>, matched: u64) {
        self.0
            .lock()
            .expect("recorder lock")
            .record(key, hit, matched);
    }
}

/// Escape text for HTML element content and quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

pub fn run(args: &ReportArgs) -> Result<ExitCode> {
    let config = match &args.config {
        Some(p) => Config::load(p).map_err(|e| InputError(format!("{}: {e}", p.display())))?,
        None => Config::default(),
    };
    let format = match &args.format {
        Some(name) => Some(
            config
                .format(name)
                .ok_or_else(|| InputError(format!("unknown format `{name}`")))?,
        ),
        None => None,
    };
    let local = expand(&args.paths)?;
    let needs_aws = local.iter().any(|i| matches!(i, Input::S3Prefix(_)));
    let aws = needs_aws.then(crate::detect::Aws::connect).transpose()?;
    let _guard = aws.as_ref().map(|a| a.rt.enter());
    let inputs = list_s3(local, aws.as_ref())?;

    let data = Arc::new(Mutex::new(Data {
        bucket_ms: config.bucket_ms(),
        namer: RouteNamer::new(&config.file.outage.routes),
        rules: config.rules.len(),
        matched_by_rule: vec![0; config.rules.len()],
        ..Data::default()
    }));
    let mut detector = Detector::new(config);
    detector.set_recorder(Box::new(Shared(Arc::clone(&data))));
    let total = inputs
        .iter()
        .map(|i| match i {
            Input::File(_, n) | Input::S3(_, _, n) => *n,
            _ => 0,
        })
        .sum();
    let bar = progress(total, false);
    let mut reports = Vec::new();
    for input in &inputs {
        let name = input.name();
        let reader = crate::detect::open_input(input, &bar, aws.as_ref())?;
        bar.set_message(name.clone());
        reports.push(detector.process(&name, reader, format.as_ref()));
    }
    bar.finish_and_clear();
    drop(detector.take_recorder());
    let data = std::mem::take(&mut *data.lock().expect("recorder lock"));

    let model = Model::build(&args.paths, &detector, reports, data, args.top);
    let html = model.html();
    std::fs::write(&args.output, html)
        .with_context(|| format!("writing {}", args.output.display()))?;
    eprintln!(
        "wrote {}: {} blocks, {} offenders, {} near misses; {} files, {} lines read, {} parsed",
        args.output.display(),
        model.decisions.len(),
        model.offenders.len(),
        model.near.len(),
        model.summary.files,
        model.summary.lines_read,
        model.summary.lines_parsed,
    );
    let mut damaged = false;
    for r in &model.reports {
        if let Some(e) = &r.error {
            eprintln!("error: {}: {e}", r.name);
            damaged = true;
        }
    }
    Ok(if damaged {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// One lane of the timeline: a blocked network or an unblocked key.
struct Offender {
    net: IpNet,
    stats: KeyStats,
    /// Indices into the decisions.
    blocks: Vec<usize>,
}

/// A client that came close to a rule without being blocked.
struct NearMiss {
    rule: usize,
    key: IpNet,
    max: u64,
    threshold: u32,
    /// End of the fullest window (epoch ms).
    at_ms: i64,
    /// For those that reached the count: what held them back, if known.
    why: Option<String>,
}

impl NearMiss {
    fn ratio(&self) -> f64 {
        self.max as f64 / f64::from(self.threshold.max(1))
    }
}

struct RuleRow {
    blocks: u64,
    refused: u64,
    matched: u64,
    clients: u64,
}

struct Model {
    inputs: Vec<String>,
    reports: Vec<FileReport>,
    summary: Summary,
    rules: Vec<Rule>,
    rule_rows: Vec<RuleRow>,
    decisions: Vec<Decision>,
    refused: BTreeMap<String, u64>,
    offenders: Vec<Offender>,
    /// Blocked networks not drawn (beyond `--top`).
    blocked_not_shown: usize,
    near: Vec<NearMiss>,
    /// Count reached, held back by another condition.
    held: Vec<NearMiss>,
    /// Route outages recognised from the server errors, by first minute.
    outages: Vec<Outage>,
    /// `[outage] route_clients`.
    route_clients: u32,
    data: Data,
}

/// The route outages in `failing`: the minutes in which a route section
/// answered server errors to at least `route_clients` distinct clients,
/// consecutive minutes of a section merged into one.
fn outages(failing: &HashMap<(i64, String), Vec<IpNet>>, route_clients: u32) -> Vec<Outage> {
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
    detector: &Detector,
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
            .filter(|(k, _)| n.key.contains(*k))
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
        return (!sections.is_empty()).then(|| {
            format!(
                "outage on {} (site lane; window no longer in the engine)",
                sections.join(", ")
            )
        });
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
    if c.key == KeyKind::Prefix && members < c.min_members {
        return Some(format!(
            "{members} quiet addresses, under {}",
            c.min_members
        ));
    }
    engine
        .outage_hold(n.key, &c.name, end)
        .map(|h| h.to_string())
}

/// The network of `key` for a prefix rule.
fn widen(key: IpNet, rule: &Rule) -> IpNet {
    let len = match key {
        IpNet::V4(_) => rule.config.prefix_v4,
        IpNet::V6(_) => rule.config.prefix_v6,
    };
    IpNet::new(key.addr(), len.min(key.prefix_len())).map_or(key, |n| n.trunc())
}

/// The fullest window of `width` buckets: (count, last bucket).
fn max_window(buckets: &BTreeMap<i64, u32>, width: i64) -> (u64, i64) {
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
    fn build(
        inputs: &[String],
        detector: &Detector,
        reports: Vec<FileReport>,
        data: Data,
        top: usize,
    ) -> Model {
        let mut summary = Summary::default();
        for r in &reports {
            summary.add(r);
        }
        let decisions = detector.decisions().to_vec();
        summary.blocks = decisions.len() as u64;
        let rules = detector.config().rules.clone();
        let blocked = |k: &IpNet| decisions.iter().any(|d| d.net.contains(k));

        // Offenders: blocked networks first, then the busiest other keys.
        let mut nets: Vec<IpNet> = Vec::new();
        for d in &decisions {
            if !nets.contains(&d.net) {
                nets.push(d.net);
            }
        }
        let mut offenders: Vec<Offender> = nets
            .iter()
            .map(|net| {
                let mut stats = KeyStats::default();
                if let Some(s) = data.keys.get(net) {
                    stats.merge(s);
                } else {
                    for (k, s) in &data.keys {
                        if net.contains(k) {
                            stats.merge(s);
                        }
                    }
                }
                if stats.matched == 0 {
                    // A blocked network whose requests were not detailed.
                    stats.requests = data.quiet.get(net).copied().unwrap_or(0);
                }
                let blocks = (0..decisions.len())
                    .filter(|&i| decisions[i].net == *net)
                    .collect();
                Offender {
                    net: *net,
                    stats,
                    blocks,
                }
            })
            .collect();
        offenders.sort_by_key(|o| std::cmp::Reverse(o.stats.matched));
        let blocked_not_shown = offenders.len().saturating_sub(top);
        offenders.truncate(top);
        if offenders.len() < top {
            let mut others: Vec<(&IpNet, &KeyStats)> =
                data.keys.iter().filter(|(k, _)| !blocked(k)).collect();
            others.sort_by(|a, b| b.1.matched.cmp(&a.1.matched).then(a.0.cmp(b.0)));
            for (k, s) in others.into_iter().take(top - offenders.len()) {
                offenders.push(Offender {
                    net: *k,
                    stats: s.clone(),
                    blocks: Vec::new(),
                });
            }
        }

        // Near misses: the count condition only, for keys never blocked.
        let mut near = Vec::new();
        for (r, rule) in rules.iter().enumerate() {
            let width = i64::from(rule.window_buckets);
            let mut candidates: HashMap<IpNet, BTreeMap<i64, u32>> = HashMap::new();
            for (k, s) in &data.keys {
                let Some(buckets) = s.per_rule.get(r).filter(|b| !b.is_empty()) else {
                    continue;
                };
                if blocked(k) {
                    continue;
                }
                match rule.config.key {
                    KeyKind::Ip => {
                        candidates.insert(*k, buckets.clone());
                    }
                    KeyKind::Prefix => {
                        let net = candidates.entry(widen(*k, rule)).or_default();
                        for (b, c) in buckets {
                            *net.entry(*b).or_insert(0) += c;
                        }
                    }
                }
            }
            for (key, buckets) in candidates {
                if decisions
                    .iter()
                    .any(|d| d.net == key && d.block.rule == rule.config.name)
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
        let route_clients = detector.config().file.outage.route_clients;
        let outages = outages(&data.failing, route_clients);
        for n in &mut held {
            n.why = held_why(detector, &rules[n.rule], n, &data, &outages);
        }

        let rule_rows = rules
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
            .collect();
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

    fn html(&self) -> String {
        let mut h = String::with_capacity(64 * 1024);
        h.push_str(HEAD);
        self.header(&mut h);
        self.chart(&mut h);
        self.rules_table(&mut h);
        self.decisions_table(&mut h);
        self.near_misses(&mut h);
        self.offender_detail(&mut h);
        self.files(&mut h);
        h.push_str("</main>\n</body>\n</html>\n");
        h
    }

    fn header(&self, h: &mut String) {
        let s = &self.summary;
        let span = match (self.data.first_ms, self.data.last_ms) {
            (Some(a), Some(b)) => format!(
                "{} → {} ({})",
                rfc3339(a),
                rfc3339(b),
                human_span((b - a) / 1000)
            ),
            _ => "no counted requests".into(),
        };
        let _ = write!(
            h,
            "<header><h1>fail2waf backtest</h1>\
             <p class=\"lead\"><b>{blocks}</b> block{bs} of <b>{nets}</b> network{ns} \
             would have been decided; <b>{matched}</b> of {requests} counted requests matched a rule.</p>\
             <dl class=\"facts\">\
             <dt>inputs</dt><dd>{inputs}</dd>\
             <dt>files</dt><dd>{files} ({fskip} skipped, {fdmg} damaged)</dd>\
             <dt>lines</dt><dd>{read} read: {parsed} parsed, {skipped} skipped</dd>\
             <dt>time span</dt><dd>{span}</dd>\
             <dt>rules</dt><dd>{rules}</dd>",
            blocks = self.decisions.len(),
            bs = plural(self.decisions.len()),
            nets = self.blocked_nets(),
            ns = plural(self.blocked_nets()),
            matched = self.data.matched,
            requests = self.data.requests,
            inputs = self
                .inputs
                .iter()
                .map(|i| format!("<code>{}</code>", esc(i)))
                .collect::<Vec<_>>()
                .join(" "),
            files = s.files,
            fskip = s.files_skipped,
            fdmg = s.files_damaged,
            read = s.lines_read,
            parsed = s.lines_parsed,
            skipped = s.lines_skipped,
            rules = self
                .rules
                .iter()
                .map(|r| format!(
                    "<code>{}</code> {} in {}",
                    esc(&r.config.name),
                    r.config.threshold,
                    r.config.window
                ))
                .collect::<Vec<_>>()
                .join(", "),
        );
        if !s.skip_reasons.is_empty() {
            let reasons: Vec<String> = s
                .skip_reasons
                .iter()
                .map(|(k, v)| format!("{v} × {}", esc(k)))
                .collect();
            let _ = write!(h, "<dt>skipped lines</dt><dd>{}</dd>", reasons.join("; "));
        }
        if !self.refused.is_empty() {
            let r: Vec<String> = self
                .refused
                .iter()
                .map(|(k, v)| format!("{v} {}", esc(k)))
                .collect();
            let _ = write!(h, "<dt>offenses refused</dt><dd>{}</dd>", r.join("; "));
        }
        h.push_str("</dl>");
        if self.data.dropped_matched > 0 || self.data.quiet_full {
            let _ = write!(
                h,
                "<p class=\"warn\">Detail is kept for the first {MAX_KEYS} clients with matched \
                 requests: {} matched requests of later clients are counted in the totals but \
                 not shown per client.{}</p>",
                self.data.dropped_matched,
                if self.data.quiet_full {
                    format!(
                        " Request totals are exact only for the first {MAX_QUIET_KEYS} clients."
                    )
                } else {
                    String::new()
                }
            );
        }
        h.push_str("</header>\n<main>\n");
    }

    fn blocked_nets(&self) -> usize {
        let mut nets: Vec<IpNet> = self.decisions.iter().map(|d| d.net).collect();
        nets.sort();
        nets.dedup();
        nets.len()
    }

    fn chart(&self, h: &mut String) {
        h.push_str("<section id=\"timeline\"><h2>Timeline</h2>");
        let (Some(first), Some(last)) = (self.data.first_ms, self.data.last_ms) else {
            h.push_str("<p>No counted requests.</p></section>\n");
            return;
        };
        let _ = write!(
            h,
            "<p class=\"note\">The top lane is the whole site: every counted request per minute, \
             its 4xx and 5xx at the bottom, with the route outages recognised shaded: minutes in \
             which a route section (<code>/api/*</code>; <code>/*</code> for one-segment paths) \
             answered server errors to at least {rc} distinct clients \
             (<code>[outage] route_clients</code>).{untracked}</p>",
            rc = self.route_clients,
            untracked = if self.data.failing_untracked > 0 {
                format!(
                    " {} server errors came after {MAX_FAILING} (minute, section) pairs were \
                     tracked and were not judged for outages.",
                    self.data.failing_untracked
                )
            } else {
                String::new()
            }
        );
        if self.offenders.is_empty() {
            h.push_str("<p class=\"note\">No client had a matched request.</p>");
        } else {
            let _ = write!(
            h,
            "<p class=\"note\">Under it, matched requests per minute (any rule) of the top {} offenders, \
             blocked networks first; each lane has its own scale (peak on the right). \
             Shaded: the block, from the event time it was decided to its expiry (clipped to the \
             data).{}</p>",
            self.offenders.len(),
            if self.blocked_not_shown > 0 {
                format!(
                    " {} more blocked networks are not drawn (raise <code>--top</code>); \
                     all are in the decisions table.",
                    self.blocked_not_shown
                )
            } else {
                String::new()
            }
        );
        }
        let t0 = first.div_euclid(60_000) * 60_000;
        let t1 = (last.div_euclid(60_000) + 1) * 60_000;
        let (left, right, width) = (200.0, 70.0, 1240.0);
        let (site_top, site_h, lane_h) = (34.0, 96.0, 44.0);
        // The offenders' lanes start under the site lane.
        let top = site_top + site_h + 12.0;
        let plot_w = width - left - right;
        let height = top + lane_h * self.offenders.len() as f64 + 8.0;
        let x = |ms: i64| left + (ms - t0) as f64 / (t1 - t0) as f64 * plot_w;
        let minute_w = (plot_w * 60_000.0 / (t1 - t0) as f64).max(1.0);
        let _ = write!(
            h,
            "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {width} {height}\" \
             width=\"{width}\" height=\"{height}\" role=\"img\" aria-label=\"matched requests per minute\" \
             data-start=\"{}\" data-end=\"{}\">",
            rfc3339(t0),
            rfc3339(t1)
        );
        // Axis with ticks.
        let step = tick_step(t1 - t0);
        let mut t = (t0 + step - 1).div_euclid(step) * step;
        let mut last_day = i64::MIN;
        while t <= t1 {
            let day = t.div_euclid(86_400_000);
            let dt = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(t).unwrap_or_default();
            let label = if day != last_day {
                last_day = day;
                dt.format("%b %d %H:%M").to_string()
            } else {
                dt.format("%H:%M").to_string()
            };
            let _ = write!(
                h,
                "<line class=\"grid\" x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{1}\" y2=\"{2}\"/>\
                 <text class=\"tick\" x=\"{0:.1}\" y=\"{3}\">{4}</text>",
                x(t),
                site_top - 6.0,
                height - 8.0,
                site_top - 12.0,
                label
            );
            t += step;
        }
        let _ = write!(
            h,
            "<text class=\"axis\" x=\"{}\" y=\"{}\">time (UTC)</text>",
            12.0,
            site_top - 12.0
        );
        self.site_lane(h, &x, (left, site_top, plot_w, site_h), (t0, t1, minute_w));
        for (i, o) in self.offenders.iter().enumerate() {
            let y0 = top + lane_h * i as f64;
            let key = o.net.to_string();
            let _ = write!(
                h,
                "<g class=\"lane{}\" data-key=\"{key}\" data-matched=\"{}\">\
                 <rect class=\"lanebg\" x=\"{left}\" y=\"{y0}\" width=\"{plot_w}\" height=\"{lane_h}\"/>",
                if o.blocks.is_empty() { "" } else { " blocked" },
                o.stats.matched
            );
            for &bi in &o.blocks {
                let d = &self.decisions[bi];
                let (s, u) = (d.block.since_ms.max(t0), d.block.until_ms.min(t1));
                if u < s {
                    continue;
                }
                let _ = write!(
                    h,
                    "<rect class=\"band\" data-key=\"{key}\" data-rule=\"{rule}\" data-since=\"{since}\" \
                     data-until=\"{until}\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{hh:.1}\">\
                     <title>{key} blocked by {rule} {since} → {until}</title></rect>\
                     <text class=\"bandlabel\" x=\"{tx:.1}\" y=\"{ty:.1}\">{rule}</text>",
                    rule = esc(&d.block.rule),
                    since = rfc3339(d.block.since_ms),
                    until = rfc3339(d.block.until_ms),
                    x = x(s),
                    y = y0 + 2.0,
                    w = (x(u) - x(s)).max(1.5),
                    hh = lane_h - 4.0,
                    tx = x(s) + 3.0,
                    ty = y0 + 12.0,
                );
            }
            let first_block = o
                .blocks
                .iter()
                .map(|&i| self.decisions[i].block.since_ms)
                .min()
                .unwrap_or(i64::MAX);
            let peak = o.stats.per_minute.values().copied().max().unwrap_or(0);
            let scale = (lane_h - 16.0) / f64::from(peak.max(1));
            for (m, c) in &o.stats.per_minute {
                let ms = m * 60_000;
                let bh = (f64::from(*c) * scale).max(1.0);
                let _ = write!(
                    h,
                    "<rect class=\"bar{late}\" data-key=\"{key}\" data-minute=\"{t}\" data-count=\"{c}\" \
                     x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{bh:.1}\">\
                     <title>{key} {t}: {c} matched</title></rect>",
                    t = rfc3339(ms),
                    late = if ms + 60_000 > first_block { " late" } else { "" },
                    x = x(ms),
                    y = y0 + lane_h - 2.0 - bh,
                    w = (minute_w - 0.5).max(1.0),
                );
            }
            let _ = write!(
                h,
                "<text class=\"key\" x=\"{kx}\" y=\"{ky:.1}\">{key}</text>\
                 <text class=\"sub\" x=\"{kx}\" y=\"{sy:.1}\">{matched} matched / {req} req</text>\
                 <text class=\"peak\" x=\"{px}\" y=\"{py:.1}\">{peak}/min</text></g>",
                kx = left - 8.0,
                ky = y0 + lane_h / 2.0,
                sy = y0 + lane_h / 2.0 + 13.0,
                matched = o.stats.matched,
                req = o.stats.requests,
                px = width - right + 6.0,
                py = y0 + 16.0,
            );
        }
        h.push_str(
            "</svg><p class=\"legend\"><i style=\"background:#2f6fb0\"></i>matched requests before the block\
             <i style=\"background:#a8322a\"></i>after it was decided (WAF would have stopped these)\
             <i style=\"background:rgba(192,57,43,.18);border:1px solid rgba(192,57,43,.6)\"></i>block, \
             labelled with its rule</p><p class=\"legend\">site lane:\
             <i style=\"background:#c3cbd8\"></i>requests\
             <i style=\"background:#e9a23b\"></i>4xx\
             <i style=\"background:#c0392b\"></i>5xx\
             <i style=\"background:rgba(125,60,152,.16);border:1px solid rgba(125,60,152,.6)\"></i>route \
             outage, labelled with its section</p></section>\n",
        );
    }

    /// The whole site's lane: requests, 4xx and 5xx per minute as stacked
    /// bars (5xx at the bottom), under the route outages recognised.
    fn site_lane(
        &self,
        h: &mut String,
        x: &dyn Fn(i64) -> f64,
        (left, y0, plot_w, lane_h): (f64, f64, f64, f64),
        (t0, t1, minute_w): (i64, i64, f64),
    ) {
        let site = &self.data.site;
        let (requests, c4xx, c5xx) = site.values().fold((0, 0, 0), |(r, a, b), m| {
            (r + m.requests, a + m.c4xx, b + m.c5xx)
        });
        let _ = write!(
            h,
            "<g class=\"sitelane\" data-requests=\"{requests}\" data-4xx=\"{c4xx}\" data-5xx=\"{c5xx}\" \
             data-outages=\"{}\"><rect class=\"lanebg\" x=\"{left}\" y=\"{y0}\" width=\"{plot_w}\" \
             height=\"{lane_h}\"/>",
            self.outages.len()
        );
        // The longest outages are drawn when there are too many.
        let mut drawn: Vec<&Outage> = self.outages.iter().collect();
        drawn.sort_by_key(|o| (std::cmp::Reverse(o.to - o.from), o.from));
        drawn.truncate(MAX_BANDS);
        drawn.sort_by_key(|o| o.from);
        for o in &drawn {
            let (from, until) = (o.from * 60_000, (o.to + 1) * 60_000);
            let (s, u) = (from.max(t0), until.min(t1));
            let _ = write!(
                h,
                "<rect class=\"outage\" data-section=\"{sec}\" data-from=\"{f}\" data-until=\"{u}\" \
                 data-minutes=\"{n}\" data-clients=\"{c}\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" \
                 height=\"{hh:.1}\"><title>outage on {sec}: {f} → {u}, server errors for up to {c} \
                 clients a minute</title></rect>",
                sec = esc(&o.section),
                f = rfc3339(from),
                u = rfc3339(until),
                n = o.to - o.from + 1,
                c = o.clients,
                x = x(s),
                y = y0 + 1.0,
                w = (x(u) - x(s)).max(1.5),
                hh = lane_h - 2.0,
            );
        }
        let peak = site.values().map(|m| m.requests).max().unwrap_or(0);
        let scale = (lane_h - 18.0) / peak.max(1) as f64;
        let base = y0 + lane_h - 2.0;
        for (m, c) in site {
            let ms = m * 60_000;
            let height = |n: u64| {
                if n == 0 {
                    0.0
                } else {
                    (n as f64 * scale).max(1.0)
                }
            };
            let (h5, h4) = (height(c.c5xx), height(c.c4xx));
            let hr = (c.requests as f64 * scale).max(h5 + h4).max(1.0);
            let _ = write!(
                h,
                "<g class=\"minute\" data-minute=\"{t}\" data-requests=\"{r}\" data-4xx=\"{a}\" \
                 data-5xx=\"{b}\"><title>{t}: {r} requests, {a} 4xx, {b} 5xx</title>\
                 <rect class=\"req\" x=\"{x:.1}\" y=\"{yr:.1}\" width=\"{w:.1}\" height=\"{hr:.1}\"/>",
                t = rfc3339(ms),
                r = c.requests,
                a = c.c4xx,
                b = c.c5xx,
                x = x(ms),
                yr = base - hr,
                w = (minute_w - 0.5).max(1.0),
            );
            for (class, y, hh) in [("c4", base - h5 - h4, h4), ("c5", base - h5, h5)] {
                if hh > 0.0 {
                    let _ = write!(
                        h,
                        "<rect class=\"{class}\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{hh:.1}\"/>",
                        x = x(ms),
                        w = (minute_w - 0.5).max(1.0),
                    );
                }
            }
            h.push_str("</g>");
        }
        // Labels over the bars, staggered so neighbours stay readable.
        for (i, o) in drawn.iter().enumerate() {
            let _ = write!(
                h,
                "<text class=\"outagelabel\" x=\"{:.1}\" y=\"{:.1}\">outage on {}</text>",
                x((o.from * 60_000).max(t0)) + 3.0,
                y0 + 12.0 + 11.0 * (i % 3) as f64,
                esc(&o.section)
            );
        }
        let more = self.outages.len() - drawn.len();
        let _ = write!(
            h,
            "<text class=\"key\" x=\"{kx}\" y=\"{ky:.1}\">whole site</text>\
             <text class=\"sub\" x=\"{kx}\" y=\"{sy:.1}\">{requests} req, {c4xx} 4xx, {c5xx} 5xx</text>\
             <text class=\"sub\" x=\"{kx}\" y=\"{oy:.1}\">{outages}</text>\
             <text class=\"peak\" x=\"{px}\" y=\"{py:.1}\">{peak}/min</text></g>",
            kx = left - 8.0,
            ky = y0 + lane_h / 2.0 - 6.0,
            sy = y0 + lane_h / 2.0 + 7.0,
            oy = y0 + lane_h / 2.0 + 20.0,
            outages = match (self.outages.len(), more) {
                (0, _) => "no route outage".to_string(),
                (n, 0) => format!("{n} route outage{}", plural(n)),
                (n, m) => format!("{n} route outages ({m} not drawn)"),
            },
            px = left + plot_w + 6.0,
            py = y0 + 16.0,
        );
    }

    fn rules_table(&self, h: &mut String) {
        h.push_str(
            "<section id=\"rules\"><h2>Rules</h2><table><thead><tr><th>rule</th><th>per</th>\
             <th>window</th><th>threshold and conditions</th><th class=\"n\">matched requests</th>\
             <th class=\"n\">clients matched</th><th class=\"n\">offenses</th><th class=\"n\">blocks</th>\
             <th class=\"n\">refused</th><th>closest unblocked</th></tr></thead><tbody>",
        );
        for (r, (rule, row)) in self.rules.iter().zip(&self.rule_rows).enumerate() {
            let c = &rule.config;
            let mut cond = vec![format!("{}", c.threshold)];
            if c.distinct_paths > 0 {
                cond.push(format!("≥ {} distinct paths", c.distinct_paths));
            }
            if let Some(m) = c.min_ratio {
                cond.push(format!("≥ {:.0} %", m * 100.0));
            }
            if c.min_requests > 0 {
                cond.push(format!("≥ {} requests", c.min_requests));
            }
            if c.min_members > 1 {
                cond.push(format!("≥ {} addresses", c.min_members));
            }
            if rule.outage_aware {
                cond.push("outage-aware".into());
            }
            let per = match c.key {
                KeyKind::Ip => "address".to_string(),
                KeyKind::Prefix => format!("/{}, /{}", c.prefix_v4, c.prefix_v6),
            };
            let closest = self
                .near
                .iter()
                .find(|n| n.rule == r)
                .map(|n| format!("<code>{}</code> {}/{}", n.key, n.max, n.threshold))
                .unwrap_or_default();
            let _ = write!(
                h,
                "<tr{cls}><td><code>{name}</code>{desc}</td><td>{per}</td><td>{win}</td><td>{cond}</td>\
                 <td class=\"n\">{m}</td><td class=\"n\">{cl}</td><td class=\"n\">{off}</td>\
                 <td class=\"n\"><b>{b}</b></td><td class=\"n\">{rf}</td><td>{closest}</td></tr>",
                cls = if row.blocks > 0 { " class=\"hit\"" } else { "" },
                name = esc(&c.name),
                desc = c
                    .description
                    .as_deref()
                    .map(|d| format!("<div class=\"desc\">{}</div>", esc(d)))
                    .unwrap_or_default(),
                win = c.window,
                cond = cond.join(", "),
                m = row.matched,
                cl = row.clients,
                off = row.blocks + row.refused,
                b = row.blocks,
                rf = row.refused,
            );
        }
        h.push_str(
            "</tbody></table><p class=\"note\">Offenses = blocks + refused (already blocked by an \
             earlier block, allow-listed, a trusted proxy, or too wide). “Clients matched” counts \
             addresses (IPv6 /64s).</p></section>\n",
        );
    }

    fn decisions_table(&self, h: &mut String) {
        h.push_str("<section id=\"decisions\"><h2>Decisions</h2>");
        if self.decisions.is_empty() {
            h.push_str("<p>No blocks would have been decided.</p></section>\n");
            return;
        }
        h.push_str(
            "<table class=\"decisions\"><colgroup><col style=\"width:150px\"><col style=\"width:95px\">\
             <col style=\"width:168px\"><col style=\"width:168px\"><col style=\"width:62px\">\
             <col style=\"width:110px\"><col style=\"width:68px\"><col style=\"width:240px\"><col></colgroup><thead><tr><th>ip</th><th>rule</th><th>first blocked</th>\
             <th>expires</th><th class=\"n\">offense</th><th class=\"n\">matched / requests</th>\
             <th class=\"n\">distinct paths</th><th>samples</th><th>reason</th></tr></thead><tbody>",
        );
        for d in &self.decisions {
            let b = &d.block;
            let (mr, dp, samples) = match &b.evidence {
                Some(e) => (
                    format!("{} / {} in {}", e.matched, e.requests, e.window),
                    e.distinct_paths.to_string(),
                    e.samples
                        .iter()
                        .map(|s| format!("<code>{}</code>", esc(s)))
                        .collect::<Vec<_>>()
                        .join("<br>"),
                ),
                None => (String::new(), String::new(), String::new()),
            };
            let _ = write!(
                h,
                "<tr data-key=\"{net}\"><td class=\"ip\"><code>{net}</code></td><td class=\"rule\"><code>{rule}</code></td>\
                 <td class=\"t\">{since}</td><td class=\"t\">{until}</td><td class=\"n\">{off}</td>\
                 <td class=\"n\">{mr}</td><td class=\"n\">{dp}</td><td class=\"samples\">{samples}</td>\
                 <td>{reason}</td></tr>",
                net = d.net,
                rule = esc(&b.rule),
                since = rfc3339(b.since_ms),
                until = rfc3339(b.until_ms),
                off = b.offense,
                reason = esc(&reason(b)),
            );
        }
        h.push_str("</tbody></table></section>\n");
    }

    fn near_misses(&self, h: &mut String) {
        h.push_str(
            "<section id=\"near\"><h2>Near misses</h2><p class=\"note\">Clients (networks, for \
             prefix rules) never blocked, by their fullest window of matched requests for each \
             rule (the rule's window slid over the 10 s buckets), as a share of the threshold. \
             <b>Only the count condition</b> is compared; for prefix rules every matched request \
             of the network's unblocked members counts, quiet or not.</p>",
        );
        if self.near.is_empty() {
            h.push_str("<p>No unblocked client came under a threshold.</p>");
        } else {
            h.push_str("<h3>Closest under a threshold</h3>");
            self.near_table(h, &self.near, "near");
        }
        if !self.held.is_empty() {
            h.push_str(
                "<h3>Reached the count, held back by another condition</h3><p class=\"note\">\
                 The ratio, distinct paths, members or outage awareness kept these out: \
                 NATs, crawlers, monitors and the victims of an outage should be here, attackers \
                 should not. <i>Held back by</i> is the first condition the fullest window fails, \
                 from the detector's state at the end of the input; for windows older than the \
                 longest rule window before the end that state is gone, and only an outage the \
                 site lane recognised (where the client got server errors) is named.</p>",
            );
            self.near_table(h, &self.held, "held");
        }
        h.push_str("</section>\n");
    }

    fn near_table(&self, h: &mut String, rows: &[NearMiss], class: &str) {
        h.push_str(
            "<table class=\"near\"><thead><tr><th>client</th><th>rule</th><th class=\"n\">max / threshold</th>\
             <th class=\"meterbar\"></th><th>window ending</th>",
        );
        let held = class == "held";
        if held {
            h.push_str("<th>held back by</th>");
        }
        h.push_str("<th>user agent</th></tr></thead><tbody>");
        for n in rows {
            let pct = n.ratio() * 100.0;
            let rule = &self.rules[n.rule].config;
            let ua = self
                .data
                .keys
                .get(&n.key)
                .map(|k| esc(&k.user_agent))
                .unwrap_or_default();
            let why = n.why.as_deref().map(esc);
            let _ = write!(
                h,
                "<tr class=\"{class}\" data-key=\"{key}\" data-rule=\"{r}\" data-max=\"{max}\" \
                 data-threshold=\"{th}\"{why_attr}><td><code>{key}</code></td><td><code>{r}</code> ({win})</td>\
                 <td class=\"n\">{max}/{th} ({pct:.0} %)</td><td class=\"meterbar\"><span class=\"meter{over}\" \
                 style=\"width:{w:.0}%\"></span></td><td class=\"t\">{at}</td>{why_cell}<td class=\"ua\">{ua}</td></tr>",
                why_attr = why
                    .as_deref()
                    .map(|w| format!(" data-held=\"{w}\""))
                    .unwrap_or_default(),
                why_cell = match (&why, held) {
                    (Some(w), _) => format!("<td class=\"why\">held back: {w}</td>"),
                    (None, true) => "<td class=\"why\">-</td>".to_string(),
                    (None, false) => String::new(),
                },
                key = n.key,
                r = esc(&rule.name),
                win = rule.window,
                max = n.max,
                th = n.threshold,
                over = if pct >= 100.0 { " over" } else { "" },
                w = pct.min(100.0),
                at = rfc3339(n.at_ms),
            );
        }
        h.push_str("</tbody></table>");
    }

    fn offender_detail(&self, h: &mut String) {
        h.push_str("<section id=\"offenders\"><h2>Offenders</h2><div class=\"cards\">");
        for o in &self.offenders {
            let s = &o.stats;
            let mut paths: Vec<(&String, &u64)> = s.paths.iter().collect();
            paths.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            let status: Vec<String> = s
                .status
                .iter()
                .map(|(c, n)| format!("<span class=\"st s{}\">{c}</span>×{n}", c / 100))
                .collect();
            let _ = write!(
                h,
                "<div class=\"card{}\" data-key=\"{}\"><h3><code>{}</code> {}</h3>\
                 <p class=\"sub\">{} matched of {} requests; {} → {}</p>\
                 <p><b>status</b> {}</p><p><b>user agent</b> <code>{}</code></p>\
                 <table class=\"paths\"><tbody>",
                if o.blocks.is_empty() { "" } else { " blocked" },
                o.net,
                o.net,
                if o.blocks.is_empty() {
                    "<span class=\"tag\">not blocked</span>".to_string()
                } else {
                    o.blocks
                        .iter()
                        .map(|&i| {
                            format!(
                                "<span class=\"tag red\">{}</span>",
                                esc(&self.decisions[i].block.rule)
                            )
                        })
                        .collect::<Vec<_>>()
                        .join(" ")
                },
                s.matched,
                s.requests,
                if s.matched > 0 {
                    rfc3339(s.first_ms)
                } else {
                    "-".into()
                },
                if s.matched > 0 {
                    rfc3339(s.last_ms)
                } else {
                    "-".into()
                },
                status.join(" "),
                esc(&s.user_agent),
            );
            for (p, n) in paths.iter().take(5) {
                let _ = write!(
                    h,
                    "<tr><td class=\"n\">{n}</td><td><code>{}</code></td></tr>",
                    esc(p)
                );
            }
            let more = paths.len().saturating_sub(5);
            if more > 0 || s.other_paths > 0 {
                let _ = write!(
                    h,
                    "<tr><td></td><td class=\"sub\">{more}{} more paths</td></tr>",
                    if s.other_paths > 0 { "+" } else { "" }
                );
            }
            h.push_str("</tbody></table>");
            for &i in &o.blocks {
                let b = &self.decisions[i].block;
                let _ = write!(
                    h,
                    "<p class=\"evidence\"><b>{}</b> {}</p>",
                    esc(&b.rule),
                    esc(&reason(b))
                );
            }
            h.push_str("</div>");
        }
        h.push_str("</div><p class=\"note\">Paths, status codes and user agent are those of matched requests; \
             a network's figures sum its members'.</p></section>\n");
    }

    fn files(&self, h: &mut String) {
        h.push_str(
            "<section id=\"files\"><details><summary>Files</summary><table><thead><tr><th>file</th>\
             <th>format</th><th class=\"n\">read</th><th class=\"n\">parsed</th>\
             <th class=\"n\">skipped</th><th>note</th></tr></thead><tbody>",
        );
        for r in &self.reports {
            let note = r
                .error
                .as_deref()
                .map(|e| format!("<span class=\"warn\">{}</span>", esc(e)))
                .or_else(|| r.skipped.as_deref().map(esc))
                .unwrap_or_default();
            let _ = write!(
                h,
                "<tr><td><code>{}</code></td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
                 <td class=\"n\">{}</td><td>{note}</td></tr>",
                esc(&r.name),
                esc(r.format.as_deref().unwrap_or("-")),
                r.lines_read,
                r.lines_parsed,
                r.lines_skipped,
            );
        }
        h.push_str("</tbody></table></details></section>\n");
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn human_span(secs: i64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h) {
        (0, 0) => format!("{m} min {s} s"),
        (0, _) => format!("{h} h {m} min"),
        _ => format!("{d} d {h} h"),
    }
}

/// A tick interval giving at most about 12 ticks over `span_ms`.
fn tick_step(span_ms: i64) -> i64 {
    const MIN: i64 = 60_000;
    [
        1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080,
    ]
    .iter()
    .map(|m| m * MIN)
    .find(|s| span_ms / s <= 12)
    .unwrap_or(30 * 1440 * MIN)
}

const HEAD: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>fail2waf backtest</title>
<style>
:root { --fg:#1d2330; --mute:#667085; --line:#e3e6ec; --bg:#f6f7f9; --red:#c0392b; --bar:#2f6fb0; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color:var(--fg); background:var(--bg); }
header, main { max-width:1280px; margin:0 auto; padding:0 20px; }
header { padding-top:18px; }
h1 { font-size:22px; margin:0 0 4px; }
h2 { font-size:17px; margin:26px 0 8px; border-bottom:1px solid var(--line); padding-bottom:4px; }
h3 { font-size:14px; margin:0 0 4px; }
code { font:12.5px/1.3 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; word-break:break-all; }
.lead { font-size:15px; margin:4px 0 10px; }
dl.facts { display:grid; grid-template-columns:max-content 1fr; gap:2px 14px; margin:0; background:#fff; border:1px solid var(--line); border-radius:6px; padding:10px 14px; }
dl.facts dt { color:var(--mute); }
dl.facts dd { margin:0; }
.note { color:var(--mute); font-size:12.5px; margin:4px 0 8px; }
.warn { color:var(--red); }
section { margin-bottom:10px; }
table { border-collapse:collapse; width:100%; background:#fff; border:1px solid var(--line); font-size:13px; }
th, td { text-align:left; padding:4px 8px; border-bottom:1px solid var(--line); vertical-align:top; }
th { background:#eef0f4; font-weight:600; white-space:nowrap; }
td.n, th.n { text-align:right; white-space:nowrap; }
td.t { white-space:nowrap; font-variant-numeric:tabular-nums; }
tr.hit td:first-child { border-left:3px solid var(--red); }
.desc { color:var(--mute); font-size:12px; max-width:300px; }
td.samples code { font-size:11.5px; }
td.ip code, td.rule code { white-space:nowrap; word-break:normal; }
td.ua { font-size:12px; color:var(--mute); max-width:420px; }
.legend { font-size:12.5px; color:var(--mute); margin:6px 0 0; }
.legend i { display:inline-block; width:12px; height:10px; margin:0 4px 0 12px; vertical-align:-1px; }
table.decisions { table-layout:fixed; }
table.decisions td:last-child { font-size:12.5px; }
table.decisions th { white-space:normal; }
#rules td:first-child { min-width:250px; }
#rules th { white-space:normal; }
table.decisions td { overflow-wrap:anywhere; }
td.meterbar { width:180px; }
.meter { display:inline-block; height:10px; background:#e9a23b; border-radius:2px; }
.meter.over { background:var(--red); }
svg.chart { display:block; background:#fff; border:1px solid var(--line); border-radius:6px; max-width:100%; height:auto; }
svg .lanebg { fill:#fff; stroke:var(--line); stroke-width:0.5; }
svg .blocked .lanebg { fill:#fffafa; }
svg .grid { stroke:#d9dde5; stroke-width:0.7; stroke-dasharray:2 3; }
svg .tick, svg .axis { font-size:11px; fill:var(--mute); text-anchor:middle; }
svg .axis { text-anchor:start; font-weight:600; }
svg .band { fill:var(--red); fill-opacity:0.13; stroke:var(--red); stroke-opacity:0.5; stroke-width:0.8; }
svg .bandlabel { font-size:10px; fill:var(--red); font-weight:600; }
svg .bar { fill:var(--bar); }
svg .req { fill:#c3cbd8; } svg .c4 { fill:#e9a23b; } svg .c5 { fill:var(--red); }
svg .outage { fill:#7d3c98; fill-opacity:0.16; stroke:#7d3c98; stroke-opacity:0.55; stroke-width:0.8; }
svg .outagelabel { font-size:10px; fill:#6c3483; font-weight:600; }
td.why { font-size:12.5px; }
svg .bar.late { fill:#a8322a; }
svg .key { font:12px ui-monospace, Menlo, Consolas, monospace; text-anchor:end; fill:var(--fg); }
svg .sub { font-size:10.5px; text-anchor:end; fill:var(--mute); }
svg .peak { font-size:10.5px; fill:var(--mute); }
.cards { display:grid; grid-template-columns:repeat(auto-fill, minmax(400px, 1fr)); gap:10px; }
.card { background:#fff; border:1px solid var(--line); border-radius:6px; padding:10px 12px; }
.card.blocked { border-left:4px solid var(--red); }
.card p { margin:3px 0; }
.card .sub { color:var(--mute); font-size:12.5px; }
.card table.paths { border:none; margin:4px 0; }
.card table.paths td { border:none; padding:1px 6px; }
.tag { font-size:11px; padding:1px 6px; border-radius:9px; background:#e6e9ef; color:var(--mute); font-weight:normal; }
.tag.red { background:#fbe3e0; color:var(--red); font-weight:600; }
.st { font:12px ui-monospace, Menlo, Consolas, monospace; padding:0 3px; border-radius:3px; background:#eef0f4; }
.st.s4 { background:#fdf0d5; } .st.s5 { background:#fbe3e0; } .st.s2 { background:#e3f4e6; }
.evidence { font-size:12.5px; border-top:1px dashed var(--line); padding-top:4px; }
details summary { cursor:pointer; font-weight:600; margin:20px 0 8px; }
</style>
</head>
<body>
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_makes_markup_inert() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        assert_eq!(esc("a\u{1b}b"), "a\\u{1b}b");
        assert_eq!(esc("/café"), "/café");
    }

    #[test]
    fn fullest_window_slides_over_sparse_buckets() {
        let b: BTreeMap<i64, u32> = [(0, 5), (1, 5), (6, 10), (7, 3), (20, 1)].into();
        assert_eq!(max_window(&b, 6), (15, 6)); // buckets 1..=6
        assert_eq!(max_window(&b, 8), (23, 7)); // buckets 0..=7
        assert_eq!(max_window(&b, 1), (10, 6));
    }

    #[test]
    fn outages_merge_consecutive_minutes_of_a_section() {
        let ip = |i: u8| IpNet::from(std::net::IpAddr::from([192, 0, 2, i]));
        let clients = |n: u8| (1..=n).map(ip).collect::<Vec<_>>();
        let failing: HashMap<(i64, String), Vec<IpNet>> = [
            ((10, "/api/*"), clients(3)),
            ((11, "/api/*"), clients(5)),
            ((12, "/api/*"), clients(2)), // too few: ends the band
            ((13, "/api/*"), clients(4)),
            ((11, "/*"), clients(3)),
            ((20, "/x/*"), clients(1)),
        ]
        .into_iter()
        .map(|((m, s), c)| ((m, s.to_string()), c))
        .collect();
        let o = |section: &str, from, to, clients| Outage {
            section: section.into(),
            from,
            to,
            clients,
        };
        assert_eq!(
            outages(&failing, 3),
            vec![
                o("/api/*", 10, 11, 5),
                o("/*", 11, 11, 3),
                o("/api/*", 13, 13, 4)
            ]
        );
        assert_eq!(outages(&failing, 5), vec![o("/api/*", 11, 11, 5)]);
    }

    #[test]
    fn ticks_stay_readable() {
        assert_eq!(tick_step(15 * 60_000), 2 * 60_000);
        assert_eq!(tick_step(24 * 3_600_000), 120 * 60_000);
    }
}
