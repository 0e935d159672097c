//! The configuration file (TOML).
//!
//! Every table rejects unknown keys, so a typo is an error that names the
//! line, never a silently ignored setting. Without a file (or without
//! `[[rules]]`), the [default rules](crate::rules::default_rules) apply.

use crate::duration::Secs;
use crate::formats::{json::JsonFields, json::JsonSpec, pattern::PatternSpec, Format};
use crate::rules::{default_rules, Rule, RuleConfig};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// The configuration file as written.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Bucket width of the sliding windows.
    #[serde(default = "default_bucket")]
    pub bucket: Secs,
    /// Prefix of the name of the WAF rule that enforces fail2waf's IP sets.
    /// Requests it blocked never count (no self-renewing blocks).
    #[serde(default = "default_own_waf_rule")]
    pub own_waf_rule: String,
    /// Proxies and load balancers in front of the logging service (e.g. the
    /// CloudFront origin-facing ranges, your own reverse proxies). A request
    /// from one of them counts for the right-most untrusted
    /// `X-Forwarded-For` address, or not at all; they are never blocked.
    #[serde(default)]
    pub trusted_proxies: Vec<IpNet>,
    /// Networks that are never blocked (monitoring, partners, your offices).
    #[serde(default)]
    pub allow: Vec<IpNet>,
    /// IPv6 clients are counted per prefix of this length (a host usually
    /// owns a whole /64).
    #[serde(default = "default_v6_key")]
    pub ipv6_key_prefix: u8,
    /// The widest IPv4 prefix that may ever be blocked.
    #[serde(default = "default_max_v4")]
    pub max_prefix_v4: u8,
    /// The widest IPv6 prefix that may ever be blocked.
    #[serde(default = "default_max_v6")]
    pub max_prefix_v6: u8,
    /// Most IPv4 blocks enforced at once (a WAF IP set holds 10,000).
    #[serde(default = "default_capacity")]
    pub capacity_v4: usize,
    /// Most IPv6 blocks enforced at once.
    #[serde(default = "default_capacity")]
    pub capacity_v6: usize,
    /// How long an offense is remembered for escalating the next ban.
    #[serde(default = "default_forget")]
    pub forget_after: Secs,
    /// Outage awareness for rules with `outage_aware`.
    #[serde(default)]
    pub outage: OutageConfig,
    /// Incident mode, entered on a CloudWatch alarm.
    #[serde(default)]
    pub incident: IncidentConfig,
    /// Application users: where WAF logs name them, and who is never blocked.
    #[serde(default)]
    pub users: UsersConfig,
    /// GuardDuty findings (through the alarm function): which block, how long.
    #[serde(default)]
    pub guardduty: GuardDutyConfig,
    /// User-defined log formats (regex or JSON), by name.
    #[serde(default)]
    pub formats: BTreeMap<String, FormatConfig>,
    /// The rules. Absent: the defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<Vec<toml::Spanned<RuleConfig>>>,
}

/// When are a client's server errors the server's fault? See
/// `docs/rules.md` ("Outage awareness") for how the fields work together.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OutageConfig {
    /// The whole site is failing when at least this share of the rest of
    /// the site's requests (4xx left out) in the window match the rule.
    #[serde(default = "default_outage_share")]
    pub share: f64,
    /// Fewer requests than this (4xx left out) from the rest of the site in
    /// the window is too little to tell an outage from an attack...
    #[serde(default = "default_outage_min")]
    pub min_requests: u32,
    /// ...and then a client whose own requests match at this share or more
    /// is taken for a victim of an outage, not an attacker.
    #[serde(default = "default_victim_ratio")]
    pub victim_ratio: f64,
    /// A route is failing when at least this many other clients got a
    /// failure on it in the window...
    #[serde(default = "default_route_clients")]
    pub route_clients: u32,
    /// ...or when at least this share of the other clients' requests on it,
    /// in the buckets where the client failed, failed too.
    #[serde(default = "default_route_share")]
    pub route_share: f64,
    /// On a failing route, a client's failures do not count while the
    /// others' failure rate there explains them: at most what that rate
    /// gives for the client's requests plus this many standard deviations
    /// (and two). A fuzzer breaking a route that works for everyone else
    /// stays far above it.
    #[serde(default = "default_route_tolerance")]
    pub route_tolerance: f64,
    /// Regexes over the path (without query) that name routes: the first
    /// that matches is the route. Without a match (or any), a route is the
    /// path with its numeric, UUID, hex and token segments folded.
    #[serde(default)]
    pub routes: Vec<String>,
}

impl Default for OutageConfig {
    fn default() -> Self {
        OutageConfig {
            share: default_outage_share(),
            min_requests: default_outage_min(),
            victim_ratio: default_victim_ratio(),
            route_clients: default_route_clients(),
            route_share: default_route_share(),
            route_tolerance: default_route_tolerance(),
            routes: Vec::new(),
        }
    }
}

/// Stricter thresholds while an alarm is firing.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentConfig {
    /// Thresholds are multiplied by this factor in incident mode (0–1].
    #[serde(default = "default_incident_factor")]
    pub threshold_factor: f64,
    /// How long incident mode lasts after the alarm, unless it ends on OK.
    #[serde(default = "default_incident_duration")]
    pub duration: Secs,
}

impl Default for IncidentConfig {
    fn default() -> Self {
        IncidentConfig {
            threshold_factor: default_incident_factor(),
            duration: default_incident_duration(),
        }
    }
}

/// Application users (rules with `key = "user"`).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UsersConfig {
    /// Users never blocked (service accounts, internal API keys): a value,
    /// or a prefix ending in `*`.
    #[serde(default)]
    pub allow: Vec<String>,
    /// WAF logs: the request header whose value is the user (`x-api-key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// WAF logs: the cookie whose value is the user (`session`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie: Option<String>,
}

/// Which GuardDuty findings block their remote address, and for how long.
/// A finding blocks as the rule `guardduty:TYPE`, through the same ledger
/// (allow-list, trusted proxies, escalation, capacity) as any rule.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GuardDutyConfig {
    /// Findings below this severity (1.0–10.0) block nobody. GuardDuty's
    /// bands: low 1.0–3.9, medium 4.0–6.9, high 7.0–8.9, critical 9.0–10.0.
    #[serde(default = "default_gd_min_severity")]
    pub min_severity: f64,
    /// Finding type prefixes that block (`Recon:EC2/PortProbe`,
    /// `UnauthorizedAccess:`); empty: every type.
    #[serde(default)]
    pub types: Vec<String>,
    /// Act on sample findings (`CreateSampleFindings`; off: they are only
    /// logged).
    #[serde(default)]
    pub samples: bool,
    /// First ban for a low-severity finding.
    #[serde(default = "default_gd_low")]
    pub ban_low: Secs,
    /// First ban for a medium-severity finding.
    #[serde(default = "default_gd_medium")]
    pub ban_medium: Secs,
    /// First ban for a high-severity finding.
    #[serde(default = "default_gd_high")]
    pub ban_high: Secs,
    /// First ban for a critical finding.
    #[serde(default = "default_gd_critical")]
    pub ban_critical: Secs,
    /// Each repeat offense multiplies the ban by this...
    #[serde(default = "default_gd_factor")]
    pub ban_factor: f64,
    /// ...up to this.
    #[serde(default = "default_gd_max")]
    pub ban_max: Secs,
}

impl Default for GuardDutyConfig {
    fn default() -> Self {
        toml::from_str("").expect("defaults")
    }
}

impl GuardDutyConfig {
    /// The first ban, factor and longest ban for a finding of `severity`.
    pub fn ban_for(&self, severity: f64) -> (Secs, f64, Secs) {
        let first = match severity {
            s if s >= 9.0 => self.ban_critical,
            s if s >= 7.0 => self.ban_high,
            s if s >= 4.0 => self.ban_medium,
            _ => self.ban_low,
        };
        (first.min(self.ban_max), self.ban_factor, self.ban_max)
    }

    /// Why a finding of `kind` and `severity` blocks nobody, if it does not.
    pub fn refuses(&self, kind: &str, severity: f64, sample: bool) -> Option<String> {
        if sample && !self.samples {
            return Some("a sample finding (set guardduty.samples to act on them)".into());
        }
        if severity < self.min_severity {
            return Some(format!(
                "severity {severity} is under guardduty.min_severity {}",
                self.min_severity
            ));
        }
        if !self.types.is_empty() && !self.types.iter().any(|t| kind.starts_with(t.as_str())) {
            return Some(format!("type {kind} is not in guardduty.types"));
        }
        None
    }
}

fn default_gd_min_severity() -> f64 {
    4.0
}
fn default_gd_low() -> Secs {
    Secs(3600)
}
fn default_gd_medium() -> Secs {
    Secs(6 * 3600)
}
fn default_gd_high() -> Secs {
    Secs(86_400)
}
fn default_gd_critical() -> Secs {
    Secs(7 * 86_400)
}
fn default_gd_factor() -> f64 {
    2.0
}
fn default_gd_max() -> Secs {
    Secs(30 * 86_400)
}

/// A user-defined format: a regex of named captures, or the fields of a
/// JSON object per line (one of the two).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FormatConfig {
    /// Regex with named captures `ip`, `time`, `status` and optionally
    /// `method`, `path`, `request`, `host`, `user_agent`, `xff`, `user`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    /// JSON lines (application logs shipped by Fluent Bit or Firehose):
    /// where `ip`, `time`, `status` and optionally `method`, `path`,
    /// `host`, `user_agent`, `xff`, `user` are (dotted paths).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<JsonFields>,
    /// `clf`, `iso8601`, `epoch` or `epoch_ms`.
    #[serde(default = "default_time_format")]
    pub time_format: String,
}

fn default_bucket() -> Secs {
    Secs(10)
}
fn default_own_waf_rule() -> String {
    "fail2waf".into()
}
fn default_v6_key() -> u8 {
    64
}
fn default_max_v4() -> u8 {
    24
}
fn default_max_v6() -> u8 {
    48
}
fn default_capacity() -> usize {
    10_000
}
fn default_forget() -> Secs {
    Secs(7 * 86_400)
}
fn default_outage_share() -> f64 {
    0.5
}
fn default_route_clients() -> u32 {
    3
}
fn default_route_share() -> f64 {
    0.5
}
fn default_route_tolerance() -> f64 {
    3.0
}
fn default_outage_min() -> u32 {
    20
}
fn default_victim_ratio() -> f64 {
    0.9
}
fn default_incident_factor() -> f64 {
    0.5
}
fn default_incident_duration() -> Secs {
    Secs(30 * 60)
}
fn default_time_format() -> String {
    "clf".into()
}

/// A configuration error, with the line it is on where known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", .line.map_or_else(String::new, |l| format!("line {l}: ")))]
pub struct ConfigError {
    /// 1-based line in the file, where known.
    pub line: Option<usize>,
    /// What is wrong, naming the field.
    pub message: String,
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file as written (defaults filled in).
    pub file: ConfigFile,
    /// The validated rules, in file order.
    pub rules: Vec<Rule>,
    /// The user-defined formats.
    pub formats: BTreeMap<String, Format>,
}

impl Default for Config {
    fn default() -> Self {
        Config::parse("").expect("the default configuration is valid")
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())]
        .bytes()
        .filter(|&b| b == b'\n')
        .count()
        + 1
}

fn at(line: Option<usize>, message: String) -> ConfigError {
    ConfigError { line, message }
}

/// The file's settings outside rules and formats, within their ranges.
fn check_settings(f: &ConfigFile) -> Result<(), ConfigError> {
    if f.bucket.0 == 0 || f.bucket.0 > 3600 {
        return Err(at(None, "`bucket` must be between 1s and 1h".into()));
    }
    if !(1..=32).contains(&f.max_prefix_v4) {
        return Err(at(
            None,
            "`max_prefix_v4` must be 1–32 (a /0 is never blocked)".into(),
        ));
    }
    if !(1..=128).contains(&f.max_prefix_v6) {
        return Err(at(
            None,
            "`max_prefix_v6` must be 1–128 (a /0 is never blocked)".into(),
        ));
    }
    if f.ipv6_key_prefix < f.max_prefix_v6 || f.ipv6_key_prefix > 128 {
        return Err(at(
            None,
            "`ipv6_key_prefix` must be between `max_prefix_v6` and 128".into(),
        ));
    }
    for (field, cap) in [
        ("capacity_v4", f.capacity_v4),
        ("capacity_v6", f.capacity_v6),
    ] {
        if cap == 0 || cap > 10_000 {
            return Err(at(
                None,
                format!("`{field}` must be 1–10000 (the WAF IP set limit)"),
            ));
        }
    }
    for (name, ok) in [
        ("outage.share", (0.0..=1.0).contains(&f.outage.share)),
        (
            "outage.victim_ratio",
            (0.0..=1.0).contains(&f.outage.victim_ratio),
        ),
        (
            "outage.route_share",
            (0.0..=1.0).contains(&f.outage.route_share),
        ),
        (
            "outage.route_tolerance",
            (0.0..=100.0).contains(&f.outage.route_tolerance),
        ),
        (
            "incident.threshold_factor",
            f.incident.threshold_factor > 0.0 && f.incident.threshold_factor <= 1.0,
        ),
    ] {
        if !ok {
            return Err(at(None, format!("`{name}` is out of range")));
        }
    }
    for net in f.trusted_proxies.iter().chain(&f.allow) {
        if net.prefix_len() == 0 {
            return Err(at(
                None,
                format!("`{net}`: a /0 in `allow` or `trusted_proxies` would disable fail2waf"),
            ));
        }
    }
    let gd = &f.guardduty;
    if !(1.0..=10.0).contains(&gd.min_severity) {
        return Err(at(None, "`guardduty.min_severity` must be 1.0–10.0".into()));
    }
    if gd.ban_factor.is_nan() || gd.ban_factor < 1.0 {
        return Err(at(None, "`guardduty.ban_factor` must be at least 1".into()));
    }
    let bans = [gd.ban_low, gd.ban_medium, gd.ban_high, gd.ban_critical];
    if bans.iter().any(|b| b.0 == 0) || gd.ban_max.0 == 0 {
        return Err(at(None, "`guardduty` bans must be positive".into()));
    }
    if f.users.header.is_some() && f.users.cookie.is_some() {
        return Err(at(
            None,
            "`users.header` and `users.cookie`: name one place for the user, not both".into(),
        ));
    }
    if f.users
        .allow
        .iter()
        .any(|a| a.trim().is_empty() || a == "*")
    {
        return Err(at(
            None,
            "`users.allow`: an empty entry or `*` would allow every user".into(),
        ));
    }
    for re in &f.outage.routes {
        if let Err(e) = regex::bytes::Regex::new(re) {
            return Err(at(None, format!("`outage.routes`: `{re}`: {e}")));
        }
    }
    Ok(())
}

/// The file's own formats (`[formats.NAME]`), compiled.
fn custom_formats(f: &ConfigFile) -> Result<BTreeMap<String, Format>, ConfigError> {
    let mut formats = BTreeMap::new();
    for (name, fc) in &f.formats {
        if Format::from_name(name).is_some() {
            return Err(at(
                None,
                format!("format `{name}`: the name of a built-in format"),
            ));
        }
        let bad = |e: String| at(None, format!("format `{name}`: {e}"));
        let format = match (&fc.regex, &fc.json) {
            (Some(re), None) => PatternSpec::new(name, re, &fc.time_format)
                .map(Format::Pattern)
                .map_err(|e| bad(e.to_string()))?,
            (None, Some(fields)) => JsonSpec::new(name, fields, &fc.time_format)
                .map(Format::Json)
                .map_err(|e| bad(e.to_string()))?,
            _ => return Err(bad("give either `regex` or `json`".into())),
        };
        formats.insert(name.clone(), format);
    }
    Ok(formats)
}

/// The rules: the file's (each error with its line), or the defaults.
fn rules_of(text: &str, f: &ConfigFile) -> Result<Vec<Rule>, ConfigError> {
    let mut rules = Vec::new();
    match &f.rules {
        None => {
            for c in default_rules() {
                rules.push(Rule::new(c, f.bucket).map_err(|e| at(None, e.to_string()))?);
            }
        }
        Some(list) => {
            if list.is_empty() {
                return Err(at(
                    None,
                    "`rules` is empty: remove it to use the defaults".into(),
                ));
            }
            for spanned in list {
                let line = Some(line_of(text, spanned.span().start));
                let c = spanned.get_ref().clone();
                if rules.iter().any(|r: &Rule| r.name() == c.name) {
                    return Err(at(line, format!("rule `{}` is defined twice", c.name)));
                }
                let rule = Rule::new(c, f.bucket).map_err(|e| at(line, e.to_string()))?;
                let rc = &rule.config;
                if rc.key == crate::rules::KeyKind::Prefix
                    && (rc.prefix_v4 < f.max_prefix_v4 || rc.prefix_v6 < f.max_prefix_v6)
                {
                    return Err(at(
                        line,
                        format!(
                            "rule `{}`: prefix /{} or /{} is wider than max_prefix_v4 /{} or max_prefix_v6 /{}",
                            rc.name, rc.prefix_v4, rc.prefix_v6, f.max_prefix_v4, f.max_prefix_v6
                        ),
                    ));
                }
                rules.push(rule);
            }
        }
    }
    if rules.len() > crate::rules::MAX_RULES {
        let most = crate::rules::MAX_RULES;
        return Err(at(None, format!("at most {most} rules")));
    }
    Ok(rules)
}

impl Config {
    /// Parse and validate a configuration file's text.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let file: ConfigFile = toml::from_str(text).map_err(|e| ConfigError {
            line: e.span().map(|s| line_of(text, s.start)),
            // Some syntax errors come with an empty message (found by
            // fuzzing): then the whole report says what is wrong.
            message: if e.message().trim().is_empty() {
                e.to_string().trim().to_string()
            } else {
                e.message().to_string()
            },
        })?;
        check_settings(&file)?;
        let formats = custom_formats(&file)?;
        let rules = rules_of(text, &file)?;
        Ok(Config {
            file,
            rules,
            formats,
        })
    }

    /// Read and validate a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            line: None,
            message: format!("cannot read {}: {e}", path.display()),
        })?;
        Config::parse(&text)
    }

    /// A format by name: built-in, preset or defined in this file.
    pub fn format(&self, name: &str) -> Option<Format> {
        Format::from_name(name).or_else(|| self.formats.get(name).cloned())
    }

    /// The longest rule window, in buckets.
    pub fn longest_window_buckets(&self) -> u32 {
        self.rules
            .iter()
            .map(|r| r.window_buckets)
            .max()
            .unwrap_or(1)
    }

    /// Bucket width in milliseconds.
    pub fn bucket_ms(&self) -> i64 {
        self.file.bucket.ms()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_the_defaults() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.rules.len(), default_rules().len());
        assert_eq!(c.file.max_prefix_v4, 24);
    }

    #[test]
    fn unknown_keys_name_the_line() {
        let e = Config::parse(
            "bucket = \"10s\"\n\n[[rules]]\nname = \"x\"\nwindow = \"60s\"\ntreshold = 3\n",
        )
        .unwrap_err();
        assert_eq!(e.line, Some(6), "{e}");
        assert!(e.message.contains("treshold"), "{e}");
    }

    #[test]
    fn rule_validation_names_line_and_field() {
        let text = "[[rules]]\nname = \"a\"\nwindow = \"60s\"\nthreshold = 3\n\n[[rules]]\nname = \"b\"\nwindow = \"65s\"\nthreshold = 3\n";
        let e = Config::parse(text).unwrap_err();
        assert_eq!(e.line, Some(6), "{e}"); // the `[[rules]]` header of rule `b`
        assert!(
            e.message.contains("`window`") && e.message.contains("`b`"),
            "{e}"
        );
    }

    #[test]
    fn every_syntax_error_says_something() {
        for bad in ["\r", "# ok\n#\u{1}\n"] {
            let e = Config::parse(bad).unwrap_err();
            assert!(!e.message.trim().is_empty(), "{bad:?}");
        }
    }

    #[test]
    fn hostile_settings_are_rejected() {
        for bad in [
            "allow = [\"0.0.0.0/0\"]",
            "trusted_proxies = [\"::/0\"]",
            "max_prefix_v4 = 0",
            "capacity_v4 = 20000",
            "[[rules]]\nname = \"wide\"\nkey = \"prefix\"\nprefix_v4 = 8\nwindow = \"60s\"\nthreshold = 1",
            "[[rules]]\nname = \"d\"\nwindow = \"60s\"\nthreshold = 1\n[[rules]]\nname = \"d\"\nwindow = \"60s\"\nthreshold = 1",
            "allow = [\"not-a-cidr\"]",
            "rules = []",
        ] {
            assert!(Config::parse(bad).is_err(), "accepted: {bad}");
        }
    }
}

/// One-line explanations of every rule field, in the order they are printed.
const RULE_FIELDS: &[(&str, &str)] = &[
    ("name", "unique name, shown in every decision"),
    ("description", "what the rule catches, for operators"),
    (
        "status",
        "status codes or classes that match: \"404\", \"4xx\", \"40x\" (empty: any)",
    ),
    ("exclude_status", "codes or classes taken out of `status`"),
    ("methods", "HTTP methods that match (empty: any)"),
    ("path", "regex on path and query (absent: any)"),
    (
        "waf_action",
        "WAF actions that match, WAF logs only: BLOCK, CAPTCHA, CHALLENGE, ALLOW, COUNT",
    ),
    ("waf_rule", "WAF terminating rule ids that match"),
    ("waf_label", "WAF label prefixes that match"),
    (
        "key",
        "\"ip\": count per address (IPv6 per /64); \"prefix\": per network; \"user\": per application user ([users])",
    ),
    ("prefix_v4", "network size for key = \"prefix\" (IPv4)"),
    ("prefix_v6", "network size for key = \"prefix\" (IPv6)"),
    (
        "min_members",
        "key = \"prefix\": distinct quiet member addresses needed; key = \"user\": distinct addresses",
    ),
    ("window", "sliding window, a multiple of `bucket`"),
    (
        "threshold",
        "matched requests in one window that make an offense",
    ),
    (
        "min_ratio",
        "matched share of the key's requests in the window (0-1)",
    ),
    ("min_requests", "the key's requests in the window, at least"),
    (
        "distinct_paths",
        "distinct matched paths in the window, at least",
    ),
    (
        "distinct_include_query",
        "count the query string too for `distinct_paths`",
    ),
    (
        "outage_aware",
        "do not fire while the rest of the site sees the same errors",
    ),
    ("ban", "first ban"),
    ("ban_factor", "each repeat offense multiplies the ban"),
    ("ban_max", "longest ban"),
];

/// The default configuration as a commented TOML file that
/// [`Config::parse`] accepts: every setting with its default value and
/// what it means.
pub fn default_toml() -> String {
    let f: ConfigFile = toml::from_str("").expect("defaults");
    let list = |v: &[IpNet]| {
        format!(
            "[{}]",
            v.iter()
                .map(|n| format!("\"{n}\""))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let mut out = format!(
        "# fail2waf configuration. Every setting is shown with its default.\n\
         # Check a file with `fail2waf config check FILE`.\n\n\
         # Width of the event-time buckets the sliding windows are made of.\n\
         bucket = \"{}\"\n\
         # Requests blocked by a WAF rule whose name starts with this never count\n\
         # (name the rule that references fail2waf's IP sets accordingly).\n\
         own_waf_rule = \"{}\"\n\
         # Proxies and load balancers in front of the logging service (CloudFront\n\
         # origin-facing ranges, your reverse proxies): their requests count for the\n\
         # right-most untrusted X-Forwarded-For address, or not at all. Never blocked.\n\
         trusted_proxies = {}\n\
         # Networks that are never blocked (monitoring, partners, offices).\n\
         allow = {}\n\
         # IPv6 clients are counted per prefix of this length.\n\
         ipv6_key_prefix = {}\n\
         # The widest networks that may ever be blocked.\n\
         max_prefix_v4 = {}\n\
         max_prefix_v6 = {}\n\
         # Most blocks enforced per IP version (a WAF IP set holds 10,000); when\n\
         # short, the most repeated, then most recent offenders win.\n\
         capacity_v4 = {}\n\
         capacity_v6 = {}\n\
         # How long an offense counts towards escalating the next ban, from the\n\
         # end of its ban.\n\
         forget_after = \"{}\"\n\n\
         [outage]\n\
         # For rules with outage awareness (5xx rules): a client's failures on a route\n\
         # do not count while the route is failing for others too: at least\n\
         # `route_clients` other clients failed there in the window, or `route_share`\n\
         # of the others' requests there failed in the same buckets...\n\
         route_clients = {}\n\
         route_share = {}\n\
         # ...unless the client failed there more than the others' failure rate\n\
         # explains: rate x its requests + this many standard deviations (+2).\n\
         route_tolerance = {}\n\
         # A route is the path without query, numeric/UUID/hex/token segments folded\n\
         # (/api/items/{{n}}); regexes here name routes first, e.g. [\"^/api/\"].\n\
         routes = {}\n\
         # The whole site is failing when this share of the rest of the site's\n\
         # requests (4xx left out) in the window match the rule...\n\
         share = {}\n\
         # ...and with fewer such requests than this from the rest of the site, a\n\
         # client whose own requests match at `victim_ratio` or more is a victim.\n\
         min_requests = {}\n\
         victim_ratio = {}\n\n\
         [incident]\n\
         # While a CloudWatch alarm fires, thresholds are multiplied by this factor...\n\
         threshold_factor = {}\n\
         # ...for this long, unless the alarm returns to OK first.\n\
         duration = \"{}\"\n\n\
         [users]\n\
         # Rules with key = \"user\" count per application user: an account, API key or\n\
         # session. Regex formats name it with a `user` capture, json formats with a\n\
         # `user` field; in WAF logs it is a request header or a cookie (one of):\n\
         # header = \"x-api-key\"\n\
         # cookie = \"session\"\n\
         # Users never blocked (service accounts, internal keys); `prefix*` allowed.\n\
         allow = []\n\n\
         [guardduty]\n\
         # GuardDuty findings (template parameter GuardDutyFindings) block their remote\n\
         # address as the rule guardduty:TYPE. Findings under this severity (1-10) do not...\n\
         min_severity = {:?}\n\
         # ...nor types outside these prefixes (empty: every type), nor sample findings.\n\
         types = []\n\
         samples = false\n\
         # First ban per severity band (low < 4, medium < 7, high < 9, critical), then\n\
         # times ban_factor per repeat offense, up to ban_max.\n\
         ban_low = \"{}\"\n\
         ban_medium = \"{}\"\n\
         ban_high = \"{}\"\n\
         ban_critical = \"{}\"\n\
         ban_factor = {:?}\n\
         ban_max = \"{}\"\n\n\
         # User-defined formats, used with `--format NAME`:\n\
         # [formats.myapp]\n\
         # regex = '^(?P<ip>\\S+) \\[(?P<time>[^\\]]+)\\] \"(?P<request>[^\"]*)\" (?P<status>\\d{{3}})'\n\
         # time_format = \"clf\"   # clf, iso8601, epoch or epoch_ms\n\
         # JSON lines (one object per line; dotted paths reach nested fields, and into\n\
         # a string holding JSON, as Fluent Bit's `log`):\n\
         # [formats.app]\n\
         # json = {{ ip = \"log.remote_addr\", time = \"log.time\", status = \"log.status\", method = \"log.method\", path = \"log.path\", user = \"log.user_id\" }}\n\
         # time_format = \"iso8601\"\n\n\
         # The rules. Without any [[rules]] table, these defaults apply; with one,\n\
         # exactly the rules written here do.\n",
        f.bucket,
        f.own_waf_rule,
        list(&f.trusted_proxies),
        list(&f.allow),
        f.ipv6_key_prefix,
        f.max_prefix_v4,
        f.max_prefix_v6,
        f.capacity_v4,
        f.capacity_v6,
        f.forget_after,
        f.outage.route_clients,
        f.outage.route_share,
        f.outage.route_tolerance,
        toml::Value::from(f.outage.routes.clone()),
        f.outage.share,
        f.outage.min_requests,
        f.outage.victim_ratio,
        f.incident.threshold_factor,
        f.incident.duration,
        f.guardduty.min_severity,
        f.guardduty.ban_low,
        f.guardduty.ban_medium,
        f.guardduty.ban_high,
        f.guardduty.ban_critical,
        f.guardduty.ban_factor,
        f.guardduty.ban_max,
    );
    // The first rule shows every field with its meaning; the others only
    // the fields that are set.
    for (i, rule) in default_rules().iter().enumerate() {
        out.push_str("\n[[rules]]\n");
        let table = toml::Table::try_from(rule).expect("a rule serializes");
        for (field, help) in RULE_FIELDS {
            let empty = |v: &toml::Value| v.as_array().is_some_and(Vec::is_empty);
            match table.get(*field) {
                Some(v) if i == 0 => out.push_str(&format!("{field} = {v}  # {help}\n")),
                Some(v) if !empty(v) => out.push_str(&format!("{field} = {v}\n")),
                None if i == 0 => out.push_str(&format!("# {field}: {help}\n")),
                _ => {}
            }
        }
    }
    out
}

#[cfg(test)]
mod default_toml_tests {
    use super::*;

    #[test]
    fn printed_defaults_parse_back_to_the_defaults() {
        let text = default_toml();
        let c = Config::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let d = Config::default();
        assert_eq!(c.rules.len(), d.rules.len());
        for (a, b) in c.rules.iter().zip(&d.rules) {
            assert_eq!(
                toml::Table::try_from(&a.config).unwrap(),
                toml::Table::try_from(&b.config).unwrap()
            );
        }
        // Every field of a rule is documented in the printout.
        let fields = toml::Table::try_from(&default_rules()[0]).unwrap();
        for k in fields.keys() {
            assert!(
                RULE_FIELDS.iter().any(|(f, _)| f == k),
                "undocumented field {k}"
            );
        }
    }
}
