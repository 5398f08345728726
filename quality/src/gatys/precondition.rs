//! A multi-scale preconditioner for L-BFGS on images: `P·v = Σ_{k=0..K} GAIN^k · B_k·v`, where `B_k`
//! replaces each 2^k × 2^k block of `v` by its mean (`B_0 = I`). Each `B_k = U_k U_kᵀ / 4^k`, with
//! `U_k` the nearest-neighbour upsampling cropped at the edges, so `P` is symmetric positive definite:
//! L-BFGS with `H₀ = γP` is L-BFGS on a Laplacian-pyramid parametrisation of the image, which takes
//! longer steps on smooth, large-scale changes than on pixel noise.
use tch::Tensor;

/// How much more each coarser level weighs than the next finer one (2 did best of 2 and 3 in a
/// prototype at 256 px: docs/gatys.md, "Warm starts").
pub const GAIN: f64 = 2.0;

/// `P` over `levels` coarser levels, for `[N, C, H, W]` tensors of any size.
pub fn multiscale(levels: usize) -> impl Fn(&Tensor) -> Tensor {
    move |v: &Tensor| {
        let (_, _, h, w) = v.size4().expect("[N, C, H, W]");
        let mut out = v.copy();
        for k in 1..=levels {
            let n = 1i64 << k;
            if n > h.max(w) {
                break;
            }
            // U_kᵀ v / 4^k: each block's sum (partial blocks at the edges included) over 4^k.
            let means = v.avg_pool2d([n, n], [n, n], [0, 0], true, false, n * n);
            let up = means
                .repeat_interleave_self_int(n, 2, None)
                .repeat_interleave_self_int(n, 3, None)
                .narrow(2, 0, h)
                .narrow(3, 0, w);
            out += up * GAIN.powi(k as i32);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn dot(a: &Tensor, b: &Tensor) -> f64 {
        (a * b).sum(Kind::Double).double_value(&[])
    }

    #[test]
    fn the_operator_is_symmetric_and_positive_on_sizes_that_do_not_divide() {
        tch::manual_seed(3);
        let p = multiscale(4);
        let shape = [1, 3, 37, 23];
        let u = Tensor::randn(shape, (Kind::Double, Device::Cpu));
        let v = Tensor::randn(shape, (Kind::Double, Device::Cpu));
        let (puv, upv) = (dot(&p(&u), &v), dot(&u, &p(&v)));
        assert!(
            (puv - upv).abs() < 1e-9 * puv.abs().max(1.0),
            "{puv} vs {upv}"
        );
        assert!(
            dot(&p(&u), &u) >= dot(&u, &u),
            "P = I + positive semidefinite terms"
        );
    }

    #[test]
    fn a_constant_is_scaled_by_the_sum_of_the_gains_and_noise_barely() {
        let p = multiscale(3);
        let ones = Tensor::ones([1, 1, 16, 16], (Kind::Double, Device::Cpu));
        let expected = 1.0 + GAIN + GAIN.powi(2) + GAIN.powi(3);
        assert!((p(&ones) - expected).abs().max().double_value(&[]) < 1e-12);
        // A checkerboard has zero mean over every 2^k block: only the identity term is left.
        let checker = Tensor::from_slice(&[1.0f64, -1.0])
            .repeat([8])
            .view([1, 1, 1, 16])
            .repeat([1, 1, 16, 1]);
        let checker = &checker
            * Tensor::from_slice(&[1.0f64, -1.0])
                .repeat([8])
                .view([1, 1, 16, 1]);
        assert!((p(&checker) - &checker).abs().max().double_value(&[]) < 1e-12);
    }
}
