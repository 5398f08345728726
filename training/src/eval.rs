//! Evaluation of stylized images against their content and style under the VGG: the same scores for
//! the fast model and for Gatys, so the two can be compared pair by pair.
use std::path::{Path, PathBuf};

use image::RgbImage;
use tch::{Device, Kind, Tensor};

use crate::TrainingError;
use crate::adain::mean_std;
use crate::gatys_study::evaluation_losses;
use crate::train::loss::STYLE_LAYERS;
use stylegram_quality::tensors;
use stylegram_quality::vgg::Vgg;

/// Scores of one stylized image.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Scores {
    /// Content loss: MSE of relu4_2 features against the content photo's (Gatys's content term).
    pub content: f64,
    /// Style loss (Gram): mean over relu1_1..relu5_1 of the MSE between Gram matrices.
    pub style_gram: f64,
    /// Style loss (statistics): Σ over relu1_1..relu4_1 of MSE(mean) + MSE(std) (AdaIN's style term,
    /// in the VGG's own units).
    pub style_stats: f64,
    /// Structural similarity of the luminance to the content photo's (1 = identical).
    pub ssim: f64,
}

/// Scores `output` against `content` (resized to the output's size) and `style` (at the output's
/// long side).
pub fn score(
    vgg: &Vgg,
    output: &RgbImage,
    content: &RgbImage,
    style: &RgbImage,
) -> Result<Scores, TrainingError> {
    let (content_loss, style_gram) = evaluation_losses(vgg, output, content, style)?;
    let (w, h) = output.dimensions();
    let device = vgg.device();
    let style_fit = stylegram_quality::gatys::fit_long_side(style, w.max(h));
    let x = tensors::from_image(output, device);
    let s = tensors::from_image(&style_fit, device);
    let style_stats = tch::no_grad(|| -> Result<f64, TrainingError> {
        let ours = vgg.activations(&x, &STYLE_LAYERS)?;
        let target = vgg.activations(&s, &STYLE_LAYERS)?;
        let mut total = 0.0;
        for (a, b) in ours.iter().zip(&target) {
            let ((ma, sa), (mb, sb)) = (mean_std(a), mean_std(b));
            total += (ma - mb).square().mean(Kind::Float).double_value(&[])
                + (sa - sb).square().mean(Kind::Float).double_value(&[]);
        }
        Ok(total)
    })?;
    let content_resized = stylegram_imaging::resize_exact(content, w, h);
    Ok(Scores {
        content: content_loss,
        style_gram,
        style_stats,
        ssim: ssim(output, &content_resized),
    })
}

/// Luminance (BT.601) as a `[1, 1, H, W]` f64 tensor in [0, 1].
fn luma(image: &RgbImage) -> Tensor {
    let rgb = tensors::from_image(image, Device::Cpu).to_kind(Kind::Double);
    let weights = Tensor::from_slice(&[0.299f64, 0.587, 0.114]).view([1, 3, 1, 1]);
    (rgb * weights).sum_dim_intlist([1i64].as_slice(), true, Kind::Double)
}

/// Mean SSIM (Wang et al. 2004) of the luminance of two same-sized images: 11×11 Gaussian window,
/// σ = 1.5, K1 = 0.01, K2 = 0.03, over the positions where the window fits.
pub fn ssim(a: &RgbImage, b: &RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions(), "SSIM needs equal sizes");
    let g: Vec<f64> = (-5..=5)
        .map(|i: i32| (-(f64::from(i * i)) / (2.0 * 1.5 * 1.5)).exp())
        .collect();
    let sum: f64 = g.iter().sum();
    let g = Tensor::from_slice(&g) / sum;
    let window = (g.view([11, 1]) * g.view([1, 11])).view([1, 1, 11, 11]);
    let blur = |t: &Tensor| t.conv2d(&window, None::<&Tensor>, [1, 1], [0, 0], [1, 1], 1);
    let (x, y) = (luma(a), luma(b));
    let (mx, my) = (blur(&x), blur(&y));
    let sxx = blur(&(&x * &x)) - &mx * &mx;
    let syy = blur(&(&y * &y)) - &my * &my;
    let sxy = blur(&(&x * &y)) - &mx * &my;
    let (c1, c2) = (0.01f64.powi(2), 0.03f64.powi(2));
    let map = ((&mx * &my * 2.0 + c1) * (sxy * 2.0 + c2))
        / ((&mx * &mx + &my * &my + c1) * (sxx + syy + c2));
    map.mean(Kind::Double).double_value(&[])
}

/// The sorted image files of `dir/content` and `dir/style`.
pub fn pair_folders(dir: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>), TrainingError> {
    let content = crate::train::data::ImageFolder::scan(&dir.join("content"))?;
    let style = crate::train::data::ImageFolder::scan(&dir.join("style"))?;
    Ok((content.files().to_vec(), style.files().to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(seed: u32, w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            let v = (x * 73 + y * 151 + seed * 17).wrapping_mul(2_654_435_761) >> 24;
            image::Rgb([v as u8, (v * 3) as u8, (255 - v) as u8])
        })
    }

    #[test]
    fn ssim_is_one_for_identical_images_and_drops_with_noise() {
        let a = noise(1, 40, 30);
        assert!((ssim(&a, &a) - 1.0).abs() < 1e-12);
        let b = noise(2, 40, 30);
        let s = ssim(&a, &b);
        assert!(s < 0.5, "unrelated noise: {s}");
        // Symmetric.
        assert!((s - ssim(&b, &a)).abs() < 1e-12);
    }

    #[test]
    fn ssim_of_a_constant_shift_matches_the_closed_form() {
        // For x and x + d with d constant, σ terms cancel: SSIM = (2μxμy + C1) / (μx² + μy² + C1)
        // averaged over windows; with a constant x it is exact everywhere.
        let a = RgbImage::from_pixel(20, 20, image::Rgb([100, 100, 100]));
        let b = RgbImage::from_pixel(20, 20, image::Rgb([150, 150, 150]));
        let (mx, my) = (100.0 / 255.0, 150.0 / 255.0);
        let c1 = 0.0001;
        let expected = (2.0 * mx * my + c1) / (mx * mx + my * my + c1);
        // f32 pixels in [0, 1] limit the agreement to about 1e-7.
        assert!((ssim(&a, &b) - expected).abs() < 1e-6);
    }
}
