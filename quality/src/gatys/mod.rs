//! Quality mode: Gatys, Ecker & Bethge, "A Neural Algorithm of Artistic Style" (2015).
//!
//! Start from an image x (the content photo, or noise) and change its pixels to minimise
//!
//! ```text
//! L(x) = α · Σ_l MSE(F_l(x), F_l(content))                       content: same features
//!      + β · Σ_s w_s Σ_l w_l · MSE(G(F_l(x)), G(F_l(style_s)))   style: same feature correlations
//!      + γ · TV(x)                                              smoothness
//! ```
//!
//! where F_l are VGG ReLU activations and G the Gram matrix ([`loss::gram`]). See `docs/gatys.md`.
pub mod color;
pub mod lbfgs;
pub mod loss;
mod presets;

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use image::RgbImage;
use tch::{Device, Kind, Tensor};

use crate::QualityError;
use crate::adam;
use crate::heap::HeapHold;
use crate::tensors;
use crate::vgg::Vgg;

pub use presets::{LBFGS_HISTORY, PRESETS, preset, quality_mode};

/// VGG layer names with their weights, e.g. `[("relu4_2", 1.0)]`.
pub type WeightedLayers = Vec<(String, f64)>;

/// Which optimiser changes the pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Optimizer {
    /// Our L-BFGS with `history` curvature pairs; one iteration may evaluate the loss more than once.
    Lbfgs {
        /// Curvature pairs kept (m).
        history: usize,
    },
    /// Adam with learning rate `lr` (on pixels in [0, 1]).
    Adam {
        /// Learning rate.
        lr: f64,
    },
}

/// Where the optimisation starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Init {
    /// From the content photo: already has the layout, converges much faster.
    Content,
    /// From uniform noise (seeded), as in the original paper.
    Noise,
}

/// Every knob of a run. [`preset`] gives tested combinations.
#[derive(Debug, Clone, PartialEq)]
pub struct GatysConfig {
    /// Long side of the result in pixels (larger content is downscaled; smaller is kept).
    pub size: u32,
    /// Content layer and its weight.
    pub content_layers: WeightedLayers,
    /// Style layers and their weights.
    pub style_layers: WeightedLayers,
    /// α: weight of the content loss.
    pub content_weight: f64,
    /// β: weight of the style loss.
    pub style_weight: f64,
    /// γ: weight of the total-variation loss.
    pub tv_weight: f64,
    /// The optimiser.
    pub optimizer: Optimizer,
    /// Iteration cap, over all scales together.
    pub iterations: usize,
    /// Stop once this much time has passed (the best image so far is returned).
    pub time_budget: Option<Duration>,
    /// Stop when the loss improved by less than this fraction over the last 10 iterations.
    pub stall_tolerance: Option<f64>,
    /// Starting image.
    pub init: Init,
    /// Number of scales, coarse to fine; each is half the size of the next (1 = single scale).
    pub scales: usize,
    /// Iterations at the finest scale; the rest of the cap is shared by the coarser scales, where
    /// pixels are cheap. `None`: the cap is shared evenly by all scales.
    pub final_iterations: Option<usize>,
    /// Transfer on luminance only and keep the content's colours.
    pub preserve_color: bool,
    /// Seed for noise initialisation.
    pub seed: i64,
    /// Send a preview image with the progress event every this many iterations (0 = never).
    pub preview_every: usize,
}

impl Default for GatysConfig {
    fn default() -> Self {
        preset(3).expect("preset 3 exists")
    }
}

/// One style image and its share of the style loss (shares are normalised to sum to 1).
#[derive(Debug, Clone)]
pub struct Style {
    /// The style picture.
    pub image: RgbImage,
    /// Its relative weight.
    pub weight: f64,
}

/// The three loss terms (already multiplied by their weights) and their sum.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Losses {
    /// α · content loss.
    pub content: f64,
    /// β · style loss.
    pub style: f64,
    /// γ · total variation.
    pub tv: f64,
    /// The objective.
    pub total: f64,
}

/// What the progress callback receives after each iteration.
#[derive(Debug, Clone)]
pub struct Iteration {
    /// Iterations done, over all scales.
    pub iteration: usize,
    /// The iteration cap.
    pub iterations: usize,
    /// Losses at the current image.
    pub losses: Losses,
    /// Time since the run started.
    pub elapsed: Duration,
    /// The share of the planned work done (0..=1): iterations weighted by their scale's pixels,
    /// so a coarse iteration counts for a quarter of the next scale's; under a time budget, the
    /// share of the budget spent when that is larger.
    pub fraction: f32,
    /// The scale this iteration ran at, 0 = the coarsest; the objective is the paper's at the last.
    pub scale: usize,
    /// Estimated time left at the rate so far: to the iteration cap, or to the end of the time
    /// budget when that comes first.
    pub eta: Duration,
    /// The current image, every `preview_every` iterations.
    pub preview: Option<RgbImage>,
}

/// Why a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The iteration cap was reached.
    Iterations,
    /// The time budget ran out.
    TimeBudget,
    /// The loss stopped improving (stall tolerance, or the line search found no descent).
    Converged,
    /// The loss became NaN or infinite; the best image so far was returned.
    NonFinite,
    /// The progress callback asked to stop.
    Cancelled,
}

/// The result of a run.
#[derive(Debug, Clone)]
pub struct GatysOutput {
    /// The stylized image (the lowest-loss image seen at the finest scale).
    pub image: RgbImage,
    /// Iterations done.
    pub iterations: usize,
    /// Loss evaluations (forward + backward passes) done.
    pub evaluations: usize,
    /// Losses of the returned image.
    pub losses: Losses,
    /// Wall time of the optimisation (targets included).
    pub elapsed: Duration,
    /// Why it stopped.
    pub stop: StopReason,
}

/// Loss evaluations for one scale: precomputed targets, and the closure's workhorse.
struct Objective<'a> {
    vgg: &'a Vgg,
    config: &'a GatysConfig,
    layers: Vec<&'a str>,
    content_targets: Vec<Tensor>,    // per content layer: [1, C, H, W]
    style_targets: Vec<Vec<Tensor>>, // per style, per style layer: [1, C, C]
    style_shares: Vec<f64>,
}

impl<'a> Objective<'a> {
    fn new(
        vgg: &'a Vgg,
        config: &'a GatysConfig,
        content: &Tensor,
        styles: &[(Tensor, f64)],
    ) -> Result<Self, QualityError> {
        let layers: Vec<&str> = config
            .content_layers
            .iter()
            .chain(&config.style_layers)
            .map(|(name, _)| name.as_str())
            .collect();
        let n_content = config.content_layers.len();
        let (content_targets, style_targets) = tch::no_grad(|| -> Result<_, QualityError> {
            let content_targets = vgg.activations(content, &layers[..n_content])?;
            let style_targets = styles
                .iter()
                .map(|(style, _)| {
                    Ok(vgg
                        .activations(style, &layers[n_content..])?
                        .iter()
                        .map(loss::gram)
                        .collect())
                })
                .collect::<Result<Vec<Vec<Tensor>>, QualityError>>()?;
            Ok((content_targets, style_targets))
        })?;
        let total_share: f64 = styles.iter().map(|(_, w)| w).sum();
        let style_shares = styles.iter().map(|(_, w)| w / total_share).collect();
        Ok(Objective {
            vgg,
            config,
            layers,
            content_targets,
            style_targets,
            style_shares,
        })
    }

    /// Losses at `x` and the gradient of their total with respect to `x`.
    fn evaluate(&self, x: &Tensor) -> (Losses, Tensor) {
        let x = x.detach().set_requires_grad(true);
        let c = self.config;
        let acts = self
            .vgg
            .activations(&x, &self.layers)
            .expect("layer names were validated");
        let (content_acts, style_acts) = acts.split_at(c.content_layers.len());
        let content = content_acts
            .iter()
            .zip(&self.content_targets)
            .zip(&c.content_layers)
            .map(|((a, t), (_, w))| loss::mse(a, t) * *w)
            .fold(Tensor::zeros([], (Kind::Float, x.device())), |s, l| s + l)
            * c.content_weight;
        let grams: Vec<Tensor> = style_acts.iter().map(loss::gram).collect();
        let mut style = Tensor::zeros([], (Kind::Float, x.device()));
        for (targets, share) in self.style_targets.iter().zip(&self.style_shares) {
            for ((g, t), (_, w)) in grams.iter().zip(targets).zip(&c.style_layers) {
                style += loss::mse(g, t) * (*w * share);
            }
        }
        let style = style * c.style_weight;
        let tv = loss::total_variation(&x) * c.tv_weight;
        let total = &content + &style + &tv;
        let losses = Losses {
            content: content.double_value(&[]),
            style: style.double_value(&[]),
            tv: tv.double_value(&[]),
            total: total.double_value(&[]),
        };
        total.backward();
        (losses, x.grad().detach())
    }
}

/// Stylizes `content` with `styles` using `vgg`, calling `progress` after every iteration; the
/// callback returns [`ControlFlow::Break`] to cancel (the best image so far is returned).
pub fn optimize(
    vgg: &Vgg,
    content: &RgbImage,
    styles: &[Style],
    config: &GatysConfig,
    progress: impl FnMut(&Iteration) -> ControlFlow<()>,
) -> Result<GatysOutput, QualityError> {
    optimize_from(vgg, content, None, styles, config, progress)
}

/// Iterations per scale, coarse to fine, summing to the cap (see [`GatysConfig::final_iterations`]).
pub fn schedule(config: &GatysConfig) -> Vec<usize> {
    let scales = config.scales.max(1);
    let total = config.iterations;
    let finest = match config.final_iterations {
        Some(f) if scales > 1 => f.min(total),
        _ => total.div_ceil(scales).min(total),
    };
    let coarse = total - finest;
    let mut plan: Vec<usize> = (0..scales - 1)
        .map(|i| coarse / (scales - 1) + usize::from(i < coarse % (scales - 1).max(1)))
        .collect();
    plan.push(finest);
    plan
}

/// [`optimize`], starting from `start` instead of `config.init` when given: a picture that already
/// has the style's look (the fast model's result for the same photo and style). The objective is
/// unchanged; only the starting point moves. With several scales, `start` is shrunk to the
/// coarsest.
pub fn optimize_from(
    vgg: &Vgg,
    content: &RgbImage,
    start_image: Option<&RgbImage>,
    styles: &[Style],
    config: &GatysConfig,
    mut progress: impl FnMut(&Iteration) -> ControlFlow<()>,
) -> Result<GatysOutput, QualityError> {
    validate(vgg, styles, config)?;
    let start = Instant::now();
    let device = vgg.device();
    let _heap = HeapHold::new(device == Device::Cpu);
    let content_full = tensors::from_image(
        &stylegram_imaging::fit_max_side(content.clone(), config.size),
        device,
    );
    let (_, _, full_h, full_w) = content_full.size4().expect("[1, 3, H, W]");
    let start_full = start_image.map(|image| {
        let (w, h) = (full_w as u32, full_h as u32);
        tensors::from_image(&stylegram_imaging::resize_exact(image, w, h), device)
    });
    let scales = config.scales.max(1);
    let plan = schedule(config);
    // Work units: an iteration at scale s costs its pixels relative to the finest scale's.
    let cost = |scale: usize| 0.25f64.powi((scales - 1 - scale) as i32);
    let planned: f64 = plan
        .iter()
        .enumerate()
        .map(|(s, n)| *n as f64 * cost(s))
        .sum();
    let mut units = 0.0f64;

    let mut x: Option<Tensor> = None;
    let mut done = 0usize;
    let mut evaluations = 0usize;
    let mut best: Option<(f64, Tensor, Losses)> = None;
    let mut stop = StopReason::Iterations;
    for (scale, &scale_iterations) in plan.iter().enumerate() {
        let factor = 0.5f64.powi((scales - 1 - scale) as i32);
        let (h, w) = (
            ((full_h as f64) * factor).round().max(f64::from(MIN_SIDE)) as i64,
            ((full_w as f64) * factor).round().max(f64::from(MIN_SIDE)) as i64,
        );
        let content_t = resize(&content_full, h, w);
        let long_side = h.max(w) as u32;
        let mut style_ts: Vec<(Tensor, f64)> = styles
            .iter()
            .map(|s| {
                (
                    tensors::from_image(&fit_long_side(&s.image, long_side), device),
                    s.weight,
                )
            })
            .collect();
        let target_content = if config.preserve_color {
            for (t, _) in &mut style_ts {
                *t = color::grey(t);
            }
            color::grey(&content_t)
        } else {
            content_t.shallow_clone()
        };
        let objective = Objective::new(vgg, config, &target_content, &style_ts)?;

        // Start: the previous scale's result upsampled, else the given picture, else the content
        // (or seeded noise).
        let mut current = match (&x, &start_full, config.init) {
            (Some(prev), _, _) => resize(prev, h, w),
            (None, Some(given), _) => {
                let given = resize(given, h, w);
                if config.preserve_color {
                    color::grey(&given)
                } else {
                    given
                }
            }
            (None, None, Init::Content) => target_content.shallow_clone(),
            (None, None, Init::Noise) => {
                tch::manual_seed(config.seed);
                Tensor::rand([1, 3, h, w], (Kind::Float, device))
            }
        };
        best = None; // only the finest scale's image is returned
        let mut history: Vec<f64> = Vec::new();
        let scale_end = if scale + 1 == scales {
            config.iterations
        } else {
            (done + scale_iterations).min(config.iterations)
        };
        let mut optimizer = match config.optimizer {
            Optimizer::Lbfgs { history } => {
                Step::Lbfgs(lbfgs::Lbfgs::new(history).with_bounds(0.0, 1.0))
            }
            Optimizer::Adam { lr } => Step::Adam(adam::Adam::new(lr, &current)),
        };
        let last_losses = std::cell::Cell::new(Losses::default());
        let mut f = |x: &Tensor| {
            let (losses, grad) = objective.evaluate(x);
            last_losses.set(losses);
            (losses.total, grad)
        };
        while done < scale_end {
            // Losses of `current` after this iteration, from the evaluation that produced it.
            let outcome = match &mut optimizer {
                Step::Lbfgs(opt) => {
                    let before = opt.evaluations();
                    let outcome = opt.step(&mut current, &mut f);
                    evaluations += opt.evaluations() - before;
                    outcome
                }
                Step::Adam(opt) => {
                    // Adam evaluates before it moves: record that point, then step.
                    let (value, grad) = f(&current);
                    evaluations += 1;
                    if value.is_finite() {
                        remember_best(&mut best, &current, last_losses.get());
                        opt.step(&mut current, &grad);
                        tch::no_grad(|| {
                            let _ = current.clamp_(0.0, 1.0);
                        });
                        lbfgs::StepOutcome::Moved { value }
                    } else {
                        lbfgs::StepOutcome::NonFinite
                    }
                }
            };
            done += 1;
            units += cost(scale);
            let losses = match outcome {
                lbfgs::StepOutcome::NonFinite => {
                    tracing::warn!(
                        iteration = done,
                        "loss is not finite; returning the best image so far"
                    );
                    stop = StopReason::NonFinite;
                    break;
                }
                lbfgs::StepOutcome::Moved { .. } => {
                    let losses = last_losses.get();
                    if matches!(optimizer, Step::Lbfgs(_)) {
                        remember_best(&mut best, &current, losses);
                    }
                    losses
                }
                lbfgs::StepOutcome::Converged { .. } => {
                    best.as_ref().map_or(last_losses.get(), |b| b.2)
                }
            };
            history.push(losses.total);
            let elapsed = start.elapsed();
            // With a time budget the run ends at whichever comes first, cap or budget, so the
            // share done is the larger of the two shares.
            let spent = config.time_budget.map_or(0.0, |budget| {
                elapsed.as_secs_f64() / budget.as_secs_f64().max(1e-9)
            });
            let fraction = (units / planned).max(spent).min(1.0);
            let remaining = elapsed.mul_f64((1.0 - fraction) / fraction.max(1e-9));
            let preview = (config.preview_every > 0 && done.is_multiple_of(config.preview_every))
                .then(|| finish_image(&content_t, &current, config.preserve_color));
            let event = Iteration {
                iteration: done,
                iterations: config.iterations,
                losses,
                elapsed,
                fraction: fraction as f32,
                scale,
                eta: remaining,
                preview,
            };
            if progress(&event).is_break() {
                stop = StopReason::Cancelled;
                break;
            }
            if config.time_budget.is_some_and(|b| elapsed >= b) {
                stop = StopReason::TimeBudget;
                break;
            }
            if matches!(outcome, lbfgs::StepOutcome::Converged { .. })
                || stalled(&history, config.stall_tolerance)
            {
                if scale + 1 == scales {
                    stop = StopReason::Converged;
                    break;
                }
                // Move on to the finer scale; the skipped iterations count as done.
                units += (scale_end - done) as f64 * cost(scale);
                done = scale_end;
            }
        }
        let last_scale = scale + 1 == scales || stop != StopReason::Iterations;
        if last_scale && best.is_none() {
            // No iteration kept a picture (none planned, or cancelled or not finite at once): the
            // start is the result, with its own losses.
            let (losses, _) = objective.evaluate(&current);
            evaluations += 1;
            best = Some((losses.total, current.detach().copy(), losses));
        }
        x = Some(current);
        if stop != StopReason::Iterations {
            break;
        }
    }

    let content_final = resize(&content_full, full_h, full_w);
    let (_, image, losses) = best.expect("the last scale always keeps a picture");
    let image = resize(&image, full_h, full_w);
    Ok(GatysOutput {
        image: finish_image(&content_final, &image, config.preserve_color),
        iterations: done,
        evaluations,
        losses,
        elapsed: start.elapsed(),
        stop,
    })
}

/// Keeps a copy of `x` if its loss is the lowest seen (what a non-finite or cancelled run returns).
fn remember_best(best: &mut Option<(f64, Tensor, Losses)>, x: &Tensor, losses: Losses) {
    if losses.total.is_finite() && best.as_ref().is_none_or(|(b, _, _)| losses.total < *b) {
        *best = Some((losses.total, x.detach().copy(), losses));
    }
}

enum Step {
    Lbfgs(lbfgs::Lbfgs),
    Adam(adam::Adam),
}

/// True when the loss improved by less than `tolerance` (relative) over the last 10 iterations.
fn stalled(history: &[f64], tolerance: Option<f64>) -> bool {
    const WINDOW: usize = 10;
    let Some(tolerance) = tolerance else {
        return false;
    };
    if history.len() <= WINDOW {
        return false;
    }
    let now = history[history.len() - 1];
    let then = history[history.len() - 1 - WINDOW];
    (then - now) / then.abs().max(f64::MIN_POSITIVE) < tolerance
}

fn finish_image(content: &Tensor, x: &Tensor, preserve_color: bool) -> RgbImage {
    let x = x.detach().clamp(0.0, 1.0);
    if preserve_color {
        tensors::to_image(&color::keep_content_chroma(content, &x))
    } else {
        tensors::to_image(&x)
    }
}

fn resize(x: &Tensor, h: i64, w: i64) -> Tensor {
    let (_, _, xh, xw) = x.size4().expect("[N, C, H, W]");
    if (xh, xw) == (h, w) {
        return x.shallow_clone();
    }
    tch::no_grad(|| x.upsample_bilinear2d([h, w], false, None, None))
}

/// The shortest side VGG16 can take: relu5_1 sits behind four 2×2 max-pools, which leave nothing
/// of a side under 16 px.
const MIN_SIDE: u32 = 16;

/// Resizes so the long side is exactly `long_side` (styles are matched to the content's scale), or
/// longer where the short side would fall under the 16 px that VGG16 needs.
pub fn fit_long_side(image: &RgbImage, long_side: u32) -> RgbImage {
    let (w, h) = image.dimensions();
    let scale =
        (f64::from(long_side) / f64::from(w.max(h))).max(f64::from(MIN_SIDE) / f64::from(w.min(h)));
    if w.max(h) == long_side && w.min(h) >= MIN_SIDE {
        return image.clone();
    }
    let nw = ((f64::from(w) * scale).round() as u32).max(1);
    let nh = ((f64::from(h) * scale).round() as u32).max(1);
    stylegram_imaging::resize_exact(image, nw, nh)
}

fn validate(vgg: &Vgg, styles: &[Style], config: &GatysConfig) -> Result<(), QualityError> {
    let invalid = |m: String| QualityError::InvalidConfig(m);
    if styles.is_empty() {
        return Err(invalid("at least one style image is needed".into()));
    }
    if styles
        .iter()
        .any(|s| !(s.weight.is_finite() && s.weight >= 0.0))
        || styles.iter().all(|s| s.weight == 0.0)
    {
        return Err(invalid(
            "style weights must be non-negative and not all zero".into(),
        ));
    }
    if config.content_layers.is_empty() || config.style_layers.is_empty() {
        return Err(invalid(
            "at least one content layer and one style layer are needed".into(),
        ));
    }
    if config.size < 32 {
        return Err(invalid(format!(
            "size {} is too small; use at least 32 pixels",
            config.size
        )));
    }
    for (name, _) in config.content_layers.iter().chain(&config.style_layers) {
        vgg.channels(name)?;
    }
    Ok(())
}

/// Picks CUDA when libtorch sees a GPU (with cuDNN autotuning), CPU otherwise.
pub fn default_device() -> Device {
    if tch::Cuda::is_available() {
        tch::Cuda::cudnn_set_benchmark(true);
        Device::Cuda(0)
    } else {
        Device::Cpu
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn styles_fit_the_long_side_but_keep_what_vgg_needs_of_the_short_one() {
        let wide = RgbImage::new(512, 320);
        assert_eq!(fit_long_side(&wide, 256).dimensions(), (256, 160));
        assert_eq!(fit_long_side(&wide, 512).dimensions(), (512, 320));
        // At a pyramid's coarse scale the short side would be 15 px; four max-pools need 16.
        assert_eq!(fit_long_side(&wide, 24).dimensions(), (26, 16));
        assert_eq!(
            fit_long_side(&RgbImage::new(4, 2), 4).dimensions(),
            (32, 16)
        );
    }

    #[test]
    fn stall_needs_a_full_window_of_little_progress() {
        let falling: Vec<f64> = (0..20).map(|i| 100.0 - i as f64 * 5.0).collect();
        assert!(!stalled(&falling, Some(1e-3)));
        let flat: Vec<f64> = (0..20).map(|i| 10.0 - i as f64 * 1e-6).collect();
        assert!(stalled(&flat, Some(1e-3)));
        assert!(!stalled(&flat, None));
        assert!(!stalled(&flat[..5], Some(1e-3)));
    }
}
