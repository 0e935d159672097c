//! What a rule counts per and what the ledger blocks: a network (an
//! address is a /32 or an IPv6 /64) or an application user (an account,
//! an API key, a session: whatever value the log names for the caller).
//!
//! Stored and printed as text: a network as CIDR (`198.51.100.7/32`), a
//! user as `user:` and its value (`user:ak_live_51Hx`), so state written
//! before users existed reads unchanged.

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// Longest user value counted (bytes). Longer values (a whole JWT, a
/// pasted blob) count for nobody: they cannot be matched by a WAF regex
/// either.
pub const MAX_USER_LEN: usize = 256;

/// The text that marks a user key.
const USER_PREFIX: &str = "user:";

/// An application user's value, validated: not empty, not `-`, not
/// `REDACTED` (what AWS WAF writes for a redacted field), no control
/// characters, at most [`MAX_USER_LEN`] bytes, without surrounding
/// whitespace.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct User(Arc<str>);

impl User {
    /// The value as a user, or `None` when it names nobody.
    pub fn new(raw: &str) -> Option<User> {
        let v = raw.trim();
        let nobody = v.is_empty()
            || v == "-"
            || v.eq_ignore_ascii_case("redacted")
            || v.len() > MAX_USER_LEN
            || v.chars().any(char::is_control);
        (!nobody).then(|| User(Arc::from(v)))
    }

    /// The value.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Serialize for User {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl fmt::Display for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A key of the engine and the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    /// An address (as /32, or the IPv6 /64) or a network.
    Net(IpNet),
    /// An application user.
    User(User),
}

impl Key {
    /// The network, for a network key.
    pub fn net(&self) -> Option<IpNet> {
        match self {
            Key::Net(n) => Some(*n),
            Key::User(_) => None,
        }
    }

    /// The user, for a user key.
    pub fn user(&self) -> Option<&User> {
        match self {
            Key::Net(_) => None,
            Key::User(u) => Some(u),
        }
    }

    /// The key with a network's host bits masked.
    pub fn trunc(&self) -> Key {
        match self {
            Key::Net(n) => Key::Net(n.trunc()),
            Key::User(_) => self.clone(),
        }
    }

    /// `network` or `user`.
    pub fn kind(&self) -> &'static str {
        match self {
            Key::Net(_) => "network",
            Key::User(_) => "user",
        }
    }
}

impl From<IpNet> for Key {
    fn from(n: IpNet) -> Key {
        Key::Net(n)
    }
}

impl From<User> for Key {
    fn from(u: User) -> Key {
        Key::User(u)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Net(n) => write!(f, "{n}"),
            Key::User(u) => write!(f, "{USER_PREFIX}{u}"),
        }
    }
}

/// A text that is neither a network nor `user:VALUE`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is neither a network (CIDR or address) nor `user:VALUE`")]
pub struct InvalidKey(pub String);

impl FromStr for Key {
    type Err = InvalidKey;

    /// `user:VALUE`, a CIDR, or a bare address (as /32 or /128).
    fn from_str(s: &str) -> Result<Key, InvalidKey> {
        if let Some(v) = s.strip_prefix(USER_PREFIX) {
            return User::new(v)
                .map(Key::User)
                .ok_or_else(|| InvalidKey(s.to_string()));
        }
        s.parse::<IpNet>()
            .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
            .map(Key::Net)
            .map_err(|_| InvalidKey(s.to_string()))
    }
}

impl Serialize for Key {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_that_name_nobody_are_refused() {
        for v in [
            "",
            "  ",
            "-",
            "REDACTED",
            "redacted",
            "a\nb",
            &"x".repeat(257),
        ] {
            assert_eq!(User::new(v), None, "{v:?}");
        }
        assert_eq!(User::new(" alice ").unwrap().as_str(), "alice");
        assert!(User::new(&"x".repeat(256)).is_some());
    }

    #[test]
    fn keys_read_back_what_they_print_and_old_network_keys_still_parse() {
        for text in [
            "198.51.100.7/32",
            "2001:db8::/64",
            "user:ak_live_51Hx",
            "user:a:b c",
        ] {
            let k: Key = text.parse().unwrap();
            assert_eq!(k.to_string(), text);
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(serde_json::from_str::<Key>(&json).unwrap(), k);
        }
        assert_eq!(
            "198.51.100.7".parse::<Key>().unwrap(),
            Key::Net("198.51.100.7/32".parse().unwrap())
        );
        assert!("user:".parse::<Key>().is_err());
        assert!("alice".parse::<Key>().is_err());
        // As map keys (stored state, ledger): a network sorts before a user.
        let m: std::collections::BTreeMap<Key, u8> =
            serde_json::from_str(r#"{"user:z":1,"10.0.0.0/8":2}"#).unwrap();
        assert_eq!(m.keys().next().unwrap().kind(), "network");
    }
}
