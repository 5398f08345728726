//! The fp16 variant of a bundle, for GPUs: convolutions and the ops between them in half
//! precision, AdaIN's statistics and the interface in float32 ([`stylegram_onnx::fp16`]).
use std::path::Path;

use stylegram_onnx::fp16::{self, HalfReport};

use crate::InferenceError;
use crate::bundle::Manifest;
use crate::variant;

/// What [`convert_bundle`] made.
pub struct HalfBundle {
    /// The new bundle's manifest.
    pub manifest: Manifest,
    /// What happened to the encoder graph.
    pub encoder: HalfReport,
    /// What happened to the decoder graph.
    pub decoder: HalfReport,
}

/// Writes the fp16 variant of float bundle `src` into `dst` as model `name` (default: `dst`'s
/// folder name).
pub fn convert_bundle(
    src: &Path,
    dst: &Path,
    name: Option<&str>,
) -> Result<HalfBundle, InferenceError> {
    let (manifest, encoder, decoder) = variant::read_source(src, "fp16")?;
    let onnx = |e: stylegram_onnx::OnnxError| InferenceError::BadBundle {
        dir: src.to_owned(),
        message: e.to_string(),
    };
    let (encoder_h, encoder_report) = fp16::convert(&encoder).map_err(onnx)?;
    let (decoder_h, decoder_report) = fp16::convert(&decoder).map_err(onnx)?;
    let record = serde_json::json!({
        "scheme": "fp16 weights and feature maps (Conv, Relu, Pad, MaxPool, Resize); AdaIN's statistics, inputs and outputs float32, with Cast between",
        "source_model": format!("{} {}", manifest.name, manifest.version),
        "half_nodes": encoder_report.half_nodes + decoder_report.half_nodes,
        "casts": encoder_report.casts + decoder_report.casts,
    });
    let manifest = variant::write(
        &manifest,
        dst,
        name,
        "fp16",
        ("half_precision", record),
        &encoder_h,
        &decoder_h,
    )?;
    Ok(HalfBundle {
        manifest,
        encoder: encoder_report,
        decoder: decoder_report,
    })
}
