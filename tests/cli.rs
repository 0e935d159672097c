//! The `fail2waf` CLI, run as a user would.

use crate::util::*;

/// A scanner (40 404s on distinct paths in 40 s) among ordinary users.
fn scan_log() -> String {
    let mut s = String::new();
    for i in 0..40 {
        s += &alb_line(
            &at(i),
            "198.51.100.7",
            "GET",
            &format!("/admin{i}.php"),
            404,
        );
        s.push('\n');
        s += &alb_line(
            &at(i),
            &format!("192.0.2.{}", i % 5 + 1),
            "GET",
            "/index.html",
            200,
        );
        s.push('\n');
    }
    s
}

#[test]
fn detect_prints_a_json_decision_and_summary() {
    let dir = TempDir::new("cli-json");
    std::fs::write(dir.join("access.log"), scan_log()).unwrap();
    let out = fail2waf(&["detect", "--json", dir.0.to_str().unwrap()], b"");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&out);
    let decisions = of_type(&lines, "decision");
    assert_eq!(decisions.len(), 1, "{lines:?}");
    let d = decisions[0];
    assert_eq!(d["ip"], "198.51.100.7/32");
    assert_eq!(d["rule"], "scan-burst");
    // The 30th 404 arrived at second 29.
    assert_eq!(d["first_blocked"], "2026-01-01T00:00:29Z");
    assert_eq!(d["expires"], "2026-01-01T01:00:29Z");
    assert_eq!(d["evidence"]["matched"], 30);
    assert_eq!(d["evidence"]["samples"][0], "404 GET /admin0.php");
    let summary = of_type(&lines, "summary");
    assert_eq!(summary.len(), 1);
    assert_eq!(lines.last().unwrap()["type"], "summary");
    let s = summary[0];
    assert_eq!(
        (s["files"].as_u64(), s["lines_read"].as_u64()),
        (Some(1), Some(80))
    );
    assert_eq!(
        (s["lines_parsed"].as_u64(), s["lines_skipped"].as_u64()),
        (Some(80), Some(0))
    );
    assert_eq!(s["blocks"], 1);
}

#[test]
fn detect_prints_a_table_for_people() {
    let out = fail2waf(&["detect", "--format", "alb", "-"], scan_log().as_bytes());
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let row = text
        .lines()
        .find(|l| l.starts_with("198.51.100.7/32"))
        .expect(&text);
    assert!(row.contains("scan-burst") && row.contains("30 of"), "{row}");
    assert!(
        text.contains("80 lines read: 80 parsed, 0 skipped; 1 blocks"),
        "{text}"
    );
}

#[test]
fn unreadable_input_is_exit_2_with_one_line_naming_it() {
    let out = fail2waf(&["detect", "/no/such/file.log"], b"");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("/no/such/file.log"), "{err}");
    let out = fail2waf(&["detect", "--format", "nope", "-"], b"");
    assert_eq!(out.status.code(), Some(2));
    let out = fail2waf(&["detect"], b"");
    assert_eq!(out.status.code(), Some(2), "usage error");
}

#[test]
fn truncated_gzip_counts_every_line_before_the_damage_and_exits_2() {
    let dir = TempDir::new("cli-trunc");
    let mut text = String::new();
    for i in 0..5000u32 {
        text += &alb_line(
            &at(i % 3600),
            &format!("192.0.2.{}", i % 200 + 1),
            "GET",
            &format!("/p/{i}"),
            200,
        );
        text.push('\n');
    }
    let gz = gzip(text.as_bytes());
    let file = dir.join("cut.log.gz");
    std::fs::write(&file, &gz[..gz.len() / 2]).unwrap();
    let out = fail2waf(
        &[
            "detect",
            "--json",
            "--format",
            "alb",
            file.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cut.log.gz"), "{err}");
    let lines = json_lines(&out);
    let s = of_type(&lines, "summary")[0];
    let parsed = s["lines_parsed"].as_u64().unwrap();
    assert!(parsed > 1000 && parsed < 5000, "{parsed}");
    assert_eq!(s["files_damaged"], 1);
}

#[test]
fn hostile_bytes_never_crash_and_good_lines_still_count() {
    let mut data = Vec::new();
    data.extend_from_slice(b"\x00\x01\x02 binary \xff\xfe garbage\n");
    // Escape sequences in the path and user agent of the first 404.
    data.extend_from_slice("http 2026-01-01T00:00:00.000000Z app/x 198.51.100.9:1 - -1 -1 -1 404 - 1 1 \"GET http://h:80/\u{1b}[31m HTTP/1.1\" \"\u{1b}]0;pwn\u{7}\"\n".as_bytes());
    data.extend_from_slice(&vec![b'A'; 3 * 1024 * 1024]);
    data.push(b'\n');
    for i in 0..40 {
        data.extend_from_slice(
            alb_line(&at(i), "198.51.100.9", "GET", &format!("/x{i}"), 404).as_bytes(),
        );
        data.extend_from_slice(if i % 2 == 0 { b"\r\n" } else { b"\n" });
        data.extend_from_slice(b"http 2026-01-01T00:00:00Z \"\x00\n");
    }
    // A line from the far future: parsed, but counted for nobody.
    data.extend_from_slice(
        alb_line(
            "9999-12-31T00:00:00.000000Z",
            "198.51.100.9",
            "GET",
            "/late",
            404,
        )
        .as_bytes(),
    );
    data.push(b'\n');
    let out = fail2waf(&["detect", "--json", "--format", "alb", "-"], &data);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&out);
    let s = of_type(&lines, "summary")[0];
    assert_eq!(s["lines_read"], 84);
    assert_eq!(s["lines_parsed"], 42);
    assert_eq!(s["skip_reasons"]["line: too long"], 1);
    assert_eq!(s["not_counted"], serde_json::json!({"future": 1}));
    let d = of_type(&lines, "decision")[0];
    assert_eq!(d["ip"], "198.51.100.9/32");
    // Evidence keeps the attacker's bytes, escaped: nothing printed carries
    // a raw control character.
    assert_eq!(d["evidence"]["samples"][0], "404 GET /\\u{1b}[31m");
    assert_eq!(d["evidence"]["user_agent"], "\\u{1b}]0;pwn\\u{7}");
    assert!(!out.stdout.iter().any(|&b| b < 0x20 && b != b'\n'));
}

#[test]
fn empty_and_header_only_files_are_fine() {
    for (name, content) in [
        ("empty.log", Vec::new()),
        (
            "E2EXAMPLE.2026-01-01-00.abcd.gz",
            gzip(b"#Version: 1.0\n#Fields: date time c-ip sc-status\n"),
        ),
    ] {
        let dir = TempDir::new("cli-empty");
        let f = dir.join(name);
        std::fs::write(&f, content).unwrap();
        let out = fail2waf(
            &[
                "detect",
                "--json",
                "--format",
                "cloudfront",
                f.to_str().unwrap(),
            ],
            b"",
        );
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lines = json_lines(&out);
        assert_eq!(of_type(&lines, "summary")[0]["lines_parsed"], 0);
    }
}

#[test]
fn state_dir_persists_windows_and_counts_each_file_once() {
    let dir = TempDir::new("cli-state");
    let state = dir.join("state");
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    // 20 404s in each of two files: neither crosses 30 alone.
    let part = |from: u32| -> String {
        (from..from + 20)
            .map(|i| alb_line(&at(i), "198.51.100.7", "GET", &format!("/w{i}"), 404) + "\n")
            .collect()
    };
    std::fs::write(logs.join("a.log"), part(0)).unwrap();
    let run = |p: &std::path::Path| {
        let out = fail2waf(
            &[
                "detect",
                "--json",
                "--state",
                state.to_str().unwrap(),
                p.to_str().unwrap(),
            ],
            b"",
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        json_lines(&out)
    };
    assert!(of_type(&run(&logs), "decision").is_empty());
    // The same file again: counted once, still no block.
    let again = run(&logs);
    assert!(of_type(&again, "decision").is_empty());
    assert_eq!(of_type(&again, "summary")[0]["files_already_counted"], 1);
    // The second half arrives in a new file: the window spans both runs.
    std::fs::write(logs.join("b.log"), part(20)).unwrap();
    let third = run(&logs);
    let d = of_type(&third, "decision");
    assert_eq!(d.len(), 1, "{third:?}");
    assert_eq!(d[0]["first_blocked"], "2026-01-01T00:00:29Z");
    let ledger: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state.join("ledger.json")).unwrap()).unwrap();
    assert!(ledger["blocks"]["198.51.100.7/32"].is_object(), "{ledger}");
}

#[test]
fn config_check_names_line_and_field() {
    let dir = TempDir::new("cli-config");
    let good = dir.join("good.toml");
    std::fs::write(&good, "allow = [\"192.0.2.0/24\"]\n").unwrap();
    let out = fail2waf(&["config", "check", good.to_str().unwrap()], b"");
    assert!(out.status.success());
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "[[rules]]\nname = \"x\"\nwindow = \"1m\"\nthreshold = 5\nstatuss = [\"404\"]\n",
    )
    .unwrap();
    let out = fail2waf(&["config", "check", bad.to_str().unwrap()], b"");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("bad.toml") && err.contains("line 5") && err.contains("statuss"),
        "{err}"
    );
}

#[test]
fn every_fixture_directory_runs_without_a_crash() {
    for (dir, min_parsed) in [("alb", 50), ("waf", 8), ("cloudfront", 20), ("applog", 20)] {
        let out = fail2waf(&["detect", "--json", fixture(dir).to_str().unwrap()], b"");
        // Exit 2 is fine (some fixtures are deliberately damaged); a panic is not.
        assert!(
            matches!(out.status.code(), Some(0 | 2)),
            "{dir}: {:?}",
            out.status
        );
        let lines = json_lines(&out);
        let s = of_type(&lines, "summary")[0];
        assert!(
            s["lines_parsed"].as_u64().unwrap() >= min_parsed,
            "{dir}: {s}"
        );
    }
}

/// Application logs as Fluent Bit ships them (the app's JSON line in
/// `log`): a credential stuffer with one API key through 500 addresses is
/// blocked by its key within a minute; none of its addresses is, and
/// neither is a user whose one page keeps answering 404. `explain`
/// shows the key's windows; `block --user` / `unblock --user` act on it.
#[test]
fn json_app_logs_block_a_user_not_its_addresses() {
    let dir = TempDir::new("cli-users");
    let config = stuffer_app_logs(&dir);
    let state = dir.join("state");
    let args = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        v.extend(["--config".into(), config.display().to_string()]);
        v
    };
    let detect = args(&[
        "detect",
        "--json",
        "--format",
        "app",
        "--state",
        state.to_str().unwrap(),
        dir.join("app.log").to_str().unwrap(),
    ]);
    let out = fail2waf(&detect.iter().map(String::as_str).collect::<Vec<_>>(), b"");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&out);
    let decisions = of_type(&lines, "decision");
    assert_eq!(decisions.len(), 1, "{lines:?}");
    let d = decisions[0];
    assert_eq!(
        (d["key"].as_str(), d["user"].as_str()),
        (Some("user:ak_live_stuffer"), Some("ak_live_stuffer"))
    );
    assert!(d["ip"].is_null());
    assert_eq!(d["rule"], "user-auth");
    assert_eq!(d["first_blocked"], "2026-01-01T00:00:00Z");
    assert!(
        d["reason"]
            .as_str()
            .unwrap()
            .contains("10 addresses; e.g. 401 POST /api/login from 203.0.100."),
        "{d}"
    );

    let run = |extra: &[&str]| {
        let a = args(
            &[
                extra,
                &[
                    "--state",
                    state.to_str().unwrap(),
                    "--now",
                    "2026-01-01T00:05:00Z",
                ],
            ]
            .concat(),
        );
        let out = fail2waf(&a.iter().map(String::as_str).collect::<Vec<_>>(), b"");
        assert!(
            out.status.success(),
            "{extra:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let explain = run(&["explain", "--user", "ak_live_stuffer"]);
    assert!(
        explain.contains("user-auth") && explain.contains("blocked as user:ak_live_stuffer"),
        "{explain}"
    );
    assert!(
        !explain.contains("scan-burst"),
        "address rules say nothing of a user: {explain}"
    );
    let status = run(&["status"]);
    assert!(
        status.contains("1 users") && status.contains("user:ak_live_stuffer"),
        "{status}"
    );
    run(&[
        "block",
        "--user",
        "ak_live_alice",
        "--ttl",
        "10m",
        "--reason",
        "test",
    ]);
    assert!(run(&["status"]).contains("2 users"));
    run(&["unblock", "--user", "ak_live_alice", "--reason", "test"]);
    assert!(run(&["status"]).contains("1 users"));
}
