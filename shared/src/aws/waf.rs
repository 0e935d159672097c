//! WAFv2 IP sets: make an IP set hold exactly the desired networks.
//!
//! `UpdateIPSet` replaces the whole list and is limited to one call per
//! second per account and region, so a sync reads (`GetIPSet`), compares
//! as networks, and writes only when different, with the lock token it
//! read. A stale token (`WAFOptimisticLockException`: someone else wrote)
//! and throttling are retried with jittered backoff, a bounded number of
//! times. Every address is validated here, whatever the ledger says: host
//! bits masked, the right IP version, never `/0`, never wider than the
//! configured widest prefix. (The WAF test peer checks none of these.)

use super::store::backoff;
use aws_sdk_wafv2::error::ProvideErrorMetadata;
use aws_sdk_wafv2::types::Scope;
use aws_sdk_wafv2::Client;
use ipnet::IpNet;
use std::collections::BTreeSet;
use std::str::FromStr;

/// Most attempts of one sync.
const MAX_ATTEMPTS: u32 = 8;

/// A WAFv2 IP set or regex pattern set, from its ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WafSetRef {
    /// The ARN.
    pub arn: String,
    /// Its name.
    pub name: String,
    /// Its id.
    pub id: String,
    /// REGIONAL or CLOUDFRONT.
    pub scope: Scope,
    /// The region of its ARN (`us-east-1` for CLOUDFRONT), where it is
    /// read and written whatever the caller's default region.
    pub region: String,
}

/// A text that is not a WAFv2 IP set ARN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a WAFv2 {1} ARN (arn:aws:wafv2:REGION:ACCOUNT:regional/{1}/NAME/ID)")]
pub struct WafArnError(pub String, pub &'static str);

impl FromStr for WafSetRef {
    type Err = WafArnError;
    /// An IP set: `arn:aws:wafv2:REGION:ACCOUNT:regional/ipset/NAME/ID`
    /// (or `global/` for CloudFront).
    fn from_str(arn: &str) -> Result<Self, WafArnError> {
        WafSetRef::parse(arn, "ipset")
    }
}

impl WafSetRef {
    /// A set of `kind` (`ipset`, `regexpatternset`) from its ARN.
    pub fn parse(arn: &str, kind: &'static str) -> Result<Self, WafArnError> {
        let bad = || WafArnError(arn.to_string(), kind);
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        if parts.len() != 6 || parts[0] != "arn" || parts[2] != "wafv2" {
            return Err(bad());
        }
        let res: Vec<&str> = parts[5].split('/').collect();
        let [scope, k, name, id] = res.as_slice() else {
            return Err(bad());
        };
        if *k != kind {
            return Err(bad());
        }
        let scope = match *scope {
            "regional" => Scope::Regional,
            "global" => Scope::Cloudfront,
            _ => return Err(bad()),
        };
        if name.is_empty() || id.is_empty() || parts[3].is_empty() {
            return Err(bad());
        }
        Ok(WafSetRef {
            arn: arn.into(),
            name: (*name).into(),
            id: (*id).into(),
            scope,
            region: parts[3].into(),
        })
    }
}

/// Which addresses a set may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpVersion {
    /// IPv4 only.
    V4,
    /// IPv6 only.
    V6,
}

/// Why a network may not go into a WAF IP set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidNetwork {
    /// An IPv6 network for the IPv4 set, or the other way round.
    #[error("{0}: wrong IP version for this set")]
    WrongVersion(IpNet),
    /// `/0`, or wider than the configured widest prefix.
    #[error("{net}: wider than /{widest}")]
    TooWide {
        /// The network.
        net: IpNet,
        /// The widest prefix allowed.
        widest: u8,
    },
    /// Bits set past the prefix length.
    #[error("{0}: host bits set")]
    HostBits(IpNet),
}

/// Check one network for a WAF IP set; the canonical CIDR text if valid.
pub fn validate(net: &IpNet, version: IpVersion, widest: u8) -> Result<String, InvalidNetwork> {
    let ok_version = matches!(
        (net, version),
        (IpNet::V4(_), IpVersion::V4) | (IpNet::V6(_), IpVersion::V6)
    );
    if !ok_version {
        return Err(InvalidNetwork::WrongVersion(*net));
    }
    if net.prefix_len() == 0 || net.prefix_len() < widest {
        return Err(InvalidNetwork::TooWide { net: *net, widest });
    }
    if net.trunc() != *net {
        return Err(InvalidNetwork::HostBits(*net));
    }
    Ok(net.to_string())
}

/// What a sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncOutcome {
    /// Networks added.
    pub added: usize,
    /// Networks removed.
    pub removed: usize,
    /// UpdateIPSet was called (and succeeded).
    pub written: bool,
    /// Lock-token conflicts retried.
    pub lock_retries: u32,
    /// Throttled calls retried.
    pub throttled: u32,
}

/// A WAF failure.
#[derive(Debug, thiserror::Error)]
#[error("{op} {set}: {message}")]
pub struct WafError {
    /// The operation.
    pub op: &'static str,
    /// The IP set's name.
    pub set: String,
    /// Error code.
    pub code: Option<String>,
    /// What happened.
    pub message: String,
}

impl WafError {
    /// May a retry succeed? Not when WAF refused the request as such (a bad
    /// parameter, a set that does not exist, no permission); for anything
    /// else (throttling beyond the retries of one sync, a 5xx) it may.
    pub fn retryable(&self) -> bool {
        !matches!(
            self.code.as_deref(),
            Some(
                "WAFInvalidParameterException"
                    | "WAFNonexistentItemException"
                    | "AccessDeniedException"
            )
        )
    }
}

pub(crate) fn is_throttle(code: Option<&str>) -> bool {
    matches!(
        code,
        Some(
            "ThrottlingException"
                | "WAFLimitsExceededException"
                | "TooManyRequestsException"
                | "WAFInternalErrorException"
        )
    )
}

/// After a failed update call with error `code`: whether another attempt
/// may succeed (someone else wrote the set: a fresh lock token; throttling),
/// counted in `out`.
pub(crate) fn count_retry(code: Option<&str>, out: &mut SyncOutcome) -> bool {
    match code {
        Some("WAFOptimisticLockException") => {
            out.lock_retries += 1;
            true
        }
        c if is_throttle(c) => {
            out.throttled += 1;
            true
        }
        _ => false,
    }
}

/// Make `set` hold exactly `desired` (already validated for its version).
/// `before_write` is awaited right before each UpdateIPSet (pacing to one
/// write per second across writers).
pub async fn sync_set<W, Fut>(
    waf: &Client,
    set: &WafSetRef,
    desired: &BTreeSet<IpNet>,
    mut before_write: W,
) -> Result<SyncOutcome, WafError>
where
    W: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut out = SyncOutcome::default();
    let err = |op: &'static str, code: Option<&str>, message: String| WafError {
        op,
        set: set.name.clone(),
        code: code.map(str::to_string),
        message,
    };
    for attempt in 0..MAX_ATTEMPTS {
        let got = match waf
            .get_ip_set()
            .name(&set.name)
            .scope(set.scope.clone())
            .id(&set.id)
            .send()
            .await
        {
            Ok(g) => g,
            Err(e) => {
                if is_throttle(e.code()) && attempt + 1 < MAX_ATTEMPTS {
                    out.throttled += 1;
                    tokio::time::sleep(backoff(attempt + 3)).await;
                    continue;
                }
                return Err(err(
                    "GetIPSet",
                    e.code(),
                    aws_sdk_wafv2::error::DisplayErrorContext(&e).to_string(),
                ));
            }
        };
        let token = got.lock_token().unwrap_or_default().to_string();
        // UpdateIPSet replaces the description too: send it back.
        let description = got
            .ip_set()
            .and_then(|s| s.description())
            .map(str::to_string);
        let current: BTreeSet<IpNet> = got
            .ip_set()
            .map(|s| s.addresses())
            .unwrap_or_default()
            .iter()
            .filter_map(|a| a.parse::<IpNet>().ok().map(|n| n.trunc()))
            .collect();
        let raw_len = got.ip_set().map_or(0, |s| s.addresses().len());
        if &current == desired && raw_len == current.len() {
            return Ok(out);
        }
        out.added = desired.difference(&current).count();
        out.removed = current.difference(desired).count() + raw_len.saturating_sub(current.len());
        before_write().await;
        let addresses: Vec<String> = desired.iter().map(ToString::to_string).collect();
        match waf
            .update_ip_set()
            .name(&set.name)
            .scope(set.scope.clone())
            .id(&set.id)
            .set_addresses(Some(addresses))
            .set_description(description)
            .lock_token(token)
            .send()
            .await
        {
            Ok(_) => {
                out.written = true;
                return Ok(out);
            }
            Err(e) => {
                let code = e.code().map(str::to_string);
                let retry = count_retry(code.as_deref(), &mut out);
                if !retry || attempt + 1 == MAX_ATTEMPTS {
                    return Err(err(
                        "UpdateIPSet",
                        code.as_deref(),
                        aws_sdk_wafv2::error::DisplayErrorContext(&e).to_string(),
                    ));
                }
                tokio::time::sleep(backoff(attempt + 2)).await;
            }
        }
    }
    Err(err("UpdateIPSet", None, "gave up".into()))
}

/// A WAFv2 client for `set`: the shared SDK config, in the region of the
/// set's ARN (a shell's or function's default region may be another one;
/// CLOUDFRONT sets live in us-east-1).
pub fn client_for(config: &aws_config::SdkConfig, set: &WafSetRef) -> Client {
    let conf = aws_sdk_wafv2::config::Builder::from(config)
        .region(aws_sdk_wafv2::config::Region::new(set.region.clone()))
        .build();
    Client::from_conf(conf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns() {
        let r: WafSetRef = "arn:aws:wafv2:us-east-1:123456789012:regional/ipset/fail2waf-v4/a1b2c3"
            .parse()
            .unwrap();
        assert_eq!(
            (r.name.as_str(), r.id.as_str(), r.scope.clone()),
            ("fail2waf-v4", "a1b2c3", Scope::Regional)
        );
        let g: WafSetRef = "arn:aws:wafv2:us-east-1:123456789012:global/ipset/x/y"
            .parse()
            .unwrap();
        assert_eq!(g.scope, Scope::Cloudfront);
        let r: WafSetRef = "arn:aws:wafv2:eu-west-1:123456789012:regional/ipset/a/b"
            .parse()
            .unwrap();
        assert_eq!(r.region, "eu-west-1", "the set's region, not the caller's");
        let p = WafSetRef::parse(
            "arn:aws:wafv2:us-east-1:1:regional/regexpatternset/users/id",
            "regexpatternset",
        )
        .unwrap();
        assert_eq!(p.name, "users");
        for bad in [
            "",
            "arn:aws:s3:::b",
            "arn:aws:wafv2:us-east-1:1:regional/webacl/x/y",
            "arn:aws:wafv2:r:1:regional/ipset//y",
            "arn:aws:wafv2::1:regional/ipset/x/y",
            "arn:aws:wafv2:us-east-1:1:regional/regexpatternset/users/id",
        ] {
            assert!(bad.parse::<WafSetRef>().is_err(), "{bad}");
        }
    }

    #[test]
    fn validation_refuses_what_waf_or_safety_would() {
        let v = |s: &str, ver, w| validate(&s.parse().unwrap(), ver, w);
        assert_eq!(
            v("192.0.2.7/32", IpVersion::V4, 24),
            Ok("192.0.2.7/32".into())
        );
        assert!(v("192.0.2.7/24", IpVersion::V4, 24)
            .unwrap_err()
            .to_string()
            .contains("host bits"));
        assert!(v("0.0.0.0/0", IpVersion::V4, 0).is_err());
        assert!(v("10.0.0.0/8", IpVersion::V4, 24)
            .unwrap_err()
            .to_string()
            .contains("wider"));
        assert!(v("2001:db8::/64", IpVersion::V4, 24)
            .unwrap_err()
            .to_string()
            .contains("version"));
        assert_eq!(
            v("2001:db8:1:2::/64", IpVersion::V6, 48),
            Ok("2001:db8:1:2::/64".into())
        );
    }
}
