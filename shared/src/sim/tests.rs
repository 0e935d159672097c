use std::collections::{BTreeMap, HashSet};
use std::io::Read as _;

use super::*;

/// Split an ALB line into top-level fields: space-separated, a field
/// starting with `"` runs to the next `"` that ends the field.
fn tokenize(line: &str) -> Vec<&str> {
    let b = line.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let start = i;
        if b[i] == b'"' {
            i += 1;
            while i < b.len() && !(b[i] == b'"' && (i + 1 == b.len() || b[i + 1] == b' ')) {
                i += 1;
            }
            i += 1;
            out.push(&line[start + 1..i - 1]);
        } else {
            while i < b.len() && b[i] != b' ' {
                i += 1;
            }
            out.push(&line[start..i]);
        }
        i += 1;
    }
    out
}

/// `2026-01-01T00:00:00.123456Z` → epoch ms (test-side, independent of
/// the renderer: counts days by brute force).
fn iso_ms(s: &str) -> i64 {
    assert_eq!(s.len(), 27, "{s}");
    assert!(s.ends_with('Z'));
    let n = |a: usize, b: usize| s[a..b].parse::<i64>().unwrap();
    let (y, mo, d) = (n(0, 4), n(5, 7), n(8, 10));
    let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let mut days = 0;
    for yy in 1970..y {
        days += if leap(yy) { 366 } else { 365 };
    }
    let ml = [
        31,
        if leap(y) { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    days += ml[..(mo - 1) as usize].iter().sum::<i64>() + d - 1;
    ((days * 24 + n(11, 13)) * 60 + n(14, 16)) * 60_000 + n(17, 19) * 1000 + n(20, 23)
}

fn client_ip(f: &[&str]) -> IpAddr {
    let (ip, _port) = f[3].rsplit_once(':').expect("client:port");
    ip.parse().expect("client ip")
}

struct Parsed<'a> {
    f: Vec<&'a str>,
    actor: &'a Actor,
}

impl Parsed<'_> {
    fn status(&self) -> u16 {
        self.f[8].parse().unwrap()
    }
    fn waf(&self) -> bool {
        self.f[22] == "waf"
    }
    fn created_ms(&self) -> i64 {
        iso_ms(self.f[21])
    }
}

fn default_sim() -> &'static Simulation {
    static SIM: std::sync::OnceLock<Simulation> = std::sync::OnceLock::new();
    SIM.get_or_init(|| simulate(&Scenario::default()))
}

fn parsed(sim: &Simulation) -> Vec<Parsed<'_>> {
    sim.lines
        .iter()
        .zip(&sim.line_actor)
        .map(|(l, &a)| Parsed {
            f: tokenize(&l.line),
            actor: &sim.actors[a],
        })
        .collect()
}

/// Status histogram of one actor kind (WAF-blocked lines excluded).
fn mix<'a>(p: &'a [Parsed<'a>], kind: &str) -> (usize, BTreeMap<u16, usize>) {
    let mut m = BTreeMap::new();
    let mut n = 0;
    for x in p.iter().filter(|x| x.actor.kind == kind && !x.waf()) {
        *m.entry(x.status()).or_default() += 1;
        n += 1;
    }
    (n, m)
}

fn share(m: &(usize, BTreeMap<u16, usize>), pred: impl Fn(u16) -> bool) -> f64 {
    m.1.iter()
        .filter(|(s, _)| pred(**s))
        .map(|(_, c)| *c)
        .sum::<usize>() as f64
        / m.0.max(1) as f64
}

#[test]
fn deterministic_and_seed_dependent() {
    let s = Scenario {
        users: 20,
        nat_users: 5,
        ..Scenario::default()
    };
    let a = simulate(&s);
    let b = simulate(&s);
    assert_eq!(a.lines, b.lines);
    assert_eq!(a.labels_csv(), b.labels_csv());
    let c = simulate(&Scenario { seed: 43, ..s });
    assert_ne!(a.lines, c.lines);
}

#[test]
fn sorted_and_well_formed() {
    let sim = default_sim();
    assert!(sim.lines.len() > 10_000);
    assert!(sim.lines.windows(2).all(|w| w[0].time_ms <= w[1].time_ms));
    for l in &sim.lines {
        let f = tokenize(&l.line);
        assert_eq!(f.len(), 30, "{}", l.line);
        assert_eq!(f[0], "http");
        assert!(f[29].starts_with("TID_") && f[29].len() == 36, "{}", l.line);
        let t = iso_ms(f[1]);
        assert_eq!(t, l.time_ms);
        assert!(l.node < 3);
        assert!(!f[3].contains('['), "IPv6 clients are unbracketed");
        assert!(
            f[12] == format!("- http://{HOST}:80- -")
                || f[12].contains(" http://shop.example.com:80/"),
            "{}",
            l.line
        );
        assert!(f[12].ends_with(" HTTP/1.1") || f[12].ends_with("- -"));
        assert!(f[17].starts_with("Root=1-"));
        let _: u16 = f[8].parse().unwrap();
        assert!(f[9] == "-" || f[9].parse::<u16>().is_ok());
        assert!(t >= sim.start_ms && t < sim.start_ms + 3_600_000 + 20_000);
    }
    // A raw quote in a URL is written \x22, as ALB does.
    assert!(sim.lines.iter().any(|l| l.line.contains("\\x22")));
}

#[test]
fn every_client_belongs_to_exactly_one_actor() {
    let sim = default_sim();
    for (l, &a) in sim.lines.iter().zip(&sim.line_actor) {
        let ip = client_ip(&tokenize(&l.line));
        let owners: Vec<&Actor> = sim
            .actors
            .iter()
            .filter(|x| x.networks.iter().any(|n| n.contains(&ip)))
            .collect();
        assert_eq!(
            owners.len(),
            1,
            "{ip} owned by {:?}",
            owners.iter().map(|o| &o.name).collect::<Vec<_>>()
        );
        assert_eq!(owners[0].name, sim.actors[a].name);
    }
    // Benign and attacker networks never overlap.
    for a in sim.actors.iter().filter(|a| a.expect == Expect::Block) {
        for b in sim.actors.iter().filter(|b| b.expect == Expect::Allow) {
            for na in &a.networks {
                for nb in &b.networks {
                    assert!(
                        !na.contains(nb) && !nb.contains(na),
                        "{} {na} overlaps {} {nb}",
                        a.name,
                        b.name
                    );
                }
            }
        }
    }
    let kinds: HashSet<&str> = sim.actors.iter().map(|a| a.kind).collect();
    for k in [
        "user",
        "nat",
        "crawler",
        "monitor",
        "poller",
        "outage-retrier",
        "spa-broken",
        "scanner-fast",
        "scanner-nikto",
        "scanner-slow",
        "wp-scan",
        "stuffer",
        "stuffer-api",
        "fuzzer",
        "ipv6-rotator",
        "subnet-scanner",
    ] {
        assert!(kinds.contains(k), "missing {k}");
    }
    // Every actor sent something.
    let seen: HashSet<usize> = sim.line_actor.iter().copied().collect();
    for (i, a) in sim.actors.iter().enumerate() {
        assert!(
            seen.contains(&i) || a.kind == "user",
            "{} sent nothing",
            a.name
        );
    }
}

#[test]
fn attacker_status_mixes() {
    let sim = default_sim();
    let p = parsed(sim);
    let m = mix(&p, "scanner-fast");
    assert!(share(&m, |s| s == 404) >= 0.95, "{m:?}");
    assert!(
        m.1.contains_key(&301) && m.1.contains_key(&403) && m.1.contains_key(&200),
        "{m:?}"
    );
    let m = mix(&p, "scanner-nikto");
    for s in [200, 400, 403, 404] {
        assert!(m.1.get(&s).copied().unwrap_or(0) >= 10, "nikto {s}: {m:?}");
    }
    assert!(share(&m, |s| s == 404) > 0.6, "{m:?}");
    let malformed = p
        .iter()
        .filter(|x| x.actor.kind == "scanner-nikto" && x.f[12].starts_with("- "))
        .count();
    assert!(malformed > 20);
    let methods: HashSet<&str> = p
        .iter()
        .filter(|x| x.actor.kind == "scanner-nikto")
        .map(|x| x.f[12].split(' ').next().unwrap())
        .collect();
    for meth in ["OPTIONS", "TRACE", "PROPFIND"] {
        assert!(methods.contains(meth), "{methods:?}");
    }
    let m = mix(&p, "scanner-slow");
    assert!(
        share(&m, |s| s == 404) / share(&m, |s| s < 500) >= 0.85,
        "{m:?}"
    );
    let m = mix(&p, "wp-scan");
    assert!(share(&m, |s| s == 404) >= 0.9, "{m:?}");
    let m = mix(&p, "stuffer");
    assert!(share(&m, |s| s == 401) >= 0.85, "{m:?}");
    assert!(m.1.get(&200).copied().unwrap_or(0) > 10, "{m:?}");
    let uas: HashSet<&str> = p
        .iter()
        .filter(|x| x.actor.kind == "stuffer")
        .map(|x| x.f[13])
        .collect();
    assert!(uas.len() >= 5);
    let m = mix(&p, "stuffer-api");
    assert!(share(&m, |s| s == 403) >= 0.99, "{m:?}");
    let m = mix(&p, "fuzzer");
    let f500 = share(&m, |s| s == 500);
    assert!((0.18..=0.35).contains(&f500), "{m:?}");
    assert!(
        share(&m, |s| s == 200 || s == 400 || s == 500) >= 0.99,
        "{m:?}"
    );
    assert!(p
        .iter()
        .any(|x| x.actor.kind == "fuzzer" && x.waf() && x.status() == 403 && x.f[4] == "-"));
    let m = mix(&p, "ipv6-rotator");
    assert!(share(&m, |s| s == 404) >= 0.9, "{m:?}");
    let rot: Vec<IpAddr> = p
        .iter()
        .filter(|x| x.actor.kind == "ipv6-rotator")
        .map(|x| client_ip(&x.f))
        .collect();
    assert_eq!(
        rot.iter().collect::<HashSet<_>>().len(),
        rot.len(),
        "a new address per request"
    );
    let m = mix(&p, "subnet-scanner");
    assert!(
        share(&m, |s| s == 404) / share(&m, |s| s < 500) >= 0.85,
        "{m:?}"
    );
    let mut per: BTreeMap<IpAddr, Vec<i64>> = BTreeMap::new();
    for x in p.iter().filter(|x| x.actor.kind == "subnet-scanner") {
        per.entry(client_ip(&x.f)).or_default().push(x.created_ms());
    }
    assert_eq!(per.len(), 24);
    for ts in per.values() {
        assert!(
            ts.windows(2).all(|w| w[1] - w[0] >= 15_000),
            "each address at most one request per 15 s"
        );
    }
}

#[test]
fn attack_timing() {
    let sim = default_sim();
    let p = parsed(sim);
    let (oa, ob) = sim.outage_ms.unwrap();
    let mut starts = Vec::new();
    for a in sim.actors.iter().filter(|a| a.expect == Expect::Block) {
        let ts: Vec<i64> = p
            .iter()
            .filter(|x| x.actor.name == a.name)
            .map(|x| x.created_ms())
            .collect();
        let (first, last) = (*ts.iter().min().unwrap(), *ts.iter().max().unwrap());
        assert!(
            !(first >= oa && last < ob),
            "{} entirely inside the outage",
            a.name
        );
        if a.kind == "fuzzer" {
            assert!(last < oa || first >= ob, "fuzzer overlaps the outage");
        }
        starts.push(first);
    }
    starts.sort();
    assert!(
        starts[0] > sim.start_ms && *starts.last().unwrap() > sim.start_ms + 40 * 60_000,
        "spread over the hour"
    );
}

#[test]
fn outage_window() {
    let sim = default_sim();
    let p = parsed(sim);
    let (oa, ob) = sim.outage_ms.unwrap();
    let mut in_outage = 0;
    for x in &p {
        let t = x.created_ms();
        let app = x.f[16].contains("shop-app") && !x.waf();
        let s = x.status();
        if app && t >= oa && t < ob {
            assert!(matches!(s, 502..=504), "{}", x.f.join(" "));
            assert_eq!(x.f[9], "-", "ELB-generated");
            in_outage += 1;
        } else if matches!(s, 502..=504) {
            panic!("5xx outside the outage: {}", x.f.join(" "));
        }
        if x.f[16].contains("shop-static") && t >= oa && t < ob {
            assert!(matches!(s, 200 | 304 | 404), "static keeps serving");
        }
    }
    assert!(in_outage > 500);
    // Retriers reload hard; crawlers back off.
    let retrier = p
        .iter()
        .filter(|x| x.actor.name == "outage-retrier-0" && x.status() >= 502)
        .count();
    assert!(retrier >= 60, "{retrier}");
}

#[test]
fn benign_behaviour() {
    let sim = default_sim();
    let p = parsed(sim);
    let m = mix(&p, "crawler");
    let dead = share(&m, |s| s == 404);
    assert!((0.1..=0.3).contains(&dead), "{m:?}");
    assert!(m.1.contains_key(&301));
    let stale = p
        .iter()
        .filter(|x| x.actor.name == "crawler-yandex-stale-sitemap" && x.status() < 500)
        .collect::<Vec<_>>();
    let s404 = stale.iter().filter(|x| x.status() == 404).count() as f64 / stale.len() as f64;
    assert!((0.3..=0.5).contains(&s404), "{s404}");
    let urls: HashSet<&str> = p
        .iter()
        .filter(|x| x.actor.kind == "crawler")
        .map(|x| x.f[12])
        .collect();
    assert!(urls.len() > 2000, "{}", urls.len());
    let wrong = p
        .iter()
        .filter(|x| x.actor.name == "monitor-datadog-wrong-path")
        .collect::<Vec<_>>();
    assert!(wrong.len() > 100 && wrong.iter().all(|x| x.status() == 404));
    let poll = p
        .iter()
        .filter(|x| x.actor.name == "poller-0")
        .collect::<Vec<_>>();
    assert!(poll.len() >= 120 && poll.iter().all(|x| x.status() == 401));
    // Users meet the site's genuine 404s and some mistype passwords.
    let m = mix(&p, "user");
    assert!(m.1[&404] > 100 && m.1[&401] > 5, "{m:?}");
    assert!(p
        .iter()
        .any(|x| x.actor.kind == "user" && x.f[12].contains("/favicon.ico") && x.status() == 404));
    assert!(p.iter().any(|x| x.actor.kind == "user"
        && x.f[12].contains(site::BROKEN_BANNER)
        && x.status() == 404));
    let v6_users = sim
        .actors
        .iter()
        .filter(|a| a.kind == "user" && a.networks[0].addr().is_ipv6())
        .count();
    assert!(v6_users > 20);
    let household: HashSet<IpAddr> = p
        .iter()
        .filter(|x| x.actor.name == "user-household")
        .map(|x| client_ip(&x.f))
        .collect();
    assert_eq!(household.len(), 3);
}

#[test]
fn writes_alb_files_and_labels() {
    let sim = simulate(&Scenario {
        users: 30,
        nat_users: 5,
        ..Scenario::default()
    });
    let dir = std::env::temp_dir().join(format!("fail2waf-sim-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let paths = sim.write_alb_dir(&dir).unwrap();
    let name_re = regex::Regex::new(
        r"^123456789012_elasticloadbalancing_us-east-1_app\.shop-prod\.6f2c1e0b9a7d4e31_20260101T\d{2}[0-5][05]Z_010\.000\.00[123]\.20[123]_[0-9a-z]{8}\.log\.gz$",
    )
    .unwrap();
    let mut lines = Vec::new();
    for path in &paths[..paths.len() - 1] {
        let name = path.file_name().unwrap().to_str().unwrap();
        assert!(name_re.is_match(name), "{name}");
        let mut s = String::new();
        flate2::read::MultiGzDecoder::new(std::fs::File::open(path).unwrap())
            .read_to_string(&mut s)
            .unwrap();
        lines.extend(s.lines().map(str::to_string));
    }
    assert_eq!(paths.len() - 1, 12 * 3);
    let mut want: Vec<String> = sim.lines.iter().map(|l| l.line.clone()).collect();
    want.sort();
    lines.sort();
    assert_eq!(lines, want);
    let labels = std::fs::read_to_string(paths.last().unwrap()).unwrap();
    assert!(labels.starts_with("cidr,actor,kind,expect,description\n"));
    assert!(labels.contains("203.0.113.0/24,subnet-scanner,subnet-scanner,block,"));
    assert!(labels.contains("2001:db8:bad:1::/64,ipv6-rotator,ipv6-rotator,block,"));
    let rows = labels.lines().count() - 1;
    assert_eq!(
        rows,
        sim.actors.iter().map(|a| a.networks.len()).sum::<usize>()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn default_scenario_gzip_size() {
    let sim = default_sim();
    let dir = std::env::temp_dir().join(format!("fail2waf-sim-size-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let paths = sim.write_alb_dir(&dir).unwrap();
    let total: u64 = paths
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    let mut per: BTreeMap<&str, usize> = BTreeMap::new();
    for &a in &sim.line_actor {
        *per.entry(sim.actors[a].kind).or_default() += 1;
    }
    let mut per_actor: BTreeMap<&str, (usize, BTreeMap<u16, usize>)> = BTreeMap::new();
    for (l, &a) in sim.lines.iter().zip(&sim.line_actor) {
        let act = &sim.actors[a];
        let key = if act.kind == "user" {
            "user-*"
        } else {
            act.name.as_str()
        };
        let e = per_actor.entry(key).or_default();
        e.0 += 1;
        *e.1.entry(tokenize(&l.line)[8].parse().unwrap())
            .or_default() += 1;
    }
    for (k, (n, m)) in &per_actor {
        eprintln!("{k:32} {n:6} {m:?}");
    }
    eprintln!(
        "default scenario: {} lines, {} files, {total} bytes gzip; per kind {per:?}",
        sim.lines.len(),
        paths.len()
    );
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(total < 2_500_000, "{total}");
}
