//! Adaptive instance normalisation (Huang & Belongie, "Arbitrary Style Transfer in Real-time with
//! Adaptive Instance Normalization", 2017, equation 8):
//!
//! ```text
//! AdaIN(x, y) = σ(y) · (x − μ(x)) / σ(x) + μ(y)
//! ```
//!
//! with μ and σ the per-sample, per-channel mean and standard deviation over the spatial axes.
use tch::{Kind, Tensor};

/// Added to the variance before the square root (the reference implementation's 1e-5).
pub const EPS: f64 = 1e-5;

/// Per-channel mean and standard deviation of `[N, C, H, W]` features, each `[N, C, 1, 1]`, in f32.
/// The variance is the biased one (divide by H·W) plus [`EPS`].
pub fn mean_std(features: &Tensor) -> (Tensor, Tensor) {
    let f = features.to_kind(Kind::Float);
    let mean = f.mean_dim([2i64, 3].as_slice(), true, Kind::Float);
    let var = (&f - &mean)
        .square()
        .mean_dim([2i64, 3].as_slice(), true, Kind::Float);
    (mean, (var + EPS).sqrt())
}

/// AdaIN: `content` features renormalised to the statistics of `style` features.
pub fn adain(content: &Tensor, style: &Tensor) -> Tensor {
    let (style_mean, style_std) = mean_std(style);
    adain_with_stats(content, &style_mean, &style_std)
}

/// AdaIN with precomputed style statistics (`[N or 1, C, 1, 1]` each), so a style's statistics can be
/// computed once and cached.
pub fn adain_with_stats(content: &Tensor, style_mean: &Tensor, style_std: &Tensor) -> Tensor {
    let (mean, std) = mean_std(content);
    (content.to_kind(Kind::Float) - mean) / std * style_std + style_mean
}

/// The strength control: `alpha · target + (1 − alpha) · content`, alpha in [0, 1].
pub fn blend(target: &Tensor, content: &Tensor, alpha: f64) -> Tensor {
    target * alpha + content.to_kind(Kind::Float) * (1.0 - alpha)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn features(seed: i64, scale: f64, shift: f64) -> Tensor {
        tch::manual_seed(seed);
        Tensor::randn([2, 3, 5, 7], (Kind::Float, Device::Cpu)) * scale + shift
    }

    #[test]
    fn output_takes_the_style_statistics() {
        let content = features(1, 2.0, -1.0);
        let style = features(2, 0.5, 3.0);
        let out = adain(&content, &style);
        let (m_out, s_out) = mean_std(&out);
        let (m_style, s_style) = mean_std(&style);
        assert!(m_out.allclose(&m_style, 1e-4, 1e-4, false));
        // σ(out) equals σ(y) up to the eps inside σ(x).
        assert!(s_out.allclose(&s_style, 1e-3, 1e-3, false));
    }

    #[test]
    fn matches_equation_8_element_by_element() {
        let x = features(3, 1.5, 0.2);
        let y = features(4, 0.7, -0.4);
        // μ, σ written out with plain loops over one sample/channel.
        let xs: Vec<f32> = x.get(1).get(2).flatten(0, -1).try_into().unwrap();
        let ys: Vec<f32> = y.get(1).get(2).flatten(0, -1).try_into().unwrap();
        let stats = |v: &[f32]| {
            let n = v.len() as f64;
            let m = v.iter().map(|&a| f64::from(a)).sum::<f64>() / n;
            let var = v.iter().map(|&a| (f64::from(a) - m).powi(2)).sum::<f64>() / n;
            (m, (var + EPS).sqrt())
        };
        let ((mx, sx), (my, sy)) = (stats(&xs), stats(&ys));
        let out: Vec<f32> = adain(&x, &y)
            .get(1)
            .get(2)
            .flatten(0, -1)
            .try_into()
            .unwrap();
        for (o, xv) in out.iter().zip(&xs) {
            let expected = sy * (f64::from(*xv) - mx) / sx + my;
            assert!((f64::from(*o) - expected).abs() < 1e-4, "{o} vs {expected}");
        }
    }

    #[test]
    fn alpha_zero_is_the_content_and_one_the_target() {
        let content = features(5, 1.0, 0.0);
        let target = adain(&content, &features(6, 2.0, 1.0));
        assert!(blend(&target, &content, 0.0).allclose(&content, 1e-6, 1e-6, false));
        assert!(blend(&target, &content, 1.0).allclose(&target, 1e-6, 1e-6, false));
        let half = blend(&target, &content, 0.5);
        assert!(half.allclose(&((&target + &content) * 0.5), 1e-6, 1e-6, false));
    }

    #[test]
    fn cached_statistics_give_the_same_result() {
        let content = features(7, 1.0, 0.0);
        let style = features(8, 3.0, 2.0);
        let (m, s) = mean_std(&style);
        assert!(adain(&content, &style).allclose(
            &adain_with_stats(&content, &m, &s),
            1e-6,
            1e-6,
            false
        ));
    }
}
