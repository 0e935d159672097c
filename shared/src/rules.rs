//! Rules: what to count, per which key, over which window, and how long to
//! ban for.

use crate::duration::Secs;
use crate::hit::Hit;
use regex::Regex;
use serde::{Deserialize, Serialize};

/// A set of HTTP status codes written as `"404"`, `"4xx"` or `"40x"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StatusPattern {
    text: String,
    lo: u16,
    hi: u16,
}

impl StatusPattern {
    /// Does `status` fall in this pattern?
    pub fn contains(&self, status: u16) -> bool {
        (self.lo..=self.hi).contains(&status)
    }
}

/// A text that is not a status code nor a class of them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("status `{0}`: use a code (`404`) or a class (`4xx`, `40x`)")]
pub struct StatusPatternError(pub String);

impl TryFrom<String> for StatusPattern {
    type Error = StatusPatternError;
    fn try_from(text: String) -> Result<Self, StatusPatternError> {
        let t = text.trim().to_ascii_lowercase();
        let bad = || StatusPatternError(text.clone());
        if t.len() != 3 || !t.as_bytes()[0].is_ascii_digit() || t.starts_with('0') {
            return Err(bad());
        }
        let xs = t.bytes().rev().take_while(|&b| b == b'x').count();
        let digits = &t[..3 - xs];
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let base: u16 = digits.parse().map_err(|_| bad())?;
        let scale = 10u16.pow(u32::try_from(xs).unwrap_or(0));
        let lo = base * scale;
        if !(100..=599).contains(&lo) {
            return Err(bad());
        }
        Ok(StatusPattern {
            text: t,
            lo,
            hi: lo + scale - 1,
        })
    }
}

impl From<StatusPattern> for String {
    fn from(p: StatusPattern) -> String {
        p.text
    }
}

/// What a rule counts per.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyKind {
    /// The client address (IPv6 folded to the configured prefix, /64 by default).
    #[default]
    Ip,
    /// The network prefix around the client (`prefix_v4`, `prefix_v6`).
    Prefix,
    /// The application user the log names (`user` capture or field, a
    /// configured WAF header or cookie); requests without one count for
    /// nobody under this rule. `min_members` is then the distinct
    /// addresses the user came from.
    User,
}

/// A rule as written in the config file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Unique name, shown in every decision (`scan-burst`).
    pub name: String,
    /// One sentence for operators: what this rule catches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Status codes or classes that match (`["4xx", "5xx"]`). Empty: any.
    #[serde(default)]
    pub status: Vec<StatusPattern>,
    /// Status codes or classes excluded from `status` (`["401", "429"]`).
    #[serde(default)]
    pub exclude_status: Vec<StatusPattern>,
    /// HTTP methods that match (`["POST"]`). Empty: any.
    #[serde(default)]
    pub methods: Vec<String>,
    /// Regex on the path and query. Absent: any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// WAF actions that match (`["BLOCK"]`), WAF logs only. Empty: any.
    #[serde(default)]
    pub waf_action: Vec<String>,
    /// WAF terminating rule ids that match. Empty: any.
    #[serde(default)]
    pub waf_rule: Vec<String>,
    /// WAF label prefixes that match (`awswaf:managed:aws:`). Empty: any.
    #[serde(default)]
    pub waf_label: Vec<String>,
    /// Count per address (`ip`) or per network (`prefix`).
    #[serde(default)]
    pub key: KeyKind,
    /// IPv4 prefix length for `key = "prefix"`.
    #[serde(default = "default_prefix_v4")]
    pub prefix_v4: u8,
    /// IPv6 prefix length for `key = "prefix"`.
    #[serde(default = "default_prefix_v6")]
    pub prefix_v6: u8,
    /// For `key = "prefix"`: distinct offending members (addresses, IPv6 /64s)
    /// needed in the window; for `key = "user"`: distinct addresses.
    #[serde(default = "one")]
    pub min_members: u32,
    /// Sliding window length (a multiple of the bucket width).
    pub window: Secs,
    /// Matched requests in one window that make an offense.
    pub threshold: u32,
    /// Minimum share of matched requests among all the key's requests in
    /// the window (0–1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_ratio: Option<f64>,
    /// Minimum number of all requests of the key in the window.
    #[serde(default)]
    pub min_requests: u32,
    /// Minimum number of distinct matched paths in the window.
    #[serde(default)]
    pub distinct_paths: u32,
    /// Count the query string too in `distinct_paths` (fuzzers vary
    /// parameters on one path; a client retrying one failing URL does not).
    #[serde(default)]
    pub distinct_include_query: bool,
    /// Do not count a client that only saw what everyone else saw: when the
    /// rest of the site gets matching responses at `outage.share` or more,
    /// or is too quiet to tell, the rule does not fire. Default: true when
    /// `status` includes 5xx codes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outage_aware: Option<bool>,
    /// First ban length.
    #[serde(default = "default_ban")]
    pub ban: Secs,
    /// Each repeat offense multiplies the ban by this factor (≥ 1).
    #[serde(default = "default_ban_factor")]
    pub ban_factor: f64,
    /// Longest ban.
    #[serde(default = "default_ban_max")]
    pub ban_max: Secs,
}

fn default_prefix_v4() -> u8 {
    24
}
fn default_prefix_v6() -> u8 {
    48
}
fn one() -> u32 {
    1
}
fn default_ban() -> Secs {
    Secs(3600)
}
fn default_ban_factor() -> f64 {
    2.0
}
fn default_ban_max() -> Secs {
    Secs(7 * 86_400)
}

/// A validated rule, ready to match.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The rule as configured.
    pub config: RuleConfig,
    path: Option<Regex>,
    methods: Vec<String>,
    /// Window length in buckets.
    pub window_buckets: u32,
    /// Effective outage awareness.
    pub outage_aware: bool,
}

/// A rule that cannot be used, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rule `{rule}`, field `{field}`: {message}")]
pub struct RuleError {
    /// The rule's name.
    pub rule: String,
    /// The field at fault.
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
}

impl Rule {
    /// Validate `config` for a bucket width of `bucket` seconds.
    pub fn new(config: RuleConfig, bucket: Secs) -> Result<Rule, RuleError> {
        let err = |field: &'static str, message: String| RuleError {
            rule: config.name.clone(),
            field,
            message,
        };
        if config.name.trim().is_empty()
            || !config
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(err("name", "use letters, digits, `-` and `_`".into()));
        }
        if config.threshold == 0 {
            return Err(err("threshold", "must be at least 1".into()));
        }
        if config.window.0 == 0 || bucket.0 == 0 || config.window.0 % bucket.0 != 0 {
            return Err(err(
                "window",
                format!("must be a positive multiple of the bucket width ({bucket})"),
            ));
        }
        let window_buckets = u32::try_from(config.window.0 / bucket.0)
            .ok()
            .filter(|&n| n <= 8640)
            .ok_or_else(|| err("window", "too long (at most 8640 buckets)".into()))?;
        if let Some(r) = config.min_ratio {
            if !(0.0..=1.0).contains(&r) {
                return Err(err("min_ratio", "must be between 0 and 1".into()));
            }
        }
        if config.ban_factor.is_nan() || config.ban_factor < 1.0 {
            return Err(err("ban_factor", "must be at least 1".into()));
        }
        if config.ban.0 == 0 || config.ban_max < config.ban {
            return Err(err(
                "ban",
                "must be positive and not longer than `ban_max`".into(),
            ));
        }
        if config.prefix_v4 == 0 || config.prefix_v4 > 32 {
            return Err(err("prefix_v4", "must be 1–32".into()));
        }
        if config.prefix_v6 == 0 || config.prefix_v6 > 128 {
            return Err(err("prefix_v6", "must be 1–128".into()));
        }
        if config.key == KeyKind::Ip && config.min_members > 1 {
            return Err(err(
                "min_members",
                "only applies to `key = \"prefix\"` or `key = \"user\"`".into(),
            ));
        }
        if config.distinct_paths > 1024 || config.min_members > 1024 {
            return Err(err("distinct_paths", "at most 1024".into()));
        }
        let path = match &config.path {
            Some(p) => Some(
                regex::RegexBuilder::new(p)
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| err("path", e.to_string()))?,
            ),
            None => None,
        };
        let methods = config
            .methods
            .iter()
            .map(|m| m.to_ascii_uppercase())
            .collect();
        let has_5xx = config.status.iter().any(|p| p.lo <= 599 && p.hi >= 500);
        let outage_aware = config.outage_aware.unwrap_or(has_5xx);
        Ok(Rule {
            config,
            path,
            methods,
            window_buckets,
            outage_aware,
        })
    }

    /// The rule's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Does this rule look at the response status?
    pub fn uses_status(&self) -> bool {
        !self.config.status.is_empty() || !self.config.exclude_status.is_empty()
    }

    /// Does the status of `hit` pass this rule's status condition (codes,
    /// classes and exclusions; true when the rule has none)?
    pub fn status_ok(&self, hit: &Hit<'_>) -> bool {
        let c = &self.config;
        (c.status.is_empty() || c.status.iter().any(|p| p.contains(hit.status)))
            && !c.exclude_status.iter().any(|p| p.contains(hit.status))
    }

    /// Whether the rule matches only requests with a WAF verdict
    /// ([`Hit::waf`]: WAF logs), having a `waf_action`, `waf_rule` or
    /// `waf_label` condition.
    pub fn needs_waf_verdict(&self) -> bool {
        let c = &self.config;
        !c.waf_action.is_empty() || !c.waf_rule.is_empty() || !c.waf_label.is_empty()
    }

    /// Does `hit` match this rule? `own_waf_rule` is the prefix of the WAF
    /// rule that enforces fail2waf's own IP sets: requests it blocked never
    /// count, or a block would renew itself.
    pub fn matches(&self, hit: &Hit<'_>, own_waf_rule: &str) -> bool {
        let c = &self.config;
        if self.uses_status() && (hit.blocked_by_waf || hit.status == 0 || !self.status_ok(hit)) {
            return false;
        }
        if !self.methods.is_empty()
            && !self
                .methods
                .iter()
                .any(|m| m.eq_ignore_ascii_case(&hit.method))
        {
            return false;
        }
        if self.needs_waf_verdict() {
            let Some(w) = &hit.waf else { return false };
            if !own_waf_rule.is_empty() && w.rule.starts_with(own_waf_rule) {
                return false;
            }
            if !c.waf_action.is_empty()
                && !c
                    .waf_action
                    .iter()
                    .any(|a| a.eq_ignore_ascii_case(&w.action))
            {
                return false;
            }
            if !c.waf_rule.is_empty() && !c.waf_rule.iter().any(|r| *r == w.rule) {
                return false;
            }
            if !c.waf_label.is_empty()
                && !w
                    .labels
                    .iter()
                    .any(|l| c.waf_label.iter().any(|p| l.starts_with(p.as_str())))
            {
                return false;
            }
        }
        if let Some(re) = &self.path {
            if !re.is_match(&hit.path) {
                return false;
            }
        }
        true
    }
}

/// The most rules one configuration may have (a [`RuleSet`] holds a bit
/// per rule).
pub const MAX_RULES: usize = 64;

/// A set of rules by their index in the configuration: what a request
/// matched, which rules are outage-aware, which may match a status. Not a
/// count (those are plain integers).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct RuleSet(u64);

impl RuleSet {
    /// No rule.
    pub const EMPTY: RuleSet = RuleSet(0);
    /// Every rule there may be.
    pub const ALL: RuleSet = RuleSet(u64::MAX);

    /// The rules `i` for which `f(i, &rules[i])` holds.
    pub fn of<T>(rules: &[T], f: impl Fn(&T) -> bool) -> RuleSet {
        rules
            .iter()
            .enumerate()
            .filter(|(_, r)| f(r))
            .map(|(i, _)| i)
            .collect()
    }

    /// Rule `i` alone (`i` < [`MAX_RULES`]).
    pub fn only(i: usize) -> RuleSet {
        debug_assert!(i < MAX_RULES);
        RuleSet(1 << i)
    }

    /// Is rule `i` in the set?
    pub fn contains(self, i: usize) -> bool {
        i < MAX_RULES && self.0 & (1 << i) != 0
    }

    /// Add rule `i`.
    pub fn insert(&mut self, i: usize) {
        *self |= RuleSet::only(i);
    }

    /// No rule in the set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The rules of the set, lowest index first.
    pub fn iter(self) -> impl Iterator<Item = usize> {
        let mut bits = self.0;
        std::iter::from_fn(move || {
            let i = (bits != 0).then(|| bits.trailing_zeros() as usize)?;
            bits &= bits - 1;
            Some(i)
        })
    }
}

impl FromIterator<usize> for RuleSet {
    fn from_iter<I: IntoIterator<Item = usize>>(iter: I) -> Self {
        iter.into_iter()
            .fold(RuleSet::EMPTY, |s, i| s | RuleSet::only(i))
    }
}

impl std::ops::BitOr for RuleSet {
    type Output = RuleSet;
    fn bitor(self, o: RuleSet) -> RuleSet {
        RuleSet(self.0 | o.0)
    }
}

impl std::ops::BitOrAssign for RuleSet {
    fn bitor_assign(&mut self, o: RuleSet) {
        self.0 |= o.0;
    }
}

impl std::ops::BitAnd for RuleSet {
    type Output = RuleSet;
    fn bitand(self, o: RuleSet) -> RuleSet {
        RuleSet(self.0 & o.0)
    }
}

impl std::ops::BitAndAssign for RuleSet {
    fn bitand_assign(&mut self, o: RuleSet) {
        self.0 &= o.0;
    }
}

impl std::ops::Not for RuleSet {
    type Output = RuleSet;
    fn not(self) -> RuleSet {
        RuleSet(!self.0)
    }
}

/// For each status code 0–999, the rules whose
/// status condition it passes: every status, 0 included, for a rule without
/// one; never 0 (no status) for a rule with one. The same as asking
/// [`Rule::status_ok`] for every code, without building a request for each.
pub fn status_table(rules: &[Rule]) -> Vec<RuleSet> {
    let mut table = vec![RuleSet::EMPTY; 1000];
    for (i, r) in rules.iter().enumerate() {
        let bit = RuleSet::only(i);
        let c = &r.config;
        if !r.uses_status() {
            table.iter_mut().for_each(|m| *m |= bit);
            continue;
        }
        let mut mine = vec![c.status.is_empty(); 1000];
        for p in &c.status {
            mine[usize::from(p.lo).min(999)..=usize::from(p.hi).min(999)].fill(true);
        }
        for p in &c.exclude_status {
            mine[usize::from(p.lo).min(999)..=usize::from(p.hi).min(999)].fill(false);
        }
        mine[0] = false;
        for (m, on) in table.iter_mut().zip(mine) {
            if on {
                *m |= bit;
            }
        }
    }
    table
}

/// The rules fail2waf uses when the config names none.
///
/// They are written for what real tools and real people do, not for one
/// site: see `docs/rules.md` for the reasoning behind each number.
pub fn default_rules() -> Vec<RuleConfig> {
    let s = |v: &[&str]| -> Vec<StatusPattern> {
        v.iter()
            .map(|t| StatusPattern::try_from((*t).to_string()).expect("valid default"))
            .collect()
    };
    let base = |name: &str, description: &str, window: u64, threshold: u32| RuleConfig {
        name: name.into(),
        description: Some(description.into()),
        status: vec![],
        exclude_status: vec![],
        methods: vec![],
        path: None,
        waf_action: vec![],
        waf_rule: vec![],
        waf_label: vec![],
        key: KeyKind::Ip,
        prefix_v4: 24,
        prefix_v6: 48,
        min_members: 1,
        window: Secs(window),
        threshold,
        min_ratio: None,
        min_requests: 0,
        distinct_paths: 0,
        distinct_include_query: false,
        outage_aware: None,
        ban: default_ban(),
        ban_factor: 2.0,
        ban_max: default_ban_max(),
    };
    // 4xx that say "there is nothing here / you may not": what word lists
    // and vulnerability probes collect. 401 is left to the auth rules, and
    // 408/429 (timeouts, the site's own rate limiting) say nothing about intent.
    let probe_status = s(&["4xx"]);
    let probe_exclude = s(&["401", "407", "408", "429"]);
    let scan_burst = RuleConfig {
        status: probe_status.clone(),
        exclude_status: probe_exclude.clone(),
        min_ratio: Some(0.5),
        distinct_paths: 15,
        ..base(
            "scan-burst",
            "Fast scanners: many 4xx on many different paths within a minute (gobuster, ffuf, nikto, nuclei).",
            60,
            30,
        )
    };
    let auth_brute = RuleConfig {
        status: s(&["401", "403"]),
        methods: vec!["POST".into(), "PUT".into()],
        min_ratio: Some(0.3),
        ..base(
            "auth-brute",
            "Credential stuffing and password guessing: failed logins (POST answered 401/403).",
            5 * 60,
            10,
        )
    };
    // The same two per application user: an attacker rotating addresses
    // keeps its account, API key or session. They count only where the
    // logs name a user (`[users]`, a `user` capture or field).
    let per_user = |r: &RuleConfig, name: &str, description: &str| RuleConfig {
        name: name.into(),
        description: Some(description.into()),
        key: KeyKind::User,
        ..r.clone()
    };
    let user_scan = per_user(
        &scan_burst,
        "user-scan",
        "One user (account, API key, session) scanning: many 4xx on many different paths within a minute, from any number of addresses.",
    );
    let user_auth = per_user(
        &auth_brute,
        "user-auth",
        "One user (account, API key, session) failing logins: credential stuffing through rotating addresses.",
    );
    let waf_blocks = RuleConfig {
        waf_action: vec!["BLOCK".into()],
        ..base(
            "waf-blocks",
            "Clients that AWS WAF keeps blocking (WAF logs): promote them from per-request blocks to an IP-set ban.",
            10 * 60,
            50,
        )
    };
    vec![
        scan_burst,
        RuleConfig {
            status: probe_status.clone(),
            exclude_status: probe_exclude.clone(),
            min_ratio: Some(0.6),
            distinct_paths: 30,
            ban: Secs(2 * 3600),
            ..base(
                "scan-slow",
                "Slow scanners: a 4xx on a new path every few seconds for many minutes.",
                20 * 60,
                40,
            )
        },
        RuleConfig {
            status: probe_status,
            exclude_status: probe_exclude,
            key: KeyKind::Prefix,
            min_members: 8,
            min_ratio: Some(0.6),
            distinct_paths: 40,
            ..base(
                "scan-subnet",
                "A scan spread over many addresses of one network (IPv4 /24, IPv6 /48).",
                20 * 60,
                60,
            )
        },
        auth_brute,
        RuleConfig {
            status: s(&["401"]),
            min_ratio: Some(0.8),
            ..base(
                "auth-flood",
                "Basic-auth and token guessing: a flood of 401s on any method, faster than any polling client.",
                60,
                120,
            )
        },
        RuleConfig {
            status: s(&["5xx"]),
            min_ratio: Some(0.1),
            distinct_paths: 5,
            distinct_include_query: true,
            ..base(
                "fuzz-5xx",
                "Fuzzers and injection tools that break the backend: 5xx on many different URLs for one client while the rest of the site is healthy.",
                2 * 60,
                10,
            )
        },
        waf_blocks.clone(),
        user_scan,
        user_auth,
        per_user(
            &waf_blocks,
            "user-waf-blocks",
            "One user (API key, session) that AWS WAF keeps blocking, whatever address it comes from (WAF logs with `users.header` or `users.cookie`).",
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn hit(status: u16, method: &'static str, path: &'static str) -> Hit<'static> {
        let mut h = Hit::new(0, "192.0.2.1".parse().unwrap(), status);
        h.method = Cow::Borrowed(method);
        h.path = Cow::Borrowed(path);
        h
    }

    #[test]
    fn status_table_is_status_ok_for_every_code() {
        let custom = crate::config::Config::parse(
            r#"
[[rules]]
name = "a"
status = ["4xx", "503"]
exclude_status = ["40x", "429"]
threshold = 5
window = "1m"
[[rules]]
name = "b"
exclude_status = ["2xx"]
threshold = 5
window = "1m"
[[rules]]
name = "c"
path = "^/x"
threshold = 5
window = "1m"
"#,
        )
        .unwrap();
        for rules in [crate::config::Config::default().rules, custom.rules] {
            let table = status_table(&rules);
            for st in 0..1000u16 {
                let want = RuleSet::of(&rules, |r| {
                    !r.uses_status() || (st != 0 && r.status_ok(&hit(st, "GET", "/")))
                });
                assert_eq!(table[usize::from(st)], want, "status {st}");
            }
        }
    }

    #[test]
    fn a_rule_set_holds_the_rules_put_in_it() {
        let mut s: RuleSet = [0, 5, 63].into_iter().collect();
        assert!(s.contains(0) && s.contains(5) && s.contains(63) && !s.contains(1));
        assert!(!s.contains(MAX_RULES));
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![0, 5, 63]);
        s &= !RuleSet::only(5);
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![0, 63]);
        s.insert(7);
        assert_eq!((s & RuleSet::only(7)).iter().collect::<Vec<_>>(), vec![7]);
        assert!(RuleSet::EMPTY.is_empty() && RuleSet::EMPTY.iter().next().is_none());
        assert_eq!(
            RuleSet::of(&[1, 2, 3, 4], |&n| n % 2 == 0),
            [1, 3].into_iter().collect()
        );
    }

    #[test]
    fn status_patterns() {
        let p = StatusPattern::try_from("4xx".to_string()).unwrap();
        assert!(p.contains(400) && p.contains(499) && !p.contains(500));
        let p = StatusPattern::try_from("40X".to_string()).unwrap();
        assert!(p.contains(404) && !p.contains(410));
        for bad in ["4", "xxx", "600", "099", "4x4", "abc", "1000"] {
            assert!(StatusPattern::try_from(bad.to_string()).is_err(), "{bad}");
        }
    }

    #[test]
    fn defaults_are_valid_and_waf_blocked_requests_never_count() {
        let rules: Vec<Rule> = default_rules()
            .into_iter()
            .map(|c| Rule::new(c, Secs(10)).unwrap())
            .collect();
        let scan = &rules[0];
        assert!(scan.matches(&hit(404, "GET", "/x"), "fail2waf"));
        assert!(!scan.matches(&hit(401, "GET", "/x"), "fail2waf"));
        assert!(!scan.matches(&hit(200, "GET", "/x"), "fail2waf"));
        let mut blocked = hit(403, "GET", "/x");
        blocked.blocked_by_waf = true;
        assert!(rules.iter().all(|r| !r.matches(&blocked, "fail2waf")));
        let auth = rules.iter().find(|r| r.name() == "auth-brute").unwrap();
        assert!(auth.matches(&hit(401, "post", "/login"), ""));
        assert!(!auth.matches(&hit(401, "GET", "/login"), ""));
        let fuzz = rules.iter().find(|r| r.name() == "fuzz-5xx").unwrap();
        assert!(fuzz.outage_aware && !scan.outage_aware);
    }

    #[test]
    fn own_waf_rule_never_counts() {
        let rules: Vec<Rule> = default_rules()
            .into_iter()
            .map(|c| Rule::new(c, Secs(10)).unwrap())
            .collect();
        let waf = rules.iter().find(|r| r.name() == "waf-blocks").unwrap();
        let mut h = hit(403, "GET", "/");
        h.blocked_by_waf = true;
        h.waf = Some(crate::hit::WafVerdict {
            action: "BLOCK".into(),
            rule: "fail2waf-blocklist-v4".into(),
            labels: vec![],
        });
        assert!(!waf.matches(&h, "fail2waf"));
        h.waf.as_mut().unwrap().rule = "AWS-AWSManagedRulesSQLiRuleSet".into();
        assert!(waf.matches(&h, "fail2waf"));
    }

    #[test]
    fn validation_names_the_field() {
        let mut c = default_rules().remove(0);
        c.window = Secs(15);
        let e = Rule::new(c.clone(), Secs(10)).unwrap_err();
        assert_eq!((e.rule.as_str(), e.field), ("scan-burst", "window"));
        c.window = Secs(60);
        c.path = Some("(".into());
        assert_eq!(Rule::new(c.clone(), Secs(10)).unwrap_err().field, "path");
        c.path = None;
        c.min_ratio = Some(1.5);
        assert_eq!(Rule::new(c, Secs(10)).unwrap_err().field, "min_ratio");
    }
}
