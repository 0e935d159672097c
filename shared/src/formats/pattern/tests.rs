//! Tests of the regex formats against every `applog` fixture, VRL's
//! expected outputs, user-defined regexes, and mutated input.

use super::*;
use crate::formats::testutil::{epoch_ms, fixture, fixture_files, fixture_lines, ip};
use crate::formats::Format;
use chrono::DateTime;
use std::net::IpAddr;

/// Every file of `tests/fixtures/applog/`, and the test that covers it.
const COVERED: [&str; 9] = [
    "apache_combined_vrl.log",                  // apache_combined_vrl
    "apache_escaped_quote_fluentbit_pr566.log", // apache_escaped_quote_fluentbit
    "apache_httpd_docs_examples.log",           // apache_httpd_docs_examples
    "common_log_vrl.log",                       // common_log_vrl
    "nginx_combined_vrl.log",                   // nginx_combined_vrl
    "nginx_ingress_upstreaminfo_vrl.log",       // nginx_ingress_upstreaminfo
    "nginx_main_vrl.log",                       // nginx_main_preset, nginx_main_user_regex_xff
    "synthesized_tricky.log",                   // synthesized_tricky
    "vrl_tests.jsonl",                          // vrl_expected_outputs
];

/// What a line became, owned so it outlives the line.
#[derive(Debug, Clone, PartialEq)]
struct Got {
    time_ms: i64,
    peer: IpAddr,
    status: u16,
    method: String,
    path: String,
    host: String,
    ua: String,
    xff: Option<String>,
    user: Option<String>,
}

fn run(p: &mut PatternParser, line: &[u8]) -> Result<Option<Got>, &'static str> {
    match p.parse(line) {
        Ok(None) => Ok(None),
        Ok(Some(h)) => Ok(Some(Got {
            time_ms: h.time_ms,
            peer: h.peer,
            status: h.status,
            method: h.method.into_owned(),
            path: h.path.into_owned(),
            host: h.host.into_owned(),
            ua: h.user_agent.into_owned(),
            xff: h.forwarded_for.map(Cow::into_owned),
            user: h.user.map(Cow::into_owned),
        })),
        Err(e) => {
            assert!(!e.reason.is_empty());
            Err(e.field)
        }
    }
}

fn preset(name: &str) -> PatternParser {
    PatternParser::new(PatternSpec::preset(name).expect("preset exists"))
}

/// Epoch ms of a CLF time, computed with chrono (independently of the parser).
fn clf(s: &str) -> i64 {
    DateTime::parse_from_str(s, "%d/%b/%Y:%H:%M:%S %z")
        .expect("valid CLF time")
        .timestamp_millis()
}

/// An expected hit: ip, CLF time, status, method, path, user agent.
fn want(ip: &str, time: &str, status: u16, method: &str, path: &str, ua: &str) -> Got {
    Got {
        time_ms: clf(time),
        peer: ip.parse().expect("test ip"),
        status,
        method: method.into(),
        path: path.into(),
        host: String::new(),
        ua: ua.into(),
        xff: None,
        user: None,
    }
}

type Expect = Result<Got, &'static str>;

/// Parse every line of `file` with `parser`, compare with `expect` line by
/// line, and check the parsed / rejected counts.
fn check_file(file: &str, parser: &mut PatternParser, expect: &[Expect], counts: (usize, usize)) {
    let lines = fixture_lines(file);
    assert_eq!(lines.len(), expect.len(), "{file}: line count");
    let (mut parsed, mut rejected) = (0, 0);
    for (n, (line, exp)) in lines.iter().zip(expect).enumerate() {
        let got = run(parser, line);
        match (&got, exp) {
            (Ok(Some(g)), Ok(w)) => {
                assert_eq!(g, w, "{file}:{}", n + 1);
                parsed += 1;
            }
            (Err(f), Err(wf)) => {
                assert_eq!(f, wf, "{file}:{}: failing field", n + 1);
                rejected += 1;
            }
            _ => panic!("{file}:{}: got {got:?}, want {exp:?}", n + 1),
        }
    }
    assert_eq!((parsed, rejected), counts, "{file}: (parsed, rejected)");
}

const CHROME_MAC_111: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 \
                              (KHTML, like Gecko) Chrome/111.0.0.0 Safari/537.36";

#[test]
fn every_fixture_file_is_covered() {
    assert_eq!(
        fixture_files("applog"),
        COVERED.map(|f| format!("applog/{f}"))
    );
}

#[test]
fn nginx_combined_vrl() {
    let t = "31/Mar/2021:12:04:07 +0000";
    let bot = "04/Oct/2022:03:07:27 +0000";
    let expect = [
        Ok(want("172.17.0.1", t, 200, "GET", "/", "curl/7.75.0")),
        Ok(want(
            "0.0.0.0",
            "23/Apr/2021:14:59:24 +0000",
            200,
            "GET",
            "/my-path/manifest.json",
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 \
             (KHTML, like Gecko) Chrome/89.0.4389.90 Safari/537.36",
        )),
        // Empty request `""`: still a hit, with its 400.
        Ok(want(
            "0.0.0.0",
            "04/Oct/2022:04:34:49 +0000",
            400,
            "-",
            "-",
            "",
        )),
        // Binary (\xHH-escaped) request line: a 400 that counts.
        Ok(want("0.0.0.0", bot, 400, "-", "-", "")),
        Ok(want("0.0.0.0", bot, 400, "-", "-", "")),
        // Trailing `"$gzip_ratio"` field ignored.
        Ok(want(
            "172.17.0.1",
            "01/Apr/2021:12:02:31 +0000",
            404,
            "POST",
            "/not-found",
            "Mozilla/5.0 (Windows NT 6.1) AppleWebKit/537.36 (KHTML, like Gecko) \
             Chrome/72.0.3626.119 Safari/537.36",
        )),
    ];
    check_file(
        "applog/nginx_combined_vrl.log",
        &mut preset("nginx-combined"),
        &expect,
        (6, 0),
    );
}

#[test]
fn nginx_ingress_upstreaminfo() {
    // nginx-ingress appends 9 fields after the user agent: ignored.
    let w = || {
        Ok(want(
            "0.0.0.0",
            "18/Mar/2023:15:00:00 +0000",
            200,
            "GET",
            "/some/path",
            CHROME_MAC_111,
        ))
    };
    let expect = [w(), w(), w(), w()];
    check_file(
        "applog/nginx_ingress_upstreaminfo_vrl.log",
        &mut preset("nginx-combined"),
        &expect,
        (4, 0),
    );
}

#[test]
fn nginx_main_preset() {
    // nginx's default `main` format is combined + "$http_x_forwarded_for":
    // the preset ignores the trailing field, so xff stays None.
    let w = |ip: &str, t: &str| Ok(want(ip, t, 200, "GET", "/", "curl/8.11.1"));
    let t1 = "31/Dec/2024:17:32:06 +0000";
    let expect = [
        w("172.24.0.3", t1),
        w("172.24.0.3", t1),
        w("172.24.0.3", t1),
        w("172.24.0.2", "03/Jan/2025:16:42:58 +0000"),
    ];
    check_file(
        "applog/nginx_main_vrl.log",
        &mut preset("nginx-combined"),
        &expect,
        (4, 0),
    );
}

/// nginx `main`, `"$http_x_forwarded_for"` captured by a user regex.
const NGINX_MAIN_RE: &str = r#"^(?P<ip>\S+) - (?P<user>\S+) \[(?P<time>[^\]]+)\] "(?P<request>(?:[^"\\]|\\.)*)" (?P<status>\d{3}) \S+ "(?:[^"\\]|\\.)*" "(?P<ua>(?:[^"\\]|\\.)*)" "(?P<xff>(?:[^"\\]|\\.)*)"$"#;

#[test]
fn nginx_main_user_regex_xff() {
    let spec = PatternSpec::new("nginx-main", NGINX_MAIN_RE, "clf").unwrap();
    let mut p = PatternParser::new(spec);
    let t1 = "31/Dec/2024:17:32:06 +0000";
    let w = |ip: &str, t: &str, xff: Option<&str>, user: Option<&str>| {
        let mut g = want(ip, t, 200, "GET", "/", "curl/8.11.1");
        g.xff = xff.map(str::to_string);
        g.user = user.map(str::to_string);
        Ok(g)
    };
    let expect = [
        w("172.24.0.3", t1, None, None), // "-" → None
        w("172.24.0.3", t1, Some("172.24.0.1"), None),
        w("172.24.0.3", t1, Some("1.2.3.4, 10.10.1.1"), None),
        // The regex captures `$remote_user` as `user` (the presets do not).
        w(
            "172.24.0.2",
            "03/Jan/2025:16:42:58 +0000",
            Some("1.2.3.4, 10.10.1.1"),
            Some("alice"),
        ),
    ];
    check_file("applog/nginx_main_vrl.log", &mut p, &expect, (4, 0));
    // The combined lines lack the xff field: "does not match".
    assert_eq!(
        run(&mut p, &fixture_lines("applog/nginx_combined_vrl.log")[1]),
        Err("line")
    );
}

#[test]
fn synthesized_tricky() {
    let expect = [
        // IPv6 client, `\x22` in the UA unescaped.
        Ok(want(
            "2001:db8::1",
            "31/Mar/2021:12:04:07 +0000",
            404,
            "GET",
            "/wp-login.php",
            "Mozilla/5.0 \"quoted\"",
        )),
        // TLS handshake on a plain-HTTP port: counted as a 400.
        Ok(want(
            "203.0.113.7",
            "31/Mar/2021:12:04:08 +0000",
            400,
            "-",
            "-",
            "",
        )),
        // Spaces in the URI: split at the first and last space.
        Ok(want(
            "203.0.113.7",
            "31/Mar/2021:12:04:09 +0000",
            400,
            "GET",
            "/a b c",
            "",
        )),
        // `"-"` request.
        Ok(want(
            "203.0.113.7",
            "31/Mar/2021:12:04:10 +0000",
            408,
            "-",
            "-",
            "",
        )),
        // +0530 offset and `-` bytes.
        Ok(want(
            "198.51.100.9",
            "31/Mar/2021:12:04:11 +0530",
            503,
            "GET",
            "/index.html",
            "curl/8.0",
        )),
    ];
    check_file(
        "applog/synthesized_tricky.log",
        &mut preset("nginx-combined"),
        &expect,
        (5, 0),
    );
    // The offset was applied: 12:04:11 +0530 is 06:34:11 UTC.
    let line = &fixture_lines("applog/synthesized_tricky.log")[4];
    let got = run(&mut preset("nginx-combined"), line).unwrap().unwrap();
    assert_eq!(got.time_ms, epoch_ms("2021-03-31T06:34:11Z"));
    // A line cut inside a quoted field (the last line of a file being
    // written) is rejected, not misread.
    let cut = &fixture_lines("applog/synthesized_tricky.log")[0][..99];
    assert!(
        cut.ends_with(b"Mozilla/5.0 "),
        "{}",
        String::from_utf8_lossy(cut)
    );
    assert_eq!(run(&mut preset("nginx-combined"), cut), Err("line"));
    // Same file, as nginx-combined's twin for Apache.
    let mut apache = preset("apache-combined");
    assert!(fixture_lines("applog/synthesized_tricky.log")
        .iter()
        .all(|l| matches!(run(&mut apache, l), Ok(Some(_)))));
}

#[test]
fn apache_combined_vrl() {
    let t = "25/Feb/2021:12:44:08 +0000";
    let expect = [
        Ok(want(
            "224.92.49.50",
            t,
            401,
            "PATCH",
            "/one-to-one",
            "Mozilla/5.0 (X11; Linux i686; rv:5.0) Gecko/1945-10-12 Firefox/37.0",
        )),
        // Unquoted `-` referer and user agent (VRL accepts them).
        Ok(want("224.92.49.50", t, 401, "PATCH", "/one-to-one", "")),
        // `- - - [1234] - - - - - `: no quoted request.
        Err("line"),
    ];
    check_file(
        "applog/apache_combined_vrl.log",
        &mut preset("apache-combined"),
        &expect,
        (2, 1),
    );
}

#[test]
fn apache_escaped_quote_fluentbit() {
    // The client was redacted upstream to `x.x.x.x`: rejected, naming ip.
    check_file(
        "applog/apache_escaped_quote_fluentbit_pr566.log",
        &mut preset("apache-combined"),
        &[Err("ip")],
        (0, 1),
    );
    // With a real address the `\"` in the UA is unescaped.
    let line = String::from_utf8(
        fixture_lines("applog/apache_escaped_quote_fluentbit_pr566.log")[0].clone(),
    )
    .unwrap()
    .replace("x.x.x.x", "192.0.2.10");
    let got = run(&mut preset("apache-combined"), line.as_bytes())
        .unwrap()
        .unwrap();
    assert_eq!(
        got,
        want(
            "192.0.2.10",
            "16/Apr/2018:16:19:20 +0000",
            200,
            "POST",
            "/myURL",
            "Dalvik/2.1.0 (Linux; U; Android 5.1; Alba 10\" Build/LMY47I)",
        )
    );
}

#[test]
fn apache_httpd_docs_examples() {
    let t = "10/Oct/2000:13:55:36 -0700";
    let w = || Ok(want("127.0.0.1", t, 200, "GET", "/apache_pb.gif", ""));
    // `common` takes both (the combined line's extra fields are ignored).
    check_file(
        "applog/apache_httpd_docs_examples.log",
        &mut preset("common"),
        &[w(), w()],
        (2, 0),
    );
    // `apache-combined` needs referer and user agent.
    let combined = Ok(want(
        "127.0.0.1",
        t,
        200,
        "GET",
        "/apache_pb.gif",
        "Mozilla/4.08 [en] (Win98; I ;Nav)",
    ));
    check_file(
        "applog/apache_httpd_docs_examples.log",
        &mut preset("apache-combined"),
        &[Err("line"), combined],
        (1, 1),
    );
}

#[test]
fn common_log_vrl() {
    let w = || {
        Ok(want(
            "127.0.0.1",
            "10/Oct/2000:13:55:36 -0700",
            200,
            "GET",
            "/apache_pb.gif",
            "",
        ))
    };
    let expect = [
        w(),
        Err("line"), // - - - - - - -
        Err("ip"),   // - - - [-] "-" - -
        Err("line"), // not a common log line
        w(),
        Err("line"),
        Err("ip"),
        Err("ip"), // - - - [2000-10-10T20:55:36Z] "-" - -
        Err("line"),
        Err("line"), // - - - [1234] - - -  (request not quoted)
    ];
    check_file(
        "applog/common_log_vrl.log",
        &mut preset("common"),
        &expect,
        (2, 8),
    );
}

/// The value of `"key" => ...` in VRL's `btreemap!` text: a string (plain
/// or raw) or a number, as text.
fn vrl_value(want: &str, key: &str) -> Option<String> {
    let pat = format!("\"{key}\" => ");
    let rest = &want[want.find(&pat)? + pat.len()..];
    if let Some(raw) = rest.strip_prefix("r\"") {
        return Some(raw[..raw.find('"')?].to_string());
    }
    if let Some(q) = rest.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = q.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => return Some(out),
                '\\' => out.push(chars.next()?),
                c => out.push(c),
            }
        }
        return None;
    }
    Some(rest.chars().take_while(char::is_ascii_digit).collect())
}

fn vrl_timestamp(want: &str) -> Option<i64> {
    let pat = "parse_from_rfc3339(\"";
    let rest = &want[want.find(pat)? + pat.len()..];
    let ts = &rest[..rest.find('"')?];
    Some(DateTime::parse_from_rfc3339(ts).ok()?.timestamp_millis())
}

/// VRL's 41 test lines. Each goes to the preset for its VRL format; error
/// log formats are not access logs and are rejected, as are VRL's "valid"
/// lines that carry no client address.
#[test]
fn vrl_expected_outputs() {
    let text = String::from_utf8(fixture("applog/vrl_tests.jsonl")).unwrap();
    let (mut parsed, mut rejected) = (0, 0);
    let mut rejected_fields = Vec::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let (vparser, format) = (v["parser"].as_str().unwrap(), v["format"].as_str());
        let test = v["test"].as_str().unwrap();
        let input = v["line"].as_str().unwrap();
        let want = v["want"].as_str().unwrap();
        let preset_name = match (vparser, format) {
            ("vrl parse_nginx_log", _) => "nginx-combined",
            ("vrl parse_apache_log", Some("common")) | ("vrl parse_common_log", _) => "common",
            ("vrl parse_apache_log", _) => "apache-combined",
            other => panic!("unexpected parser {other:?}"),
        };
        let access = matches!(
            format,
            None | Some("common" | "combined" | "main" | "ingress_upstreaminfo")
        );
        let client = ["client", "remote_addr", "host"]
            .iter()
            .find_map(|k| vrl_value(want, k));
        let got = run(&mut preset(preset_name), input.as_bytes());
        let expect_hit = v["ok"].as_bool().unwrap() && access && client.is_some();
        if !expect_hit {
            let field = got.expect_err(test);
            rejected_fields.push(field);
            rejected += 1;
            continue;
        }
        let g = got.unwrap().unwrap_or_else(|| panic!("{test}: no hit"));
        parsed += 1;
        assert_eq!(g.peer, ip(&client.unwrap()), "{test}");
        let status: u16 = vrl_value(want, "status").unwrap().parse().unwrap();
        assert_eq!(g.status, status, "{test}");
        assert_eq!(Some(g.time_ms), vrl_timestamp(want), "{test}");
        // Method and path: VRL's own where it gives them, else split VRL's
        // request by hand; a request line that is not `TOKEN URL HTTP/x`
        // (empty, binary) is method and path `-`.
        let request = vrl_value(want, "request")
            .or_else(|| vrl_value(want, "message"))
            .unwrap();
        let parts: Vec<&str> = request.split(' ').collect();
        let (method, path) = match parts[..] {
            [m, p, v] if m.chars().all(|c| c.is_ascii_uppercase()) && v.starts_with("HTTP/") => {
                (m.to_string(), p.to_string())
            }
            _ => ("-".to_string(), "-".to_string()),
        };
        assert_eq!(
            g.method,
            vrl_value(want, "method").unwrap_or(method),
            "{test}"
        );
        assert_eq!(g.path, vrl_value(want, "path").unwrap_or(path), "{test}");
        // User agent: `-` and absent both mean empty.
        let ua = ["agent", "http_user_agent"]
            .iter()
            .find_map(|k| vrl_value(want, k))
            .filter(|a| a != "-")
            .unwrap_or_default();
        assert_eq!(g.ua, ua, "{test}");
    }
    assert_eq!((parsed, rejected), (18, 23));
    let count = |f: &str| rejected_fields.iter().filter(|&&x| x == f).count();
    assert_eq!((count("line"), count("ip")), (20, 3), "{rejected_fields:?}");
}

#[test]
fn user_capture_and_presets_ignore_remote_user() {
    // `%u` is `frank` on both lines; the presets leave the user out (on a
    // 401 it is the login tried, not the one who tried it).
    let lines = fixture_lines("applog/apache_httpd_docs_examples.log");
    assert!(lines[0].starts_with(b"127.0.0.1 - frank ["));
    for name in PRESET_NAMES {
        for line in &lines {
            if let Ok(Some(g)) = run(&mut preset(name), line) {
                assert_eq!(g.user, None, "{name}");
            }
        }
    }
    assert!(matches!(run(&mut preset("common"), &lines[0]), Ok(Some(_))));

    // A format of the application's own, with the user it logs.
    let re = r"^(?P<ip>\S+) (?P<user>\S*) (?P<time>\d+) (?P<status>\d{3})$";
    let mut p = PatternParser::new(PatternSpec::new("app", re, "epoch").unwrap());
    let user = |p: &mut PatternParser, line: &[u8]| run(p, line).unwrap().unwrap().user;
    assert_eq!(
        user(&mut p, b"192.0.2.1 frank 1700000000 401").as_deref(),
        Some("frank")
    );
    // Unescaped like the other text fields.
    assert_eq!(
        user(&mut p, br"192.0.2.1 caf\xC3\xA9\x22 1700000000 401").as_deref(),
        Some("café\"")
    );
    // `-` and empty name nobody.
    assert_eq!(user(&mut p, b"192.0.2.1 - 1700000000 401"), None);
    assert_eq!(user(&mut p, b"192.0.2.1  1700000000 401"), None);
    // The capture is optional: a group that did not take part is None.
    let re = r"^(?P<ip>\S+)(?: u=(?P<user>\S+))? (?P<time>\d+) (?P<status>\d{3})$";
    let mut p = PatternParser::new(PatternSpec::new("app", re, "epoch").unwrap());
    assert_eq!(user(&mut p, b"192.0.2.1 1700000000 200"), None);
    assert_eq!(
        user(&mut p, b"192.0.2.1 u=key-42 1700000000 200").as_deref(),
        Some("key-42")
    );
}

#[test]
fn user_regex_host_xff_iso8601() {
    // log_format edge '$host $remote_addr [$time_iso8601] "$request" $status
    //                  "$http_user_agent" "$http_x_forwarded_for"';
    let re = r#"^(?P<host>\S+) (?P<ip>\S+) \[(?P<time>[^\]]+)\] "(?P<request>[^"]*)" (?P<status>\d+) "(?P<user_agent>[^"]*)" "(?P<xff>[^"]*)"$"#;
    let spec = PatternSpec::new("edge", re, "iso8601").unwrap();
    assert_eq!(spec.name(), "edge");
    assert_eq!(spec.regex_source(), re);
    assert_eq!(spec.time_format(), TimeFormat::Iso8601);
    let mut p = PatternParser::new(spec);
    let g = run(
        &mut p,
        br#"shop.example.com 2001:db8::7 [2024-05-01T10:00:00+02:00] "POST /login?next=http://x/y HTTP/2.0" 401 "curl/8" "198.51.100.1, 10.0.0.2""#,
    )
    .unwrap()
    .unwrap();
    assert_eq!(g.host, "shop.example.com");
    assert_eq!(g.peer, ip("2001:db8::7"));
    assert_eq!(g.time_ms, epoch_ms("2024-05-01T08:00:00Z"));
    assert_eq!((g.status, g.method.as_str()), (401, "POST"));
    // A URL inside the query string is not taken for an absolute URL.
    assert_eq!(g.path, "/login?next=http://x/y");
    assert_eq!(g.ua, "curl/8");
    assert_eq!(g.xff.as_deref(), Some("198.51.100.1, 10.0.0.2"));

    // `-` host falls back to the URL's authority; `-` xff is None.
    let g = run(
        &mut p,
        br#"- 192.0.2.1 [2024-05-01T10:00:00Z] "GET http://proxy.example:8080/x?y HTTP/1.1" 404 "-" "-""#,
    )
    .unwrap()
    .unwrap();
    assert_eq!(
        (g.host.as_str(), g.path.as_str()),
        ("proxy.example", "/x?y")
    );
    assert_eq!((g.ua.as_str(), g.xff), ("", None));

    // Each failing capture names its field.
    let line =
        |ip: &str, t: &str, st: &str| format!(r#"h {ip} [{t}] "GET / HTTP/1.1" {st} "ua" "-""#);
    let ok_t = "2024-05-01T10:00:00Z";
    assert_eq!(
        run(&mut p, line("bogus", ok_t, "200").as_bytes()),
        Err("ip")
    );
    assert_eq!(
        run(&mut p, line("192.0.2.1", "yesterday", "200").as_bytes()),
        Err("time")
    );
    assert_eq!(
        run(&mut p, line("192.0.2.1", ok_t, "2000").as_bytes()),
        Err("status")
    );
    assert_eq!(
        run(&mut p, line("192.0.2.1", ok_t, "600").as_bytes()),
        Err("status")
    );
    assert!(run(&mut p, line("192.0.2.1", ok_t, "000").as_bytes()).is_ok());
    assert_eq!(run(&mut p, b"garbage"), Err("line"));
    assert_eq!(run(&mut p, b""), Ok(None));
    assert_eq!(run(&mut p, b"  \t"), Ok(None));
}

#[test]
fn user_regex_method_path_epoch() {
    // log_format t '$msec $remote_addr $status $request_method $uri';
    let re = r"^(?P<time>\S+) (?P<ip>\S+) (?P<status>\S+) (?P<method>\S+) (?P<path>\S+)$";
    let mut p = PatternParser::new(PatternSpec::new("t", re, "epoch").unwrap());
    let g = run(&mut p, b"1617192247.123 192.0.2.1 403 GET /admin")
        .unwrap()
        .unwrap();
    assert_eq!(g.time_ms, 1_617_192_247_123);
    assert_eq!(
        (g.method.as_str(), g.path.as_str(), g.host.as_str()),
        ("GET", "/admin", "")
    );
    assert_eq!(
        run(&mut p, b"1617192247 192.0.2.1 403 GET /")
            .unwrap()
            .unwrap()
            .time_ms,
        1_617_192_247_000
    );
    assert_eq!(run(&mut p, b"-1617192247 192.0.2.1 403 GET /"), Err("time"));
    assert_eq!(run(&mut p, b"1617192247. 192.0.2.1 403 GET /"), Err("time"));

    let mut p = PatternParser::new(PatternSpec::new("t", re, "epoch_ms").unwrap());
    let g = run(&mut p, b"1617192247123 192.0.2.1 403 GET /")
        .unwrap()
        .unwrap();
    assert_eq!(g.time_ms, 1_617_192_247_123);
    assert_eq!(
        run(&mut p, b"1617192247.123 192.0.2.1 403 GET /"),
        Err("time")
    );
    assert_eq!(
        run(&mut p, b"99999999999999999999 192.0.2.1 403 GET /"),
        Err("time")
    );
}

#[test]
fn user_regex_time_in_optional_group() {
    // A required capture that did not take part in the match is "missing".
    let re = r"^(?P<ip>\S+)(?: (?P<time>\d+))? (?P<status>\d+)$";
    let mut p = PatternParser::new(PatternSpec::new("o", re, "epoch").unwrap());
    assert!(run(&mut p, b"192.0.2.1 1700000000 200").unwrap().is_some());
    assert_eq!(
        p.parse(b"192.0.2.1 200"),
        Err(ParseError::new("time", "missing"))
    );
}

#[test]
fn spec_errors() {
    let err = PatternSpec::new("x", r"(?P<ip>\S+", "clf")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("invalid regex") && err.contains("unclosed group"),
        "{err}"
    );

    let err = PatternSpec::new("x", r"(?P<time>\S+) (?P<status>\d+)", "clf")
        .unwrap_err()
        .to_string();
    assert!(err.contains(r#"no named capture "ip""#), "{err}");
    let err = PatternSpec::new("x", r"(?P<ip>\S+) (?P<time>\S+)", "clf")
        .unwrap_err()
        .to_string();
    assert!(err.contains(r#"no named capture "status""#), "{err}");

    let err = PatternSpec::new(
        "x",
        r"(?P<ip>\S+) (?P<time>\S+) (?P<status>\d+) (?P<agent>.*)",
        "clf",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains(r#"unknown capture name "agent""#), "{err}");
    assert!(err.contains("user_agent"), "lists the known names: {err}");

    let err = PatternSpec::new(
        "x",
        r"(?P<ip>\S+) (?P<time>\S+) (?P<status>\d+)",
        "strftime",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains(r#"unknown time format "strftime""#), "{err}");
    assert!(err.contains("epoch_ms"), "{err}");

    let err = PatternSpec::new(
        "x",
        r"(?P<ip>\S+) (?P<time>\S+) (?P<status>\d+) (?P<ua>\S+) (?P<user_agent>\S+)",
        "clf",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("both"), "{err}");
    assert!(PatternSpec::new(" ", r"(?P<ip>\S+) (?P<time>\S+) (?P<status>\d+)", "clf").is_err());
    assert!(err.starts_with("format \"x\""), "{err}");
}

#[test]
fn presets_and_equality() {
    for name in PRESET_NAMES {
        let spec = PatternSpec::preset(name).unwrap();
        assert_eq!(spec.name(), name);
        assert_eq!(spec.time_format(), TimeFormat::Clf);
        assert!(spec.regex_source().starts_with('^'), "anchored");
        assert_eq!(Format::from_name(name), Some(Format::Pattern(spec.clone())));
        assert_eq!(Format::from_name(name).unwrap().name(), name);
        // Rebuilt from its parts, it is equal.
        let again = PatternSpec::new(name, spec.regex_source(), spec.time_format().name()).unwrap();
        assert_eq!(again, spec);
    }
    assert_eq!(PatternSpec::preset("combined"), None);
    assert_ne!(
        PatternSpec::preset("nginx-combined"),
        PatternSpec::preset("apache-combined")
    );
    let a = PatternSpec::preset("common").unwrap();
    let b = PatternSpec::new("common", a.regex_source(), "iso8601").unwrap();
    assert_ne!(a, b);
    for tf in ["clf", "iso8601", "epoch", "epoch_ms"] {
        assert_eq!(TimeFormat::from_name(tf).unwrap().to_string(), tf);
    }
}

#[test]
fn clf_times() {
    let ok = |s: &str| parse_clf_ms(s.as_bytes());
    assert_eq!(
        ok("10/Oct/2000:13:55:36 -0700"),
        Some(clf("10/Oct/2000:13:55:36 -0700"))
    );
    assert_eq!(
        ok("[10/Oct/2000:13:55:36 -0700]"),
        Some(clf("10/Oct/2000:13:55:36 -0700"))
    );
    assert_eq!(
        ok("29/Feb/2024:00:00:00 +0000"),
        Some(clf("29/Feb/2024:00:00:00 +0000"))
    );
    assert_eq!(ok("01/Jan/1970:00:30:00 +0100"), Some(-30 * 60_000));
    for bad in [
        "29/Feb/2023:00:00:00 +0000",
        "31/Apr/2023:00:00:00 +0000",
        "00/Apr/2023:00:00:00 +0000",
        "10/oct/2000:13:55:36 -0700",
        "10/Okt/2000:13:55:36 -0700",
        "10/Oct/2000:24:55:36 -0700",
        "10/Oct/2000:13:55:36 0700",
        "10/Oct/2000:13:55:36 -07:00",
        "10/Oct/2000:13:55:36 -0760",
        "1/Oct/2000:13:55:36 -0700",
        "10/Oct/2000:13:55:36",
        "-",
        "",
    ] {
        assert_eq!(ok(bad), None, "{bad}");
    }
}

#[test]
fn escapes_and_invalid_utf8() {
    assert_eq!(unescape(br#"a\"b\\c\x22d"#), "a\"b\\c\"d");
    assert!(matches!(unescape(b"plain"), Cow::Borrowed("plain")));
    // nginx escapes UTF-8 bytes one by one: they come back as text.
    assert_eq!(unescape(br"caf\xC3\xA9"), "café");
    // Broken escapes are kept; invalid UTF-8 is replaced.
    assert_eq!(unescape(br"\x2\q\"), "\\x2\\q\\");
    assert_eq!(unescape(br"\xFF"), "\u{FFFD}");
    // A raw invalid byte in the UA does not stop the preset from matching.
    let line =
        b"192.0.2.1 - - [31/Mar/2021:12:04:07 +0000] \"GET / HTTP/1.1\" 200 1 \"-\" \"bad\xFFua\"";
    let g = run(&mut preset("nginx-combined"), line).unwrap().unwrap();
    assert_eq!(g.ua, "bad\u{FFFD}ua");
}

/// Lines that exercise every branch of the presets.
fn sample_lines() -> Vec<Vec<u8>> {
    let mut lines = fixture_lines("applog/synthesized_tricky.log");
    lines.extend(fixture_lines("applog/nginx_combined_vrl.log"));
    lines.extend(
        fixture_lines("applog/nginx_ingress_upstreaminfo_vrl.log")
            .into_iter()
            .take(1),
    );
    lines.extend(fixture_lines(
        "applog/apache_escaped_quote_fluentbit_pr566.log",
    ));
    lines.extend(fixture_lines("applog/apache_httpd_docs_examples.log"));
    lines
}

fn all_parsers() -> Vec<PatternParser> {
    let mut v: Vec<PatternParser> = PRESET_NAMES.iter().map(|n| preset(n)).collect();
    v.push(PatternParser::new(
        PatternSpec::new("main", NGINX_MAIN_RE, "clf").unwrap(),
    ));
    v
}

#[test]
fn no_panic_on_prefixes_and_mutations() {
    let mut parsers = all_parsers();
    for line in sample_lines() {
        for p in &mut parsers {
            for end in 0..=line.len() {
                let _ = p.parse(&line[..end]);
            }
            for i in 0..line.len() {
                for b in [0x00, 0xFF, 0xC3, b'"', b'\\', b' ', b']'] {
                    let mut m = line.clone();
                    m[i] = b;
                    let _ = p.parse(&m);
                    m.insert(i, b);
                    let _ = p.parse(&m);
                }
            }
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
    #[test]
    fn no_panic_on_arbitrary_bytes(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
        for p in &mut all_parsers() {
            let _ = p.parse(&bytes);
        }
    }
}
