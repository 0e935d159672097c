//! Manual control and inspection: explain, block, unblock, status, sync.

use crate::util::*;

/// A state directory in which 198.51.100.7 is blocked (40 404s in 40 s)
/// and 192.0.2.9 came close (12 404s).
fn state_with_a_block() -> (TempDir, String) {
    let mut log = String::new();
    for i in 0..40 {
        log += &alb_line(&at(i), "198.51.100.7", "GET", &format!("/p{i}"), 404);
        log.push('\n');
    }
    for i in 0..12 {
        log += &alb_line(&at(i), "192.0.2.9", "GET", &format!("/q{i}"), 404);
        log.push('\n');
    }
    state_of(&log)
}

/// A local state directory after `detect --state` read `log`.
fn state_of(log: &str) -> (TempDir, String) {
    let dir = TempDir::new("manage");
    std::fs::write(dir.join("a.log"), log).unwrap();
    let state = dir.join("state").to_str().unwrap().to_string();
    let out = fail2waf(
        &[
            "detect",
            "--state",
            &state,
            dir.join("a.log").to_str().unwrap(),
        ],
        b"",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (dir, state)
}

const NOW: &str = "2026-01-01T00:10:00Z";

fn json(args: &[&str]) -> serde_json::Value {
    let out = fail2waf(args, b"");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn status_lists_active_blocks_and_capacity() {
    let (_d, state) = state_with_a_block();
    let s = json(&["status", "--state", &state, "--now", NOW, "--json"]);
    assert_eq!(
        (s["active_v4"].as_u64(), s["active_v6"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(s["capacity_v4"], 10000);
    assert_eq!(s["blocks"][0]["ip"], "198.51.100.7/32");
    assert_eq!(s["oldest"], "2026-01-01T00:00:29Z");
    assert!(s["incident_until"].is_null());
    // Two hours later the block has ended.
    let later = json(&[
        "status",
        "--state",
        &state,
        "--now",
        "2026-01-01T02:00:00Z",
        "--json",
    ]);
    assert_eq!(later["active_v4"], 0);
}

#[test]
fn explain_shows_windows_thresholds_and_the_block() {
    let (_d, state) = state_with_a_block();
    let e = json(&[
        "explain",
        "198.51.100.7",
        "--state",
        &state,
        "--now",
        NOW,
        "--json",
    ]);
    assert_eq!(e["key"], "198.51.100.7/32");
    assert_eq!(e["block"]["rule"], "scan-burst");
    assert_eq!(e["offenses"], 1);
    let burst = e["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == "scan-burst")
        .unwrap();
    assert_eq!(burst["threshold"], 30);
    assert!(
        burst["busiest_window_matched"].as_u64().unwrap() >= 30,
        "{burst}"
    );
    // The near miss: counted, not blocked.
    let n = json(&[
        "explain",
        "192.0.2.9",
        "--state",
        &state,
        "--now",
        NOW,
        "--json",
    ]);
    assert!(n["block"].is_null());
    let burst = n["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == "scan-burst")
        .unwrap();
    assert_eq!(burst["busiest_window_matched"], 12);
    // People read text.
    let out = fail2waf(
        &["explain", "198.51.100.7", "--state", &state, "--now", NOW],
        b"",
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("blocked as 198.51.100.7/32 by scan-burst"),
        "{text}"
    );
}

#[test]
fn manual_block_and_unblock_are_audited_and_synced() {
    let (_d, state) = state_with_a_block();
    let b = json(&[
        "block",
        "203.0.113.77",
        "--ttl",
        "2h",
        "--reason",
        "abuse report #12",
        "--state",
        &state,
        "--now",
        NOW,
        "--json",
    ]);
    assert_eq!(b["ip"], "203.0.113.77/32");
    assert_eq!(b["until"], "2026-01-01T02:10:00Z");
    // Without IP sets, sync says what WAF should hold.
    let s = json(&["sync", "--state", &state, "--now", NOW, "--json"]);
    assert_eq!(
        s["v4"],
        serde_json::json!(["198.51.100.7/32", "203.0.113.77/32"])
    );
    let u = json(&[
        "unblock",
        "198.51.100.7",
        "--reason",
        "customer, ticket 9",
        "--state",
        &state,
        "--now",
        NOW,
        "--json",
    ]);
    assert_eq!(u["was_blocked_by"], "scan-burst");
    let st = json(&["status", "--state", &state, "--now", NOW, "--json"]);
    assert_eq!(st["blocks"].as_array().unwrap().len(), 1);
    assert_eq!(st["manual_actions"], 2);
    let e = json(&[
        "explain",
        "198.51.100.7",
        "--state",
        &state,
        "--now",
        NOW,
        "--json",
    ]);
    assert!(e["block"].is_null());
    assert_eq!(e["audit"][0]["action"], "unblock");
    assert_eq!(e["audit"][0]["reason"], "customer, ticket 9");
    // Safety holds for manual blocks too.
    let out = fail2waf(
        &["block", "10.0.0.0/8", "--reason", "x", "--state", &state],
        b"",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be blocked"));
    let out = fail2waf(&["status", "--state", "/no/such/dir"], b"");
    assert_eq!(out.status.code(), Some(2));
}

/// A shopper retrying through an outage of the API: `explain` shows the
/// 5xx it counted and says that the outage held it back.
#[test]
fn explain_says_an_outage_held_a_client_back() {
    let mut log = String::new();
    // Six shoppers: pages work, the API answers 502 from minute 1 to 3.
    for s in 0..6u32 {
        for i in 0..36u32 {
            let t = 60 + i * 5 + s;
            let ip = format!("192.0.2.{}", 20 + s);
            log += &alb_line(&at(t), &ip, "GET", "/", 200);
            log.push('\n');
            let path = format!("/api/products?id={}", i * 7 + s);
            log += &alb_line(&at(t), &ip, "GET", &path, 502);
            log.push('\n');
        }
    }
    let (_d, state) = state_of(&log);
    let e = json(&["explain", "192.0.2.20", "--state", &state, "--json"]);
    assert!(e["block"].is_null(), "{e}");
    let fuzz = e["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == "fuzz-5xx")
        .unwrap();
    assert!(
        fuzz["busiest_window_matched"].as_u64().unwrap() >= 10,
        "{fuzz}"
    );
    assert_eq!(fuzz["held_back"], "outage on /api/*", "{fuzz}");
    let text = fail2waf(&["explain", "192.0.2.20", "--state", &state], b"");
    assert!(String::from_utf8_lossy(&text.stdout).contains("held back: outage on /api/*"));
}
