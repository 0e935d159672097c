//! The whole pipeline on one file of attacker-controlled bytes: reader
//! (gzip by magic bytes, line splitting), format detection, parsing,
//! client resolution, windows, rules, engine and ledger together.
#![no_main]

use fail2waf_core::config::Config;
use fail2waf_core::formats::Format;
use fail2waf_core::pipeline::{Pipeline, FileReport};
use libfuzzer_sys::fuzz_target;
use std::io::{Cursor, Write};
use std::sync::LazyLock;

static DEFAULT: LazyLock<Config> = LazyLock::new(Config::default);

/// The defaults plus an allow-list and trusted proxies that overlap the
/// seed corpus's attackers.
static GUARDED: LazyLock<Config> = LazyLock::new(|| {
    Config::parse(
        r#"
allow = ["203.0.113.0/25", "2001:db8:bad::/48"]
trusted_proxies = ["10.0.0.0/8", "198.51.100.0/28"]
"#,
    )
    .expect("valid")
});

/// One run; its report and decisions. With `threads` > 1, every line is
/// parsed on the reading thread.
fn run(config: &Config, data: Vec<u8>, format: Option<&Format>, threads: usize) -> String {
    let mut d = Pipeline::new(config.clone());
    d.set_threads(threads);
    d.set_parse_ahead(true);
    let r = d.process("fuzz-input", Cursor::new(data), format);
    check(&r);
    for dec in d.decisions() {
        // Every block passes the policy: never /0, never wider than the
        // widest prefix, never allow-listed, never a trusted proxy.
        assert!(dec.key.net().is_none_or(|n| n.prefix_len() > 0), "a /0 block: {dec:?}");
        assert_eq!(dec.key, dec.key.trunc(), "host bits set: {dec:?}");
        assert!(d.policy().check(&dec.key).is_ok(), "policy refuses {dec:?}");
        assert!(dec.block.until_ms >= dec.block.since_ms, "{dec:?}");
    }
    format!("{r:?} {:?}", d.decisions())
}

fn check(r: &FileReport) {
    assert_eq!(r.lines_parsed + r.lines_skipped, r.lines_read, "{r:?}");
    assert_eq!(r.skip_reasons.values().sum::<u64>(), r.lines_skipped, "{r:?}");
    assert!(r.skip_reasons.keys().all(|k| !k.starts_with(':')), "{r:?}");
}

fuzz_target!(|data: &[u8]| {
    // One thread for the plain runs (a thread per run costs more than the
    // run); the gzip one with one thread and with the reading thread
    // parsing, which must agree.
    run(&DEFAULT, data.to_vec(), None, 1);
    run(&GUARDED, data.to_vec(), Some(&Format::Alb), 1);
    if data.len() <= 4096 {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(data).unwrap();
        let gz = gz.finish().unwrap();
        let one = run(&DEFAULT, gz.clone(), None, 1);
        assert_eq!(one, run(&DEFAULT, gz, None, 2), "parsed on the reading thread");
    }
});
