//! Log objects → decisions: read, detect, parse, count, decide.
//!
//! [`Pipeline`] ties the stages together for one configuration. It is what
//! the CLI runs over local files and what the Lambda functions run over S3
//! objects, so both decide the same way.

use crate::ahead::{chunks, Chunk, Item, Parse};
use crate::config::Config;
use crate::engine::{Engine, Offense, StoredState};
use crate::formats::{format_from_line, hint_from_name, Format, LineParser, NameHint, ParseResult};
use crate::key::Key;
use crate::ledger::{Block, Ledger, Outcome, Policy, Refusal};
use crate::read::{decompress, Line, Lines};
use ipnet::IpNet;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Read;

/// What happened to one log file or object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FileReport {
    /// File path or S3 key.
    pub name: String,
    /// The format it was read as.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// The whole file was skipped, and why (an ALB connection log...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// Lines read.
    pub lines_read: u64,
    /// Lines that gave a request.
    pub lines_parsed: u64,
    /// Lines that did not (headers, blank, malformed, too long).
    pub lines_skipped: u64,
    /// Skipped lines by reason (`field: reason`, `no request`, `too long`).
    pub skip_reasons: BTreeMap<String, u64>,
    /// Bytes read after decompression.
    pub bytes: u64,
    /// A read error that ended the file early (a truncated gzip...): every
    /// line before it was processed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A new block, with the key it applies to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    /// The blocked network or user.
    pub key: Key,
    /// The block.
    pub block: Block,
}

/// Runs the pipeline for one configuration over any number of inputs.
pub struct Pipeline {
    config: Config,
    engine: Engine,
    ledger: Ledger,
    policy: Policy,
    decisions: Vec<Decision>,
    refused: BTreeMap<&'static str, u64>,
    refused_by_rule: BTreeMap<String, u64>,
    threads: usize,
    /// Where lines are parsed with two threads.
    parse: Parse,
    recorder: Option<Box<dyn Recorder>>,
}

/// Sees every counted request (for reports): the key it counted for and
/// the rules it matched.
pub trait Recorder: Send {
    /// One request.
    fn record(&mut self, key: IpNet, hit: &crate::hit::Hit<'_>, matched: crate::rules::RuleSet);
}

impl Pipeline {
    /// A pipeline with empty state.
    pub fn new(config: Config) -> Pipeline {
        Pipeline::with_state(config, None, Ledger::default())
    }

    /// A pipeline that goes on from stored windows and a ledger.
    pub fn with_state(config: Config, state: Option<&StoredState>, ledger: Ledger) -> Pipeline {
        let mut engine = Engine::new(&config);
        if let Some(s) = state {
            engine.import(s);
        }
        // Log lines cannot come from the future: a day of clock skew at most.
        engine.set_time_limit(crate::clock::wall_ms().saturating_add(86_400_000));
        Pipeline {
            policy: Policy::new(&config),
            config,
            engine,
            ledger,
            decisions: Vec::new(),
            refused: BTreeMap::new(),
            refused_by_rule: BTreeMap::new(),
            threads: 2,
            parse: Parse::Balanced,
            recorder: None,
        }
    }

    /// Show every counted request to `recorder` too.
    pub fn set_recorder(&mut self, recorder: Box<dyn Recorder>) {
        self.recorder = Some(recorder);
    }

    /// Take the recorder back.
    pub fn take_recorder(&mut self) -> Option<Box<dyn Recorder>> {
        self.recorder.take()
    }

    /// Threads per input: 1 reads, parses and counts on the calling thread;
    /// 2 or more (the default) read on a thread of their own, which parses
    /// too while the counting thread is behind ([`crate::ahead`]).
    pub fn set_threads(&mut self, threads: usize) {
        self.threads = threads.max(1);
    }

    /// With two threads, parse every line on the reading thread, not
    /// only while the counting thread is behind (tests and fuzzing: the
    /// results are the same either way, [`crate::ahead`]).
    pub fn set_parse_ahead(&mut self, always: bool) {
        self.parse = if always {
            Parse::Ahead
        } else {
            Parse::Balanced
        };
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The engine (windows).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The engine, mutably (incident mode, imports).
    pub fn engine_mut(&mut self) -> &mut Engine {
        &mut self.engine
    }

    /// The ledger.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// New blocks so far, in the order they were decided.
    pub fn decisions(&self) -> &[Decision] {
        &self.decisions
    }

    /// Offenses that did not become blocks, by reason.
    pub fn refused(&self) -> &BTreeMap<&'static str, u64> {
        &self.refused
    }

    /// Offenses that did not become blocks, by rule.
    pub fn refused_by_rule(&self) -> &BTreeMap<String, u64> {
        &self.refused_by_rule
    }

    /// Give up the engine and the ledger (to store them).
    pub fn into_parts(self) -> (Engine, Ledger) {
        (self.engine, self.ledger)
    }

    /// Decide on the offenses the engine has queued.
    pub fn settle(&mut self) {
        for off in self.engine.take_offenses() {
            self.decide(&off);
        }
    }

    fn decide(&mut self, off: &Offense) {
        match self.ledger.apply(off, &self.policy) {
            Outcome::Blocked(block) => {
                self.decisions.push(Decision {
                    key: off.key.trunc(),
                    block,
                });
            }
            Outcome::Refused(r) => {
                let why = match r {
                    Refusal::AlreadyBlocked(_) => "already blocked",
                    Refusal::Allowlisted(_) => "allow-listed",
                    Refusal::TrustedProxy(_) => "trusted proxy",
                    Refusal::TooWide => "wider than the widest prefix",
                    Refusal::AllowlistedUser(_) => "allow-listed user",
                };
                *self.refused.entry(why).or_insert(0) += 1;
                *self.refused_by_rule.entry(off.rule.clone()).or_insert(0) += 1;
            }
        }
    }

    /// Read one log file or object to the end. `format` overrides detection.
    pub fn process<R: Read + Send + 'static>(
        &mut self,
        name: &str,
        input: R,
        format: Option<&Format>,
    ) -> FileReport {
        // Nothing below is generic, so the reading loop is compiled in this
        // crate, with its one codegen unit, not in each caller's (the CLI
        // crate has 16, for a quick first build: Cargo.toml).
        self.process_boxed(name, Box::new(input), format)
    }

    fn process_boxed(
        &mut self,
        name: &str,
        input: Box<dyn Read + Send>,
        format: Option<&Format>,
    ) -> FileReport {
        let mut report = FileReport {
            name: name.to_string(),
            ..FileReport::default()
        };
        let mut format = format.cloned();
        if format.is_none() {
            match hint_from_name(name) {
                NameHint::Format(f) => format = Some(f),
                NameHint::Skip(why) => {
                    report.skipped = Some(why.to_string());
                    return report;
                }
                NameHint::Unknown => {}
            }
        }
        let reader = match decompress(input) {
            Ok(r) => r,
            Err(e) => {
                report.error = Some(e.to_string());
                return report;
            }
        };
        report.bytes = self.run(Lines::new(reader), format, &mut report);
        // The end of a file: judge what waited for more of it.
        self.engine.flush_pending();
        self.settle();
        report
    }

    /// A parser for `format` that reads the text of only the requests a
    /// rule may match, unless a recorder wants to see every request whole.
    fn parser(&self, format: &Format) -> Box<dyn LineParser> {
        let mut p = format.parser();
        let users = &self.config.file.users;
        p.set_user_source(&crate::formats::UserSource {
            header: users.header.clone(),
            cookie: users.cookie.clone(),
        });
        if self.recorder.is_none() {
            p.set_detail(&self.engine.detail_statuses(*format == Format::Waf));
        }
        p
    }

    /// Count every line of `lines`; the bytes read.
    fn run(
        &mut self,
        mut lines: Lines<Box<dyn Read + Send>>,
        format: Option<Format>,
        report: &mut FileReport,
    ) -> u64 {
        let mut reasons = Reasons::new();
        let found = match format {
            Some(f) => Some((self.parser(&f), f, None)),
            None => self.detect(&mut lines, report, &mut reasons),
        };
        let mut bytes = lines.bytes;
        if let Some((mut parser, format, header)) = found {
            report.format = Some(format.name().to_string());
            // The reading thread (with two threads) parses too, with a
            // parser of its own that has read what this one has: the
            // header line the format was found by, where it matters
            // (`detect`).
            let mut second = self.parser(&format);
            if let Some(h) = header {
                let _ = second.parse(&h);
            }
            let mut chunks = chunks(lines, second, self.threads, self.parse);
            while let Some(chunk) = chunks.next() {
                self.count_chunk(&chunk, parser.as_mut(), report, &mut reasons);
                if let Some(end) = &chunk.end {
                    bytes = end.bytes;
                    report.error.clone_from(&end.error);
                }
                chunks.recycle(chunk);
            }
        }
        report.lines_skipped = report.lines_read - report.lines_parsed;
        report.skip_reasons = reasons
            .into_iter()
            .map(|((f, r), n)| (format!("{f}: {r}"), n))
            .collect();
        bytes
    }

    /// Find the format on the first line with text, and count that line
    /// (and the lines before it): its parser, and the line where it
    /// changes how a parser reads the lines after it. `None` when no format
    /// is found.
    fn detect(
        &mut self,
        lines: &mut Lines<Box<dyn Read + Send>>,
        report: &mut FileReport,
        reasons: &mut Reasons,
    ) -> Option<Found> {
        loop {
            let text = match lines.next_line() {
                Ok(Some(Line::Text(t))) => t,
                Ok(Some(Line::TooLong(_))) => {
                    report.lines_read += 1;
                    *reasons.entry(TOO_LONG).or_insert(0) += 1;
                    continue;
                }
                Ok(None) => return None,
                Err(e) => {
                    report.error = Some(e.to_string());
                    return None;
                }
            };
            report.lines_read += 1;
            if text.iter().all(u8::is_ascii_whitespace) {
                *reasons.entry(("line", "no request")).or_insert(0) += 1;
                continue;
            }
            let Some(format) = format_from_line(text) else {
                report.error = Some("unknown log format (use --format)".into());
                *reasons.entry(("line", "unknown format")).or_insert(0) += 1;
                return None;
            };
            let mut parser = self.parser(&format);
            let header = parser.changes_state(text).then(|| text.to_vec());
            let parsed = parser.parse(text);
            self.count(Some(&parsed), report, reasons);
            return Some((parser, format, header));
        }
    }

    /// Count the lines of `chunk`. Where the engine reads ahead
    /// ([`Engine::reads_ahead`]), [`BATCH`] lines at a time are parsed,
    /// then warmed ([`Engine::warm`]), then counted.
    fn count_chunk(
        &mut self,
        chunk: &Chunk,
        parser: &mut dyn LineParser,
        report: &mut FileReport,
        reasons: &mut Reasons,
    ) {
        // A line's parse, `None` for a line too long to read.
        let mut parse = |item: &Item| match *item {
            Item::Line(s, e) => Some(parser.parse(chunk.line(s, e))),
            Item::Hit(n) => Some(Ok(Some(chunk.hit(n)))),
            Item::NoRequest => Some(Ok(None)),
            Item::Failed(n) => Some(Err(chunk.failure(n))),
            Item::TooLong => None,
        };
        let mut batch = Vec::new();
        for group in chunk.items.chunks(BATCH) {
            report.lines_read += group.len() as u64;
            if self.engine.reads_ahead() {
                batch.extend(group.iter().map(&mut parse));
                self.engine.warm(batch.iter().filter_map(|p| match p {
                    Some(Ok(Some(hit))) => Some(hit),
                    _ => None,
                }));
                for p in &batch {
                    self.count(p.as_ref(), report, reasons);
                }
                batch.clear();
            } else {
                for item in group {
                    self.count(parse(item).as_ref(), report, reasons);
                }
            }
        }
    }

    /// Count one parsed line (`None`: a line too long to read).
    fn count(
        &mut self,
        parsed: Option<&ParseResult<'_>>,
        report: &mut FileReport,
        reasons: &mut Reasons,
    ) {
        let Some(parsed) = parsed else {
            *reasons.entry(TOO_LONG).or_insert(0) += 1;
            return;
        };
        match parsed {
            Ok(Some(hit)) => {
                report.lines_parsed += 1;
                let counted = self.engine.observe(hit);
                if let (Some(r), Some((key, matched))) = (self.recorder.as_mut(), counted) {
                    r.record(key, hit, matched);
                }
                if self.engine.has_offenses() {
                    self.settle();
                }
            }
            Ok(None) => *reasons.entry(("line", "no request")).or_insert(0) += 1,
            Err(e) => *reasons.entry((e.field, e.reason)).or_insert(0) += 1,
        }
    }
}

/// The format of a file, its parser, and the line it was found by where
/// that line changes how a parser reads the lines after it.
type Found = (Box<dyn LineParser>, Format, Option<Vec<u8>>);

/// Skipped lines by (field, reason).
type Reasons = BTreeMap<(&'static str, &'static str), u64>;

const TOO_LONG: (&str, &str) = ("line", "too long");

/// Requests warmed, then counted, together.
const BATCH: usize = 16;

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn alb_line(t: &str, ip: &str, status: u16, path: &str) -> String {
        format!(
            "http {t} app/lb/1 {ip}:4000 10.0.0.1:80 0.000 0.001 0.000 {status} {status} 10 20 \"GET http://shop.example.com:80{path} HTTP/1.1\" \"scan/1.0\" - - arn:tg \"Root=1\" \"-\" \"-\" 0 {t} \"forward\" \"-\" \"-\" \"10.0.0.1:80\" \"{status}\" \"-\" \"-\""
        )
    }

    #[test]
    fn a_404_storm_is_blocked_and_bad_lines_are_counted() {
        let mut text = String::from("garbage line\n\n");
        for i in 0..40 {
            text += &alb_line(
                &format!("2026-01-01T00:00:{:02}.000000Z", i),
                "198.51.100.7",
                404,
                &format!("/p{i}"),
            );
            text.push('\n');
        }
        text += "http 2026-01-01T00:01:00.000000Z app/lb/1 198.51.100.7:1 - 0 0 0 \"unterminated";
        let mut d = Pipeline::new(Config::default());
        let r = d.process("x.log", Cursor::new(text.into_bytes()), Some(&Format::Alb));
        assert_eq!(
            (r.lines_read, r.lines_parsed, r.lines_skipped),
            (43, 40, 3),
            "{r:?}"
        );
        assert_eq!(r.skip_reasons.values().sum::<u64>(), 3);
        let decisions = d.decisions();
        assert_eq!(decisions.len(), 1);
        assert_eq!(decisions[0].key.to_string(), "198.51.100.7/32");
        assert_eq!(decisions[0].block.rule, "scan-burst");
        // The 30th 404 (threshold) at second 29 decided it.
        assert_eq!(decisions[0].block.since_ms, 1_767_225_600_000 + 29_000);
    }

    #[test]
    fn connection_logs_are_skipped_by_name_and_unknown_formats_reported() {
        let mut d = Pipeline::new(Config::default());
        let r = d.process(
            "AWSLogs/1/elasticloadbalancing/us-east-1/2026/01/01/conn_log.1_elasticloadbalancing_us-east-1_app.lb.1_20260101T0000Z_10.0.0.1_x.log.gz",
            Cursor::new(Vec::new()),
            None,
        );
        assert!(r.skipped.is_some());
        let r = d.process("mystery.txt", Cursor::new(b"hello world\n".to_vec()), None);
        assert!(r.error.unwrap().contains("unknown log format"));
    }

    /// A recorder that only counts, so the pipeline reads every field.
    struct Count(std::sync::Arc<std::sync::atomic::AtomicU64>);

    impl Recorder for Count {
        fn record(&mut self, _: IpNet, hit: &crate::hit::Hit<'_>, _: crate::rules::RuleSet) {
            assert!(hit.status == 0 || !hit.path.is_empty(), "{hit:?}");
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    #[test]
    fn reading_only_the_text_rules_need_changes_no_count_and_no_decision() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/alb");
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "gz"))
            .collect();
        files.sort();
        assert!(files.len() > 5);
        let mut lean = Pipeline::new(Config::default());
        let mut whole = Pipeline::new(Config::default());
        let seen = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        whole.set_recorder(Box::new(Count(seen.clone())));
        let alb = lean.engine().detail_statuses(false);
        assert!(!alb.contains(200) && !alb.contains(302) && alb.contains(404) && alb.contains(503));
        // `waf-blocks` has no status condition: in WAF logs every status counts.
        assert!(lean.engine().detail_statuses(true).contains(200));
        let mut parsed = 0;
        for f in &files {
            let name = f.to_string_lossy();
            let a = lean.process(&name, std::fs::File::open(f).unwrap(), None);
            let b = whole.process(&name, std::fs::File::open(f).unwrap(), None);
            assert_eq!(format!("{a:?}"), format!("{b:?}"));
            parsed += a.lines_parsed;
        }
        lean.settle();
        whole.settle();
        assert_eq!(seen.load(std::sync::atomic::Ordering::Relaxed), parsed);
        assert!(!lean.decisions().is_empty());
        assert_eq!(
            format!("{:?}", lean.decisions()),
            format!("{:?}", whole.decisions())
        );
        assert_eq!(lean.engine().export(), whole.engine().export());
    }

    /// A recorder that keeps every request it is shown, whole.
    struct Keep(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

    impl Recorder for Keep {
        fn record(
            &mut self,
            key: IpNet,
            hit: &crate::hit::Hit<'_>,
            matched: crate::rules::RuleSet,
        ) {
            self.0
                .lock()
                .unwrap()
                .push(format!("{key} {matched:?} {hit:?}"));
        }
    }

    /// One run over `data`: its report, decisions, windows and the
    /// requests a recorder saw (when `recorder`).
    fn run_as(
        data: &[u8],
        threads: usize,
        parse: Parse,
        recorder: bool,
    ) -> (FileReport, String, StoredState, Vec<String>) {
        let mut p = Pipeline::new(Config::default());
        p.set_threads(threads);
        p.set_parse_ahead(parse == Parse::Ahead);
        let seen = std::sync::Arc::new(std::sync::Mutex::new(vec![]));
        if recorder {
            p.set_recorder(Box::new(Keep(seen.clone())));
        }
        let r = p.process("input.log", Cursor::new(data.to_vec()), None);
        p.settle();
        let seen = seen.lock().unwrap().clone();
        (r, format!("{:?}", p.decisions()), p.engine().export(), seen)
    }

    /// Every way of reading `data` gives what one thread gives.
    fn same_every_way(name: &str, data: &[u8]) -> (FileReport, String, Vec<String>) {
        let mut one = None;
        for recorder in [false, true] {
            let first = run_as(data, 1, Parse::Balanced, recorder);
            assert!(
                first == run_as(data, 2, Parse::Ahead, recorder),
                "{name}, parsed ahead"
            );
            assert!(
                first == run_as(data, 2, Parse::Balanced, recorder),
                "{name}, balanced"
            );
            one = Some((first.0, first.1, first.3));
        }
        one.expect("ran")
    }

    #[test]
    fn where_lines_are_parsed_changes_no_request_no_count_and_no_decision() {
        use crate::formats::testutil::{fixture, fixture_files};
        // Every fixture of these formats alone, and all of a format's
        // together many times over (many chunks), whole and gzipped and
        // cut short.
        let mut inputs: Vec<(String, Vec<u8>)> = vec![];
        for dir in ["alb", "cloudfront", "waf", "realtool"] {
            let mut all = Vec::new();
            for f in fixture_files(dir) {
                if f.ends_with(".md") || f.ends_with(".tsv") {
                    continue;
                }
                let data = fixture(&f);
                all.extend_from_slice(&data);
                if !all.ends_with(b"\n") {
                    all.push(b'\n');
                }
                inputs.push((f, data));
            }
            let mut many = Vec::new();
            while many.len() < 3 * crate::ahead::CHUNK {
                many.extend_from_slice(&all);
            }
            let gz = crate::formats::testutil::gz(&many);
            inputs.push((format!("{dir}, cut"), gz[..gz.len() / 2].to_vec()));
            inputs.push((format!("{dir}, all"), many));
        }
        let (mut requests, mut blocks) = (0, 0);
        for (name, data) in &inputs {
            let (_, decisions, seen) = same_every_way(name, data);
            requests += seen.len();
            blocks += decisions.matches("Decision").count();
        }
        // The inputs were read, counted and blocked on.
        assert!(requests > 25_000 && blocks > 5, "{requests} {blocks}");
    }

    #[test]
    fn both_parsers_read_the_cloudfront_headers_wherever_they_are() {
        // A CloudFront log whose `#Fields` name the columns in reverse
        // order, then in the standard order, then reversed again, each part
        // longer than a chunk, the first header the file's first line: a
        // parser that missed a header would fail every line after it.
        let text = crate::formats::testutil::fixture("cloudfront/awsdocs_example_standard_log.log");
        let text = String::from_utf8(text).unwrap();
        let names: Vec<&str> = text
            .lines()
            .find_map(|l| l.strip_prefix("#Fields: "))
            .unwrap()
            .split(' ')
            .collect();
        let rows: Vec<Vec<&str>> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.split('\t').collect::<Vec<_>>())
            .filter(|r| r.len() == names.len())
            .collect();
        assert!(rows.len() >= 4);
        let part = |reversed: bool| {
            let order = |v: &[&str]| -> Vec<String> {
                let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
                if reversed {
                    v.reverse();
                }
                v
            };
            let mut out = format!("#Fields: {}\n", order(&names).join(" "));
            while out.len() < 2 * crate::ahead::CHUNK {
                for r in &rows {
                    out += &order(r).join("\t");
                    out.push('\n');
                }
            }
            out
        };
        let data = [part(true), part(false), part(true)].concat().into_bytes();
        let report = same_every_way("reordered", &data).0;
        assert_eq!(report.format.as_deref(), Some("cloudfront"));
        assert_eq!(report.lines_read, report.lines_parsed + 3, "{report:?}");
        assert!(report.lines_parsed > 3000, "{report:?}");
    }
}
