//! Charts as PNG (plotters, bitmap backend): loss curves and trade-off scatters for the docs.
use std::path::Path;
use std::sync::Once;

use plotters::prelude::*;

use crate::TrainingError;

/// Axis label font and size, shared by every chart.
const LABEL_STYLE: (&str, u32) = ("sans-serif", 15);

/// The font for labels: `STYLEGRAM_FONT`, else Debian's DejaVu Sans (package fonts-dejavu-core).
const DEFAULT_FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

fn register_font() -> Result<(), TrainingError> {
    static ONCE: Once = Once::new();
    let path = std::env::var("STYLEGRAM_FONT").unwrap_or_else(|_| DEFAULT_FONT.to_owned());
    let bytes = std::fs::read(&path).map_err(|e| TrainingError::InvalidConfig(format!(
        "cannot read the plot font {path}: {e}; install fonts-dejavu-core or set STYLEGRAM_FONT to a .ttf file"
    )))?;
    ONCE.call_once(|| {
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, bytes);
    });
    Ok(())
}

fn plot_error(path: &Path, e: impl std::fmt::Display) -> TrainingError {
    TrainingError::InvalidConfig(format!("cannot draw {}: {e}", path.display()))
}

/// One labelled point of a scatter.
#[derive(Debug, Clone)]
pub struct Point {
    /// Shown next to the point.
    pub label: String,
    /// Horizontal value.
    pub x: f64,
    /// Vertical value.
    pub y: f64,
}

/// Indices of the points not dominated by any other (lower-or-equal x and y, one strictly lower),
/// sorted by x: the trade-off curve when both axes are costs.
pub fn pareto_front(points: &[Point]) -> Vec<usize> {
    let mut front: Vec<usize> = (0..points.len())
        .filter(|&i| {
            !points.iter().any(|q| {
                let p = &points[i];
                q.x <= p.x && q.y <= p.y && (q.x < p.x || q.y < p.y)
            })
        })
        .collect();
    front.sort_by(|&a, &b| points[a].x.total_cmp(&points[b].x));
    front
}

/// A scatter (log-scale x) with the Pareto front drawn as a line and its points in red.
pub fn pareto_scatter(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    points: &[Point],
) -> Result<(), TrainingError> {
    register_font()?;
    let err = |e| plot_error(path, e);
    let root = BitMapBackend::new(path, (900, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let (x_min, x_max) = points
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.x), b.max(p.x)));
    let (y_min, y_max) = points
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.y), b.max(p.y)));
    let pad = (y_max - y_min).max(1e-9) * 0.08;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 24))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(
            (x_min * 0.8..x_max * 1.25).log_scale(),
            (y_min - pad)..(y_max + pad),
        )
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .label_style(LABEL_STYLE)
        .draw()
        .map_err(err)?;
    let front = pareto_front(points);
    chart
        .draw_series(LineSeries::new(
            front.iter().map(|&i| (points[i].x, points[i].y)),
            RED.stroke_width(2),
        ))
        .map_err(err)?
        .label("Pareto front")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED.stroke_width(2)));
    for (i, p) in points.iter().enumerate() {
        let color = if front.contains(&i) { RED } else { BLUE };
        chart
            .draw_series(std::iter::once(
                EmptyElement::at((p.x, p.y))
                    + Circle::new((0, 0), 5, color.filled())
                    + Text::new(p.label.clone(), (7, -7), ("sans-serif", 13).into_font()),
            ))
            .map_err(err)?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

/// Line chart of several named series (x linear, y log scale), e.g. loss against time.
pub fn log_lines(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(String, Vec<(f64, f64)>)],
) -> Result<(), TrainingError> {
    register_font()?;
    let err = |e| plot_error(path, e);
    let all = || {
        series
            .iter()
            .flat_map(|(_, s)| s.iter())
            .filter(|(_, y)| *y > 0.0 && y.is_finite())
    };
    let x_max = all().map(|p| p.0).fold(0.0, f64::max).max(1e-9);
    let (y_min, y_max) = all().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
    if y_min > y_max {
        return Err(plot_error(path, "no positive values to plot"));
    }
    let root = BitMapBackend::new(path, (900, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 24))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..x_max * 1.02, (y_min * 0.9..y_max * 1.1).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .label_style(LABEL_STYLE)
        .draw()
        .map_err(err)?;
    for (i, (name, points)) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(
                points.iter().copied().filter(|(_, y)| *y > 0.0),
                color.stroke_width(2),
            ))
            .map_err(err)?
            .label(name.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pareto_front_keeps_only_undominated_points() {
        let p = |x, y| Point {
            label: String::new(),
            x,
            y,
        };
        let points = [
            p(1.0, 10.0),
            p(2.0, 5.0),
            p(3.0, 6.0),
            p(4.0, 1.0),
            p(2.0, 5.0),
        ];
        // (3, 6) is dominated by (2, 5); the duplicate (2, 5) dominates nothing strictly and stays.
        assert_eq!(pareto_front(&points), [0, 1, 4, 3]);
    }
}
