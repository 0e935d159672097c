//! The settings of a deployed function, from its environment.

use crate::aws::s3::{S3Loc, S3LocError};
use crate::aws::waf::{WafArnError, WafSetRef};

/// Settings of a deployed function, from its environment.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `FAIL2WAF_STATE`: where state lives.
    pub state: S3Loc,
    /// `FAIL2WAF_IPSET_V4_ARN`.
    pub ipset_v4: Option<WafSetRef>,
    /// `FAIL2WAF_IPSET_V6_ARN`.
    pub ipset_v6: Option<WafSetRef>,
    /// `FAIL2WAF_DRY_RUN=true`: decide and log, never touch WAF.
    pub dry_run: bool,
    /// `FAIL2WAF_SHARDS` (default 16).
    pub shards: u32,
    /// `FAIL2WAF_LOG_PREFIXES`: comma-separated `s3://bucket/prefix/` the
    /// alarm function re-scans; `{date}` expands to `YYYY/MM/DD`.
    pub log_prefixes: Vec<String>,
    /// `FAIL2WAF_CONFIG`: a path or `s3://` URI of the rules file.
    pub config: Option<String>,
    /// `FAIL2WAF_FORMAT`: force a log format instead of detecting it.
    pub format: Option<String>,
    /// `FAIL2WAF_EVENT_BUS`: the EventBridge bus (name or ARN) that gets an
    /// event for every block, unblock and expiry; unset: no events.
    pub event_bus: Option<String>,
    /// `FAIL2WAF_USER_PATTERN_SET_ARN`: the WAF regex pattern set blocked
    /// users go into; unset: users are blocked only through events.
    pub user_patterns: Option<WafSetRef>,
    /// `FAIL2WAF_USER_HEADER` / `FAIL2WAF_USER_COOKIE`: where WAF logs name
    /// the user, when the rules file's `[users]` does not say (the stack
    /// sets them from the header or cookie its web ACL rule matches).
    pub user_source: (Option<String>, Option<String>),
    /// `FAIL2WAF_CONFIG_CHECK_SECS` (default 60): how often a warm function
    /// looks whether an `s3://` rules file changed.
    pub config_check_ms: i64,
}

/// A setting of a deployed function that is missing or wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// `FAIL2WAF_STATE` is not set.
    #[error("FAIL2WAF_STATE is not set (s3://bucket/prefix/)")]
    NoState,
    /// `FAIL2WAF_STATE` is not an `s3://` location.
    #[error("FAIL2WAF_STATE: {0}")]
    State(S3LocError),
    /// An IP set (or regex pattern set) variable does not hold its ARN.
    #[error("{var}: {error}")]
    IpSetArn {
        /// The variable.
        var: &'static str,
        /// What is wrong with its value.
        error: WafArnError,
    },
    /// `FAIL2WAF_DRY_RUN` is neither true nor false.
    #[error("FAIL2WAF_DRY_RUN: `{0}` is not true or false")]
    DryRun(String),
    /// `FAIL2WAF_CONFIG_CHECK_SECS` is not a number of seconds.
    #[error("FAIL2WAF_CONFIG_CHECK_SECS: `{0}` is not a number of seconds")]
    ConfigCheck(String),
    /// `FAIL2WAF_SHARDS` is not a number from 1 to 256.
    #[error("FAIL2WAF_SHARDS: 1–256")]
    Shards,
    /// Not a dry run, and an IP set is missing.
    #[error(
        "FAIL2WAF_IPSET_V4_ARN and FAIL2WAF_IPSET_V6_ARN are required unless FAIL2WAF_DRY_RUN=true"
    )]
    NoIpSets,
}

impl Settings {
    /// Read the settings from environment variables (the table in
    /// README.md, *Deploy on AWS*; docs/deploy.md for the stack that sets
    /// them).
    pub fn from_env() -> Result<Settings, SettingsError> {
        Settings::from_lookup(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()))
    }

    /// Read the settings through `get`.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Settings, SettingsError> {
        let state = get("FAIL2WAF_STATE")
            .ok_or(SettingsError::NoState)?
            .parse::<S3Loc>()
            .map_err(SettingsError::State)?;
        let arn = |var: &'static str| -> Result<Option<WafSetRef>, SettingsError> {
            get(var)
                .map(|a| {
                    a.parse::<WafSetRef>()
                        .map_err(|error| SettingsError::IpSetArn { var, error })
                })
                .transpose()
        };
        let dry_run = match get("FAIL2WAF_DRY_RUN")
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("false" | "0" | "no") => false,
            Some("true" | "1" | "yes") => true,
            Some(other) => return Err(SettingsError::DryRun(other.to_string())),
        };
        let shards = match get("FAIL2WAF_SHARDS") {
            None => 16,
            Some(s) => s
                .parse()
                .ok()
                .filter(|n| (1..=256).contains(n))
                .ok_or(SettingsError::Shards)?,
        };
        let settings = Settings {
            state,
            ipset_v4: arn("FAIL2WAF_IPSET_V4_ARN")?,
            ipset_v6: arn("FAIL2WAF_IPSET_V6_ARN")?,
            dry_run,
            shards,
            log_prefixes: get("FAIL2WAF_LOG_PREFIXES")
                .map(|v| {
                    v.split(',')
                        .map(|p| p.trim().to_string())
                        .filter(|p| !p.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            config: get("FAIL2WAF_CONFIG"),
            format: get("FAIL2WAF_FORMAT"),
            event_bus: get("FAIL2WAF_EVENT_BUS"),
            user_source: (get("FAIL2WAF_USER_HEADER"), get("FAIL2WAF_USER_COOKIE")),
            config_check_ms: match get("FAIL2WAF_CONFIG_CHECK_SECS") {
                None => 60_000,
                Some(s) => s
                    .parse::<u32>()
                    .map(|n| i64::from(n) * 1000)
                    .map_err(|_| SettingsError::ConfigCheck(s))?,
            },
            user_patterns: get("FAIL2WAF_USER_PATTERN_SET_ARN")
                .map(|a| {
                    WafSetRef::parse(&a, "regexpatternset").map_err(|error| {
                        SettingsError::IpSetArn {
                            var: "FAIL2WAF_USER_PATTERN_SET_ARN",
                            error,
                        }
                    })
                })
                .transpose()?,
        };
        if !settings.dry_run && (settings.ipset_v4.is_none() || settings.ipset_v6.is_none()) {
            return Err(SettingsError::NoIpSets);
        }
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(pairs: &[(&str, &str)], k: &str) -> Option<String> {
        pairs
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| (*v).to_string())
    }

    #[test]
    fn settings_from_the_environment() {
        const ARN4: &str = "arn:aws:wafv2:us-east-1:123456789012:regional/ipset/f-v4/id4";
        const ARN6: &str = "arn:aws:wafv2:us-east-1:123456789012:regional/ipset/f-v6/id6";
        let full = [
            ("FAIL2WAF_STATE", "s3://state/fail2waf/"),
            ("FAIL2WAF_IPSET_V4_ARN", ARN4),
            ("FAIL2WAF_IPSET_V6_ARN", ARN6),
        ];
        let s = Settings::from_lookup(|k| lookup(&full, k)).unwrap();
        assert_eq!(
            (s.state.bucket.as_str(), s.shards, s.dry_run),
            ("state", 16, false)
        );
        let no_sets = [("FAIL2WAF_STATE", "s3://state/")];
        assert_eq!(
            Settings::from_lookup(|k| lookup(&no_sets, k)).unwrap_err(),
            SettingsError::NoIpSets
        );
        let dry = [
            ("FAIL2WAF_STATE", "s3://state/"),
            ("FAIL2WAF_DRY_RUN", "TRUE"),
        ];
        assert!(Settings::from_lookup(|k| lookup(&dry, k)).unwrap().dry_run);
        let bad = [
            ("FAIL2WAF_STATE", "s3://state/"),
            ("FAIL2WAF_DRY_RUN", "maybe"),
        ];
        assert!(Settings::from_lookup(|k| lookup(&bad, k)).is_err());
        assert!(Settings::from_lookup(|_| None)
            .unwrap_err()
            .to_string()
            .contains("FAIL2WAF_STATE"));
        let local = [("FAIL2WAF_STATE", "/tmp")];
        assert!(Settings::from_lookup(|k| lookup(&local, k)).is_err());
    }
}
