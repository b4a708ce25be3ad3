//! SVG scatter plots of a sweep's rows (plotters' SVG backend: no fonts, no system libraries).
//! Each block is one series, each point is labelled with its axis values; the area/throughput
//! plot draws the Pareto front (no other point is both smaller and faster).

use plotters::prelude::*;

use super::report::numeric;
use super::spec::{PlotSpec, Sweep};
use super::Row;

const COLORS: [RGBColor; 6] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
];

fn spec(x: &str, y: &str, log_x: bool, pareto: bool, name: &str) -> PlotSpec {
    PlotSpec { x: x.into(), y: y.into(), log_x, log_y: false, pareto, name: Some(name.into()) }
}

/// The default plots that have data, then the sweep file's own.
pub fn plots(sweep: &Sweep, rows: &[Row]) -> Vec<(String, String)> {
    let has = |x: &str, y: &str| rows.iter().filter(|r| r.ok() && numeric(r, x).is_some() && numeric(r, y).is_some()).count();
    let mut specs = vec![];
    if has("cells", "throughput") > 0 {
        specs.push(spec("cells", "throughput", true, true, "area_vs_throughput"));
        specs.push(spec("cells", "throughput_per_kcell", true, false, "throughput_per_area"));
    }
    if has("ice40_lut4", "fmax_mhz") > 0 {
        specs.push(spec("ice40_lut4", "fmax_mhz", true, false, "fmax_vs_lut4"));
    }
    let mut errs: Vec<u64> = rows.iter().filter_map(|r| r.layer_err_kmeans.map(f64::to_bits)).collect();
    errs.sort();
    errs.dedup();
    if errs.len() >= 2 && has("cells", "layer_err_kmeans") > 0 {
        specs.push(spec("cells", "layer_err_kmeans", true, false, "error_vs_area"));
    }
    specs.extend(sweep.plots.iter().cloned());
    specs
        .iter()
        .filter_map(|s| {
            let name = s.name.clone().unwrap_or_else(|| format!("{}_vs_{}", s.y, s.x));
            scatter(sweep, rows, s).map(|svg| (format!("{name}.svg"), svg))
        })
        .collect()
}

fn axis_label(col: &str, rows: &[Row]) -> String {
    match col {
        "throughput" | "throughput_per_kcell" | "throughput_per_mtransistor" => {
            let unit = rows.iter().map(|r| r.throughput_unit.as_str()).find(|u| !u.is_empty()).unwrap_or("work/cycle");
            match col {
                "throughput" => format!("throughput ({unit})"),
                "throughput_per_kcell" => format!("throughput per 1000 cells ({unit})"),
                _ => format!("throughput per 10^6 transistors ({unit})"),
            }
        }
        "cells" => "Yosys generic cells".into(),
        "fmax_mhz" => "iCE40-HX8K Fmax (MHz)".into(),
        "ice40_lut4" => "iCE40 LUT4".into(),
        "layer_err_kmeans" => "layer rel. L2 error, K-Means".into(),
        other => other.replace('_', " "),
    }
}

/// Points with the smallest x for their y: walking up in x, keep a point only if its y beats
/// every point before it.
pub fn pareto_front(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut p = points.to_vec();
    p.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.total_cmp(&a.1)));
    let mut front: Vec<(f64, f64)> = vec![];
    for q in p {
        if front.last().is_none_or(|l| q.1 > l.1) {
            front.push(q);
        }
    }
    front
}

fn scatter(sweep: &Sweep, rows: &[Row], s: &PlotSpec) -> Option<String> {
    let tf = |v: f64, log: bool| if log { v.max(1e-12).log10() } else { v };
    let mut series: Vec<(String, Vec<(f64, f64, String)>)> = vec![];
    for r in rows.iter().filter(|r| r.ok()) {
        let (Some(x), Some(y)) = (numeric(r, &s.x), numeric(r, &s.y)) else { continue };
        if (s.log_x && x <= 0.0) || (s.log_y && y <= 0.0) {
            continue;
        }
        let label = r.axes.iter().map(|(_, v)| v.as_str()).collect::<Vec<_>>().join("/");
        let p = (tf(x, s.log_x), tf(y, s.log_y), label);
        match series.iter_mut().find(|(b, _)| *b == r.block) {
            Some((_, pts)) => pts.push(p),
            None => series.push((r.block.clone(), vec![p])),
        }
    }
    let all: Vec<(f64, f64)> = series.iter().flat_map(|(_, p)| p.iter().map(|q| (q.0, q.1))).collect();
    if all.is_empty() {
        return None;
    }
    let pad = |lo: f64, hi: f64| {
        let span = if hi > lo { hi - lo } else { lo.abs().max(1.0) };
        (lo - 0.08 * span, hi + 0.12 * span)
    };
    let (x0, x1) = pad(all.iter().map(|p| p.0).fold(f64::INFINITY, f64::min), all.iter().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max));
    let (y0, y1) = pad(all.iter().map(|p| p.1).fold(f64::INFINITY, f64::min), all.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max));
    let (y0, y1) = if !s.log_y && y0 > 0.0 && y0 < 0.3 * y1 { (0.0, y1) } else { (y0, y1) };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (760, 520)).into_drawing_area();
        root.fill(&WHITE).ok()?;
        let title = format!("{}: {} vs {}", sweep.name, axis_label(&s.y, rows), axis_label(&s.x, rows));
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(14)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(x0..x1, y0..y1)
            .ok()?;
        let fmt = |log: bool| {
            move |v: &f64| {
                let v = if log { 10f64.powf(*v) } else { *v };
                if v.abs() >= 1e4 {
                    format!("{:.0}k", v / 1e3)
                } else if v.abs() >= 10.0 {
                    format!("{v:.0}")
                } else {
                    format!("{v:.2}")
                }
            }
        };
        let (fx, fy) = (fmt(s.log_x), fmt(s.log_y));
        let log_note = |log: bool| if log { " (log scale)" } else { "" };
        chart
            .configure_mesh()
            .x_desc(format!("{}{}", axis_label(&s.x, rows), log_note(s.log_x)))
            .y_desc(format!("{}{}", axis_label(&s.y, rows), log_note(s.log_y)))
            .x_label_formatter(&fx)
            .y_label_formatter(&fy)
            .draw()
            .ok()?;
        if s.pareto {
            let front = pareto_front(&all);
            chart
                .draw_series(LineSeries::new(front, BLACK.mix(0.5).stroke_width(1)))
                .ok()?
                .label("Pareto front")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLACK.mix(0.5)));
        }
        for (i, (block, pts)) in series.iter().enumerate() {
            let c = COLORS[i % COLORS.len()];
            chart
                .draw_series(pts.iter().map(|p| Circle::new((p.0, p.1), 5, c.filled())))
                .ok()?
                .label(block.clone())
                .legend(move |(x, y)| Circle::new((x + 8, y), 5, c.filled()));
            chart
                .draw_series(pts.iter().map(|p| {
                    Text::new(p.2.clone(), (p.0, p.1), ("sans-serif", 11).into_font().color(&c).pos(
                        plotters::style::text_anchor::Pos::new(
                            plotters::style::text_anchor::HPos::Left,
                            plotters::style::text_anchor::VPos::Bottom,
                        ),
                    ))
                }))
                .ok()?;
        }
        chart.configure_series_labels().border_style(BLACK).background_style(WHITE.mix(0.8)).draw().ok()?;
        root.present().ok()?;
    }
    Some(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pareto_front_keeps_only_undominated_points() {
        let pts = [(10.0, 1.0), (20.0, 3.0), (15.0, 0.5), (30.0, 2.0), (40.0, 5.0), (10.0, 1.5)];
        assert_eq!(pareto_front(&pts), vec![(10.0, 1.5), (20.0, 3.0), (40.0, 5.0)]);
    }
}
