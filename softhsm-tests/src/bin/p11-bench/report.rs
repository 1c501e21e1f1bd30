//! Medians, the Markdown table and the SVG chart.

use std::fmt::Write;

/// Median, minimum and maximum of a sample.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct Stats {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Stats {
    pub fn of(values: &[f64]) -> Stats {
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n == 0 {
            f64::NAN
        } else if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Stats {
            median,
            min: v.first().copied().unwrap_or(f64::NAN),
            max: v.last().copied().unwrap_or(f64::NAN),
        }
    }
}

/// One (operation, threads) line of results.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Line {
    pub op: &'static str,
    pub threads: usize,
    /// Per module: ops/s of each round.
    pub direct: Vec<f64>,
    pub shim: Vec<f64>,
    pub spy: Vec<f64>,
    /// Per module: CPU microseconds per operation of each round.
    pub cpu_direct: Vec<f64>,
    pub cpu_shim: Vec<f64>,
    pub cpu_spy: Vec<f64>,
}

impl Line {
    /// Ratios paired within each round, so drift between rounds cancels.
    fn ratios(a: &[f64], b: &[f64]) -> Vec<f64> {
        a.iter().zip(b).map(|(x, y)| x / y).collect()
    }
    pub fn shim_ratio(&self) -> Option<Stats> {
        (!self.shim.is_empty() && !self.direct.is_empty())
            .then(|| Stats::of(&Self::ratios(&self.shim, &self.direct)))
    }
    pub fn spy_ratio(&self) -> Option<Stats> {
        (!self.spy.is_empty() && !self.direct.is_empty())
            .then(|| Stats::of(&Self::ratios(&self.spy, &self.direct)))
    }
    /// The issue's target for shim/direct.
    pub fn target(&self) -> f64 {
        let cheap = matches!(self.op, "random" | "digest");
        match (self.threads, cheap) {
            (1, true) => 0.95,
            (1, false) => 0.99,
            (_, true) => 0.85,
            (_, false) => 0.97,
        }
    }
}

fn rate(v: &[f64]) -> String {
    if v.is_empty() {
        return "–".into();
    }
    let s = Stats::of(v);
    format!("{:.0}", s.median)
}

fn ratio(s: Option<Stats>) -> String {
    s.map_or("–".into(), |s| {
        format!("**{:.3}** ({:.3}–{:.3})", s.median, s.min, s.max)
    })
}

/// CPU per operation: the cost that does not depend on how busy the machine is.
pub fn cpu_markdown(lines: &[Line]) -> String {
    let mut out = String::from(
        "| operation | threads | direct CPU µs/op | shim CPU µs/op | spy CPU µs/op | shim − direct µs/op | shim − direct per call (µs) |\n|---|---:|---:|---:|---:|---:|---:|\n",
    );
    let med = |v: &[f64]| Stats::of(v).median;
    for l in lines {
        let calls = crate::worker::Op::ALL
            .iter()
            .find(|o| o.name() == l.op)
            .map_or(1, |o| o.calls()) as f64;
        let fmt = |v: &[f64]| {
            if v.is_empty() {
                "–".to_owned()
            } else {
                format!("{:.2}", med(v))
            }
        };
        let extra = if l.cpu_shim.is_empty() || l.cpu_direct.is_empty() {
            ("–".to_owned(), "–".to_owned())
        } else {
            let d = med(&l.cpu_shim) - med(&l.cpu_direct);
            (format!("{d:.2}"), format!("{:.2}", d / calls))
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            l.op,
            l.threads,
            fmt(&l.cpu_direct),
            fmt(&l.cpu_shim),
            fmt(&l.cpu_spy),
            extra.0,
            extra.1
        );
    }
    out
}

pub fn markdown(lines: &[Line], rounds: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| operation | threads | direct ops/s | shim ops/s | spy ops/s | shim/direct median (min–max) | target | spy/direct median (min–max) |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---|---:|---|");
    for l in lines {
        let target = l.target();
        let met = match l.shim_ratio() {
            Some(s) if s.median >= target => "met",
            Some(_) => "**missed**",
            None => "",
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | ≥ {target} {met} | {} |",
            l.op,
            l.threads,
            rate(&l.direct),
            rate(&l.shim),
            rate(&l.spy),
            ratio(l.shim_ratio()),
            ratio(l.spy_ratio()),
        );
    }
    let _ = writeln!(
        out,
        "\nops/s: median of {rounds} rounds; ratios: median (min–max) of the per-round ratios."
    );
    out
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;")
}

/// Grouped bars of shim/direct and spy/direct per (operation, threads), with min–max
/// whiskers and the shim's target as a tick.
pub fn svg(lines: &[Line], title: &str) -> String {
    let (w, h) = (100.0 + lines.len() as f64 * 70.0, 420.0);
    let (left, top, bottom) = (60.0, 50.0, 360.0);
    let ymax = 1.1;
    let y = |v: f64| bottom - (v.clamp(0.0, ymax) / ymax) * (bottom - top);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{left}" y="22" font-size="15">{}</text>"#,
        esc(title)
    );
    for i in 0..=11 {
        let v = i as f64 / 10.0;
        let _ = writeln!(
            s,
            r##"<line x1="{left}" x2="{x2}" y1="{gy}" y2="{gy}" stroke="#ddd"/><text x="{tx}" y="{ty}" text-anchor="end">{v:.1}</text>"##,
            x2 = w - 20.0,
            gy = y(v),
            tx = left - 6.0,
            ty = y(v) + 4.0
        );
    }
    let bar = |s: &mut String, x: f64, st: Stats, color: &str| {
        let _ = writeln!(
            s,
            r#"<rect x="{x}" y="{}" width="22" height="{}" fill="{color}"><title>{:.3} ({:.3}–{:.3})</title></rect>"#,
            y(st.median),
            bottom - y(st.median),
            st.median,
            st.min,
            st.max
        );
        let cx = x + 11.0;
        let _ = writeln!(
            s,
            r##"<line x1="{cx}" x2="{cx}" y1="{}" y2="{}" stroke="#222"/>"##,
            y(st.max),
            y(st.min)
        );
        let _ = writeln!(
            s,
            r#"<text x="{cx}" y="{}" text-anchor="middle" font-size="10">{:.2}</text>"#,
            y(st.max) - 4.0,
            st.median
        );
    };
    for (i, l) in lines.iter().enumerate() {
        let x0 = left + 15.0 + i as f64 * 70.0;
        if let Some(st) = l.shim_ratio() {
            bar(&mut s, x0, st, "#2b7bba");
            let t = y(l.target());
            let _ = writeln!(
                s,
                r##"<line x1="{}" x2="{}" y1="{t}" y2="{t}" stroke="#d62728" stroke-width="2"/>"##,
                x0 - 3.0,
                x0 + 25.0
            );
        }
        if let Some(st) = l.spy_ratio() {
            bar(&mut s, x0 + 24.0, st, "#f0a030");
        }
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">{}</text><text x="{0}" y="{}" text-anchor="middle">{} thr</text>"#,
            x0 + 23.0,
            bottom + 16.0,
            l.op,
            bottom + 30.0,
            l.threads
        );
    }
    let ly = h - 18.0;
    let (ry, ty) = (ly - 10.0, ly - 4.0);
    let legend = [
        (left, "#2b7bba", "shim / direct"),
        (left + 120.0, "#f0a030", "pkcs11-spy / direct"),
    ];
    for (x, color, label) in legend {
        let _ = writeln!(
            s,
            r#"<rect x="{x}" y="{ry}" width="12" height="12" fill="{color}"/><text x="{}" y="{ly}">{label}</text>"#,
            x + 16.0
        );
    }
    let _ = writeln!(
        s,
        r##"<line x1="{}" x2="{}" y1="{ty}" y2="{ty}" stroke="#d62728" stroke-width="2"/><text x="{}" y="{ly}">shim target</text><text x="{}" y="{ly}">bars: median; whiskers: min–max over rounds</text>"##,
        left + 270.0,
        left + 290.0,
        left + 296.0,
        left + 380.0
    );
    let _ = writeln!(s, "</svg>");
    s
}
