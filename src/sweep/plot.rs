//! SVG scatter plots of a sweep's rows (plotters' SVG backend: no fonts, no system libraries).
//! Each block is one series, each point is labelled with its axis values; the area/throughput
//! plot draws the Pareto front (no other point is both smaller and faster).

use plotters::coord::ranged1d::ValueFormatter;
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

/// Tick labels with as many decimals as the axis span needs.
fn tick_format(lo: f64, hi: f64) -> impl Fn(&f64) -> String {
    let span = (hi - lo).abs().max(1e-12);
    let decimals = (-(span / 5.0).log10().floor()).max(0.0) as usize;
    move |v: &f64| {
        let a = v.abs();
        if a >= 1e6 {
            format!("{:.1}M", v / 1e6)
        } else if a >= 1e4 {
            format!("{:.0}k", v / 1e3)
        } else {
            format!("{v:.decimals$}")
        }
    }
}

type Series = Vec<(String, Vec<(f64, f64, String)>)>;

/// The plot corner with the fewest points near it, for the legend box.
fn legend_corner(all: &[(f64, f64)], x: (f64, f64, bool), y: (f64, f64, bool)) -> SeriesLabelPosition {
    let norm = |v: f64, (lo, hi, log): (f64, f64, bool)| {
        if log { (v.ln() - lo.ln()) / (hi.ln() - lo.ln()) } else { (v - lo) / (hi - lo) }
    };
    let corners = [
        (SeriesLabelPosition::UpperLeft, 0.0, 1.0),
        (SeriesLabelPosition::UpperRight, 1.0, 1.0),
        (SeriesLabelPosition::LowerRight, 1.0, 0.0),
        (SeriesLabelPosition::LowerLeft, 0.0, 0.0),
    ];
    let crowd = |cx: f64, cy: f64| {
        all.iter()
            .filter(|p| (norm(p.0, x) - cx).abs() < 0.35 && (norm(p.1, y) - cy).abs() < 0.3)
            .count()
    };
    let best = corners.iter().min_by_key(|(_, cx, cy)| crowd(*cx, *cy)).expect("four corners");
    best.0.clone()
}

fn scatter(sweep: &Sweep, rows: &[Row], s: &PlotSpec) -> Option<String> {
    let mut series: Series = vec![];
    for r in rows.iter().filter(|r| r.ok()) {
        let (Some(x), Some(y)) = (numeric(r, &s.x), numeric(r, &s.y)) else { continue };
        if (s.log_x && x <= 0.0) || (s.log_y && y <= 0.0) {
            continue;
        }
        let label = r.axes.iter().map(|(_, v)| v.as_str()).collect::<Vec<_>>().join("/");
        match series.iter_mut().find(|(b, _)| *b == r.block) {
            Some((_, pts)) => pts.push((x, y, label)),
            None => series.push((r.block.clone(), vec![(x, y, label)])),
        }
    }
    let all: Vec<(f64, f64)> = series.iter().flat_map(|(_, p)| p.iter().map(|q| (q.0, q.1))).collect();
    if all.is_empty() {
        return None;
    }
    let lo_hi = |v: Vec<f64>, log: bool| {
        let (lo, hi) = (v.iter().cloned().fold(f64::INFINITY, f64::min), v.iter().cloned().fold(f64::NEG_INFINITY, f64::max));
        if log {
            // Half a decade of room on either side.
            let (lo, hi) = (lo / 1.5, hi * 1.5);
            (lo, if hi > lo { hi } else { lo * 10.0 })
        } else {
            let span = if hi > lo { hi - lo } else { lo.abs().max(1.0) };
            let lo = if lo > 0.0 && lo < 0.3 * hi { 0.0 } else { lo - 0.08 * span };
            (lo, hi + 0.12 * span)
        }
    };
    // A log axis over less than a decade gets one tick label at most: plot those linearly.
    let wide = |v: Vec<f64>| {
        let (lo, hi) = (v.iter().cloned().fold(f64::INFINITY, f64::min), v.iter().cloned().fold(f64::NEG_INFINITY, f64::max));
        hi >= 10.0 * lo
    };
    let mut s = s.clone();
    s.log_x &= wide(all.iter().map(|p| p.0).collect());
    s.log_y &= wide(all.iter().map(|p| p.1).collect());
    let s = &s;
    let (x0, x1) = lo_hi(all.iter().map(|p| p.0).collect(), s.log_x);
    let (y0, y1) = lo_hi(all.iter().map(|p| p.1).collect(), s.log_y);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (760, 520)).into_drawing_area();
        root.fill(&WHITE).ok()?;
        let title = format!("{}: {} vs {}", sweep.name, axis_label(&s.y, rows), axis_label(&s.x, rows));
        let mut builder = ChartBuilder::on(&root);
        builder.caption(title, ("sans-serif", 16)).margin(14).x_label_area_size(44).y_label_area_size(64);
        let log_note = |log: bool| if log { " (log scale)" } else { "" };
        let desc = (
            format!("{}{}", axis_label(&s.x, rows), log_note(s.log_x)),
            format!("{}{}", axis_label(&s.y, rows), log_note(s.log_y)),
        );
        let (fx, fy) = (tick_format(x0, x1), tick_format(y0, y1));
        let legend = legend_corner(&all, (x0, x1, s.log_x), (y0, y1, s.log_y));
        // plotters types a chart by its coordinate kinds, so each log/linear pair is its own call.
        match (s.log_x, s.log_y) {
            (false, false) => draw(builder.build_cartesian_2d(x0..x1, y0..y1).ok()?, &series, &all, s.pareto, legend, &desc, &fx, &fy)?,
            (true, false) => draw(builder.build_cartesian_2d((x0..x1).log_scale(), y0..y1).ok()?, &series, &all, s.pareto, legend, &desc, &fx, &fy)?,
            (false, true) => draw(builder.build_cartesian_2d(x0..x1, (y0..y1).log_scale()).ok()?, &series, &all, s.pareto, legend, &desc, &fx, &fy)?,
            (true, true) => draw(
                builder.build_cartesian_2d((x0..x1).log_scale(), (y0..y1).log_scale()).ok()?,
                &series,
                &all,
                s.pareto,
                legend,
                &desc,
                &fx,
                &fy,
            )?,
        }
        root.present().ok()?;
    }
    Some(svg)
}

fn draw<'a, X, Y>(
    mut chart: ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>,
    series: &Series,
    all: &[(f64, f64)],
    pareto: bool,
    legend: SeriesLabelPosition,
    desc: &(String, String),
    fx: &dyn Fn(&f64) -> String,
    fy: &dyn Fn(&f64) -> String,
) -> Option<()>
where
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    chart
        .configure_mesh()
        .light_line_style(WHITE)
        .x_labels(8)
        .y_labels(8)
        .x_desc(desc.0.as_str())
        .y_desc(desc.1.as_str())
        .x_label_formatter(fx)
        .y_label_formatter(fy)
        .draw()
        .ok()?;
    if pareto {
        chart
            .draw_series(LineSeries::new(pareto_front(all), BLACK.mix(0.5).stroke_width(1)))
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
        let font = ("sans-serif", 11).into_font().color(&c);
        // Labels sit up and to the right of their marker, in pixels, whatever the axis scales.
        chart
            .draw_series(pts.iter().map(|p| {
                EmptyElement::at((p.0, p.1)) + Text::new(p.2.clone(), (7, -14), font.clone())
            }))
            .ok()?;
    }
    chart
        .configure_series_labels()
        .position(legend)
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()
        .ok()?;
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pareto_front_keeps_only_undominated_points() {
        let pts = [(10.0, 1.0), (20.0, 3.0), (15.0, 0.5), (30.0, 2.0), (40.0, 5.0), (10.0, 1.5)];
        assert_eq!(pareto_front(&pts), vec![(10.0, 1.5), (20.0, 3.0), (40.0, 5.0)]);
    }

    #[test]
    fn plots_are_deterministic_svg_with_every_series_and_label() {
        let sweep = Sweep::parse(
            "[base]\npe_line = { k_max = 64, baseline = true }\n[axes]\n\"pe_line.lanes\" = [4, 8]\n",
            "t",
            std::path::Path::new("t.toml"),
        )
        .unwrap();
        let row = |point: usize, block: &str, cells: u64, tput: f64, err: f64| Row {
            point,
            axes: vec![("pe_line.lanes".into(), ["4", "8"][point].into())],
            block: block.into(),
            cells: Some(cells),
            throughput: Some(tput),
            throughput_unit: "MAC/cycle".into(),
            layer_err_kmeans: Some(err),
            ..Row::default()
        };
        let rows = vec![
            row(0, "pe_line", 5000, 3.9, 0.18),
            row(0, "dq_pe_line", 3000, 3.9, 0.18),
            row(1, "pe_line", 9000, 7.9, 0.19),
            row(1, "dq_pe_line", 6000, 7.9, 0.19),
        ];
        let a = plots(&sweep, &rows);
        let names: Vec<&str> = a.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["area_vs_throughput.svg", "throughput_per_area.svg", "error_vs_area.svg"]);
        let svg = &a[0].1;
        assert!(svg.starts_with("<svg") && svg.contains("dq_pe_line") && svg.contains("Pareto front"), "{svg}");
        assert!(svg.contains("\n4\n</text>") && svg.contains("\n8\n</text>"), "point labels missing: {svg}");
        assert_eq!(a, plots(&sweep, &rows), "same rows must give byte-identical plots");
        if let Ok(dir) = std::env::var("KLLM_PLOT_DIR") {
            for (n, t) in &a {
                std::fs::write(std::path::Path::new(&dir).join(n), t).unwrap();
            }
        }
    }
}
