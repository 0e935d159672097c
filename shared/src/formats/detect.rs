//! Format detection (stub: being written).
use super::Format;
/// What a file name or S3 key says about its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameHint {
    /// The name says which format this is.
    Format(Format),
    /// A file that carries no requests (ALB connection or health-check log).
    Skip(&'static str),
    /// The name says nothing: look at the first line.
    Unknown,
}
/// Detect from a file name or S3 key.
pub fn detect_from_name(_name: &str) -> NameHint {
    NameHint::Unknown
}
/// Detect from the first non-empty line.
pub fn detect_from_line(_line: &[u8]) -> Option<Format> {
    None
}
