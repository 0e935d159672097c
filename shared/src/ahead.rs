//! Reading ahead on a second thread: lines in chunks, parsed there too
//! when the counting thread is the slower one.
//!
//! The reading thread decompresses straight into chunks of about [`CHUNK`]
//! bytes of whole lines (the lines [`Lines`] gives) and hands them over.
//! Where the counting thread falls behind (the chunks it has not taken reach [`PARSE_WHEN`]), the
//! reading thread parses the next chunk's lines as well, so the work finds
//! its balance between the two cores: at a few thousand clients counting is
//! cheap and the reading thread only reads; at many, counting misses the
//! cache and the reading thread takes the parsing.
//!
//! Either thread parses with a parser of its own, made alike, so where a
//! line is parsed changes nothing: a line that changes a parser's state (a
//! CloudFront `#Fields` header, [`LineParser::changes_state`]) is read by
//! both parsers, in order.
//!
//! With one thread ([`chunks`] with `threads` 1) the same chunks are read on
//! the counting thread as it asks for them: either way the counting thread
//! has a chunk's lines at hand, and parses a few of them before counting
//! them ([`crate::pipeline`], [`crate::engine::Engine`]'s reading ahead).

use crate::formats::{LineParser, ParseError};
use crate::hit::{Hit, WafVerdict};
use crate::read::{Lines, MAX_LINE};
use std::borrow::Cow;
use std::io::Read;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;

/// Bytes of lines in a chunk (a chunk ends after the line that reaches it).
pub const CHUNK: usize = 256 * 1024;

/// Lines in a chunk, at most: a chunk ends early only in a file whose
/// lines are shorter than 64 bytes on average (no access log's are), and
/// a chunk of short lines that parse holds at most this many requests.
const CHUNK_LINES: usize = 4096;

/// Chunks handed over and not yet taken, at most.
const AHEAD: usize = 3;

/// The reading thread parses a chunk when this many wait for the counting
/// thread.
const PARSE_WHEN: usize = 2;

/// Where the lines are parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parse {
    /// On the reading thread when the counting thread is behind.
    Balanced,
    /// Always on the reading thread (tests).
    Ahead,
}

/// One line of a chunk.
pub enum Item {
    /// Bytes `start..end` of the chunk ([`Chunk::line`]), to parse.
    Line(u32, u32),
    /// A line longer than [`crate::read::MAX_LINE`], skipped.
    TooLong,
    /// Parsed: a request, the `n`th of the chunk ([`Chunk::hit`]).
    Hit(u32),
    /// Parsed: a line without a request.
    NoRequest,
    /// Parsed: a line that failed, the `n`th of the chunk ([`Chunk::failure`]).
    Failed(u32),
}

/// The end of the input.
pub struct End {
    /// Bytes read (after decompression).
    pub bytes: u64,
    /// The read error that ended it, if any.
    pub error: Option<String>,
}

/// Lines handed over from the reading thread.
#[derive(Default)]
pub struct Chunk {
    /// The lines' bytes (and beyond the last line, bytes of no meaning: the
    /// buffer is read into in place and reused).
    data: Vec<u8>,
    /// The lines, in order.
    pub items: Vec<Item>,
    hits: Vec<Detached>,
    failures: Vec<ParseError>,
    /// Set on the last chunk.
    pub end: Option<End>,
}

impl Chunk {
    /// The `n`th request parsed ahead ([`Item::Hit`]).
    pub fn hit(&self, n: u32) -> Hit<'_> {
        self.hits[n as usize].attach(&self.data)
    }

    /// The `n`th failure parsed ahead ([`Item::Failed`]).
    pub fn failure(&self, n: u32) -> ParseError {
        self.failures[n as usize].clone()
    }

    /// The bytes of [`Item::Line`].
    pub fn line(&self, start: u32, end: u32) -> &[u8] {
        &self.data[start as usize..end as usize]
    }

    /// Add the line at `start..end` of the buffer (without its `\n`);
    /// parse it with `parser` when `parse`.
    fn push(&mut self, start: usize, end: usize, parser: &mut dyn LineParser, parse: bool) {
        let text = &self.data[start..end];
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        let end = start + text.len();
        let state = parser.changes_state(text);
        if state {
            // Both parsers read it: the counting thread's parses it.
            let _ = parser.parse(text);
        }
        let item = if parse && !state {
            match parser.parse(text) {
                Ok(Some(hit)) => {
                    let d = Detached::new(hit, &self.data);
                    self.hits.push(d);
                    Item::Hit((self.hits.len() - 1) as u32)
                }
                Ok(None) => Item::NoRequest,
                Err(e) => {
                    self.failures.push(e);
                    Item::Failed((self.failures.len() - 1) as u32)
                }
            }
        } else {
            Item::Line(start as u32, end as u32)
        };
        self.items.push(item);
    }
}

/// Bytes a read asks for, at least.
const MIN_READ: usize = 16 * 1024;

/// Cuts its input into chunks of whole lines, decompressing straight into
/// each chunk's buffer; the lines are those [`Lines`] gives, the same
/// bytes, the same long lines skipped, the same error after every whole line
/// before it.
struct Splitter<R> {
    inner: R,
    /// The start of a line that the last chunk's buffer did not end.
    carry: Vec<u8>,
    /// In a line too long to keep: its bytes are being skipped.
    skipping: bool,
    eof: bool,
    bytes: u64,
}

impl<R: Read> Splitter<R> {
    fn new(lines: Lines<R>) -> Self {
        let (inner, carry, bytes, eof) = lines.into_parts();
        Splitter {
            inner,
            carry,
            skipping: false,
            eof,
            bytes,
        }
    }

    /// Fill `c` with the next lines; sets [`Chunk::end`] at the end.
    fn fill(&mut self, c: &mut Chunk, parser: &mut dyn LineParser, parse: bool) {
        c.items.clear();
        c.hits.clear();
        c.failures.clear();
        c.end = None;
        if c.data.len() != CHUNK.max(self.carry.len() + MIN_READ) {
            // New, grown by a long line, or too small for the carry.
            c.data = vec![0; CHUNK.max(self.carry.len() + MIN_READ)];
        }
        let mut filled = self.carry.len();
        c.data[..filled].copy_from_slice(&self.carry);
        if self.carry.capacity() > CHUNK {
            self.carry = Vec::new(); // the start of a long line
        }
        self.carry.clear();
        let (mut line, mut scan) = (0, 0);
        loop {
            while let Some(i) = memchr::memchr(b'\n', &c.data[scan..filled]) {
                let end = scan + i;
                if self.skipping || end - line > MAX_LINE {
                    self.skipping = false;
                    c.items.push(Item::TooLong);
                } else {
                    c.push(line, end, parser, parse);
                }
                line = end + 1;
                scan = line;
                if c.items.len() == CHUNK_LINES {
                    break;
                }
            }
            if c.items.len() == CHUNK_LINES {
                break;
            }
            scan = filled;
            if self.skipping || filled - line > MAX_LINE {
                // Too long to keep: forget its bytes.
                self.skipping = true;
                filled = line;
                scan = line;
            }
            if self.eof {
                if self.skipping {
                    self.skipping = false;
                    c.items.push(Item::TooLong);
                } else if filled > line {
                    c.push(line, filled, parser, parse);
                }
                line = filled;
                c.end = Some(End {
                    bytes: self.bytes,
                    error: None,
                });
                break;
            }
            if c.data.len() - filled < MIN_READ {
                if line > 0 {
                    break; // full: the rest of the line goes to the next chunk
                }
                // One line longer than the buffer (up to MAX_LINE).
                c.data.resize(filled + CHUNK, 0);
            }
            match self.inner.read(&mut c.data[filled..]) {
                Ok(0) => self.eof = true,
                Ok(n) => {
                    filled += n;
                    self.bytes += n as u64;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    line = filled; // a line the error cut is not one
                    c.end = Some(End {
                        bytes: self.bytes,
                        error: Some(e.to_string()),
                    });
                    break;
                }
            }
        }
        self.carry.extend_from_slice(&c.data[line..filled]);
    }
}

/// Chunks of lines, read on the calling thread or on one of their own
/// ([`chunks`]).
pub struct Chunks<R>(Source<R>);

enum Source<R> {
    /// Read on the calling thread when asked for: the reader, the parser
    /// that reads what changes a parser's state (as the reading thread's
    /// would), a chunk's memory to fill next, and whether the last chunk
    /// was given.
    Here(Splitter<R>, Box<dyn LineParser>, Option<Chunk>, bool),
    /// Read ahead on a thread of its own ([`read_ahead`]).
    Thread(Ahead),
}

/// The chunks of the rest of `lines`: read on a second thread that parses
/// with `parser` as `how` says or, with `threads` 1, on the calling thread
/// as they are asked for (and parsed there, by the counting thread).
pub fn chunks<R: Read + Send + 'static>(
    lines: Lines<R>,
    parser: Box<dyn LineParser>,
    threads: usize,
    how: Parse,
) -> Chunks<R> {
    Chunks(if threads > 1 {
        Source::Thread(read_ahead(lines, parser, how))
    } else {
        Source::Here(Splitter::new(lines), parser, None, false)
    })
}

impl<R: Read> Iterator for Chunks<R> {
    type Item = Chunk;

    /// The next chunk; `None` after the last.
    fn next(&mut self) -> Option<Chunk> {
        match &mut self.0 {
            Source::Here(_, _, _, true) => None,
            Source::Here(split, parser, spare, done) => {
                let mut c = spare.take().unwrap_or_default();
                split.fill(&mut c, parser.as_mut(), false);
                *done = c.end.is_some();
                Some(c)
            }
            Source::Thread(a) => a.next(),
        }
    }
}

impl<R> Chunks<R> {
    /// Give a chunk's memory back, to be filled again.
    pub fn recycle(&mut self, c: Chunk) {
        match &mut self.0 {
            Source::Here(_, _, spare, _) => *spare = Some(c),
            Source::Thread(a) => a.recycle(c),
        }
    }
}

/// The counting thread's end of the hand-over.
pub struct Ahead {
    rx: Receiver<Chunk>,
    back: SyncSender<Chunk>,
    waiting: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Read the rest of `lines` on a thread of its own, parsing with `parser`
/// as `how` says.
pub fn read_ahead<R: Read + Send + 'static>(
    lines: Lines<R>,
    mut parser: Box<dyn LineParser>,
    how: Parse,
) -> Ahead {
    let (tx, rx) = sync_channel::<Chunk>(AHEAD);
    let (back, spare) = sync_channel::<Chunk>(AHEAD + 2);
    let waiting = Arc::new(AtomicUsize::new(0));
    let queued = waiting.clone();
    let mut split = Splitter::new(lines);
    let thread = std::thread::spawn(move || loop {
        let mut c = spare.try_recv().unwrap_or_default();
        let parse = how == Parse::Ahead || queued.load(Ordering::Relaxed) >= PARSE_WHEN;
        split.fill(&mut c, parser.as_mut(), parse);
        let last = c.end.is_some();
        queued.fetch_add(1, Ordering::Relaxed);
        if tx.send(c).is_err() || last {
            return; // done, or the counting thread is gone
        }
    });
    Ahead {
        rx,
        back,
        waiting,
        thread: Some(thread),
    }
}

impl Iterator for Ahead {
    type Item = Chunk;

    /// The next chunk; `None` after the last.
    fn next(&mut self) -> Option<Chunk> {
        let Ok(c) = self.rx.recv() else {
            // The reading thread is gone: done, or a panic (a parser's),
            // which goes on here as it would have with one thread.
            if let Some(Err(panic)) = self.thread.take().map(|t| t.join()) {
                std::panic::resume_unwind(panic);
            }
            return None;
        };
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        Some(c)
    }
}

impl Ahead {
    /// Give a chunk's memory back to the reading thread.
    pub fn recycle(&mut self, c: Chunk) {
        let _ = self.back.try_send(c);
    }
}

impl Drop for Ahead {
    fn drop(&mut self) {
        // Let a thread blocked on a full hand-over end, then wait for it:
        // the input is closed when this returns.
        let (_, rx) = sync_channel(0);
        drop(std::mem::replace(&mut self.rx, rx));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Text or bytes of a [`Hit`] parsed on the reading thread: where they
/// are in the chunk, or owned where the parser made them (unescaped,
/// repaired). Small: a chunk holds hundreds of hits.
enum Part {
    Span(u32, u32),
    Owned(Box<[u8]>),
}

impl Part {
    fn new(part: &[u8], base: &[u8]) -> Part {
        let (at, lo) = (part.as_ptr() as usize, base.as_ptr() as usize);
        match at.checked_sub(lo) {
            _ if part.is_empty() => Part::Span(0, 0),
            Some(start) if start + part.len() <= base.len() => {
                Part::Span(start as u32, (start + part.len()) as u32)
            }
            _ => Part::Owned(part.into()),
        }
    }

    fn text(s: Cow<'_, str>, base: &[u8]) -> Part {
        match s {
            Cow::Borrowed(b) => Part::new(b.as_bytes(), base),
            Cow::Owned(o) => Part::Owned(o.into_bytes().into_boxed_slice()),
        }
    }

    fn bytes<'a>(&'a self, base: &'a [u8]) -> &'a [u8] {
        match self {
            Part::Span(s, e) => &base[*s as usize..*e as usize],
            Part::Owned(o) => o,
        }
    }

    fn str<'a>(&'a self, base: &'a [u8]) -> Cow<'a, str> {
        // Valid: it was a `str` when it was taken.
        let s = std::str::from_utf8(self.bytes(base));
        debug_assert!(s.is_ok(), "a part of a hit is not the text it was");
        Cow::Borrowed(s.unwrap_or_default())
    }
}

/// A [`Hit`] without the borrow of its line: what crosses the threads.
struct Detached {
    time_ms: i64,
    peer: IpAddr,
    forwarded_for: Option<Part>,
    status: u16,
    method: Part,
    path: Part,
    host: Part,
    user_agent: Part,
    waf: Option<Box<(Part, Part, Vec<Part>)>>,
    blocked_by_waf: bool,
    raw_request: Option<Part>,
    user: Option<Part>,
}

impl Detached {
    fn new(h: Hit<'_>, base: &[u8]) -> Detached {
        let t = |s| Part::text(s, base);
        Detached {
            time_ms: h.time_ms,
            peer: h.peer,
            forwarded_for: h.forwarded_for.map(t),
            status: h.status,
            method: t(h.method),
            path: t(h.path),
            host: t(h.host),
            user_agent: t(h.user_agent),
            waf: h.waf.map(|w| {
                let labels = w.labels.into_iter().map(t).collect();
                Box::new((t(w.action), t(w.rule), labels))
            }),
            blocked_by_waf: h.blocked_by_waf,
            raw_request: h.raw_request.map(|r| Part::new(r, base)),
            user: h.user.map(t),
        }
    }

    fn attach<'a>(&'a self, base: &'a [u8]) -> Hit<'a> {
        let t = |p: &'a Part| p.str(base);
        Hit {
            time_ms: self.time_ms,
            peer: self.peer,
            forwarded_for: self.forwarded_for.as_ref().map(t),
            status: self.status,
            method: t(&self.method),
            path: t(&self.path),
            host: t(&self.host),
            user_agent: t(&self.user_agent),
            waf: self.waf.as_deref().map(|(a, r, l)| WafVerdict {
                action: t(a),
                rule: t(r),
                labels: l.iter().map(t).collect(),
            }),
            blocked_by_waf: self.blocked_by_waf,
            raw_request: self.raw_request.as_ref().map(|r| r.bytes(base)),
            user: self.user.as_ref().map(t),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::testutil::gz;
    use crate::formats::Format;
    use crate::read::{decompress, Line, BUF_SIZE};
    use std::io::{self, Cursor};

    /// What a reader gives: a line's bytes or `None` (too long), then the
    /// error at the end, if any, and the bytes read.
    type Split = (Vec<Option<Vec<u8>>>, Option<String>, u64);

    /// A reader that hands out at most a few bytes a call (the sizes cycle),
    /// so lines cross every kind of boundary.
    struct Dribble<R>(R, usize);

    impl<R: Read> Read for Dribble<R> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            self.1 = (self.1 * 7 + 3) % 5003;
            if self.1 % 11 == 0 {
                return Err(io::ErrorKind::Interrupted.into());
            }
            let n = out.len().min(self.1 * 97 + 1);
            self.0.read(&mut out[..n])
        }
    }

    fn lines_of(data: &[u8], dribble: bool, first: usize) -> (Split, Split) {
        let open = || -> Lines<Box<dyn Read + Send>> {
            let input = decompress(Cursor::new(data.to_vec())).unwrap();
            if dribble {
                Lines::new(Box::new(Dribble(input, 1)))
            } else {
                Lines::new(input)
            }
        };
        // As `Lines` gives them.
        let mut l = open();
        let mut want = (vec![], None, 0);
        loop {
            match l.next_line() {
                Ok(Some(Line::Text(t))) => want.0.push(Some(t.to_vec())),
                Ok(Some(Line::TooLong(_))) => want.0.push(None),
                Ok(None) => break,
                Err(e) => {
                    want.1 = Some(e.to_string());
                    break;
                }
            }
        }
        want.2 = l.bytes;
        // `first` lines from `Lines`, the rest in chunks.
        let mut l = open();
        let mut got: Split = (vec![], None, 0);
        for _ in 0..first {
            match l.next_line() {
                Ok(Some(Line::Text(t))) => got.0.push(Some(t.to_vec())),
                Ok(Some(Line::TooLong(_))) => got.0.push(None),
                _ => break,
            }
        }
        let mut split = Splitter::new(l);
        let mut parser = Format::Alb.parser();
        let mut c = Chunk::default();
        while c.end.is_none() {
            split.fill(&mut c, parser.as_mut(), false);
            for item in &c.items {
                got.0.push(match *item {
                    Item::Line(s, e) => Some(c.line(s, e).to_vec()),
                    Item::TooLong => None,
                    _ => panic!("parsed without being asked"),
                });
            }
            assert!(c.items.len() <= CHUNK_LINES);
        }
        let end = c.end.unwrap();
        (got.1, got.2) = (end.error, end.bytes);
        (want, got)
    }

    #[test]
    fn a_panic_on_the_reading_thread_goes_on_on_the_counting_thread() {
        struct Boom;
        impl LineParser for Boom {
            fn parse<'a>(&mut self, line: &'a [u8]) -> crate::formats::ParseResult<'a> {
                assert!(line != b"boom", "the parser fails");
                Ok(None)
            }
        }
        let input: Box<dyn Read + Send> = Box::new(Cursor::new(b"a\nboom\nb\n".to_vec()));
        let mut ahead = read_ahead(Lines::new(input), Box::new(Boom), Parse::Ahead);
        let counted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            ahead.by_ref().map(|c| c.items.len()).sum::<usize>()
        }));
        let panic = counted.expect_err("the panic reaches the counting thread");
        assert_eq!(panic.downcast_ref::<&str>(), Some(&"the parser fails"));
    }

    #[test]
    fn chunks_hold_the_lines_lines_gives() {
        let long = |n: usize, c: char| c.to_string().repeat(n);
        let mut inputs: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"\n\n\n".to_vec(),
            b"a\r\nb\n\nc".to_vec(),
            b"x\r".to_vec(),
            (0..20_000)
                .map(|i| format!("line {i}\n"))
                .collect::<String>()
                .into_bytes(),
            "z\n".repeat(CHUNK_LINES * 3).into_bytes(),
        ];
        for n in [
            CHUNK - 1,
            CHUNK,
            CHUNK + 1,
            BUF_SIZE * 2,
            MAX_LINE,
            MAX_LINE + 1,
        ] {
            inputs.push(format!("a\n{}\nb\n", long(n, 'q')).into_bytes());
            inputs.push(format!("a\n{}\r\nb", long(n, 'r')).into_bytes());
            inputs.push(format!("a\n{}", long(n, 's')).into_bytes());
        }
        inputs.push(format!("{}\nc\n{}\n", long(MAX_LINE * 3, 'y'), long(9, 'w')).into_bytes());
        let text: String = (0..60_000)
            .map(|i| format!("line {i} {}\n", "p".repeat(i % 700)))
            .collect();
        let whole = gz(text.as_bytes());
        let mut two = gz(b"one\ntwo\n");
        two.extend(gz(b"three\n"));
        inputs.push(two);
        inputs.push(whole.clone());
        inputs.push(whole[..whole.len() * 2 / 3].to_vec());
        for (i, data) in inputs.iter().enumerate() {
            for dribble in [false, true] {
                for first in [0, 1, 3] {
                    let (want, got) = lines_of(data, dribble, first);
                    assert_eq!(
                        want.0.len(),
                        got.0.len(),
                        "input {i}, dribble {dribble}, first {first}"
                    );
                    assert!(
                        want.0 == got.0,
                        "input {i}, dribble {dribble}, first {first}"
                    );
                    assert_eq!((&want.1, want.2), (&got.1, got.2), "input {i}");
                }
            }
        }
        // The truncated gzip: lines, then the error.
        let (want, _) = lines_of(&whole[..whole.len() * 2 / 3], false, 0);
        assert!(want.1.is_some() && want.0.len() > 1000);
    }
}
