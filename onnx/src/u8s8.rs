//! The integer dot product that x86 CPUs use for u8 × s8 convolutions, and the weight range that
//! keeps it exact everywhere.
//!
//! With AVX-512 VNNI or AVX-VNNI (`vpdpbusd`), four u8 × s8 products go straight into an i32: exact.
//! Without VNNI (AVX2, SSE4.1: every AMD EPYC before Zen 4, older Xeons), ONNX Runtime's MLAS kernels
//! use `vpmaddubsw`: two u8 × s8 products are added in a *saturating* i16, then `vpmaddwd` widens
//! those pair sums to i32. With 8-bit weights a pair reaches 2 · 255 · 127 = 64 770, far past
//! i16::MAX = 32 767, and the convolution is silently wrong. With weights in ±[`WEIGHT_LIMIT`]
//! (7 bits, ONNX Runtime's `reduce_range`) a pair is at most 2 · 255 · 63 = 32 130: both paths give
//! the same integers on every x86-64 CPU.

/// The largest weight magnitude that keeps every u8 × s8 pair sum inside an i16: ⌊32767 / 510⌋ = 64,
/// less one so that a symmetric range has an odd number of levels (−63..=63, 127 levels, 7 bits).
pub const WEIGHT_LIMIT: i8 = 63;

/// `Σ a_k · w_k` in exact i32 arithmetic: what VNNI computes.
pub fn dot_exact(activations: &[u8], weights: &[i8]) -> i32 {
    activations
        .iter()
        .zip(weights)
        .map(|(&a, &w)| i32::from(a) * i32::from(w))
        .sum()
}

/// `Σ a_k · w_k` as `vpmaddubsw` + `vpmaddwd` compute it without VNNI: products taken two by two,
/// each pair summed with i16 saturation, the pair sums then added exactly in i32.
pub fn dot_pairwise_saturating(activations: &[u8], weights: &[i8]) -> i32 {
    activations
        .chunks(2)
        .zip(weights.chunks(2))
        .map(|(a, w)| dot_exact(a, w).clamp(i32::from(i16::MIN), i32::from(i16::MAX)))
        .sum()
}

/// The largest magnitude any pair sum can reach for weights `weights` of one output channel, over
/// every way of pairing them and every u8 input: 255 × the two largest weights of one sign.
pub fn worst_pair_sum(weights: &[i8]) -> i32 {
    let top_two = |sign: i32| {
        let mut best = [0i32; 2];
        for &w in weights {
            let v = i32::from(w) * sign;
            if v > best[0] {
                best = [v, best[0]];
            } else if v > best[1] {
                best[1] = v;
            }
        }
        best[0] + best[1]
    };
    255 * top_two(1).max(top_two(-1))
}

/// Whether every output channel of an int8 weight tensor (`per_channel` weights each, in ONNX's
/// `[out, in, kh, kw]` order) gives the same result with and without VNNI, whatever the input.
pub fn saturation_free(weights: &[i8], per_channel: usize) -> bool {
    weights
        .chunks(per_channel.max(1))
        .all(|channel| worst_pair_sum(channel) <= i32::from(i16::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (xorshift), enough for test inputs.
    fn values(seed: u64, n: usize) -> Vec<u64> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x
            })
            .collect()
    }

    #[test]
    fn eight_bit_weights_overflow_the_pairwise_path() {
        // A bright input patch under large positive weights: the textbook failure.
        let weights = [127i8, 120, -30, 5, 100, 127, 7, -127];
        let activations = [255u8, 250, 10, 0, 240, 255, 3, 0];
        assert_ne!(
            dot_pairwise_saturating(&activations, &weights),
            dot_exact(&activations, &weights)
        );
        assert!(!saturation_free(&weights, weights.len()));
    }

    #[test]
    fn seven_bit_weights_agree_on_every_input() {
        for seed in 1..200u64 {
            let r = values(seed, 2 * 288);
            let weights: Vec<i8> = r[..288]
                .iter()
                .map(|v| (*v % 127) as i8 - WEIGHT_LIMIT)
                .collect();
            let activations: Vec<u8> = r[288..].iter().map(|v| *v as u8).collect();
            assert!(saturation_free(&weights, 288));
            assert_eq!(
                dot_pairwise_saturating(&activations, &weights),
                dot_exact(&activations, &weights)
            );
            // The adversarial input: 255 where the weight is positive.
            let worst: Vec<u8> = weights
                .iter()
                .map(|&w| if w > 0 { 255 } else { 0 })
                .collect();
            assert_eq!(
                dot_pairwise_saturating(&worst, &weights),
                dot_exact(&worst, &weights)
            );
        }
    }

    #[test]
    fn the_bound_is_tight() {
        assert!(saturation_free(&[64, 64], 2)); // 255 · 128 = 32 640
        assert!(!saturation_free(&[65, 64], 2)); // 255 · 129 = 32 895
        assert!(saturation_free(&[-64, -64], 2));
        assert_eq!(worst_pair_sum(&[10, -3, 7, -60, -50]), 255 * 110);
    }
}
