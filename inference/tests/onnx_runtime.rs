//! Graphs built with our `onnx` crate, run by ONNX Runtime through `ort`, give the numbers a direct
//! computation gives.
use ndarray::{Array4, ArrayD};
use ort::value::TensorRef;
use stylegram_inference::runtime::{self, Device, Provider, SessionOptions};
use stylegram_onnx::{Dim, GraphBuilder};

const CIN: usize = 3;
const COUT: usize = 4;

fn weights() -> (Vec<f32>, Vec<f32>) {
    let w = (0..COUT * CIN * 9)
        .map(|i| ((i * 37 % 23) as f32 - 11.0) / 10.0)
        .collect();
    let b = (0..COUT).map(|i| i as f32 * 0.25 - 0.5).collect();
    (w, b)
}

/// conv 3×3 stride 1 pad 1 → relu, with symbolic batch/height/width.
fn conv_relu_bytes() -> Vec<u8> {
    let (w, b) = weights();
    let mut g = GraphBuilder::new("conv_relu");
    let x = g.input(
        "x",
        &[
            Dim::named("N"),
            (CIN as i64).into(),
            Dim::named("H"),
            Dim::named("W"),
        ],
    );
    let w = g.initializer("w", &[COUT, CIN, 3, 3], &w).unwrap();
    let b = g.initializer("b", &[COUT], &b).unwrap();
    let y = g
        .op("Conv")
        .inputs([&x, &w, &b])
        .ints("pads", &[1, 1, 1, 1])
        .ints("kernel_shape", &[3, 3])
        .build();
    let y = g.op("Relu").input(&y).build();
    g.output(
        &y,
        "y",
        &[
            Dim::named("N"),
            (COUT as i64).into(),
            Dim::named("H"),
            Dim::named("W"),
        ],
    );
    g.finish().to_bytes()
}

/// The same layer computed with plain loops.
fn direct_conv_relu(x: &Array4<f32>) -> Array4<f32> {
    let (w, b) = weights();
    let (n, _, h, wd) = x.dim();
    Array4::from_shape_fn((n, COUT, h, wd), |(n, o, y, xx)| {
        let mut sum = b[o];
        for c in 0..CIN {
            for ky in 0..3 {
                for kx in 0..3 {
                    let (sy, sx) = (y as isize + ky as isize - 1, xx as isize + kx as isize - 1);
                    if sy >= 0 && sx >= 0 && (sy as usize) < h && (sx as usize) < wd {
                        sum += w[((o * CIN + c) * 3 + ky) * 3 + kx]
                            * x[(n, c, sy as usize, sx as usize)];
                    }
                }
            }
        }
        sum.max(0.0)
    })
}

#[test]
fn built_conv_graph_matches_direct_convolution_at_several_sizes() {
    let options = SessionOptions {
        device: Device::Cpu,
        intra_threads: 1,
    };
    let (mut session, provider) =
        runtime::create_session(&conv_relu_bytes(), options).expect("session");
    assert_eq!(provider, Provider::Cpu);
    for (n, h, w) in [(1, 5, 7), (2, 16, 9)] {
        let x = Array4::from_shape_fn((n, CIN, h, w), |(a, b, c, d)| {
            ((a * 7 + b * 5 + c * 3 + d) % 11) as f32 / 5.0 - 1.0
        });
        let outputs = session
            .run(ort::inputs!["x" => TensorRef::from_array_view(&x).unwrap()])
            .unwrap();
        let y: ArrayD<f32> = outputs["y"].try_extract_array::<f32>().unwrap().to_owned();
        let expected = direct_conv_relu(&x);
        assert_eq!(y.shape(), expected.shape());
        let max_diff = y
            .iter()
            .zip(expected.iter())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(
            max_diff < 1e-5,
            "max |ort - direct| = {max_diff} at {n}×{h}×{w}"
        );
        assert!(
            expected.iter().any(|&v| v > 0.5),
            "the test input exercises non-zero outputs"
        );
    }
}

#[test]
fn corrupt_model_bytes_give_an_error_not_a_panic() {
    let err = runtime::create_session(b"not an onnx model", SessionOptions::default()).unwrap_err();
    assert!(err.to_string().starts_with("ONNX Runtime:"), "{err}");
}
