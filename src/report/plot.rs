//! Pictures of the sound: an SVG of a file's loudness over time, for people
//! who would rather look than read numbers (what a hosted post-production
//! service shows after every production).
//!
//! One chart, time across, decibels up (LUFS and dBTP share the scale, from
//! [`FLOOR_DB`] to [`TOP_DB`]):
//! * the **short-term loudness** (3 s window) as a solid line and the
//!   **momentary loudness** (400 ms) as a faint one, both every 100 ms;
//! * the **target** as a dashed line in a band of ± its tolerance;
//! * the **true-peak ceiling** as a dashed red line, and a red tick at the
//!   top for every 100 ms whose true peak came within [`APPROACH_DB`] of it;
//! * **pauses over the limit** as grey columns.
//!
//! SVG needs no font files or image encoder here: the viewer draws the
//! text. Every mark carries its time in seconds as a `data-` attribute next
//! to the coordinates, so a test can check positions without reading
//! pixels, and a reader can hover them in a browser's inspector.

use std::fmt::Write as _;

use crate::report::{PartSpan, TimeSpan};

/// Bottom of the decibel axis.
pub const FLOOR_DB: f64 = -50.0;
/// Top of the decibel axis (room over 0 dBTP to show overs).
pub const TOP_DB: f64 = 3.0;
/// A 100 ms true peak this close to the ceiling is marked, in dB.
pub const APPROACH_DB: f64 = 1.0;

/// Width and height of the picture, in SVG units.
const WIDTH: f64 = 1000.0;
const HEIGHT: f64 = 320.0;
/// The plot area inside the picture: left, right, top, bottom.
const LEFT: f64 = 56.0;
const RIGHT: f64 = 984.0;
const TOP: f64 = 34.0;
const BOTTOM: f64 = 286.0;

/// What a chart shows.
#[derive(Debug, Clone, Default)]
pub struct Chart {
    /// The title line (e.g. the file's name).
    pub title: String,
    /// Length of the audio, in seconds.
    pub duration_s: f64,
    /// Seconds between two values of the series.
    pub hop_s: f64,
    /// Short-term loudness, LUFS, one value per hop.
    pub short_term: Vec<f32>,
    /// Momentary loudness, LUFS, one value per hop.
    pub momentary: Vec<f32>,
    /// True peak of each hop, dBTP.
    pub peaks_dbtp: Vec<f32>,
    /// The loudness target and its tolerance (LUFS, LU), when there is one.
    pub target: Option<(f64, f64)>,
    /// The true-peak ceiling, dBTP.
    pub ceiling_dbtp: f64,
    /// Pauses over the limit.
    pub pauses: Vec<TimeSpan>,
    /// What was cut out of the recording.
    pub removed: Vec<TimeSpan>,
    /// Parts of an episode; neighbours overlap by their crossfade.
    pub parts: Vec<PartSpan>,
}

/// Text safe inside an XML element or attribute.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Full-height columns of `fill` for each span, with their times as
/// `data-` attributes.
fn columns(s: &mut String, class: &str, fill: &str, spans: &[TimeSpan], d: f64) {
    for &TimeSpan {
        start_s: start,
        duration_s: len,
    } in spans
    {
        let (x0, x1) = (Chart::x_of(start, d), Chart::x_of(start + len, d));
        let _ = writeln!(
            s,
            "<rect class=\"{class}\" data-start-s=\"{start:.3}\" data-duration-s=\"{len:.3}\" \
             x=\"{x0:.2}\" y=\"{TOP}\" width=\"{:.2}\" height=\"{:.2}\" fill=\"{fill}\"/>",
            x1 - x0,
            BOTTOM - TOP
        );
    }
}

impl Chart {
    /// Several charts one above the other in one SVG document (a
    /// recording before and after podstitch, say).
    pub fn document(charts: &[&Chart]) -> String {
        let height = HEIGHT * charts.len().max(1) as f64;
        let mut s = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" \
             viewBox=\"0 0 {WIDTH} {height}\" font-family=\"sans-serif\" font-size=\"11\">\n\
             <rect width=\"{WIDTH}\" height=\"{height}\" fill=\"white\"/>\n"
        );
        for (k, c) in charts.iter().enumerate() {
            let _ = writeln!(
                s,
                "<g class=\"chart\" transform=\"translate(0 {})\">",
                k as f64 * HEIGHT
            );
            s.push_str(&c.body());
            s.push_str("</g>\n");
        }
        s.push_str("</svg>\n");
        s
    }

    /// The x coordinate, in the SVG, of time `t` seconds in a chart of
    /// `duration_s`.
    pub fn x_of(t: f64, duration_s: f64) -> f64 {
        LEFT + (RIGHT - LEFT) * (t / duration_s.max(1e-9)).clamp(0.0, 1.0)
    }

    /// The y coordinate, in the SVG, of `db` on the decibel axis.
    pub fn y_of(db: f64) -> f64 {
        let f = ((db - FLOOR_DB) / (TOP_DB - FLOOR_DB)).clamp(0.0, 1.0);
        BOTTOM - (BOTTOM - TOP) * f
    }

    /// The chart as an SVG document.
    pub fn to_svg(&self) -> String {
        Chart::document(&[self])
    }

    /// The chart's elements, in a box of [`WIDTH`] × [`HEIGHT`].
    fn body(&self) -> String {
        let d = self.duration_s;
        let mut s = String::with_capacity(64 * 1024);
        let _ = writeln!(
            s,
            "<text x=\"{LEFT}\" y=\"20\" font-size=\"13\">{}</text>",
            escape(&self.title)
        );
        for (k, part) in self.parts.iter().enumerate() {
            let (name, start, end) = (&part.name, part.start_s, part.end_s);
            let (x0, x1) = (Chart::x_of(start, d), Chart::x_of(end, d));
            let fill = if k % 2 == 0 { "#e8eef8" } else { "#f3ecdf" };
            let _ = writeln!(
                s,
                "<rect class=\"part\" data-name=\"{}\" data-start-s=\"{start:.3}\" \
                 data-end-s=\"{end:.3}\" x=\"{x0:.2}\" y=\"{:.0}\" width=\"{:.2}\" height=\"14\" \
                 fill=\"{fill}\" stroke=\"#888\" stroke-width=\"0.5\"/>\n\
                 <text x=\"{:.2}\" y=\"{:.0}\" text-anchor=\"middle\">{}</text>",
                escape(name),
                BOTTOM - 14.0,
                x1 - x0,
                (x0 + x1) / 2.0,
                BOTTOM - 3.0,
                escape(name)
            );
        }
        // Crossfades: where a part starts before the previous one ends.
        for pair in self.parts.windows(2) {
            let (start, end) = (pair[1].start_s, pair[0].end_s);
            if end > start {
                let (x0, x1) = (Chart::x_of(start, d), Chart::x_of(end, d));
                let _ = writeln!(
                    s,
                    "<rect class=\"crossfade\" data-start-s=\"{start:.3}\" data-end-s=\"{end:.3}\" \
                     x=\"{x0:.2}\" y=\"{TOP}\" width=\"{:.2}\" height=\"{:.2}\" fill=\"#fd0\" \
                     fill-opacity=\"0.35\"/>",
                    x1 - x0,
                    BOTTOM - TOP
                );
            }
        }
        // Pauses, and on top of them what was cut, under the curves.
        columns(&mut s, "pause", "#ddd", &self.pauses, d);
        columns(&mut s, "removed", "#f4c7c3", &self.removed, d);
        if let Some((target, tol)) = self.target {
            let (y0, y1) = (Chart::y_of(target + tol), Chart::y_of(target - tol));
            let _ = writeln!(
                s,
                "<rect class=\"tolerance\" x=\"{LEFT}\" y=\"{y0:.2}\" width=\"{:.2}\" \
                 height=\"{:.2}\" fill=\"#2a2\" fill-opacity=\"0.12\"/>\n\
                 <line class=\"target\" data-lufs=\"{target}\" x1=\"{LEFT}\" x2=\"{RIGHT}\" \
                 y1=\"{:.2}\" y2=\"{:.2}\" stroke=\"#2a2\" stroke-dasharray=\"6 4\"/>\n\
                 <text x=\"{:.0}\" y=\"{:.2}\" fill=\"#2a2\" text-anchor=\"end\">target {target} LUFS ± {tol} LU</text>",
                RIGHT - LEFT,
                y1 - y0,
                Chart::y_of(target),
                Chart::y_of(target),
                RIGHT - 4.0,
                y0 - 3.0
            );
        }
        let yc = Chart::y_of(self.ceiling_dbtp);
        let _ = writeln!(
            s,
            "<line class=\"ceiling\" data-dbtp=\"{}\" x1=\"{LEFT}\" x2=\"{RIGHT}\" y1=\"{yc:.2}\" \
             y2=\"{yc:.2}\" stroke=\"#c22\" stroke-dasharray=\"3 3\"/>\n\
             <text x=\"{:.0}\" y=\"{:.2}\" fill=\"#c22\" text-anchor=\"end\">true-peak ceiling {} dBTP</text>",
            self.ceiling_dbtp,
            RIGHT - 4.0,
            yc - 3.0,
            self.ceiling_dbtp
        );
        self.axes(&mut s);
        s.push_str(&self.polyline("momentary", &self.momentary, "#9bd", 1.0));
        s.push_str(&self.polyline("short-term", &self.short_term, "#137", 1.6));
        for (k, &p) in self.peaks_dbtp.iter().enumerate() {
            if f64::from(p) >= self.ceiling_dbtp - APPROACH_DB {
                let t = k as f64 * self.hop_s;
                let x = Chart::x_of(t, d);
                let _ = writeln!(
                    s,
                    "<line class=\"peak\" data-time-s=\"{t:.3}\" data-dbtp=\"{p:.2}\" x1=\"{x:.2}\" \
                     x2=\"{x:.2}\" y1=\"{TOP}\" y2=\"{:.2}\" stroke=\"#c22\"/>",
                    TOP + 6.0
                );
            }
        }
        let _ = writeln!(
            s,
            "<text x=\"{LEFT}\" y=\"{:.0}\"><tspan fill=\"#137\">— short-term (3 s)</tspan> \
             <tspan fill=\"#9bd\">— momentary (0.4 s)</tspan> <tspan fill=\"#c22\">| peak within \
             {APPROACH_DB} dB of the ceiling</tspan> <tspan fill=\"#999\">▮ pause over the limit</tspan>{}{}</text>",
            HEIGHT - 6.0,
            if self.removed.is_empty() { "" } else { " <tspan fill=\"#d88\">▮ cut by podstitch</tspan>" },
            if self.parts.len() > 1 { " <tspan fill=\"#cb0\">▮ crossfade</tspan>" } else { "" }
        );
        s
    }

    fn axes(&self, s: &mut String) {
        let _ = writeln!(
            s,
            "<rect x=\"{LEFT}\" y=\"{TOP}\" width=\"{:.0}\" height=\"{:.0}\" fill=\"none\" stroke=\"#888\"/>",
            RIGHT - LEFT,
            BOTTOM - TOP
        );
        let mut db = -50.0;
        while db <= 0.0 {
            let y = Chart::y_of(db);
            let _ = writeln!(
                s,
                "<line x1=\"{:.0}\" x2=\"{LEFT}\" y1=\"{y:.2}\" y2=\"{y:.2}\" stroke=\"#888\"/>\
                 <text x=\"{:.0}\" y=\"{:.2}\" text-anchor=\"end\">{db}</text>",
                LEFT - 4.0,
                LEFT - 6.0,
                y + 4.0
            );
            db += 10.0;
        }
        let _ = writeln!(
            s,
            "<text x=\"12\" y=\"{:.0}\" transform=\"rotate(-90 12 {:.0})\" text-anchor=\"middle\">dB (LUFS, dBTP)</text>",
            (TOP + BOTTOM) / 2.0,
            (TOP + BOTTOM) / 2.0
        );
        // About ten time ticks at a round step.
        let d = self.duration_s.max(1e-9);
        let step = [
            1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0,
        ]
        .into_iter()
        .find(|&st| d / st <= 12.0)
        .unwrap_or(3600.0);
        let mut t = 0.0;
        while t <= d + 1e-9 {
            let x = Chart::x_of(t, d);
            let label = if step >= 60.0 {
                format!("{}:{:02}", (t / 60.0) as u64, (t % 60.0) as u64)
            } else {
                format!("{t} s")
            };
            let _ = writeln!(
                s,
                "<line x1=\"{x:.2}\" x2=\"{x:.2}\" y1=\"{BOTTOM}\" y2=\"{:.0}\" stroke=\"#888\"/>\
                 <text x=\"{x:.2}\" y=\"{:.0}\" text-anchor=\"middle\">{label}</text>",
                BOTTOM + 4.0,
                BOTTOM + 15.0
            );
            t += step;
        }
    }

    /// A series as a polyline; values under the floor sit on it.
    fn polyline(&self, class: &str, values: &[f32], colour: &str, width: f64) -> String {
        let mut points = String::with_capacity(values.len() * 14);
        for (k, &v) in values.iter().enumerate() {
            // Value k describes the window ending at (k + 1) hops.
            let t = (k + 1) as f64 * self.hop_s;
            let db = if v.is_finite() {
                f64::from(v)
            } else {
                FLOOR_DB
            };
            let _ = write!(
                points,
                "{:.1},{:.1} ",
                Chart::x_of(t, self.duration_s),
                Chart::y_of(db)
            );
        }
        format!(
            "<polyline class=\"{class}\" points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"{width}\"/>\n",
            points.trim_end()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_map_the_ends_of_the_axes() {
        assert_eq!(Chart::x_of(0.0, 10.0), LEFT);
        assert_eq!(Chart::x_of(10.0, 10.0), RIGHT);
        assert_eq!(Chart::x_of(20.0, 10.0), RIGHT, "clamped");
        assert_eq!(Chart::y_of(FLOOR_DB), BOTTOM);
        assert_eq!(Chart::y_of(TOP_DB), TOP);
        assert!((Chart::y_of(-16.0) - (BOTTOM - (BOTTOM - TOP) * 34.0 / 53.0)).abs() < 1e-9);
    }

    #[test]
    fn marks_only_the_peaks_that_approach_the_ceiling() {
        let chart = Chart {
            title: "a <b> & \"c\"".into(),
            duration_s: 1.0,
            hop_s: 0.1,
            short_term: vec![-20.0; 10],
            momentary: vec![f32::NEG_INFINITY; 10],
            peaks_dbtp: vec![-6.0, -0.5, -1.2, 0.4, -0.99, -30.0, -1.0, -1.01, -2.0, -3.0],
            target: Some((-16.0, 1.0)),
            ceiling_dbtp: 0.0,
            pauses: vec![TimeSpan {
                start_s: 0.2,
                duration_s: 0.3,
            }],
            ..Chart::default()
        };
        let svg = chart.to_svg();
        assert_eq!(
            svg.matches("class=\"peak\"").count(),
            4,
            "-0.5, 0.4, -0.99, -1.0"
        );
        assert!(svg.contains("a &lt;b&gt; &amp; &quot;c&quot;"));
        assert_eq!(svg.matches("class=\"pause\"").count(), 1);
        assert!(svg.contains("data-start-s=\"0.200\""));
    }
}
