//! Fault injection: what S3 and WAF do to a deployment that moto does not
//! do on its own (5xx, throttling, conflicts, bodies that break, lock-token
//! storms), the Lambda deadline, and load.
//!
//! Faults come from `aws-smithy-mocks` rules on clients that otherwise talk
//! to moto: [`FaultyClients`] builds an S3 and a WAFv2 client whose
//! interceptor answers the requests a rule matches and lets every other
//! request through to moto (`allow_passthrough`), over an HTTP client that
//! serves the rules' raw HTTP responses (status, headers, a body that
//! breaks) and sends everything else to moto. So the code under test reads
//! and writes its real state in moto while one request at a time fails the
//! way AWS fails. Where moto can produce the fault itself (a missing object,
//! a truncated gzip object, a foreign writer) it does.
//!
//! Every test checks what matters to the product: no count lost or
//! doubled (the site total and the per-key counts in the shards equal the
//! lines written, each object absorbed once), and the IP sets converge to
//! the ledger.

use crate::aws::{alb_key, attack_objects, function, line_at, response, s3_event, Account};
use crate::lambda_api::{spawn_function, Invocation, RuntimeApi};
use crate::moto::moto;
use crate::util::gzip;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_smithy_mocks::{mock, mock_client, MockResponseInterceptor, Rule, RuleMode};
use aws_smithy_runtime_api::client::http::{
    http_client_fn, HttpClient, HttpConnector, HttpConnectorFuture, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use bytes::Bytes;
use fail2waf_core::aws::events::ObjectRef;
use fail2waf_core::aws::service::{Deadline, Service, ServiceError, Settings, SHARD_WRITES};
use fail2waf_core::aws::store::Shard;
use fail2waf_core::aws::waf::{sync_set, WafSetRef};
use fail2waf_core::clock::wall_ms;
use fail2waf_core::config::Config;
use ipnet::IpNet;
use serde_json::json;
use std::collections::{BTreeSet, VecDeque};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// Clients with faults

/// Delays some requests before they are sent (to move a deadline past them).
type Delay = Arc<dyn Fn(&HttpRequest) -> Option<Duration> + Send + Sync>;

/// An HTTP connector that serves the mock rules' raw HTTP responses and
/// sends every other request to the real peer. (`aws-smithy-mocks` marks
/// the request of a rule with an HTTP response; its own HTTP client answers
/// those and `418` to the rest, which this connector then sends to moto.)
struct Fallthrough {
    mock: SharedHttpConnector,
    real: SharedHttpConnector,
    delay: Option<Delay>,
}

impl std::fmt::Debug for Fallthrough {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Fallthrough")
    }
}

impl HttpConnector for Fallthrough {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let (mock, real) = (self.mock.clone(), self.real.clone());
        let wait = self.delay.as_ref().and_then(|d| d(&request));
        HttpConnectorFuture::new(async move {
            if let Some(w) = wait {
                tokio::time::sleep(w).await;
            }
            let copy = request.try_clone();
            let resp = mock.call(request).await?;
            if resp.status().as_u16() != 418 {
                return Ok(resp);
            }
            real.call(copy.expect("an in-memory request body")).await
        })
    }
}

fn fallthrough_http(delay: Option<Delay>) -> SharedHttpClient {
    let mock = aws_smithy_mocks::create_mock_http_client();
    let real = aws_smithy_http_client::Builder::new().build_http();
    http_client_fn(move |settings, components| {
        SharedHttpConnector::new(Fallthrough {
            mock: mock.http_connector(settings, components),
            real: real.http_connector(settings, components),
            delay: delay.clone(),
        })
    })
}

fn interceptor(rules: &[&Rule]) -> MockResponseInterceptor {
    rules.iter().fold(
        MockResponseInterceptor::new()
            .rule_mode(RuleMode::MatchAny)
            .allow_passthrough(),
        |i, r| i.with_rule(r),
    )
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn sdk(rt: &tokio::runtime::Runtime) -> aws_config::SdkConfig {
    rt.block_on(
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&moto().endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                "testing", "testing", None, None, "test",
            ))
            .load(),
    )
}

/// A service on `acct` whose S3 and WAF clients answer the requests the
/// rules match and pass the rest to moto. S3 keeps the SDK's standard
/// retries (3 attempts, short backoff); WAF has the SDK's retries off, so
/// the retries seen are `sync_set`'s own.
fn faulty_service(
    acct: &Account,
    rt: &tokio::runtime::Runtime,
    s3_rules: &[&Rule],
    waf_rules: &[&Rule],
    delay: Option<Delay>,
) -> Service {
    let env = acct.env(&[]);
    let settings =
        Settings::from_lookup(|k| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
            .unwrap();
    let sdk = sdk(rt);
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .http_client(fallthrough_http(delay))
            .interceptor(interceptor(s3_rules))
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(3)
                    .with_initial_backoff(Duration::from_millis(10)),
            )
            .build(),
    );
    let waf = aws_sdk_wafv2::Client::from_conf(
        aws_sdk_wafv2::config::Builder::from(&sdk)
            .http_client(fallthrough_http(None))
            .interceptor(interceptor(waf_rules))
            .retry_config(aws_sdk_wafv2::config::retry::RetryConfig::disabled())
            .build(),
    );
    Service::from_parts(s3, Some(waf), settings, Config::default(), None)
}

fn s3_error(status: u16, code: &str) -> HttpResponse {
    HttpResponse::new(
        StatusCode::try_from(status).unwrap(),
        SdkBody::from(format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>\
             <Message>injected {code}</Message><RequestId>F2W</RequestId></Error>"
        )),
    )
}

fn waf_error(code: &str) -> String {
    json!({"__type": code, "Message": format!("injected {code}")}).to_string()
}

/// An HTTP/1 body that yields `chunks` and then fails, as a connection
/// reset mid-download does.
struct Breaking(VecDeque<Bytes>);

impl http_body::Body for Breaking {
    type Data = Bytes;
    type Error = std::io::Error;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        Poll::Ready(Some(match self.0.pop_front() {
            Some(b) => Ok(http_body::Frame::data(b)),
            None => Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "connection reset by peer",
            )),
        }))
    }
}

// ---------------------------------------------------------------------------
// What the state holds

/// Requests counted site-wide (every request of every absorbed object, once).
fn site_total(acct: &Account) -> u64 {
    acct.state_object("site.json").map_or(0, |site| {
        site["state"]["site"]["total"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e[1].as_u64().unwrap())
            .sum()
    })
}

/// The shards as stored.
fn shards(acct: &Account, n: u32) -> Vec<(u32, Shard)> {
    (0..n)
        .filter_map(|i| {
            acct.state_object(&format!("shard-{i:02}.json"))
                .map(|v| (i, serde_json::from_value(v).unwrap()))
        })
        .collect()
}

/// 404s counted by `scan-slow` for single addresses, over all shards.
fn matched(shards: &[(u32, Shard)]) -> u64 {
    shards
        .iter()
        .flat_map(|(_, sh)| &sh.state.keys)
        .filter(|(k, _)| k.net().is_some_and(|n| n.prefix_len() == 32))
        .filter_map(|(_, sk)| sk.rules.get("scan-slow"))
        .map(|rs| rs.matched.iter().map(|(_, c)| u64::from(c)).sum::<u64>())
        .sum()
}

/// Shards that absorbed an object whose id contains `key`.
fn absorbed_in(shards: &[(u32, Shard)], key: &str) -> usize {
    shards
        .iter()
        .filter(|(_, sh)| sh.absorbed.keys().any(|k| k.contains(key)))
        .count()
}

/// The IPv4 networks the ledger wants in WAF now.
fn desired_v4(svc: &Service, rt: &tokio::runtime::Runtime) -> BTreeSet<String> {
    let l = rt.block_on(svc.store.ledger()).unwrap();
    l.value
        .desired(wall_ms(), svc.policy())
        .v4
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// A quiet object: `per` 404s from each address (no rule offends).
fn quiet_object(acct: &Account, key: &str, t0: i64, addrs: &[String], per: i64) -> usize {
    let mut lines = vec![];
    for (a, ip) in addrs.iter().enumerate() {
        for i in 0..per {
            lines.push(line_at(
                t0 + i * 1000 + a as i64,
                ip,
                &format!("/q/{a}/{i}"),
                404,
            ));
        }
    }
    acct.put_log(key, &lines);
    lines.len()
}

// ---------------------------------------------------------------------------
// S3 faults

#[test]
fn s3_5xx_and_slowdown_on_the_log_object_fail_retryably_and_the_retry_counts_once() {
    let acct = Account::new();
    let rt = runtime();
    let t0 = wall_ms() - 300_000;
    let faults = [
        (500, "InternalError"),
        (503, "ServiceUnavailable"),
        (503, "SlowDown"),
    ];
    let mut keys = vec![];
    let mut rules = vec![];
    let mut lines = 0;
    for (n, (status, code)) in faults.iter().enumerate() {
        let key = alb_key(3, 700 + n as u32);
        let addrs: Vec<String> = (0..4).map(|a| format!("192.0.2.{}", 10 * n + a)).collect();
        lines += quiet_object(&acct, &key, t0, &addrs, 3);
        let (k, status, code) = (key.clone(), *status, code.to_string());
        // Three times: the SDK's own three attempts all fail.
        rules.push(
            mock!(aws_sdk_s3::Client::get_object)
                .match_requests(move |r| r.key() == Some(k.as_str()))
                .sequence()
                .http_response(move || s3_error(status, &code))
                .times(3)
                .build(),
        );
        keys.push(key);
    }
    let rule_refs: Vec<&Rule> = rules.iter().collect();
    let svc = faulty_service(&acct, &rt, &rule_refs, &[], None);
    for (key, (status, code)) in keys.iter().zip(faults) {
        let e = rt
            .block_on(svc.ingest_object(&acct.logs, key, wall_ms(), "req-1", None))
            .unwrap_err();
        assert!(e.retryable(), "{status} {code} must be retryable: {e}");
        assert!(
            matches!(&e, ServiceError::S3(s) if s.status == Some(status) && s.code.as_deref() == Some(code)),
            "{e:?}"
        );
    }
    for r in &rules {
        assert_eq!(r.num_calls(), 3, "the SDK retried each fault");
    }
    // Nothing was absorbed.
    assert!(acct.state_object("site.json").is_none());
    assert!(shards(&acct, 16).is_empty());
    // The retries (the rules are spent: S3 is healthy again) count each once,
    // and a second delivery changes nothing.
    for round in 0..2 {
        for key in &keys {
            let r = rt
                .block_on(svc.ingest_object(&acct.logs, key, wall_ms(), "req-2", None))
                .unwrap();
            assert_eq!(r.duplicate, round == 1, "{r:?}");
        }
    }
    let sh = shards(&acct, 16);
    assert_eq!(site_total(&acct), lines as u64);
    assert_eq!(matched(&sh), lines as u64);
    for key in &keys {
        assert!(absorbed_in(&sh, key) >= 1);
    }
    eprintln!("S3 500/503/SlowDown ×3 on GetObject: retryable, nothing absorbed; retried: {lines} of {lines} counts, once");
}

/// A GetObject rule for `key`: what moto holds, served once in two chunks
/// and then a reset connection.
fn breaking_get(acct: &Account, key: &str) -> Rule {
    let r = moto().s3("GET", &format!("/{}/{}", acct.logs, key), &[], b"");
    let body = r.body.clone();
    let half = body.len() / 2;
    let (a, b) = (
        Bytes::copy_from_slice(&body[..half / 2]),
        Bytes::copy_from_slice(&body[half / 2..half]),
    );
    let k = key.to_string();
    mock!(aws_sdk_s3::Client::get_object)
        .match_requests(move |r| r.key() == Some(k.as_str()))
        .sequence()
        .http_response(move || {
            let mut resp = HttpResponse::new(
                StatusCode::try_from(200).unwrap(),
                SdkBody::from_body_1_x(Breaking(VecDeque::from([a.clone(), b.clone()]))),
            );
            resp.headers_mut().insert("ETag", "\"0123456789abcdef\"");
            resp.headers_mut()
                .insert("Content-Type", "application/octet-stream");
            resp
        })
        .build()
}

#[test]
fn a_body_broken_mid_stream_in_a_batch_fails_its_object_alone() {
    let acct = Account::new();
    let rt = runtime();
    let t0 = wall_ms() - 300_000;
    let keys: Vec<String> = (1..=3).map(|n| alb_key(5, n)).collect();
    let addrs: Vec<String> = (0..50).map(|a| format!("198.51.100.{a}")).collect();
    let lines: Vec<usize> = keys
        .iter()
        .map(|k| quiet_object(&acct, k, t0, &addrs, 4))
        .collect();
    // The middle one breaks after the first object was counted into the
    // batch's engine: the batch starts over without it.
    let broken = breaking_get(&acct, &keys[1]);
    let svc = faulty_service(&acct, &rt, &[&broken], &[], None);
    let objects: Vec<ObjectRef> = keys.iter().map(|k| ObjectRef::new(&acct.logs, k)).collect();
    let b = rt.block_on(svc.ingest_objects(&objects, wall_ms(), "req-1", None));
    assert_eq!(broken.num_calls(), 1);
    let [first, middle, last] = &b.objects[..] else {
        panic!("{b:?}")
    };
    assert!(first.is_ok() && last.is_ok(), "{b:?}");
    let e = middle.as_ref().unwrap_err();
    assert!(e.retryable() && e.to_string().contains("mid-stream"), "{e}");
    // The other two counted once, the broken one not at all.
    assert_eq!(site_total(&acct), (lines[0] + lines[2]) as u64);
    assert_eq!(matched(&shards(&acct, 16)), (lines[0] + lines[2]) as u64);
    assert_eq!(absorbed_in(&shards(&acct, 16), &keys[1]), 0);
    // Its message comes back in the next batch, with one counted before:
    // each merged on its own, every request once.
    let b = rt.block_on(svc.ingest_objects(&objects[..2], wall_ms(), "req-2", None));
    assert!(b.objects.iter().all(Result::is_ok), "{b:?}");
    assert_eq!(b.merged_alone, 2);
    assert_eq!(site_total(&acct), lines.iter().sum::<usize>() as u64);
    assert_eq!(
        matched(&shards(&acct, 16)),
        lines.iter().sum::<usize>() as u64
    );
}

#[test]
fn a_batch_near_its_deadline_merges_what_it_read_and_leaves_the_rest() {
    let acct = Account::new();
    let rt = runtime();
    let t0 = wall_ms() - 300_000;
    let keys: Vec<String> = (1..=3).map(|n| alb_key(6, n)).collect();
    let addrs: Vec<String> = (0..20).map(|a| format!("198.51.100.{a}")).collect();
    let lines: Vec<usize> = keys
        .iter()
        .map(|k| quiet_object(&acct, k, t0, &addrs, 2))
        .collect();
    let svc = faulty_service(&acct, &rt, &[], &[], None);
    let objects: Vec<ObjectRef> = keys.iter().map(|k| ObjectRef::new(&acct.logs, k)).collect();
    // Time left, but not enough to read more and still merge: the first
    // object is read and merged, the others are left to a retry.
    let near = Deadline::with_reserve(Duration::from_secs(60), Duration::from_secs(60));
    let b = rt.block_on(svc.ingest_objects(&objects, wall_ms(), "req-1", Some(&near)));
    let [first, rest @ ..] = &b.objects[..] else {
        panic!("{b:?}")
    };
    assert!(first.is_ok(), "{b:?}");
    for r in rest {
        let e = r.as_ref().unwrap_err();
        assert!(e.retryable() && e.to_string().contains("not read"), "{e}");
    }
    assert_eq!(site_total(&acct), lines[0] as u64);
    // The retry of the other two, with time, counts them; nothing twice.
    let b = rt.block_on(svc.ingest_objects(&objects[1..], wall_ms(), "req-2", None));
    assert!(b.objects.iter().all(Result::is_ok), "{b:?}");
    assert_eq!(site_total(&acct), lines.iter().sum::<usize>() as u64);
    assert_eq!(
        matched(&shards(&acct, 16)),
        lines.iter().sum::<usize>() as u64
    );
}

#[test]
fn a_body_broken_mid_stream_fails_retryably_and_merges_nothing() {
    let acct = Account::new();
    let rt = runtime();
    let t0 = wall_ms() - 300_000;
    // A first object, counted normally, so the state objects exist.
    let first = alb_key(4, 1);
    let first_lines = quiet_object(&acct, &first, t0, &["192.0.2.1".to_string()], 3);
    let key = alb_key(4, 2);
    let addrs: Vec<String> = (0..50).map(|a| format!("198.51.100.{a}")).collect();
    let lines = quiet_object(&acct, &key, t0, &addrs, 4);
    let broken = breaking_get(&acct, &key);
    let svc = faulty_service(&acct, &rt, &[&broken], &[], None);
    rt.block_on(svc.ingest_object(&acct.logs, &first, wall_ms(), "req-0", None))
        .unwrap();
    let (site_before, shards_before) = (acct.state_object("site.json"), shards(&acct, 16));
    let e = rt
        .block_on(svc.ingest_object(&acct.logs, &key, wall_ms(), "req-1", None))
        .unwrap_err();
    assert!(e.retryable(), "{e}");
    assert!(e.to_string().contains("mid-stream"), "{e}");
    assert_eq!(broken.num_calls(), 1);
    // Untouched: the site object and every shard are as they were.
    assert_eq!(acct.state_object("site.json"), site_before);
    assert_eq!(shards(&acct, 16), shards_before);
    // The retry reads the whole object and counts it once.
    let r = rt
        .block_on(svc.ingest_object(&acct.logs, &key, wall_ms(), "req-2", None))
        .unwrap();
    assert!(!r.duplicate && r.file.error.is_none(), "{r:?}");
    assert_eq!(site_total(&acct), (first_lines + lines) as u64);
    assert_eq!(matched(&shards(&acct, 16)), (first_lines + lines) as u64);
}

#[test]
fn an_object_deleted_before_it_is_read_is_skipped_not_retried() {
    let acct = Account::new();
    let rt = runtime();
    let svc = acct.service(&[]);
    let key = alb_key(5, 1); // never uploaded (deleted between event and read)
    let r = rt
        .block_on(svc.ingest_object(&acct.logs, &key, wall_ms(), "req-1", None))
        .unwrap();
    assert_eq!(r.skipped.as_deref(), Some("the object no longer exists"));
    // Through the handler: the invocation succeeds (no retry storm).
    let (out, _) =
        crate::aws::run_function("ingest", &acct.env(&[]), &[s3_event(&acct.logs, &[&key])]);
    assert!(response(&out[0])["objects"].is_array());
    assert!(acct.state_object("site.json").is_none());
}

#[test]
fn a_truncated_gzip_object_is_counted_up_to_the_damage_once() {
    use std::io::Read;
    let acct = Account::new();
    let rt = runtime();
    let svc = acct.service(&[]);
    let t0 = wall_ms() - 300_000;
    let lines: Vec<String> = (0..400)
        .map(|i| {
            line_at(
                t0 + i * 100,
                &format!("203.0.113.{}", i % 50),
                &format!("/t/{i}/{}", i * 7919 % 1000),
                404,
            )
        })
        .collect();
    let gz = gzip((lines.join("\n") + "\n").as_bytes());
    let cut = &gz[..gz.len() * 2 / 3];
    // The lines a reader can recover before the damage.
    let mut text = Vec::new();
    let _ = flate2::read::GzDecoder::new(cut).read_to_end(&mut text);
    let whole = text.iter().filter(|&&c| c == b'\n').count();
    assert!(whole > 50 && whole < 400, "{whole}");
    let key = alb_key(6, 1);
    let r = moto().s3("PUT", &format!("/{}/{}", acct.logs, key), &[], cut);
    assert_eq!(r.status, 200);
    let rep = rt
        .block_on(svc.ingest_object(&acct.logs, &key, wall_ms(), "req-1", None))
        .unwrap();
    assert!(rep.file.error.is_some(), "the damage is reported: {rep:?}");
    let counted = matched(&shards(&acct, 16));
    eprintln!(
        "truncated gzip: {whole} whole lines before the damage, {} parsed, {counted} counted, error: {}",
        rep.file.lines_parsed,
        rep.file.error.as_deref().unwrap_or("")
    );
    assert_eq!(counted, whole as u64);
    assert_eq!(site_total(&acct), whole as u64);
    // Redelivered: nothing changes.
    let again = rt
        .block_on(svc.ingest_object(&acct.logs, &key, wall_ms(), "req-2", None))
        .unwrap();
    assert!(again.duplicate);
    assert_eq!(matched(&shards(&acct, 16)), whole as u64);
    assert_eq!(site_total(&acct), whole as u64);
}

#[test]
fn conflicts_409_and_412_on_a_shard_write_are_retried_and_counted_once() {
    let acct = Account::new();
    let rt = runtime();
    let t0 = wall_ms() - 300_000;
    let key = alb_key(7, 1);
    let addrs: Vec<String> = (0..6).map(|a| format!("203.0.113.{a}")).collect();
    let lines = quiet_object(&acct, &key, t0, &addrs, 3);
    let conflicts = mock!(aws_sdk_s3::Client::put_object)
        .match_requests(|r| r.key().is_some_and(|k| k.contains("/v1/shard-")))
        .sequence()
        .http_response(|| s3_error(409, "ConditionalRequestConflict"))
        .times(2)
        .http_response(|| s3_error(412, "PreconditionFailed"))
        .times(2)
        .build();
    let svc = faulty_service(&acct, &rt, &[&conflicts], &[], None);
    let r = rt
        .block_on(svc.ingest_object(&acct.logs, &key, wall_ms(), "req-1", None))
        .unwrap();
    let cas = svc.store.stats.cas_retries.load(Ordering::Relaxed);
    eprintln!(
        "409 ×2 + 412 ×2 on the shard write: {} answered, {cas} CAS retries",
        conflicts.num_calls()
    );
    assert_eq!(conflicts.num_calls(), 4);
    assert!(cas >= 4, "{cas}");
    assert_eq!(r.shards_written, 1);
    let sh = shards(&acct, 16);
    assert_eq!(matched(&sh), lines as u64);
    assert_eq!(site_total(&acct), lines as u64);
    assert_eq!(absorbed_in(&sh, &key), 1);
}

// ---------------------------------------------------------------------------
// WAF faults

fn mock_waf(rules: &[&Rule]) -> aws_sdk_wafv2::Client {
    mock_client!(aws_sdk_wafv2, RuleMode::MatchAny, rules, |c| c
        .retry_config(aws_sdk_wafv2::config::retry::RetryConfig::disabled()))
}

/// The IPv4 set's description, as the stack writes it.
const DESCRIPTION: &str =
    "IPv4 addresses blocked by fail2waf - managed by its functions, do not edit";

fn get_ip_set_rule() -> Rule {
    use aws_sdk_wafv2::operation::get_ip_set::GetIpSetOutput;
    use aws_sdk_wafv2::types::{IpAddressVersion, IpSet};
    mock!(aws_sdk_wafv2::Client::get_ip_set).then_output(|| {
        GetIpSetOutput::builder()
            .ip_set(
                IpSet::builder()
                    .name("mock-v4")
                    .id("id4")
                    .arn("arn:aws:wafv2:us-east-1:123456789012:regional/ipset/mock-v4/id4")
                    .description(DESCRIPTION)
                    .ip_address_version(IpAddressVersion::Ipv4)
                    .set_addresses(Some(vec![]))
                    .build()
                    .unwrap(),
            )
            .lock_token("token-1")
            .build()
    })
}

/// UpdateIPSet replaces the set's description too (moto keeps it when
/// none is sent, AWS does not): the sync sends back what it read.
#[test]
fn the_ip_set_sync_sends_its_description_back() {
    use aws_sdk_wafv2::operation::update_ip_set::UpdateIpSetOutput;
    let get = get_ip_set_rule();
    let update = mock!(aws_sdk_wafv2::Client::update_ip_set)
        .match_requests(|r| {
            r.description() == Some(DESCRIPTION) && r.lock_token() == Some("token-1")
        })
        .then_output(|| UpdateIpSetOutput::builder().next_lock_token("t2").build());
    let waf = mock_waf(&[&get, &update]);
    let set: WafSetRef = "arn:aws:wafv2:us-east-1:123456789012:regional/ipset/mock-v4/id4"
        .parse()
        .unwrap();
    let desired: BTreeSet<IpNet> = ["192.0.2.1/32".parse().unwrap()].into();
    let out = runtime()
        .block_on(sync_set(&waf, &set, &desired, || std::future::ready(())))
        .unwrap();
    assert!(out.written);
    assert_eq!(
        update.num_calls(),
        1,
        "an update without the description would match no rule"
    );
}

#[test]
fn waf_throttling_limits_and_lock_storms_are_retried_with_backoff_then_give_up() {
    use aws_sdk_wafv2::operation::update_ip_set::UpdateIpSetOutput;
    let rt = runtime();
    let set: WafSetRef = "arn:aws:wafv2:us-east-1:123456789012:regional/ipset/mock-v4/id4"
        .parse()
        .unwrap();
    let desired: BTreeSet<IpNet> = ["192.0.2.1/32".parse().unwrap()].into();
    for code in [
        "ThrottlingException",
        "WAFLimitsExceededException",
        "WAFOptimisticLockException",
    ] {
        // A storm of 5, then success.
        let storm = mock!(aws_sdk_wafv2::Client::update_ip_set)
            .sequence()
            .http_status(400, Some(waf_error(code)))
            .times(5)
            .output(|| UpdateIpSetOutput::builder().next_lock_token("t2").build())
            .build();
        let get = get_ip_set_rule();
        let waf = mock_waf(&[&get, &storm]);
        let started = Instant::now();
        let out = rt
            .block_on(sync_set(&waf, &set, &desired, || std::future::ready(())))
            .unwrap();
        assert!(out.written, "{code}: {out:?}");
        assert_eq!(out.lock_retries + out.throttled, 5, "{code}: {out:?}");
        assert_eq!(storm.num_calls(), 6);
        assert_eq!(get.num_calls(), 6, "a fresh lock token for every attempt");
        // Jittered exponential backoff: at least half of 80+160+320+640+1280 ms.
        assert!(
            started.elapsed() >= Duration::from_millis(1200),
            "{code}: {:?}",
            started.elapsed()
        );
        eprintln!("{code} ×5: synced after {:?}, {out:?}", started.elapsed());
    }
    // A storm longer than sync_set's 8 attempts: an error, retryable.
    let storm = mock!(aws_sdk_wafv2::Client::update_ip_set)
        .sequence()
        .http_status(400, Some(waf_error("WAFOptimisticLockException")))
        .repeatedly()
        .build();
    let get = get_ip_set_rule();
    let waf = mock_waf(&[&get, &storm]);
    let e = rt
        .block_on(sync_set(&waf, &set, &desired, || std::future::ready(())))
        .unwrap_err();
    assert_eq!(e.code.as_deref(), Some("WAFOptimisticLockException"));
    assert_eq!(storm.num_calls(), 8);
    assert!(ServiceError::from(e).retryable());
}

#[test]
fn a_failed_waf_sync_leaves_the_block_in_the_ledger_and_the_reconcile_heals_it() {
    let acct = Account::new();
    let rt = runtime();
    let keys = attack_objects(&acct, wall_ms() - 120_000, 7);
    let v4 = acct.v4.0.clone();
    let throttled = mock!(aws_sdk_wafv2::Client::update_ip_set)
        .match_requests(move |r| r.name() == Some(v4.as_str()))
        .sequence()
        .http_status(400, Some(waf_error("ThrottlingException")))
        .repeatedly()
        .build();
    let svc = faulty_service(&acct, &rt, &[], &[&throttled], None);
    let mut failed = None;
    for k in &keys {
        match rt.block_on(svc.ingest_object(&acct.logs, k, wall_ms(), "req-1", None)) {
            Ok(r) => assert!(r.blocks.is_empty()),
            Err(e) => failed = Some(e),
        }
    }
    let e = failed.expect("the sync failed");
    assert!(e.retryable(), "{e}");
    assert_eq!(throttled.num_calls(), 8, "sync_set's attempts");
    // WAF does not hold the block; the ledger does, and the lease was released.
    assert!(acct.ip_set(&acct.v4).is_empty());
    let want = BTreeSet::from(["198.51.100.66/32".to_string()]);
    assert_eq!(desired_v4(&svc, &rt), want);
    assert_eq!(acct.state_object("waf-writer.json").unwrap()["holder"], "");
    // A retry of the invocation finds the object absorbed and the block
    // decided: it does not enforce. The expire reconcile does.
    let healthy = acct.service(&[]);
    let r = rt
        .block_on(healthy.ingest_object(&acct.logs, &keys[2], wall_ms(), "req-2", None))
        .unwrap();
    assert!(r.duplicate && r.enforce.is_none(), "{r:?}");
    let rep = rt.block_on(healthy.enforce(wall_ms(), "expire")).unwrap();
    assert!(!rep.deferred && rep.writes == 1, "{rep:?}");
    assert_eq!(acct.ip_set(&acct.v4), want);
}

#[test]
fn a_foreign_writer_storming_the_ip_set_cannot_keep_it_from_converging() {
    let acct = Account::new();
    let rt = runtime();
    // Decide the block without touching WAF.
    let dry = acct.service(&[("FAIL2WAF_DRY_RUN", "true")]);
    for k in attack_objects(&acct, wall_ms() - 120_000, 8) {
        rt.block_on(dry.ingest_object(&acct.logs, &k, wall_ms(), "dry", None))
            .unwrap();
    }
    let svc = acct.service(&[]);
    let want = desired_v4(&svc, &rt);
    assert_eq!(want, BTreeSet::from(["198.51.100.66/32".to_string()]));
    // Someone else hammers UpdateIPSet on the same set for a few seconds.
    let stop = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(AtomicU32::new(0));
    let (name, id) = (acct.v4.0.clone(), acct.v4.1.clone());
    let foreign = {
        let (stop, writes) = (stop.clone(), writes.clone());
        std::thread::spawn(move || {
            let mut i = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let (_, got) = moto().wafv2(
                    "GetIPSet",
                    &json!({"Name": name, "Scope": "REGIONAL", "Id": id}),
                );
                let (status, _) = moto().wafv2(
                    "UpdateIPSet",
                    &json!({"Name": name, "Scope": "REGIONAL", "Id": id,
                            "Addresses": [format!("203.0.113.{}/32", i % 200)],
                            "LockToken": got["LockToken"]}),
                );
                if status == 200 {
                    writes.fetch_add(1, Ordering::Relaxed);
                }
                i += 1;
            }
        })
    };
    let started = Instant::now();
    let mut outcomes = vec![];
    let mut lock_retries = 0;
    while started.elapsed() < Duration::from_secs(4) {
        match rt.block_on(svc.enforce(wall_ms(), "req-storm")) {
            Ok(r) => {
                lock_retries += r.lock_retries;
                outcomes.push(format!(
                    "ok ({} writes, {} lock retries)",
                    r.writes, r.lock_retries
                ));
            }
            Err(e) => outcomes.push(format!("error: {e}")),
        }
    }
    stop.store(true, Ordering::Relaxed);
    foreign.join().unwrap();
    eprintln!(
        "foreign writer: {} writes in {:?}; fail2waf during the storm: {outcomes:?}",
        writes.load(Ordering::Relaxed),
        started.elapsed()
    );
    assert!(writes.load(Ordering::Relaxed) > 10);
    assert!(
        lock_retries > 0 || outcomes.iter().any(|o| o.contains("WAFOptimisticLock")),
        "the storm did not collide: {outcomes:?}"
    );
    // Afterwards, the next reconcile makes the set the ledger's again.
    let rep = rt.block_on(svc.enforce(wall_ms(), "expire")).unwrap();
    assert!(!rep.deferred, "{rep:?}");
    assert_eq!(acct.ip_set(&acct.v4), want);
}

/// `n` addresses, each in a /24 of another state shard.
fn addresses_in_distinct_shards(acct: &Account, n: usize) -> Vec<String> {
    let probe = acct.service(&[]);
    let mut addrs = vec![];
    let mut seen = BTreeSet::new();
    for net in 0..256u32 {
        let ip = format!("10.{}.{}.5", net / 16, net % 16);
        if seen.insert(probe.store.shard_of(&format!("{ip}/32").parse().unwrap())) {
            addrs.push(ip);
        }
        if addrs.len() == n {
            return addrs;
        }
    }
    panic!("fewer than {n} shards");
}

// ---------------------------------------------------------------------------
// The cost of a merge

#[test]
fn without_contention_an_object_costs_one_get_and_one_put_per_touched_shard() {
    let acct = Account::new();
    let rt = runtime();
    let t0 = wall_ms() - 300_000;
    let addrs = addresses_in_distinct_shards(&acct, 5);
    let svc = faulty_service(&acct, &rt, &[], &[], None);
    let requests = |svc: &Service| {
        let st = &svc.store.stats;
        (
            st.gets.load(Ordering::Relaxed),
            st.puts.load(Ordering::Relaxed),
        )
    };
    for (i, touched) in [5usize, 2].into_iter().enumerate() {
        let key = alb_key(8, i as u32 + 1);
        quiet_object(&acct, &key, t0 + i as i64 * 10_000, &addrs[..touched], 3);
        let before = requests(&svc);
        let r = rt
            .block_on(svc.ingest_object(&acct.logs, &key, wall_ms(), &format!("req-{i}"), None))
            .unwrap();
        let (gets, puts) = requests(&svc);
        assert_eq!(r.shards_written as usize, touched, "{r:?}");
        // Each touched shard once each way, plus the ledger (read for the
        // thresholds) and the site counts (read and written).
        assert_eq!(gets - before.0, touched as u64 + 2, "{r:?}");
        assert_eq!(puts - before.1, touched as u64 + 1, "{r:?}");
        assert_eq!(svc.store.stats.cas_retries.load(Ordering::Relaxed), 0);
    }
}

// ---------------------------------------------------------------------------
// The Lambda deadline

#[test]
fn past_the_deadline_margin_the_ingest_starts_no_more_shards_and_the_retry_finishes() {
    let acct = Account::new();
    let rt = runtime();
    let t0 = wall_ms() - 300_000;
    // More shards than one ingest writes at once: the first SHARD_WRITES
    // start together, the rest wait for a free slot.
    let addrs = addresses_in_distinct_shards(&acct, SHARD_WRITES + 3);
    let key = alb_key(8, 1);
    let lines = quiet_object(&acct, &key, t0, &addrs, 3);
    // Every shard write lasts until just past the deadline's cutoff. The
    // work before the first takes milliseconds; the 3 s budget is for a
    // loaded machine (a fixed 1 s once ran out before the first write in CI).
    let budget = Duration::from_secs(3);
    let cutoff = Arc::new(std::sync::OnceLock::<Instant>::new());
    let cutoff_at = cutoff.clone();
    let delay: Delay = Arc::new(move |req: &HttpRequest| {
        (req.method() == "PUT" && req.uri().contains("/v1/shard-")).then(|| {
            let cutoff = *cutoff_at.get().expect("the deadline is set");
            cutoff.saturating_duration_since(Instant::now()) + Duration::from_millis(200)
        })
    });
    let svc = faulty_service(&acct, &rt, &[], &[], Some(delay));
    let deadline = Deadline::after(budget);
    cutoff.set(Instant::now() + budget).unwrap();
    let e = rt
        .block_on(svc.ingest_object(&acct.logs, &key, wall_ms(), "req-1", Some(&deadline)))
        .unwrap_err();
    assert!(e.retryable() && e.to_string().contains("deadline"), "{e}");
    // The shards in flight written whole, the others untouched; the site counted.
    let sh = shards(&acct, 16);
    assert_eq!(absorbed_in(&sh, &key), SHARD_WRITES);
    assert_eq!(site_total(&acct), lines as u64);
    assert!(matched(&sh) < lines as u64);
    // The retry (a fresh invocation) finishes the work, nothing doubled.
    let r = rt
        .block_on(svc.ingest_object(&acct.logs, &key, wall_ms(), "req-2", None))
        .unwrap();
    assert_eq!(r.shards_written, 3, "{r:?}");
    let sh = shards(&acct, 16);
    assert_eq!(absorbed_in(&sh, &key), SHARD_WRITES + 3);
    assert_eq!(matched(&sh), lines as u64);
    assert_eq!(site_total(&acct), lines as u64);
}

#[test]
fn the_function_stops_at_its_deadline_and_the_next_invocation_completes() {
    let acct = Account::new();
    let keys = attack_objects(&acct, wall_ms() - 120_000, 9);
    let api = RuntimeApi::start();
    let f = spawn_function(function("ingest"), &api, &acct.env(&[]));
    let sqs_message = |id: &str, key: &str| {
        json!({"messageId": id, "receiptHandle": "r", "body": s3_event(&acct.logs, &[key]).to_string(),
               "attributes": {}, "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
               "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q", "awsRegion": "us-east-1"})
    };
    let sqs = json!({"Records": [
        sqs_message("m1", &keys[0]), sqs_message("m2", &keys[1]), sqs_message("m3", &keys[2])
    ]});
    let direct = s3_event(&acct.logs, &[&keys[0]]);
    // The deadline is already (almost) there when the invocation starts.
    api.set_function_timeout(Duration::ZERO);
    match api.invoke(&direct) {
        Invocation::Error {
            error_type,
            message,
        } => {
            assert_eq!(error_type, "Fail2waf.Retryable");
            assert!(message.contains("deadline"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let out = api.invoke(&sqs);
    let failures: Vec<&str> = response(&out)["batchItemFailures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap())
        .collect();
    assert_eq!(failures, ["m1", "m2", "m3"]);
    assert!(
        acct.state_object("site.json").is_none(),
        "nothing half-done"
    );
    // Lambda retries them with time to spare.
    api.set_function_timeout(Duration::from_secs(60));
    response(&api.invoke(&direct));
    let out = api.invoke(&sqs);
    assert_eq!(response(&out)["batchItemFailures"], json!([]));
    f.finish();
    // 36 probes and 36 ordinary requests, each counted once; the block made.
    assert_eq!(site_total(&acct), 72);
    assert_eq!(
        acct.ip_set(&acct.v4),
        BTreeSet::from(["198.51.100.66/32".to_string()])
    );
}

// ---------------------------------------------------------------------------
// Load

#[test]
fn a_hundred_concurrent_ingests_lose_no_count_and_waf_writes_stay_under_one_per_second() {
    let acct = Account::new();
    let t0 = wall_ms() - 600_000;
    const N: u32 = 100;
    // Each object: 3 × 404 from 4 addresses in each of 3 of 8 /24s (shards
    // overlap between objects), and every tenth object a scanner of its own.
    let mut keys = vec![];
    let mut expected = 0u64;
    let mut scanners = BTreeSet::new();
    for n in 0..N {
        let mut lines = vec![];
        for net in [n % 8, (n + 1) % 8, (n + 3) % 8] {
            for a in 0..4 {
                for i in 0..3 {
                    lines.push(line_at(
                        t0 + i64::from(n) * 3000 + i * 1000 + i64::from(a),
                        &format!("172.16.{net}.{}", a + 10 + (n % 5) * 4),
                        &format!("/c{n}/{a}/{i}"),
                        404,
                    ));
                }
            }
        }
        expected += lines.len() as u64;
        if n % 10 == 0 {
            let ip = format!("198.51.{}.{}", 100 + n / 10, 7);
            for i in 0..30 {
                lines.push(line_at(t0 + i * 1000, &ip, &format!("/s{i}"), 404));
            }
            expected += 30;
            scanners.insert(format!("{ip}/32"));
        }
        let key = alb_key(9, 1000 + n);
        acct.put_log(&key, &lines);
        keys.push(key);
    }
    let svc = Arc::new(acct.service(&[]));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
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
    let elapsed = started.elapsed().as_secs_f64();
    let retries = svc.store.stats.cas_retries.load(Ordering::Relaxed);
    let (gets, puts) = (
        svc.store.stats.gets.load(Ordering::Relaxed),
        svc.store.stats.puts.load(Ordering::Relaxed),
    );
    let enforcements: Vec<_> = reports.iter().filter_map(|r| r.enforce.as_ref()).collect();
    let writes: u32 = enforcements.iter().map(|e| e.writes).sum();
    let deferred = enforcements.iter().filter(|e| e.deferred).count();
    let sh = shards(&acct, svc.store.shards());
    let counted = matched(&sh);
    let absorbed: BTreeSet<&String> = sh.iter().flat_map(|(_, s)| s.absorbed.keys()).collect();
    let want = desired_v4(&svc, &rt);
    let converged = acct.ip_set(&acct.v4) == want;
    eprintln!(
        "{N} concurrent ingests in {elapsed:.1} s ({:.1} objects/s): {retries} CAS retries \
         ({gets} GETs, {puts} PUTs), counts {counted} of {expected} (lost {}), \
         {} blocks, {writes} WAF writes ({:.2}/s), {} enforcements ({deferred} deferred), \
         converged without help: {converged}",
        f64::from(N) / elapsed,
        expected as i64 - counted as i64,
        want.len(),
        f64::from(writes) / elapsed,
        enforcements.len(),
    );
    assert!(reports.iter().all(|r| r.skipped.is_none() && !r.duplicate));
    assert_eq!(counted, expected, "lost or doubled counts");
    assert_eq!(site_total(&acct), expected);
    assert_eq!(absorbed.len(), N as usize);
    assert!(retries > 0, "the writers did not collide");
    assert!(scanners.is_subset(&want), "{scanners:?} {want:?}");
    assert!(
        f64::from(writes) <= elapsed + 1.0,
        "{writes} writes in {elapsed:.1} s"
    );
    rt.block_on(svc.enforce(wall_ms(), "reconcile")).unwrap();
    assert_eq!(acct.ip_set(&acct.v4), want);
}
