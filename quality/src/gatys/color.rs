//! Colour preservation by luminance-only transfer (Gatys et al., "Preserving Color in Neural Artistic
//! Style Transfer", 2016): optimise a grey image against grey content and styles, then put the result's
//! luminance under the content's chroma.
use tch::Tensor;

/// ITU-R BT.601 luma weights, the Y row of YIQ.
const LUMA: [f64; 3] = [0.299, 0.587, 0.114];

/// Luminance of an RGB batch: `[N, 3, H, W]` → `[N, 1, H, W]`.
pub fn luminance(rgb: &Tensor) -> Tensor {
    let weights = Tensor::from_slice(&LUMA)
        .to_kind(rgb.kind())
        .to_device(rgb.device())
        .view([1, 3, 1, 1]);
    (rgb * weights).sum_dim_intlist([1i64].as_slice(), true, rgb.kind())
}

/// A grey RGB image with the same luminance: `[N, 3, H, W]`.
pub fn grey(rgb: &Tensor) -> Tensor {
    luminance(rgb).repeat([1, 3, 1, 1])
}

/// `content` with its luminance replaced by that of `stylized` (both `[N, 3, H, W]`, same size).
///
/// The I and Q rows of YIQ each sum to zero, so adding the same ΔY to R, G and B changes Y by ΔY and
/// leaves I and Q, the chroma, exactly as in the content.
pub fn keep_content_chroma(content: &Tensor, stylized: &Tensor) -> Tensor {
    (content + (luminance(stylized) - luminance(content))).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    /// I and Q of YIQ (FCC NTSC coefficients).
    fn chroma(rgb: &Tensor) -> (Tensor, Tensor) {
        let w = |c: [f64; 3]| {
            Tensor::from_slice(&c)
                .to_kind(Kind::Float)
                .view([1, 3, 1, 1])
        };
        let i = (rgb * w([0.596, -0.274, -0.322])).sum_dim_intlist(
            [1i64].as_slice(),
            false,
            Kind::Float,
        );
        let q = (rgb * w([0.211, -0.523, 0.312])).sum_dim_intlist(
            [1i64].as_slice(),
            false,
            Kind::Float,
        );
        (i, q)
    }

    #[test]
    fn output_has_content_chroma_and_stylized_luminance() {
        tch::manual_seed(1);
        // Mid-range colours so that nothing clips.
        let content = Tensor::rand([1, 3, 6, 6], (Kind::Float, Device::Cpu)) * 0.4 + 0.3;
        let stylized = Tensor::rand([1, 3, 6, 6], (Kind::Float, Device::Cpu)) * 0.2 + 0.4;
        let out = keep_content_chroma(&content, &stylized);
        let (ci, cq) = chroma(&content);
        let (oi, oq) = chroma(&out);
        assert!(ci.allclose(&oi, 1e-5, 1e-5, false) && cq.allclose(&oq, 1e-5, 1e-5, false));
        assert!(luminance(&out).allclose(&luminance(&stylized), 1e-5, 1e-5, false));
        assert!(grey(&content).size() == [1, 3, 6, 6]);
    }
}
