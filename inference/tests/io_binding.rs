//! The I/O-bound transfer (what CUDA sessions run: features left on the device between encoder and
//! decoder) paints the same picture as the plain one. Checked here on the CPU, where both run the
//! same kernels through different APIs.
mod common;

use common::{options, repo, wave_starry_night};
use stylegram_imaging::{self as images, ImageLimits};
use stylegram_inference::adain::AdainModel;

#[test]
fn the_bound_transfer_paints_what_the_plain_one_does() {
    let load = |p: &str| {
        images::fit_max_side(images::load(repo(p), &ImageLimits::default()).unwrap(), 256)
    };
    // 256×142: the height is not a multiple of 8, so the padding and the crop are exercised too.
    let photo = load("styles/great-wave.jpg");
    let style = load("styles/starry-night-rhone.jpg");
    for bundle in ["models/adain-v1", "models/adain-v1-int8"] {
        let model = AdainModel::load(&repo(bundle), options()).unwrap();
        let stats = model.style_stats(&style).unwrap();
        for alpha in [1.0, 0.4] {
            let plain = wave_starry_night(&model, alpha);
            let bound = model.transfer_bound(&photo, &stats, alpha).unwrap();
            assert_eq!(bound.dimensions(), photo.dimensions(), "{bundle}");
            assert_eq!(bound.dimensions().1 % 8, 6);
            let worst = plain
                .as_raw()
                .iter()
                .zip(bound.as_raw())
                .map(|(a, b)| a.abs_diff(*b))
                .max()
                .unwrap();
            assert!(
                worst <= 1,
                "{bundle} at alpha {alpha}: {worst} levels apart"
            );
        }
    }
}
