//! Routes: the part of a URL that names *what* was asked for, with the
//! parts that name *which one* folded away.
//!
//! Outage awareness ([`crate::engine`]) compares the server errors a client
//! got on a route with what every other client got on the same route in the
//! same buckets. `/api/products?id=7`, `/api/products/12345` and
//! `/api/products/9f1c2e3d4a5b` are the same code path for that purpose, so
//! a route is the path without its query, with each segment that looks like
//! an identifier replaced by a placeholder:
//!
//! | segment | becomes |
//! |---|---|
//! | digits only (`12345`) | `{n}` |
//! | a UUID (`0b7f…-…`) | `{id}` |
//! | 8 or more hex digits with at least one digit (`9f1c2e3d`) | `{id}` |
//! | 20 or more of `[A-Za-z0-9_-]` with at least one digit (a token) | `{id}` |
//!
//! Operators can also name routes themselves (`[outage] routes`, regexes
//! whose first match names the route, e.g. `^/api/` for "everything under
//! the API is one backend"): see [`RouteNamer`].

use crate::window::Bucket;
use regex::bytes::RegexSet;
use serde::{Deserialize, Serialize};

/// Paths up to this long are kept by a [`RouteCache`].
const CACHED_PATH: usize = 64;

/// Paths a [`RouteCache`] holds.
const CACHED_PATHS: usize = 256;

/// The routes of the paths named last: most requests on a site are for a
/// few hundred paths, and naming one ([`RouteNamer::hash`], which folds
/// its segments) costs several hundred instructions; a hit, under a
/// hundred. Direct-mapped by a hash of the path without its query (all
/// that names a route), compared whole on a hit: a hit gives exactly what
/// the namer would.
#[derive(Clone)]
pub struct RouteCache {
    slots: Box<[CachedRoute; CACHED_PATHS]>,
}

#[derive(Clone, Copy)]
struct CachedRoute {
    /// The path's length; 0: an empty slot (an empty path is not cached).
    len: u8,
    path: [u8; CACHED_PATH],
    route: (u64, Option<u64>),
}

impl Default for RouteCache {
    fn default() -> Self {
        let empty = CachedRoute {
            len: 0,
            path: [0; CACHED_PATH],
            route: (0, None),
        };
        RouteCache {
            slots: Box::new([empty; CACHED_PATHS]),
        }
    }
}

impl std::fmt::Debug for RouteCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let held = self.slots.iter().filter(|s| s.len > 0).count();
        f.debug_struct("RouteCache").field("held", &held).finish()
    }
}

impl RouteCache {
    /// `namer.hash(path)`, from the cache where it holds the path.
    pub fn hash(&mut self, namer: &RouteNamer, path: &[u8]) -> (u64, Option<u64>) {
        let key = without_query(path);
        if key.is_empty() || key.len() > CACHED_PATH {
            return namer.hash(path);
        }
        let slot = &mut self.slots[(hash_bytes(key) >> 56) as usize % CACHED_PATHS];
        if usize::from(slot.len) == key.len() && slot.path[..key.len()] == *key {
            return slot.route;
        }
        let route = namer.hash(path);
        slot.len = key.len() as u8;
        slot.path[..key.len()].copy_from_slice(key);
        slot.route = route;
        route
    }
}

/// Longest route label kept (bytes); longer paths are cut here, so two
/// routes that differ only after this many bytes are one.
pub const MAX_ROUTE_LEN: usize = 96;

/// Turns paths into routes: the operator's patterns first, then folding.
#[derive(Debug, Clone, Default)]
pub struct RouteNamer {
    patterns: Option<(RegexSet, Vec<String>)>,
}

impl RouteNamer {
    /// A namer with the operator's route patterns (regexes over the path
    /// without its query; the first that matches names the route).
    /// The patterns must have been validated ([`crate::config`] does).
    pub fn new(patterns: &[String]) -> RouteNamer {
        if patterns.is_empty() {
            return RouteNamer::default();
        }
        let set = RegexSet::new(patterns).ok();
        RouteNamer {
            patterns: set.map(|s| (s, patterns.to_vec())),
        }
    }

    /// The route's hash for a path (`/a/b?q`), as [`route_hash`] of its
    /// label, and that of its section (the first segment: `/a/*`; `/*` for
    /// paths of one segment), unless an operator pattern named it.
    pub fn hash(&self, path: &[u8]) -> (u64, Option<u64>) {
        if self.patterns.is_some() {
            if let Some(i) = self.pattern_of(without_query(path)) {
                return (hash_bytes(self.label_of_pattern(i).as_bytes()), None);
            }
        }
        let mut buf = [0u8; MAX_ROUTE_LEN + 1];
        let n = fold_into(path, &mut buf);
        let route = hash_bytes(&buf[..n]);
        let section = section_len(&buf[..n]).map(|k| {
            // `/a/` + `*`: the route's first bytes are the section's.
            buf[k] = b'*';
            hash_bytes(&buf[..=k])
        });
        (route, section)
    }

    /// The hash of a path's section alone, cheaply (only its first segment
    /// is folded), as [`RouteNamer::hash`] gives it; `None` when only the
    /// whole path tells (operator patterns, a first segment near
    /// [`MAX_ROUTE_LEN`]). A route is held only with its section, so a
    /// path whose section is not held needs no more work.
    pub fn section_hash(&self, path: &[u8]) -> Option<u64> {
        if self.patterns.is_some() {
            return None;
        }
        let rest = path.strip_prefix(b"/")?;
        // The first segment ends at `/`; at `?`, `#`, a space (the end of
        // the URL in a raw request field) or the end the path has one.
        let Some(i) = rest
            .iter()
            .position(|&b| matches!(b, b'/' | b'?' | b'#' | b' '))
        else {
            return Some(hash_bytes(b"/*"));
        };
        if rest[i] != b'/' {
            return Some(hash_bytes(b"/*"));
        }
        let seg = fold_segment(&rest[..i]);
        if seg.len() + 3 > MAX_ROUTE_LEN {
            return None;
        }
        let mut buf = [0u8; MAX_ROUTE_LEN];
        buf[0] = b'/';
        buf[1..=seg.len()].copy_from_slice(seg);
        buf[seg.len() + 1] = b'/';
        buf[seg.len() + 2] = b'*';
        sanitize(&mut buf[1..=seg.len()]);
        Some(hash_bytes(&buf[..seg.len() + 3]))
    }

    /// The label of a route's section (`/products/*` for
    /// `/products/{n}/reviews`), if it has one.
    pub fn section_label(route_label: &str) -> Option<String> {
        section_len(route_label.as_bytes()).map(|k| format!("{}*", &route_label[..k]))
    }

    /// The route's label, e.g. `/api/products/{n}` (or the operator's
    /// pattern that matched, e.g. `^/api/`).
    pub fn label(&self, path: &[u8]) -> String {
        if let Some(i) = self.pattern_of(without_query(path)) {
            return self.label_of_pattern(i).to_string();
        }
        let mut buf = [0u8; MAX_ROUTE_LEN + 1];
        let n = fold_into(path, &mut buf);
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    fn pattern_of(&self, path: &[u8]) -> Option<usize> {
        let (set, _) = self.patterns.as_ref()?;
        set.matches(path).iter().next()
    }

    fn label_of_pattern(&self, i: usize) -> &str {
        self.patterns.as_ref().map_or("", |(_, p)| &p[i])
    }
}

/// The sections that hold routes, for the question most requests ask
/// while some route is failing: is mine one of them? Most paths are
/// answered by their first byte alone.
#[derive(Debug, Clone, Default)]
pub struct HeldSections {
    /// The sections' hashes, sorted.
    hashes: Vec<u64>,
    /// The first bytes of raw paths whose section may be held (a bit per
    /// byte value).
    first: [u64; 4],
}

impl HeldSections {
    /// Hold the sections of these (hash, label) pairs alone.
    pub fn set<'a>(&mut self, sections: impl IntoIterator<Item = (u64, &'a str)>) {
        self.hashes.clear();
        self.first = [0; 4];
        for (h, label) in sections {
            self.insert(h, label);
        }
    }

    /// Hold one more section (its hash, its label `/a/*`).
    pub fn insert(&mut self, hash: u64, label: &str) {
        if let Err(i) = self.hashes.binary_search(&hash) {
            self.hashes.insert(i, hash);
        }
        // The first byte of a raw path `/a…` whose section folds to this
        // label: any, for `/*` (paths of one segment) and for folded or
        // sanitized first segments (`/{n}/*`, `/_/*`).
        match label.as_bytes().get(1) {
            Some(&c) if !matches!(c, b'*' | b'{' | b'_') => {
                self.first[usize::from(c >> 6)] |= 1 << (c & 63);
            }
            _ => self.first = [u64::MAX; 4],
        }
    }

    /// Whether the section of `path` (a path, or the rest of a raw
    /// request field from its path on) is held: only `false` is certain,
    /// `true` may also mean that only the whole path can tell.
    pub fn may_hold(&self, namer: &RouteNamer, path: &[u8]) -> bool {
        if let Some(&c) = path.get(1) {
            if self.first[usize::from(c >> 6)] & (1 << (c & 63)) == 0 && namer.patterns.is_none() {
                return false;
            }
        }
        match namer.section_hash(path) {
            Some(h) => self.hashes.binary_search(&h).is_ok(),
            None => true,
        }
    }
}

/// The hash of a stored route label (what [`RouteNamer::hash`] gives for
/// every path of that route).
pub fn route_hash(label: &str) -> u64 {
    hash_bytes(label.as_bytes())
}

/// A stable hash of a route label, eight bytes a step (a route is hashed
/// for every request while some route is failing, so this is on the hot
/// path; FNV's byte-serial multiply would cost several times more).
fn hash_bytes(bytes: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h: u64 = bytes.len() as u64;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().expect("8 bytes"));
        h = (h.rotate_left(5) ^ w).wrapping_mul(K);
    }
    let mut tail = [0u8; 8];
    tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    h = (h.rotate_left(5) ^ u64::from_le_bytes(tail)).wrapping_mul(K);
    // Mix the high bits down: hash tables use the low ones.
    h ^ (h >> 29)
}

/// The length of `/a/` in a folded path `/a/b…`: its section is `/a/*`;
/// the section of a path of one segment (`/cart`, `/`) is `/*`.
fn section_len(folded: &[u8]) -> Option<usize> {
    let rest = folded.strip_prefix(b"/")?;
    Some(rest.iter().position(|&b| b == b'/').map_or(1, |i| i + 2))
}

/// The path up to its query, fragment or (in a raw request field) the
/// space before the protocol.
fn without_query(path: &[u8]) -> &[u8] {
    // Paths are short: a plain loop beats memchr's set-up.
    match path.iter().position(|&b| is_path_end(b)) {
        Some(i) => &path[..i],
        None => path,
    }
}

fn is_path_end(b: u8) -> bool {
    CLASS[usize::from(b)] & END != 0
}

/// Fold `path` (up to its query) into `out` (its last byte stays free);
/// the length written, at most [`MAX_ROUTE_LEN`]. One pass over the path:
/// this runs for every request on a section where something failed.
fn fold_into(path: &[u8], out: &mut [u8; MAX_ROUTE_LEN + 1]) -> usize {
    let mut n = 0;
    let mut seg = Segment::default();
    let mut i = 0;
    while i < path.len() {
        let b = path[i];
        let class = CLASS[usize::from(b)];
        if class & (SLASH | END) == 0 {
            if n < MAX_ROUTE_LEN {
                // Control and non-ASCII bytes: see `sanitize`.
                out[n] = if class & PRINTABLE != 0 { b } else { b'_' };
                n += 1;
            }
            seg.push(class);
        } else if class & END != 0 {
            break;
        } else {
            n = seg.fold(&path[i - seg.len..i], out, n);
            if n >= MAX_ROUTE_LEN {
                return n;
            }
            out[n] = b'/';
            n += 1;
            seg = Segment {
                start: n,
                ..Segment::default()
            };
        }
        i += 1;
    }
    seg.fold(&path[i - seg.len..i], out, n)
}

// What a byte can be in a path: one table lookup tells all.
const DIGIT: u8 = 1;
const HEX: u8 = 2;
const TOKEN: u8 = 4;
const PRINTABLE: u8 = 8;
const SLASH: u8 = 16;
/// Ends the path: `?`, `#`, or the space before the protocol.
const END: u8 = 32;

const CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        let mut k = 0;
        if c.is_ascii_digit() {
            k |= DIGIT;
        }
        if c.is_ascii_hexdigit() {
            k |= HEX;
        }
        if c.is_ascii_alphanumeric() || c == b'-' || c == b'_' {
            k |= TOKEN;
        }
        if c >= 0x20 && c < 0x7f {
            k |= PRINTABLE;
        }
        if c == b'/' {
            k |= SLASH;
        }
        if c == b'?' || c == b'#' || c == b' ' {
            k |= END;
        }
        t[b] = k;
        b += 1;
    }
    t
};

/// What one pass over a path segment learns of it: enough to fold it.
struct Segment {
    /// Where the segment starts in the folded path.
    start: usize,
    len: usize,
    digits: usize,
    /// The classes every byte has (see [`CLASS`]).
    all: u8,
}

impl Default for Segment {
    fn default() -> Self {
        Segment {
            start: 0,
            len: 0,
            digits: 0,
            all: u8::MAX,
        }
    }
}

impl Segment {
    fn push(&mut self, class: u8) {
        self.len += 1;
        self.digits += usize::from(class & DIGIT);
        self.all &= class;
    }

    /// The placeholder of the segment `raw` (whose bytes were pushed), if
    /// it is an identifier.
    fn placeholder(&self, raw: &[u8]) -> Option<&'static [u8]> {
        if self.len == 0 || self.digits == 0 {
            None
        } else if self.digits == self.len {
            Some(b"{n}")
        } else if (self.all & HEX != 0 && self.len >= 8)
            || (self.all & TOKEN != 0 && self.len >= 20)
            || is_uuid(raw)
        {
            Some(b"{id}")
        } else {
            None
        }
    }

    /// Replace the segment `raw`, written from `self.start` up to `n`, by
    /// its placeholder if it has one; the folded path's new length.
    fn fold(&self, raw: &[u8], out: &mut [u8; MAX_ROUTE_LEN + 1], n: usize) -> usize {
        let Some(p) = self.placeholder(raw) else {
            return n;
        };
        let take = p.len().min(MAX_ROUTE_LEN - self.start);
        out[self.start..self.start + take].copy_from_slice(&p[..take]);
        self.start + take
    }
}

fn is_uuid(seg: &[u8]) -> bool {
    seg.len() == 36
        && seg.iter().enumerate().all(|(i, &b)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                b == b'-'
            } else {
                b.is_ascii_hexdigit()
            }
        })
}

/// Labels are shown and stored: control and non-ASCII bytes become `_`
/// (so a label is its own UTF-8 and hashes the same after a round trip).
fn sanitize(bytes: &mut [u8]) {
    for b in bytes {
        if !(0x20..0x7f).contains(b) {
            *b = b'_';
        }
    }
}

/// A segment, or the placeholder it folds to.
fn fold_segment(seg: &[u8]) -> &[u8] {
    let mut s = Segment::default();
    seg.iter().for_each(|&b| s.push(CLASS[usize::from(b)]));
    s.placeholder(seg).unwrap_or(seg)
}

/// The `scheme://host:port` of the last absolute URL seen, to find the
/// path of the next request field without scanning the host again (the
/// lines of one log almost all name the same host).
#[derive(Debug, Clone, Default)]
pub struct UrlPrefix(Vec<u8>);

impl UrlPrefix {
    /// Where the path starts in a raw request field (`GET
    /// http://host:80/p?q HTTP/1.1`): the path and whatever follows it.
    pub fn path_start<'a>(&mut self, request: &'a [u8]) -> Option<&'a [u8]> {
        let i = request.iter().position(|&b| b == b' ')?;
        let url = &request[i + 1..];
        if !self.0.is_empty() && starts_with(url, &self.0) {
            let rest = &url[self.0.len()..];
            if matches!(rest.first(), Some(b'/' | b'?')) {
                return Some(rest);
            }
        }
        let path = path_of_request(request);
        // `path` is a part of `url`, or a constant `/` (no path at all).
        let Some(offset) = (path.as_ptr() as usize).checked_sub(url.as_ptr() as usize) else {
            return Some(path);
        };
        if offset > url.len() {
            return Some(path);
        }
        if offset > 0 && offset <= 128 && path.first() == Some(&b'/') {
            self.0.clear();
            self.0.extend_from_slice(&url[..offset]);
        }
        Some(&url[offset..])
    }
}

/// `hay.starts_with(prefix)` inlined, eight bytes a step: for every line
/// while a route is failing, where a call to `memcmp` costs more than the
/// comparison. The last bytes, where the length is not a multiple of
/// eight, are compared as the word that ends the prefix (overlapping the
/// one before).
#[inline]
fn starts_with(hay: &[u8], prefix: &[u8]) -> bool {
    let Some(head) = hay.get(..prefix.len()) else {
        return false;
    };
    if prefix.len() < 8 {
        return head == prefix;
    }
    let word = |c: &[u8], at: usize| u64::from_le_bytes(c[at..at + 8].try_into().expect("8 bytes"));
    let last = prefix.len() - 8;
    (0..last)
        .step_by(8)
        .all(|at| word(head, at) == word(prefix, at))
        && word(head, last) == word(prefix, last)
}

/// The path of an ALB-style request field (`GET http://host:80/p?q HTTP/1.1`)
/// as bytes, without validating it: enough to name its route.
pub fn path_of_request(request: &[u8]) -> &[u8] {
    let url = match request.iter().position(|&b| b == b' ') {
        Some(i) => &request[i + 1..],
        None => request,
    };
    // The protocol version is short: look for its space from the end.
    let url = match url.iter().rposition(|&b| b == b' ') {
        Some(i) => &url[..i],
        None => url,
    };
    // `scheme://authority/path`: a scheme is letters before `:`.
    let scheme = url.iter().take_while(|b| b.is_ascii_alphabetic()).count();
    if scheme == 0 || !url[scheme..].starts_with(b"://") {
        return url;
    }
    let rest = &url[scheme + 3..];
    match rest.iter().position(|&b| b == b'/' || b == b'?') {
        Some(j) => &rest[j..],
        None => b"/",
    }
}

/// Most (bucket, route) entries one key keeps: a shopper retrying through
/// a 10-minute outage of three routes needs about 180.
pub const MAX_KEY_ROUTES: usize = 256;

/// A key's failures and requests on one route in one bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteCount {
    /// The bucket.
    #[serde(rename = "b")]
    pub bucket: Bucket,
    /// The route ([`RouteNamer::hash`]).
    #[serde(rename = "r")]
    pub route: u64,
    /// The route's section, 0 if none.
    #[serde(rename = "s", default)]
    pub section: u64,
    /// Requests that failed (matched an outage-aware rule).
    #[serde(rename = "f")]
    pub failed: u32,
    /// Requests, failed ones included.
    #[serde(rename = "n")]
    pub requests: u32,
}

/// A key's [`RouteCount`]s, sorted by bucket and route: kept for the
/// routes on which the key got a failure, from that failure on.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(from = "Vec<RouteCount>", into = "Vec<RouteCount>")]
pub struct RouteCounts {
    entries: Vec<RouteCount>,
    /// The routes and sections with a failure among `entries`, sorted:
    /// [`RouteCounts::failed_on`] is asked for every request of a key
    /// that failed, so it must not scan the entries.
    failing: Vec<u64>,
}

impl From<Vec<RouteCount>> for RouteCounts {
    fn from(entries: Vec<RouteCount>) -> Self {
        let mut r = RouteCounts {
            entries,
            failing: Vec::new(),
        };
        r.entries.sort_unstable_by_key(|e| (e.bucket, e.route));
        r.reindex();
        r
    }
}

impl From<RouteCounts> for Vec<RouteCount> {
    fn from(r: RouteCounts) -> Self {
        r.entries
    }
}

impl PartialEq for RouteCounts {
    fn eq(&self, other: &Self) -> bool {
        self.entries == other.entries
    }
}

impl Eq for RouteCounts {}

impl RouteCounts {
    /// Add `failed` failures and `requests` requests on `route` in bucket `b`.
    /// When [`MAX_KEY_ROUTES`] entries are held, a newer entry replaces the
    /// oldest and an older one is dropped.
    pub fn add(&mut self, b: Bucket, (route, section): (u64, u64), failed: u32, requests: u32) {
        match self
            .entries
            .binary_search_by_key(&(b, route), |e| (e.bucket, e.route))
        {
            Ok(i) => {
                let e = &mut self.entries[i];
                e.failed = e.failed.saturating_add(failed);
                e.requests = e.requests.saturating_add(requests);
            }
            Err(mut i) => {
                if self.entries.len() >= MAX_KEY_ROUTES {
                    if i == 0 {
                        return;
                    }
                    let gone = self.entries.remove(0);
                    i -= 1;
                    if gone.failed > 0 {
                        self.reindex();
                    }
                }
                self.entries.insert(
                    i,
                    RouteCount {
                        bucket: b,
                        route,
                        section,
                        failed,
                        requests,
                    },
                );
            }
        }
        if failed > 0 {
            self.mark_failing(route);
            if section != 0 {
                self.mark_failing(section);
            }
        }
    }

    /// Has the key got a failure on `route` or in its `section` (0: none),
    /// in any bucket held?
    pub fn failed_on(&self, (route, section): (u64, u64)) -> bool {
        self.failing.binary_search(&route).is_ok()
            || (section != 0 && self.failing.binary_search(&section).is_ok())
    }

    fn mark_failing(&mut self, h: u64) {
        if let Err(i) = self.failing.binary_search(&h) {
            self.failing.insert(i, h);
        }
    }

    fn reindex(&mut self) {
        self.failing.clear();
        for i in 0..self.entries.len() {
            let e = self.entries[i];
            if e.failed > 0 {
                self.mark_failing(e.route);
                if e.section != 0 {
                    self.mark_failing(e.section);
                }
            }
        }
    }

    /// The entries of buckets `lo ..= hi`, sorted by route, then bucket.
    pub fn by_route(&self, lo: Bucket, hi: Bucket) -> Vec<RouteCount> {
        let mut v: Vec<RouteCount> = self
            .entries
            .iter()
            .filter(|e| (lo..=hi).contains(&e.bucket))
            .copied()
            .collect();
        v.sort_unstable_by_key(|e| (e.route, e.bucket));
        v
    }

    /// Every entry, by bucket and route.
    pub fn iter(&self) -> impl Iterator<Item = &RouteCount> {
        self.entries.iter()
    }

    /// Add another key state's counts (a merge: commutative).
    pub fn merge(&mut self, other: &RouteCounts) {
        for e in &other.entries {
            self.add(e.bucket, (e.route, e.section), e.failed, e.requests);
        }
    }

    /// Drop entries of buckets before `b`.
    pub fn prune_before(&mut self, b: Bucket) {
        let before = self.entries.len();
        self.entries.retain(|e| e.bucket >= b);
        if self.entries.len() != before {
            self.reindex();
        }
    }

    /// No entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The cache answers as the namer does, whatever it held before:
        /// paths from a few segments (many repeats, many slots shared),
        /// with queries, raw-request tails and lengths past the cache's.
        #[test]
        fn the_route_cache_answers_as_the_namer(
            paths in proptest::collection::vec(
                "(/(a|b1|12|x-y|[0-9a-f]{8}|\\.|%20)){0,12}(\\?q=[0-9]|#f| HTTP/1.1)?",
                1..200,
            ),
            with_patterns in proptest::bool::ANY,
        ) {
            let namer = if with_patterns {
                RouteNamer::new(&["^/a/b1".to_string(), "^/12/".to_string()])
            } else {
                RouteNamer::default()
            };
            let mut cache = RouteCache::default();
            for p in paths.iter().chain(&paths) {
                proptest::prop_assert_eq!(cache.hash(&namer, p.as_bytes()), namer.hash(p.as_bytes()), "{}", p);
            }
        }
    }

    fn label(p: &str) -> String {
        RouteNamer::default().label(p.as_bytes())
    }

    #[test]
    fn identifiers_fold_and_names_stay() {
        assert_eq!(label("/api/products?id=7"), "/api/products");
        assert_eq!(
            label("/api/products/12345/reviews"),
            "/api/products/{n}/reviews"
        );
        assert_eq!(label("/o/0b7f3c1e-9a2d-4c3b-8e1f-2a3b4c5d6e7f"), "/o/{id}");
        assert_eq!(label("/c/9f1c2e3d4a5b"), "/c/{id}");
        assert_eq!(label("/s/AbCdEf0123456789xyzQ_-"), "/s/{id}");
        // Words, short hex-looking words and file names stay.
        assert_eq!(label("/wp-login.php"), "/wp-login.php");
        assert_eq!(label("/cafe/deadbeef"), "/cafe/deadbeef");
        assert_eq!(label("/v2/static/app.js"), "/v2/static/app.js");
        assert_eq!(label("/"), "/");
        assert_eq!(label(""), "");
    }

    #[test]
    fn hash_is_the_hash_of_the_label() {
        let n = RouteNamer::default();
        for p in [
            "/api/cart?x=1",
            "/api/products/7",
            "/a/very/long/path".repeat(20).as_str(),
        ] {
            let label = n.label(p.as_bytes());
            let section = RouteNamer::section_label(&label).map(|s| route_hash(&s));
            assert_eq!(n.hash(p.as_bytes()), (route_hash(&label), section), "{p}");
        }
        assert_eq!(
            RouteNamer::section_label("/api/cart").as_deref(),
            Some("/api/*")
        );
        assert_eq!(RouteNamer::section_label("/login").as_deref(), Some("/*"));
        assert_eq!(RouteNamer::section_label("/").as_deref(), Some("/*"));
        assert_eq!(RouteNamer::section_label(""), None);
        assert!(n.label("/x".repeat(100).as_bytes()).len() <= MAX_ROUTE_LEN);
        // Folding a label again changes nothing.
        let l = label("/api/products/12/9f1c2e3d4a5b");
        assert_eq!(label(&l), l);
    }

    #[test]
    fn operator_patterns_name_routes_first() {
        let n = RouteNamer::new(&["^/api/".to_string()]);
        assert_eq!(n.label(b"/api/cart?x"), "^/api/");
        assert_eq!(n.hash(b"/api/products/7"), n.hash(b"/api/cart"));
        assert_eq!(n.hash(b"/api/cart").1, None);
        assert_eq!(n.label(b"/static/a.css"), "/static/a.css");
    }

    #[test]
    fn route_counts_add_merge_and_stay_bounded() {
        let mut a = RouteCounts::default();
        a.add(5, (1, 9), 1, 1);
        a.add(5, (1, 9), 0, 2);
        a.add(3, (2, 0), 1, 1);
        assert!(a.failed_on((1, 9)) && a.failed_on((2, 0)) && !a.failed_on((3, 0)));
        // Another route of a section where the key failed.
        assert!(a.failed_on((4, 9)));
        let mut b = RouteCounts::default();
        b.add(5, (1, 9), 2, 2);
        let (mut ab, mut ba) = (a.clone(), b.clone());
        ab.merge(&b);
        ba.merge(&a);
        assert_eq!(ab, ba);
        assert_eq!(
            ab.by_route(0, 10),
            vec![
                RouteCount {
                    bucket: 5,
                    route: 1,
                    section: 9,
                    failed: 3,
                    requests: 5
                },
                RouteCount {
                    bucket: 3,
                    route: 2,
                    section: 0,
                    failed: 1,
                    requests: 1
                },
            ]
        );
        ab.prune_before(4);
        assert!(!ab.failed_on((2, 0)));
        let mut full = RouteCounts::default();
        for i in 0..(MAX_KEY_ROUTES as u32 + 10) {
            full.add(i + 100, (7, 0), 1, 1);
        }
        full.add(0, (7, 0), 1, 1); // older than everything held: dropped
        assert_eq!(full.by_route(0, u32::MAX).len(), MAX_KEY_ROUTES);
        assert_eq!(full.by_route(0, 109).len(), 0);
    }

    #[test]
    fn the_url_prefix_finds_the_path_of_the_next_line_as_the_full_scan_does() {
        let mut p = UrlPrefix::default();
        let n = RouteNamer::default();
        for r in [
            "GET https://shop.example.com:443/api/v1/cart?x=1 HTTP/1.1",
            "GET https://shop.example.com:443/static/a.css HTTP/1.1",
            "POST https://shop.example.com:443?q HTTP/1.1",
            "GET https://other.example.com:443/x/y HTTP/1.1",
            "GET https://shop.example.com:4430/z HTTP/1.1",
            "GET /plain/path HTTP/1.1",
            "- http://h:80- -",
        ] {
            let start = p.path_start(r.as_bytes()).unwrap();
            let full = path_of_request(r.as_bytes());
            assert!(
                start.starts_with(full),
                "{r}: {:?}",
                String::from_utf8_lossy(start)
            );
            assert_eq!(n.section_hash(start), n.section_hash(full), "{r}");
            assert_eq!(n.hash(start), n.hash(full), "{r}");
            assert_eq!(n.label(start), n.label(full), "{r}");
        }
    }

    /// Folding segment by segment, as the one-pass [`fold_into`] must.
    fn fold_by_segments(path: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, seg) in without_query(path).split(|&b| b == b'/').enumerate() {
            if i > 0 {
                if out.len() >= MAX_ROUTE_LEN {
                    break;
                }
                out.push(b'/');
            }
            let room = MAX_ROUTE_LEN - out.len();
            out.extend(fold_segment(seg).iter().take(room));
        }
        sanitize(&mut out);
        out
    }

    #[test]
    fn one_pass_folding_agrees_with_folding_segment_by_segment() {
        let long_id = "9f1c2e3d4a5b".repeat(4);
        let mut paths: Vec<String> = [
            "/api/products/12345/reviews?x=1",
            "//a//b/",
            "/o/0b7f3c1e-9a2d-4c3b-8e1f-2a3b4c5d6e7f#frag",
            "/\u{e9}t\u{e9}/caf\u{e9}\u{1}/42",
            "/p HTTP/1.1",
            "",
            "/",
            "x/1",
        ]
        .iter()
        .map(|p| p.to_string())
        .collect();
        // Cut at the longest label inside, across and after a folded segment.
        for pad in [80, 88, 90, 92, 93, 94, 95, 96, 97] {
            paths.push(format!("/{}/{long_id}/12/tail", "w".repeat(pad)));
            paths.push(format!("/{}/12345", "w".repeat(pad)));
        }
        for p in &paths {
            let mut buf = [0u8; MAX_ROUTE_LEN + 1];
            let n = fold_into(p.as_bytes(), &mut buf);
            assert_eq!(
                String::from_utf8_lossy(&buf[..n]),
                String::from_utf8_lossy(&fold_by_segments(p.as_bytes())),
                "{p}"
            );
        }
    }

    #[test]
    fn held_sections_answer_as_the_sections_hashes_do() {
        let n = RouteNamer::default();
        let paths = [
            "/api/cart",
            "/api/products/7",
            "/static/a.css",
            "/login",
            "/",
            "/?q",
            "//x",
            "/12/x",
            "/ab12cd34ef/x",
            "/_x/y",
            "/\u{e9}/x",
            "/a",
            "/apple/x",
            "",
            "x",
        ];
        for held in [
            vec!["/api/*"],
            vec!["/*"],
            vec!["/{n}/*", "/{id}/*"],
            vec!["/_/*"],
            vec![],
        ] {
            let mut h = HeldSections::default();
            h.set(held.iter().map(|l| (route_hash(l), *l)));
            for p in paths {
                let exact = match n.section_hash(p.as_bytes()) {
                    Some(s) => held.iter().any(|l| route_hash(l) == s),
                    None => true,
                };
                assert_eq!(h.may_hold(&n, p.as_bytes()), exact, "{p} in {held:?}");
            }
        }
    }

    #[test]
    fn starts_with_agrees_with_the_slice_method() {
        let hay = b"https://shop.example.com:443/api";
        for n in 0..=hay.len() {
            let other = hay[..n].to_vec();
            assert!(starts_with(hay, &other), "{n}");
            // Any one byte different.
            for j in 0..n {
                let mut other = other.clone();
                other[j] ^= 1;
                assert!(!starts_with(hay, &other), "{n} {j}");
            }
        }
        assert!(!starts_with(b"http", b"https"));
    }

    #[test]
    fn the_path_of_a_request_field() {
        assert_eq!(
            path_of_request(b"GET http://shop.example.com:80/api/cart?x=1 HTTP/1.1"),
            b"/api/cart?x=1"
        );
        assert_eq!(path_of_request(b"GET https://h:443 HTTP/2.0"), b"/");
        assert_eq!(path_of_request(b"GET /plain HTTP/1.1"), b"/plain");
        assert_eq!(path_of_request(b"- http://h:80- -"), b"/");
        assert_eq!(path_of_request(b""), b"");
    }
}
