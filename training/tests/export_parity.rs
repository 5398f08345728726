//! The exported encoder and decoder graphs, run by ONNX Runtime, compute what tch computes with the
//! same weights: on real photos, at sizes that are and are not multiples of 8. The decoder weights are
//! a seeded random initialisation (a trained checkpoint is just other numbers through the same code).
mod common;

use common::{data, vgg};
use std::collections::HashMap;

use ndarray::{Array1, Array4, ArrayD};
use ort::value::TensorRef;
use stylegram_inference::images::{self, ImageLimits};
use stylegram_inference::runtime::{self, Device, SessionOptions};
use stylegram_training::decoder::Decoder;
use stylegram_training::{adain, export, tensors};
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

#[test]
fn onnx_runtime_matches_tch_on_the_exported_graphs() {
    let vgg = vgg();
    tch::manual_seed(0);
    let vs = nn::VarStore::new(tch::Device::Cpu);
    let decoder = Decoder::new(&vs.root(), 0.01);
    let weights: HashMap<String, Tensor> = vs.variables();
    // Scale the random last layer so outputs are on an image's [0, 1] scale, as a trained decoder's
    // are; the absolute tolerance below then means what it says.
    tch::no_grad(|| {
        let _ = weights["conv8.weight"].shallow_clone().g_mul_scalar_(1e-3);
        let _ = weights["conv8.bias"].shallow_clone().g_mul_scalar_(1e-3);
    });

    let options = SessionOptions {
        device: Device::Cpu,
        intra_threads: 0,
    };
    let (mut encoder, _) =
        runtime::create_session(&export::encoder_graph(&vgg).unwrap().to_bytes(), options).unwrap();
    let (mut decoder_session, _) = runtime::create_session(
        &export::decoder_graph(&weights).unwrap().to_bytes(),
        options,
    )
    .unwrap();

    let limits = ImageLimits::default();
    let photo = images::load(data("test/content/koala.jpg"), &limits).unwrap();
    let style = images::resize_exact(
        &images::load(data("test/style/vangog.jpg"), &limits).unwrap(),
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
