//! Accuracy-over-stream curves (online accuracy, mean over the stream orders) as a PNG.
//!
//! Text needs a TrueType font: the first of [`FONT_PATHS`] that exists (Debian's
//! `fonts-dejavu-core`), or the file named by `TANDEM_FONT`.

use super::Report;
use anyhow::{bail, Context, Result};
use plotters::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Where a sans-serif TrueType font is looked for.
pub const FONT_PATHS: [&str; 3] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];

fn font_path() -> Option<PathBuf> {
    std::env::var_os("TANDEM_FONT")
        .map(PathBuf::from)
        .or_else(|| FONT_PATHS.iter().map(PathBuf::from).find(|p| p.exists()))
}

/// Register the font once for the process.
fn ensure_font() -> Result<()> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            let path = font_path().ok_or_else(|| {
                "--plot needs a TrueType font: install one with `apt-get install fonts-dejavu-core` \
                 or set TANDEM_FONT=/path/to/font.ttf"
                    .to_string()
            })?;
            let bytes = std::fs::read(&path).map_err(|e| format!("reading font {}: {e}", path.display()))?;
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
                .map_err(|_| format!("{} is not a usable TrueType font", path.display()))
        })
        .clone()
        .map_err(anyhow::Error::msg)
}

/// The mean online-accuracy curve of each method (its runs share sample positions).
fn mean_curves(report: &Report) -> Vec<(String, Vec<(f64, f64)>)> {
    report
        .arms
        .iter()
        .filter(|a| a.runs.iter().all(|r| !r.curve.is_empty()))
        .filter(|a| !a.runs.is_empty())
        .map(|a| {
            let points = a.runs.iter().map(|r| r.curve.len()).min().unwrap_or(0);
            let curve = (0..points)
                .map(|k| {
                    let seen = a.runs[0].curve[k].seen as f64;
                    let acc =
                        a.runs.iter().map(|r| r.curve[k].online_accuracy).sum::<f64>() / a.runs.len() as f64;
                    (seen, 100.0 * acc)
                })
                .collect();
            (a.method.clone(), curve)
        })
        .collect()
}

/// Draw the curves of `report` into a PNG at `path`.
pub fn draw(report: &Report, path: &Path) -> Result<()> {
    let curves = mean_curves(report);
    if curves.is_empty() {
        bail!("nothing to plot: the stream has no labels, so there is no online accuracy");
    }
    ensure_font()?;
    let x_max = curves.iter().flat_map(|(_, c)| c.iter().map(|p| p.0)).fold(1.0, f64::max);
    let y_min = curves.iter().flat_map(|(_, c)| c.iter().map(|p| p.1)).fold(100.0, f64::min);
    let y_lo = (y_min / 10.0).floor() * 10.0;
    let draw = || -> Result<(), Box<dyn std::error::Error>> {
        let root = BitMapBackend::new(path, (960, 600)).into_drawing_area();
        root.fill(&WHITE)?;
        let title =
            format!("online accuracy on {} (mean over {} stream orders)", report.target, report.seeds.len());
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(16)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(0.0..x_max, y_lo..100.0)?;
        chart
            .configure_mesh()
            .light_line_style(WHITE)
            .x_desc("target samples seen")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .y_desc("accuracy so far (%)")
            .label_style(("sans-serif", 14))
            .draw()?;
        for (i, (name, curve)) in curves.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(curve.iter().copied(), color.stroke_width(2)))?
                .label(name.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .position(SeriesLabelPosition::LowerRight)
            .draw()?;
        root.present()?;
        Ok(())
    };
    draw().map_err(|e| anyhow::anyhow!("drawing {}: {e}", path.display())).context("--plot")
}
