//! The AdaIN training loss (Huang & Belongie 2017, equations 11–13), with per-layer normalisation for
//! our un-normalised VGG16:
//!
//! ```text
//! L   = L_c + λ · L_s
//! L_c = ‖φ₄(g(t)) − t‖² / s₄²                                  (relu4_1, mean over elements)
//! L_s = Σ_l ( ‖μ(φ_l(g(t))) − μ(φ_l(s))‖² + ‖σ(φ_l(g(t))) − σ(φ_l(s))‖² ) / s_l²
//! ```
//!
//! `s_l` is the mean activation of layer `l` over training images ([`LayerScales`]): dividing by it
//! puts every layer on the scale of the paper's "normalised" VGG19, whose filters were rescaled to
//! a mean activation of 1, so that the paper's λ = 10 keeps its meaning.
use tch::{Kind, Tensor};

use crate::TrainingError;
use crate::adain::mean_std;
use stylegram_quality::vgg::Vgg;

/// The layers whose statistics the style loss matches (the last one is also the content layer).
pub const STYLE_LAYERS: [&str; 4] = ["relu1_1", "relu2_1", "relu3_1", "relu4_1"];

/// Mean activation of each of [`STYLE_LAYERS`] over a set of training images.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LayerScales(pub [f64; 4]);

impl LayerScales {
    /// All ones: no normalisation (the losses in the VGG's own units).
    pub const NONE: LayerScales = LayerScales([1.0; 4]);

    /// Measures the mean activation of each layer over `images` (`[N, 3, H, W]` in [0, 1]).
    pub fn measure(vgg: &Vgg, images: &Tensor) -> Result<Self, TrainingError> {
        let features = tch::no_grad(|| vgg.activations(images, &STYLE_LAYERS))?;
        let mut scales = [0.0; 4];
        for (scale, f) in scales.iter_mut().zip(&features) {
            *scale = f.to_kind(Kind::Float).mean(Kind::Float).double_value(&[]);
            if !(*scale > 0.0 && scale.is_finite()) {
                return Err(TrainingError::InvalidConfig(format!(
                    "mean VGG activation is {scale}; cannot normalise the loss"
                )));
            }
        }
        Ok(LayerScales(scales))
    }
}

/// The style targets of a batch: per-layer mean and std of the style images' features.
pub struct StyleTargets {
    stats: Vec<(Tensor, Tensor)>,
    /// relu4_1 features of the style images (AdaIN's `y`).
    pub relu4_1: Tensor,
}

impl StyleTargets {
    /// Encodes `style` (`[N, 3, H, W]` in [0, 1], any float kind) without gradients.
    pub fn new(vgg: &Vgg, style: &Tensor) -> Result<Self, TrainingError> {
        tch::no_grad(|| {
            let features = vgg.activations(style, &STYLE_LAYERS)?;
            let stats = features.iter().map(mean_std).collect();
            let relu4_1 = features[3].shallow_clone();
            Ok(StyleTargets { stats, relu4_1 })
        })
    }
}

/// One evaluation of the loss, all f32 scalars on the training device.
pub struct Loss {
    /// L_c.
    pub content: Tensor,
    /// L_s (unweighted).
    pub style: Tensor,
    /// L_c + λ·L_s, the quantity minimised.
    pub total: Tensor,
}

/// The loss of decoder output `output` (`[N, 3, H, W]`, differentiable) against the AdaIN target `t`
/// (relu4_1 units) and the style targets.
pub fn loss(
    vgg: &Vgg,
    output: &Tensor,
    target: &Tensor,
    style: &StyleTargets,
    scales: &LayerScales,
    style_weight: f64,
) -> Result<Loss, TrainingError> {
    let features = vgg.activations(output, &STYLE_LAYERS)?;
    let s = scales.0;
    let content = features[3]
        .to_kind(Kind::Float)
        .mse_loss(target, tch::Reduction::Mean)
        / (s[3] * s[3]);
    let mut style_loss = Tensor::zeros([], (Kind::Float, output.device()));
    for ((f, (mean, std)), scale) in features.iter().zip(&style.stats).zip(s) {
        let (m, sd) = mean_std(f);
        let layer = m.mse_loss(mean, tch::Reduction::Mean) + sd.mse_loss(std, tch::Reduction::Mean);
        style_loss += layer / (scale * scale);
    }
    let total = &content + &style_loss * style_weight;
    Ok(Loss {
        content,
        style: style_loss,
        total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    /// A random 4-block VGG-shaped network (small channel counts) for loss tests.
    pub(crate) fn tiny_vgg() -> Vgg {
        tch::manual_seed(0);
        let mut tensors = Vec::new();
        let mut input = 3;
        for (block, convs) in [(1, 2), (2, 2), (3, 3), (4, 1)] {
            for conv in 1..=convs {
                let output = 4 * block as i64;
                tensors.push((
                    format!("block{block}_conv{conv}.weight"),
                    Tensor::randn([output, input, 3, 3], (Kind::Float, Device::Cpu)) * 0.3,
                ));
                tensors.push((
                    format!("block{block}_conv{conv}.bias"),
                    Tensor::rand([output], (Kind::Float, Device::Cpu)) * 0.1,
                ));
                input = output;
            }
        }
        Vgg::from_tensors(
            tensors,
            stylegram_quality::vgg::Preprocessing::TorchvisionRgb,
            Device::Cpu,
        )
        .unwrap()
    }

    #[test]
    fn matching_the_style_image_itself_gives_zero_style_loss_and_scales_divide() {
        let vgg = tiny_vgg();
        let style = Tensor::rand([2, 3, 32, 32], (Kind::Float, Device::Cpu));
        let targets = StyleTargets::new(&vgg, &style).unwrap();
        let t = targets.relu4_1.shallow_clone();
        let exact = loss(&vgg, &style, &t, &targets, &LayerScales::NONE, 10.0).unwrap();
        assert!(exact.total.double_value(&[]).abs() < 1e-10);

        let other = Tensor::rand([2, 3, 32, 32], (Kind::Float, Device::Cpu));
        let plain = loss(&vgg, &other, &t, &targets, &LayerScales::NONE, 10.0).unwrap();
        let halved = loss(&vgg, &other, &t, &targets, &LayerScales([2.0; 4]), 10.0).unwrap();
        let ratio = plain.total.double_value(&[]) / halved.total.double_value(&[]);
        assert!(
            (ratio - 4.0).abs() < 1e-4,
            "scale 2 divides the loss by 4: {ratio}"
        );
        let sum = plain.content.double_value(&[]) + 10.0 * plain.style.double_value(&[]);
        assert!((sum - plain.total.double_value(&[])).abs() < 1e-6 * sum.abs().max(1.0));
    }

    #[test]
    fn style_loss_follows_the_equation_on_one_layer() {
        // Only relu1_1 differs if the comparison uses scales that make the deeper layers vanish.
        let vgg = tiny_vgg();
        let a = Tensor::rand([1, 3, 16, 16], (Kind::Float, Device::Cpu));
        let b = Tensor::rand([1, 3, 16, 16], (Kind::Float, Device::Cpu));
        let targets = StyleTargets::new(&vgg, &b).unwrap();
        let huge = 1e9;
        let scales = LayerScales([1.0, huge, huge, huge]);
        let l = loss(&vgg, &a, &targets.relu4_1, &targets, &scales, 1.0).unwrap();
        let fa = vgg.activations(&a, &["relu1_1"]).unwrap().remove(0);
        let fb = vgg.activations(&b, &["relu1_1"]).unwrap().remove(0);
        let (ma, sa) = mean_std(&fa);
        let (mb, sb) = mean_std(&fb);
        let expected = ((ma - mb).square().mean(Kind::Float)
            + (sa - sb).square().mean(Kind::Float))
        .double_value(&[]);
        assert!((l.style.double_value(&[]) - expected).abs() < 1e-6 * expected.max(1e-9));
    }
}
