//! The report's timeline, inline SVG: the whole site's lane (requests, 4xx,
//! 5xx per minute under the route outages recognised), then a lane per
//! offender (matched requests per minute under its blocks).

use super::collect::MAX_FAILING;
use super::html::{esc, plural};
use super::model::{Model, Offender, Outage};
use crate::output::rfc3339;
use std::fmt::Write as _;

/// Outage bands drawn (the longest first; the rest are counted).
const MAX_BANDS: usize = 40;

/// Where things go on the timeline: its span (whole minutes, epoch ms) and
/// its sizes, in SVG units.
struct Frame {
    t0: i64,
    t1: i64,
    left: f64,
    right: f64,
    width: f64,
    height: f64,
    /// Width of the plot, between the labels on the left and the peaks on
    /// the right.
    plot_w: f64,
    site_top: f64,
    site_h: f64,
    lane_h: f64,
    /// Top of the first offender's lane.
    top: f64,
    /// Width of one minute.
    minute_w: f64,
}

impl Frame {
    /// The frame for requests from `first_ms` to `last_ms` and `lanes`
    /// offenders.
    fn new(first_ms: i64, last_ms: i64, lanes: usize) -> Frame {
        let t0 = first_ms.div_euclid(60_000) * 60_000;
        let t1 = (last_ms.div_euclid(60_000) + 1) * 60_000;
        let (left, right, width) = (200.0, 70.0, 1240.0);
        let (site_top, site_h, lane_h) = (34.0, 96.0, 44.0);
        // The offenders' lanes start under the site lane.
        let top = site_top + site_h + 12.0;
        let plot_w = width - left - right;
        Frame {
            t0,
            t1,
            left,
            right,
            width,
            height: top + lane_h * lanes as f64 + 8.0,
            plot_w,
            site_top,
            site_h,
            lane_h,
            top,
            minute_w: (plot_w * 60_000.0 / (t1 - t0) as f64).max(1.0),
        }
    }

    /// The x of the time `ms`.
    fn x(&self, ms: i64) -> f64 {
        self.left + (ms - self.t0) as f64 / (self.t1 - self.t0) as f64 * self.plot_w
    }

    /// The time axis: a grid line and a label per tick (the day on the
    /// first tick of each day).
    fn axis(&self, h: &mut String) {
        let step = tick_step(self.t1 - self.t0);
        let mut t = (self.t0 + step - 1).div_euclid(step) * step;
        let mut last_day = i64::MIN;
        while t <= self.t1 {
            let day = t.div_euclid(86_400_000);
            let dt = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(t).unwrap_or_default();
            let label = if day != last_day {
                last_day = day;
                dt.format("%b %d %H:%M").to_string()
            } else {
                dt.format("%H:%M").to_string()
            };
            let _ = write!(
                h,
                "<line class=\"grid\" x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{1}\" y2=\"{2}\"/>\
                 <text class=\"tick\" x=\"{0:.1}\" y=\"{3}\">{4}</text>",
                self.x(t),
                self.site_top - 6.0,
                self.height - 8.0,
                self.site_top - 12.0,
                label
            );
            t += step;
        }
        let _ = write!(
            h,
            "<text class=\"axis\" x=\"{}\" y=\"{}\">time (UTC)</text>",
            12.0,
            self.site_top - 12.0
        );
    }
}

/// A tick interval giving at most about 12 ticks over `span_ms`.
pub(super) fn tick_step(span_ms: i64) -> i64 {
    const MIN: i64 = 60_000;
    [
        1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080,
    ]
    .iter()
    .map(|m| m * MIN)
    .find(|s| span_ms / s <= 12)
    .unwrap_or(30 * 1440 * MIN)
}

impl Model {
    pub(super) fn chart(&self, h: &mut String) {
        h.push_str("<section id=\"timeline\"><h2>Timeline</h2>");
        let (Some(first), Some(last)) = (self.data.first_ms, self.data.last_ms) else {
            h.push_str("<p>No counted requests.</p></section>\n");
            return;
        };
        self.chart_notes(h);
        let f = Frame::new(first, last, self.offenders.len());
        let _ = write!(
            h,
            "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {width} {height}\" \
             width=\"{width}\" height=\"{height}\" role=\"img\" aria-label=\"matched requests per minute\" \
             data-start=\"{}\" data-end=\"{}\">",
            rfc3339(f.t0),
            rfc3339(f.t1),
            width = f.width,
            height = f.height,
        );
        f.axis(h);
        self.site_lane(h, &f);
        for (i, o) in self.offenders.iter().enumerate() {
            self.offender_lane(h, &f, f.top + f.lane_h * i as f64, o);
        }
        h.push_str(
            "</svg><p class=\"legend\"><i style=\"background:#2f6fb0\"></i>matched requests before the block\
             <i style=\"background:#a8322a\"></i>after it was decided (WAF would have stopped these)\
             <i style=\"background:rgba(192,57,43,.18);border:1px solid rgba(192,57,43,.6)\"></i>block, \
             labelled with its rule</p><p class=\"legend\">site lane:\
             <i style=\"background:#c3cbd8\"></i>requests\
             <i style=\"background:#e9a23b\"></i>4xx\
             <i style=\"background:#c0392b\"></i>5xx\
             <i style=\"background:rgba(125,60,152,.16);border:1px solid rgba(125,60,152,.6)\"></i>route \
             outage, labelled with its section</p></section>\n",
        );
    }

    /// What the lanes show, over the chart.
    fn chart_notes(&self, h: &mut String) {
        let _ = write!(
            h,
            "<p class=\"note\">The top lane is the whole site: every counted request per minute, \
             its 4xx and 5xx at the bottom, with the route outages recognised shaded: minutes in \
             which a route section (<code>/api/*</code>; <code>/*</code> for one-segment paths) \
             answered server errors to at least {rc} distinct clients \
             (<code>[outage] route_clients</code>).{untracked}</p>",
            rc = self.route_clients,
            untracked = if self.data.failing_untracked > 0 {
                format!(
                    " {} server errors came after {MAX_FAILING} (minute, section) pairs were \
                     tracked and were not judged for outages.",
                    self.data.failing_untracked
                )
            } else {
                String::new()
            }
        );
        if self.offenders.is_empty() {
            h.push_str("<p class=\"note\">No client had a matched request.</p>");
        } else {
            let _ = write!(
                h,
                "<p class=\"note\">Under it, matched requests per minute (any rule) of the top {} \
                 offenders, blocked networks first; each lane has its own scale (peak on the right). \
                 Shaded: the block, from the event time it was decided to its expiry (clipped to the \
                 data).{}</p>",
                self.offenders.len(),
                if self.blocked_not_shown > 0 {
                    format!(
                        " {} more blocked networks are not drawn (raise <code>--top</code>); \
                         all are in the decisions table.",
                        self.blocked_not_shown
                    )
                } else {
                    String::new()
                }
            );
        }
    }

    /// The whole site's lane: requests, 4xx and 5xx per minute as stacked
    /// bars (5xx at the bottom), under the route outages recognised.
    fn site_lane(&self, h: &mut String, f: &Frame) {
        let (left, y0, plot_w, lane_h) = (f.left, f.site_top, f.plot_w, f.site_h);
        let site = &self.data.site;
        let (requests, c4xx, c5xx) = site.values().fold((0, 0, 0), |(r, a, b), m| {
            (r + m.requests, a + m.c4xx, b + m.c5xx)
        });
        let _ = write!(
            h,
            "<g class=\"sitelane\" data-requests=\"{requests}\" data-4xx=\"{c4xx}\" data-5xx=\"{c5xx}\" \
             data-outages=\"{}\"><rect class=\"lanebg\" x=\"{left}\" y=\"{y0}\" width=\"{plot_w}\" \
             height=\"{lane_h}\"/>",
            self.outages.len()
        );
        let drawn = self.outages_drawn();
        for o in &drawn {
            outage_band(h, f, o);
        }
        let peak = site.values().map(|m| m.requests).max().unwrap_or(0);
        self.site_minutes(h, f, peak);
        // Labels over the bars, staggered so neighbours stay readable.
        for (i, o) in drawn.iter().enumerate() {
            let _ = write!(
                h,
                "<text class=\"outagelabel\" x=\"{:.1}\" y=\"{:.1}\">outage on {}</text>",
                f.x((o.from * 60_000).max(f.t0)) + 3.0,
                y0 + 12.0 + 11.0 * (i % 3) as f64,
                esc(&o.section)
            );
        }
        let more = self.outages.len() - drawn.len();
        let _ = write!(
            h,
            "<text class=\"key\" x=\"{kx}\" y=\"{ky:.1}\">whole site</text>\
             <text class=\"sub\" x=\"{kx}\" y=\"{sy:.1}\">{requests} req, {c4xx} 4xx, {c5xx} 5xx</text>\
             <text class=\"sub\" x=\"{kx}\" y=\"{oy:.1}\">{outages}</text>\
             <text class=\"peak\" x=\"{px}\" y=\"{py:.1}\">{peak}/min</text></g>",
            kx = left - 8.0,
            ky = y0 + lane_h / 2.0 - 6.0,
            sy = y0 + lane_h / 2.0 + 7.0,
            oy = y0 + lane_h / 2.0 + 20.0,
            outages = match (self.outages.len(), more) {
                (0, _) => "no route outage".to_string(),
                (n, 0) => format!("{n} route outage{}", plural(n)),
                (n, m) => format!("{n} route outages ({m} not drawn)"),
            },
            px = left + plot_w + 6.0,
            py = y0 + 16.0,
        );
    }

    /// The outages drawn, by first minute: all, or the [`MAX_BANDS`]
    /// longest when there are more.
    fn outages_drawn(&self) -> Vec<&Outage> {
        let mut drawn: Vec<&Outage> = self.outages.iter().collect();
        drawn.sort_by_key(|o| (std::cmp::Reverse(o.to - o.from), o.from));
        drawn.truncate(MAX_BANDS);
        drawn.sort_by_key(|o| o.from);
        drawn
    }

    /// The site lane's stacked bars, a group per minute, scaled to `peak`
    /// requests a minute.
    fn site_minutes(&self, h: &mut String, f: &Frame, peak: u64) {
        let (y0, lane_h, minute_w) = (f.site_top, f.site_h, f.minute_w);
        let scale = (lane_h - 18.0) / peak.max(1) as f64;
        let base = y0 + lane_h - 2.0;
        for (m, c) in &self.data.site {
            let ms = m * 60_000;
            let height = |n: u64| {
                if n == 0 {
                    0.0
                } else {
                    (n as f64 * scale).max(1.0)
                }
            };
            let (h5, h4) = (height(c.c5xx), height(c.c4xx));
            let hr = (c.requests as f64 * scale).max(h5 + h4).max(1.0);
            let _ = write!(
                h,
                "<g class=\"minute\" data-minute=\"{t}\" data-requests=\"{r}\" data-4xx=\"{a}\" \
                 data-5xx=\"{b}\"><title>{t}: {r} requests, {a} 4xx, {b} 5xx</title>\
                 <rect class=\"req\" x=\"{x:.1}\" y=\"{yr:.1}\" width=\"{w:.1}\" height=\"{hr:.1}\"/>",
                t = rfc3339(ms),
                r = c.requests,
                a = c.c4xx,
                b = c.c5xx,
                x = f.x(ms),
                yr = base - hr,
                w = (minute_w - 0.5).max(1.0),
            );
            for (class, y, hh) in [("c4", base - h5 - h4, h4), ("c5", base - h5, h5)] {
                if hh > 0.0 {
                    let _ = write!(
                        h,
                        "<rect class=\"{class}\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{hh:.1}\"/>",
                        x = f.x(ms),
                        w = (minute_w - 0.5).max(1.0),
                    );
                }
            }
            h.push_str("</g>");
        }
    }

    /// An offender's lane from `y0`: its blocks shaded, its matched
    /// requests per minute as bars (darker once blocked), its figures.
    fn offender_lane(&self, h: &mut String, f: &Frame, y0: f64, o: &Offender) {
        let (left, plot_w, lane_h, minute_w) = (f.left, f.plot_w, f.lane_h, f.minute_w);
        let key = o.key.to_string();
        let _ = write!(
            h,
            "<g class=\"lane{}\" data-key=\"{key}\" data-matched=\"{}\">\
             <rect class=\"lanebg\" x=\"{left}\" y=\"{y0}\" width=\"{plot_w}\" height=\"{lane_h}\"/>",
            if o.blocks.is_empty() { "" } else { " blocked" },
            o.stats.matched
        );
        for &bi in &o.blocks {
            self.block_band(h, f, y0, &key, bi);
        }
        let first_block = o
            .blocks
            .iter()
            .map(|&i| self.decisions[i].block.since_ms)
            .min()
            .unwrap_or(i64::MAX);
        let peak = o.stats.per_minute.values().copied().max().unwrap_or(0);
        let scale = (lane_h - 16.0) / f64::from(peak.max(1));
        for (m, c) in &o.stats.per_minute {
            let ms = m * 60_000;
            let bh = (f64::from(*c) * scale).max(1.0);
            let _ = write!(
                h,
                "<rect class=\"bar{late}\" data-key=\"{key}\" data-minute=\"{t}\" data-count=\"{c}\" \
                 x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{bh:.1}\">\
                 <title>{key} {t}: {c} matched</title></rect>",
                t = rfc3339(ms),
                late = if ms + 60_000 > first_block { " late" } else { "" },
                x = f.x(ms),
                y = y0 + lane_h - 2.0 - bh,
                w = (minute_w - 0.5).max(1.0),
            );
        }
        let _ = write!(
            h,
            "<text class=\"key\" x=\"{kx}\" y=\"{ky:.1}\">{key}</text>\
             <text class=\"sub\" x=\"{kx}\" y=\"{sy:.1}\">{matched} matched / {req} req</text>\
             <text class=\"peak\" x=\"{px}\" y=\"{py:.1}\">{peak}/min</text></g>",
            kx = left - 8.0,
            ky = y0 + lane_h / 2.0,
            sy = y0 + lane_h / 2.0 + 13.0,
            matched = o.stats.matched,
            req = o.stats.requests,
            px = f.width - f.right + 6.0,
            py = y0 + 16.0,
        );
    }

    /// The band of decision `bi` in the lane of `key` from `y0`, from the
    /// block to its expiry (clipped to the data), labelled with its rule.
    fn block_band(&self, h: &mut String, f: &Frame, y0: f64, key: &str, bi: usize) {
        let d = &self.decisions[bi];
        let (s, u) = (d.block.since_ms.max(f.t0), d.block.until_ms.min(f.t1));
        if u < s {
            return;
        }
        let _ = write!(
            h,
            "<rect class=\"band\" data-key=\"{key}\" data-rule=\"{rule}\" data-since=\"{since}\" \
             data-until=\"{until}\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{hh:.1}\">\
             <title>{key} blocked by {rule} {since} → {until}</title></rect>\
             <text class=\"bandlabel\" x=\"{tx:.1}\" y=\"{ty:.1}\">{rule}</text>",
            rule = esc(&d.block.rule),
            since = rfc3339(d.block.since_ms),
            until = rfc3339(d.block.until_ms),
            x = f.x(s),
            y = y0 + 2.0,
            w = (f.x(u) - f.x(s)).max(1.5),
            hh = f.lane_h - 4.0,
            tx = f.x(s) + 3.0,
            ty = y0 + 12.0,
        );
    }
}

/// An outage's band in the site lane, from its first minute to the end of
/// its last (clipped to the data).
fn outage_band(h: &mut String, f: &Frame, o: &Outage) {
    let (y0, lane_h) = (f.site_top, f.site_h);
    let (from, until) = (o.from * 60_000, (o.to + 1) * 60_000);
    let (s, u) = (from.max(f.t0), until.min(f.t1));
    let _ = write!(
        h,
        "<rect class=\"outage\" data-section=\"{sec}\" data-from=\"{from}\" data-until=\"{until}\" \
         data-minutes=\"{n}\" data-clients=\"{c}\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" \
         height=\"{hh:.1}\"><title>outage on {sec}: {from} → {until}, server errors for up to {c} \
         clients a minute</title></rect>",
        sec = esc(&o.section),
        from = rfc3339(from),
        until = rfc3339(until),
        n = o.to - o.from + 1,
        c = o.clients,
        x = f.x(s),
        y = y0 + 1.0,
        w = (f.x(u) - f.x(s)).max(1.5),
        hh = lane_h - 2.0,
    );
}
