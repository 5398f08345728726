//! The int8 variant of a bundle: activation ranges calibrated by running the float graphs on
//! photos and style pictures with ONNX Runtime, then both graphs rewritten in QDQ form by
//! [`stylegram_onnx::qdq`] (int8 weights per channel, uint8 activations per tensor).
use std::collections::HashMap;
use std::path::Path;

use image::RgbImage;
use ndarray::{Array1, Array4};
use ort::value::TensorRef;
use stylegram_onnx::Model;
use stylegram_onnx::qdq::{self, QuantizeReport, Range};

use crate::InferenceError;
use crate::adain::SIZE_MULTIPLE;
use crate::bundle::Manifest;
use crate::runtime::{self, Device, SessionOptions};
use crate::variant;
use stylegram_imaging as images;

/// The pictures the ranges are measured on.
pub struct CalibrationSet {
    /// Photos, as the encoder sees them at serving time.
    pub contents: Vec<RgbImage>,
    /// Style pictures: their statistics drive the decoder, and the encoder sees them too.
    pub styles: Vec<RgbImage>,
}

impl CalibrationSet {
    /// Up to `count` pictures from each of `dir/content` and `dir/style`, spread over the sorted
    /// file lists, scaled to `max_side`.
    pub fn load(dir: &Path, count: usize, max_side: u32) -> Result<Self, InferenceError> {
        let pick = |sub: &str| -> Result<Vec<RgbImage>, InferenceError> {
            let limits = images::ImageLimits::default();
            Ok(
                images::sample_folder(&dir.join(sub), count, max_side, &limits)?
                    .into_iter()
                    .map(|(_, image)| image)
                    .collect(),
            )
        };
        Ok(CalibrationSet {
            contents: pick("content")?,
            styles: pick("style")?,
        })
    }
}

/// Per-value ranges over all calibration inputs: the smallest minimum and the largest maximum.
///
/// Averaging each picture's extremes instead (ONNX Runtime's moving-average option) clipped the
/// strongest textures and cost 11–16% on the style scores against 1% for the full range
/// (`stylegram-train eval` on 12 pairs, docs/quantization.md).
#[derive(Default)]
struct RangeMeter {
    extremes: HashMap<String, (f32, f32)>,
}

impl RangeMeter {
    fn add(&mut self, name: &str, values: &[f32]) {
        let (lo, hi) = values
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            });
        let entry = self
            .extremes
            .entry(name.to_owned())
            .or_insert((f32::INFINITY, f32::NEG_INFINITY));
        entry.0 = entry.0.min(lo);
        entry.1 = entry.1.max(hi);
    }

    fn ranges(&self) -> HashMap<String, Range> {
        self.extremes
            .iter()
            .map(|(name, &(min, max))| (name.clone(), Range { min, max }))
            .collect()
    }
}

/// A session computing `values` of `model` (its calibration points) besides nothing else.
fn probe(model: &Model, values: &[String]) -> Result<ort::session::Session, InferenceError> {
    let names: Vec<&str> = values.iter().map(String::as_str).collect();
    let extracted = model
        .extract(&names)
        .map_err(|e| InferenceError::Ort(format!("cannot expose calibration values: {e}")))?;
    let options = SessionOptions {
        device: Device::Cpu,
        intra_threads: 0,
    };
    Ok(runtime::create_session(&extracted.to_bytes(), options)?.0)
}

/// The convolutions `stylegram models quantize` leaves in float unless told otherwise: the decoder's
/// first, which reads AdaIN's output. Those 512 channels carry the style's means and deviations, so
/// their ranges differ by orders of magnitude, and one uint8 scale for the whole tensor leaves the
/// quiet channels a handful of levels. Kept in float, the int8 bundle's pictures went from 25.1 to
/// 31.1 dB PSNR against the float model's (36 pairs at 512 px) for 8% more time; no other single
/// convolution moved it by more than 0.3 dB (docs/quantization.md).
pub const DEFAULT_KEEP_FLOAT: &[&str] = &["decoder/Conv_16"];

/// What [`quantize_bundle`] made.
pub struct QuantizedBundle {
    /// The new bundle's manifest.
    pub manifest: Manifest,
    /// What happened to the encoder graph.
    pub encoder: QuantizeReport,
    /// What happened to the decoder graph.
    pub decoder: QuantizeReport,
}

/// Writes the int8 variant of bundle `src` into `dst` (created if needed), calibrated on `set`, as
/// model `name` (default: `dst`'s folder name), with the convolutions in `keep_float`
/// (`encoder/NODE` or `decoder/NODE`) left in float; `progress` is called after each calibration
/// picture.
pub fn quantize_bundle(
    src: &Path,
    dst: &Path,
    name: Option<&str>,
    keep_float: &[String],
    set: &CalibrationSet,
    mut progress: impl FnMut(),
) -> Result<QuantizedBundle, InferenceError> {
    let kept_in = |graph: &str| -> Vec<String> {
        keep_float
            .iter()
            .filter_map(|k| k.strip_prefix(graph)?.strip_prefix('/'))
            .map(str::to_owned)
            .collect()
    };
    if let Some(bad) = keep_float
        .iter()
        .find(|k| !(k.starts_with("encoder/") || k.starts_with("decoder/")))
    {
        return Err(InferenceError::BadRequest(format!(
            "keep-float '{bad}': name a convolution as encoder/NODE or decoder/NODE"
        )));
    }
    let (manifest, encoder, decoder) = variant::read_source(src, "int8")?;
    let onnx = |e: stylegram_onnx::OnnxError| InferenceError::BadBundle {
        dir: src.to_owned(),
        message: e.to_string(),
    };

    // Encoder: every photo and style picture; keep the photos' features and the styles' statistics.
    let encoder_values = qdq::calibration_values(&encoder).map_err(onnx)?;
    let mut probe_values = encoder_values.clone();
    probe_values.extend(["features", "mean", "std"].map(str::to_owned));
    let mut session = probe(&encoder, &probe_values)?;
    let mut meter = RangeMeter::default();
    let mut run_encoder = |image: &RgbImage| -> Result<Vec<Array4<f32>>, InferenceError> {
        let padded = images::pad_reflect_to_multiple(image, SIZE_MULTIPLE);
        let input = images::to_nchw(&padded);
        let out = session.run(ort::inputs!["image" => TensorRef::from_array_view(&input)?])?;
        for name in &encoder_values {
            let (_, values) = out[name.as_str()].try_extract_tensor::<f32>()?;
            meter.add(name, values);
        }
        ["features", "mean", "std"]
            .iter()
            .map(|name| {
                let a = out[*name].try_extract_array::<f32>()?.to_owned();
                a.into_dimensionality()
                    .map_err(|e| InferenceError::Ort(format!("{name}: {e}")))
            })
            .collect()
    };
    let mut features = Vec::new();
    for photo in &set.contents {
        features.push(run_encoder(photo)?.swap_remove(0));
        progress();
    }
    let mut style_stats = Vec::new();
    for style in &set.styles {
        let mut out = run_encoder(style)?;
        let std = out.pop().expect("three outputs");
        let mean = out.pop().expect("three outputs");
        style_stats.push((mean, std));
        progress();
    }
    let encoder_ranges = meter.ranges();

    // Decoder: each photo's features with one of the styles at full strength.
    let decoder_values = qdq::calibration_values(&decoder).map_err(onnx)?;
    let mut session = probe(&decoder, &decoder_values)?;
    let mut meter = RangeMeter::default();
    let alpha = Array1::from_vec(vec![1.0f32]);
    for (i, f) in features.iter().enumerate() {
        let (mean, std) = &style_stats[i % style_stats.len()];
        let out = session.run(ort::inputs![
            "features" => TensorRef::from_array_view(f)?,
            "style_mean" => TensorRef::from_array_view(mean)?,
            "style_std" => TensorRef::from_array_view(std)?,
            "alpha" => TensorRef::from_array_view(&alpha)?,
        ])?;
        for name in &decoder_values {
            let (_, values) = out[name.as_str()].try_extract_tensor::<f32>()?;
            meter.add(name, values);
        }
        progress();
    }
    let decoder_ranges = meter.ranges();

    let bad_request = |e: stylegram_onnx::OnnxError| InferenceError::BadRequest(e.to_string());
    let (encoder_q, encoder_report) =
        qdq::quantize(&encoder, &encoder_ranges, &kept_in("encoder")).map_err(bad_request)?;
    let (decoder_q, decoder_report) =
        qdq::quantize(&decoder, &decoder_ranges, &kept_in("decoder")).map_err(bad_request)?;

    let record = serde_json::json!({
        "scheme": "int8 QDQ: weights 7-bit symmetric per output channel (exact on x86 with and without VNNI), activations uint8 asymmetric per tensor, ReLU folded into the output quantisation",
        "weight_bits": 7,
        "source_model": format!("{} {}", manifest.name, manifest.version),
        "calibration": format!(
            "{} photos and {} style pictures, long side {} px; range = smallest minimum to largest maximum over all pictures",
            set.contents.len(),
            set.styles.len(),
            set.contents.iter().chain(&set.styles).map(|i| i.width().max(i.height())).max().unwrap_or(0)
        ),
        "integer_convolutions": encoder_report.integer_convolutions + decoder_report.integer_convolutions,
        "float_convolutions": keep_float,
        "convolutions": encoder_report.convolutions + decoder_report.convolutions,
    });
    let out = variant::write(
        &manifest,
        dst,
        name,
        "int8",
        ("quantization", record),
        &encoder_q,
        &decoder_q,
    )?;
    Ok(QuantizedBundle {
        manifest: out,
        encoder: encoder_report,
        decoder: decoder_report,
    })
}
