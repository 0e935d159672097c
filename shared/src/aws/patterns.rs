//! Blocked users in a WAFv2 regex pattern set, which a rule of the web ACL
//! matches against the header or cookie that carries them (`x-api-key`,
//! a session cookie): see `docs/users.md`.
//!
//! A set holds at most [`MAX_REGEXES`] regexes of at most
//! [`MAX_REGEX_LEN`] characters (fixed WAF quotas), so users are packed:
//! each value escaped, several to a regex as `^(?:a|b|c)$` (anchored: a
//! value blocks only itself), in rank order (most offenses, then most
//! recent first, as the IP sets), first fit; those that do not fit are
//! counted as overflow. The sync works as the IP sets' does: read the set
//! with its lock token, compare, write only when different (sending the
//! description back: `UpdateRegexPatternSet` replaces it), retry a stale
//! token or throttling with backoff, paced by the writer's lease.

use super::store::backoff;
use super::waf::{SyncOutcome, WafError, WafSetRef};
use crate::key::User;
use aws_sdk_wafv2::error::ProvideErrorMetadata;
use aws_sdk_wafv2::types::Regex;
use aws_sdk_wafv2::Client;
use std::collections::BTreeSet;

/// Regexes in one regex pattern set (a WAF quota that cannot be raised).
pub const MAX_REGEXES: usize = 10;

/// Characters in one regex (a WAF quota that cannot be raised).
pub const MAX_REGEX_LEN: usize = 200;

/// Most attempts of one sync.
const MAX_ATTEMPTS: u32 = 8;

/// Users packed into regexes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Packed {
    /// The regexes, sorted.
    pub regexes: Vec<String>,
    /// Users that fit.
    pub users: usize,
    /// Users left out: no room left (lower ranks), or a value too long
    /// for one regex.
    pub overflow: usize,
}

/// `value` with every regex metacharacter (`\ ^ $ . | ? * + ( ) [ ] { }`)
/// escaped: a value is matched as text, in PCRE (WAF) and the `regex`
/// crate alike.
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        if "\\^$.|?*+()[]{}".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

const OPEN: &str = "^(?:";
const CLOSE: &str = ")$";

/// Pack `users` (in rank order) into at most [`MAX_REGEXES`] anchored
/// regexes of at most [`MAX_REGEX_LEN`] characters, first fit.
pub fn pack(users: &[User]) -> Packed {
    let mut bodies: Vec<String> = Vec::new();
    let mut p = Packed::default();
    let room = MAX_REGEX_LEN - OPEN.len() - CLOSE.len();
    for u in users {
        let e = escape(u.as_str());
        let len = e.chars().count();
        if len > room {
            p.overflow += 1;
            continue;
        }
        let fits = bodies
            .iter()
            .position(|b| b.chars().count() + 1 + len <= room);
        match fits {
            Some(i) => {
                bodies[i].push('|');
                bodies[i].push_str(&e);
            }
            None if bodies.len() < MAX_REGEXES => bodies.push(e),
            None => {
                p.overflow += 1;
                continue;
            }
        }
        p.users += 1;
    }
    p.regexes = bodies.iter().map(|b| format!("{OPEN}{b}{CLOSE}")).collect();
    p.regexes.sort();
    p
}

/// Make the regex pattern set `set` hold exactly `regexes` (from [`pack`]).
/// `before_write` is awaited right before each write (pacing to one write
/// per second across writers).
pub async fn sync_patterns<W, Fut>(
    waf: &Client,
    set: &WafSetRef,
    regexes: &[String],
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
    let desired: BTreeSet<&str> = regexes.iter().map(String::as_str).collect();
    if desired.len() > MAX_REGEXES || desired.iter().any(|r| r.chars().count() > MAX_REGEX_LEN) {
        return Err(err(
            "UpdateRegexPatternSet",
            None,
            "regexes beyond WAF's quotas".into(),
        ));
    }
    for attempt in 0..MAX_ATTEMPTS {
        let got = match waf
            .get_regex_pattern_set()
            .name(&set.name)
            .scope(set.scope.clone())
            .id(&set.id)
            .send()
            .await
        {
            Ok(g) => g,
            Err(e) => {
                if super::waf::is_throttle(e.code()) && attempt + 1 < MAX_ATTEMPTS {
                    out.throttled += 1;
                    tokio::time::sleep(backoff(attempt + 3)).await;
                    continue;
                }
                return Err(err(
                    "GetRegexPatternSet",
                    e.code(),
                    aws_sdk_wafv2::error::DisplayErrorContext(&e).to_string(),
                ));
            }
        };
        let token = got.lock_token().unwrap_or_default().to_string();
        let current_set = got.regex_pattern_set();
        let description = current_set
            .and_then(|s| s.description())
            .map(str::to_string);
        let current: BTreeSet<&str> = current_set
            .map(|s| s.regular_expression_list())
            .unwrap_or_default()
            .iter()
            .filter_map(Regex::regex_string)
            .collect();
        if current == desired {
            return Ok(out);
        }
        out.added = desired.difference(&current).count();
        out.removed = current.difference(&desired).count();
        before_write().await;
        let list: Vec<Regex> = desired
            .iter()
            .map(|r| Regex::builder().regex_string(*r).build())
            .collect();
        match waf
            .update_regex_pattern_set()
            .name(&set.name)
            .scope(set.scope.clone())
            .id(&set.id)
            .set_description(description)
            .set_regular_expression_list(Some(list))
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
                let retry = super::waf::count_retry(code.as_deref(), &mut out);
                if !retry || attempt + 1 == MAX_ATTEMPTS {
                    return Err(err(
                        "UpdateRegexPatternSet",
                        code.as_deref(),
                        aws_sdk_wafv2::error::DisplayErrorContext(&e).to_string(),
                    ));
                }
                tokio::time::sleep(backoff(attempt + 2)).await;
            }
        }
    }
    Err(err("UpdateRegexPatternSet", None, "gave up".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users(v: &[&str]) -> Vec<User> {
        v.iter().map(|u| User::new(u).unwrap()).collect()
    }

    /// Each packed regex matches exactly its own values: not a prefix, a
    /// suffix, a near variant, or another value's text read as a pattern.
    #[test]
    fn packed_regexes_match_exactly_the_blocked_values() {
        let blocked = users(&[
            "ak_live_51Hx",
            "a.b",
            "x|y",
            "(?:z)",
            "50% off",
            "ünï",
            "a+b*c?[d]{2}\\e^$",
        ]);
        let p = pack(&blocked);
        assert_eq!((p.users, p.overflow, p.regexes.len()), (7, 0, 1));
        let res: Vec<regex::Regex> = p
            .regexes
            .iter()
            .map(|r| regex::Regex::new(r).unwrap())
            .collect();
        let hit = |v: &str| res.iter().any(|r| r.is_match(v));
        for u in &blocked {
            assert!(hit(u.as_str()), "{u} not matched by {:?}", p.regexes);
        }
        for other in [
            "ak_live_51H",
            "ak_live_51Hxx",
            "xak_live_51Hx",
            "aXb",
            "x",
            "y",
            "z",
            "(?:z",
            "aab",
            "ak_live_51Hx a.b",
        ] {
            assert!(!hit(other), "{other} matched by {:?}", p.regexes);
        }
    }

    /// Packing respects WAF's quotas and the rank order: the first users
    /// always get in, the overflow is the lowest ranked, and a value that
    /// cannot fit one regex is left out alone.
    #[test]
    fn packing_fills_ten_regexes_of_200_characters_in_rank_order() {
        let many: Vec<User> = (0..400)
            .map(|i| User::new(&format!("key-{i:05}-abcdefgh")).unwrap())
            .collect();
        let p = pack(&many);
        assert_eq!(p.regexes.len(), MAX_REGEXES);
        assert!(p.regexes.iter().all(|r| r.chars().count() <= MAX_REGEX_LEN));
        assert_eq!(p.users + p.overflow, 400);
        // 20-character values, 10 per 200-character regex (with `|`, `^(?:`, `)$`).
        assert!(p.users >= 80, "{}", p.users);
        let all = p.regexes.join("\n");
        assert!(all.contains("key-00000-abcdefgh"));
        assert!(!all.contains(&format!("key-{:05}-abcdefgh", p.users)));
        let long = User::new(&"k".repeat(195)).unwrap();
        let p = pack(&[long, User::new("short").unwrap()]);
        assert_eq!((p.users, p.overflow), (1, 1));
    }
}
