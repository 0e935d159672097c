//! The configuration file (TOML).
//!
//! Every table rejects unknown keys, so a typo is an error that names the
//! line, never a silently ignored setting. Without a file (or without
//! `[[rules]]`), the [default rules](crate::rules::default_rules) apply.

use crate::duration::Secs;
use crate::formats::{pattern::PatternSpec, Format};
use crate::rules::{default_rules, Rule, RuleConfig};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
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
    /// User-defined regex log formats, by name.
    #[serde(default)]
    pub formats: BTreeMap<String, FormatConfig>,
    /// The rules. Absent: the defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<Vec<toml::Spanned<RuleConfig>>>,
}

/// When is a client's share of errors just the site's?
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OutageConfig {
    /// The rest of the site is failing when at least this share of its
    /// requests in the window match the rule.
    #[serde(default = "default_outage_share")]
    pub share: f64,
    /// Fewer requests than this from the rest of the site in the window is
    /// too little to tell an outage from an attack...
    #[serde(default = "default_outage_min")]
    pub min_requests: u32,
    /// ...and then a client whose own requests match at this share or more
    /// is taken for a victim of an outage, not an attacker.
    #[serde(default = "default_victim_ratio")]
    pub victim_ratio: f64,
}

impl Default for OutageConfig {
    fn default() -> Self {
        OutageConfig {
            share: default_outage_share(),
            min_requests: default_outage_min(),
            victim_ratio: default_victim_ratio(),
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

/// A user-defined regex format.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FormatConfig {
    /// Regex with named captures `ip`, `time`, `status` and optionally
    /// `method`, `path`, `request`, `host`, `user_agent`, `xff`, `user`.
    pub regex: String,
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
    0.1
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// 1-based line in the file, where known.
    pub line: Option<usize>,
    /// What is wrong, naming the field.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "line {l}: {}", self.message),
            None => write!(f, "{}", self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file as written (defaults filled in).
    pub file: ConfigFile,
    /// The validated rules, in file order.
    pub rules: Vec<Rule>,
    /// The user-defined formats.
    pub formats: BTreeMap<String, PatternSpec>,
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

impl Config {
    /// Parse and validate a configuration file's text.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let file: ConfigFile = toml::from_str(text).map_err(|e| ConfigError {
            line: e.span().map(|s| line_of(text, s.start)),
            message: e.message().to_string(),
        })?;
        let at = |line: Option<usize>, message: String| ConfigError { line, message };
        let f = &file;
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
        let mut formats = BTreeMap::new();
        for (name, fc) in &f.formats {
            if Format::from_name(name).is_some() {
                return Err(at(
                    None,
                    format!("format `{name}`: the name of a built-in format"),
                ));
            }
            let spec = PatternSpec::new(name, &fc.regex, &fc.time_format)
                .map_err(|e| at(None, format!("format `{name}`: {e}")))?;
            formats.insert(name.clone(), spec);
        }
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
        if rules.len() > 64 {
            return Err(at(None, "at most 64 rules".into()));
        }
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
        Format::from_name(name).or_else(|| self.formats.get(name).cloned().map(Format::Pattern))
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
