//! Human durations in config files: `90s`, `5m`, `1h`, `7d`, or combinations
//! like `1h30m`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A whole number of seconds, written in config as `10s`, `5m`, `2h`, `7d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Secs(pub u64);

impl Secs {
    /// Milliseconds.
    pub fn ms(self) -> i64 {
        i64::try_from(self.0.saturating_mul(1000)).unwrap_or(i64::MAX)
    }
}

/// Why a text is not a duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Nothing but whitespace.
    #[error("empty duration")]
    Empty,
    /// More seconds than a `u64` holds.
    #[error("duration `{0}` is too large")]
    TooLarge(String),
    /// A letter that is no unit.
    #[error("duration `{text}`: unknown unit `{unit}` (use s, m, h, d, w)")]
    UnknownUnit {
        /// The duration as written (trimmed).
        text: String,
        /// The letter.
        unit: char,
    },
    /// A unit with no number before it.
    #[error("duration `{text}`: unit `{unit}` without a number")]
    NoNumber {
        /// The duration as written (trimmed).
        text: String,
        /// The unit.
        unit: char,
    },
    /// A number with no unit after it.
    #[error("duration `{0}`: missing unit (e.g. `{0}s`)")]
    NoUnit(String),
}

impl std::str::FromStr for Secs {
    type Err = DurationError;
    fn from_str(s: &str) -> Result<Self, DurationError> {
        let t = s.trim();
        if t.is_empty() {
            return Err(DurationError::Empty);
        }
        let mut total: u64 = 0;
        let mut num: Option<u64> = None;
        for c in t.chars() {
            if let Some(d) = c.to_digit(10) {
                num = Some(
                    num.unwrap_or(0)
                        .checked_mul(10)
                        .and_then(|n| n.checked_add(u64::from(d)))
                        .ok_or_else(|| DurationError::TooLarge(t.to_string()))?,
                );
                continue;
            }
            let unit = match c {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                'd' => 86_400,
                'w' => 604_800,
                _ => {
                    return Err(DurationError::UnknownUnit {
                        text: t.to_string(),
                        unit: c,
                    })
                }
            };
            let n = num.take().ok_or_else(|| DurationError::NoNumber {
                text: t.to_string(),
                unit: c,
            })?;
            total = n
                .checked_mul(unit)
                .and_then(|v| total.checked_add(v))
                .ok_or_else(|| DurationError::TooLarge(t.to_string()))?;
        }
        if num.is_some() {
            return Err(DurationError::NoUnit(t.to_string()));
        }
        Ok(Secs(total))
    }
}

impl fmt::Display for Secs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        if s == 0 {
            return write!(f, "0s");
        }
        for (unit, n) in [("w", 604_800), ("d", 86_400), ("h", 3600), ("m", 60)] {
            if s % n == 0 {
                return write!(f, "{}{unit}", s / n);
            }
        }
        write!(f, "{s}s")
    }
}

impl Serialize for Secs {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Secs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::Secs;

    #[test]
    fn parses_and_prints() {
        assert_eq!("90s".parse::<Secs>(), Ok(Secs(90)));
        assert_eq!("1h30m".parse::<Secs>(), Ok(Secs(5400)));
        assert_eq!("7d".parse::<Secs>(), Ok(Secs(604_800)));
        assert_eq!(
            "10".parse::<Secs>().unwrap_err().to_string(),
            "duration `10`: missing unit (e.g. `10s`)"
        );
        assert!("10x"
            .parse::<Secs>()
            .unwrap_err()
            .to_string()
            .contains("unknown unit"));
        assert!("".parse::<Secs>().is_err());
        assert!("99999999999999999999s".parse::<Secs>().is_err());
        assert_eq!(Secs(5400).to_string(), "90m");
        assert_eq!(Secs(3600).to_string(), "1h");
        assert_eq!(Secs(61).to_string(), "61s");
    }
}
