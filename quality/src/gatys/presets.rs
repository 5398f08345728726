//! Presets 1–5, faster ↔ stronger. Chosen from the Pareto front of `stylegram-train gatys-study`
//! (see docs/gatys-study.md for the measurements behind each), and kept by the warm-start study:
//! runs of the same length from the fast picture were no better at their cost (docs/gatys.md, "The
//! presets, re-chosen").
use super::{GatysConfig, Init, Optimizer, WeightedLayers};

/// Gatys et al.'s layers: content at relu4_2, style at the first ReLU of every block, equal weights.
fn paper_layers() -> (WeightedLayers, WeightedLayers) {
    let style =
        ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"].map(|l| (l.to_owned(), 0.2));
    (vec![("relu4_2".to_owned(), 1.0)], style.to_vec())
}

/// The presets' one-line descriptions, index 0 = preset 1. Variants of the speed study
/// (docs/gatys-study.md, 256 px, 2-core CPU, f32); the times in brackets are `stylegram-train gatys
/// --preset N --size 256` on koala × Van Gogh with bf16 convolutions (docs/gatys.md).
pub const PRESETS: [&str; 5] = [
    "1: quickest look: L-BFGS 40 iterations over two scales (study: lbfgs-2s-40; 5.8 s)",
    "2: fast: L-BFGS 80 iterations over two scales (lbfgs-2s-80; 9.1 s)",
    "3: balanced: L-BFGS 180 iterations, better than the prototype's 300 Adam steps on both losses (30.7 s)",
    "4: fine: L-BFGS 240 iterations, lower style and content losses (43.8 s)",
    "5: finest: L-BFGS 320 iterations (55.4 s)",
];

/// Preset `n` (1..=5), or `None`.
pub fn preset(n: u8) -> Option<GatysConfig> {
    let (iterations, scales) = match n {
        1 => (40, 2),
        2 => (80, 2),
        3 => (180, 1),
        4 => (240, 1),
        5 => (320, 1),
        _ => return None,
    };
    let (content_layers, style_layers) = paper_layers();
    Some(GatysConfig {
        size: 512,
        content_layers,
        style_layers,
        content_weight: 1.0,
        style_weight: STYLE_WEIGHT,
        tv_weight: TV_WEIGHT,
        optimizer: Optimizer::Lbfgs {
            history: LBFGS_HISTORY,
        },
        iterations,
        time_budget: None,
        stall_tolerance: Some(1e-3),
        init: Init::Content,
        scales,
        final_iterations: None,
        preserve_color: false,
        seed: 0,
        preview_every: 0,
    })
}

/// β with α = 1 on our Caffe-scaled VGG16: at 256 px, koala × Van Gogh, 40 L-BFGS iterations,
/// β = 1 keeps too much photo, β = 100 loses the koala's face, β = 10 balances them (docs/gatys.md).
pub const STYLE_WEIGHT: f64 = 10.0;
/// Curvature pairs every preset's L-BFGS keeps (a longer memory did worse at 512 px with bf16
/// gradients: docs/gatys.md, "Warm starts").
pub const LBFGS_HISTORY: usize = 10;
/// γ on pixels in [0, 1].
pub const TV_WEIGHT: f64 = 10.0;

/// Iterations of the bot's quality mode: from the fast model's picture, 60 L-BFGS iterations reach
/// about a quarter to a third of preset 3's time (docs/gatys-warm.md).
pub const QUALITY_MODE_ITERATIONS: usize = 60;

/// What the bot's quality mode runs; the engine starts it from the fast model's picture. The warm
/// start study (docs/gatys.md, "Warm starts") found that start the lowest objective at a quarter of
/// preset 3's time on three of its four pair × size runs, and its pictures there hard to tell
/// from preset 3's final ones; preset 3's objective itself is reached only near preset 3's time.
pub fn quality_mode() -> GatysConfig {
    GatysConfig {
        iterations: QUALITY_MODE_ITERATIONS,
        ..preset(3).expect("preset 3 exists")
    }
}
