//! Event-time bucketed sliding windows.
//!
//! Time is cut into buckets of a fixed width (10 s by default); a bucket is
//! identified by `event_time_ms / bucket_ms`. A [`Series`] holds the count
//! of each non-empty bucket. A window of `n` buckets ending at bucket `e`
//! is the sum of buckets `e-n+1 ..= e`; a key offends when *any* window
//! reaches the threshold, so a late record (older than the newest bucket)
//! simply lands in its own bucket and the windows that contain it are
//! evaluated again.
//!
//! Series merge by adding counts bucket by bucket, which is commutative and
//! associative: the counts of two log objects give the same totals in either
//! order.

use serde::{Deserialize, Serialize};

/// Bucket index: `event_time_ms / bucket_ms`.
pub type Bucket = u32;

/// Sparse, sorted per-bucket counts.
///
/// Most clients of a busy site make a few requests in a window: up to
/// [`INLINE`] buckets are held in the value itself, without a heap
/// allocation (and without the cache miss of visiting one). Stored and
/// compared as the list of `(bucket, count)` pairs either way.
#[derive(Clone, Default)]
pub struct Series(Buckets);

/// Buckets a [`Series`] holds without allocating.
pub const INLINE: usize = 3;

#[derive(Clone)]
enum Buckets {
    Inline(u8, [(Bucket, u32); INLINE]),
    /// More than [`INLINE`] buckets, and the newest of them: a count in a
    /// newer bucket (most counts of a client with many requests) is
    /// appended without a visit to the heap memory, which on a site with
    /// many clients is a cache miss.
    Heap(Bucket, Vec<(Bucket, u32)>),
}

impl Default for Buckets {
    fn default() -> Self {
        Buckets::Inline(0, [(0, 0); INLINE])
    }
}

impl PartialEq for Series {
    fn eq(&self, other: &Series) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for Series {}

impl std::fmt::Debug for Series {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

impl Serialize for Series {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.as_slice().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Series {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Vec::deserialize(d).map(Series::from_vec)
    }
}

impl Series {
    /// A series of these `(bucket, count)` pairs, sorted by bucket.
    fn from_vec(v: Vec<(Bucket, u32)>) -> Series {
        if v.len() <= INLINE {
            let mut buf = [(0, 0); INLINE];
            buf[..v.len()].copy_from_slice(&v);
            Series(Buckets::Inline(v.len() as u8, buf))
        } else {
            Series(Buckets::Heap(v[v.len() - 1].0, v))
        }
    }

    fn as_slice(&self) -> &[(Bucket, u32)] {
        match &self.0 {
            Buckets::Inline(n, buf) => &buf[..usize::from(*n)],
            Buckets::Heap(_, v) => v,
        }
    }

    fn as_mut_slice(&mut self) -> &mut [(Bucket, u32)] {
        match &mut self.0 {
            Buckets::Inline(n, buf) => &mut buf[..usize::from(*n)],
            Buckets::Heap(_, v) => v,
        }
    }

    /// Insert `e` at `i` (the order stays sorted: callers see to it).
    fn insert(&mut self, i: usize, e: (Bucket, u32)) {
        match &mut self.0 {
            Buckets::Inline(n, buf) if usize::from(*n) < INLINE => {
                let len = usize::from(*n);
                buf.copy_within(i..len, i + 1);
                buf[i] = e;
                *n += 1;
            }
            Buckets::Inline(_, buf) => {
                // Full: spill, with room to grow.
                let mut v = Vec::with_capacity(2 * INLINE);
                v.extend_from_slice(&buf[..i]);
                v.push(e);
                v.extend_from_slice(&buf[i..]);
                self.0 = Buckets::Heap(v[v.len() - 1].0, v);
            }
            Buckets::Heap(newest, v) => {
                v.insert(i, e);
                *newest = (*newest).max(e.0);
            }
        }
    }

    /// Add `n` to bucket `b`.
    #[inline]
    pub fn add(&mut self, b: Bucket, n: u32) {
        if let Buckets::Heap(newest, v) = &mut self.0 {
            if b > *newest {
                v.push((b, n));
                *newest = b;
                return;
            }
        }
        // Most counts land in the newest bucket: that much is inlined.
        match self.as_mut_slice().last_mut() {
            Some((last, c)) if *last == b => *c = c.saturating_add(n),
            _ => self.add_cold(b, n),
        }
    }

    #[inline(never)]
    fn add_cold(&mut self, b: Bucket, n: u32) {
        let s = self.as_mut_slice();
        let i = match s.last() {
            // A late record: find its place (the search would visit a
            // long series' memory, which appending does not).
            Some(&(last, _)) if last > b => match s.binary_search_by_key(&b, |e| e.0) {
                Ok(i) => {
                    s[i].1 = s[i].1.saturating_add(n);
                    return;
                }
                Err(i) => i,
            },
            _ => s.len(),
        };
        self.insert(i, (b, n));
    }

    /// Sum of buckets `lo ..= hi`.
    pub fn sum(&self, lo: Bucket, hi: Bucket) -> u64 {
        if lo > hi {
            return 0;
        }
        let s = self.as_slice();
        let start = s.partition_point(|e| e.0 < lo);
        s[start..]
            .iter()
            .take_while(|e| e.0 <= hi)
            .map(|e| u64::from(e.1))
            .sum()
    }

    /// Sum of the window of `len` buckets that ends at `end`.
    pub fn window(&self, end: Bucket, len: u32) -> u64 {
        self.sum(window_start(end, len), end)
    }

    /// The newest non-empty bucket.
    pub fn newest(&self) -> Option<Bucket> {
        match &self.0 {
            Buckets::Heap(newest, _) => Some(*newest),
            Buckets::Inline(..) => self.as_slice().last().map(|e| e.0),
        }
    }

    /// [`Series::newest`], read where it is stored: for a reader that
    /// fetches the memory a count will write ([`crate::engine`]'s reading
    /// ahead).
    pub fn newest_stored(&self) -> Option<Bucket> {
        self.as_slice().last().map(|e| e.0)
    }

    /// The oldest non-empty bucket.
    pub fn oldest(&self) -> Option<Bucket> {
        self.as_slice().first().map(|e| e.0)
    }

    /// Add every bucket of `other`.
    pub fn merge(&mut self, other: &Series) {
        if other.is_empty() {
            return;
        }
        let (mine, theirs) = (self.as_slice(), other.as_slice());
        let mut out = Vec::with_capacity(mine.len() + theirs.len());
        let (mut a, mut b) = (mine.iter().peekable(), theirs.iter().peekable());
        loop {
            match (a.peek(), b.peek()) {
                (Some(x), Some(y)) if x.0 == y.0 => {
                    out.push((x.0, x.1.saturating_add(y.1)));
                    a.next();
                    b.next();
                }
                (Some(x), Some(y)) if x.0 < y.0 => {
                    out.push(**x);
                    a.next();
                }
                (_, Some(y)) => {
                    out.push(**y);
                    b.next();
                }
                (Some(x), None) => {
                    out.push(**x);
                    a.next();
                }
                (None, None) => break,
            }
        }
        *self = Series::from_vec(out);
    }

    /// Drop buckets older than `b` (a series left with few buckets gives
    /// its heap memory back).
    pub fn prune_before(&mut self, b: Bucket) {
        let n = self.as_slice().partition_point(|e| e.0 < b);
        if n == 0 {
            return;
        }
        match &mut self.0 {
            Buckets::Inline(len, buf) => {
                buf.copy_within(n..usize::from(*len), 0);
                *len -= n as u8;
            }
            Buckets::Heap(_, v) => {
                v.drain(..n);
                if v.len() <= INLINE {
                    *self = Series::from_vec(std::mem::take(v));
                }
            }
        }
    }

    /// No bucket has a count.
    pub fn is_empty(&self) -> bool {
        self.as_slice().is_empty()
    }

    /// The non-empty buckets in `lo ..= hi`, oldest first.
    pub fn buckets_in(&self, lo: Bucket, hi: Bucket) -> impl Iterator<Item = Bucket> + '_ {
        let s = self.as_slice();
        let start = s.partition_point(|e| e.0 < lo);
        s[start..]
            .iter()
            .take_while(move |e| e.0 <= hi)
            .map(|e| e.0)
    }

    /// Iterate `(bucket, count)`, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = (Bucket, u32)> + '_ {
        self.as_slice().iter().copied()
    }
}

/// First bucket of the window of `len` buckets that ends at `end`.
pub fn window_start(end: Bucket, len: u32) -> Bucket {
    end.saturating_sub(len.saturating_sub(1))
}

/// A bounded set of distinct items (paths, member addresses) by 64-bit
/// hash, each with the newest bucket it was seen in.
///
/// It keeps at most `cap` entries, the most recently seen, so
/// [`DistinctSet::count_since`] returns `min(true distinct count, cap)`:
/// exactly what a "at least N distinct" condition with `cap = N` needs,
/// in bounded memory. Merging keeps the newest bucket per hash and then
/// the `cap` newest entries (ties broken by hash), which does not depend
/// on the order of merges.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DistinctSet(Vec<(u64, Bucket)>);

impl DistinctSet {
    /// Record `hash` as seen in bucket `b`, keeping at most `cap` entries.
    pub fn insert(&mut self, hash: u64, b: Bucket, cap: usize) {
        match self.0.binary_search_by_key(&hash, |e| e.0) {
            Ok(i) => self.0[i].1 = self.0[i].1.max(b),
            Err(i) if self.0.len() < cap => {
                // Most sets hold one entry or two: no room for four
                // (thousands of keys hold one).
                if self.0.len() < 4 {
                    self.0.reserve_exact(1);
                }
                self.0.insert(i, (hash, b));
            }
            Err(_) => {
                // Full: the new entry replaces the oldest if it is newer.
                let Some(oldest) = self
                    .0
                    .iter()
                    .copied()
                    .min_by_key(|e| (e.1, std::cmp::Reverse(e.0)))
                else {
                    return;
                };
                if (b, std::cmp::Reverse(hash)) > (oldest.1, std::cmp::Reverse(oldest.0)) {
                    self.0.retain(|e| e.0 != oldest.0);
                    let i = self.0.partition_point(|e| e.0 < hash);
                    self.0.insert(i, (hash, b));
                }
            }
        }
    }

    /// Distinct items seen in bucket `lo` or later (at most `cap`).
    pub fn count_since(&self, lo: Bucket) -> u32 {
        u32::try_from(self.0.iter().filter(|e| e.1 >= lo).count()).unwrap_or(u32::MAX)
    }

    /// Was `hash` seen in bucket `lo` or later?
    pub fn contains_since(&self, hash: u64, lo: Bucket) -> bool {
        self.0
            .binary_search_by_key(&hash, |e| e.0)
            .is_ok_and(|i| self.0[i].1 >= lo)
    }

    /// Union with `other`, keeping the `cap` newest entries. The result
    /// is kept sorted by hash, so equal sets compare equal.
    pub fn merge(&mut self, other: &DistinctSet, cap: usize) {
        for &(h, b) in &other.0 {
            match self.0.binary_search_by_key(&h, |e| e.0) {
                Ok(i) => self.0[i].1 = self.0[i].1.max(b),
                Err(i) => self.0.insert(i, (h, b)),
            }
        }
        if self.0.len() > cap {
            self.0
                .sort_unstable_by_key(|e| (std::cmp::Reverse(e.1), e.0));
            self.0.truncate(cap);
            self.0.sort_unstable_by_key(|e| e.0);
        }
    }

    /// Drop entries last seen before bucket `b`.
    pub fn prune_before(&mut self, b: Bucket) {
        self.0.retain(|e| e.1 >= b);
    }

    /// Number of entries held.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// No entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A stable 64-bit FNV-1a hash, so stored sets mean the same thing in every
/// process and version.
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Brute force: counts per bucket in a plain map.
    fn reference(events: &[(u32, u32)]) -> std::collections::BTreeMap<u32, u64> {
        let mut m = std::collections::BTreeMap::new();
        for &(b, n) in events {
            *m.entry(b).or_insert(0) += u64::from(n);
        }
        m
    }

    proptest! {
        #[test]
        fn windows_match_brute_force(
            events in proptest::collection::vec((0u32..200, 1u32..5), 0..300),
            len in 1u32..40,
        ) {
            let mut s = Series::default();
            for &(b, n) in &events {
                s.add(b, n);
            }
            let r = reference(&events);
            for end in 0..220u32 {
                let lo = window_start(end, len);
                let want: u64 = r.range(lo..=end).map(|(_, v)| *v).sum();
                prop_assert_eq!(s.window(end, len), want);
            }
            // Sorted and without duplicates.
            let v: Vec<_> = s.iter().collect();
            prop_assert!(v.windows(2).all(|w| w[0].0 < w[1].0));
            prop_assert_eq!(s.newest(), v.last().map(|e| e.0));
        }

        #[test]
        fn inline_and_spilled_series_prune_and_store_alike(
            events in proptest::collection::vec((0u32..12, 1u32..5), 0..14),
            cut in 0u32..14,
            later in proptest::collection::vec((0u32..16, 1u32..5), 0..6),
        ) {
            let mut s = Series::default();
            for &(b, n) in &events {
                s.add(b, n);
            }
            s.prune_before(cut);
            for &(b, n) in &later {
                s.add(b, n);
            }
            let all: Vec<_> = events.iter().filter(|e| e.0 >= cut).chain(&later).copied().collect();
            let want: Vec<(u32, u64)> = reference(&all).into_iter().collect();
            let got: Vec<(u32, u64)> = s.iter().map(|(b, n)| (b, u64::from(n))).collect();
            prop_assert_eq!(got, want);
            prop_assert_eq!(s.newest(), s.newest_stored());
            // Stored as the plain list of pairs, and read back equal.
            let json = serde_json::to_string(&s).unwrap();
            prop_assert_eq!(&json, &serde_json::to_string(&s.iter().collect::<Vec<_>>()).unwrap());
            let back: Series = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(back, s);
        }

        #[test]
        fn merge_is_order_independent(
            a in proptest::collection::vec((0u32..100, 1u32..5), 0..100),
            b in proptest::collection::vec((0u32..100, 1u32..5), 0..100),
            c in proptest::collection::vec((0u32..100, 1u32..5), 0..100),
        ) {
            let mk = |ev: &[(u32, u32)]| { let mut s = Series::default(); for &(x, n) in ev { s.add(x, n); } s };
            let (sa, sb, sc) = (mk(&a), mk(&b), mk(&c));
            let mut ab_c = sa.clone(); ab_c.merge(&sb); ab_c.merge(&sc);
            let mut c_ba = sc.clone(); c_ba.merge(&sb); c_ba.merge(&sa);
            let all: Vec<_> = a.iter().chain(&b).chain(&c).copied().collect();
            prop_assert_eq!(&ab_c, &c_ba);
            prop_assert_eq!(ab_c, mk(&all));
        }

        #[test]
        fn distinct_counts_are_min_of_truth_and_cap(
            items in proptest::collection::vec((0u64..30, 0u32..50), 0..200),
            cap in 1usize..20,
            lo in 0u32..50,
        ) {
            let mut d = DistinctSet::default();
            for &(h, b) in &items { d.insert(h, b, cap); }
            let mut newest = std::collections::BTreeMap::new();
            for &(h, b) in &items { let e = newest.entry(h).or_insert(b); *e = (*e).max(b); }
            let truth = newest.values().filter(|&&b| b >= lo).count();
            prop_assert_eq!(d.count_since(lo) as usize, truth.min(cap));
            prop_assert!(d.len() <= cap);
        }

        #[test]
        fn distinct_merge_is_order_independent(
            a in proptest::collection::vec((0u64..30, 0u32..50), 0..60),
            b in proptest::collection::vec((0u64..30, 0u32..50), 0..60),
            cap in 1usize..20,
        ) {
            let mk = |ev: &[(u64, u32)]| { let mut s = DistinctSet::default(); for &(h, x) in ev { s.insert(h, x, cap); } s };
            let (sa, sb) = (mk(&a), mk(&b));
            let mut ab = sa.clone(); ab.merge(&sb, cap);
            let mut ba = sb.clone(); ba.merge(&sa, cap);
            prop_assert_eq!(&ab, &ba);
            for lo in 0..50 {
                prop_assert_eq!(ab.count_since(lo), ba.count_since(lo));
            }
        }
    }

    #[test]
    fn late_records_land_in_their_bucket() {
        let mut s = Series::default();
        s.add(10, 1);
        s.add(12, 1);
        s.add(11, 5);
        s.add(3, 2);
        assert_eq!(
            s.iter().collect::<Vec<_>>(),
            vec![(3, 2), (10, 1), (11, 5), (12, 1)]
        );
        assert_eq!(s.window(12, 3), 7);
        assert_eq!(s.window(12, 2), 6);
        s.prune_before(11);
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![(11, 5), (12, 1)]);
    }
}
