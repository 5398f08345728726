//! Builder → bytes → reader round trips, subgraph extraction and error cases.
use stylegram_onnx::{Dim, GraphBuilder, Model, OnnxError};

/// conv(3→2, 3×3, pad 1) → relu → identity output, with dynamic batch and spatial dims.
fn conv_relu_model() -> (Model, Vec<f32>) {
    let mut g = GraphBuilder::new("conv_relu");
    g.metadata("purpose", "test");
    let x = g.input(
        "image",
        &[Dim::named("N"), 3.into(), Dim::named("H"), Dim::named("W")],
    );
    let weight: Vec<f32> = (0..2 * 3 * 3 * 3).map(|i| i as f32 * 0.01 - 0.2).collect();
    let w = g
        .initializer("conv.weight", &[2, 3, 3, 3], &weight)
        .unwrap();
    let b = g.initializer("conv.bias", &[2], &[0.5, -0.5]).unwrap();
    let y = g
        .op("Conv")
        .inputs([&x, &w, &b])
        .ints("pads", &[1, 1, 1, 1])
        .ints("kernel_shape", &[3, 3])
        .build();
    let r = g.op("Relu").input(&y).build();
    g.output(
        &r,
        "features",
        &[Dim::named("N"), 2.into(), Dim::named("H"), Dim::named("W")],
    );
    (g.finish(), weight)
}

#[test]
fn built_model_survives_bytes_round_trip() {
    let (model, weight) = conv_relu_model();
    let read = Model::from_bytes(&model.to_bytes()).unwrap();

    assert_eq!(read.opset(), Some(17));
    let inputs = read.inputs();
    assert_eq!(inputs.len(), 1);
    assert_eq!(inputs[0].name, "image");
    assert_eq!(inputs[0].elem_type, 1);
    assert_eq!(
        inputs[0].dims.as_deref(),
        Some(
            &[
                Dim::named("N"),
                Dim::Fixed(3),
                Dim::named("H"),
                Dim::named("W")
            ][..]
        )
    );
    assert_eq!(read.outputs()[0].name, "features");
    let ops: Vec<&str> = read.nodes().iter().map(|n| n.op_type()).collect();
    assert_eq!(ops, ["Conv", "Relu", "Identity"]);
    let pads = read.nodes()[0]
        .attribute
        .iter()
        .find(|a| a.name() == "pads")
        .unwrap();
    assert_eq!(pads.ints, [1, 1, 1, 1]);

    let w = read.initializer("conv.weight").unwrap();
    assert_eq!(w.dims, [2, 3, 3, 3]);
    assert_eq!(w.data, weight);
    assert_eq!(w.to_array().shape(), &[2, 3, 3, 3]);
    assert_eq!(read.initializer("conv.bias").unwrap().data, [0.5, -0.5]);
    assert_eq!(read.initializer_names(), ["conv.weight", "conv.bias"]);
    let meta = &read.proto().metadata_props[0];
    assert_eq!((meta.key(), meta.value()), ("purpose", "test"));
}

#[test]
fn extract_keeps_only_what_an_intermediate_output_needs() {
    let (model, _) = conv_relu_model();
    let conv_out = model.nodes()[0].output[0].clone();
    let sub = model.extract(&[&conv_out]).unwrap();
    assert_eq!(sub.nodes().len(), 1, "only the conv is needed");
    assert_eq!(sub.outputs()[0].name, conv_out);
    assert_eq!(sub.initializer_names().len(), 2);
    assert_eq!(sub.inputs()[0].name, "image");

    let err = model.extract(&["no_such_value"]).unwrap_err();
    assert!(
        matches!(err, OnnxError::UnknownValue(ref v) if v == "no_such_value"),
        "{err}"
    );
}

#[test]
fn reader_reports_bad_input_clearly() {
    let err = Model::from_bytes(b"\xff\xff\xff definitely not protobuf").unwrap_err();
    assert!(
        err.to_string().starts_with("not a valid ONNX model"),
        "{err}"
    );

    let (model, _) = conv_relu_model();
    let err = model.initializer("missing").unwrap_err();
    assert_eq!(
        err.to_string(),
        "the graph has no initializer named 'missing'"
    );

    let err = Model::from_file("/nonexistent/model.onnx").unwrap_err();
    assert!(err.to_string().contains("/nonexistent/model.onnx"), "{err}");

    let mut g = GraphBuilder::new("bad");
    let err = g.initializer("w", &[2, 2], &[1.0; 3]).unwrap_err();
    assert!(
        err.to_string()
            .contains("shape [2, 2] (4 values) but 3 values"),
        "{err}"
    );
}

#[test]
fn builder_rejects_weights_that_do_not_fill_their_shape() {
    let mut g = GraphBuilder::new("bad");
    let err = g
        .initializer("w", &[2, 3], &[0.0; 5])
        .expect_err("5 values for a 2×3 tensor");
    assert!(
        matches!(&err, OnnxError::ShapeMismatch { name, expected: 6, actual: 5, .. } if name == "w"),
        "{err:?}"
    );
    let err = g
        .initializer_i64("axes", &[2], &[1, 2, 3])
        .expect_err("3 values for a 2-vector");
    assert!(
        matches!(
            &err,
            OnnxError::ShapeMismatch {
                expected: 2,
                actual: 3,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(g.initializer("ok", &[2, 3], &[0.0; 6]).is_ok());
}
