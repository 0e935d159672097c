//! Detection quality: the default rules against the scenario simulator.
//!
//! The simulator writes an hour of labeled ALB logs (four nodes, 5-minute
//! files, as ALB delivers them) with real-tool attackers among users, NATs,
//! crawlers, monitors, pollers and an outage. The CLI runs the default
//! rules over the directory; every attacker must be blocked, no benign
//! client may be, and the fast attackers within a minute of their first
//! request.

use crate::util::*;
use fail2waf_core::sim::{simulate, Expect, Scenario, Simulation, FAMILIES};
use ipnet::IpNet;
use std::collections::BTreeMap;

/// Attackers that must be blocked within a minute of their first request.
const FAST: &[&str] = &[
    "scanner-fast",
    "scanner-extra",
    "scanner-nikto",
    "wp-scan",
    "stuffer",
    "stuffer-api",
    "fuzzer",
    "ipv6-rotator",
];

fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(b) || b.contains(a)
}

/// The decisions of `fail2waf detect --json` on a directory or file of
/// logs, every line of which must parse: (network, rule, first blocked at, ms).
fn detect_dir(dir: &std::path::Path, extra: &[&str]) -> Vec<(IpNet, String, i64)> {
    let mut args = vec!["detect", "--json"];
    args.extend_from_slice(extra);
    args.push(dir.to_str().unwrap());
    let out = fail2waf(&args, b"");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&out);
    let summary = of_type(&lines, "summary")[0];
    assert_eq!(summary["lines_skipped"], 0, "{summary}");
    of_type(&lines, "decision")
        .iter()
        .map(|d| {
            let t =
                chrono::DateTime::parse_from_rfc3339(d["first_blocked"].as_str().unwrap()).unwrap();
            (
                d["ip"].as_str().unwrap().parse().unwrap(),
                d["rule"].as_str().unwrap().to_string(),
                t.timestamp_millis(),
            )
        })
        .collect()
}

/// How the defaults did on one simulation.
#[derive(Default)]
struct Score {
    attackers: usize,
    blocked: usize,
    /// Attackers whose requests an outage mostly swallowed.
    hidden: usize,
    innocents: usize,
    /// Seconds from each blocked attacker's first request to its block.
    ttb: Vec<f64>,
    /// Seconds to block of the fast attackers.
    ttb_fast: Vec<f64>,
    failures: Vec<String>,
    report: Vec<String>,
}

fn score(sim: &Simulation, decisions: &[(IpNet, String, i64)]) -> Score {
    // An outage answers 502/503/504 whoever asks: a request it swallowed
    // says nothing about the client. Times to block count from an actor's
    // first request the outage did not swallow; an attacker most of whose
    // requests it swallowed is hidden from any log-based detector.
    let swallowed = |l: &fail2waf_core::sim::SimLine| {
        sim.outage_ms
            .is_some_and(|(a, b)| (a..b).contains(&l.time_ms))
            && matches!(l.line.split(' ').nth(8), Some("502" | "503" | "504"))
    };
    let mut first: BTreeMap<&str, i64> = BTreeMap::new();
    let mut lines: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for (line, &actor) in sim.lines.iter().zip(&sim.line_actor) {
        let name = sim.actors[actor].name.as_str();
        let e = lines.entry(name).or_default();
        e.0 += 1;
        if swallowed(line) {
            e.1 += 1;
        } else {
            first.entry(name).or_insert(line.time_ms);
        }
    }
    let mut sc = Score::default();
    for actor in &sim.actors {
        let Some(&start) = first.get(actor.name.as_str()) else {
            continue; // sent nothing inside the period, or all swallowed
        };
        let (n, gone) = lines[actor.name.as_str()];
        if actor.expect == Expect::Block && gone * 2 > n {
            sc.hidden += 1;
            continue;
        }
        let hits: Vec<&(IpNet, String, i64)> = decisions
            .iter()
            .filter(|(n, _, _)| actor.networks.iter().any(|a| overlaps(a, n)))
            .collect();
        let rules: Vec<&str> = hits.iter().map(|h| h.1.as_str()).collect();
        let ttb = hits
            .iter()
            .map(|h| h.2)
            .min()
            .map(|t| (t - start) as f64 / 1000.0);
        match actor.expect {
            Expect::Block => {
                sc.attackers += 1;
                sc.report.push(format!(
                    "  {:<28} block  {:<28} {}",
                    actor.name,
                    rules.join(","),
                    ttb.map_or("MISSED".into(), |s| format!("{s:.0} s"))
                ));
                match ttb {
                    None => sc
                        .failures
                        .push(format!("{} ({}) was not blocked", actor.name, actor.kind)),
                    Some(s) => {
                        sc.blocked += 1;
                        sc.ttb.push(s);
                        if FAST.contains(&actor.kind) {
                            sc.ttb_fast.push(s);
                            // A stuffer trying a password every 6 s or more
                            // makes auth-brute's 10th failure after a minute.
                            let limit = if actor.kind.starts_with("stuffer") {
                                90.0
                            } else {
                                60.0
                            };
                            if s > limit {
                                sc.failures.push(format!(
                                    "{} blocked after {s:.0} s, more than {limit:.0} s",
                                    actor.name
                                ));
                            }
                        }
                    }
                }
            }
            Expect::Allow if !hits.is_empty() => {
                sc.innocents += 1;
                sc.report.push(format!(
                    "  {:<28} allow  FALSE POSITIVE by {}",
                    actor.name,
                    rules.join(",")
                ));
                sc.failures.push(format!(
                    "{} ({}) was blocked by {}",
                    actor.name,
                    actor.kind,
                    rules.join(",")
                ));
            }
            Expect::Allow => {}
        }
    }
    // Nothing outside the labeled networks either.
    for (net, rule, _) in decisions {
        if !sim
            .actors
            .iter()
            .any(|a| a.networks.iter().any(|n| overlaps(n, net)))
        {
            sc.innocents += 1;
            sc.failures
                .push(format!("{net} blocked by {rule} is no actor's"));
        }
    }
    sc
}

fn check_seed(seed: u64) {
    let sim = simulate(&Scenario {
        seed,
        ..Scenario::default()
    });
    let dir = TempDir::new("quality");
    sim.write_alb_dir(&dir.0).unwrap();
    let sc = score(&sim, &detect_dir(&dir.0, &[]));
    eprintln!(
        "seed {seed}: actor, expected, blocked by, seconds from first request to block\n{}",
        sc.report.join("\n")
    );
    assert!(
        sc.failures.is_empty(),
        "seed {seed}:\n{}",
        sc.failures.join("\n")
    );
}

#[test]
fn defaults_block_every_attacker_and_no_benign_client() {
    check_seed(42);
}

#[test]
fn defaults_hold_on_another_seed() {
    check_seed(7);
}

/// Seeds per family in [`every_scenario_family_blocks_every_attacker_and_no_innocent`]
/// (`FAIL2WAF_QUALITY_SEEDS` to change it; `FAIL2WAF_QUALITY_FAMILY=NAME`
/// runs one family).
fn family_seeds() -> u64 {
    std::env::var("FAIL2WAF_QUALITY_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20)
}

/// What the defaults still get wrong per family over seeds 1–20, as
/// (family, missed, innocent blocked, fast attackers late): the matrix
/// may not get worse than this, and the goal is 0 everywhere. Families not
/// listed must be perfect. app-outage seed 4: nikto, 345 of whose 1,190
/// requests the outage answered, is blocked 61 s after its first answered
/// request.
const KNOWN_GAPS: [(&str, usize, usize, usize); 1] = [("app-outage", 0, 0, 1)];

/// The matrix of docs/rules.md: every scenario family, randomized per
/// seed, with the default rules. Attackers missed, innocent clients
/// blocked and fast attackers later than a minute stay within
/// [`KNOWN_GAPS`] (0 for the other families). Seeds run two at a time.
#[test]
fn every_scenario_family_blocks_every_attacker_and_no_innocent() {
    let seeds = family_seeds();
    let mut rows = vec![format!(
        "| family | seeds | attackers blocked | missed | hidden by the outage | innocent blocked | fast attackers blocked after (median / max) | all attackers (median / max) | scanner share of lines (max) |\n|---|---|---|---|---|---|---|---|---|"
    )];
    let mut failures = Vec::new();
    let mut over = Vec::new();
    let only = std::env::var("FAIL2WAF_QUALITY_FAMILY").ok();
    for family in FAMILIES {
        if only.as_deref().is_some_and(|f| f != family) {
            continue;
        }
        let results: Vec<(u64, Score, f64)> = std::thread::scope(|sc| {
            let handles: Vec<_> = (0..2u64)
                .map(|half| {
                    sc.spawn(move || {
                        (1..=seeds)
                            .filter(|s| s % 2 == half)
                            .map(|seed| {
                                let sim = simulate(&Scenario::family(family, seed).unwrap());
                                let scanners = sim
                                    .line_actor
                                    .iter()
                                    .filter(|&&a| sim.actors[a].kind.starts_with("scanner"))
                                    .count() as f64
                                    / sim.lines.len() as f64;
                                let dir = TempDir::new(&format!("family-{family}"));
                                sim.write_alb_dir(&dir.0).unwrap();
                                (seed, score(&sim, &detect_dir(&dir.0, &[])), scanners)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        let (mut att, mut blk, mut inn, mut hid, mut late) = (0, 0, 0, 0, 0);
        let (mut fast, mut all) = (Vec::new(), Vec::new());
        let mut share: f64 = 0.0;
        for (seed, sc, scanners) in &results {
            att += sc.attackers;
            blk += sc.blocked;
            inn += sc.innocents;
            hid += sc.hidden;
            fast.extend(&sc.ttb_fast);
            all.extend(&sc.ttb);
            share = share.max(*scanners);
            late += sc
                .failures
                .iter()
                .filter(|f| f.contains(" s, more than "))
                .count();
            for f in &sc.failures {
                failures.push(format!("{family} seed {seed}: {f}"));
            }
        }
        let med_max = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            match v.len() {
                0 => "-".to_string(),
                n => format!("{:.0} s / {:.0} s", v[n / 2], v[n - 1]),
            }
        };
        rows.push(format!(
            "| {family} | {} | {blk} / {att} | {} | {hid} | {inn} | {} | {} | {:.0} % |",
            results.len(),
            att - blk,
            med_max(&mut fast),
            med_max(&mut all),
            share * 100.0
        ));
        let (_, m, i, l) = KNOWN_GAPS
            .iter()
            .find(|g| g.0 == family)
            .copied()
            .unwrap_or((family, 0, 0, 0));
        // The ceilings are for the 20 seeds they were measured on.
        if seeds == 20 && (att - blk > m || inn > i || late > l) {
            over.push(format!(
                "{family}: {} missed (at most {m}), {inn} innocent blocked (at most {i}), {late} late (at most {l})",
                att - blk
            ));
        }
    }
    eprintln!("{}\n{}", rows.join("\n"), failures.join("\n"));
    assert!(over.is_empty(), "worse than known:\n{}", over.join("\n"));
}

/// The bundled example (the README's first command) is what its labels say.
#[test]
fn bundled_examples_match_their_labels() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let size: u64 = std::fs::read_dir(root.join("alb"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(size <= 1_000_000, "examples/alb is {size} bytes");
    let out = fail2waf(
        &[
            "detect",
            "--json",
            "--config",
            root.join("fail2waf.toml").to_str().unwrap(),
            root.to_str().unwrap(),
        ],
        b"",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&out);
    let blocked: Vec<IpNet> = of_type(&lines, "decision")
        .iter()
        .map(|d| d["ip"].as_str().unwrap().parse().unwrap())
        .collect();
    let labels = std::fs::read_to_string(root.join("alb/labels.csv")).unwrap();
    let (mut attackers, mut benign) = (0, 0);
    for row in labels.lines().skip(1) {
        let f: Vec<&str> = row.splitn(5, ',').collect();
        let net: IpNet = f[0].parse().unwrap();
        let hit = blocked.iter().any(|b| overlaps(b, &net));
        match f[3] {
            "block" => {
                attackers += 1;
                assert!(hit, "{} ({}) not blocked", f[1], f[2]);
            }
            _ => {
                benign += 1;
                assert!(!hit, "{} ({}) blocked", f[1], f[2]);
            }
        }
    }
    assert!(
        attackers >= 8 && benign >= 40,
        "{attackers} attackers, {benign} benign"
    );
}

/// The example config is exactly `config print-default`, so it cannot rot.
#[test]
fn example_config_is_the_printed_default() {
    let out = fail2waf(&["config", "print-default"], b"");
    assert!(out.status.success());
    let file = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/fail2waf.toml"),
    )
    .unwrap();
    assert!(
        out.stdout == file,
        "examples/fail2waf.toml differs from `fail2waf config print-default`"
    );
}

/// The recorded real-tool corpus (`tools/realtool/`): its labels
/// (network, group, must be blocked), the ALB copy's lines, and which
/// attackers an outage hid (most of their requests answered 502/503/504:
/// nothing in their answers says what they were doing).
struct Corpus {
    labels: Vec<(IpNet, String, bool)>,
    alb: String,
    hidden: Vec<IpNet>,
}

fn corpus() -> Corpus {
    let dir = fixture("realtool");
    let labels: Vec<(IpNet, String, bool)> = std::fs::read_to_string(dir.join("labels.tsv"))
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[0].parse().unwrap(), f[1].to_string(), f[2] == "block")
        })
        .collect();
    let mut alb = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::MultiGzDecoder::new(
            std::fs::File::open(dir.join("alb.log.gz")).unwrap(),
        ),
        &mut alb,
    )
    .unwrap();
    // Per line: the client (field 4, `ip:port`) and whether the outage
    // answered it (status, field 9).
    let seen: Vec<(std::net::IpAddr, bool)> = alb
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.splitn(10, ' ').collect();
            let ip = f[3].rsplit_once(':').unwrap().0.parse().unwrap();
            (ip, matches!(f[8], "502" | "503" | "504"))
        })
        .collect();
    let hidden = labels
        .iter()
        .filter(|(net, _, block)| {
            let mine: Vec<bool> = seen
                .iter()
                .filter(|(ip, _)| net.contains(ip))
                .map(|s| s.1)
                .collect();
            *block && mine.iter().filter(|&&g| g).count() * 2 > mine.len()
        })
        .map(|l| l.0)
        .collect();
    Corpus {
        labels,
        alb,
        hidden,
    }
}

impl Corpus {
    /// Score `blocked` (network, rule) against the labels: a line per
    /// attacker, and what is wrong.
    fn score(&self, what: &str, blocked: &[(IpNet, String)]) -> (Vec<String>, Vec<String>) {
        let (mut report, mut failures) = (vec![], vec![]);
        let (mut caught, mut attackers, mut innocent) = (0, 0, 0);
        for (net, group, block) in &self.labels {
            let by: Vec<&str> = blocked
                .iter()
                .filter(|(b, _)| overlaps(b, net))
                .map(|(_, r)| r.as_str())
                .collect();
            match (block, by.is_empty()) {
                (true, _) if self.hidden.contains(net) => report.push(format!(
                    "  {what:<15} {group:<14} hidden: the outage answered most of its requests"
                )),
                (true, true) => {
                    attackers += 1;
                    failures.push(format!("{what}: {group} ({net}) not blocked"));
                }
                (true, false) => {
                    attackers += 1;
                    caught += 1;
                    report.push(format!(
                        "  {what:<15} {group:<14} blocked by {}",
                        by.join(",")
                    ));
                }
                (false, false) => {
                    innocent += 1;
                    failures.push(format!(
                        "{what}: {group} ({net}) blocked by {}",
                        by.join(",")
                    ));
                }
                (false, true) => {}
            }
        }
        report.push(format!(
            "{what}: {caught} of {attackers} attackers blocked, {innocent} innocent blocked"
        ));
        for (b, rule) in blocked {
            if !self.labels.iter().any(|(n, _, _)| overlaps(n, b)) {
                failures.push(format!("{what}: {b} blocked by {rule} is no actor's"));
            }
        }
        (report, failures)
    }
}

/// Real attack tools (gobuster, dirb, ffuf, wfuzz, sqlmap, a slow scanner,
/// an IPv6 rotator, a thin scan over one /24) recorded against nginx beside
/// shoppers, a NAT, a CGNAT /24, a crawler and monitors, through a
/// 3-minute outage of `/api/*` and a flaky `/api/report`
/// (`tools/realtool/`). Both formats nginx wrote, with the default rules:
/// every attacker blocked but one whose every request the outage answered,
/// no innocent client blocked.
#[test]
fn real_tool_corpus_blocks_every_attacker_and_no_innocent() {
    let c = corpus();
    assert_eq!(c.hidden.len(), 1, "{:?}", c.hidden);
    let dir = fixture("realtool");
    let (mut report, mut failures) = (vec![], vec![]);
    for (file, format) in [("alb.log.gz", "alb"), ("nginx.log.gz", "nginx-combined")] {
        let blocked: Vec<(IpNet, String)> = detect_dir(&dir.join(file), &["--format", format])
            .into_iter()
            .map(|(net, rule, _)| (net, rule))
            .collect();
        let (r, f) = c.score(format, &blocked);
        report.extend(r);
        failures.extend(f);
    }
    eprintln!("{}", report.join("\n"));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The same corpus through the deployed path: the ALB copy, moved to the
/// last 20 minutes and cut into 5-minute objects as ALB delivers them,
/// ingested by the `ingest` binary under the Lambda Runtime API against
/// S3 and WAFv2 (moto): the IP sets end up holding every attacker and no
/// innocent client.
#[test]
fn real_tool_corpus_through_the_ingest_function_reaches_the_ip_sets() {
    use crate::aws::{alb_key, response, run_function, s3_event, Account};
    let c = corpus();
    let time_of = |line: &str| {
        chrono::DateTime::parse_from_rfc3339(line.split(' ').nth(1).unwrap())
            .unwrap()
            .timestamp_millis()
    };
    let last = c.alb.lines().map(time_of).max().unwrap();
    let shift = fail2waf_core::clock::wall_ms() - 60_000 - last;
    let mut objects: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for line in c.alb.lines() {
        let t = time_of(line) + shift;
        let iso = chrono::DateTime::from_timestamp_millis(t)
            .unwrap()
            .format("%Y-%m-%dT%H:%M:%S%.6fZ")
            .to_string();
        let mut f: Vec<&str> = line.splitn(3, ' ').collect();
        f[1] = &iso;
        objects.entry(t / 300_000).or_default().push(f.join(" "));
    }
    let acct = Account::new();
    let keys: Vec<String> = objects
        .values()
        .enumerate()
        .map(|(i, lines)| {
            let key = alb_key(1, 900 + i as u32);
            acct.put_log(&key, lines);
            key
        })
        .collect();
    let events: Vec<serde_json::Value> = keys.iter().map(|k| s3_event(&acct.logs, &[k])).collect();
    let (out, _) = run_function("ingest", &acct.env(&[]), &events);
    for o in &out {
        response(o);
    }
    let blocked: Vec<(IpNet, String)> = acct
        .ip_set(&acct.v4)
        .into_iter()
        .chain(acct.ip_set(&acct.v6))
        .map(|n| (n.parse().unwrap(), "ip-set".to_string()))
        .collect();
    let (report, failures) = c.score("lambda", &blocked);
    eprintln!("{}", report.join("\n"));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
