//! Presets 1–5, faster ↔ stronger. Chosen from the Pareto front of `stylegram-train gatys-study`
//! (see docs/gatys-study.md for the measurements behind each).
use super::{GatysConfig, Init, Optimizer, WeightedLayers};

/// Gatys et al.'s layers: content at relu4_2, style at the first ReLU of every block, equal weights.
fn paper_layers() -> (WeightedLayers, WeightedLayers) {
    let style =
        ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"].map(|l| (l.to_owned(), 0.2));
    (vec![("relu4_2".to_owned(), 1.0)], style.to_vec())
}

/// The presets' one-line descriptions, index 0 = preset 1. Each preset is a variant of the speed study
/// (docs/gatys-study.md, 256 px, 2-core CPU); times and losses are that study's means.
pub const PRESETS: [&str; 5] = [
    "1: quickest look: L-BFGS 40 iterations over two scales (study: lbfgs-2s-40, 15 s at 256 px)",
    "2: fast: L-BFGS 80 iterations over two scales (lbfgs-2s-80, 31 s)",
    "3: balanced: L-BFGS 80 iterations, style layers relu1_1..relu4_1 (lbfgs-to4_1-80, 45 s)",
    "4: strong: L-BFGS 160 iterations over two scales (lbfgs-2s-160, 59 s)",
    "5: closest to the prototype's 300 Adam steps: L-BFGS 160 iterations (lbfgs-160, 92 s)",
];

/// Preset `n` (1..=5), or `None`.
pub fn preset(n: u8) -> Option<GatysConfig> {
    let (iterations, scales, style_to_4_1) = match n {
        1 => (40, 2, false),
        2 => (80, 2, false),
        3 => (80, 1, true),
        4 => (160, 2, false),
        5 => (160, 1, false),
        _ => return None,
    };
    let (content_layers, mut style_layers) = paper_layers();
    if style_to_4_1 {
        style_layers = ["relu1_1", "relu2_1", "relu3_1", "relu4_1"]
            .map(|l| (l.to_owned(), 0.25))
            .to_vec();
    }
    Some(GatysConfig {
        size: 512,
        content_layers,
        style_layers,
        content_weight: 1.0,
        style_weight: STYLE_WEIGHT,
        tv_weight: TV_WEIGHT,
        optimizer: Optimizer::Lbfgs { history: 10 },
        iterations,
        time_budget: None,
        stall_tolerance: Some(1e-3),
        init: Init::Content,
        scales,
        preserve_color: false,
        seed: 0,
        preview_every: 0,
    })
}

/// β with α = 1 on our Caffe-scaled VGG16: at 256 px, koala × Van Gogh, 40 L-BFGS iterations,
/// β = 1 keeps too much photo, β = 100 loses the koala's face, β = 10 balances them (docs/gatys.md).
pub const STYLE_WEIGHT: f64 = 10.0;
/// γ on pixels in [0, 1].
pub const TV_WEIGHT: f64 = 10.0;
