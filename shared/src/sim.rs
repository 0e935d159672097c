//! A deterministic scenario simulator that writes labeled ALB access logs.
//!
//! [`simulate`] plays one hour (by default) of traffic against a small
//! simulated web shop behind an Application Load Balancer: real-looking
//! shoppers, corporate NATs, search-engine crawlers, uptime monitors, broken
//! single-page apps, a backend outage, and a set of attackers modelled on
//! real tools (gobuster, ffuf, nikto, wpscan, sqlmap, credential stuffers,
//! address-rotating and distributed scanners). Every actor comes with the
//! networks it uses and whether a good detector must block it
//! ([`Expect::Block`]) or leave it alone ([`Expect::Allow`]).
//!
//! The simulated site decides every response status (see the `site`
//! submodule); actors only decide what to request and when. Status mixes
//! therefore follow from behaviour, the way they do in production.
//!
//! Everything is driven by a pinned xoshiro256** generator: the same
//! [`Scenario`] always gives byte-identical lines and files.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;

mod actors;
pub mod bench;
mod rng;
mod site;
#[cfg(test)]
mod tests;

use rng::Rng;
use site::{Disp, Intent, Outcome, Site, Tg, APP_TARGETS, HOST, STATIC_TARGETS, TG_APP, TG_STATIC};

/// AWS account of the simulated load balancer.
const ACCOUNT: &str = "123456789012";
/// Region of the simulated load balancer.
const REGION: &str = "us-east-1";
/// Load balancer name and id.
const LB_NAME: &str = "shop-prod";
const LB_ID: &str = "6f2c1e0b9a7d4e31";
/// Private addresses of the three ALB nodes (one per availability zone).
const NODE_IPS: [[u8; 4]; 3] = [[10, 0, 1, 201], [10, 0, 2, 202], [10, 0, 3, 203]];

/// What to simulate. All fields are public so a test can scale the
/// scenario; [`Scenario::default`] is the bundled one-hour example.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Seed of every random choice.
    pub seed: u64,
    /// Start of the simulated period, milliseconds since the Unix epoch.
    pub start_ms: i64,
    /// Length of the simulated period in milliseconds. Attack and outage
    /// start times are placed at fixed fractions of it.
    pub duration_ms: i64,
    /// Number of ordinary shoppers with their own address (`user` actors;
    /// the IPv6 household with three devices comes on top).
    pub users: usize,
    /// People browsing the shop through each of the two corporate NATs
    /// during the period (each browses like a `user`).
    pub nat_users: usize,
    /// The backend outage as offsets from `start_ms` in milliseconds
    /// (`None`: no outage).
    pub outage_ms: Option<(i64, i64)>,
    /// What the outage takes down.
    pub outage_scope: OutageScope,
    /// A route that always fails a little: application paths starting with
    /// this prefix answer 500 or 502 at this rate, outage or not.
    pub flaky: Option<(String, f64)>,
    /// Extra directory scanners (gobuster, dirb, ffuf, feroxbuster), each
    /// from its own address: a scanner-heavy site.
    pub extra_scanners: usize,
    /// Shoppers behind one mobile carrier's CGNAT /24 (0: none).
    pub cgnat_users: usize,
    /// A thin distributed scan over one /24 (`None`: none).
    pub thin_scan: Option<ThinScan>,
    /// The fuzzer runs during the outage, on routes the outage spares
    /// (only with an [`OutageScope::Prefix`] outage), instead of before it.
    pub fuzzer_in_outage: bool,
}

/// Which part of the site an outage takes down.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutageScope {
    /// The application target group (pages, API, login); static files
    /// and the load balancer's own answers keep working.
    App,
    /// Only application paths starting with this prefix: one route
    /// (`/api/v1/cart`) or a whole API (`/api/`).
    Prefix(String),
    /// Everything behind the load balancer, static files too.
    Site,
}

/// A scan spread thinly over many addresses of one /24.
#[derive(Clone, Debug, PartialEq)]
pub struct ThinScan {
    /// Addresses taking part.
    pub members: usize,
    /// Requests a minute for the whole network.
    pub per_minute: f64,
    /// How long it lasts.
    pub minutes: f64,
    /// When it starts (minute of the hour, scaled like every actor).
    pub start_minute: f64,
}

/// The scenario families of the detection-quality matrix: each randomizes
/// one kind of traffic that has fooled detectors (see [`Scenario::family`]).
pub const FAMILIES: [&str; 8] = [
    "route-outage",
    "app-outage",
    "site-outage",
    "flaky-route",
    "scanner-heavy",
    "nat",
    "cgnat",
    "thin-scan",
];

impl Default for Scenario {
    /// Seed 42, 2026-01-01T00:00:00Z, 60 minutes, outage minute 30–36,
    /// scaled so the gzip output stays around 1 MB.
    fn default() -> Self {
        Scenario {
            seed: 42,
            start_ms: 1_767_225_600_000,
            duration_ms: 3_600_000,
            users: 250,
            nat_users: 40,
            outage_ms: Some((30 * 60_000, 36 * 60_000)),
            outage_scope: OutageScope::App,
            flaky: None,
            extra_scanners: 0,
            cgnat_users: 0,
            thin_scan: None,
            fuzzer_in_outage: false,
        }
    }
}

impl Scenario {
    /// The default scenario at full production scale: 150 people behind
    /// each NAT. About three times the size of the default.
    pub fn full_scale() -> Self {
        Scenario {
            nat_users: 150,
            ..Scenario::default()
        }
    }

    /// A scenario of family `name` (one of [`FAMILIES`]) with everything the
    /// family varies drawn from `seed`: outage scope and length (1–10
    /// minutes), flaky routes (5–10 % 5xx), scanners' share of the lines,
    /// NAT sizes (5–100 people), a CGNAT /24 (50–150 users), thin scans
    /// (10–50 members, 10–60 requests a minute, 5–20 minutes), attackers
    /// during the outage. 30 minutes of traffic (every actor's schedule is
    /// scaled to it); the usual attackers are in every family.
    pub fn family(name: &str, seed: u64) -> Option<Scenario> {
        let mut r = rng::Rng::stream(seed, name);
        let minutes = |r: &mut rng::Rng, lo: i64, hi: i64| r.range(lo, hi + 1) * 60_000;
        let outage = |r: &mut rng::Rng| {
            let len = minutes(r, 1, 10);
            let at = r.range(4 * 60_000, 26 * 60_000 - len);
            Some((at, at + len))
        };
        let mut s = Scenario {
            seed,
            duration_ms: 30 * 60_000,
            users: 120,
            nat_users: 20,
            outage_ms: None,
            ..Scenario::default()
        };
        match name {
            "route-outage" => {
                s.outage_ms = outage(&mut r);
                let scope = ["/api/v1/cart", "/api/v1/", "/api/v1/products"][r.below(3) as usize];
                s.outage_scope = OutageScope::Prefix(scope.into());
                s.fuzzer_in_outage = r.chance(0.5);
                if r.chance(0.5) {
                    s.flaky = Some(("/api/v1/search".into(), r.uniform(0.05, 0.10)));
                }
                s.extra_scanners = r.below(8) as usize;
            }
            "app-outage" => {
                s.outage_ms = outage(&mut r);
                s.extra_scanners = r.below(8) as usize;
            }
            "site-outage" => {
                s.outage_ms = outage(&mut r);
                s.outage_scope = OutageScope::Site;
                s.extra_scanners = r.below(8) as usize;
            }
            "flaky-route" => {
                let route =
                    ["/api/v1/cart", "/api/v1/search", "/api/v1/products"][r.below(3) as usize];
                s.flaky = Some((route.into(), r.uniform(0.05, 0.10)));
                if r.chance(0.5) {
                    s.outage_ms = outage(&mut r);
                    s.outage_scope = OutageScope::Prefix("/api/v1/cart".into());
                    s.fuzzer_in_outage = true;
                }
            }
            "scanner-heavy" => {
                s.users = 40 + r.below(80) as usize;
                s.extra_scanners = r.below(30) as usize;
                s.outage_ms = outage(&mut r);
                s.outage_scope = OutageScope::Prefix("/api/v1/".into());
            }
            "nat" => {
                s.nat_users = 5 + r.below(96) as usize;
                s.outage_ms = outage(&mut r);
                if r.chance(0.5) {
                    s.outage_scope = OutageScope::Prefix("/api/v1/".into());
                }
            }
            "cgnat" => {
                s.cgnat_users = 50 + r.below(101) as usize;
                if r.chance(0.5) {
                    s.outage_ms = outage(&mut r);
                }
            }
            "thin-scan" => {
                let len = r.uniform(5.0, 20.0);
                s.thin_scan = Some(ThinScan {
                    members: 10 + r.below(41) as usize,
                    per_minute: r.uniform(10.0, 60.0),
                    minutes: len,
                    // Minutes of the hour: the 30-minute run is scaled by half.
                    start_minute: r.uniform(2.0, 2.0 * (29.0 - len)),
                });
                if r.chance(0.3) {
                    s.cgnat_users = 50 + r.below(51) as usize;
                }
            }
            _ => return None,
        }
        Some(s)
    }
}

/// What a good detector must do about an actor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// The actor is an attacker: its networks must end up blocked.
    Block,
    /// The actor is benign: none of its networks may be blocked.
    Allow,
}

impl Expect {
    /// `block` or `allow`, as written in `labels.csv`.
    pub fn as_str(self) -> &'static str {
        match self {
            Expect::Block => "block",
            Expect::Allow => "allow",
        }
    }
}

/// One simulated client (a person, a tool, a botnet) and its label.
#[derive(Clone, Debug)]
pub struct Actor {
    /// Unique name, e.g. `user-017` or `scanner-fast-gobuster`.
    pub name: String,
    /// Category, e.g. `user`, `crawler`, `scanner-fast`.
    pub kind: &'static str,
    /// The networks its requests come from: a /32 for one IPv4 address,
    /// the /64 for an IPv6 client (what a detector folds IPv6 to), the /24
    /// for the distributed subnet scanner.
    pub networks: Vec<IpNet>,
    /// Block or allow.
    pub expect: Expect,
    /// What it imitates.
    pub description: String,
}

/// One log line and where it was logged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimLine {
    /// The line's `time` field (response sent), ms since the epoch.
    pub time_ms: i64,
    /// The ALB node (0..3) that logged it: one file per node per period.
    pub node: u8,
    /// The ALB access log line, without a newline.
    pub line: String,
}

/// The result of [`simulate`].
#[derive(Clone, Debug)]
pub struct Simulation {
    /// Every actor with its label.
    pub actors: Vec<Actor>,
    /// Every line, sorted by time (stable: ties keep generation order).
    pub lines: Vec<SimLine>,
    /// Index into `actors` of the actor that sent each line.
    pub line_actor: Vec<usize>,
    /// Start of the simulated period, ms since the epoch.
    pub start_ms: i64,
    /// The outage window, absolute ms since the epoch.
    pub outage_ms: Option<(i64, i64)>,
}

// ------------------------------------------------------------- requests

/// One request as generated, before rendering.
pub(crate) struct Req {
    /// request_creation_time, µs.
    pub t_us: i64,
    pub client: IpAddr,
    pub port: u16,
    pub tid: u128,
    pub node: u8,
    pub trace: u128,
    pub method: &'static str,
    /// Path and query as sent; ignored when `malformed`.
    pub path: String,
    pub ua: String,
    pub recv: u32,
    pub out: Outcome,
    pub actor: usize,
}

impl Req {
    /// The `time` field: creation time plus the processing times.
    fn resp_us(&self) -> i64 {
        let ms: i64 = self.out.times.iter().map(|&t| i64::from(t.max(0))).sum();
        self.t_us + ms * 1000 + 150
    }
}

/// A connection of a client to one ALB node.
#[derive(Clone, Debug)]
pub(crate) struct Conn {
    port: u16,
    tid: u128,
    node: u8,
    last_us: i64,
}

/// A client's network identity: address, user agent, open connections.
pub(crate) struct Client {
    pub ip: IpAddr,
    pub ua: String,
    /// Browsers keep up to 6 connections per host; tools one per thread.
    pub max_conns: usize,
    /// Port range the client's OS (or its NAT) allocates from.
    pub ports: (u16, u16),
    conns: Vec<Conn>,
    /// Typical request header size (cookies make browsers' larger).
    pub recv: u32,
}

impl Client {
    pub(crate) fn new(ip: IpAddr, ua: impl Into<String>, max_conns: usize) -> Self {
        Client {
            ip,
            ua: ua.into(),
            max_conns,
            ports: (32_768, 60_999),
            conns: Vec::new(),
            recv: 420,
        }
    }

    /// The connection a request at `t` goes over. Connections idle for
    /// more than 60 s are closed (the ALB's default idle timeout); a new
    /// one resolves the ALB name again and may land on another node.
    fn conn(&mut self, rng: &mut Rng, t: i64) -> (u16, u128, u8) {
        self.conns.retain(|c| t - c.last_us < 60_000_000);
        let open_new =
            self.conns.is_empty() || (self.conns.len() < self.max_conns && rng.chance(0.35));
        let i = if open_new {
            let node = match self.conns.first() {
                // Browsers reuse the address they resolved for all sockets.
                Some(c) if self.max_conns <= 6 => c.node,
                _ => rng.below(NODE_IPS.len() as u64) as u8,
            };
            let port = rng.range(i64::from(self.ports.0), i64::from(self.ports.1)) as u16;
            self.conns.push(Conn {
                port,
                tid: rng.u128(),
                node,
                last_us: t,
            });
            self.conns.len() - 1
        } else {
            rng.below(self.conns.len() as u64) as usize
        };
        let c = &mut self.conns[i];
        c.last_us = c.last_us.max(t);
        (c.port, c.tid, c.node)
    }

    /// Forget all connections (a new source port and TID follow).
    pub(crate) fn reset(&mut self) {
        self.conns.clear();
    }
}

/// Collects the requests of one actor.
pub(crate) struct Emitter<'a> {
    pub site: &'a Site,
    pub rng: Rng,
    pub reqs: Vec<Req>,
    pub actor: usize,
    /// Simulation period, µs.
    pub start_us: i64,
    pub end_us: i64,
}

impl Emitter<'_> {
    /// Send a request at `t` (µs); returns what the client got back.
    /// Requests outside the period are not logged but still answered.
    pub(crate) fn send(
        &mut self,
        c: &mut Client,
        t: i64,
        method: &'static str,
        path: &str,
        intent: Intent,
    ) -> Outcome {
        let out = self.site.serve(&mut self.rng, t, method, path, intent);
        if t >= self.start_us && t < self.end_us {
            let (port, tid, node) = c.conn(&mut self.rng, t);
            let body = if method == "POST" {
                60 + self.rng.below(120) as u32
            } else {
                0
            };
            let recv = c.recv + path.len() as u32 + body + self.rng.below(24) as u32;
            let trace = self.rng.u128();
            self.reqs.push(Req {
                t_us: t,
                client: c.ip,
                port,
                tid,
                node,
                trace,
                method,
                path: path.to_string(),
                ua: c.ua.clone(),
                recv,
                out: out.clone(),
                actor: self.actor,
            });
        }
        out
    }

    /// A request line the ALB cannot parse (nikto's malformed probes).
    pub(crate) fn malformed(&mut self, c: &mut Client, t: i64) {
        if t < self.start_us || t >= self.end_us {
            return;
        }
        let (port, tid, node) = c.conn(&mut self.rng, t);
        let trace = self.rng.u128();
        self.reqs.push(Req {
            t_us: t,
            client: c.ip,
            port,
            tid,
            node,
            trace,
            method: "-",
            path: String::new(),
            ua: "-".to_string(),
            recv: 0,
            out: Outcome {
                elb: 400,
                target_status: None,
                disp: Disp::Malformed,
                sent: 272,
                times: [-1, -1, -1],
            },
            actor: self.actor,
        });
    }
}

// ------------------------------------------------------------- rendering

/// Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day, hour, minute, second, microsecond) of µs since the epoch.
fn civil_us(us: i64) -> (i64, u32, u32, u32, u32, u32, u32) {
    let secs = us.div_euclid(1_000_000);
    let micro = us.rem_euclid(1_000_000) as u32;
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400) as u32;
    (y, m, d, sod / 3600, sod / 60 % 60, sod % 60, micro)
}

/// `2026-01-01T00:00:00.123456Z`.
fn iso_us(us: i64) -> String {
    let (y, mo, d, h, mi, s, u) = civil_us(us);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{u:06}Z")
}

fn secs3(ms: i32) -> String {
    if ms < 0 {
        "-1".to_string()
    } else {
        format!("{}.{:03}", ms / 1000, ms % 1000)
    }
}

/// ALB writes a `"` inside the URL as `\x22`; do the same for the user
/// agent (and backslash-free control bytes as `\xHH`).
fn alb_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '"' => o.push_str("\\x22"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(o, "\\x{:02x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o
}

fn client_addr(ip: IpAddr, port: u16) -> String {
    // IPv6 clients are written without brackets, exactly like ALB does.
    format!("{ip}:{port}")
}

/// Render one request as a 30-field ALB access log line.
fn render(r: &Req) -> String {
    let resp = r.resp_us();
    let o = &r.out;
    let (target, tg_arn, prio, actions, redirect, tlist, slist) = match &o.disp {
        Disp::Forward { tg, target } => {
            let t = match tg {
                Tg::App => APP_TARGETS[*target as usize],
                Tg::Static => STATIC_TARGETS[*target as usize],
            };
            let (arn, prio) = match tg {
                Tg::App => (TG_APP, "0"),
                Tg::Static => (TG_STATIC, "1"),
            };
            let st = o.target_status.map_or("-".to_string(), |s| s.to_string());
            (
                t.to_string(),
                arn,
                prio,
                "forward",
                "-".to_string(),
                t.to_string(),
                st,
            )
        }
        Disp::TargetFailed { target } => {
            let t = APP_TARGETS[*target as usize];
            (
                t.to_string(),
                TG_APP,
                "0",
                "forward",
                "-".into(),
                t.to_string(),
                "-".into(),
            )
        }
        Disp::NoTarget => (
            "-".into(),
            TG_APP,
            "0",
            "forward",
            "-".into(),
            "-".into(),
            "-".into(),
        ),
        Disp::Waf => (
            "-".into(),
            TG_APP,
            "0",
            "waf",
            "-".into(),
            "-".into(),
            "-".into(),
        ),
        Disp::Redirect(to) => (
            "-".into(),
            "-",
            "3",
            "redirect",
            to.clone(),
            "-".into(),
            "-".into(),
        ),
        Disp::Fixed => (
            "-".into(),
            "-",
            "2",
            "fixed-response",
            "-".into(),
            "-".into(),
            "-".into(),
        ),
        Disp::Malformed => (
            "-".into(),
            "-",
            "-",
            "-",
            "-".into(),
            "-".into(),
            "-".into(),
        ),
    };
    let request = if matches!(o.disp, Disp::Malformed) {
        format!("- http://{HOST}:80- -")
    } else {
        format!(
            "{} http://{HOST}:80{} HTTP/1.1",
            r.method,
            alb_escape(&r.path)
        )
    };
    let target_status = o.target_status.map_or("-".to_string(), |s| s.to_string());
    let trace_secs = r.t_us.div_euclid(1_000_000) as u32;
    let trace_rand = r.trace & ((1u128 << 96) - 1);
    let recv = if matches!(o.disp, Disp::Malformed) {
        0
    } else {
        r.recv
    };
    format!(
        "http {time} app/{LB_NAME}/{LB_ID} {client} {target} {t0} {t1} {t2} {elb} {ts} {recv} {sent} \"{request}\" \"{ua}\" - - {tg_arn} \"Root=1-{trace_secs:08x}-{trace_rand:024x}\" \"-\" \"-\" {prio} {created} \"{actions}\" \"{redirect}\" \"-\" \"{tlist}\" \"{slist}\" \"-\" \"-\" TID_{tid:032x}",
        time = iso_us(resp),
        client = client_addr(r.client, r.port),
        t0 = secs3(o.times[0]),
        t1 = secs3(o.times[1]),
        t2 = secs3(o.times[2]),
        elb = o.elb,
        ts = target_status,
        sent = o.sent,
        ua = alb_escape(&r.ua),
        created = iso_us(r.t_us),
        tid = r.tid,
    )
}

/// Run the scenario.
pub fn simulate(s: &Scenario) -> Simulation {
    let start_us = s.start_ms * 1000;
    let end_us = (s.start_ms + s.duration_ms) * 1000;
    let outage = s
        .outage_ms
        .map(|(a, b)| (start_us + a * 1000, start_us + b * 1000));
    let site = Site::new(outage, s.outage_scope.clone(), s.flaky.clone());
    let (actors, mut reqs) = actors::generate(s, &site, start_us, end_us);
    // Sort by the logged time; ties keep generation order (stable sort).
    let mut keyed: Vec<(i64, Req)> = reqs.drain(..).map(|r| (r.resp_us(), r)).collect();
    keyed.sort_by_key(|(t, _)| *t);
    let mut lines = Vec::with_capacity(keyed.len());
    let mut line_actor = Vec::with_capacity(keyed.len());
    for (t, r) in &keyed {
        lines.push(SimLine {
            time_ms: t.div_euclid(1000),
            node: r.node,
            line: render(r),
        });
        line_actor.push(r.actor);
    }
    Simulation {
        actors,
        lines,
        line_actor,
        start_ms: s.start_ms,
        outage_ms: outage.map(|(a, b)| (a / 1000, b / 1000)),
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

impl Simulation {
    /// `cidr,actor,kind,expect,description`, one row per network of each
    /// actor, with a header row. Fields are quoted per RFC 4180 when needed.
    pub fn labels_csv(&self) -> String {
        let mut o = String::from("cidr,actor,kind,expect,description\n");
        for a in &self.actors {
            for n in &a.networks {
                let _ = writeln!(
                    o,
                    "{},{},{},{},{}",
                    n,
                    csv_field(&a.name),
                    a.kind,
                    a.expect.as_str(),
                    csv_field(&a.description)
                );
            }
        }
        o
    }

    /// The actor whose networks contain `ip` (the first, if several).
    pub fn actor_of(&self, ip: IpAddr) -> Option<&Actor> {
        self.actors
            .iter()
            .find(|a| a.networks.iter().any(|n| n.contains(&ip)))
    }

    /// Write ALB-style files into `dir` (created if missing): one gzip file
    /// per node per 5-minute period that has lines, named like the real
    /// keys, `{acct}_elasticloadbalancing_{region}_app.{lb}.{id}_{end
    /// YYYYMMDDTHHMMZ}_{zero-padded node ip}_{random}.log.gz`, plus
    /// `labels.csv`. Returns the paths written, log files first (in period
    /// and node order), then `labels.csv`.
    pub fn write_alb_dir(&self, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
        std::fs::create_dir_all(dir)?;
        const PERIOD_MS: i64 = 300_000;
        let mut files: HashMap<(i64, u8), Vec<&str>> = HashMap::new();
        for l in &self.lines {
            let end = (l.time_ms.div_euclid(PERIOD_MS) + 1) * PERIOD_MS;
            files.entry((end, l.node)).or_default().push(&l.line);
        }
        let mut keys: Vec<(i64, u8)> = files.keys().copied().collect();
        keys.sort_unstable();
        let mut rng = Rng::stream(self.start_ms as u64, "file-names");
        let mut out = Vec::new();
        for key in keys {
            let (end, node) = key;
            let (y, mo, d, h, mi, _, _) = civil_us(end * 1000);
            let ip = NODE_IPS[node as usize];
            let rand: String = (0..8)
                .map(|_| {
                    let c = rng.below(36) as u8;
                    (if c < 10 { b'0' + c } else { b'a' + c - 10 }) as char
                })
                .collect();
            let name = format!(
                "{ACCOUNT}_elasticloadbalancing_{REGION}_app.{LB_NAME}.{LB_ID}_{y:04}{mo:02}{d:02}T{h:02}{mi:02}Z_{:03}.{:03}.{:03}.{:03}_{rand}.log.gz",
                ip[0], ip[1], ip[2], ip[3]
            );
            let path = dir.join(name);
            let f = std::fs::File::create(&path)?;
            let mut gz = flate2::write::GzEncoder::new(
                std::io::BufWriter::new(f),
                flate2::Compression::best(),
            );
            for line in &files[&key] {
                gz.write_all(line.as_bytes())?;
                gz.write_all(b"\n")?;
            }
            gz.finish()?.flush()?;
            out.push(path);
        }
        let labels = dir.join("labels.csv");
        std::fs::write(&labels, self.labels_csv())?;
        out.push(labels);
        Ok(out)
    }
}
