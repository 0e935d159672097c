//! Regex formats with named captures (stub: being written).
use super::{LineParser, ParseResult};
/// A named regex format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternSpec {
    name: String,
}
impl PatternSpec {
    /// The format's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// A user-defined format.
    pub fn new(name: &str, _regex: &str, _time_format: &str) -> Result<PatternSpec, String> {
        Ok(PatternSpec { name: name.into() })
    }
    /// A preset by name.
    pub fn preset(_name: &str) -> Option<PatternSpec> {
        None
    }
}
/// Parser for a regex format.
#[derive(Debug)]
pub struct PatternParser(PatternSpec);
impl PatternParser {
    /// A parser for `spec`.
    pub fn new(spec: PatternSpec) -> Self {
        PatternParser(spec)
    }
}
impl LineParser for PatternParser {
    fn parse<'a>(&mut self, _line: &'a [u8]) -> ParseResult<'a> {
        Ok(None)
    }
}
