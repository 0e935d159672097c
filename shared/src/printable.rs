//! Client-supplied text (paths, user agents, reasons) made safe to print,
//! log and store: shortened, control characters escaped. Evidence, the
//! ledger's audit trail and the report all pass text through here.

/// Shorten `s` to at most `max` bytes (at a char boundary) and escape
/// control characters, so evidence can be printed and logged safely.
pub fn clip(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max));
    clip_onto(&mut out, s, max);
    out
}

/// [`clip`] `s`, appended to `out`.
pub fn clip_onto(out: &mut String, s: &str, max: usize) {
    // Every byte is looked at (no early exit), which lets the check run
    // many bytes at a time: most text (user agents, paths) is all printable.
    if s.len() <= max && s.bytes().fold(true, |ok, b| ok & (0x20..0x7f).contains(&b)) {
        out.push_str(s);
        return;
    }
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    out.reserve(end + 8);
    for c in s[..end].chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if end < s.len() {
        out.push('…');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_shortens_at_a_char_boundary_and_escapes_control_characters() {
        assert_eq!(clip("/plain", 100), "/plain");
        assert_eq!(clip("abcdef", 3), "abc…");
        // 'é' is two bytes: a cut inside it moves back before it.
        assert_eq!(clip("aé", 2), "a…");
        assert_eq!(clip("a\nb\tc\u{1b}[31m", 100), "a\\nb\\tc\\u{1b}[31m");
        assert_eq!(clip("", 0), "");
        let mut out = String::from("404 ");
        clip_onto(&mut out, "GET\n", 2);
        assert_eq!(out, "404 GE…");
    }
}
