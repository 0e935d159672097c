//! CloudFront standard logs (stub: being written).
use super::{LineParser, ParseResult};
/// Parser for CloudFront log lines.
#[derive(Debug, Default)]
pub struct CloudFrontParser;
impl LineParser for CloudFrontParser {
    fn parse<'a>(&mut self, _line: &'a [u8]) -> ParseResult<'a> {
        Ok(None)
    }
}
