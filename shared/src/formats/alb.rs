//! ALB access logs (stub: being written).
use super::{LineParser, ParseResult};
/// Parser for ALB access log lines.
#[derive(Debug, Default)]
pub struct AlbParser;
impl LineParser for AlbParser {
    fn parse<'a>(&mut self, _line: &'a [u8]) -> ParseResult<'a> {
        Ok(None)
    }
}
