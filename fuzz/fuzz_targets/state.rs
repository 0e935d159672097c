//! Stored state as read back from S3 or a state directory: the windows
//! (`StoredState`) and the ledger (`Ledger`), as JSON. They are written by
//! fail2waf itself, but a bucket or a directory can hold anything (an old
//! version, a hand edit, a bug): reading them must never panic, and nothing
//! they say may get past the policy on its way to WAF.
#![no_main]

use fail2waf_core::config::Config;
use fail2waf_core::engine::StoredState;
use fail2waf_core::formats::Format;
use fail2waf_core::ledger::Ledger;
use fail2waf_core::pipeline::Pipeline;
use libfuzzer_sys::fuzz_target;
use std::io::Cursor;
use std::sync::LazyLock;

static CONFIG: LazyLock<Config> = LazyLock::new(|| {
    Config::parse(
        r#"
allow = ["203.0.113.0/25"]
trusted_proxies = ["10.0.0.0/8"]
capacity_v4 = 50
"#,
    )
    .expect("valid")
});

/// A scanner's 40 404s, so the imported state meets fresh counts.
static LINES: LazyLock<Vec<u8>> = LazyLock::new(|| {
    let mut text = String::new();
    for i in 0..40 {
        text += &format!(
            "http 2026-01-01T00:00:{i:02}.000000Z app/lb/1 198.51.100.7:4000 10.0.0.1:80 0.000 0.001 0.000 404 404 10 20 \"GET http://shop.example.com:80/p{i} HTTP/1.1\" \"scan/1.0\" - -\n"
        );
    }
    text.into_bytes()
});

fuzz_target!(|data: &[u8]| {
    let state = serde_json::from_slice::<StoredState>(data).ok();
    let ledger = serde_json::from_slice::<Ledger>(data).ok();
    if state.is_none() && ledger.is_none() {
        return;
    }
    let mut d = Pipeline::with_state(CONFIG.clone(), state.as_ref(), ledger.unwrap_or_default());
    d.set_threads(1);
    d.engine_mut().evaluate_all();
    d.settle();
    d.process("x.log", Cursor::new(LINES.clone()), Some(&Format::Alb));
    d.settle();
    for dec in d.decisions() {
        assert!(d.policy().check(&dec.key).is_ok(), "policy refuses {dec:?}");
        assert_eq!(dec.key, dec.key.trunc(), "host bits set: {dec:?}");
    }
    // What would be sent to WAF, at several times around the stored ones.
    let (mut engine, mut ledger) = d.into_parts();
    let policy = fail2waf_core::ledger::Policy::new(&CONFIG);
    for now in [i64::MIN, -1, 0, 1_767_225_600_000, i64::MAX] {
        let want = ledger.desired(now, &policy);
        assert!(want.v4.len() <= policy.capacity.0 && want.v6.len() <= policy.capacity.1);
        for net in want.v4.iter().chain(&want.v6) {
            let key = fail2waf_core::key::Key::Net(*net);
            assert!(policy.check(&key).is_ok(), "{net} would reach WAF");
            assert_eq!(*net, net.trunc());
        }
        for user in &want.users {
            let key = fail2waf_core::key::Key::User(user.clone());
            assert!(policy.check(&key).is_ok(), "{key} would reach WAF");
        }
    }
    ledger.expire(1_767_225_600_000, &policy);
    // What fail2waf writes back reads back the same (run-local fields such
    // as `quiet_until` are not stored: compare what is).
    engine.prune();
    let out = serde_json::to_vec(&engine.export()).unwrap();
    let again: StoredState = serde_json::from_slice(&out).unwrap();
    assert_eq!(serde_json::to_vec(&again).unwrap(), out);
    let out = serde_json::to_vec(&ledger).unwrap();
    let again: Ledger = serde_json::from_slice(&out).unwrap();
    assert_eq!(serde_json::to_vec(&again).unwrap(), out);
});
