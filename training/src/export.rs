//! Export of the fast-mode networks to ONNX with our `onnx` crate (opset 17), as two graphs so that a
//! style's statistics are computed once and cached by the server:
//!
//! - `encoder.onnx`: `image` `[N, 3, H, W]` RGB in [0, 1] → `features` (relu4_1, `[N, 512, H/8, W/8]`),
//!   `mean` and `std` (`[N, 512, 1, 1]`, AdaIN's statistics with eps 1e-5 on the variance). The
//!   weights' input convention (Caffe BGR or torchvision RGB) is applied inside the graph.
//! - `decoder.onnx`: `features`, `style_mean`, `style_std` and `alpha` (`[1]`) → `image`
//!   `[N, 3, 8h, 8w]`: AdaIN with the given style statistics, blended with the content features by
//!   alpha, then the decoder. Mixing styles = passing weighted sums of their statistics.
use std::collections::BTreeMap;

use stylegram_inference::bundle::{self, GraphSpec, Manifest, TensorSpec};
use stylegram_onnx::{Dim, GraphBuilder, Model, OnnxError};
use tch::Tensor;

use crate::TrainingError;
use crate::adain::EPS;
use crate::decoder::{INPUT_SCALE, LAYERS, Layer};
use stylegram_quality::vgg::{
    CAFFE_MEAN_BGR, Preprocessing, TORCHVISION_MEAN_RGB, TORCHVISION_STD_RGB, Vgg,
};

/// The encoder's last layer in the AdaIN architecture.
pub const ENCODER_LAYER: &str = "relu4_1";

fn values(t: &Tensor) -> Vec<f32> {
    t.to_device(tch::Device::Cpu)
        .to_kind(tch::Kind::Float)
        .contiguous()
        .flatten(0, -1)
        .try_into()
        .expect("float tensor")
}

fn shape(t: &Tensor) -> Vec<usize> {
    t.size().iter().map(|&d| d as usize).collect()
}

fn image_dims(n: &str, c: i64, h: &str, w: &str) -> Vec<Dim> {
    vec![Dim::named(n), c.into(), Dim::named(h), Dim::named(w)]
}

/// Adds ReduceMean-based mean and std (eps inside the root) of `x` over H and W; returns their names.
fn add_mean_std(g: &mut GraphBuilder, x: &str) -> Result<(String, String), OnnxError> {
    let eps = g.initializer(&format!("{x}_eps"), &[1], &[EPS as f32])?;
    let mean = g
        .op("ReduceMean")
        .input(x)
        .ints("axes", &[2, 3])
        .int("keepdims", 1)
        .build();
    let centred = g.op("Sub").inputs([&x.to_owned(), &mean]).build();
    let squared = g.op("Mul").inputs([&centred, &centred]).build();
    let var = g
        .op("ReduceMean")
        .input(&squared)
        .ints("axes", &[2, 3])
        .int("keepdims", 1)
        .build();
    let var_eps = g.op("Add").inputs([&var, &eps]).build();
    let std = g.op("Sqrt").input(&var_eps).build();
    Ok((mean, std))
}

/// The encoder graph (VGG up to relu4_1, zero padding as trained) with statistics outputs.
pub fn encoder_graph(vgg: &Vgg) -> Result<Model, TrainingError> {
    let mut g = GraphBuilder::new("stylegram_encoder");
    let image = g.input("image", &image_dims("N", 3, "H", "W"));
    let mut x = match vgg.preprocessing() {
        Preprocessing::CaffeBgr => {
            // RGB [0, 1] → BGR, ×255, minus the Caffe mean.
            let bgr_index = g.initializer_i64("bgr_index", &[3], &[2, 1, 0])?;
            let bgr = g
                .op("Gather")
                .inputs([&image, &bgr_index])
                .int("axis", 1)
                .build();
            let scale = g.initializer("scale_255", &[1], &[255.0])?;
            let scaled = g.op("Mul").inputs([&bgr, &scale]).build();
            let mean = g.initializer(
                "caffe_mean_bgr",
                &[1, 3, 1, 1],
                &CAFFE_MEAN_BGR.map(|v| v as f32),
            )?;
            g.op("Sub").inputs([&scaled, &mean]).build()
        }
        Preprocessing::TorchvisionRgb => {
            let mean = g.initializer(
                "imagenet_mean",
                &[1, 3, 1, 1],
                &TORCHVISION_MEAN_RGB.map(|v| v as f32),
            )?;
            let std = g.initializer(
                "imagenet_std",
                &[1, 3, 1, 1],
                &TORCHVISION_STD_RGB.map(|v| v as f32),
            )?;
            let centred = g.op("Sub").inputs([&image, &mean]).build();
            g.op("Div").inputs([&centred, &std]).build()
        }
    };
    for (relu, pool_before, weight, bias) in vgg.layers_until(ENCODER_LAYER)? {
        if pool_before {
            x = g
                .op("MaxPool")
                .input(&x)
                .ints("kernel_shape", &[2, 2])
                .ints("strides", &[2, 2])
                .build();
        }
        let w = g.initializer(&format!("{relu}.weight"), &shape(weight), &values(weight))?;
        let b = g.initializer(&format!("{relu}.bias"), &shape(bias), &values(bias))?;
        let conv = g
            .op("Conv")
            .inputs([&x, &w, &b])
            .ints("kernel_shape", &[3, 3])
            .ints("pads", &[1, 1, 1, 1])
            .build();
        x = g.op("Relu").input(&conv).build();
    }
    let (mean, std) = add_mean_std(&mut g, &x)?;
    let c = vgg.channels(ENCODER_LAYER)?;
    g.output(&x, "features", &image_dims("N", c, "h", "w"));
    g.output(
        &mean,
        "mean",
        &[Dim::named("N"), c.into(), 1.into(), 1.into()],
    );
    g.output(
        &std,
        "std",
        &[Dim::named("N"), c.into(), 1.into(), 1.into()],
    );
    g.metadata("stylegram.graph", "encoder");
    Ok(g.finish())
}

/// The decoder graph: AdaIN with given style statistics, alpha blend, then the decoder's layers.
/// `weights` are the decoder's variables (`conv{i}.weight` / `conv{i}.bias` and `input_scale`).
pub fn decoder_graph(
    weights: &std::collections::HashMap<String, Tensor>,
) -> Result<Model, TrainingError> {
    let missing =
        |name: String| TrainingError::InvalidConfig(format!("decoder checkpoint has no '{name}'"));
    let mut g = GraphBuilder::new("stylegram_decoder");
    let features = g.input("features", &image_dims("N", 512, "h", "w"));
    let stat_dims = [Dim::named("S"), 512.into(), 1.into(), 1.into()];
    let style_mean = g.input("style_mean", &stat_dims);
    let style_std = g.input("style_std", &stat_dims);
    let alpha = g.input("alpha", &[1.into()]);

    // AdaIN (Huang & Belongie eq. 8), then t' = alpha·t + (1 − alpha)·f.
    let (mean, std) = add_mean_std(&mut g, &features)?;
    let centred = g.op("Sub").inputs([&features, &mean]).build();
    let normalised = g.op("Div").inputs([&centred, &std]).build();
    let scaled = g.op("Mul").inputs([&normalised, &style_std]).build();
    let target = g.op("Add").inputs([&scaled, &style_mean]).build();
    let difference = g.op("Sub").inputs([&target, &features]).build();
    let weighted = g.op("Mul").inputs([&difference, &alpha]).build();
    let blended = g.op("Add").inputs([&features, &weighted]).build();
    let scale = weights
        .get(INPUT_SCALE)
        .ok_or_else(|| missing(INPUT_SCALE.to_owned()))?;
    let scale = g.initializer(INPUT_SCALE, &[1], &values(scale))?;
    let mut x = g.op("Mul").inputs([&blended, &scale]).build();

    let reflect = g.initializer_i64("reflect_pads", &[8], &[0, 0, 1, 1, 0, 0, 1, 1])?;
    let up_scales = g.initializer("upsample_scales", &[4], &[1.0, 1.0, 2.0, 2.0])?;
    let convs = LAYERS
        .iter()
        .filter(|l| matches!(l, Layer::Conv { .. }))
        .count();
    let mut index = 0;
    for layer in LAYERS {
        x = match layer {
            Layer::Upsample => g
                .op("Resize")
                .inputs([&x, &String::new(), &up_scales])
                .string("mode", "nearest")
                .string("coordinate_transformation_mode", "asymmetric")
                .string("nearest_mode", "floor")
                .build(),
            Layer::Conv { .. } => {
                index += 1;
                let weight = weights
                    .get(&format!("conv{index}.weight"))
                    .ok_or_else(|| missing(format!("conv{index}.weight")))?;
                let bias = weights
                    .get(&format!("conv{index}.bias"))
                    .ok_or_else(|| missing(format!("conv{index}.bias")))?;
                let w = g.initializer(
                    &format!("conv{index}.weight"),
                    &shape(weight),
                    &values(weight),
                )?;
                let b = g.initializer(&format!("conv{index}.bias"), &shape(bias), &values(bias))?;
                let padded = g
                    .op("Pad")
                    .inputs([&x, &reflect])
                    .string("mode", "reflect")
                    .build();
                let conv = g
                    .op("Conv")
                    .inputs([&padded, &w, &b])
                    .ints("kernel_shape", &[3, 3])
                    .build();
                if index < convs {
                    g.op("Relu").input(&conv).build()
                } else {
                    conv
                }
            }
        };
    }
    g.output(&x, "image", &image_dims("N", 3, "H", "W"));
    g.metadata("stylegram.graph", "decoder");
    Ok(g.finish())
}

/// What `write_bundle` records about the model besides its weights.
pub struct BundleInfo {
    /// Model name.
    pub name: String,
    /// Model version.
    pub version: String,
    /// The checkpoint's training state (iteration, recipe, loss scales).
    pub state: crate::train::checkpoint::State,
    /// Free text about the training data (sources, counts).
    pub data: String,
    /// Where it was trained (e.g. "1× NVIDIA H100 80GB").
    pub hardware: String,
    /// Measured numbers to record (e.g. final training losses).
    pub metrics: serde_json::Value,
}

fn spec(name: &str, shape: &[&str], description: &str) -> TensorSpec {
    TensorSpec {
        name: name.to_owned(),
        shape: shape.iter().map(|s| (*s).to_owned()).collect(),
        dtype: "float32".to_owned(),
        description: description.to_owned(),
    }
}

/// Writes a model bundle to `dir`: `encoder.onnx`, `decoder.onnx` and `manifest.json` with the
/// contract and a SHA-256 for each graph (format in `docs/model-format.md`).
pub fn write_bundle(
    dir: &std::path::Path,
    vgg: &Vgg,
    decoder: &std::collections::HashMap<String, Tensor>,
    info: BundleInfo,
) -> Result<Manifest, TrainingError> {
    std::fs::create_dir_all(dir).map_err(|source| TrainingError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let mut files = BTreeMap::new();
    for (file, model) in [
        ("encoder.onnx", encoder_graph(vgg)?),
        ("decoder.onnx", decoder_graph(decoder)?),
    ] {
        let path = dir.join(file);
        std::fs::write(&path, model.to_bytes()).map_err(|source| TrainingError::Io {
            path: path.clone(),
            source,
        })?;
        files.insert(file.to_owned(), bundle::digest(&path)?);
    }
    let stats = ["N", "512", "1", "1"];
    let graphs = BTreeMap::from([
        (
            "encoder".to_owned(),
            GraphSpec {
                file: "encoder.onnx".to_owned(),
                inputs: vec![spec(
                    "image",
                    &["N", "3", "H", "W"],
                    "RGB in [0, 1]; H and W multiples of 8 (pad by reflection, crop back after)",
                )],
                outputs: vec![
                    spec(
                        "features",
                        &["N", "512", "H/8", "W/8"],
                        "VGG16 relu4_1 activations",
                    ),
                    spec("mean", &stats, "per-channel mean of features"),
                    spec(
                        "std",
                        &stats,
                        "per-channel standard deviation of features, sqrt(var + 1e-5)",
                    ),
                ],
            },
        ),
        (
            "decoder".to_owned(),
            GraphSpec {
                file: "decoder.onnx".to_owned(),
                inputs: vec![
                    spec(
                        "features",
                        &["N", "512", "h", "w"],
                        "content features from the encoder",
                    ),
                    spec(
                        "style_mean",
                        &["S", "512", "1", "1"],
                        "style statistics (S = 1 or N); a weighted sum of several styles' means mixes them",
                    ),
                    spec(
                        "style_std",
                        &["S", "512", "1", "1"],
                        "style standard deviations, mixed the same way",
                    ),
                    spec(
                        "alpha",
                        &["1"],
                        "strength in [0, 1]: 0 reconstructs the content, 1 is full AdaIN",
                    ),
                ],
                outputs: vec![spec(
                    "image",
                    &["N", "3", "8h", "8w"],
                    "RGB, nominally [0, 1]: clamp before encoding",
                )],
            },
        ),
    ]);
    let manifest = Manifest {
        format: bundle::FORMAT.to_owned(),
        name: info.name,
        version: info.version,
        architecture: serde_json::json!({
            "family": "AdaIN (Huang & Belongie 2017)",
            "encoder": format!("{} up to {ENCODER_LAYER}, frozen, zero padding", vgg_name(vgg)),
            "decoder": "encoder mirrored: 8 conv3x3 with reflection padding and ReLU, nearest x2 upsampling, no normalisation",
            "adain_eps": EPS,
            "decoder_parameters": decoder.values().filter(|t| t.requires_grad()).map(Tensor::numel).sum::<usize>(),
            "opset": 17,
        }),
        preprocessing: serde_json::json!({
            "input": "RGB float32 in [0, 1], NCHW",
            "size_multiple": 8,
            "padding": "reflect to a multiple of 8, crop the output back",
            "encoder_applies": vgg.preprocessing().as_str(),
            "output": "clamp to [0, 1]",
        }),
        graphs,
        training: serde_json::json!({
            "data": info.data,
            "hardware": info.hardware,
            "iterations": info.state.iteration,
            "training_seconds": info.state.elapsed_s,
            "layer_scales": info.state.layer_scales,
            "recipe": info.state.recipe,
        }),
        metrics: info.metrics,
        files,
    };
    manifest.write(dir)?;
    Ok(manifest)
}

fn vgg_name(vgg: &Vgg) -> &'static str {
    match vgg.relu_names().len() {
        16 => "VGG19",
        _ => "VGG16",
    }
}
