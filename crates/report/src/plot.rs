//! Plots (PNG and SVG) with an embedded font (DejaVu Sans), so nothing
//! depends on the fonts installed on the machine.

use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::{Error, Result};

/// What a drawing backend said, as an error source.
fn plot_error(target: String) -> impl FnOnce(String) -> Error {
    move |message| Error::Plot {
        target,
        source: message.into(),
    }
}

static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

fn font() {
    REGISTER.call_once(|| {
        // The embedded font is a valid TrueType file; failure would only
        // mean text is not drawn.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// One series of a line chart: `(x, y, optional ± error)` points.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend label.
    pub label: String,
    /// Points.
    pub points: Vec<(f64, f64, Option<f64>)>,
}

/// What to draw.
#[derive(Debug, Clone, PartialEq)]
pub enum Chart {
    /// A histogram of values in `bins` bins.
    Histogram {
        /// The values.
        values: Vec<f64>,
        /// Number of bins.
        bins: usize,
    },
    /// Labelled groups of points (e.g. kinds of documents).
    Scatter {
        /// `(label, points)` per group.
        groups: Vec<(String, Vec<(f64, f64)>)>,
    },
    /// Lines with optional error bars; optionally log-scaled axes.
    Lines {
        /// The series.
        series: Vec<Series>,
        /// Log-scale both axes (e.g. ROC curves at low FPR).
        log: bool,
        /// A dashed diagonal `y = x` (chance on a ROC curve).
        diagonal: bool,
    },
    /// Small charts side by side, `columns` to a row, each with its own
    /// labels (panels inside panels are not drawn).
    Panels {
        /// `(labels, chart)` per panel.
        panels: Vec<(Labels, Chart)>,
        /// Panels per row.
        columns: usize,
    },
}

impl Chart {
    /// The picture's size in pixels: 800 × 560, or 400 × 300 per panel.
    pub fn size(&self) -> (u32, u32) {
        match self {
            Chart::Panels { panels, columns } => {
                let cols = (*columns).clamp(1, panels.len().max(1));
                let rows = panels.len().div_ceil(cols).max(1);
                (400 * cols as u32, 300 * rows as u32)
            }
            _ => (800, 560),
        }
    }
}

/// Titles and labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Labels {
    /// Title.
    pub title: String,
    /// x-axis label.
    pub x: String,
    /// y-axis label.
    pub y: String,
}

const COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(127, 127, 127),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

fn range(values: impl Iterator<Item = f64>, pad: f64) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if hi - lo < 1e-12 {
        return (lo - 0.5, hi + 0.5);
    }
    let p = (hi - lo) * pad;
    (lo - p, hi + p)
}

/// A chart with the caption, margins and labelled mesh every plot shares.
macro_rules! frame {
    ($root:expr, $labels:expr, $x:expr, $y:expr, $e:expr) => {{
        let mut c = ChartBuilder::on($root)
            .caption($labels.title.as_str(), ("sans-serif", 22))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(55)
            .build_cartesian_2d($x, $y)
            .map_err($e)?;
        c.configure_mesh()
            .x_desc($labels.x.as_str())
            .y_desc($labels.y.as_str())
            .label_style(("sans-serif", 14))
            .draw()
            .map_err($e)?;
        c
    }};
}

/// The legend box every plot shares.
macro_rules! legend {
    ($chart:expr, $pos:expr, $e:expr) => {
        $chart
            .configure_series_labels()
            .position($pos)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .draw()
            .map_err($e)?
    };
}

/// One series as a labelled line of width 2, with its legend entry.
macro_rules! line {
    ($chart:expr, $series:expr, $color:expr, $points:expr, $e:expr) => {
        $chart
            .draw_series(LineSeries::new($points, $color.stroke_width(2)))
            .map_err($e)?
            .label($series.label.as_str())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], $color.stroke_width(2)))
    };
}

type Drawn = std::result::Result<(), String>;

fn draw<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, chart: &Chart, labels: &Labels) -> Drawn {
    let e = |x: DrawingAreaErrorKind<DB::ErrorType>| x.to_string();
    root.fill(&WHITE).map_err(e)?;
    if let Chart::Panels { panels, columns } = chart {
        let cols = (*columns).clamp(1, panels.len().max(1));
        let rows = panels.len().div_ceil(cols).max(1);
        let areas = root.split_evenly((rows, cols));
        for ((l, c), area) in panels.iter().zip(&areas) {
            draw_one(area, c, l)?;
        }
    } else {
        draw_one(&root, chart, labels)?;
    }
    root.present().map_err(e)?;
    Ok(())
}

fn draw_one<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    chart: &Chart,
    labels: &Labels,
) -> Drawn {
    let root = root.clone();
    match chart {
        Chart::Histogram { values, bins } => histogram(&root, labels, values, *bins)?,
        Chart::Scatter { groups } => scatter(&root, labels, groups)?,
        Chart::Lines {
            series,
            log: true,
            diagonal,
        } => log_lines(&root, labels, series, *diagonal)?,
        Chart::Lines {
            series,
            log: false,
            diagonal,
        } => lines(&root, labels, series, *diagonal)?,
        Chart::Panels { .. } => {}
    }
    Ok(())
}

fn histogram<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    labels: &Labels,
    values: &[f64],
    bins: usize,
) -> Drawn {
    let e = |x: DrawingAreaErrorKind<DB::ErrorType>| x.to_string();
    let bins = bins.max(1);
    let (lo, hi) = range(values.iter().copied(), 0.0);
    let width = (hi - lo) / bins as f64;
    let mut counts = vec![0u32; bins];
    for v in values.iter().filter(|v| v.is_finite()) {
        let b = (((v - lo) / width) as usize).min(bins - 1);
        counts[b] += 1;
    }
    let top = f64::from(counts.iter().copied().max().unwrap_or(1)) * 1.1;
    let mut c = frame!(root, labels, lo..hi, 0.0..top, e);
    c.draw_series(counts.iter().enumerate().map(|(i, &n)| {
        let x0 = lo + i as f64 * width;
        Rectangle::new(
            [(x0, 0.0), (x0 + width, f64::from(n))],
            COLORS[0].mix(0.7).filled(),
        )
    }))
    .map_err(e)?;
    Ok(())
}

fn scatter<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    labels: &Labels,
    groups: &[(String, Vec<(f64, f64)>)],
) -> Drawn {
    let e = |x: DrawingAreaErrorKind<DB::ErrorType>| x.to_string();
    let (x0, x1) = range(groups.iter().flat_map(|g| g.1.iter().map(|p| p.0)), 0.05);
    let (y0, y1) = range(groups.iter().flat_map(|g| g.1.iter().map(|p| p.1)), 0.05);
    let mut c = frame!(root, labels, x0..x1, y0..y1, e);
    for (k, (label, pts)) in groups.iter().enumerate() {
        let color = COLORS[k % COLORS.len()];
        c.draw_series(
            pts.iter()
                .map(|&(x, y)| Circle::new((x, y), 3, color.mix(0.8).filled())),
        )
        .map_err(e)?
        .label(label.as_str())
        .legend(move |(x, y)| Circle::new((x, y), 4, color.filled()));
    }
    legend!(c, SeriesLabelPosition::UpperRight, e);
    Ok(())
}

/// Lines on log–log axes over (0, 1] (ROC curves).
fn log_lines<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    labels: &Labels,
    series: &[Series],
    diagonal: bool,
) -> Drawn {
    let e = |x: DrawingAreaErrorKind<DB::ErrorType>| x.to_string();
    let pos = |v: f64| v.max(1e-4);
    let mut c = frame!(
        root,
        labels,
        (1e-4..1.0).log_scale(),
        (1e-4..1.0).log_scale(),
        e
    );
    if diagonal {
        c.draw_series(LineSeries::new([(1e-4, 1e-4), (1.0, 1.0)], BLACK.mix(0.4)))
            .map_err(e)?;
    }
    for (k, s) in series.iter().enumerate() {
        let color = COLORS[k % COLORS.len()];
        line!(
            c,
            s,
            color,
            s.points.iter().map(|p| (pos(p.0), pos(p.1))),
            e
        );
    }
    legend!(c, SeriesLabelPosition::LowerRight, e);
    Ok(())
}

/// Lines with points and error bars on linear axes.
fn lines<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    labels: &Labels,
    series: &[Series],
    diagonal: bool,
) -> Drawn {
    let e = |x: DrawingAreaErrorKind<DB::ErrorType>| x.to_string();
    let xs = series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let ys = series.iter().flat_map(|s| {
        s.points
            .iter()
            .flat_map(|p| [p.1 - p.2.unwrap_or(0.0), p.1 + p.2.unwrap_or(0.0)])
    });
    let (x0, x1) = range(xs, 0.05);
    let (y0, y1) = range(ys, 0.1);
    let mut c = frame!(root, labels, x0..x1, y0..y1, e);
    if diagonal {
        let (a, b) = (x0.max(y0), x1.min(y1));
        c.draw_series(LineSeries::new([(a, a), (b, b)], BLACK.mix(0.4)))
            .map_err(e)?;
    }
    for (k, s) in series.iter().enumerate() {
        let color = COLORS[k % COLORS.len()];
        line!(c, s, color, s.points.iter().map(|p| (p.0, p.1)), e);
        c.draw_series(
            s.points
                .iter()
                .map(|p| Circle::new((p.0, p.1), 4, color.filled())),
        )
        .map_err(e)?;
        c.draw_series(s.points.iter().filter_map(|p| {
            p.2.map(|err| {
                ErrorBar::new_vertical(p.0, p.1 - err, p.1, p.1 + err, color.stroke_width(2), 8)
            })
        }))
        .map_err(e)?;
    }
    legend!(c, SeriesLabelPosition::UpperRight, e);
    Ok(())
}

/// Draw `chart` to `STEM.png` and `STEM.svg` ([`Chart::size`]); returns both paths.
///
/// # Errors
/// [`Error::Plot`] naming the file that could not be written.
pub fn plot(stem: &Path, chart: &Chart, labels: &Labels) -> Result<Vec<PathBuf>> {
    font();
    let png = stem.with_extension("png");
    let svg = stem.with_extension("svg");
    draw(
        BitMapBackend::new(&png, chart.size()).into_drawing_area(),
        chart,
        labels,
    )
    .map_err(plot_error(png.display().to_string()))?;
    draw(
        SVGBackend::new(&svg, chart.size()).into_drawing_area(),
        chart,
        labels,
    )
    .map_err(plot_error(svg.display().to_string()))?;
    Ok(vec![png, svg])
}

/// Draw `chart` as an SVG document ([`Chart::size`]), e.g. to inline in HTML.
///
/// # Errors
/// [`Error::Plot`].
pub fn svg(chart: &Chart, labels: &Labels) -> Result<String> {
    font();
    let mut out = String::new();
    draw(
        SVGBackend::with_string(&mut out, chart.size()).into_drawing_area(),
        chart,
        labels,
    )
    .map_err(plot_error(labels.title.clone()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_png_and_svg_with_text() {
        let dir = std::env::temp_dir().join(format!("cfmem-plot-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let labels = Labels {
            title: "Memorization".into(),
            x: "mem".into(),
            y: "documents".into(),
        };
        let files = plot(
            &dir.join("hist"),
            &Chart::Histogram {
                values: vec![0.1, 0.2, 0.2, 0.5],
                bins: 5,
            },
            &labels,
        )
        .unwrap();
        let png = std::fs::read(&files[0]).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        let svg = std::fs::read_to_string(&files[1]).unwrap();
        assert!(svg.contains("Memorization"));
        let roc = Chart::Lines {
            series: vec![Series {
                label: "online".into(),
                points: vec![(0.0, 0.0, None), (0.01, 0.2, None), (1.0, 1.0, None)],
            }],
            log: true,
            diagonal: true,
        };
        plot(&dir.join("roc"), &roc, &labels).unwrap();
        // Three panels, two to a row: 800 × 600, every panel's title drawn.
        let panel = |t: &str| {
            (
                Labels {
                    title: t.into(),
                    ..labels.clone()
                },
                Chart::Scatter {
                    groups: vec![("docs".into(), vec![(0.0, 1.0), (1.0, 2.0)])],
                },
            )
        };
        let panels = Chart::Panels {
            panels: vec![panel("first"), panel("second"), panel("third")],
            columns: 2,
        };
        assert_eq!(panels.size(), (800, 600));
        let s = super::svg(&panels, &labels).unwrap();
        assert!(s.contains("first") && s.contains("second") && s.contains("third"));
        assert!(
            s.contains("width=\"800\"") && s.contains("height=\"600\""),
            "{}",
            &s[..200]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
