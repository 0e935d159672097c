//! AWS WAF logs (stub: being written).
use super::{LineParser, ParseResult};
/// Parser for AWS WAF log lines.
#[derive(Debug, Default)]
pub struct WafParser;
impl LineParser for WafParser {
    fn parse<'a>(&mut self, _line: &'a [u8]) -> ParseResult<'a> {
        Ok(None)
    }
}
