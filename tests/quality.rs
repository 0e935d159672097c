//! Detection quality: the default rules against the scenario simulator.
//!
//! The simulator writes an hour of labeled ALB logs (four nodes, 5-minute
//! files, as ALB delivers them) with real-tool attackers among users, NATs,
//! crawlers, monitors, pollers and an outage. The CLI runs the default
//! rules over the directory; every attacker must be blocked, no benign
//! client may be, and the fast attackers within a minute of their first
//! request.

use crate::util::*;
use fail2waf_core::sim::{simulate, Expect, Scenario};
use ipnet::IpNet;
use std::collections::BTreeMap;

/// Attackers that must be blocked within a minute of their first request.
const FAST: &[&str] = &[
    "scanner-fast",
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

fn check_seed(seed: u64) {
    let sim = simulate(&Scenario {
        seed,
        ..Scenario::default()
    });
    let dir = TempDir::new("quality");
    sim.write_alb_dir(&dir.0).unwrap();
    let out = fail2waf(&["detect", "--json", dir.0.to_str().unwrap()], b"");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&out);
    let decisions: Vec<(IpNet, String, i64)> = of_type(&lines, "decision")
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
        .collect();
    let summary = of_type(&lines, "summary")[0];
    assert_eq!(summary["lines_skipped"], 0, "{summary}");

    // First request of each actor.
    let mut first: BTreeMap<&str, i64> = BTreeMap::new();
    for (line, &actor) in sim.lines.iter().zip(&sim.line_actor) {
        first
            .entry(sim.actors[actor].name.as_str())
            .or_insert(line.time_ms);
    }
    let mut report = vec![format!(
        "seed {seed}: actor, expected, blocked by, seconds from first request to block"
    )];
    let mut failures = vec![];
    for actor in &sim.actors {
        let hits: Vec<&(IpNet, String, i64)> = decisions
            .iter()
            .filter(|(n, _, _)| actor.networks.iter().any(|a| overlaps(a, n)))
            .collect();
        let earliest = hits.iter().map(|h| h.2).min();
        let rules: Vec<&str> = hits.iter().map(|h| h.1.as_str()).collect();
        let ttb = earliest.map(|t| (t - first[actor.name.as_str()]) as f64 / 1000.0);
        match actor.expect {
            Expect::Block => {
                report.push(format!(
                    "  {:<24} block  {:<28} {}",
                    actor.name,
                    rules.join(","),
                    ttb.map_or("MISSED".into(), |s| format!("{s:.0} s"))
                ));
                match ttb {
                    None => {
                        failures.push(format!("{} ({}) was not blocked", actor.name, actor.kind))
                    }
                    Some(s) if FAST.contains(&actor.kind) && s > 60.0 => {
                        failures.push(format!(
                            "{} blocked after {s:.0} s, more than a minute",
                            actor.name
                        ));
                    }
                    _ => {}
                }
            }
            Expect::Allow => {
                if !hits.is_empty() {
                    report.push(format!(
                        "  {:<24} allow  FALSE POSITIVE by {}",
                        actor.name,
                        rules.join(",")
                    ));
                    failures.push(format!(
                        "{} ({}) was blocked by {}",
                        actor.name,
                        actor.kind,
                        rules.join(",")
                    ));
                }
            }
        }
    }
    // Nothing outside the labeled networks either.
    for (net, rule, _) in &decisions {
        if !sim
            .actors
            .iter()
            .any(|a| a.networks.iter().any(|n| overlaps(n, net)))
        {
            failures.push(format!("{net} blocked by {rule} is no actor's"));
        }
    }
    let benign = sim
        .actors
        .iter()
        .filter(|a| matches!(a.expect, Expect::Allow))
        .count();
    report.push(format!(
        "  {} benign actors, none blocked: {}",
        benign,
        failures.iter().all(|f| !f.contains("was blocked by"))
    ));
    eprintln!("{}", report.join("\n"));
    assert!(failures.is_empty(), "seed {seed}:\n{}", failures.join("\n"));
}

#[test]
fn defaults_block_every_attacker_and_no_benign_client() {
    check_seed(42);
}

#[test]
fn defaults_hold_on_another_seed() {
    check_seed(7);
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
