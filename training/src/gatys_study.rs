//! The speed study: sweep optimiser, iterations, scales, init and layer sets over content/style
//! pairs, and score every result with one fixed evaluation loss, whatever knobs produced it.
use std::fmt::Write as _;
use std::ops::ControlFlow;
use std::path::Path;

use image::RgbImage;
use tch::Tensor;

use crate::TrainingError;
use crate::plots::{self, Point};
use stylegram_quality::gatys::{self, GatysConfig, Init, Optimizer, Style, loss};
use stylegram_quality::tensors;
use stylegram_quality::vgg::Vgg;

/// The evaluation's content layer (Gatys et al.'s conv4_2).
const EVAL_CONTENT_LAYER: &str = "relu4_2";
/// The evaluation's style layers (Gatys et al.'s first ReLU of each block), equally weighted.
const EVAL_STYLE_LAYERS: [&str; 5] = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"];
/// The variant every other is compared with: the prototype's recipe (Adam lr 0.05, 300 iterations).
pub const REFERENCE: &str = "adam-300";

/// The losses every study result is scored with: content MSE at relu4_2 and the mean Gram MSE over
/// relu1_1..relu5_1, on the final image, against the content and style resized to its size.
pub fn evaluation_losses(
    vgg: &Vgg,
    image: &RgbImage,
    content: &RgbImage,
    style: &RgbImage,
) -> Result<(f64, f64), TrainingError> {
    let (w, h) = image.dimensions();
    let device = vgg.device();
    let x = tensors::from_image(image, device);
    let c = tensors::from_image(&stylegram_imaging::resize_exact(content, w, h), device);
    let s = tensors::from_image(&gatys::fit_long_side(style, w.max(h)), device);
    tch::no_grad(|| {
        let content_loss = loss::mse(
            &vgg.activations(&x, &[EVAL_CONTENT_LAYER])?[0],
            &vgg.activations(&c, &[EVAL_CONTENT_LAYER])?[0],
        );
        let ours = vgg.activations(&x, &EVAL_STYLE_LAYERS)?;
        let target = vgg.activations(&s, &EVAL_STYLE_LAYERS)?;
        let style_loss = ours
            .iter()
            .zip(&target)
            .map(|(a, b)| loss::mse(&loss::gram(a), &loss::gram(b)))
            .fold(Tensor::from(0.0f32), |acc, l| acc + l)
            / EVAL_STYLE_LAYERS.len() as f64;
        Ok((content_loss.double_value(&[]), style_loss.double_value(&[])))
    })
}

/// One configuration in the sweep.
#[derive(Debug, Clone)]
pub struct Variant {
    /// Short name, e.g. `lbfgs-2s-80`.
    pub name: String,
    /// The knobs.
    pub config: GatysConfig,
}

/// The default sweep at `size` px: Gatys's layers and the presets' loss weights unless a variant changes them.
pub fn default_variants(size: u32) -> Vec<Variant> {
    let base = GatysConfig {
        size,
        stall_tolerance: None,
        ..GatysConfig::default()
    };
    let mut variants = Vec::new();
    let mut add = |name: String, config: GatysConfig| variants.push(Variant { name, config });
    for iterations in [100, 300] {
        add(
            format!("adam-{iterations}"),
            GatysConfig {
                optimizer: Optimizer::Adam { lr: 0.05 },
                iterations,
                scales: 1,
                ..base.clone()
            },
        );
    }
    for iterations in [20, 40, 80, 160] {
        add(
            format!("lbfgs-{iterations}"),
            GatysConfig {
                optimizer: Optimizer::Lbfgs { history: 10 },
                iterations,
                scales: 1,
                ..base.clone()
            },
        );
    }
    for iterations in [40, 80, 160] {
        add(
            format!("lbfgs-2s-{iterations}"),
            GatysConfig {
                optimizer: Optimizer::Lbfgs { history: 10 },
                iterations,
                scales: 2,
                ..base.clone()
            },
        );
    }
    add(
        "lbfgs-noise-160".into(),
        GatysConfig {
            init: Init::Noise,
            iterations: 160,
            scales: 1,
            ..base.clone()
        },
    );
    let shallow = ["relu1_1", "relu2_1", "relu3_1", "relu4_1"]
        .map(|l| (l.to_owned(), 0.25))
        .to_vec();
    add(
        "lbfgs-to4_1-80".into(),
        GatysConfig {
            style_layers: shallow,
            iterations: 80,
            scales: 1,
            ..base
        },
    );
    variants
}

/// One variant on one pair.
#[derive(Debug, Clone)]
pub struct Measurement {
    /// Variant name.
    pub variant: String,
    /// Pair name, `content×style`.
    pub pair: String,
    /// Wall time of the optimisation.
    pub seconds: f64,
    /// Loss evaluations used.
    pub evaluations: usize,
    /// Evaluation content loss.
    pub content_loss: f64,
    /// Evaluation style loss.
    pub style_loss: f64,
    /// The result.
    pub image: RgbImage,
    /// (seconds, objective) after each iteration.
    pub trace: Vec<(f64, f64)>,
}

/// A named content/style pair.
pub struct Pair {
    /// `content×style`.
    pub name: String,
    /// The photo.
    pub content: RgbImage,
    /// The painting.
    pub style: RgbImage,
}

/// Runs every variant on every pair; `progress` hears about each finished run.
pub fn run(
    vgg: &Vgg,
    pairs: &[Pair],
    variants: &[Variant],
    mut progress: impl FnMut(&Measurement),
) -> Result<Vec<Measurement>, TrainingError> {
    let mut out = Vec::new();
    for pair in pairs {
        let styles = [Style {
            image: pair.style.clone(),
            weight: 1.0,
        }];
        for variant in variants {
            let mut trace = Vec::new();
            let result = gatys::optimize(vgg, &pair.content, &styles, &variant.config, |p| {
                trace.push((p.elapsed.as_secs_f64(), p.losses.total));
                ControlFlow::Continue(())
            })?;
            let (content_loss, style_loss) =
                evaluation_losses(vgg, &result.image, &pair.content, &pair.style)?;
            let m = Measurement {
                variant: variant.name.clone(),
                pair: pair.name.clone(),
                seconds: result.elapsed.as_secs_f64(),
                evaluations: result.evaluations,
                content_loss,
                style_loss,
                image: result.image,
                trace,
            };
            progress(&m);
            out.push(m);
        }
    }
    Ok(out)
}

/// A variant's averages over the pairs; losses relative to [`REFERENCE`] on the same pair.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Variant name.
    pub variant: String,
    /// Mean wall time.
    pub seconds: f64,
    /// Mean evaluations.
    pub evaluations: f64,
    /// Mean of content loss / reference content loss.
    pub content_vs_reference: f64,
    /// Mean of style loss / reference style loss.
    pub style_vs_reference: f64,
    /// Whether it is on the time–style Pareto front.
    pub on_front: bool,
}

/// Averages per variant (in sweep order) and marks the Pareto front of time against style loss.
pub fn summarize(measurements: &[Measurement], variants: &[Variant]) -> Vec<Summary> {
    let reference = |pair: &str| {
        measurements
            .iter()
            .find(|m| m.pair == pair && m.variant == REFERENCE)
    };
    let mut summaries: Vec<Summary> = variants
        .iter()
        .map(|v| {
            let runs: Vec<&Measurement> = measurements
                .iter()
                .filter(|m| m.variant == v.name)
                .collect();
            let n = runs.len().max(1) as f64;
            let ratio = |f: fn(&Measurement) -> f64| {
                runs.iter()
                    .map(|m| reference(&m.pair).map_or(f64::NAN, |r| f(m) / f(r)))
                    .sum::<f64>()
                    / n
            };
            Summary {
                variant: v.name.clone(),
                seconds: runs.iter().map(|m| m.seconds).sum::<f64>() / n,
                evaluations: runs.iter().map(|m| m.evaluations as f64).sum::<f64>() / n,
                content_vs_reference: ratio(|m| m.content_loss),
                style_vs_reference: ratio(|m| m.style_loss),
                on_front: false,
            }
        })
        .collect();
    for i in plots::pareto_front(&time_style_points(&summaries)) {
        summaries[i].on_front = true;
    }
    summaries
}

/// Each variant as a (mean time, relative style loss) point: the study's trade-off.
fn time_style_points(summaries: &[Summary]) -> Vec<Point> {
    summaries
        .iter()
        .map(|s| Point {
            label: s.variant.clone(),
            x: s.seconds,
            y: s.style_vs_reference,
        })
        .collect()
}

/// Writes `gatys-study.md`, `gatys-study.png` (time vs style loss) and `gatys-study-sheet.png`
/// (rows: variants, columns: pairs) into `dir`; `header` goes first (machine, command).
pub fn write_report(
    dir: &Path,
    header: &str,
    summaries: &[Summary],
    measurements: &[Measurement],
    variants: &[Variant],
) -> Result<(), TrainingError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| TrainingError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let points = time_style_points(summaries);
    plots::pareto_scatter(
        &dir.join("gatys-study.png"),
        "Gatys: time vs style loss (relative to adam-300)",
        "seconds (log scale)",
        "style loss / reference",
        &points,
    )?;
    let rows: Vec<Vec<RgbImage>> = variants
        .iter()
        .map(|v| {
            measurements
                .iter()
                .filter(|m| m.variant == v.name)
                .map(|m| m.image.clone())
                .collect()
        })
        .collect();
    let first_pair = measurements
        .first()
        .map(|m| m.pair.clone())
        .unwrap_or_default();
    let curves: Vec<(String, Vec<(f64, f64)>)> = measurements
        .iter()
        .filter(|m| m.pair == first_pair)
        .map(|m| (m.variant.clone(), m.trace.clone()))
        .collect();
    plots::log_lines(
        &dir.join("gatys-study-curves.png"),
        &format!("Objective against time, {first_pair}"),
        "seconds",
        "objective (log scale)",
        &curves,
    )?;
    let sheet = stylegram_imaging::contact_sheet(&rows, 160);
    let sheet_path = dir.join("gatys-study-sheet.png");
    sheet.save(&sheet_path).map_err(|e| {
        TrainingError::InvalidConfig(format!("cannot write {}: {e}", sheet_path.display()))
    })?;

    let mut md = String::new();
    let _ = writeln!(md, "# Gatys speed study\n\n{header}\n");
    let _ = writeln!(
        md,
        "Evaluation loss (the same for every variant): content = MSE of relu4_2 features against the content photo; style = mean over relu1_1..relu5_1 of the Gram-matrix MSE against the style picture; both on the final image. Columns \"× ref\" are the mean over pairs of the ratio to `{REFERENCE}` (the prototype's recipe) on the same pair.\n"
    );
    let _ = writeln!(
        md,
        "| variant | optimiser | iterations | scales | init | style layers | mean time (s) | evaluations | content × ref | style × ref | Pareto |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|---|");
    for (s, v) in summaries.iter().zip(variants) {
        let c = &v.config;
        let optimizer = match c.optimizer {
            Optimizer::Lbfgs { history } => format!("L-BFGS m={history}"),
            Optimizer::Adam { lr } => format!("Adam lr={lr}"),
        };
        let layers = c
            .style_layers
            .iter()
            .map(|(l, _)| l.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        let _ = writeln!(
            md,
            "| {} | {optimizer} | {} | {} | {:?} | {layers} | {:.1} | {:.0} | {:.3} | {:.3} | {} |",
            s.variant,
            c.iterations,
            c.scales,
            c.init,
            s.seconds,
            s.evaluations,
            s.content_vs_reference,
            s.style_vs_reference,
            if s.on_front { "✓" } else { "" }
        );
    }
    let _ = writeln!(
        md,
        "\n![time vs style loss](gatys-study.png)\n\nThe objective (each variant's own loss) against wall time on the first pair; two-scale runs jump when they move to full size:\n\n![objective against time](gatys-study-curves.png)\n\nOutputs (rows: variants in table order; columns: pairs):\n\n![contact sheet](gatys-study-sheet.png)\n"
    );
    let _ = writeln!(
        md,
        "## Per pair\n\n| variant | pair | time (s) | evaluations | content loss | style loss |\n|---|---|---|---|---|---|"
    );
    for m in measurements {
        let _ = writeln!(
            md,
            "| {} | {} | {:.1} | {} | {:.4e} | {:.4e} |",
            m.variant, m.pair, m.seconds, m.evaluations, m.content_loss, m.style_loss
        );
    }
    let path = dir.join("gatys-study.md");
    std::fs::write(&path, md).map_err(io(&path))?;
    Ok(())
}
