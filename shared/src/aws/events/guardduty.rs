//! GuardDuty findings delivered by EventBridge (`detail-type`
//! `GuardDuty Finding`, `source` `aws.guardduty`, the finding in `detail`
//! with the camelCase names of the GetFindings API): which remote addresses
//! a finding names as attackers, or why it names none.
//!
//! The addresses are read from the `remoteIpDetails` of the finding's
//! action, chosen by `detail.service.action.actionType`:
//!
//! | actionType | addresses |
//! |---|---|
//! | `NETWORK_CONNECTION` | `networkConnectionAction.remoteIpDetails`, if the connection is inbound and our resource is not the actor |
//! | `PORT_PROBE` | every `portProbeAction.portProbeDetails[].remoteIpDetails` |
//! | `AWS_API_CALL` | `awsApiCallAction.remoteIpDetails` |
//! | `KUBERNETES_API_CALL` | `kubernetesApiCallAction.remoteIpDetails` |
//! | `RDS_LOGIN_ATTEMPT` | `rdsLoginAttemptAction.remoteIpDetails` |
//! | anything else (`DNS_REQUEST`, Runtime Monitoring's `action: {}`, none) | none: [`Skip::NoRemoteAddress`] |
//!
//! From each `remoteIpDetails`, `ipAddressV4` then `ipAddressV6` (either or
//! both may be there). IPv4-mapped IPv6 addresses become IPv4; addresses
//! that do not parse, unspecified (`0.0.0.0`, `::`) and loopback addresses
//! are dropped; duplicates are kept once, in the order found.
//!
//! Traps (see `tests/data/guardduty/SOURCES.md`): in a `NETWORK_CONNECTION`
//! with `service.resourceRole` `ACTOR` or `connectionDirection` `OUTBOUND`,
//! the remote address is the one *our* instance connected to, a victim or
//! a destination, never something to block; the resource's own addresses
//! (`resource.instanceDetails…publicIp`, `localIpDetails`) are never read;
//! `kubernetesApiCallAction.sourceIPs` is not read (its address is also in
//! `remoteIpDetails`). GuardDuty aggregates recurrences into the same
//! finding `id`, replacing the remote address with the latest one, so a
//! re-delivered finding may name a new address under an id already seen.

use super::{describe, excerpt, malformed, shape, str_field, EventError};
use serde_json::{Map, Value};
use std::fmt;
use std::net::IpAddr;

/// What [`decode_finding`] accepts, for error messages.
const EXPECTED_FINDING: &str =
    "an EventBridge GuardDuty Finding event (detail-type \"GuardDuty Finding\", source aws.guardduty)";

/// A GuardDuty finding reduced to what fail2waf acts on.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// The finding id (`detail.id`). GuardDuty updates a finding in place
    /// under the same id, so one id may be delivered several times.
    pub id: String,
    /// The finding type (`detail.type`), e.g.
    /// `Recon:EC2/PortProbeUnprotectedPort`.
    pub kind: String,
    /// The severity (`detail.severity`, a number or a numeric string):
    /// 1.0–3.9 low, 4.0–6.9 medium, 7.0–8.9 high, 9.0–10.0 critical.
    pub severity: f64,
    /// How many times GuardDuty saw the activity (`detail.service.count`;
    /// 1 when absent or not a non-negative integer).
    pub count: u64,
    /// When the finding was last updated (`detail.updatedAt`, ISO 8601 as
    /// given; empty if absent).
    pub updated_at: String,
    /// The account the finding is about (`detail.accountId`, else the
    /// envelope's `account`; empty if neither).
    pub account: String,
    /// The region the finding is from (`detail.region`, else the envelope's
    /// `region`; empty if neither).
    pub region: String,
    /// The action type (`detail.service.action.actionType`), e.g.
    /// `PORT_PROBE`; empty if absent.
    pub action: String,
    /// Whether this is a sample finding (`detail.service.additionalInfo`:
    /// `sample: true`, or the same inside its `value` JSON string).
    pub sample: bool,
    /// The remote (attacker) addresses to block, deduplicated, in the order
    /// found. Empty exactly when [`Finding::skip`] is set.
    pub remote: Vec<IpAddr>,
    /// Why the finding names no address to block; `None` when
    /// [`Finding::remote`] is non-empty.
    pub skip: Option<Skip>,
}

/// Why a finding names no address to block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// The finding's action carries no usable remote address: an action
    /// type without one (`DNS_REQUEST`, Runtime Monitoring, Malware
    /// Protection, no action), or an action whose `remoteIpDetails` is
    /// absent or holds no valid, non-loopback address.
    NoRemoteAddress {
        /// The action type (`detail.service.action.actionType`; empty if
        /// absent).
        action: String,
    },
    /// Our own resource is the actor (`service.resourceRole` `ACTOR`): it
    /// attacked or contacted the remote address, which is its victim.
    OwnResourceIsActor {
        /// The action type, e.g. `NETWORK_CONNECTION`.
        action: String,
        /// The remote addresses the finding names (the victims).
        peers: Vec<IpAddr>,
    },
    /// An outbound connection (`connectionDirection` `OUTBOUND`): the remote
    /// address is where our resource connected to.
    Outbound {
        /// The remote addresses the finding names (the destinations).
        peers: Vec<IpAddr>,
    },
}

/// `a, b, c`, or `the remote address` when there are none.
fn peer_list(peers: &[IpAddr]) -> String {
    if peers.is_empty() {
        return "the remote address".into();
    }
    peers
        .iter()
        .map(IpAddr::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Skip::NoRemoteAddress { action } if action.is_empty() => write!(
                f,
                "no remote address to block: the finding has no action type \
                 (runtime, malware or S3 finding)"
            ),
            Skip::NoRemoteAddress { action } => write!(
                f,
                "no remote address to block: the {action} action names none"
            ),
            Skip::OwnResourceIsActor { action, peers } => write!(
                f,
                "our own resource is the actor of this {action}: {} is its target, not an attacker",
                peer_list(peers)
            ),
            Skip::Outbound { peers } => write!(
                f,
                "outbound connection from our own resource: {} is its destination, not an attacker",
                peer_list(peers)
            ),
        }
    }
}

/// Whether an event is an EventBridge GuardDuty finding: `detail-type` is
/// `GuardDuty Finding` and `source`, if present, is `aws.guardduty`.
pub fn is_guardduty_finding(event: &Value) -> bool {
    str_field(event, "detail-type") == Some("GuardDuty Finding")
        && event
            .get("source")
            .is_none_or(|s| s.as_str() == Some("aws.guardduty"))
}

/// Decode an EventBridge GuardDuty finding: its identity, severity and the
/// remote addresses to block (see the module doc for where they come from),
/// or, in [`Finding::skip`], why there are none.
///
/// Not a GuardDuty finding event (see [`is_guardduty_finding`]) →
/// [`EventError::UnexpectedShape`]. A GuardDuty finding event whose
/// `detail` is not an object, or lacks a non-empty string `id` or `type`
/// or a numeric `severity` → [`EventError::Malformed`]. Everything else is
/// read leniently: a missing or mistyped `service`, action, address or
/// count makes the finding skipped or takes a default, never an error.
pub fn decode_finding(event: &Value) -> Result<Finding, EventError> {
    if !is_guardduty_finding(event) {
        return Err(shape("event", EXPECTED_FINDING, describe(event)));
    }
    let context = "EventBridge GuardDuty Finding";
    let detail = match event.get("detail") {
        Some(Value::Object(d)) => d,
        other => {
            return Err(malformed(
                context,
                format!("detail is {}, expected an object", what(other)),
            ))
        }
    };
    let id = match detail.get("id") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        other => {
            return Err(malformed(
                context,
                format!("detail.id is {}, expected a non-empty string", what(other)),
            ))
        }
    };
    let context = format!("GuardDuty finding {:?}", excerpt(&id, 80));
    let kind = match detail.get("type") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        other => {
            return Err(malformed(
                &context,
                format!(
                    "detail.type is {}, expected a non-empty string such as \
                     \"Recon:EC2/PortProbeUnprotectedPort\"",
                    what(other)
                ),
            ))
        }
    };
    let severity = detail.get("severity").and_then(number).ok_or_else(|| {
        malformed(
            &context,
            format!(
                "detail.severity is {}, expected a number",
                what(detail.get("severity"))
            ),
        )
    })?;

    let service = detail.get("service");
    let count = service
        .and_then(|s| s.get("count"))
        .and_then(whole_number)
        .unwrap_or(1);
    let action_obj = service.and_then(|s| s.get("action"));
    let action = action_obj
        .and_then(|a| str_field(a, "actionType"))
        .unwrap_or_default()
        .to_string();
    let sample = service
        .and_then(|s| s.get("additionalInfo"))
        .is_some_and(is_sample);
    let role = service.and_then(|s| str_field(s, "resourceRole"));

    let (remote, skip) = remote_addresses(&action, action_obj, role);
    Ok(Finding {
        id,
        kind,
        severity,
        count,
        updated_at: text(detail, "updatedAt").unwrap_or_default(),
        account: text(detail, "accountId")
            .or_else(|| event.as_object().and_then(|e| text(e, "account")))
            .unwrap_or_default(),
        region: text(detail, "region")
            .or_else(|| event.as_object().and_then(|e| text(e, "region")))
            .unwrap_or_default(),
        action,
        sample,
        remote,
        skip,
    })
}

/// The addresses to block, or why there are none (exactly one of the two
/// is non-empty / `Some`).
fn remote_addresses(
    action: &str,
    action_obj: Option<&Value>,
    role: Option<&str>,
) -> (Vec<IpAddr>, Option<Skip>) {
    let body = |key: &str| action_obj.and_then(|a| a.get(key));
    let mut found = Vec::new();
    match action {
        "NETWORK_CONNECTION" => {
            let conn = body("networkConnectionAction");
            collect(conn.and_then(|c| c.get("remoteIpDetails")), &mut found);
            if role.is_some_and(|r| r.eq_ignore_ascii_case("ACTOR")) {
                let skip = Skip::OwnResourceIsActor {
                    action: action.to_string(),
                    peers: found,
                };
                return (Vec::new(), Some(skip));
            }
            let outbound = conn
                .and_then(|c| str_field(c, "connectionDirection"))
                .is_some_and(|d| d.eq_ignore_ascii_case("OUTBOUND"));
            if outbound {
                return (Vec::new(), Some(Skip::Outbound { peers: found }));
            }
        }
        "PORT_PROBE" => {
            let details = body("portProbeAction")
                .and_then(|p| p.get("portProbeDetails"))
                .and_then(Value::as_array);
            for d in details.into_iter().flatten() {
                collect(d.get("remoteIpDetails"), &mut found);
            }
        }
        "AWS_API_CALL" | "KUBERNETES_API_CALL" | "RDS_LOGIN_ATTEMPT" => {
            let key = match action {
                "AWS_API_CALL" => "awsApiCallAction",
                "KUBERNETES_API_CALL" => "kubernetesApiCallAction",
                _ => "rdsLoginAttemptAction",
            };
            collect(body(key).and_then(|b| b.get("remoteIpDetails")), &mut found);
        }
        _ => {}
    }
    if found.is_empty() {
        let skip = Skip::NoRemoteAddress {
            action: action.to_string(),
        };
        return (found, Some(skip));
    }
    (found, None)
}

/// Append the valid addresses of one `remoteIpDetails` (`ipAddressV4`, then
/// `ipAddressV6`) to `out`, skipping those already there.
fn collect(details: Option<&Value>, out: &mut Vec<IpAddr>) {
    let Some(details) = details else { return };
    for key in ["ipAddressV4", "ipAddressV6"] {
        if let Some(ip) = details.get(key).and_then(address) {
            if !out.contains(&ip) {
                out.push(ip);
            }
        }
    }
}

/// An address worth blocking: parses (either family, in either field),
/// IPv4-mapped IPv6 taken as IPv4, neither unspecified nor loopback.
fn address(v: &Value) -> Option<IpAddr> {
    let ip = v.as_str()?.trim().parse::<IpAddr>().ok()?.to_canonical();
    (!ip.is_unspecified() && !ip.is_loopback()).then_some(ip)
}

/// A finite number, from a JSON number or a numeric string.
fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|f: &f64| f.is_finite())
}

/// A non-negative integer, from a JSON number (integral) or a numeric
/// string.
fn whole_number(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| *f >= 0.0 && f.fract() == 0.0 && *f < u64::MAX as f64)
                .map(|f| f as u64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `additionalInfo.sample == true`, or the same in `additionalInfo.value`,
/// the JSON-string copy newer findings (and the API model) carry.
fn is_sample(info: &Value) -> bool {
    if info.get("sample") == Some(&Value::Bool(true)) {
        return true;
    }
    str_field(info, "value")
        .and_then(|s| serde_json::from_str::<Value>(s).ok())
        .is_some_and(|v| v.get("sample") == Some(&Value::Bool(true)))
}

/// A non-empty string field.
fn text(obj: &Map<String, Value>, key: &str) -> Option<String> {
    obj.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// A field for error messages: `missing`, a string or number as it is,
/// anything else described.
fn what(v: Option<&Value>) -> String {
    match v {
        None => "missing".into(),
        Some(Value::String(s)) => format!("{:?}", excerpt(s, 40)),
        Some(Value::Number(n)) => n.to_string(),
        Some(other) => describe(other),
    }
}
