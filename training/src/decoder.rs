//! The AdaIN decoder: the encoder (VGG16 up to relu4_1) mirrored, turning relu4_1 features back into
//! an RGB image in [0, 1]. 3×3 convolutions with reflection padding and ReLU, nearest-neighbour ×2
//! upsampling where the encoder pooled, no normalisation layers (Huang & Belongie 2017, section 6.1).
use tch::nn::{self, Module};
use tch::{Kind, Tensor};

/// One step of the decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// Reflection-padded 3×3 convolution `input → output` channels, then ReLU (except the last conv).
    Conv {
        /// Input channels.
        input: i64,
        /// Output channels.
        output: i64,
    },
    /// Nearest-neighbour upsampling by 2.
    Upsample,
}

/// relu4_1 (512 channels at 1/8 size) to RGB: VGG16's blocks 4..1 in reverse.
pub const LAYERS: [Layer; 11] = {
    use Layer::{Conv, Upsample};
    [
        Conv {
            input: 512,
            output: 256,
        }, // mirrors block4_conv1
        Upsample, // mirrors pool3
        Conv {
            input: 256,
            output: 256,
        }, // block3_conv3
        Conv {
            input: 256,
            output: 256,
        }, // block3_conv2
        Conv {
            input: 256,
            output: 128,
        }, // block3_conv1
        Upsample, // pool2
        Conv {
            input: 128,
            output: 128,
        }, // block2_conv2
        Conv {
            input: 128,
            output: 64,
        }, // block2_conv1
        Upsample, // pool1
        Conv {
            input: 64,
            output: 64,
        }, // block1_conv2
        Conv {
            input: 64,
            output: 3,
        }, // block1_conv1: back to RGB, no ReLU
    ]
};

/// The name of the decoder's fixed input multiplier in its variable store.
pub const INPUT_SCALE: &str = "input_scale";

/// The decoder's weights: `conv{i}.weight` / `conv{i}.bias` for i = 1..=8 in [`LAYERS`] order
/// (trainable), and [`INPUT_SCALE`] (fixed), a constant that brings relu4_1 features to unit scale.
#[derive(Debug)]
pub struct Decoder {
    input_scale: Tensor,
    convs: Vec<nn::Conv2D>,
}

impl Decoder {
    /// A decoder with PyTorch's default (Kaiming-uniform) initialisation under `path`, whose input is
    /// multiplied by `input_scale` first. Our VGG16 takes 0..255 input, so its relu4_1 features are
    /// about a hundred times larger than the paper's normalised VGG19's; 1 / (their mean) keeps the
    /// decoder's first layer in the range its initialisation expects.
    pub fn new(path: &nn::Path, input_scale: f64) -> Self {
        let mut scale = path.zeros_no_train(INPUT_SCALE, &[1]);
        tch::no_grad(|| {
            let _ = scale.fill_(input_scale);
        });
        let config = nn::ConvConfig {
            padding: 0,
            ..Default::default()
        };
        let convs = LAYERS
            .iter()
            .filter_map(|layer| match layer {
                Layer::Conv { input, output } => Some((*input, *output)),
                Layer::Upsample => None,
            })
            .enumerate()
            .map(|(i, (input, output))| {
                nn::conv2d(path / format!("conv{}", i + 1), input, output, 3, config)
            })
            .collect();
        Decoder {
            input_scale: scale,
            convs,
        }
    }
}

impl Decoder {
    /// The forward pass with convolutions computed in `kind` (e.g. bf16 for mixed precision); the
    /// trainable weights stay f32 and receive f32 gradients through the cast.
    pub fn forward_in(&self, features: &Tensor, kind: Kind) -> Tensor {
        let mut x = (features * &self.input_scale).to_kind(kind);
        let mut convs = self.convs.iter().peekable();
        for layer in LAYERS {
            x = match layer {
                Layer::Upsample => {
                    let (_, _, h, w) = x.size4().expect("features are [N, C, H, W]");
                    x.upsample_nearest2d([2 * h, 2 * w], None, None)
                }
                Layer::Conv { .. } => {
                    let conv = convs.next().expect("one Conv2D per Conv layer");
                    let bias = conv.bs.as_ref().map(|b| b.to_kind(kind));
                    let y = x.reflection_pad2d([1, 1, 1, 1]).conv2d(
                        &conv.ws.to_kind(kind),
                        bias.as_ref(),
                        [1, 1],
                        [0, 0],
                        [1, 1],
                        1,
                    );
                    if convs.peek().is_some() { y.relu() } else { y }
                }
            };
        }
        x
    }
}

impl Module for Decoder {
    /// `[N, 512, h, w]` features → `[N, 3, 8h, 8w]` RGB (nominally [0, 1], not clamped), computed in
    /// the features' precision.
    fn forward(&self, features: &Tensor) -> Tensor {
        self.forward_in(features, features.kind())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn shapes_mirror_the_encoder() {
        let vs = nn::VarStore::new(Device::Cpu);
        let decoder = Decoder::new(&vs.root(), 1.0);
        let out = decoder.forward(&Tensor::rand([2, 512, 5, 7], (Kind::Float, Device::Cpu)));
        assert_eq!(out.size(), [2, 3, 40, 56]);
        let mut names: Vec<String> = vs.variables().into_keys().collect();
        names.sort();
        assert_eq!(
            names.len(),
            17,
            "8 convs × weight and bias, and the input scale"
        );
        assert_eq!(vs.variables()["conv1.weight"].size(), [256, 512, 3, 3]);
        assert_eq!(vs.variables()["conv8.weight"].size(), [3, 64, 3, 3]);
    }

    #[test]
    fn reflection_padding_keeps_a_constant_map_constant() {
        // With reflection padding, a spatially constant input gives a constant output: no border effect.
        let vs = nn::VarStore::new(Device::Cpu);
        let decoder = Decoder::new(&vs.root(), 1.0);
        let out = decoder.forward(&Tensor::ones([1, 512, 4, 4], (Kind::Float, Device::Cpu)));
        let spread = out.amax([2i64, 3].as_slice(), false) - out.amin([2i64, 3].as_slice(), false);
        assert!(spread.abs().max().double_value(&[]) < 1e-5);
    }
}
