//! The deployed product against real peers: the Lambda binaries as built,
//! run through the Lambda Runtime API with real event JSON, talking to
//! moto's S3 and WAFv2 through the real AWS SDK.

use crate::lambda_api::{spawn_function, Invocation, RuntimeApi};
use crate::moto::{moto, unique};
use crate::util::*;
use fail2waf_core::aws::service::{Service, Settings};
use fail2waf_core::aws::store::Shard;
use fail2waf_core::clock::wall_ms;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::Path;

/// A test account: buckets, two IP sets, and the function environment.
pub struct Account {
    pub logs: String,
    pub state: String,
    pub v4: (String, String, String), // name, id, arn
    pub v6: (String, String, String),
}

impl Account {
    pub fn new() -> Account {
        let m = moto();
        let logs = unique("logs");
        let state = unique("state");
        for b in [&logs, &state] {
            assert_eq!(m.s3("PUT", &format!("/{b}"), &[], b"").status, 200);
        }
        let set = |version: &str| {
            let name = unique(&format!("fail2waf-{}", version.to_lowercase()));
            let (status, v) = m.wafv2(
                "CreateIPSet",
                &json!({"Name": name, "Scope": "REGIONAL", "IPAddressVersion": version, "Addresses": []}),
            );
            assert_eq!(status, 200, "{v}");
            let s = &v["Summary"];
            (
                name,
                s["Id"].as_str().unwrap().to_string(),
                s["ARN"].as_str().unwrap().to_string(),
            )
        };
        Account {
            logs,
            state,
            v4: set("IPV4"),
            v6: set("IPV6"),
        }
    }

    /// The functions' environment (moto's endpoint and credentials too).
    pub fn env(&self, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut env = moto().env();
        env.push((
            "FAIL2WAF_STATE".into(),
            format!("s3://{}/fail2waf/", self.state),
        ));
        env.push(("FAIL2WAF_IPSET_V4_ARN".into(), self.v4.2.clone()));
        env.push(("FAIL2WAF_IPSET_V6_ARN".into(), self.v6.2.clone()));
        env.push((
            "FAIL2WAF_LOG_PREFIXES".into(),
            format!("s3://{}/AWSLogs/", self.logs),
        ));
        for (k, v) in extra {
            env.retain(|(n, _)| n != k);
            env.push(((*k).into(), (*v).into()));
        }
        env
    }

    /// The addresses in an IP set.
    pub fn ip_set(&self, set: &(String, String, String)) -> BTreeSet<String> {
        let (status, v) = moto().wafv2(
            "GetIPSet",
            &json!({"Name": set.0, "Scope": "REGIONAL", "Id": set.1}),
        );
        assert_eq!(status, 200, "{v}");
        v["IPSet"]["Addresses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect()
    }

    /// Upload a gzip log object.
    pub fn put_log(&self, key: &str, lines: &[String]) {
        let body = gzip((lines.join("\n") + "\n").as_bytes());
        let r = moto().s3(
            "PUT",
            &format!("/{}/{}", self.logs, key.replace(' ', "%20")),
            &[],
            &body,
        );
        assert_eq!(r.status, 200, "{}", r.text());
    }

    /// A state object, parsed.
    pub fn state_object(&self, name: &str) -> Option<Value> {
        let r = moto().s3(
            "GET",
            &format!("/{}/fail2waf/v1/{name}", self.state),
            &[],
            b"",
        );
        (r.status == 200).then(|| serde_json::from_slice(&r.body).unwrap())
    }

    /// An in-process service on the same account (for concurrency tests).
    pub fn service(&self, extra: &[(&str, &str)]) -> Service {
        let env = self.env(extra);
        let settings =
            Settings::from_lookup(|k| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
                .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            Service::with_sdk(settings, &moto_sdk().await)
                .await
                .unwrap()
        })
    }
}

/// An SDK configuration for moto (to be used on the runtime it was made on).
pub async fn moto_sdk() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&moto().endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .load()
        .await
}

/// An ALB key for node `node` (as ALB names its objects).
pub fn alb_key(node: u8, n: u32) -> String {
    format!(
        "AWSLogs/123456789012/elasticloadbalancing/us-east-1/2026/01/01/123456789012_elasticloadbalancing_us-east-1_app.shop.50dc6c495c0c9188_20260101T0005Z_10.0.0.{node}_obj{n}.log.gz"
    )
}

/// An ALB line at epoch `ms`.
pub fn line_at(ms: i64, client: &str, path: &str, status: u16) -> String {
    let t = chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string();
    alb_line(&t, client, "GET", path, status)
}

/// The S3 notification fixture, pointing at `bucket`/`key` (form-encoded
/// as S3 does).
pub fn s3_event(bucket: &str, keys: &[&str]) -> Value {
    let text = std::fs::read_to_string(fixture("events/awsdocs/s3_notification_put.json")).unwrap();
    let mut v: Value = serde_json::from_str(&text).unwrap();
    let template = v["Records"][0].clone();
    let records: Vec<Value> = keys
        .iter()
        .map(|k| {
            let mut r = template.clone();
            r["s3"]["bucket"]["name"] = json!(bucket);
            r["s3"]["bucket"]["arn"] = json!(format!("arn:aws:s3:::{bucket}"));
            r["s3"]["object"]["key"] = json!(k.replace(' ', "+"));
            r
        })
        .collect();
    v["Records"] = json!(records);
    v
}

/// The function binary: as `cargo test` built it, or, with
/// `FAIL2WAF_FUNCTIONS_DIR` set (`infra/check-build.sh`: the output of
/// `sam build`), the bootstrap that would be deployed.
pub fn function(name: &str) -> &'static Path {
    if let Some(dir) = std::env::var_os("FAIL2WAF_FUNCTIONS_DIR") {
        let logical = match name {
            "ingest" => "IngestFunction",
            "alarm" => "AlarmFunction",
            _ => "ExpireFunction",
        };
        let path = Path::new(&dir).join(logical).join("bootstrap");
        assert!(path.is_file(), "{} is not built", path.display());
        return Box::leak(path.into_boxed_path());
    }
    match name {
        "ingest" => Path::new(env!("CARGO_BIN_EXE_fail2waf-ingest")),
        "alarm" => Path::new(env!("CARGO_BIN_EXE_fail2waf-alarm")),
        _ => Path::new(env!("CARGO_BIN_EXE_fail2waf-expire")),
    }
}

/// Invoke a function binary once per event; the responses and its stdout.
pub fn run_function(
    name: &str,
    env: &[(String, String)],
    events: &[Value],
) -> (Vec<Invocation>, String) {
    let api = RuntimeApi::start();
    let f = spawn_function(function(name), &api, env);
    let out: Vec<Invocation> = events.iter().map(|e| api.invoke(e)).collect();
    let finished = f.finish();
    (out, finished.stdout)
}

pub fn response(i: &Invocation) -> &Value {
    match i {
        Invocation::Response(v) => v,
        Invocation::Error {
            error_type,
            message,
        } => panic!("{error_type}: {message}"),
    }
}

/// 12 distinct 404s per node file from the attacker, plus ordinary traffic:
/// no file alone crosses `scan-burst` (30 in a minute); together they do.
pub fn attack_objects(acct: &Account, t0: i64, tag: u32) -> Vec<String> {
    let mut keys = vec![];
    for node in 1..=3u8 {
        let mut lines = vec![];
        for i in 0..12 {
            let t = t0 + i64::from(node) * 1000 + i * 3000;
            lines.push(line_at(
                t,
                "198.51.100.66",
                &format!("/probe/{node}/{i}"),
                404,
            ));
            lines.push(line_at(
                t,
                &format!("192.0.2.{}", i + 1),
                "/index.html",
                200,
            ));
        }
        let key = alb_key(node, tag * 10 + u32::from(node));
        acct.put_log(&key, &lines);
        keys.push(key);
    }
    keys
}

#[test]
fn an_attack_spread_over_node_files_is_blocked_and_duplicates_change_nothing() {
    let acct = Account::new();
    let t0 = wall_ms() - 120_000;
    let keys = attack_objects(&acct, t0, 1);
    let env = acct.env(&[]);
    // One event per object, as S3 sends them, then the first one again.
    let events: Vec<Value> = keys
        .iter()
        .chain(&keys[..1])
        .map(|k| s3_event(&acct.logs, &[k]))
        .collect();
    let (out, stdout) = run_function("ingest", &env, &events);
    for o in &out {
        response(o);
    }
    assert_eq!(
        acct.ip_set(&acct.v4),
        BTreeSet::from(["198.51.100.66/32".to_string()])
    );
    assert!(acct.ip_set(&acct.v6).is_empty());
    // The duplicate was recognised: its metrics line says so.
    let emf: Vec<Value> = stdout
        .lines()
        .filter(|l| l.contains("\"_aws\""))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(emf.len(), 4, "{stdout}");
    assert_eq!(emf[3]["DuplicateObjects"], 1.0);
    assert_eq!(
        emf.iter()
            .map(|m| m["WafWrites"].as_f64().unwrap_or(0.0))
            .sum::<f64>(),
        1.0,
        "one WAF write"
    );
    // The state holds each request once: 36 probes.
    let site = acct.state_object("site.json").unwrap();
    let total: u64 = site["state"]["site"]["total"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e[1].as_u64().unwrap())
        .sum();
    assert_eq!(total, 72);
    let ledger = acct.state_object("ledger.json").unwrap();
    let block = &ledger["blocks"]["198.51.100.66/32"];
    assert_eq!(block["rule"], "scan-burst");
    let matched = block["evidence"]["matched"].as_u64().unwrap();
    assert!((30..=36).contains(&matched), "{block}");
}

/// The EventBridge "Object Created" event of `key`, as the stack's rule
/// puts it into the ingest queue.
pub fn eventbridge_event(bucket: &str, key: &str) -> Value {
    let text =
        std::fs::read_to_string(fixture("events/awsdocs/eventbridge_s3_object_created.json"))
            .unwrap();
    let mut ev: Value = serde_json::from_str(&text).unwrap();
    ev["detail"]["bucket"]["name"] = json!(bucket);
    ev["detail"]["object"]["key"] = json!(key);
    ev
}

/// An SQS event as Lambda hands the ingest queue's messages to the function:
/// message `m<i>` carries the EventBridge event of `keys[i]`.
pub fn queue_batch(bucket: &str, keys: &[String]) -> Value {
    let records: Vec<Value> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            json!({"messageId": format!("m{i}"), "receiptHandle": "r",
                   "body": eventbridge_event(bucket, k).to_string(),
                   "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
                   "md5OfBody": "", "eventSource": "aws:sqs",
                   "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:stack-ingest",
                   "awsRegion": "us-east-1"})
        })
        .collect();
    json!({ "Records": records })
}

/// The metrics lines (EMF) a function printed, in order.
fn emf_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .filter(|l| l.contains("\"_aws\""))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_queue_batch_is_merged_once_and_a_partly_counted_batch_counts_each_object_once() {
    let acct = Account::new();
    let t0 = wall_ms() - 120_000;
    let mut keys = attack_objects(&acct, t0, 1);
    keys.extend(attack_objects(&acct, t0, 2));
    let env = acct.env(&[]);
    let (out, stdout) = run_function(
        "ingest",
        &env,
        &[
            queue_batch(&acct.logs, &keys[..3]),
            // Delivered again (a visibility timeout ran out): nothing changes.
            queue_batch(&acct.logs, &keys[..3]),
            // A batch holding one object counted before and three new ones.
            queue_batch(&acct.logs, &keys[2..]),
        ],
    );
    for o in &out {
        assert_eq!(response(o)["batchItemFailures"], json!([]));
    }
    let emf = emf_lines(&stdout);
    assert_eq!(emf.len(), 3, "{stdout}");
    // The first batch wrote every shard it touched once, for its three
    // objects together (one object at a time writes each three times).
    let sh: Vec<Value> = (0..16)
        .filter_map(|n| acct.state_object(&format!("shard-{n:02}.json")))
        .collect();
    let first_batch: Vec<&Value> = sh
        .iter()
        .filter(|s| {
            keys[..3].iter().all(|k| {
                s["absorbed"]
                    .as_object()
                    .unwrap()
                    .keys()
                    .any(|a| a.contains(k.as_str()))
            })
        })
        .collect();
    assert!(!first_batch.is_empty());
    assert_eq!(
        emf[0]["ShardsWritten"],
        first_batch.len() as f64,
        "{}",
        emf[0]
    );
    assert_eq!(emf[0]["ObjectsRead"], 3.0);
    assert_eq!(
        emf[0]["BlocksAdded"], 1.0,
        "the three node files together cross scan-burst"
    );
    assert_eq!(
        acct.ip_set(&acct.v4),
        BTreeSet::from(["198.51.100.66/32".to_string()])
    );
    // The same batch again: all three recognised, nothing written.
    assert_eq!(emf[1]["DuplicateObjects"], 3.0, "{}", emf[1]);
    assert_eq!(emf[1]["ShardsWritten"], 0.0);
    // The mixed batch: the site object had one of its objects and not the
    // others, so each object was merged on its own; the old one changed
    // nothing.
    assert_eq!(emf[2]["ObjectsMergedAlone"], 4.0, "{}", emf[2]);
    assert_eq!(emf[2]["DuplicateObjects"], 1.0);
    let site = acct.state_object("site.json").unwrap();
    let total: u64 = site["state"]["site"]["total"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e[1].as_u64().unwrap())
        .sum();
    assert_eq!(total, 6 * 24, "every request of the six objects once");
    assert_eq!(site["absorbed"].as_object().unwrap().len(), 6);
}

#[test]
fn a_batch_that_fails_for_want_of_a_fix_goes_back_to_the_queue_not_away() {
    let acct = Account::new();
    let keys = attack_objects(&acct, wall_ms() - 120_000, 1);
    // A state object that does not parse: no retry cures it by itself.
    let site = format!("/{}/fail2waf/v1/site.json", acct.state);
    assert_eq!(moto().s3("PUT", &site, &[], b"{not json").status, 200);
    let env = acct.env(&[]);
    let (out, stdout) = run_function("ingest", &env, &[queue_batch(&acct.logs, &keys)]);
    let failed: Vec<&str> = response(&out[0])["batchItemFailures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap())
        .collect();
    assert_eq!(
        failed,
        ["m0", "m1", "m2"],
        "every message kept for the dead-letter queue"
    );
    assert_eq!(emf_lines(&stdout)[0]["ObjectErrors"], 3.0, "{stdout}");
    // Fixed (the object removed): the messages, received again, count once.
    assert_eq!(moto().s3("DELETE", &site, &[], b"").status, 204);
    let (out, _) = run_function("ingest", &env, &[queue_batch(&acct.logs, &keys)]);
    assert_eq!(response(&out[0])["batchItemFailures"], json!([]));
    assert_eq!(
        acct.ip_set(&acct.v4),
        BTreeSet::from(["198.51.100.66/32".to_string()])
    );
}

#[test]
fn concurrent_ingests_of_the_same_shards_lose_no_count_and_waf_writes_stay_under_one_per_second() {
    let acct = Account::new();
    let t0 = wall_ms() - 600_000;
    const N: u32 = 16;
    // Each object: 3 × 404 from each of 8 addresses of one /24 (every object
    // touches the same shard), and one scanner of its own (a block each).
    let mut keys = vec![];
    for n in 0..N {
        let mut lines = vec![];
        for a in 0..8 {
            for i in 0..3 {
                let t = t0 + i64::from(n) * 7000 + i * 1000 + i64::from(a);
                lines.push(line_at(
                    t,
                    &format!("203.0.113.{}", a + 10),
                    &format!("/c{n}/{a}/{i}"),
                    404,
                ));
            }
        }
        for i in 0..30 {
            lines.push(line_at(
                t0 + i * 1000,
                &format!("198.51.100.{}", n + 100),
                &format!("/s{i}"),
                404,
            ));
        }
        let key = alb_key(1, 100 + n);
        acct.put_log(&key, &lines);
        keys.push(key);
    }
    let svc = std::sync::Arc::new(acct.service(&[]));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let reports = rt.block_on(async {
        let tasks: Vec<_> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let (svc, k, bucket) = (svc.clone(), k.clone(), acct.logs.clone());
                tokio::spawn(async move {
                    svc.ingest_object(&bucket, &k, wall_ms(), &format!("req-{i}"), None)
                        .await
                })
            })
            .collect();
        let mut out = vec![];
        for t in tasks {
            out.push(t.await.unwrap().unwrap());
        }
        out
    });
    let elapsed = started.elapsed();
    let retries = svc
        .store
        .stats
        .cas_retries
        .load(std::sync::atomic::Ordering::Relaxed);
    let writes: u32 = reports
        .iter()
        .filter_map(|r| r.enforce.as_ref())
        .map(|e| e.writes)
        .sum();
    let deferred = reports
        .iter()
        .filter_map(|r| r.enforce.as_ref())
        .filter(|e| e.deferred)
        .count();
    assert!(reports.iter().all(|r| r.skipped.is_none() && !r.duplicate));
    // Every count arrived: 16 objects × 8 addresses × 3 = 384 matched requests.
    let mut matched = 0u64;
    let mut absorbed = BTreeSet::new();
    for n in 0..svc.store.shards() {
        if let Some(v) = acct.state_object(&format!("shard-{n:02}.json")) {
            let sh: Shard = serde_json::from_value(v).unwrap();
            absorbed.extend(sh.absorbed.keys().cloned());
            for (k, sk) in &sh.state.keys {
                if k.to_string().starts_with("203.0.113.")
                    && k.net().is_some_and(|n| n.prefix_len() == 32)
                {
                    if let Some(rs) = sk.rules.get("scan-slow") {
                        matched += rs.matched.iter().map(|(_, c)| u64::from(c)).sum::<u64>();
                    }
                }
            }
        }
    }
    // The scanners, and the /24 whose eight quiet addresses scanned together.
    let mut want: BTreeSet<String> = (0..N)
        .map(|n| format!("198.51.100.{}/32", n + 100))
        .collect();
    want.insert("203.0.113.0/24".into());
    let converged = acct.ip_set(&acct.v4) == want;
    eprintln!(
        "{N} concurrent ingests in {:.2} s: {retries} conditional-write retries, {matched} counts, \
         {writes} WAF writes ({deferred} ingests deferred to the writer), converged without help: {converged}",
        elapsed.as_secs_f64()
    );
    assert_eq!(matched, u64::from(N) * 8 * 3);
    assert_eq!(absorbed.len(), N as usize);
    assert!(retries > 0, "the test did not make writers collide");
    // UpdateIPSet: at most one per second (one per set per sync round).
    assert!(
        f64::from(writes) <= elapsed.as_secs_f64() + 1.0,
        "{writes} writes in {elapsed:?}"
    );
    // The next scheduled reconcile (expire) converges in any case.
    rt.block_on(svc.enforce(wall_ms(), "reconcile")).unwrap();
    assert_eq!(acct.ip_set(&acct.v4), want);
}

#[test]
fn a_foreign_writer_forces_the_lock_token_retry_and_waf_converges() {
    use fail2waf_core::aws::waf::{sync_set, WafSetRef};
    let acct = Account::new();
    let svc = acct.service(&[]);
    let set: WafSetRef = acct.v4.2.parse().unwrap();
    let desired: BTreeSet<ipnet::IpNet> = ["192.0.2.1/32", "198.51.100.0/24"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let sdk = rt.block_on(
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&moto().endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                "testing", "testing", None, None, "test",
            ))
            .load(),
    );
    let waf = aws_sdk_wafv2::Client::new(&sdk);
    let mut foreign_writes = 0;
    let out = rt
        .block_on(sync_set(&waf, &set, &desired, || {
            // Another writer changes the set between our read and our write.
            if foreign_writes == 0 {
                let (_, got) = moto().wafv2(
                    "GetIPSet",
                    &json!({"Name": acct.v4.0, "Scope": "REGIONAL", "Id": acct.v4.1}),
                );
                let (status, _) = moto().wafv2(
                    "UpdateIPSet",
                    &json!({"Name": acct.v4.0, "Scope": "REGIONAL", "Id": acct.v4.1,
                            "Addresses": ["203.0.113.9/32"], "LockToken": got["LockToken"]}),
                );
                assert_eq!(status, 200);
            }
            foreign_writes += 1;
            std::future::ready(())
        }))
        .unwrap();
    assert_eq!(out.lock_retries, 1, "{out:?}");
    assert!(out.written);
    assert_eq!(
        acct.ip_set(&acct.v4),
        BTreeSet::from(["192.0.2.1/32".into(), "198.51.100.0/24".into()])
    );
    drop(svc);
}

#[test]
fn expire_removes_ended_blocks_from_waf_and_heals_lost_updates() {
    let acct = Account::new();
    let now = wall_ms();
    // A ledger with one ended and one active block; WAF holds the ended one
    // and misses the active one (a lost update).
    let ledger = json!({
        "version": 1,
        "blocks": {
            "198.51.100.1/32": {"rule": "scan-burst", "since_ms": now - 7_200_000, "until_ms": now - 1000, "offense": 1},
            "2001:db8:bad:1::/64": {"rule": "scan-burst", "since_ms": now - 60_000, "until_ms": now + 3_600_000, "offense": 1}
        },
        "history": {}
    });
    let r = moto().s3(
        "PUT",
        &format!("/{}/fail2waf/v1/ledger.json", acct.state),
        &[],
        ledger.to_string().as_bytes(),
    );
    assert_eq!(r.status, 200);
    let (_, got) = moto().wafv2(
        "GetIPSet",
        &json!({"Name": acct.v4.0, "Scope": "REGIONAL", "Id": acct.v4.1}),
    );
    moto().wafv2(
        "UpdateIPSet",
        &json!({"Name": acct.v4.0, "Scope": "REGIONAL", "Id": acct.v4.1, "Addresses": ["198.51.100.1/32"], "LockToken": got["LockToken"]}),
    );
    let schedule: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture(
            "events/aws_lambda_events_fixtures/example-eventbridge-schedule.json",
        ))
        .unwrap(),
    )
    .unwrap();
    let (out, _) = run_function("expire", &acct.env(&[]), &[schedule]);
    assert_eq!(response(&out[0])["removed"], 1);
    assert!(acct.ip_set(&acct.v4).is_empty());
    assert_eq!(
        acct.ip_set(&acct.v6),
        BTreeSet::from(["2001:db8:bad:1::/64".to_string()])
    );
    let l = acct.state_object("ledger.json").unwrap();
    assert!(l["blocks"].get("198.51.100.1/32").is_none());
}

#[test]
fn an_ip_set_a_stack_update_emptied_is_refilled_on_the_update_event() {
    let acct = Account::new();
    let now = wall_ms();
    // An active block in the ledger, and the IP set empty: what a stack
    // update that changes the set's resource leaves (its `Addresses: []`).
    let ledger = json!({
        "version": 1,
        "blocks": {
            "198.51.100.9/32": {"rule": "auth-brute", "since_ms": now - 60_000, "until_ms": now + 3_600_000, "offense": 1}
        },
        "history": {}
    });
    let r = moto().s3(
        "PUT",
        &format!("/{}/fail2waf/v1/ledger.json", acct.state),
        &[],
        ledger.to_string().as_bytes(),
    );
    assert_eq!(r.status, 200);
    assert!(acct.ip_set(&acct.v4).is_empty());
    // The event the template's rule sends when the update completes.
    let updated: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture(
            "events/synthesized/eventbridge_cloudformation_ipset_update_complete.json",
        ))
        .unwrap(),
    )
    .unwrap();
    let (out, _) = run_function("expire", &acct.env(&[]), &[updated]);
    response(&out[0]);
    assert_eq!(
        acct.ip_set(&acct.v4),
        BTreeSet::from(["198.51.100.9/32".to_string()])
    );
}

#[test]
fn an_alarm_enters_incident_mode_and_blocks_what_normal_thresholds_would_not() {
    let acct = Account::new();
    let t0 = wall_ms() - 90_000;
    // 20 probes in a minute: under scan-burst's 30, over its incident 15.
    let lines: Vec<String> = (0..20)
        .map(|i| line_at(t0 + i * 2000, "198.51.100.77", &format!("/adm/{i}"), 404))
        .collect();
    let key = alb_key(2, 500);
    acct.put_log(&key, &lines);
    let env = acct.env(&[]);
    let (out, _) = run_function("ingest", &env, &[s3_event(&acct.logs, &[&key])]);
    response(&out[0]);
    assert!(
        acct.ip_set(&acct.v4).is_empty(),
        "normal thresholds do not block"
    );
    // The ALB 4xx alarm fires (EventBridge "CloudWatch Alarm State Change").
    let text = std::fs::read_to_string(fixture(
        "events/awsdocs/eventbridge_cloudwatch_alarm_state_change_single_metric.json",
    ))
    .unwrap();
    let mut alarm: Value = serde_json::from_str(&text).unwrap();
    alarm["detail"]["state"]["value"] = json!("ALARM");
    let (out, _) = run_function("alarm", &env, &[alarm.clone()]);
    let r = response(&out[0]);
    assert!(r["incident_until_ms"].as_i64().unwrap() > wall_ms(), "{r}");
    assert_eq!(
        acct.ip_set(&acct.v4),
        BTreeSet::from(["198.51.100.77/32".to_string()])
    );
    let l = acct.state_object("ledger.json").unwrap();
    assert_eq!(
        l["blocks"]["198.51.100.77/32"]["evidence"]["incident"],
        true
    );
    // OK ends incident mode.
    alarm["detail"]["state"]["value"] = json!("OK");
    let (out, _) = run_function("alarm", &env, &[alarm]);
    assert_eq!(response(&out[0])["incident"], false);
    assert!(acct
        .state_object("ledger.json")
        .unwrap()
        .get("incident_until_ms")
        .is_none());
}

#[test]
fn dry_run_decides_but_never_writes_waf() {
    let acct = Account::new();
    let keys = attack_objects(&acct, wall_ms() - 120_000, 2);
    let env: Vec<(String, String)> = acct
        .env(&[("FAIL2WAF_DRY_RUN", "true")])
        .into_iter()
        .filter(|(k, _)| !k.starts_with("FAIL2WAF_IPSET"))
        .collect();
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    let (out, _) = run_function("ingest", &env, &[s3_event(&acct.logs, &keys)]);
    response(&out[0]);
    let l = acct.state_object("ledger.json").unwrap();
    assert!(l["blocks"]["198.51.100.66/32"].is_object(), "{l}");
    assert!(acct.ip_set(&acct.v4).is_empty());
    assert!(
        acct.state_object("waf-writer.json").is_none(),
        "no WAF writer ever ran"
    );
}

#[test]
fn events_of_every_shape_and_bad_events() {
    let acct = Account::new();
    let key = "AWSLogs/x/elasticloadbalancing/us-east-1/2026/01/01/with space.log";
    acct.put_log(key, &[line_at(wall_ms() - 1000, "192.0.2.5", "/", 200)]);
    let test_event: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("events/awsdocs/s3_test_event.json")).unwrap(),
    )
    .unwrap();
    // SQS: one good message (the object, key with a space) and one garbage.
    let sqs = json!({"Records": [
        {"messageId": "good", "receiptHandle": "r", "body": s3_event(&acct.logs, &[key]).to_string(), "attributes": {}, "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q", "awsRegion": "us-east-1"},
        {"messageId": "bad", "receiptHandle": "r", "body": "not json", "attributes": {}, "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q", "awsRegion": "us-east-1"}
    ]});
    let garbage = json!({"hello": "world"});
    let (out, stdout) = run_function("ingest", &acct.env(&[]), &[test_event, sqs, garbage]);
    assert!(response(&out[0])["status"]
        .as_str()
        .unwrap()
        .contains("TestEvent"));
    // The bad message is dropped (it can never succeed), not retried.
    assert_eq!(response(&out[1])["batchItemFailures"], json!([]));
    match &out[2] {
        Invocation::Error {
            error_type,
            message,
        } => {
            assert_eq!(error_type, "Fail2waf.InvalidInput");
            assert!(message.contains("not an S3"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // The good message's object (its key decoded from `with+space`) was read.
    let site = acct.state_object("site.json").unwrap();
    assert!(
        site["absorbed"]
            .as_object()
            .unwrap()
            .keys()
            .any(|k| k.contains("with space.log")),
        "{site}"
    );
    assert!(stdout.contains("\"BadMessages\":1"), "{stdout}");
}

#[test]
fn a_bad_configuration_is_a_clear_error_at_start() {
    let acct = Account::new();
    let env = acct.env(&[("FAIL2WAF_IPSET_V4_ARN", "not-an-arn")]);
    let api = RuntimeApi::start();
    let f = spawn_function(function("ingest"), &api, &env);
    let t = std::time::Instant::now();
    while f.exit_status().is_none() && t.elapsed() < std::time::Duration::from_secs(30) {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        f.exit_status().is_some_and(|s| !s.success()),
        "the function must not start"
    );
    let done = f.finish();
    assert!(
        done.stdout.contains("FAIL2WAF_IPSET_V4_ARN")
            || done.stderr.contains("FAIL2WAF_IPSET_V4_ARN"),
        "{}{}",
        done.stdout,
        done.stderr
    );
}

/// Run the CLI against moto.
pub fn cli(acct: &Account, args: &[&str], extra: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_fail2waf"));
    cmd.args(args).stdin(std::process::Stdio::null());
    for (k, v) in acct.env(extra) {
        if !k.starts_with("FAIL2WAF_") {
            cmd.env(k, v);
        }
    }
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn the_cli_reads_s3_prefixes_and_uses_the_s3_state_store() {
    let acct = Account::new();
    attack_objects(&acct, wall_ms() - 120_000, 3);
    let prefix = format!("s3://{}/AWSLogs/", acct.logs);
    // Reading objects from S3 with local state.
    let out = cli(&acct, &["detect", "--json", &prefix], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&out);
    assert_eq!(of_type(&lines, "summary")[0]["files"], 3);
    assert_eq!(of_type(&lines, "decision")[0]["ip"], "198.51.100.66/32");
    // The same with the deployed state store, enforcing on the IP sets.
    let state = format!("s3://{}/fail2waf/", acct.state);
    let sets = [
        ("FAIL2WAF_IPSET_V4_ARN", acct.v4.2.as_str()),
        ("FAIL2WAF_IPSET_V6_ARN", acct.v6.2.as_str()),
    ];
    let out = cli(
        &acct,
        &["detect", "--json", "--state", &state, &prefix],
        &sets,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(of_type(&json_lines(&out), "decision").len(), 1);
    assert_eq!(
        acct.ip_set(&acct.v4),
        BTreeSet::from(["198.51.100.66/32".to_string()])
    );
    // Again: every object was counted already.
    let out = cli(
        &acct,
        &["detect", "--json", "--state", &state, &prefix],
        &sets,
    );
    let lines = json_lines(&out);
    assert_eq!(of_type(&lines, "summary")[0]["files_already_counted"], 3);
    assert!(of_type(&lines, "decision").is_empty());
    // A prefix with nothing under it is an input error.
    let out = cli(
        &acct,
        &["detect", &format!("s3://{}/nothing/", acct.logs)],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn manual_block_unblock_and_status_on_the_deployed_state() {
    let acct = Account::new();
    let state = format!("s3://{}/fail2waf/", acct.state);
    let sets = [
        ("FAIL2WAF_IPSET_V4_ARN", acct.v4.2.as_str()),
        ("FAIL2WAF_IPSET_V6_ARN", acct.v6.2.as_str()),
        // The shell's default region is not the sets' (us-east-1): the
        // CLI talks to WAF in the region of the sets' ARNs.
        ("AWS_REGION", "eu-west-1"),
    ];
    let out = cli(
        &acct,
        &[
            "block",
            "2001:db8:bad:7::1",
            "--ttl",
            "30m",
            "--reason",
            "abuse report",
            "--state",
            &state,
            "--json",
        ],
        &sets,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        acct.ip_set(&acct.v6),
        BTreeSet::from(["2001:db8:bad:7::1/128".to_string()])
    );
    let out = cli(&acct, &["status", "--state", &state, "--json"], &sets);
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["active_v6"], 1);
    let out = cli(
        &acct,
        &[
            "unblock",
            "2001:db8:bad:7::1",
            "--reason",
            "false positive",
            "--state",
            &state,
            "--json",
        ],
        &sets,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(acct.ip_set(&acct.v6).is_empty());
    let ledger = acct.state_object("ledger.json").unwrap();
    assert_eq!(ledger["audit"].as_array().unwrap().len(), 2);
    assert_eq!(ledger["audit"][1]["reason"], "false positive");
}

/// The alarm's re-scan on a bucket holding months of logs: a `{date}`
/// prefix lists only the days of the alarm's window, so today's objects
/// are found however many older keys sort before them (a plain prefix
/// lists from the oldest and stops at 50,000 keys).
#[test]
fn the_rescan_finds_todays_objects_among_months_of_keys() {
    let acct = Account::new();
    let base = "AWSLogs/123456789012/elasticloadbalancing/us-east-1";
    let now = wall_ms();
    let day = |ago: i64| {
        chrono::DateTime::from_timestamp_millis(now - ago * 86_400_000)
            .unwrap()
            .format("%Y/%m/%d")
            .to_string()
    };
    for ago in (0..90).rev() {
        acct.put_log(
            &format!("{base}/{}/node-{ago}.log.gz", day(ago)),
            &[line_at(now - ago * 86_400_000, "192.0.2.5", "/", 200)],
        );
    }
    let prefixes = format!("s3://{}/{base}/{{date}}/", acct.logs);
    let svc = acct.service(&[("FAIL2WAF_LOG_PREFIXES", &prefixes)]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let found = rt
        .block_on(svc.recent_objects(now - 20 * 60_000, now))
        .unwrap();
    let keys: Vec<&str> = found.iter().map(|(_, k)| k.as_str()).collect();
    // Twenty minutes back may reach into yesterday (UTC): at most those two days.
    assert!(
        keys.contains(&format!("{base}/{}/node-0.log.gz", day(0)).as_str()),
        "{keys:?}"
    );
    assert!(
        keys.iter()
            .all(|k| k.contains(&day(0)) || k.contains(&day(1))),
        "{keys:?}"
    );
}

/// The ingest function's dead letters replayed by `fail2waf redrive`: a
/// Lambda destination record (on failure) around the EventBridge event of
/// a log object, in the queue twice (a re-delivery), plus one message that
/// is not an event. The object counts once; the good messages leave the
/// queue, the bad one stays and makes the exit code 1.
#[test]
fn redriven_dead_letters_count_once() {
    let acct = Account::new();
    let t = wall_ms() - 60_000;
    let key = "AWSLogs/123456789012/elasticloadbalancing/us-east-1/2026/01/01/dead letter.log.gz";
    let lines: Vec<String> = (0..25)
        .map(|i| line_at(t + i * 100, "192.0.2.8", &format!("/p{i}"), 200))
        .collect();
    acct.put_log(key, &lines);
    let m = moto();
    let (s, v) = m.sqs("CreateQueue", &json!({"QueueName": unique("dlq")}));
    assert_eq!(s, 200, "{v}");
    let queue = v["QueueUrl"].as_str().unwrap().to_string();
    let mut event: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("events/awsdocs/eventbridge_s3_object_created.json"))
            .unwrap(),
    )
    .unwrap();
    event["detail"]["bucket"]["name"] = json!(acct.logs);
    event["detail"]["object"]["key"] = json!(key);
    let record = json!({
        "version": "1.0", "timestamp": "2026-12-04T18:00:00.000Z",
        "requestContext": {"requestId": "r1", "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:f-ingest:$LATEST", "condition": "RetriesExhausted", "approximateInvokeCount": 3},
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorType": "Fail2waf.Retryable", "errorMessage": "S3: SlowDown"}
    });
    // A dead letter of the ingest queue (the event as EventBridge sent it),
    // a Lambda destination record (a stack from before the queue), garbage.
    for body in [
        event.to_string(),
        record.to_string(),
        "{\"hello\": 1}".to_string(),
    ] {
        let (s, v) = m.sqs(
            "SendMessage",
            &json!({"QueueUrl": queue, "MessageBody": body}),
        );
        assert_eq!(s, 200, "{v}");
    }
    let state = format!("s3://{}/fail2waf/", acct.state);
    let out = cli(&acct, &["redrive", &queue, "--state", &state], &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(
            "redrove 2 messages: 2 objects ingested (1 already counted); 1 left in the queue"
        ),
        "{stdout}"
    );
    assert!(stderr.contains("left in the queue"), "{stderr}");
    // The object's 25 requests, once.
    let site = acct.state_object("site.json").unwrap();
    let total: u64 = site["state"]["site"]["total"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b[1].as_u64().unwrap())
        .sum();
    assert_eq!(total, 25, "{site}");
    let (_, v) = m.sqs(
        "GetQueueAttributes",
        &json!({"QueueUrl": queue, "AttributeNames": ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]}),
    );
    let n = |k: &str| v["Attributes"][k].as_str().unwrap().parse::<u32>().unwrap();
    assert_eq!(
        n("ApproximateNumberOfMessages") + n("ApproximateNumberOfMessagesNotVisible"),
        1,
        "{v}"
    );
}

/// A warm function picks up an uploaded rules file: with the check
/// interval at 0 (`FAIL2WAF_CONFIG_CHECK_SECS`; 60 s by default) the next
/// invocation reads the new ETag and uses the new threshold; a broken
/// upload keeps the rules in use.
#[test]
fn a_warm_function_reads_a_changed_rules_file() {
    let acct = Account::new();
    let put_rules = |threshold: &str| {
        let text = format!(
            "[[rules]]\nname = \"probe\"\nstatus = [\"404\"]\nwindow = \"1m\"\nthreshold = {threshold}\n"
        );
        let r = moto().s3(
            "PUT",
            &format!("/{}/config/rules.toml", acct.state),
            &[],
            text.as_bytes(),
        );
        assert_eq!(r.status, 200);
    };
    put_rules("1000");
    let config = format!("s3://{}/config/rules.toml", acct.state);
    let env = acct.env(&[
        ("FAIL2WAF_CONFIG", &config),
        ("FAIL2WAF_CONFIG_CHECK_SECS", "0"),
    ]);
    let t = wall_ms() - 120_000;
    let object = |n: u8, ip: &str| {
        let key = format!("AWSLogs/x/elasticloadbalancing/us-east-1/2026/01/01/reload-{n}.log.gz");
        let lines: Vec<String> = (0..20)
            .map(|i| line_at(t + i * 500, ip, &format!("/x{i}"), 404))
            .collect();
        acct.put_log(&key, &lines);
        s3_event(&acct.logs, &[&key])
    };
    let api = RuntimeApi::start();
    let f = spawn_function(function("ingest"), &api, &env);
    let first = api.invoke(&object(1, "198.51.100.31"));
    assert!(response(&first)["objects"].is_array());
    assert!(acct.ip_set(&acct.v4).is_empty(), "threshold 1000: no block");
    put_rules("10");
    api.invoke(&object(2, "198.51.100.32"));
    assert_eq!(
        acct.ip_set(&acct.v4),
        BTreeSet::from(["198.51.100.32/32".to_string()])
    );
    put_rules("not a number");
    let third = api.invoke(&object(3, "198.51.100.33"));
    response(&third);
    assert_eq!(
        acct.ip_set(&acct.v4),
        BTreeSet::from([
            "198.51.100.32/32".to_string(),
            "198.51.100.33/32".to_string()
        ]),
        "a broken upload keeps the rules in use"
    );
    let done = f.finish();
    assert!(
        done.stdout.contains("rules file changed: now in use")
            || done.stderr.contains("rules file changed: now in use")
    );
    assert!(done.stdout.contains("cannot be used") || done.stderr.contains("cannot be used"));
}
