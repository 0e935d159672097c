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

/// The attributes of every tag whose class attribute starts with `class`,
/// data or not, in document order.
fn classed(html: &str, class: &str) -> Vec<BTreeMap<String, String>> {
    html.match_indices('<')
        .map(|(i, _)| attributes(&html[i + 1..i + html[i..].find('>').expect("closed tag")]))
        .filter(|a| {
            a.get("class")
                .is_some_and(|c| c.split(' ').next() == Some(class))
        })
        .collect()
}

/// A crafted ALB log around an outage of the API (`/api/*`) in minutes 2-4,
/// as (second, client, path, status), in time order:
/// - 8 shoppers get static pages (200) every 5 s until `until_secs`;
/// - 6 clients retry `/api/cart` and `/api/products?id=N` every 15 s
///   through the outage and get 502;
/// - 198.51.100.20 gets 12 × 502 on 12 distinct product URLs within minute
///   3: fuzz-5xx's count (10 in 2 min on 5 distinct URLs) is reached, only
///   the outage holds it back;
/// - 192.0.2.50 gets 10 × 404 in minute 1 (well under scan-burst);
/// - two clients get a 500 on `/api/search` in minute 0 and one a 503 on
///   `/login` in minute 5: too few clients for an outage.
fn outage_log(until_secs: u32) -> Vec<(u32, String, String, u16)> {
    let mut lines = Vec::new();
    let mut add = |t: u32, client: String, path: &str, status: u16| {
        lines.push((t, client, path.to_string(), status));
    };
    for t in (0..until_secs).step_by(5) {
        for s in 1..=8 {
            let page = ["/", "/index.html", "/static/app.css", "/about"][(t as usize / 5 + s) % 4];
            add(t, format!("10.0.0.{s}"), page, 200);
        }
    }
    for t in (120..300).step_by(15) {
        for v in 1..=6u32 {
            let path = if (t / 15 + v) % 2 == 0 {
                "/api/cart".to_string()
            } else {
                format!("/api/products?id={}", t + v)
            };
            add(t + v, format!("203.0.113.{v}"), &path, 502);
        }
    }
    for i in 0..12u32 {
        add(
            182 + 4 * i,
            "198.51.100.20".into(),
            &format!("/api/products?id={}", 1000 + i),
            502,
        );
    }
    for i in 0..10u32 {
        add(
            62 + 3 * i,
            "192.0.2.50".into(),
            &format!("/missing{i}"),
            404,
        );
    }
    add(7, "192.0.2.60".into(), "/api/search?q=a", 500);
    add(8, "192.0.2.61".into(), "/api/search?q=b", 500);
    add(311, "192.0.2.62".into(), "/login", 503);
    lines.sort_by_key(|l| l.0);
    lines
}

fn write_log(dir: &TempDir, lines: &[(u32, String, String, u16)]) -> String {
    let text: String = lines
        .iter()
        .map(|(t, c, p, s)| alb_line(&at(*t), c, "GET", p, *s) + "\n")
        .collect();
    let file = dir.join("outage.log");
    std::fs::write(&file, text).unwrap();
    file.to_str().unwrap().to_string()
}

#[test]
fn report_site_lane_counts_every_minute_and_shades_the_api_outage() {
    let dir = TempDir::new("report-outage");
    let lines = outage_log(7 * 60);
    let f = write_log(&dir, &lines);
    let html = report(&[&f], &dir.join("r.html"), &[]);
    assert!(detect_decisions(&[&f]).is_empty(), "nobody is blocked");

    // Requests, 4xx and 5xx per minute, counted from the lines.
    let mut expected: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
    for (t, _, _, status) in &lines {
        let e = expected
            .entry(at(t / 60 * 60).replace(".000000", ""))
            .or_default();
        e.0 += 1;
        e.1 += u64::from((400..500).contains(status));
        e.2 += u64::from((500..600).contains(status));
    }
    let minutes: BTreeMap<String, (u64, u64, u64)> = classed(&html, "minute")
        .into_iter()
        .map(|m| {
            let n = |k: &str| m[k].parse::<u64>().unwrap();
            (
                m["data-minute"].clone(),
                (n("data-requests"), n("data-4xx"), n("data-5xx")),
            )
        })
        .collect();
    assert_eq!(minutes, expected);
    assert_eq!(expected.len(), 7);
    let lane = &classed(&html, "sitelane")[0];
    assert_eq!(lane["data-requests"], lines.len().to_string());
    assert_eq!(lane["data-4xx"], "10");
    assert_eq!(lane["data-5xx"], (6 * 12 + 12 + 3).to_string());

    // One band: /api/* over minutes 2-4. The lone 5xx of minutes 0 and 5
    // (two clients, one client) are no outage.
    let bands = classed(&html, "outage");
    assert_eq!(bands.len(), 1, "{bands:?}");
    let b = &bands[0];
    assert_eq!(
        (
            b["data-section"].as_str(),
            b["data-from"].as_str(),
            b["data-until"].as_str(),
            b["data-minutes"].as_str(),
            b["data-clients"].as_str()
        ),
        (
            "/api/*",
            "2026-01-01T00:02:00Z",
            "2026-01-01T00:05:00Z",
            "3",
            "7"
        )
    );
    assert!(html.contains(">outage on /api/*</text>"));

    // The heavy victim reached fuzz-5xx's count; the outage held it back.
    let held: Vec<_> = tags(&html, "held");
    let victim = held
        .iter()
        .find(|n| n["data-key"] == "198.51.100.20/32" && n["data-rule"] == "fuzz-5xx")
        .unwrap_or_else(|| panic!("not held: {held:?}"));
    assert_eq!(victim["data-held"], "outage on /api/*");
    assert!(victim["data-max"].parse::<u64>().unwrap() >= 10);
    assert!(html.contains("held back: outage on /api/*</td>"));
}

#[test]
fn report_names_an_outage_the_engine_no_longer_holds() {
    // The same outage, then 40 more minutes of shopping: the engine's state
    // of minutes 2-4 is gone by the end; the site lane's band names it.
    let dir = TempDir::new("report-old-outage");
    let f = write_log(&dir, &outage_log(45 * 60));
    let html = report(&[&f], &dir.join("r.html"), &[]);
    let bands = classed(&html, "outage");
    assert_eq!(bands.len(), 1, "{bands:?}");
    let held = tags(&html, "held");
    let victim = held
        .iter()
        .find(|n| n["data-key"] == "198.51.100.20/32" && n["data-rule"] == "fuzz-5xx")
        .unwrap_or_else(|| panic!("not held: {held:?}"));
    assert_eq!(
        victim["data-held"],
        "outage on /api/* (site lane; window no longer in the engine)"
    );
}

#[test]
fn report_outage_sections_from_logs_are_escaped() {
    let dir = TempDir::new("report-outage-esc");
    let mut lines = Vec::new();
    for c in 1..=3u32 {
        lines.push((
            60 + c,
            format!("203.0.113.{c}"),
            "/<script>/x".to_string(),
            500,
        ));
    }
    let f = write_log(&dir, &lines);
    let html = report(&[&f], &dir.join("r.html"), &[]);
    assert!(!html.contains("<script>"), "unescaped section");
    let bands = classed(&html, "outage");
    assert_eq!(bands.len(), 1);
    assert_eq!(bands[0]["data-section"], "/&lt;script&gt;/*");
    assert!(html.contains("outage on /&lt;script&gt;/*"));
}

/// A user offender has its lane beside the networks: the stuffer's key
/// is drawn as blocked, with its decision; no address of it is.
#[test]
fn report_shows_a_blocked_user_beside_networks() {
    let dir = TempDir::new("report-users");
    let config = stuffer_app_logs(&dir);
    let out = dir.join("r.html");
    let (c, log) = (config.to_str().unwrap(), dir.join("app.log"));
    let html = report(
        &[log.to_str().unwrap()],
        &out,
        &["--config", c, "--format", "app"],
    );
    // One blocked lane, the user's; alice (404s on one path) and the
    // stuffer's addresses have lanes of their own, unblocked.
    let lane = r#"<g class="lane blocked" data-key=""#;
    let blocked: Vec<&str> = html
        .match_indices(lane)
        .map(|(i, _)| {
            let rest = &html[i + lane.len()..];
            &rest[..rest.find('"').unwrap()]
        })
        .collect();
    assert_eq!(blocked, ["user:ak_live_stuffer"]);
    assert!(html.contains(r#"<g class="lane" data-key="user:ak_live_alice""#));
    assert!(html.contains(r#"<g class="lane" data-key="203.0.100.1/32""#));
}
