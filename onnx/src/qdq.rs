//! Static int8 quantisation of a float graph in ONNX's QDQ form: ONNX Runtime fuses each
//! `DequantizeLinear → Conv → QuantizeLinear` group into one integer convolution.
//!
//! - Weights: per output channel, symmetric, 7 bits stored as int8 (`scale = max|w| / 63`, see
//!   [`crate::u8s8`]: 8-bit weights overflow the 16-bit pair sums of x86 CPUs without VNNI); biases
//!   int32 with the scale `input scale × weight scale`.
//! - Activations: per tensor, asymmetric uint8 from calibrated ranges. A ReLU after a convolution is
//!   absorbed into the output's quantisation (zero point 0 clamps negatives, as the ReLU did).
//! - `Pad`, `MaxPool` and `Resize` between two convolutions run on the uint8 values directly: they
//!   only move or pick values, so the scale carries through unchanged.
//!
//! [`calibration_values`] names the float values whose ranges [`quantize`] needs; run the float
//! graph with them as outputs (see [`Model::extract`]) on representative inputs.
use std::collections::{HashMap, HashSet};

use crate::proto::{AttributeProto, NodeProto, TensorProto, attribute_proto, tensor_proto};
use crate::u8s8::WEIGHT_LIMIT;
use crate::{Model, OnnxError};

/// The observed range of one value over the calibration inputs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    /// Smallest value.
    pub min: f32,
    /// Largest value.
    pub max: f32,
}

/// What [`quantize`] did to a graph.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QuantizeReport {
    /// Convolutions whose weights became int8 and whose inputs are uint8.
    pub convolutions: usize,
    /// Of those, the ones whose output is quantised too (fusable into one integer convolution).
    pub integer_convolutions: usize,
    /// ReLUs absorbed into their convolution's output quantisation.
    pub relus_absorbed: usize,
    /// Pad, MaxPool and Resize nodes now running on uint8.
    pub pass_through_ops: usize,
}

/// uint8 quantisation parameters of one activation.
#[derive(Debug, Clone, Copy)]
struct Activation {
    scale: f32,
    zero_point: u8,
}

impl Activation {
    /// Asymmetric uint8 covering `range` and zero (so zero padding and ReLU stay exact).
    fn from_range(range: Range) -> Self {
        let low = range.min.min(0.0);
        let high = range.max.max(0.0);
        let span = high - low;
        if !(span.is_finite() && span > 0.0) {
            return Activation {
                scale: 1.0,
                zero_point: 0,
            };
        }
        let scale = span / 255.0;
        let zero_point = (-low / scale).round().clamp(0.0, 255.0) as u8;
        Activation { scale, zero_point }
    }
}

/// The graph's structure: who produces and who consumes each value.
struct Topology<'m> {
    nodes: &'m [NodeProto],
    producer: HashMap<&'m str, usize>,
    consumers: HashMap<&'m str, Vec<usize>>,
    outputs: HashSet<&'m str>,
    initializers: HashMap<&'m str, &'m TensorProto>,
}

impl<'m> Topology<'m> {
    fn new(model: &'m Model) -> Self {
        let graph = model.proto().graph.as_ref().expect("a Model has a graph");
        let mut producer = HashMap::new();
        let mut consumers: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, node) in graph.node.iter().enumerate() {
            for o in &node.output {
                producer.insert(o.as_str(), i);
            }
            for input in &node.input {
                consumers.entry(input.as_str()).or_default().push(i);
            }
        }
        Topology {
            nodes: &graph.node,
            producer,
            consumers,
            outputs: graph.output.iter().map(|v| v.name()).collect(),
            initializers: graph.initializer.iter().map(|t| (t.name(), t)).collect(),
        }
    }

    fn op(&self, i: usize) -> &str {
        self.nodes[i].op_type()
    }

    fn produced_by(&self, value: &str, op: &str) -> Option<usize> {
        self.producer
            .get(value)
            .copied()
            .filter(|&i| self.op(i) == op)
    }

    fn consumers_of(&self, value: &str) -> &[usize] {
        self.consumers.get(value).map_or(&[], Vec::as_slice)
    }

    fn float_initializer(&self, name: &str) -> Option<&TensorProto> {
        self.initializers
            .get(name)
            .copied()
            .filter(|t| t.data_type() == tensor_proto::DataType::Float as i32)
    }

    /// Convolutions with float initializer weights (and bias, if any): the ones we quantise.
    fn convolutions(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| {
                let n = &self.nodes[i];
                n.op_type() == "Conv"
                    && n.input.len() >= 2
                    && self.float_initializer(&n.input[1]).is_some()
                    && n.input
                        .get(2)
                        .is_none_or(|b| b.is_empty() || self.float_initializer(b).is_some())
            })
            .collect()
    }

    /// Whether node `i` only moves or picks values, so that it can run on uint8 with the same scale:
    /// MaxPool, nearest-neighbour Resize, and Pad in a mode that invents no values.
    fn passes_through(&self, i: usize) -> bool {
        let n = &self.nodes[i];
        let text = |name: &str| {
            n.attribute
                .iter()
                .find(|a| a.name() == name)
                .map(|a| String::from_utf8_lossy(a.s()).into_owned())
        };
        match n.op_type() {
            "MaxPool" => n.output.len() == 1,
            "Resize" => text("mode").as_deref() == Some("nearest"),
            "Pad" => matches!(text("mode").as_deref(), Some("reflect" | "edge")),
            _ => false,
        }
    }

    /// Walks back from a convolution's input through pass-through ops to the value they start from.
    fn source_of(&self, conv: usize) -> (String, Vec<usize>) {
        let mut value = self.nodes[conv].input[0].as_str();
        let mut chain = Vec::new();
        while let Some(&p) = self.producer.get(value) {
            if !self.passes_through(p) {
                break;
            }
            chain.push(p);
            value = self.nodes[p].input[0].as_str();
        }
        (value.to_owned(), chain)
    }
}

/// The plan: which values become uint8 and which nodes change.
struct Plan {
    convolutions: HashSet<usize>,
    /// Values quantised where they are produced, with a float copy kept if `needs_float`.
    sources: Vec<String>,
    /// Pass-through nodes moved to uint8.
    pass_through: HashSet<usize>,
    /// ReLUs replaced by their convolution's output quantisation: ReLU node → conv output.
    absorbed_relus: HashMap<usize, String>,
}

fn plan(topology: &Topology, keep_float: &[String]) -> Result<Plan, OnnxError> {
    let all = topology.convolutions();
    if let Some(unknown) = keep_float.iter().find(|name| {
        !all.iter()
            .any(|&i| topology.nodes[i].name() == name.as_str())
    }) {
        return Err(OnnxError::Unsupported(format!(
            "no convolution named '{unknown}' to keep in float"
        )));
    }
    let convolutions: HashSet<usize> = all
        .into_iter()
        .filter(|&i| !keep_float.iter().any(|k| k == topology.nodes[i].name()))
        .collect();
    let mut sources = Vec::new();
    let mut pass_through = HashSet::new();
    let mut seen = HashSet::new();
    for &conv in &convolutions {
        let (source, chain) = topology.source_of(conv);
        for &p in &chain {
            let out = topology.nodes[p].output[0].as_str();
            let all_quantised = !topology.outputs.contains(out)
                && topology.consumers_of(out).iter().all(|c| {
                    convolutions.contains(c) && topology.nodes[*c].input[0] == out
                        || topology.passes_through(*c)
                });
            if !all_quantised {
                return Err(OnnxError::Unsupported(format!(
                    "'{out}' ({}) also feeds float ops; quantising it is not supported",
                    topology.op(p)
                )));
            }
            pass_through.insert(p);
        }
        if seen.insert(source.clone()) {
            sources.push(source);
        }
    }
    // A ReLU on a quantised convolution's output is quantised too, so that the convolution runs
    // in integers end to end (its float users get a dequantised copy).
    for &conv in &convolutions {
        let out = topology.nodes[conv].output[0].as_str();
        if let [only] = topology.consumers_of(out)
            && topology.op(*only) == "Relu"
            && !topology.outputs.contains(out)
        {
            let relu_out = topology.nodes[*only].output[0].clone();
            if seen.insert(relu_out.clone()) {
                sources.push(relu_out);
            }
        }
    }
    let mut absorbed_relus = HashMap::new();
    for source in &sources {
        if let Some(relu) = topology.produced_by(source, "Relu") {
            let input = topology.nodes[relu].input[0].as_str();
            if let Some(conv) = topology.produced_by(input, "Conv")
                && convolutions.contains(&conv)
                && topology.consumers_of(input).len() == 1
                && !topology.outputs.contains(input)
            {
                absorbed_relus.insert(relu, input.to_owned());
            }
        }
    }
    sources.sort();
    Ok(Plan {
        convolutions,
        sources,
        pass_through,
        absorbed_relus,
    })
}

/// The float values whose ranges [`quantize`] needs, in a stable order.
pub fn calibration_values(model: &Model) -> Result<Vec<String>, OnnxError> {
    Ok(plan(&Topology::new(model), &[])?.sources)
}

fn quantized_name(value: &str) -> String {
    format!("{value}__u8")
}

fn scalar_f32(name: &str, v: f32) -> TensorProto {
    TensorProto {
        name: Some(name.to_owned()),
        data_type: Some(tensor_proto::DataType::Float as i32),
        raw_data: Some(v.to_le_bytes().to_vec()),
        ..Default::default()
    }
}

fn tensor(
    name: &str,
    dims: &[i64],
    data_type: tensor_proto::DataType,
    raw: Vec<u8>,
) -> TensorProto {
    TensorProto {
        name: Some(name.to_owned()),
        dims: dims.to_vec(),
        data_type: Some(data_type as i32),
        raw_data: Some(raw),
        ..Default::default()
    }
}

fn node(op: &str, name: &str, inputs: &[&str], output: &str, axis: Option<i64>) -> NodeProto {
    NodeProto {
        op_type: Some(op.to_owned()),
        name: Some(name.to_owned()),
        input: inputs.iter().map(|s| (*s).to_owned()).collect(),
        output: vec![output.to_owned()],
        attribute: axis
            .map(|axis| AttributeProto {
                name: Some("axis".to_owned()),
                r#type: Some(attribute_proto::AttributeType::Int as i32),
                i: Some(axis),
                ..Default::default()
            })
            .into_iter()
            .collect(),
        ..Default::default()
    }
}

fn f32_values(t: &TensorProto) -> Result<Vec<f32>, OnnxError> {
    Ok(crate::reader::decode_f32(t)?.data)
}

/// Builds `dst`'s new nodes and initializers.
struct Rewriter {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    activations: HashMap<String, Activation>,
}

impl Rewriter {
    /// Adds the scale and zero point of activation `value`; returns their names.
    fn activation_params(&mut self, value: &str) -> (String, String) {
        let a = self.activations[value];
        let scale = format!("{value}__scale");
        let zero = format!("{value}__zero_point");
        if !self.initializers.iter().any(|t| t.name() == scale) {
            self.initializers.push(scalar_f32(&scale, a.scale));
            self.initializers.push(tensor(
                &zero,
                &[],
                tensor_proto::DataType::Uint8,
                vec![a.zero_point],
            ));
        }
        (scale, zero)
    }

    fn quantize_value(&mut self, float_input: &str, source: &str) {
        let (scale, zero) = self.activation_params(source);
        let q = quantized_name(source);
        self.nodes.push(node(
            "QuantizeLinear",
            &format!("{source}__quantize"),
            &[float_input, &scale, &zero],
            &q,
            None,
        ));
    }

    fn dequantize_value(&mut self, quantized: &str, source: &str, output: &str) {
        let (scale, zero) = self.activation_params(source);
        self.nodes.push(node(
            "DequantizeLinear",
            &format!("{output}__dequantize"),
            &[quantized, &scale, &zero],
            output,
            None,
        ));
    }

    /// Stores `values` (dims, element type, little-endian bytes) in place of float initializer
    /// `name`, with per-channel `scales` along axis 0 and zero points of the same element type
    /// (`zero_points` as bytes); returns the name of its DequantizeLinear output.
    fn per_channel(
        &mut self,
        name: &str,
        values: (&[i64], tensor_proto::DataType, Vec<u8>),
        scales: &[f32],
        zero_points: Vec<u8>,
    ) -> String {
        let (dims, data_type, raw) = values;
        let channels = [scales.len() as i64];
        let stored = format!(
            "{name}__{}",
            if data_type == tensor_proto::DataType::Int8 {
                "i8"
            } else {
                "i32"
            }
        );
        let scale = format!("{name}__scale");
        let zero = format!("{name}__zero_point");
        self.initializers
            .push(tensor(&stored, dims, data_type, raw));
        self.initializers.push(tensor(
            &scale,
            &channels,
            tensor_proto::DataType::Float,
            scales.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ));
        self.initializers
            .push(tensor(&zero, &channels, data_type, zero_points));
        let dequantized = format!("{name}__dequantized");
        self.nodes.push(node(
            "DequantizeLinear",
            &format!("{name}__dequantize"),
            &[&stored, &scale, &zero],
            &dequantized,
            Some(0),
        ));
        dequantized
    }

    /// int8 weights and int32 bias of `conv` with their DequantizeLinear nodes; returns the new
    /// names of the weight and bias inputs.
    fn quantize_weights(
        &mut self,
        conv: &NodeProto,
        topology: &Topology,
        input_scale: f32,
    ) -> Result<(String, Option<String>), OnnxError> {
        let w_name = conv.input[1].as_str();
        let w_tensor = topology
            .float_initializer(w_name)
            .expect("the plan only holds convolutions with float weights");
        let w = f32_values(w_tensor)?;
        let out_channels = w_tensor.dims.first().copied().unwrap_or(1).max(1) as usize;
        let per_channel = w.len() / out_channels;
        let scales: Vec<f32> = w
            .chunks(per_channel)
            .map(|c| {
                let m = c.iter().fold(0f32, |m, v| m.max(v.abs()));
                if m > 0.0 {
                    m / f32::from(WEIGHT_LIMIT)
                } else {
                    1.0
                }
            })
            .collect();
        let q: Vec<u8> = w
            .chunks(per_channel)
            .zip(&scales)
            .flat_map(|(c, s)| {
                let limit = f32::from(WEIGHT_LIMIT);
                c.iter()
                    .map(move |v| ((v / s).round().clamp(-limit, limit) as i8) as u8)
            })
            .collect();
        let w_dq = self.per_channel(
            w_name,
            (&w_tensor.dims, tensor_proto::DataType::Int8, q),
            &scales,
            vec![0; out_channels],
        );
        let Some(b_name) = conv.input.get(2).filter(|b| !b.is_empty()) else {
            return Ok((w_dq, None));
        };
        let b_tensor = topology
            .float_initializer(b_name)
            .expect("the plan only holds convolutions with float biases");
        let b = f32_values(b_tensor)?;
        let b_scales: Vec<f32> = scales.iter().map(|s| s * input_scale).collect();
        let b_q: Vec<u8> = b
            .iter()
            .zip(&b_scales)
            .flat_map(|(v, s)| {
                ((v / s).round().clamp(i32::MIN as f32, i32::MAX as f32) as i32).to_le_bytes()
            })
            .collect();
        let b_dq = self.per_channel(
            b_name,
            (&b_tensor.dims, tensor_proto::DataType::Int32, b_q),
            &b_scales,
            vec![0; 4 * out_channels],
        );
        Ok((w_dq, Some(b_dq)))
    }
}

/// Quantises `model`'s convolutions to int8 in QDQ form, with activation ranges for every name
/// [`calibration_values`] lists; the convolutions named in `keep_float` (node names) stay float.
pub fn quantize(
    model: &Model,
    ranges: &HashMap<String, Range>,
    keep_float: &[String],
) -> Result<(Model, QuantizeReport), OnnxError> {
    let topology = Topology::new(model);
    let plan = plan(&topology, keep_float)?;
    let activations = plan
        .sources
        .iter()
        .map(|s| {
            let range = ranges
                .get(s)
                .ok_or_else(|| OnnxError::Unsupported(format!("no calibrated range for '{s}'")))?;
            Ok((s.clone(), Activation::from_range(*range)))
        })
        .collect::<Result<HashMap<_, _>, OnnxError>>()?;
    let sources: HashSet<&str> = plan.sources.iter().map(String::as_str).collect();
    // Which source's parameters each uint8 value carries.
    let mut carried: HashMap<String, String> = sources
        .iter()
        .map(|s| (s.to_string(), s.to_string()))
        .collect();
    let mut rw = Rewriter {
        nodes: Vec::new(),
        initializers: Vec::new(),
        activations,
    };
    let mut report = QuantizeReport::default();
    let needs_float = |value: &str| {
        topology.outputs.contains(value)
            || topology.consumers_of(value).iter().any(|c| {
                !(plan.pass_through.contains(c)
                    || plan.convolutions.contains(c) && topology.nodes[*c].input[0] == value)
            })
    };

    let graph = model.proto().graph.as_ref().expect("a Model has a graph");
    for input in &graph.input {
        if sources.contains(input.name()) {
            rw.quantize_value(input.name(), input.name());
        }
    }
    for (i, original) in topology.nodes.iter().enumerate() {
        if let Some(conv_out) = plan.absorbed_relus.get(&i) {
            let out = original.output[0].as_str();
            rw.quantize_value(conv_out, out);
            if needs_float(out) {
                rw.dequantize_value(&quantized_name(out), out, out);
            }
            report.relus_absorbed += 1;
            continue;
        }
        if plan.pass_through.contains(&i) {
            let mut n = original.clone();
            let source = carried[n.input[0].as_str()].clone();
            let out = n.output[0].clone();
            n.input[0] = quantized_name(&n.input[0]);
            n.output[0] = quantized_name(&out);
            carried.insert(out, source);
            rw.nodes.push(n);
            report.pass_through_ops += 1;
            continue;
        }
        if plan.convolutions.contains(&i) {
            let mut n = original.clone();
            let input = n.input[0].clone();
            let source = carried[input.as_str()].clone();
            let dq = format!("{input}__dequantized_for_{}", original.name());
            rw.dequantize_value(&quantized_name(&input), &source, &dq);
            let input_scale = rw.activations[&source].scale;
            let (w, b) = rw.quantize_weights(original, &topology, input_scale)?;
            n.input[0] = dq;
            n.input[1] = w;
            if let Some(b) = b {
                n.input[2] = b;
            }
            rw.nodes.push(n);
            report.convolutions += 1;
            if plan
                .absorbed_relus
                .values()
                .any(|c| *c == original.output[0])
            {
                report.integer_convolutions += 1;
            }
            continue;
        }
        rw.nodes.push(original.clone());
        let out = original.output.first().map(String::as_str).unwrap_or("");
        if sources.contains(out) {
            rw.quantize_value(out, out);
        }
    }

    let quantized_weights: HashSet<&str> = plan
        .convolutions
        .iter()
        .flat_map(|&c| topology.nodes[c].input[1..].iter().map(String::as_str))
        .collect();
    let mut proto = model.proto().clone();
    let g = proto.graph.as_mut().expect("a Model has a graph");
    g.initializer
        .retain(|t| !quantized_weights.contains(t.name()));
    g.initializer.extend(rw.initializers);
    g.node = rw.nodes;
    g.value_info.clear();
    Ok((Model::from_proto(proto)?, report))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Dim, GraphBuilder};

    /// conv → relu → maxpool → pad → conv → relu (also an output), as in our encoder and decoder.
    fn two_conv_graph() -> Model {
        let mut g = GraphBuilder::new("t");
        let x = g.input("x", &[1.into(), 2.into(), Dim::named("H"), Dim::named("W")]);
        let w1 = g.initializer("w1", &[3, 2, 3, 3], &[0.1; 54]).unwrap();
        let b1 = g.initializer("b1", &[3], &[0.0, 0.5, -0.5]).unwrap();
        let w2: Vec<f32> = (0..27).map(|i| (i as f32 - 13.0) / 20.0).collect();
        let w2 = g.initializer("w2", &[1, 3, 3, 3], &w2).unwrap();
        let pads = g
            .initializer_i64("pads", &[8], &[0, 0, 1, 1, 0, 0, 1, 1])
            .unwrap();
        let c1 = g
            .op("Conv")
            .inputs([&x, &w1, &b1])
            .ints("pads", &[1, 1, 1, 1])
            .build();
        let r1 = g.op("Relu").input(&c1).build();
        let p = g
            .op("MaxPool")
            .input(&r1)
            .ints("kernel_shape", &[2, 2])
            .ints("strides", &[2, 2])
            .build();
        let padded = g
            .op("Pad")
            .inputs([&p, &pads])
            .string("mode", "reflect")
            .build();
        let c2 = g.op("Conv").inputs([&padded, &w2]).build();
        let r2 = g.op("Relu").input(&c2).build();
        g.output(
            &r2,
            "y",
            &[1.into(), 1.into(), Dim::named("h"), Dim::named("w")],
        );
        g.finish()
    }

    #[test]
    fn calibration_asks_for_each_convolution_input_source_and_activation() {
        let m = two_conv_graph();
        let values = calibration_values(&m).unwrap();
        let relus: Vec<String> = m
            .nodes()
            .iter()
            .filter(|n| n.op_type() == "Relu")
            .map(|n| n.output[0].clone())
            .collect();
        let mut expected = vec!["x".to_owned()];
        expected.extend(relus);
        expected.sort();
        assert_eq!(values, expected);
    }

    #[test]
    fn quantized_graph_has_qdq_groups_around_each_convolution() {
        let m = two_conv_graph();
        let ranges = calibration_values(&m)
            .unwrap()
            .into_iter()
            .map(|v| {
                (
                    v,
                    Range {
                        min: -1.0,
                        max: 3.0,
                    },
                )
            })
            .collect();
        let (q, report) = quantize(&m, &ranges, &[]).unwrap();
        assert_eq!(
            report,
            QuantizeReport {
                convolutions: 2,
                integer_convolutions: 2,
                relus_absorbed: 2,
                pass_through_ops: 2,
            }
        );
        let ops: Vec<&str> = q.nodes().iter().map(|n| n.op_type()).collect();
        assert!(!ops.contains(&"Relu"), "{ops:?}");
        assert_eq!(ops.iter().filter(|o| **o == "Conv").count(), 2);
        // Every conv reads dequantized input, weight and bias.
        let producer: HashMap<&str, &str> = q
            .nodes()
            .iter()
            .map(|n| (n.output[0].as_str(), n.op_type()))
            .collect();
        for conv in q.nodes().iter().filter(|n| n.op_type() == "Conv") {
            for input in &conv.input {
                assert_eq!(producer[input.as_str()], "DequantizeLinear", "{input}");
            }
        }
        // The float weights are gone; int8 ones replace them.
        let names = q.initializer_names();
        assert!(!names.contains(&"w1") && names.contains(&"w1__i8"));
        // The output is still a float value, produced by a DequantizeLinear.
        assert_eq!(q.outputs()[0].name, "y");
    }

    #[test]
    fn quantized_weights_are_exact_without_vnni() {
        let model = two_conv_graph();
        let ranges = calibration_values(&model)
            .unwrap()
            .into_iter()
            .map(|v| {
                (
                    v,
                    Range {
                        min: -2.0,
                        max: 3.0,
                    },
                )
            })
            .collect();
        let (q, _) = quantize(&model, &ranges, &[]).unwrap();
        let stored = q.int8_weights();
        assert_eq!(stored.len(), 2);
        for (name, dims, weights) in stored {
            let per_channel = weights.len() / dims[0];
            // Each channel's largest weight uses the whole 7-bit range, and no more.
            for channel in weights.chunks(per_channel) {
                let top = channel.iter().map(|w| w.unsigned_abs()).max().unwrap();
                assert_eq!(top, crate::u8s8::WEIGHT_LIMIT as u8, "{name}");
            }
            assert!(
                crate::u8s8::saturation_free(&weights, per_channel),
                "{name}"
            );
        }
    }

    #[test]
    fn activation_ranges_include_zero() {
        let a = Activation::from_range(Range { min: 2.0, max: 4.0 });
        assert_eq!(a.zero_point, 0);
        assert!((a.scale - 4.0 / 255.0).abs() < 1e-7);
        let b = Activation::from_range(Range {
            min: -1.0,
            max: 1.0,
        });
        assert!((127..=128).contains(&b.zero_point), "{}", b.zero_point);
    }
}
