//! What `detect` prints: a table for people, JSON Lines for programs.
//!
//! JSON Lines schema (one object per line, tagged by `type`):
//! - `file`: one per input: `name`, `format`, `lines_read`, `lines_parsed`,
//!   `lines_skipped`, `skip_reasons`, `bytes`, and `skipped` / `error` when
//!   the file was skipped or damaged.
//! - `decision`: one per new block: `key` (a CIDR or `user:VALUE`), `ip`
//!   (the CIDR, or null for a user), `user` (or null), `rule`, `first_blocked`
//!   and `expires` (RFC 3339), `offense`, `ban_seconds`, `reason` (one
//!   sentence) and `evidence`.
//! - `summary`: last: `files`, `files_skipped`, `files_already_counted`,
//!   `files_damaged`, `lines_read`, `lines_parsed`, `lines_skipped`,
//!   `skip_reasons`, `blocks`, `refused`, and `not_counted`: requests
//!   parsed but counted for no client, by reason (`untracked`: more
//!   clients at once than the engine holds; `future`: dated over a day
//!   ahead of the clock; `proxy_only`: only trusted proxies in the chain).

use chrono::{DateTime, SecondsFormat, Utc};
use fail2waf_core::engine::Evidence;
use fail2waf_core::pipeline::{Decision, FileReport};
use serde::Serialize;
use serde_json::json;
use std::collections::BTreeMap;
use std::io::{self, Write};

/// RFC 3339 of an epoch-ms time.
pub fn rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms).map_or_else(
        || ms.to_string(),
        |t| t.to_rfc3339_opts(SecondsFormat::Secs, true),
    )
}

#[derive(Serialize)]
struct JsonEvidence<'a> {
    matched: u64,
    requests: u64,
    window_seconds: u64,
    threshold: u32,
    distinct_paths: u32,
    members: u32,
    first_seen: String,
    last_seen: String,
    samples: &'a [String],
    user_agent: &'a str,
    incident: bool,
}

fn evidence(e: &Evidence) -> JsonEvidence<'_> {
    JsonEvidence {
        matched: e.matched,
        requests: e.requests,
        window_seconds: e.window.0,
        threshold: e.threshold,
        distinct_paths: e.distinct_paths,
        members: e.members,
        first_seen: rfc3339(e.first_seen_ms),
        last_seen: rfc3339(e.last_seen_ms),
        samples: &e.samples,
        user_agent: &e.user_agent,
        incident: e.incident,
    }
}

/// Totals over all inputs.
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub files: u64,
    pub files_skipped: u64,
    pub files_already_counted: u64,
    pub files_damaged: u64,
    pub lines_read: u64,
    pub lines_parsed: u64,
    pub lines_skipped: u64,
    pub skip_reasons: BTreeMap<String, u64>,
    pub blocks: u64,
    pub refused: BTreeMap<String, u64>,
    pub not_counted: BTreeMap<&'static str, u64>,
}

impl Summary {
    pub fn add(&mut self, r: &FileReport) {
        self.files += 1;
        self.files_skipped += u64::from(r.skipped.is_some());
        self.files_damaged += u64::from(r.error.is_some());
        self.lines_read += r.lines_read;
        self.lines_parsed += r.lines_parsed;
        self.lines_skipped += r.lines_skipped;
        for (k, v) in &r.skip_reasons {
            *self.skip_reasons.entry(k.clone()).or_insert(0) += v;
        }
    }
}

/// Writes results as they come.
pub struct Output {
    json: bool,
    out: io::BufWriter<io::Stdout>,
    rows: usize,
}

impl Output {
    pub fn new(json: bool) -> Self {
        Output {
            json,
            out: io::BufWriter::new(io::stdout()),
            rows: 0,
        }
    }

    fn line(&mut self, v: &serde_json::Value) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, v)?;
        self.out.write_all(b"\n")
    }

    pub fn file(&mut self, r: &FileReport) -> io::Result<()> {
        if self.json {
            let mut v = serde_json::to_value(r).map_err(io::Error::other)?;
            v["type"] = json!("file");
            self.line(&v)?;
        }
        Ok(())
    }

    pub fn decision(&mut self, d: &Decision) -> io::Result<()> {
        let b = &d.block;
        if self.json {
            return self.line(&json!({
                "type": "decision",
                "key": d.key.to_string(),
                "ip": d.key.net().map(|n| n.to_string()),
                "user": d.key.user().map(|u| u.as_str()),
                "rule": b.rule,
                "first_blocked": rfc3339(b.since_ms),
                "expires": rfc3339(b.until_ms),
                "offense": b.offense,
                "ban_seconds": (b.until_ms - b.since_ms) / 1000,
                "reason": b.reason(),
                "evidence": b.evidence.as_ref().map(evidence),
            }));
        }
        if self.rows == 0 {
            writeln!(
                self.out,
                "{:<22} {:<12} {:<20} {:<20} REASON",
                "BLOCK", "RULE", "SINCE", "UNTIL"
            )?;
        }
        self.rows += 1;
        writeln!(
            self.out,
            "{:<22} {:<12} {:<20} {:<20} {}",
            d.key.to_string(),
            b.rule,
            rfc3339(b.since_ms),
            rfc3339(b.until_ms),
            b.reason()
        )
    }

    pub fn summary(&mut self, s: &Summary) -> io::Result<()> {
        if self.json {
            let mut v = serde_json::to_value(s).map_err(io::Error::other)?;
            v["type"] = json!("summary");
            self.line(&v)?;
        } else {
            if self.rows == 0 {
                writeln!(self.out, "no blocks")?;
            }
            writeln!(
                self.out,
                "\n{} files, {} lines read: {} parsed, {} skipped; {} blocks",
                s.files, s.lines_read, s.lines_parsed, s.lines_skipped, s.blocks
            )?;
            if s.files_already_counted > 0 {
                writeln!(
                    self.out,
                    "{} files already counted in --state, skipped",
                    s.files_already_counted
                )?;
            }
            for (k, v) in &s.skip_reasons {
                writeln!(self.out, "  skipped {v:>8}  {k}")?;
            }
            for (k, v) in &s.not_counted {
                let why = match *k {
                    "untracked" => "more clients at once than the engine holds (MAX_KEYS)",
                    "future" => "dated over a day ahead of the clock",
                    _ => "only trusted proxies in the chain",
                };
                writeln!(self.out, "  not counted {v:>8}  {why}")?;
            }
        }
        self.out.flush()
    }
}
