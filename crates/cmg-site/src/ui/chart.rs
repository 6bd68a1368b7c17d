//! Column charts over time as server-side SVG: one column per step of time (stacked or
//! side by side when there are several series), a value axis with round ticks and grid
//! lines, a time axis whose labels `console.js` turns into the viewer's local time, and
//! for assistive technology a `<title>` and `<desc>` the `<svg role="img">` is labelled
//! by. Colours come from CSS classes (the CSP allows no inline style); every text is
//! escaped by maud. Every SVG element is closed (`{}`, not maud's `;`): in HTML, SVG's
//! `<rect>` or `<line>` without `/>` stays open and swallows what follows. A chart's numbers are also in a table the page renders (the text
//! alternative): this module draws, it does not choose what to draw.

use maud::{html, Markup};
use time::OffsetDateTime;

use super::layout;

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 210.0;
const LEFT: f64 = 72.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 34.0;
/// At most this many labels on the time axis.
const MAX_TIME_LABELS: usize = 7;

/// What the values measure: how the value axis is labelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Bytes,
    Millis,
    Percent,
}

impl Unit {
    pub fn label(self, v: f64) -> String {
        match self {
            Self::Count if v >= 1e6 => format!("{}M", trim(v / 1e6)),
            Self::Count if v >= 1e4 => format!("{}k", trim(v / 1e3)),
            Self::Count => trim(v),
            Self::Bytes => layout::bytes(v.max(0.0).round() as u64),
            Self::Millis => format!("{} ms", trim(v)),
            Self::Percent => format!("{}%", trim(v)),
        }
    }
}

/// `v` with at most two decimals and no trailing zeros.
fn trim(v: f64) -> String {
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.into()
    }
}

/// Several series in one chart: stacked into one column, or side by side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Stacked,
    Grouped,
}

/// One series: its name (legend and tooltips), CSS class (colour), a value per step.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: &'static str,
    pub class: &'static str,
    pub values: Vec<f64>,
}

/// The time axis: the start of each step (Unix seconds) and the step's length.
#[derive(Debug, Clone)]
pub struct Steps {
    pub starts: Vec<i64>,
    pub step: i64,
}

impl Steps {
    /// The steps of `step` seconds (aligned to multiples of it) from the one holding
    /// `from` to the one holding `to`.
    pub fn covering(from: i64, to: i64, step: i64) -> Self {
        let first = from - from.rem_euclid(step);
        let last = to - to.rem_euclid(step);
        let starts = (0..)
            .map(|i| first + i * step)
            .take_while(|s| *s <= last)
            .collect();
        Self { starts, step }
    }

    /// How a time on this axis is shown: hours for steps of an hour, else day and hour.
    fn format(&self) -> &'static str {
        if self.step < 86_400 && self.starts.len() <= 25 {
            "hm"
        } else {
            "dhm"
        }
    }
}

/// One chart: `id` is unique on the page (the ids of its title and description derive
/// from it), `title` and `desc` are its accessible name and description.
#[derive(Debug, Clone)]
pub struct Chart {
    pub id: &'static str,
    pub title: String,
    pub desc: String,
    pub unit: Unit,
    pub layout: Layout,
    pub series: Vec<Series>,
}

/// A time as text in UTC, for a page without script (`console.js` replaces it with the
/// viewer's local time, formatted as `fmt` says: `hm`, `dhm` or `full`).
pub fn utc(at: i64, fmt: &str) -> String {
    let Ok(t) = OffsetDateTime::from_unix_timestamp(at) else {
        return "?".into();
    };
    let hm = format!("{:02}:{:02}", t.hour(), t.minute());
    let day = format!("{} {}", t.day(), &format!("{:?}", t.month())[..3]);
    match fmt {
        "hm" => format!("{hm} UTC"),
        "dhm" => format!("{day} {hm} UTC"),
        _ => format!("{day} {} {hm} UTC", t.year()),
    }
}

/// A round step for a value axis of four intervals that reaches `max`: 1, 2, 2.5 or 5
/// times a power of ten (at least 1 for counts, which are whole).
fn tick_step(max: f64, unit: Unit) -> f64 {
    if unit == Unit::Percent {
        return 25.0;
    }
    let raw = (max / 4.0).max(f64::MIN_POSITIVE);
    let pow = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * pow)
        .find(|s| *s >= raw && (unit != Unit::Count || s.fract() == 0.0))
        .unwrap_or(10.0 * pow);
    if unit == Unit::Count {
        step.max(1.0)
    } else if max <= 0.0 {
        1.0
    } else {
        step
    }
}

fn f(v: f64) -> String {
    format!("{v:.1}")
}

/// The chart as `<svg>`.
pub fn render(c: &Chart, steps: &Steps) -> Markup {
    let n = steps.starts.len().max(1);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let col = plot_w / n as f64;
    let value = |s: &Series, i: usize| s.values.get(i).copied().unwrap_or(0.0).max(0.0);
    let max = (0..n)
        .map(|i| match c.layout {
            Layout::Stacked => c.series.iter().map(|s| value(s, i)).sum::<f64>(),
            Layout::Grouped => c.series.iter().map(|s| value(s, i)).fold(0.0, f64::max),
        })
        .fold(0.0, f64::max);
    let tick = tick_step(max, c.unit);
    let top = tick * 4.0;
    let y = |v: f64| TOP + plot_h - v / top * plot_h;
    let fmt = steps.format();
    let every = n.div_ceil(MAX_TIME_LABELS).max(1);
    let (title_id, desc_id) = (format!("{}-title", c.id), format!("{}-desc", c.id));
    let bottom = TOP + plot_h;
    html! {
        svg id=(c.id) class="chart" width=(WIDTH) height=(HEIGHT)
            viewBox={"0 0 " (WIDTH) " " (HEIGHT)} role="img"
            aria-labelledby={(title_id) " " (desc_id)} {
            title id=(title_id) { (c.title) }
            desc id=(desc_id) { (c.desc) }
            g.axis-y {
                @for k in 0..=4 {
                    @let v = tick * k as f64;
                    line class=(if k == 0 { "axis" } else { "grid" })
                        x1=(f(LEFT)) x2=(f(LEFT + plot_w)) y1=(f(y(v))) y2=(f(y(v))) {}
                    text.tick-y x=(f(LEFT - 6.0)) y=(f(y(v) + 4.0)) { (c.unit.label(v)) }
                }
                line.axis x1=(f(LEFT)) x2=(f(LEFT)) y1=(f(TOP)) y2=(f(bottom)) {}
            }
            g.axis-x {
                @for (i, start) in steps.starts.iter().enumerate() {
                    @if i % every == 0 {
                        @let x = LEFT + i as f64 * col;
                        line.axis x1=(f(x)) x2=(f(x)) y1=(f(bottom)) y2=(f(bottom + 4.0)) {}
                        text.tick-x x=(f(x)) y=(f(bottom + 16.0))
                            data-at=(iso(*start)) data-fmt=(fmt) { (utc(*start, fmt)) }
                    }
                }
            }
            @for (i, start) in steps.starts.iter().enumerate() {
                @let x0 = LEFT + i as f64 * col;
                g.step {
                    title data-at=(iso(*start)) data-fmt="full" data-after=(tooltip(c, i)) {
                        (utc(*start, "full")) (tooltip(c, i))
                    }
                    @for (x, w, v0, v1, class) in columns(c, i, x0, col) {
                        @if v1 > v0 {
                            rect class=(class) x=(f(x)) y=(f(y(v1))) width=(f(w))
                                height=(f(y(v0) - y(v1))) {}
                        }
                    }
                }
            }
        }
    }
}

/// The rectangles of step `i`: (x, width, low value, high value, class).
fn columns(c: &Chart, i: usize, x0: f64, col: f64) -> Vec<(f64, f64, f64, f64, &'static str)> {
    let gap = if col >= 4.0 { col * 0.15 } else { 0.0 };
    let width = col - 2.0 * gap;
    let mut out = Vec::new();
    let mut base = 0.0;
    let k = c.series.len().max(1) as f64;
    for (j, s) in c.series.iter().enumerate() {
        let v = s.values.get(i).copied().unwrap_or(0.0).max(0.0);
        match c.layout {
            Layout::Stacked => {
                out.push((x0 + gap, width, base, base + v, s.class));
                base += v;
            }
            Layout::Grouped => {
                let w = width / k;
                out.push((x0 + gap + j as f64 * w, w, 0.0, v, s.class));
            }
        }
    }
    out
}

/// The values of step `i` as text: `: 12 2xx, 1 5xx`.
fn tooltip(c: &Chart, i: usize) -> String {
    let parts: Vec<String> = c
        .series
        .iter()
        .map(|s| {
            let v = s.values.get(i).copied().unwrap_or(0.0);
            format!("{} {}", c.unit.label(v), s.name)
        })
        .collect();
    format!(": {}", parts.join(", "))
}

/// Unix seconds as RFC 3339 (UTC), for `data-at`.
pub fn iso(at: i64) -> String {
    OffsetDateTime::from_unix_timestamp(at)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_axes_have_round_ticks() {
        assert_eq!(tick_step(0.0, Unit::Count), 1.0);
        assert_eq!(tick_step(3.0, Unit::Count), 1.0);
        assert_eq!(tick_step(5.0, Unit::Count), 2.0);
        assert_eq!(tick_step(170.0, Unit::Count), 50.0);
        assert_eq!(tick_step(1_000.0, Unit::Bytes), 250.0);
        assert_eq!(tick_step(1.2, Unit::Millis), 0.5);
        assert_eq!(tick_step(0.0, Unit::Millis), 1.0);
        assert_eq!(tick_step(3.0, Unit::Percent), 25.0);
        assert_eq!(Unit::Count.label(25_000.0), "25k");
        assert_eq!(Unit::Millis.label(0.5), "0.5 ms");
        assert_eq!(Unit::Percent.label(75.0), "75%");
        assert_eq!(Unit::Bytes.label(1_500.0), "1.5 kB");
    }

    #[test]
    fn steps_cover_both_ends() {
        let s = Steps::covering(3_600 * 10 + 5, 3_600 * 12 + 1, 3_600);
        assert_eq!(s.starts, vec![36_000, 39_600, 43_200]);
        let d = Steps::covering(86_400 + 7, 3 * 86_400 - 1, 6 * 3_600);
        assert_eq!(d.starts.len(), 8);
        assert_eq!(d.starts[0], 86_400);
        assert_eq!(utc(0, "hm"), "00:00 UTC");
        assert_eq!(utc(86_400 * 2 + 3_600, "dhm"), "3 Jan 01:00 UTC");
        assert_eq!(iso(0), "1970-01-01T00:00:00Z");
    }
}
