//! Beyond addresses: users blocked through the WAF regex pattern set,
//! GuardDuty findings as a trigger, and an EventBridge event for every
//! decision, all against moto (S3, WAFv2, EventBridge → SQS) and the
//! function binaries as built.

use crate::aws::moto_sdk;
use crate::aws::{cli, response, run_function, s3_event, Account};
use crate::moto::{moto, unique};
use fail2waf_core::aws::notify::Notifier;
use fail2waf_core::clock::wall_ms;
use serde_json::{json, Value};

/// An event bus whose every `fail2waf` event lands in an SQS queue.
struct Inbox {
    bus: String,
    queue_url: String,
}

impl Inbox {
    fn new() -> Inbox {
        let m = moto();
        let bus = unique("bus");
        let queue = unique("inbox");
        let (s, v) = m.events("CreateEventBus", &json!({"Name": bus}));
        assert_eq!(s, 200, "{v}");
        let (s, v) = m.sqs("CreateQueue", &json!({"QueueName": queue}));
        assert_eq!(s, 200, "{v}");
        let queue_url = v["QueueUrl"].as_str().unwrap().to_string();
        let rule = unique("rule");
        let (s, v) = m.events(
            "PutRule",
            &json!({"Name": rule, "EventBusName": bus, "EventPattern": json!({"source": ["fail2waf"]}).to_string()}),
        );
        assert_eq!(s, 200, "{v}");
        let (s, v) = m.events(
            "PutTargets",
            &json!({"Rule": rule, "EventBusName": bus, "Targets": [{"Id": "q", "Arn": format!("arn:aws:sqs:us-east-1:123456789012:{queue}")}]}),
        );
        assert_eq!((s, &v["FailedEntryCount"]), (200, &json!(0)), "{v}");
        Inbox { bus, queue_url }
    }

    /// Every event delivered so far (and taken off the queue).
    fn take(&self) -> Vec<Value> {
        let mut out = Vec::new();
        loop {
            let (s, v) = moto().sqs(
                "ReceiveMessage",
                &json!({"QueueUrl": self.queue_url, "MaxNumberOfMessages": 10}),
            );
            assert_eq!(s, 200, "{v}");
            let Some(msgs) = v["Messages"].as_array().filter(|m| !m.is_empty()) else {
                return out;
            };
            for msg in msgs {
                out.push(serde_json::from_str(msg["Body"].as_str().unwrap()).unwrap());
                moto().sqs(
                    "DeleteMessage",
                    &json!({"QueueUrl": self.queue_url, "ReceiptHandle": msg["ReceiptHandle"]}),
                );
            }
        }
    }
}

/// A regex pattern set for blocked users.
struct PatternSet {
    name: String,
    id: String,
    arn: String,
}

impl PatternSet {
    fn new() -> PatternSet {
        let (s, v) = moto().wafv2(
            "CreateRegexPatternSet",
            &json!({"Name": unique("fail2waf-users"), "Scope": "REGIONAL", "Description": "fail2waf: blocked users", "RegularExpressionList": []}),
        );
        assert_eq!(s, 200, "{v}");
        let field = |f: &str| v["Summary"][f].as_str().unwrap().to_string();
        PatternSet {
            name: field("Name"),
            id: field("Id"),
            arn: field("ARN"),
        }
    }

    /// The regexes and the description.
    fn get(&self) -> (Vec<String>, String) {
        let (s, v) = moto().wafv2(
            "GetRegexPatternSet",
            &json!({"Name": self.name, "Scope": "REGIONAL", "Id": self.id}),
        );
        assert_eq!(s, 200, "{v}");
        let set = &v["RegexPatternSet"];
        let list = set["RegularExpressionList"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["RegexString"].as_str().unwrap().to_string())
            .collect();
        (
            list,
            set["Description"].as_str().unwrap_or_default().to_string(),
        )
    }
}

/// A configuration object in the state bucket; its `s3://` URI.
fn put_config(acct: &Account, text: &str) -> String {
    let key = format!("config/{}.toml", unique("cfg"));
    let r = moto().s3(
        "PUT",
        &format!("/{}/{key}", acct.state),
        &[],
        text.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    format!("s3://{}/{key}", acct.state)
}

fn finding(name: &str) -> Value {
    let path = format!(
        "{}/tests/data/guardduty/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// The documented sample findings through the alarm function: every
/// family with a remote address blocks it (medium 6 h, high 1 day), the
/// others are skipped with a reason and a metric, a re-delivered finding
/// changes nothing, and each block is announced on the event bus.
#[test]
fn guardduty_findings_block_their_remote_addresses_once_and_are_announced() {
    let acct = Account::new();
    let inbox = Inbox::new();
    let config = put_config(&acct, "[guardduty]\nsamples = true\nmin_severity = 4.0\n");
    let env = acct.env(&[
        ("FAIL2WAF_CONFIG", &config),
        ("FAIL2WAF_EVENT_BUS", &inbox.bus),
    ]);
    let names = [
        "aws_api_call",
        "kubernetes_api_call",
        "rds_login_attempt",
        "rds_login_attempt_anomalous_login",
        "port_probe",              // severity 2: under min_severity
        "dns_request_no_remote",   // no remote address
        "network_connection_ipv6", // our instance is the actor
        "aws_api_call",            // re-delivered
    ];
    let events: Vec<Value> = names.iter().map(|n| finding(n)).collect();
    let (out, stdout) = run_function("alarm", &env, &events);
    let r: Vec<&Value> = out.iter().map(response).collect();
    let blocked = |i: usize| -> Vec<String> {
        r[i]["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b[0].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(blocked(0), ["203.0.113.20/32"], "{}", r[0]);
    assert_eq!(blocked(1), ["203.0.113.30/32"]);
    assert_eq!(blocked(2), ["203.0.113.40/32"]);
    assert_eq!(blocked(3), ["203.0.113.41/32"]);
    for (i, why) in [
        (4, "under guardduty.min_severity"),
        (5, "DNS_REQUEST"),
        (6, "actor"),
        (7, "already acted on"),
    ] {
        assert!(blocked(i).is_empty(), "{}", r[i]);
        let skipped = r[i]["skipped"].as_str().unwrap_or_default();
        assert!(skipped.contains(why), "{i}: {skipped}");
    }
    assert_eq!(
        acct.ip_set(&acct.v4),
        [
            "203.0.113.20/32",
            "203.0.113.30/32",
            "203.0.113.40/32",
            "203.0.113.41/32"
        ]
        .map(String::from)
        .into()
    );
    // The finding in the ledger: its rule, its evidence, a ban by band.
    let ledger = acct.state_object("ledger.json").unwrap();
    let b = &ledger["blocks"]["203.0.113.20/32"];
    assert_eq!(
        b["rule"],
        "guardduty:UnauthorizedAccess:IAMUser/TorIPCaller"
    );
    assert_eq!(b["evidence"]["finding"]["severity"], 5.0);
    assert_eq!(
        b["until_ms"].as_i64().unwrap() - b["since_ms"].as_i64().unwrap(),
        6 * 3_600_000
    );
    let b = &ledger["blocks"]["203.0.113.40/32"];
    assert_eq!(
        b["until_ms"].as_i64().unwrap() - b["since_ms"].as_i64().unwrap(),
        86_400_000
    );
    assert!(stdout.contains("\"FindingsSkipped\":1"), "{stdout}");
    // One event per block, read back through the rule and the queue.
    let got = inbox.take();
    let mut keys: Vec<&str> = got
        .iter()
        .map(|e| e["detail"]["key"].as_str().unwrap())
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "203.0.113.20/32",
            "203.0.113.30/32",
            "203.0.113.40/32",
            "203.0.113.41/32"
        ]
    );
    let e = got
        .iter()
        .find(|e| e["detail"]["key"] == "203.0.113.40/32")
        .unwrap();
    assert_eq!(
        (e["source"].as_str(), e["detail-type"].as_str()),
        (Some("fail2waf"), Some("fail2waf Block"))
    );
    let d = &e["detail"];
    assert_eq!(
        (d["action"].as_str(), d["kind"].as_str()),
        (Some("block"), Some("network"))
    );
    assert_eq!(
        d["rule"],
        "guardduty:CredentialAccess:RDS/AnomalousBehavior.SuccessfulBruteForce"
    );
    assert!(
        d["reason"]
            .as_str()
            .unwrap()
            .starts_with("GuardDuty finding CredentialAccess:RDS"),
        "{d}"
    );
    assert_eq!(d["dry_run"], false);
}

/// With the defaults, a sample finding (CreateSampleFindings) blocks
/// nobody, and a finding without a remote address is an answer, not an
/// error: the function never fails on a well-formed finding.
#[test]
fn guardduty_defaults_leave_sample_findings_alone() {
    let acct = Account::new();
    let (out, _) = run_function("alarm", &acct.env(&[]), &[finding("rds_login_attempt")]);
    let r = response(&out[0]);
    assert!(r["skipped"].as_str().unwrap().contains("sample"), "{r}");
    assert!(acct.ip_set(&acct.v4).is_empty());
}

/// A WAF log line of `ip` sending `key` in `x-api-key`, which WAF's
/// managed rules blocked.
fn waf_line(ms: i64, ip: &str, key: &str, i: u32) -> String {
    json!({
        "timestamp": ms, "formatVersion": 1,
        "webaclId": "arn:aws:wafv2:us-east-1:123456789012:regional/webacl/shop/1",
        "terminatingRuleId": "AWS-AWSManagedRulesSQLiRuleSet", "terminatingRuleType": "MANAGED_RULE_GROUP",
        "action": "BLOCK", "terminatingRuleMatchDetails": [],
        "httpSourceName": "ALB", "httpSourceId": "123456789012-app/shop/1",
        "ruleGroupList": [], "rateBasedRuleList": [], "nonTerminatingMatchingRules": [],
        "requestHeadersInserted": null, "responseCodeSent": null,
        "httpRequest": {
            "clientIp": ip, "country": "NL",
            "headers": [{"name": "Host", "value": "shop.example"}, {"name": "X-Api-Key", "value": key}],
            "uri": "/api/search", "args": format!("q=1'+OR+{i}=1--"), "httpVersion": "HTTP/1.1",
            "httpMethod": "GET", "requestId": format!("req-{i}")
        }
    })
    .to_string()
}

/// An injection tool with one API key through 60 addresses, each request
/// blocked by WAF's managed rules: the ingest function blocks the key in
/// the regex pattern set (anchored, escaped), announces it as a user, and
/// blocks no address; when the ban ends, expiry empties the set and is
/// announced too. A user on the allow-list is never blocked.
#[test]
fn a_user_waf_keeps_blocking_goes_into_the_regex_pattern_set() {
    let acct = Account::new();
    let inbox = Inbox::new();
    let set = PatternSet::new();
    let arn = set.arn.clone();
    let config = put_config(
        &acct,
        "[users]\nheader = \"x-api-key\"\nallow = [\"svc-*\"]\n",
    );
    let env = acct.env(&[
        ("FAIL2WAF_CONFIG", &config),
        ("FAIL2WAF_EVENT_BUS", &inbox.bus),
        ("FAIL2WAF_USER_PATTERN_SET_ARN", &arn),
    ]);
    let t0 = wall_ms() - 120_000;
    let mut lines = Vec::new();
    for i in 0..60u32 {
        let ip = format!("198.51.100.{}", i + 1);
        lines.push(waf_line(t0 + i64::from(i) * 500, &ip, "ak_live_4f.x+y", i));
        lines.push(waf_line(
            t0 + i64::from(i) * 500,
            &format!("192.0.2.{}", i + 1),
            "svc-monitor",
            i,
        ));
    }
    let key = format!(
        "AWSLogs/123456789012/WAFLogs/us-east-1/shop/2026/01/01/00/00/{}.log.gz",
        unique("waf")
    );
    acct.put_log(&key, &lines);
    let (out, _) = run_function("ingest", &env, &[s3_event(&acct.logs, &[&key])]);
    response(&out[0]);
    let (list, description) = set.get();
    assert_eq!(list, [r"^(?:ak_live_4f\.x\+y)$"]);
    assert_eq!(
        description, "fail2waf: blocked users",
        "the description is sent back"
    );
    assert!(
        acct.ip_set(&acct.v4).is_empty(),
        "no address is blocked for a user"
    );
    let got = inbox.take();
    assert_eq!(got.len(), 1, "{got:?}");
    let d = &got[0]["detail"];
    assert_eq!(
        (d["kind"].as_str(), d["user"].as_str(), d["rule"].as_str()),
        (
            Some("user"),
            Some("ak_live_4f.x+y"),
            Some("user-waf-blocks")
        )
    );
    assert!(d["network"].is_null());
    assert!(d["reason"].as_str().unwrap().contains("addresses"), "{d}");

    // Two hours on (wall clock), the expire function's reconcile.
    let mut svc = acct.service(&[
        ("FAIL2WAF_CONFIG", &config),
        ("FAIL2WAF_USER_PATTERN_SET_ARN", &arn),
    ]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (removed, rep) = rt
        .block_on(async {
            svc.set_notifier(Some(Notifier::new(&moto_sdk().await, &inbox.bus, false)));
            svc.expire(wall_ms() + 2 * 3_600_000, "test").await
        })
        .unwrap();
    assert_eq!(removed.len(), 1);
    assert_eq!((rep.users, rep.writes), (0, 1), "{rep:?}");
    assert!(set.get().0.is_empty());
    let got = inbox.take();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["detail-type"], "fail2waf Expiry");
    assert_eq!(got[0]["detail"]["key"], "user:ak_live_4f.x+y");
}

/// `fail2waf block --user` / `unblock --user` on the deployed state: the
/// user goes into the regex pattern set and out again, and both actions
/// are announced with who did them and why.
#[test]
fn the_cli_blocks_and_unblocks_a_user_and_announces_both() {
    let acct = Account::new();
    let inbox = Inbox::new();
    let set = PatternSet::new();
    let state = format!("s3://{}/fail2waf/", acct.state);
    let extra = [
        ("FAIL2WAF_IPSET_V4_ARN", acct.v4.2.as_str()),
        ("FAIL2WAF_IPSET_V6_ARN", acct.v6.2.as_str()),
        ("FAIL2WAF_USER_PATTERN_SET_ARN", set.arn.as_str()),
        ("FAIL2WAF_EVENT_BUS", inbox.bus.as_str()),
        ("FAIL2WAF_OPERATOR", "ops@example.com"),
    ];
    let run = |args: &[&str]| {
        let out = cli(&acct, args, &extra);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "block",
        "--user",
        "session:8f3a",
        "--ttl",
        "1h",
        "--reason",
        "fraud report",
        "--state",
        &state,
    ]);
    assert_eq!(set.get().0, [r"^(?:session:8f3a)$"]);
    run(&[
        "unblock",
        "--user",
        "session:8f3a",
        "--reason",
        "customer verified",
        "--state",
        &state,
    ]);
    assert!(set.get().0.is_empty());
    let got = inbox.take();
    let kinds: Vec<&str> = got
        .iter()
        .map(|e| e["detail-type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["fail2waf Block", "fail2waf Unblock"]);
    assert_eq!(
        got[0]["detail"]["reason"],
        "blocked by hand by ops@example.com: fraud report"
    );
    assert_eq!(
        got[1]["detail"]["reason"],
        "unblocked by hand by ops@example.com: customer verified"
    );
    assert_eq!(got[1]["detail"]["user"], "session:8f3a");
}
