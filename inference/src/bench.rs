//! Measuring the fast-mode path: convolution FLOPs of a bundle's graphs, and latency percentiles.
use std::path::Path;
use std::time::Instant;

use stylegram_onnx::Model;

use crate::InferenceError;

/// Convolution FLOPs (2 per multiply–add) of `model` on an `h`×`w` input whose spatial size is
/// `input_scale` times the image's (1 for the encoder, 1/8 for the decoder's features): walks the
/// nodes in order, halving at MaxPool and doubling at Resize.
pub fn conv_flops(
    model: &Model,
    h: usize,
    w: usize,
    input_scale: f64,
) -> Result<f64, InferenceError> {
    let mut scale = input_scale;
    let mut flops = 0.0;
    for node in model.nodes() {
        match node.op_type() {
            "MaxPool" => scale /= 2.0,
            "Resize" => scale *= 2.0,
            "Conv" => {
                let weight = node
                    .input
                    .get(1)
                    .ok_or_else(|| InferenceError::Ort("a Conv node without weights".into()))?;
                let dims = model
                    .weight_dims(weight)
                    .map_err(|e| InferenceError::Ort(e.to_string()))?;
                let macs_per_pixel: usize = dims.iter().product();
                flops += 2.0 * macs_per_pixel as f64 * (h as f64 * scale) * (w as f64 * scale);
            }
            _ => {}
        }
    }
    Ok(flops)
}

/// Convolution FLOPs of a bundle (encoder and decoder) for one `h`×`w` photo.
pub fn bundle_flops(dir: &Path, h: usize, w: usize) -> Result<f64, InferenceError> {
    let read = |file: &str| {
        Model::from_file(dir.join(file)).map_err(|e| InferenceError::BadBundle {
            dir: dir.to_owned(),
            message: e.to_string(),
        })
    };
    Ok(conv_flops(&read("encoder.onnx")?, h, w, 1.0)?
        + conv_flops(&read("decoder.onnx")?, h, w, 1.0 / 8.0)?)
}

/// Median and 95th percentile of a set of durations in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latency {
    /// 50th percentile.
    pub p50: f64,
    /// 95th percentile (linear interpolation between ranks).
    pub p95: f64,
}

/// Percentiles of `seconds` (at least one value).
pub fn latency(seconds: &[f64]) -> Latency {
    let mut s = seconds.to_vec();
    s.sort_by(f64::total_cmp);
    let at = |q: f64| {
        let rank = q * (s.len() - 1) as f64;
        let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
        s[lo] + (s[hi] - s[lo]) * (rank - lo as f64)
    };
    Latency {
        p50: at(0.5),
        p95: at(0.95),
    }
}

/// Times `f` `runs` times after one warm-up run; returns the seconds of each timed run.
pub fn time_runs<T>(
    runs: usize,
    mut f: impl FnMut() -> Result<T, InferenceError>,
) -> Result<Vec<f64>, InferenceError> {
    f()?;
    (0..runs)
        .map(|_| {
            let start = Instant::now();
            f()?;
            Ok(start.elapsed().as_secs_f64())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate_between_ranks() {
        let l = latency(&[5.0, 1.0, 3.0, 2.0, 4.0]);
        assert_eq!(l.p50, 3.0);
        assert!((l.p95 - 4.8).abs() < 1e-12);
        assert_eq!(latency(&[7.0]).p95, 7.0);
    }

    #[test]
    fn flops_of_the_shipped_model_follow_the_layer_table() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/adain-v1");
        // By hand, per pixel of a 512×512 photo: encoder convs 3·64, 64·64 at full size; 64·128,
        // 128·128 at 1/4; 128·256, 2×256·256 at 1/16; 256·512 at 1/64; decoder mirrored.
        let encoder: f64 = [3 * 64, 64 * 64].iter().map(|&c| c as f64).sum::<f64>()
            + [64 * 128, 128 * 128]
                .iter()
                .map(|&c| c as f64 / 4.0)
                .sum::<f64>()
            + [128 * 256, 256 * 256, 256 * 256]
                .iter()
                .map(|&c| c as f64 / 16.0)
                .sum::<f64>()
            + (256 * 512) as f64 / 64.0;
        let decoder: f64 = (512 * 256) as f64 / 64.0
            + [256 * 256, 256 * 256, 256 * 128]
                .iter()
                .map(|&c| c as f64 / 16.0)
                .sum::<f64>()
            + [128 * 128, 128 * 64]
                .iter()
                .map(|&c| c as f64 / 4.0)
                .sum::<f64>()
            + [64 * 64, 64 * 3].iter().map(|&c| c as f64).sum::<f64>();
        let expected = 2.0 * 9.0 * 512.0 * 512.0 * (encoder + decoder);
        let flops = bundle_flops(&dir, 512, 512).unwrap();
        assert!(
            (flops - expected).abs() < 1e-6 * expected,
            "{flops} vs {expected}"
        );
    }
}
