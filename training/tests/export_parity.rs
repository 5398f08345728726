//! An exported bundle's encoder and decoder graphs, run by ONNX Runtime, compute what tch computes with
//! the same weights: on real photos, at sizes that are and are not multiples of 8; and the serving
//! pipeline (`AdainModel`) returns the photo's own size. The decoder weights are a seeded random
//! initialisation (a trained checkpoint is just other numbers through the same code).
mod common;

use common::{picture, vgg};
use std::collections::HashMap;
use std::path::Path;

use ndarray::{Array1, Array4, ArrayD};
use ort::value::TensorRef;
use stylegram_imaging::{self as images, ImageLimits};
use stylegram_inference::adain::AdainModel;
use stylegram_inference::bundle::Manifest;
use stylegram_inference::runtime::{self, Device, SessionOptions};
use stylegram_quality::tensors;
use stylegram_quality::vgg::Vgg;
use stylegram_training::decoder::Decoder;
use stylegram_training::train::checkpoint::State;
use stylegram_training::{adain, export};
use tch::Tensor;
use tch::nn::{self, Module};

fn to_array(t: &Tensor) -> Array4<f32> {
    let (n, c, h, w) = t.size4().unwrap();
    let v: Vec<f32> = t.contiguous().flatten(0, -1).try_into().unwrap();
    Array4::from_shape_vec((n as usize, c as usize, h as usize, w as usize), v).unwrap()
}

fn max_abs_diff(a: &ArrayD<f32>, b: &Array4<f32>) -> (f32, f32) {
    assert_eq!(a.shape(), b.shape());
    let diff = a
        .iter()
        .zip(b.iter())
        .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
    let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    (diff, scale)
}

/// A seeded random decoder whose outputs are on an image's [0, 1] scale, as a trained decoder's are
/// (so the absolute tolerances below mean what they say).
fn decoder() -> (nn::VarStore, Decoder) {
    tch::manual_seed(0);
    let vs = nn::VarStore::new(tch::Device::Cpu);
    let decoder = Decoder::new(&vs.root(), 0.01);
    let weights = vs.variables();
    tch::no_grad(|| {
        let _ = weights["conv8.weight"].shallow_clone().g_mul_scalar_(1e-3);
        let _ = weights["conv8.bias"].shallow_clone().g_mul_scalar_(1e-3);
        let _ = weights["conv8.bias"].shallow_clone().g_add_scalar_(0.5);
    });
    (vs, decoder)
}

/// Writes a bundle of `vgg` and `weights` to `dir` and reads it back, verified.
fn write_bundle(dir: &Path, vgg: &Vgg, weights: &HashMap<String, Tensor>) -> Manifest {
    export::write_bundle(
        dir,
        vgg,
        weights,
        export::BundleInfo {
            name: "parity".into(),
            version: "0.0.1".into(),
            state: State {
                iteration: 0,
                layer_scales: [1.0; 4],
                recipe: serde_json::json!({}),
                elapsed_s: 0.0,
                adam_steps: None,
            },
            data: "none".into(),
            hardware: "test".into(),
            metrics: serde_json::json!({}),
        },
    )
    .unwrap();
    Manifest::read_verified(dir).unwrap()
}

#[test]
fn onnx_runtime_matches_tch_on_the_exported_graphs() {
    let vgg = vgg();
    let (vs, decoder) = decoder();
    let weights: HashMap<String, Tensor> = vs.variables();

    let options = SessionOptions {
        device: Device::Cpu,
        intra_threads: 0,
    };
    let dir = tempfile::tempdir().unwrap();
    let bundle = write_bundle(dir.path(), &vgg, &weights);
    let open = |graph: &str| {
        let bytes = std::fs::read(bundle.graph_path(dir.path(), graph).unwrap()).unwrap();
        runtime::create_session(&bytes, options).unwrap().0
    };
    let (mut encoder, mut decoder_session) = (open("encoder"), open("decoder"));

    let limits = ImageLimits::default();
    let photo = images::load(picture("great-wave.jpg"), &limits).unwrap();
    let style = images::resize_exact(
        &images::load(picture("starry-night-rhone.jpg"), &limits).unwrap(),
        88,
        72,
    );
    let style_t = tensors::from_image(&style, tch::Device::Cpu);
    let alpha = 0.7f32;

    // Style statistics once, from ONNX Runtime's encoder (as the server will cache them).
    let out = encoder
        .run(ort::inputs!["image" => TensorRef::from_array_view(&to_array(&style_t)).unwrap()])
        .unwrap();
    let style_mean = out["mean"].try_extract_array::<f32>().unwrap().to_owned();
    let style_std = out["std"].try_extract_array::<f32>().unwrap().to_owned();
    drop(out);
    let (tch_mean, tch_std) =
        adain::mean_std(&vgg.activations(&style_t, &[export::ENCODER_LAYER]).unwrap()[0]);
    let (d, s) = max_abs_diff(&style_mean, &to_array(&tch_mean));
    assert!(d <= 1e-4 * s.max(1.0), "style mean differs by {d}");
    let (d, s) = max_abs_diff(&style_std, &to_array(&tch_std));
    assert!(d <= 1e-4 * s.max(1.0), "style std differs by {d}");

    for (w, h) in [(64u32, 64u32), (100, 72), (97, 130)] {
        let content = tensors::from_image(&images::resize_exact(&photo, w, h), tch::Device::Cpu);
        let reference = tch::no_grad(|| {
            let f = &vgg.activations(&content, &[export::ENCODER_LAYER]).unwrap()[0];
            let t = adain::adain_with_stats(f, &tch_mean, &tch_std);
            (
                f.shallow_clone(),
                decoder.forward(&adain::blend(&t, f, f64::from(alpha))),
            )
        });

        let out = encoder
            .run(ort::inputs!["image" => TensorRef::from_array_view(&to_array(&content)).unwrap()])
            .unwrap();
        let features = out["features"]
            .try_extract_array::<f32>()
            .unwrap()
            .to_owned();
        drop(out);
        let (d, s) = max_abs_diff(&features, &to_array(&reference.0));
        assert!(
            d <= 1e-4 * s,
            "{w}×{h}: encoder features differ by {d} (max {s})"
        );

        let alpha_in = Array1::from_vec(vec![alpha]);
        let out = decoder_session
            .run(ort::inputs![
                "features" => TensorRef::from_array_view(&features).unwrap(),
                "style_mean" => TensorRef::from_array_view(&style_mean).unwrap(),
                "style_std" => TensorRef::from_array_view(&style_std).unwrap(),
                "alpha" => TensorRef::from_array_view(&alpha_in).unwrap(),
            ])
            .unwrap();
        let image = out["image"].try_extract_array::<f32>().unwrap().to_owned();
        let expected = to_array(&reference.1);
        assert_eq!(
            image.shape(),
            &[1, 3, (h / 8 * 8) as usize, (w / 8 * 8) as usize]
        );
        let (d, s) = max_abs_diff(&image, &expected);
        assert!(
            s > 0.1 && s < 10.0,
            "{w}×{h}: outputs should be on an image's scale, max |value| {s}"
        );
        assert!(
            d <= 1e-4,
            "{w}×{h}: decoded image differs by {d} (max |value| {s})"
        );
        eprintln!("{w}×{h}: max |ORT − tch| = {d:.2e} (max |value| {s:.2})");
    }
}

#[test]
fn the_serving_pipeline_keeps_the_photo_size_and_matches_tch() {
    let vgg = vgg();
    let (vs, decoder) = decoder();
    let dir = tempfile::tempdir().unwrap();
    write_bundle(dir.path(), &vgg, &vs.variables());
    let model = AdainModel::load(
        dir.path(),
        SessionOptions {
            device: Device::Cpu,
            intra_threads: 0,
        },
    )
    .unwrap();
    let limits = ImageLimits::default();
    let photo = images::resize_exact(
        &images::load(picture("portrait-of-metzinger.jpg"), &limits).unwrap(),
        101,
        75,
    );
    let style = images::resize_exact(
        &images::load(picture("composition-vii.jpg"), &limits).unwrap(),
        96,
        96,
    );
    let stats = model.style_stats(&style).unwrap();
    let out = model.transfer(&photo, &stats, 1.0).unwrap();
    assert_eq!(
        out.dimensions(),
        (101, 75),
        "padding to 104×80 is cropped away"
    );

    // tch on the same reflect-padded photo, cropped back.
    let padded = tensors::from_image(
        &images::pad_reflect_to_multiple(&photo, 8),
        tch::Device::Cpu,
    );
    let style_t = tensors::from_image(&style, tch::Device::Cpu);
    let reference =
        stylegram_training::train::paint_batch(&vgg, &decoder, &padded, &style_t).unwrap();
    let reference = images::crop_to(&tensors::to_image(&reference), 101, 75);
    let worst = out
        .pixels()
        .zip(reference.pixels())
        .flat_map(|(a, b)| (0..3).map(move |c| (i16::from(a.0[c]) - i16::from(b.0[c])).abs()))
        .max()
        .unwrap();
    assert!(worst <= 1, "8-bit outputs differ by {worst} levels");
}
