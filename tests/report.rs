//! `fail2waf report`: the HTML backtest's chart data agrees with the
//! decisions of `detect`, and text from logs comes out inert.

use crate::util::*;
use std::collections::BTreeMap;
use std::path::Path;

/// The attributes of every tag in `html` whose class attribute starts with
/// `class` (e.g. `band`, `bar`, `near`) and that carry data, in document order.
fn tags(html: &str, class: &str) -> Vec<BTreeMap<String, String>> {
    let mut out = Vec::new();
    for (i, _) in html.match_indices('<') {
        let end = i + html[i..].find('>').expect("closed tag");
        let tag = &html[i + 1..end];
        let attrs = attributes(tag);
        let matches = attrs
            .get("class")
            .is_some_and(|c| c.split(' ').next() == Some(class))
            && attrs.contains_key("data-key");
        if matches {
            out.push(attrs);
        }
    }
    out
}

fn attributes(tag: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = tag;
    while let Some(eq) = rest.find("=\"") {
        let name = rest[..eq]
            .rsplit(|c: char| c.is_whitespace())
            .next()
            .unwrap_or("")
            .to_string();
        let value_start = eq + 2;
        let len = rest[value_start..].find('"').expect("closed attribute");
        out.insert(name, rest[value_start..value_start + len].to_string());
        rest = &rest[value_start + len + 1..];
    }
    out
}

fn report(paths: &[&str], out: &Path, extra: &[&str]) -> String {
    let o = out.to_str().unwrap();
    let mut args = vec!["report", "--output", o];
    args.extend_from_slice(extra);
    args.extend_from_slice(paths);
    let r = fail2waf(&args, b"");
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(r.status.success(), "{stderr}");
    assert!(stderr.contains(&format!("wrote {o}: ")), "{stderr}");
    std::fs::read_to_string(out).unwrap()
}

/// (ip, first_blocked, expires, rule) of every decision of `detect --json`.
fn detect_decisions(paths: &[&str]) -> Vec<(String, String, String, String)> {
    let mut args = vec!["detect", "--json"];
    args.extend_from_slice(paths);
    let out = fail2waf(&args, b"");
    assert!(out.status.success());
    of_type(&json_lines(&out), "decision")
        .into_iter()
        .map(|d| {
            let s = |k: &str| d[k].as_str().unwrap().to_string();
            (s("ip"), s("first_blocked"), s("expires"), s("rule"))
        })
        .collect()
}

fn minute_sums(html: &str) -> BTreeMap<String, u64> {
    let mut sums = BTreeMap::new();
    for bar in tags(html, "bar") {
        *sums.entry(bar["data-key"].clone()).or_insert(0) +=
            bar["data-count"].parse::<u64>().unwrap();
    }
    sums
}

#[test]
fn report_on_the_examples_draws_every_block_of_detect() {
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
    let dir = TempDir::new("report-examples");
    let html = report(&[examples], &dir.join("r.html"), &["--top", "30"]);
    let decisions = detect_decisions(&[examples]);
    assert_eq!(decisions.len(), 10);
    let bands = tags(&html, "band");
    assert_eq!(bands.len(), decisions.len(), "one band per block");
    for (ip, since, until, rule) in &decisions {
        assert!(
            bands.iter().any(|b| b["data-key"] == *ip
                && b["data-since"] == *since
                && b["data-until"] == *until
                && b["data-rule"] == *rule),
            "no band for {ip} {rule} {since}..{until}"
        );
    }
    // Each lane's bars sum to the lane's matched requests.
    let sums = minute_sums(&html);
    let lanes = tags(&html, "lane");
    assert!(
        lanes.len() > decisions.len(),
        "unblocked offenders shown too"
    );
    for lane in &lanes {
        let key = &lane["data-key"];
        assert_eq!(
            sums.get(key).copied().unwrap_or(0),
            lane["data-matched"].parse::<u64>().unwrap(),
            "{key}"
        );
    }
    // Self-contained: no scripts, no external resources.
    assert!(!html.contains("<script"));
    assert!(!html.contains("src=\""));
    assert!(!html.contains("href=\"http"));
}

#[test]
fn report_counts_crafted_requests_and_shows_a_near_miss() {
    let dir = TempDir::new("report-crafted");
    let mut log = String::new();
    // A scanner: 40 × 404 on distinct paths from 00:00:30, one a second (30
    // in minute 0, 10 in minute 1), one of them with markup in the path;
    // plus 5 × 200 (not matched).
    for i in 0..40u32 {
        let path = if i == 3 {
            "/<script>alert(1)</script>".to_string()
        } else {
            format!("/admin{i}.php")
        };
        log += &alb_line(&at(30 + i), "198.51.100.7", "GET", &path, 404);
        log.push('\n');
    }
    for i in 0..5u32 {
        log += &alb_line(&at(100 + i), "198.51.100.7", "GET", "/", 200);
        log.push('\n');
    }
    // Just under scan-burst: 25 distinct 404s within one minute (from 00:02:00).
    for i in 0..25u32 {
        log += &alb_line(
            &at(120 + 2 * i),
            "192.0.2.77",
            "GET",
            &format!("/x{i}"),
            404,
        );
        log.push('\n');
    }
    // A shopper.
    for i in 0..20u32 {
        log += &alb_line(&at(10 * i), "203.0.113.9", "GET", "/index.html", 200);
        log.push('\n');
    }
    let file = dir.join("crafted.log");
    std::fs::write(&file, &log).unwrap();
    let f = file.to_str().unwrap();
    let html = report(&[f], &dir.join("r.html"), &[]);

    let decisions = detect_decisions(&[f]);
    assert_eq!(decisions.len(), 1, "{decisions:?}");
    let (ip, since, until, rule) = &decisions[0];
    assert_eq!(
        (ip.as_str(), rule.as_str()),
        ("198.51.100.7/32", "scan-burst")
    );
    let bands = tags(&html, "band");
    assert_eq!(bands.len(), 1);
    assert_eq!(
        (
            &bands[0]["data-key"],
            &bands[0]["data-since"],
            &bands[0]["data-until"]
        ),
        (ip, since, until)
    );
    // The block is decided by the 30th 404, at 00:00:59.
    assert_eq!(since, "2026-01-01T00:00:59Z");

    // Per-minute counts, computed from the lines above.
    let bars: BTreeMap<(String, String), u64> = tags(&html, "bar")
        .into_iter()
        .map(|b| {
            (
                (b["data-key"].clone(), b["data-minute"].clone()),
                b["data-count"].parse().unwrap(),
            )
        })
        .collect();
    let expected: BTreeMap<(String, String), u64> = [
        ("198.51.100.7/32", "2026-01-01T00:00:00Z", 30),
        ("198.51.100.7/32", "2026-01-01T00:01:00Z", 10),
        ("192.0.2.77/32", "2026-01-01T00:02:00Z", 25),
    ]
    .into_iter()
    .map(|(k, m, c)| ((k.to_string(), m.to_string()), c))
    .collect();
    assert_eq!(bars, expected, "the shopper matched nothing");
    let lanes = tags(&html, "lane");
    let lane = |k: &str| lanes.iter().find(|l| l["data-key"] == k).unwrap();
    assert_eq!(lane("198.51.100.7/32")["data-matched"], "40");
    assert_eq!(lane("192.0.2.77/32")["data-matched"], "25");

    // The near miss: 25 of scan-burst's 30.
    let near = tags(&html, "near");
    let first = near.first().expect("a near miss");
    assert_eq!(
        (
            first["data-key"].as_str(),
            first["data-rule"].as_str(),
            first["data-max"].as_str(),
            first["data-threshold"].as_str()
        ),
        ("192.0.2.77/32", "scan-burst", "25", "30")
    );
    assert!(html.contains("25/30 (83 %)"));
    // The blocked scanner is no near miss.
    assert!(near.iter().all(|n| n["data-key"] != "198.51.100.7/32"));

    // Markup from the log is inert.
    assert!(!html.contains("<script>alert"), "unescaped path");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
}

#[test]
fn report_unreadable_input_is_exit_2() {
    let dir = TempDir::new("report-missing");
    let out = dir.join("r.html");
    let r = fail2waf(
        &[
            "report",
            "--output",
            out.to_str().unwrap(),
            "/nonexistent/x.log",
        ],
        b"",
    );
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("/nonexistent/x.log"));
    assert!(!out.exists());
}
