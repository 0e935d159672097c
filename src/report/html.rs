//! Rendering the report's model as one self-contained HTML page (inline
//! CSS and SVG, no scripts, no external assets).

use super::collect::{MAX_KEYS, MAX_QUIET_KEYS};
use super::model::{Model, NearMiss};
use crate::output::rfc3339;
use fail2waf_core::rules::KeyKind;
use std::fmt::Write as _;

/// Escape text for HTML element content and quoted attribute values.
pub(super) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

impl Model {
    pub(super) fn html(&self) -> String {
        let mut h = String::with_capacity(64 * 1024);
        h.push_str(HEAD);
        self.header(&mut h);
        self.chart(&mut h);
        self.rules_table(&mut h);
        self.decisions_table(&mut h);
        self.near_misses(&mut h);
        self.offender_detail(&mut h);
        self.files(&mut h);
        h.push_str("</main>\n</body>\n</html>\n");
        h
    }

    fn header(&self, h: &mut String) {
        let s = &self.summary;
        let span = match (self.data.first_ms, self.data.last_ms) {
            (Some(a), Some(b)) => format!(
                "{} → {} ({})",
                rfc3339(a),
                rfc3339(b),
                human_span((b - a) / 1000)
            ),
            _ => "no counted requests".into(),
        };
        let _ = write!(
            h,
            "<header><h1>fail2waf backtest</h1>\
             <p class=\"lead\"><b>{blocks}</b> block{bs} of <b>{nets}</b> network{ns} \
             would have been decided; <b>{matched}</b> of {requests} counted requests matched a rule.</p>\
             <dl class=\"facts\">\
             <dt>inputs</dt><dd>{inputs}</dd>\
             <dt>files</dt><dd>{files} ({fskip} skipped, {fdmg} damaged)</dd>\
             <dt>lines</dt><dd>{read} read: {parsed} parsed, {skipped} skipped</dd>\
             <dt>time span</dt><dd>{span}</dd>\
             <dt>rules</dt><dd>{rules}</dd>",
            blocks = self.decisions.len(),
            bs = plural(self.decisions.len()),
            nets = self.blocked_nets(),
            ns = plural(self.blocked_nets()),
            matched = self.data.matched,
            requests = self.data.requests,
            inputs = self
                .inputs
                .iter()
                .map(|i| format!("<code>{}</code>", esc(i)))
                .collect::<Vec<_>>()
                .join(" "),
            files = s.files,
            fskip = s.files_skipped,
            fdmg = s.files_damaged,
            read = s.lines_read,
            parsed = s.lines_parsed,
            skipped = s.lines_skipped,
            rules = self
                .rules
                .iter()
                .map(|r| format!(
                    "<code>{}</code> {} in {}",
                    esc(&r.config.name),
                    r.config.threshold,
                    r.config.window
                ))
                .collect::<Vec<_>>()
                .join(", "),
        );
        if !s.skip_reasons.is_empty() {
            let reasons: Vec<String> = s
                .skip_reasons
                .iter()
                .map(|(k, v)| format!("{v} × {}", esc(k)))
                .collect();
            let _ = write!(h, "<dt>skipped lines</dt><dd>{}</dd>", reasons.join("; "));
        }
        if !self.refused.is_empty() {
            let r: Vec<String> = self
                .refused
                .iter()
                .map(|(k, v)| format!("{v} {}", esc(k)))
                .collect();
            let _ = write!(h, "<dt>offenses refused</dt><dd>{}</dd>", r.join("; "));
        }
        h.push_str("</dl>");
        if self.data.dropped_matched > 0 || self.data.quiet_full {
            let _ = write!(
                h,
                "<p class=\"warn\">Detail is kept for the first {MAX_KEYS} clients with matched \
                 requests: {} matched requests of later clients are counted in the totals but \
                 not shown per client.{}</p>",
                self.data.dropped_matched,
                if self.data.quiet_full {
                    format!(
                        " Request totals are exact only for the first {MAX_QUIET_KEYS} clients."
                    )
                } else {
                    String::new()
                }
            );
        }
        h.push_str("</header>\n<main>\n");
    }

    fn rules_table(&self, h: &mut String) {
        h.push_str(
            "<section id=\"rules\"><h2>Rules</h2><table><thead><tr><th>rule</th><th>per</th>\
             <th>window</th><th>threshold and conditions</th><th class=\"n\">matched requests</th>\
             <th class=\"n\">clients matched</th><th class=\"n\">offenses</th><th class=\"n\">blocks</th>\
             <th class=\"n\">refused</th><th>closest unblocked</th></tr></thead><tbody>",
        );
        for (r, (rule, row)) in self.rules.iter().zip(&self.rule_rows).enumerate() {
            let c = &rule.config;
            let mut cond = vec![format!("{}", c.threshold)];
            if c.distinct_paths > 0 {
                cond.push(format!("≥ {} distinct paths", c.distinct_paths));
            }
            if let Some(m) = c.min_ratio {
                cond.push(format!("≥ {:.0} %", m * 100.0));
            }
            if c.min_requests > 0 {
                cond.push(format!("≥ {} requests", c.min_requests));
            }
            if c.min_members > 1 {
                cond.push(format!("≥ {} addresses", c.min_members));
            }
            if rule.outage_aware {
                cond.push("outage-aware".into());
            }
            let per = match c.key {
                KeyKind::Ip => "address".to_string(),
                KeyKind::Prefix => format!("/{}, /{}", c.prefix_v4, c.prefix_v6),
                KeyKind::User => "user".to_string(),
            };
            let closest = self
                .near
                .iter()
                .find(|n| n.rule == r)
                .map(|n| format!("<code>{}</code> {}/{}", n.key, n.max, n.threshold))
                .unwrap_or_default();
            let _ = write!(
                h,
                "<tr{cls}><td><code>{name}</code>{desc}</td><td>{per}</td><td>{win}</td><td>{cond}</td>\
                 <td class=\"n\">{m}</td><td class=\"n\">{cl}</td><td class=\"n\">{off}</td>\
                 <td class=\"n\"><b>{b}</b></td><td class=\"n\">{rf}</td><td>{closest}</td></tr>",
                cls = if row.blocks > 0 { " class=\"hit\"" } else { "" },
                name = esc(&c.name),
                desc = c
                    .description
                    .as_deref()
                    .map(|d| format!("<div class=\"desc\">{}</div>", esc(d)))
                    .unwrap_or_default(),
                win = c.window,
                cond = cond.join(", "),
                m = row.matched,
                cl = row.clients,
                off = row.blocks + row.refused,
                b = row.blocks,
                rf = row.refused,
            );
        }
        h.push_str(
            "</tbody></table><p class=\"note\">Offenses = blocks + refused (already blocked by an \
             earlier block, allow-listed, a trusted proxy, or too wide). “Clients matched” counts \
             addresses (IPv6 /64s).</p></section>\n",
        );
    }

    fn decisions_table(&self, h: &mut String) {
        h.push_str("<section id=\"decisions\"><h2>Decisions</h2>");
        if self.decisions.is_empty() {
            h.push_str("<p>No blocks would have been decided.</p></section>\n");
            return;
        }
        h.push_str(
            "<table class=\"decisions\"><colgroup><col style=\"width:150px\"><col style=\"width:95px\">\
             <col style=\"width:168px\"><col style=\"width:168px\"><col style=\"width:62px\">\
             <col style=\"width:110px\"><col style=\"width:68px\"><col style=\"width:240px\"><col></colgroup><thead><tr><th>ip</th><th>rule</th><th>first blocked</th>\
             <th>expires</th><th class=\"n\">offense</th><th class=\"n\">matched / requests</th>\
             <th class=\"n\">distinct paths</th><th>samples</th><th>reason</th></tr></thead><tbody>",
        );
        for d in &self.decisions {
            let b = &d.block;
            let (mr, dp, samples) = match &b.evidence {
                Some(e) => (
                    format!("{} / {} in {}", e.matched, e.requests, e.window),
                    e.distinct_paths.to_string(),
                    e.samples
                        .iter()
                        .map(|s| format!("<code>{}</code>", esc(s)))
                        .collect::<Vec<_>>()
                        .join("<br>"),
                ),
                None => (String::new(), String::new(), String::new()),
            };
            let _ = write!(
                h,
                "<tr data-key=\"{net}\"><td class=\"ip\"><code>{net}</code></td><td class=\"rule\"><code>{rule}</code></td>\
                 <td class=\"t\">{since}</td><td class=\"t\">{until}</td><td class=\"n\">{off}</td>\
                 <td class=\"n\">{mr}</td><td class=\"n\">{dp}</td><td class=\"samples\">{samples}</td>\
                 <td>{reason}</td></tr>",
                net = d.key,
                rule = esc(&b.rule),
                since = rfc3339(b.since_ms),
                until = rfc3339(b.until_ms),
                off = b.offense,
                reason = esc(&b.reason()),
            );
        }
        h.push_str("</tbody></table></section>\n");
    }

    fn near_misses(&self, h: &mut String) {
        h.push_str(
            "<section id=\"near\"><h2>Near misses</h2><p class=\"note\">Clients (networks, for \
             prefix rules) never blocked, by their fullest window of matched requests for each \
             rule (the rule's window slid over the 10 s buckets), as a share of the threshold. \
             <b>Only the count condition</b> is compared; for prefix rules every matched request \
             of the network's unblocked members counts, quiet or not.</p>",
        );
        if self.near.is_empty() {
            h.push_str("<p>No unblocked client came under a threshold.</p>");
        } else {
            h.push_str("<h3>Closest under a threshold</h3>");
            self.near_table(h, &self.near, "near");
        }
        if !self.held.is_empty() {
            h.push_str(
                "<h3>Reached the count, held back by another condition</h3><p class=\"note\">\
                 The ratio, distinct paths, members or outage awareness kept these out: \
                 NATs, crawlers, monitors and the victims of an outage should be here, attackers \
                 should not. <i>Held back by</i> is the first condition the fullest window fails, \
                 from the detector's state at the end of the input; for windows older than the \
                 longest rule window before the end that state is gone, and only an outage the \
                 site lane recognised (where the client got server errors) is named.</p>",
            );
            self.near_table(h, &self.held, "held");
        }
        h.push_str("</section>\n");
    }

    fn near_table(&self, h: &mut String, rows: &[NearMiss], class: &str) {
        h.push_str(
            "<table class=\"near\"><thead><tr><th>client</th><th>rule</th><th class=\"n\">max / threshold</th>\
             <th class=\"meterbar\"></th><th>window ending</th>",
        );
        let held = class == "held";
        if held {
            h.push_str("<th>held back by</th>");
        }
        h.push_str("<th>user agent</th></tr></thead><tbody>");
        for n in rows {
            let pct = n.ratio() * 100.0;
            let rule = &self.rules[n.rule].config;
            let ua = self
                .data
                .keys
                .get(&n.key)
                .map(|k| esc(&k.user_agent))
                .unwrap_or_default();
            let why = n.why.as_deref().map(esc);
            let _ = write!(
                h,
                "<tr class=\"{class}\" data-key=\"{key}\" data-rule=\"{r}\" data-max=\"{max}\" \
                 data-threshold=\"{th}\"{why_attr}><td><code>{key}</code></td><td><code>{r}</code> ({win})</td>\
                 <td class=\"n\">{max}/{th} ({pct:.0} %)</td><td class=\"meterbar\"><span class=\"meter{over}\" \
                 style=\"width:{w:.0}%\"></span></td><td class=\"t\">{at}</td>{why_cell}<td class=\"ua\">{ua}</td></tr>",
                why_attr = why
                    .as_deref()
                    .map(|w| format!(" data-held=\"{w}\""))
                    .unwrap_or_default(),
                why_cell = match (&why, held) {
                    (Some(w), _) => format!("<td class=\"why\">held back: {w}</td>"),
                    (None, true) => "<td class=\"why\">-</td>".to_string(),
                    (None, false) => String::new(),
                },
                key = n.key,
                r = esc(&rule.name),
                win = rule.window,
                max = n.max,
                th = n.threshold,
                over = if pct >= 100.0 { " over" } else { "" },
                w = pct.min(100.0),
                at = rfc3339(n.at_ms),
            );
        }
        h.push_str("</tbody></table>");
    }

    fn offender_detail(&self, h: &mut String) {
        h.push_str("<section id=\"offenders\"><h2>Offenders</h2><div class=\"cards\">");
        for o in &self.offenders {
            let s = &o.stats;
            let mut paths: Vec<(&String, &u64)> = s.paths.iter().collect();
            paths.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            let status: Vec<String> = s
                .status
                .iter()
                .map(|(c, n)| format!("<span class=\"st s{}\">{c}</span>×{n}", c / 100))
                .collect();
            let _ = write!(
                h,
                "<div class=\"card{}\" data-key=\"{}\"><h3><code>{}</code> {}</h3>\
                 <p class=\"sub\">{} matched of {} requests; {} → {}</p>\
                 <p><b>status</b> {}</p><p><b>user agent</b> <code>{}</code></p>\
                 <table class=\"paths\"><tbody>",
                if o.blocks.is_empty() { "" } else { " blocked" },
                o.key,
                o.key,
                if o.blocks.is_empty() {
                    "<span class=\"tag\">not blocked</span>".to_string()
                } else {
                    o.blocks
                        .iter()
                        .map(|&i| {
                            format!(
                                "<span class=\"tag red\">{}</span>",
                                esc(&self.decisions[i].block.rule)
                            )
                        })
                        .collect::<Vec<_>>()
                        .join(" ")
                },
                s.matched,
                s.requests,
                if s.matched > 0 {
                    rfc3339(s.first_ms)
                } else {
                    "-".into()
                },
                if s.matched > 0 {
                    rfc3339(s.last_ms)
                } else {
                    "-".into()
                },
                status.join(" "),
                esc(&s.user_agent),
            );
            for (p, n) in paths.iter().take(5) {
                let _ = write!(
                    h,
                    "<tr><td class=\"n\">{n}</td><td><code>{}</code></td></tr>",
                    esc(p)
                );
            }
            let more = paths.len().saturating_sub(5);
            if more > 0 || s.other_paths > 0 {
                let _ = write!(
                    h,
                    "<tr><td></td><td class=\"sub\">{more}{} more paths</td></tr>",
                    if s.other_paths > 0 { "+" } else { "" }
                );
            }
            h.push_str("</tbody></table>");
            for &i in &o.blocks {
                let b = &self.decisions[i].block;
                let _ = write!(
                    h,
                    "<p class=\"evidence\"><b>{}</b> {}</p>",
                    esc(&b.rule),
                    esc(&b.reason())
                );
            }
            h.push_str("</div>");
        }
        h.push_str("</div><p class=\"note\">Paths, status codes and user agent are those of matched requests; \
             a network's figures sum its members'.</p></section>\n");
    }

    fn files(&self, h: &mut String) {
        h.push_str(
            "<section id=\"files\"><details><summary>Files</summary><table><thead><tr><th>file</th>\
             <th>format</th><th class=\"n\">read</th><th class=\"n\">parsed</th>\
             <th class=\"n\">skipped</th><th>note</th></tr></thead><tbody>",
        );
        for r in &self.reports {
            let note = r
                .error
                .as_deref()
                .map(|e| format!("<span class=\"warn\">{}</span>", esc(e)))
                .or_else(|| r.skipped.as_deref().map(esc))
                .unwrap_or_default();
            let _ = write!(
                h,
                "<tr><td><code>{}</code></td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
                 <td class=\"n\">{}</td><td>{note}</td></tr>",
                esc(&r.name),
                esc(r.format.as_deref().unwrap_or("-")),
                r.lines_read,
                r.lines_parsed,
                r.lines_skipped,
            );
        }
        h.push_str("</tbody></table></details></section>\n");
    }
}

pub(super) fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn human_span(secs: i64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h) {
        (0, 0) => format!("{m} min {s} s"),
        (0, _) => format!("{h} h {m} min"),
        _ => format!("{d} d {h} h"),
    }
}

const HEAD: &str = concat!(
    r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>fail2waf backtest</title>
<style>
"#,
    include_str!("report.css"),
    r#"</style>
</head>
<body>
"#
);
