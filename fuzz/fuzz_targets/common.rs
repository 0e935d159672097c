//! Shared by the line-parser targets: feed every line of the input to one
//! parser (so stateful parsers, CloudFront's `#Fields` header, see a file),
//! and check only what must hold for any input.
#![allow(dead_code)]

use fail2waf_core::client::ClientResolver;
use fail2waf_core::engine::clip;
use fail2waf_core::formats::{LineParser, ParseError};
use fail2waf_core::hit::Hit;
use ipnet::IpNet;
use std::sync::LazyLock;

/// Trusted proxies for the resolver check.
pub static TRUSTED: LazyLock<Vec<IpNet>> = LazyLock::new(|| {
    ["10.0.0.0/8", "192.0.2.0/24", "2001:db8::/32", "::ffff:0:0/96"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect()
});

static RESOLVER: LazyLock<ClientResolver> =
    LazyLock::new(|| ClientResolver::new(TRUSTED.clone(), 64));

/// The input's lines, as `read::Lines` hands them out: split on `\n`, one
/// trailing `\r` removed.
pub fn lines(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    data.split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
}

/// A parse error names a field and a reason.
pub fn check_error(e: &ParseError) {
    assert!(!e.field.is_empty(), "parse error without a field: {e:?}");
    assert!(!e.reason.is_empty(), "parse error without a reason: {e:?}");
}

/// What must hold for any hit a parser returns.
pub fn check_hit(hit: &Hit<'_>) {
    // Text taken from logs is printed through `clip`: no control character
    // may survive it (log and terminal injection).
    for text in [&hit.path, &hit.method, &hit.host, &hit.user_agent] {
        let c = clip(text, 200);
        assert!(!c.chars().any(char::is_control), "control char in {c:?}");
    }
    if let Some(x) = &hit.forwarded_for {
        let c = clip(x, 200);
        assert!(!c.chars().any(char::is_control), "control char in {c:?}");
    }
    // A request never counts for a trusted proxy, whatever X-Forwarded-For
    // says; and keys are networks with their host bits masked.
    if let Some(ip) = RESOLVER.client(hit) {
        assert!(
            !TRUSTED.iter().any(|n| n.contains(&ip)),
            "counted for a trusted proxy: {ip} ({hit:?})"
        );
        let key = RESOLVER.key(ip);
        assert_eq!(key, key.trunc());
        assert!(key.contains(&ip));
    }
}

/// Parse every line of `data` with `parser`.
pub fn parse_all(parser: &mut dyn LineParser, data: &[u8]) {
    for line in lines(data) {
        match parser.parse(line) {
            Ok(Some(hit)) => check_hit(&hit),
            Ok(None) => {}
            Err(e) => check_error(&e),
        }
    }
}

/// Findings already reported and not yet fixed. With `FUZZ_TOLERATE_KNOWN=1`
/// in the environment, a panic that matches one of these (file suffix,
/// message) is swallowed and the input ignored, so a run can go on looking
/// for other bugs; without it (the default) they crash like any other.
/// Remove an entry when its bug is fixed. See README.md, "Findings".
pub const KNOWN: &[(&str, &str)] = &[
    // F1: `Engine::observe`, `self.last_prune + 6` overflows (u32) once an
    // event time puts the newest bucket within 6 of u32::MAX.
    ("shared/src/engine.rs", "attempt to add with overflow"),
    // Not a finding: the warm-up panic of `guarded` below.
    ("fuzz_targets/common.rs", "fail2waf-fuzz warm-up"),
];

pub fn tolerate_known() -> bool {
    static ON: LazyLock<bool> =
        LazyLock::new(|| std::env::var_os("FUZZ_TOLERATE_KNOWN").is_some_and(|v| v == "1"));
    *ON
}

thread_local! {
    static KNOWN_HIT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Run `f`; with [`tolerate_known`], a panic listed in [`KNOWN`] returns
/// `None` instead of crashing the fuzzer. Any other panic still aborts.
pub fn guarded<T>(f: impl FnOnce() -> T) -> Option<T> {
    if !tolerate_known() {
        return Some(f());
    }
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        // libfuzzer-sys's hook aborts the process: call it for anything
        // that is not a known finding.
        let fuzzer_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let file = info.location().map(|l| l.file()).unwrap_or("");
            let msg = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_default();
            if KNOWN.iter().any(|(f, m)| file.ends_with(f) && msg.contains(m)) {
                KNOWN_HIT.with(|k| k.set(true));
            } else {
                fuzzer_hook(info);
            }
        }));
        // Unwind once before fuzzing: the first panic of a thread sets up
        // thread-local state that LeakSanitizer would otherwise report as
        // leaked by whichever input first hits a known finding.
        let _ = std::panic::catch_unwind(|| panic!("fail2waf-fuzz warm-up"));
    });
    KNOWN_HIT.with(|k| k.set(false));
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(v) => Some(v),
        Err(p) if KNOWN_HIT.with(|k| k.get()) => {
            drop(p);
            None
        }
        Err(p) => std::panic::resume_unwind(p),
    }
}
