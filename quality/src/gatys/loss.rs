//! Gatys et al. (2015) losses: content = feature MSE, style = Gram-matrix MSE, plus total variation.
//! Computed in f32 whatever the image precision.
use tch::{Kind, Tensor};

/// The Gram matrix of a feature map, normalised by its size: G = F Fᵀ / (C·H·W).
/// It keeps which channels fire together (texture) and forgets where (layout).
pub fn gram(features: &Tensor) -> Tensor {
    let (n, c, h, w) = features.size4().expect("features are [N, C, H, W]");
    let features = features.to_kind(Kind::Float);
    let scale = (c * h * w) as f64;
    if features.is_contiguous() {
        let f = features.reshape([n, c, h * w]); // [N, C, HW]
        f.matmul(&f.transpose(1, 2)) / scale // [N, C, C]
    } else {
        // Channels-last features (bf16 VGG): [N, HW, C] is a view, no copy.
        let f = features.permute([0, 2, 3, 1]).reshape([n, h * w, c]);
        f.transpose(1, 2).matmul(&f) / scale
    }
}

/// Mean squared error in f32.
pub fn mse(a: &Tensor, b: &Tensor) -> Tensor {
    a.to_kind(Kind::Float)
        .mse_loss(&b.to_kind(Kind::Float), tch::Reduction::Mean)
}

/// Total variation: mean squared difference between neighbouring pixels, which penalises noise.
pub fn total_variation(image: &Tensor) -> Tensor {
    let image = image.to_kind(Kind::Float);
    let (_, _, h, w) = image.size4().expect("image is [N, 3, H, W]");
    let dy = image.narrow(2, 1, h - 1) - image.narrow(2, 0, h - 1);
    let dx = image.narrow(3, 1, w - 1) - image.narrow(3, 0, w - 1);
    dy.square().mean(Kind::Float) + dx.square().mean(Kind::Float)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn gram_matches_the_definition() {
        // Two channels over a 1×3 map: F = [[1, 2, 3], [0, 1, 0]]; F Fᵀ = [[14, 2], [2, 1]]; / (2·1·3).
        let f = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 0.0, 1.0, 0.0]).view([1, 2, 1, 3]);
        let g: Vec<f32> = gram(&f).flatten(0, -1).try_into().unwrap();
        let expected = [14.0 / 6.0, 2.0 / 6.0, 2.0 / 6.0, 1.0 / 6.0];
        for (a, b) in g.iter().zip(expected) {
            assert!((a - b).abs() < 1e-6, "{g:?}");
        }
    }

    #[test]
    fn gram_is_the_same_for_channels_last_features() {
        let f = Tensor::rand([1, 4, 5, 6], (Kind::Float, Device::Cpu));
        let channels_last = f.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2]);
        assert!(!channels_last.is_contiguous());
        assert!(gram(&f).allclose(&gram(&channels_last), 1e-5, 1e-6, false));
    }

    #[test]
    fn gram_ignores_spatial_layout() {
        let f = Tensor::rand([1, 4, 5, 6], (Kind::Float, Device::Cpu));
        let shuffled = f
            .reshape([1, 4, 30])
            .index_select(2, &Tensor::randperm(30, (Kind::Int64, Device::Cpu)))
            .reshape([1, 4, 5, 6]);
        assert!(gram(&f).allclose(&gram(&shuffled), 1e-5, 1e-6, false));
    }

    #[test]
    fn total_variation_is_zero_for_flat_images_only() {
        let flat = Tensor::ones([1, 3, 8, 8], (Kind::Float, Device::Cpu)) * 0.4;
        assert_eq!(total_variation(&flat).double_value(&[]), 0.0);
        let stripes = Tensor::from_slice(&[0.0f32, 1.0]).repeat([1, 3, 8, 4]);
        // Horizontal neighbours always differ by 1, vertical never: mean dx² = 1, dy² = 0.
        assert!((total_variation(&stripes).double_value(&[]) - 1.0).abs() < 1e-6);
    }
}
