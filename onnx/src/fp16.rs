//! Half-precision variant of a float graph, for GPUs (tensor cores run fp16 convolutions).
//!
//! Only the ops that move or convolve feature maps change type: `Conv` (weights and bias stored as
//! fp16), `Relu`, `Pad`, `MaxPool` and `Resize`. Everything else stays float32: the graph's inputs
//! and outputs (so callers see the same interface) and the statistics AdaIN computes (a variance of
//! activations in the hundreds overflows fp16's 65 504). A `Cast` sits wherever a value crosses
//! between the two, one per value and direction.
use std::collections::{HashMap, HashSet};

use crate::proto::{AttributeProto, NodeProto, TensorProto, attribute_proto, tensor_proto};
use crate::{Model, OnnxError};

/// What [`convert`] did to a graph.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HalfReport {
    /// Nodes now computing in fp16.
    pub half_nodes: usize,
    /// Float initializers stored as fp16.
    pub half_initializers: usize,
    /// Casts inserted between fp16 and float32 values.
    pub casts: usize,
}

/// The inputs of `op` that carry its data type (and so become fp16), by position.
fn data_inputs(op: &str) -> Option<&'static [usize]> {
    match op {
        "Conv" => Some(&[0, 1, 2]),
        "Relu" | "MaxPool" | "Resize" => Some(&[0]),
        // Pad's constant value has the data's type; its pads and axes are integers.
        "Pad" => Some(&[0, 2]),
        _ => None,
    }
}

fn half_name(value: &str) -> String {
    format!("{value}__fp16")
}

fn cast(input: &str, output: &str, to: tensor_proto::DataType) -> NodeProto {
    NodeProto {
        op_type: Some("Cast".to_owned()),
        name: Some(format!("{output}__cast")),
        input: vec![input.to_owned()],
        output: vec![output.to_owned()],
        attribute: vec![AttributeProto {
            name: Some("to".to_owned()),
            r#type: Some(attribute_proto::AttributeType::Int as i32),
            i: Some(to as i64),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// `t` (float32) as an fp16 tensor named `name`.
fn half_tensor(t: &TensorProto, name: &str) -> Result<TensorProto, OnnxError> {
    let values = crate::reader::decode_f32(t)?.data;
    let raw = values
        .iter()
        .flat_map(|v| half::f16::from_f32(*v).to_bits().to_le_bytes())
        .collect();
    Ok(TensorProto {
        name: Some(name.to_owned()),
        dims: t.dims.clone(),
        data_type: Some(tensor_proto::DataType::Float16 as i32),
        raw_data: Some(raw),
        ..Default::default()
    })
}

/// The fp16 variant of `model` (see the module's documentation), and what changed.
pub fn convert(model: &Model) -> Result<(Model, HalfReport), OnnxError> {
    let graph = model.proto().graph.as_ref().expect("a Model has a graph");
    let float_initializers: HashMap<&str, &TensorProto> = graph
        .initializer
        .iter()
        .filter(|t| t.data_type() == tensor_proto::DataType::Float as i32)
        .map(|t| (t.name(), t))
        .collect();
    let half: HashSet<usize> = graph
        .node
        .iter()
        .enumerate()
        .filter(|(_, n)| data_inputs(n.op_type()).is_some())
        .map(|(i, _)| i)
        .collect();
    // Values produced by fp16 nodes: they exist under their fp16 name.
    let half_values: HashSet<&str> = half
        .iter()
        .flat_map(|&i| graph.node[i].output.iter().map(String::as_str))
        .collect();

    let mut report = HalfReport::default();
    let mut nodes = Vec::new();
    let mut initializers = Vec::new();
    let mut made_half: HashSet<String> = HashSet::new();
    let mut made_float: HashSet<String> = HashSet::new();
    for (i, original) in graph.node.iter().enumerate() {
        if half.contains(&i) {
            let mut n = original.clone();
            let wanted = data_inputs(n.op_type()).expect("half nodes have data inputs");
            for &k in wanted {
                let Some(value) = n.input.get(k).cloned().filter(|v| !v.is_empty()) else {
                    continue;
                };
                let fp16 = half_name(&value);
                if !half_values.contains(value.as_str()) && made_half.insert(value.clone()) {
                    if let Some(t) = float_initializers.get(value.as_str()) {
                        initializers.push(half_tensor(t, &fp16)?);
                        report.half_initializers += 1;
                    } else {
                        nodes.push(cast(&value, &fp16, tensor_proto::DataType::Float16));
                        report.casts += 1;
                    }
                }
                n.input[k] = fp16;
            }
            for out in &mut n.output {
                *out = half_name(out);
            }
            nodes.push(n);
            report.half_nodes += 1;
            continue;
        }
        // A float32 reader of an fp16 value gets a float32 copy under the original name.
        for value in &original.input {
            if half_values.contains(value.as_str()) && made_float.insert(value.clone()) {
                nodes.push(cast(
                    &half_name(value),
                    value,
                    tensor_proto::DataType::Float,
                ));
                report.casts += 1;
            }
        }
        nodes.push(original.clone());
    }
    for output in &graph.output {
        let name = output.name();
        if half_values.contains(name) && made_float.insert(name.to_owned()) {
            nodes.push(cast(&half_name(name), name, tensor_proto::DataType::Float));
            report.casts += 1;
        }
    }

    // Float initializers only fp16 nodes read are dropped; the others stay for float readers.
    let float_readers: HashSet<&str> = graph
        .node
        .iter()
        .enumerate()
        .flat_map(|(i, n)| {
            let wanted = if half.contains(&i) {
                data_inputs(n.op_type()).unwrap_or(&[])
            } else {
                &[]
            };
            n.input
                .iter()
                .enumerate()
                .filter(move |(k, _)| !wanted.contains(k))
                .map(|(_, v)| v.as_str())
        })
        .collect();
    let mut proto = model.proto().clone();
    let g = proto.graph.as_mut().expect("a Model has a graph");
    g.initializer.retain(|t| {
        t.data_type() != tensor_proto::DataType::Float as i32 || float_readers.contains(t.name())
    });
    g.initializer.extend(initializers);
    g.node = nodes;
    // Intermediate types changed; ONNX Runtime infers them again.
    g.value_info.clear();
    Ok((Model::from_proto(proto)?, report))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Dim, GraphBuilder};

    /// x → Conv → Relu → Pad → Conv → y, plus a float-only branch (ReduceMean of the first ReLU).
    fn graph() -> Model {
        let mut g = GraphBuilder::new("t");
        let x = g.input("x", &[1.into(), 2.into(), Dim::named("h"), Dim::named("w")]);
        let w1 = g
            .initializer("w1", &[3, 2, 1, 1], &[0.5, -1.0, 2.0, 0.25, 1.0, 1.0])
            .unwrap();
        let w2 = g.initializer("w2", &[1, 3, 3, 3], &[0.1; 27]).unwrap();
        let pads = g
            .initializer_i64("pads", &[8], &[0, 0, 1, 1, 0, 0, 1, 1])
            .unwrap();
        let c1 = g.op("Conv").inputs([&x, &w1]).build();
        let r1 = g.op("Relu").input(&c1).build();
        let mean = g.op("ReduceMean").input(&r1).ints("axes", &[2, 3]).build();
        let padded = g
            .op("Pad")
            .inputs([&r1, &pads])
            .string("mode", "reflect")
            .build();
        let c2 = g.op("Conv").inputs([&padded, &w2]).build();
        g.output(
            &c2,
            "y",
            &[1.into(), 1.into(), Dim::named("h"), Dim::named("w")],
        );
        g.output(&mean, "m", &[1.into(), 3.into(), 1.into(), 1.into()]);
        g.finish()
    }

    #[test]
    fn feature_map_ops_turn_half_and_the_interface_stays_float() {
        let (h, report) = convert(&graph()).unwrap();
        assert_eq!(
            report,
            HalfReport {
                half_nodes: 4,
                half_initializers: 2,
                // x into the first conv; the ReLU out to ReduceMean; the second conv out to y.
                casts: 3,
            }
        );
        for input in h.inputs().iter().chain(&h.outputs()) {
            assert_eq!(
                input.elem_type,
                tensor_proto::DataType::Float as i32,
                "{input:?}"
            );
        }
        let producer = |name: &str| {
            h.nodes()
                .iter()
                .find(|n| n.output.iter().any(|o| o == name))
                .cloned()
        };
        let op_of = |name: &str| producer(name).map(|n| n.op_type().to_owned());
        // The builder names outputs through an Identity; what it reads is cast back to float32.
        let named_y = producer("y").unwrap();
        assert_eq!(named_y.op_type(), "Identity");
        assert_eq!(op_of(&named_y.input[0]).as_deref(), Some("Cast"));
        let reduce = h
            .nodes()
            .iter()
            .find(|n| n.op_type() == "ReduceMean")
            .unwrap();
        assert_eq!(op_of(&reduce.input[0]).as_deref(), Some("Cast"));
        // The weights are stored as fp16, rounded as fp16 rounds; the integer pads are untouched.
        let graph = h.proto().graph.as_ref().unwrap();
        let w1 = graph
            .initializer
            .iter()
            .find(|t| t.name() == "w1__fp16")
            .unwrap();
        assert_eq!(w1.data_type(), tensor_proto::DataType::Float16 as i32);
        let first = u16::from_le_bytes([w1.raw_data()[0], w1.raw_data()[1]]);
        assert_eq!(half::f16::from_bits(first).to_f32(), 0.5);
        assert!(graph.initializer.iter().all(|t| t.name() != "w1"));
        assert!(graph.initializer.iter().any(|t| t.name() == "pads"));
    }
}
