//! The warm-start study: how fast Gatys reaches preset 3's final objective when it starts from the
//! photo (preset 3 itself), from the fast model's picture, from a half-size optimum (a pyramid), or
//! from both. Same objective everywhere (the paper's, at full size); only the start moves. Each
//! variant runs as long as preset 3 took, and its objective is recorded against time.
use std::ops::ControlFlow;
use std::time::Duration;

use image::RgbImage;

use crate::TrainingError;
use stylegram_quality::gatys::{self, GatysConfig, Style};
use stylegram_quality::vgg::Vgg;

/// Iterations the pyramids spend at half size before the full-size scale.
pub const COARSE_ITERATIONS: usize = 60;

/// How a run starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Preset 3 as it ships: from the photo, one scale, until it converges.
    Photo,
    /// From the fast model's picture, one scale.
    Fast,
    /// From the photo at half size, then the optimum upsampled.
    Pyramid,
    /// From the fast model's picture at half size, then upsampled.
    FastPyramid,
}

impl Start {
    /// Every variant, the reference first.
    pub const ALL: [Start; 4] = [
        Start::Photo,
        Start::Fast,
        Start::Pyramid,
        Start::FastPyramid,
    ];

    /// The variant's name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Start::Photo => "photo (preset 3)",
            Start::Fast => "fast init",
            Start::Pyramid => "pyramid",
            Start::FastPyramid => "fast init + pyramid",
        }
    }

    fn uses_fast(self) -> bool {
        matches!(self, Start::Fast | Start::FastPyramid)
    }

    /// The knobs for this start at `size`, running for `budget` (none for the reference).
    pub fn config(self, size: u32, budget: Option<Duration>) -> GatysConfig {
        let preset = GatysConfig {
            size,
            ..gatys::preset(3).expect("preset 3 exists")
        };
        let open_ended = |scales: usize, coarse: usize| GatysConfig {
            scales,
            iterations: coarse + 100_000,
            final_iterations: Some(100_000),
            stall_tolerance: None,
            time_budget: budget,
            ..preset.clone()
        };
        match self {
            Start::Photo => preset,
            Start::Fast => open_ended(1, 0),
            Start::Pyramid | Start::FastPyramid => open_ended(2, COARSE_ITERATIONS),
        }
    }
}

/// One content/style pair, with the fast model's picture of it at the study's size.
pub struct Pair {
    /// "content×style".
    pub name: String,
    /// The photo.
    pub content: RgbImage,
    /// The style picture.
    pub style: RgbImage,
    /// The fast model's picture of the photo in that style.
    pub fast: RgbImage,
}

/// A picture taken along a run, with the full-size objective there.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Seconds since the run started (0 for its start).
    pub seconds: f64,
    /// Iterations done.
    pub iterations: usize,
    /// The full-size objective of the picture.
    pub objective: f64,
    /// The picture.
    pub image: RgbImage,
}

/// When a run takes its snapshots, besides the quarter picture.
#[derive(Debug, Clone, Copy, Default)]
pub struct Snapshots {
    /// A quarter of the reference's time.
    pub quarter: Option<f64>,
    /// "fast+": this many seconds of refinement after the start.
    pub short: Option<f64>,
    /// After this many iterations (the bot's quality mode).
    pub iterations: Option<usize>,
}

/// One run: the full-size objective against time, and a picture taken a quarter of the way.
#[derive(Debug, Clone)]
pub struct Curve {
    /// The start.
    pub start: Start,
    /// The pair's name.
    pub pair: String,
    /// (seconds since the start, objective) at the full-size scale, one per iteration.
    pub points: Vec<(f64, f64)>,
    /// Seconds the run took.
    pub seconds: f64,
    /// The last picture at full size within a quarter of the reference's time, if any.
    pub at_quarter: Option<RgbImage>,
    /// The final picture.
    pub image: RgbImage,
    /// The start itself (runs from the fast picture only), as 0 iterations.
    pub at_start: Option<Snapshot>,
    /// The last picture within [`Snapshots::short`] seconds.
    pub at_short: Option<Snapshot>,
    /// The picture after [`Snapshots::iterations`] iterations.
    pub at_iterations: Option<Snapshot>,
}

impl Curve {
    /// Seconds until the objective first reached `target`, if it did.
    pub fn time_to(&self, target: f64) -> Option<f64> {
        self.points.iter().find(|(_, y)| *y <= target).map(|p| p.0)
    }

    /// The "fast+" picture: the last one within [`Snapshots::short`] seconds, or the start itself
    /// when not even one iteration ended that soon (a slow CPU at a large size).
    pub fn fast_plus(&self) -> Option<&Snapshot> {
        self.at_short.as_ref().or(self.at_start.as_ref())
    }

    /// The objective at time `t` (the last value recorded by then), if the full-size scale had
    /// started.
    pub fn objective_at(&self, t: f64) -> Option<f64> {
        self.points
            .iter()
            .take_while(|(x, _)| *x <= t)
            .last()
            .map(|p| p.1)
    }
}

/// Runs one start on `pair` at `size` for `budget` (the reference runs to its own end), taking
/// the pictures `snapshots` asks for.
pub fn run(
    vgg: &Vgg,
    pair: &Pair,
    start: Start,
    size: u32,
    budget: Option<Duration>,
    snapshots: Snapshots,
) -> Result<Curve, TrainingError> {
    let config = GatysConfig {
        preview_every: 1,
        ..start.config(size, budget)
    };
    let styles = [Style {
        image: pair.style.clone(),
        weight: 1.0,
    }];
    let start_image = start.uses_fast().then_some(&pair.fast);
    let at_start = if start == Start::Fast {
        let none = GatysConfig {
            iterations: 0,
            ..config.clone()
        };
        let output = gatys::optimize_from(vgg, &pair.content, start_image, &styles, &none, |_| {
            ControlFlow::Continue(())
        })?;
        Some(Snapshot {
            seconds: 0.0,
            iterations: 0,
            objective: output.losses.total,
            image: output.image,
        })
    } else {
        None
    };
    let finest = config.scales.max(1) - 1;
    let mut points = Vec::new();
    let (mut at_quarter, mut at_short, mut at_iterations) = (None, None, None);
    let output = gatys::optimize_from(vgg, &pair.content, start_image, &styles, &config, |p| {
        if p.scale == finest {
            let t = p.elapsed.as_secs_f64();
            points.push((t, p.losses.total));
            if snapshots.quarter.is_some_and(|q| t <= q) {
                at_quarter.clone_from(&p.preview);
            }
            let snapshot = || {
                p.preview.clone().map(|image| Snapshot {
                    seconds: t,
                    iterations: p.iteration,
                    objective: p.losses.total,
                    image,
                })
            };
            if snapshots.short.is_some_and(|s| t <= s) {
                at_short = snapshot();
            }
            if snapshots.iterations == Some(p.iteration) {
                at_iterations = snapshot();
            }
        }
        ControlFlow::Continue(())
    })?;
    Ok(Curve {
        start,
        pair: pair.name.clone(),
        points,
        seconds: output.elapsed.as_secs_f64(),
        at_quarter,
        image: output.image,
        at_start,
        at_short,
        at_iterations,
    })
}

/// What one start achieved on one pair against the reference.
#[derive(Debug, Clone)]
pub struct Row {
    /// The pair.
    pub pair: String,
    /// The start.
    pub start: Start,
    /// Seconds to reach the reference's final objective (None: not within the reference's time).
    pub time_to_target: Option<f64>,
    /// That as a share of the reference's time.
    pub share_of_reference: Option<f64>,
    /// Objective at a quarter of the reference's time, over the reference's final objective.
    pub at_quarter: Option<f64>,
    /// Objective at the reference's time, over the reference's final objective.
    pub at_equal_time: Option<f64>,
}

/// The rows of one pair: `curves[0]` is the reference.
pub fn compare(curves: &[Curve]) -> Vec<Row> {
    let reference = &curves[0];
    let target = reference.points.last().map_or(f64::NAN, |p| p.1);
    let t_ref = reference.seconds;
    curves
        .iter()
        .map(|c| {
            let time = c.time_to(target);
            Row {
                pair: c.pair.clone(),
                start: c.start,
                time_to_target: time,
                share_of_reference: time.map(|t| t / t_ref),
                at_quarter: c.objective_at(t_ref / 4.0).map(|v| v / target),
                at_equal_time: c.objective_at(t_ref).map(|v| v / target),
            }
        })
        .collect()
}

/// The fast picture, a short refinement of it ("fast+") and the bot's quality mode on one pair,
/// each against the reference's final objective.
#[derive(Debug, Clone)]
pub struct Ladder {
    /// The pair.
    pub pair: String,
    /// The reference's (preset 3's) time in seconds.
    pub reference_seconds: f64,
    /// (objective over the reference's, seconds, iterations) at each rung; `None` where the run
    /// did not get there.
    pub fast: Option<(f64, f64, usize)>,
    /// After the short refinement.
    pub fast_plus: Option<(f64, f64, usize)>,
    /// After the quality mode's iterations.
    pub quality: Option<(f64, f64, usize)>,
}

/// The ladder of the fast start among `curves` (`curves[0]` is the reference), if it ran.
pub fn ladder(curves: &[Curve]) -> Option<Ladder> {
    let reference = curves.first()?;
    let target = reference.points.last()?.1;
    let fast = curves.iter().find(|c| c.start == Start::Fast)?;
    let rung = |s: Option<&Snapshot>| s.map(|s| (s.objective / target, s.seconds, s.iterations));
    Some(Ladder {
        pair: fast.pair.clone(),
        reference_seconds: reference.seconds,
        fast: rung(fast.at_start.as_ref()),
        fast_plus: rung(fast.fast_plus()),
        quality: rung(fast.at_iterations.as_ref()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve(points: &[(f64, f64)]) -> Curve {
        Curve {
            start: Start::Fast,
            pair: "a×b".into(),
            points: points.to_vec(),
            seconds: points.last().map_or(0.0, |p| p.0),
            at_quarter: None,
            image: RgbImage::new(1, 1),
            at_start: None,
            at_short: None,
            at_iterations: None,
        }
    }

    #[test]
    fn rows_measure_time_to_the_reference_objective_and_objective_at_equal_time() {
        let reference = Curve {
            start: Start::Photo,
            ..curve(&[(1.0, 10.0), (2.0, 6.0), (4.0, 4.0)])
        };
        let fast = curve(&[(0.5, 5.0), (0.9, 3.9), (4.0, 3.0)]);
        let rows = compare(&[reference, fast]);
        assert_eq!(rows[0].time_to_target, Some(4.0));
        assert_eq!(rows[1].time_to_target, Some(0.9));
        assert_eq!(rows[1].share_of_reference, Some(0.225));
        assert_eq!(rows[1].at_quarter, Some(3.9 / 4.0));
        assert_eq!(rows[1].at_equal_time, Some(3.0 / 4.0));
        assert_eq!(rows[0].at_quarter, Some(10.0 / 4.0));
    }

    #[test]
    fn the_ladder_reads_the_fast_runs_snapshots_against_the_reference() {
        let reference = Curve {
            start: Start::Photo,
            ..curve(&[(1.0, 10.0), (8.0, 4.0)])
        };
        let snapshot = |seconds, iterations, objective| Snapshot {
            seconds,
            iterations,
            objective,
            image: RgbImage::new(1, 1),
        };
        let fast = Curve {
            at_start: Some(snapshot(0.0, 0, 40.0)),
            at_short: Some(snapshot(2.0, 5, 12.0)),
            at_iterations: None,
            ..curve(&[(1.0, 20.0), (2.0, 12.0), (8.0, 3.0)])
        };
        let pyramid = Curve {
            start: Start::Pyramid,
            ..curve(&[(1.0, 9.0)])
        };
        let l = ladder(&[reference.clone(), pyramid, fast.clone()]).unwrap();
        assert_eq!(l.reference_seconds, 8.0);
        assert_eq!(l.fast, Some((10.0, 0.0, 0)));
        assert_eq!(l.fast_plus, Some((3.0, 2.0, 5)));
        assert_eq!(l.quality, None);
        // No iteration within the short time: fast+ is the fast picture itself.
        let slow = Curve {
            at_short: None,
            ..fast
        };
        let l = ladder(&[reference.clone(), slow]).unwrap();
        assert_eq!(l.fast_plus, Some((10.0, 0.0, 0)));
        assert!(ladder(&[reference]).is_none(), "no fast run, no ladder");
    }

    #[test]
    fn pyramids_spend_a_fixed_share_at_half_size_then_run_open_ended() {
        let config = Start::FastPyramid.config(512, Some(Duration::from_secs(9)));
        assert_eq!(config.scales, 2);
        assert_eq!(gatys::schedule(&config)[0], COARSE_ITERATIONS);
        assert_eq!(config.time_budget, Some(Duration::from_secs(9)));
        let reference = Start::Photo.config(512, None);
        assert_eq!(
            reference,
            GatysConfig {
                size: 512,
                ..gatys::preset(3).unwrap()
            }
        );
    }
}
