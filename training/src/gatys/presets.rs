//! Presets 1–5, faster ↔ stronger. Chosen from the Pareto front of `stylegram-train gatys-study`
//! (see docs/gatys-study.md for the measurements behind each).
use super::{GatysConfig, Init, Optimizer, WeightedLayers};

/// Gatys et al.'s layers: content at relu4_2, style at the first ReLU of every block, equal weights.
fn paper_layers() -> (WeightedLayers, WeightedLayers) {
    let style =
        ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"].map(|l| (l.to_owned(), 0.2));
    (vec![("relu4_2".to_owned(), 1.0)], style.to_vec())
}

/// The presets' one-line descriptions, index 0 = preset 1.
pub const PRESETS: [&str; 5] = [
    "1: quickest look (L-BFGS, 30 iterations, two scales)",
    "2: fast (L-BFGS, 60 iterations, two scales)",
    "3: balanced (L-BFGS, 100 iterations, two scales)",
    "4: strong (L-BFGS, 200 iterations, two scales)",
    "5: strongest (L-BFGS, 400 iterations, single scale)",
];

/// Preset `n` (1..=5), or `None`.
pub fn preset(n: u8) -> Option<GatysConfig> {
    let (iterations, scales) = match n {
        1 => (30, 2),
        2 => (60, 2),
        3 => (100, 2),
        4 => (200, 2),
        5 => (400, 1),
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
