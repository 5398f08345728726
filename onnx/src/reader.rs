//! Reading ONNX models: signatures, nodes and f32 weights.
use std::collections::{HashMap, HashSet};
use std::path::Path;

use ndarray::{ArrayD, IxDyn};
use prost::Message;

use crate::proto::{
    GraphProto, ModelProto, NodeProto, TensorProto, ValueInfoProto, tensor_proto,
    tensor_shape_proto, type_proto,
};
use crate::{Dim, OnnxError};

/// A decoded ONNX model with convenient read access.
#[derive(Debug, Clone)]
pub struct Model {
    proto: ModelProto,
}

/// A named graph input or output with its (possibly symbolic) shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueInfo {
    /// The value's name in the graph.
    pub name: String,
    /// ONNX element type code (1 = float32); 0 when the graph does not say.
    pub elem_type: i32,
    /// Shape, one entry per axis; `None` when the graph declares no shape.
    pub dims: Option<Vec<Dim>>,
}

/// A float32 weight tensor from a graph's initializers, as plain data plus shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Initializer {
    /// The initializer's name in the graph.
    pub name: String,
    /// Its shape (for a conv weight: `[out, in, kh, kw]`).
    pub dims: Vec<usize>,
    /// Row-major values.
    pub data: Vec<f32>,
}

impl Initializer {
    /// The weights as an n-dimensional array.
    pub fn to_array(&self) -> ArrayD<f32> {
        ArrayD::from_shape_vec(IxDyn(&self.dims), self.data.clone())
            .expect("dims and data were checked to agree when the initializer was read")
    }
}

impl Model {
    /// Decodes a model from protobuf bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, OnnxError> {
        let proto = ModelProto::decode(bytes)?;
        if proto.graph.is_none() {
            return Err(OnnxError::NoGraph);
        }
        Ok(Model { proto })
    }

    /// Reads and decodes a `.onnx` file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, OnnxError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| OnnxError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_bytes(&bytes)
    }

    /// Wraps a model built in memory.
    pub fn from_proto(proto: ModelProto) -> Result<Self, OnnxError> {
        if proto.graph.is_none() {
            return Err(OnnxError::NoGraph);
        }
        Ok(Model { proto })
    }

    /// The underlying protobuf message.
    pub fn proto(&self) -> &ModelProto {
        &self.proto
    }

    /// The model serialised to protobuf bytes, ready for a `.onnx` file or ONNX Runtime.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.proto.encode_to_vec()
    }

    fn graph(&self) -> &GraphProto {
        self.proto
            .graph
            .as_ref()
            .expect("checked when the model was created")
    }

    /// The opset version of the default (`ai.onnx`) domain.
    pub fn opset(&self) -> Option<i64> {
        self.proto
            .opset_import
            .iter()
            .find(|o| o.domain().is_empty() || o.domain() == "ai.onnx")
            .map(|o| o.version())
    }

    /// Graph inputs that callers must feed (initializers listed as inputs by old exporters are left out).
    pub fn inputs(&self) -> Vec<ValueInfo> {
        let initializers: HashSet<&str> =
            self.graph().initializer.iter().map(|t| t.name()).collect();
        self.graph()
            .input
            .iter()
            .filter(|v| !initializers.contains(v.name()))
            .map(value_info)
            .collect()
    }

    /// Graph outputs.
    pub fn outputs(&self) -> Vec<ValueInfo> {
        self.graph().output.iter().map(value_info).collect()
    }

    /// The graph's nodes in their stored (topological) order.
    pub fn nodes(&self) -> &[NodeProto] {
        &self.graph().node
    }

    /// Names of all initializers, in stored order.
    pub fn initializer_names(&self) -> Vec<&str> {
        self.graph().initializer.iter().map(|t| t.name()).collect()
    }

    /// One float32 initializer by name.
    pub fn initializer(&self, name: &str) -> Result<Initializer, OnnxError> {
        let tensor = self
            .graph()
            .initializer
            .iter()
            .find(|t| t.name() == name)
            .ok_or_else(|| OnnxError::MissingInitializer(name.to_owned()))?;
        decode_f32(tensor)
    }

    /// A QDQ graph's int8 weights, `(name, dims, values)`: every int8 initializer that a
    /// `DequantizeLinear` reads as its quantised input (zero points are left out).
    pub fn int8_weights(&self) -> Vec<(String, Vec<usize>, Vec<i8>)> {
        let graph = self.graph();
        let dequantized: std::collections::HashSet<&str> = graph
            .node
            .iter()
            .filter(|n| n.op_type() == "DequantizeLinear")
            .filter_map(|n| n.input.first().map(String::as_str))
            .collect();
        graph
            .initializer
            .iter()
            .filter(|t| t.data_type() == crate::proto::tensor_proto::DataType::Int8 as i32)
            .filter(|t| dequantized.contains(t.name()))
            .map(|t| {
                let values = if t.raw_data().is_empty() {
                    t.int32_data.iter().map(|&v| v as i8).collect()
                } else {
                    t.raw_data().iter().map(|&b| b as i8).collect()
                };
                let dims = t.dims.iter().map(|&d| d.max(0) as usize).collect();
                (t.name().to_owned(), dims, values)
            })
            .collect()
    }

    /// The shape of a constant weight of any element type: an initializer, or the quantised
    /// initializer behind a `DequantizeLinear` (as in QDQ graphs).
    pub fn weight_dims(&self, name: &str) -> Result<Vec<usize>, OnnxError> {
        let graph = self.graph();
        let stored = |n: &str| graph.initializer.iter().find(|t| t.name() == n);
        let tensor = stored(name).or_else(|| {
            graph
                .node
                .iter()
                .find(|node| {
                    node.op_type() == "DequantizeLinear" && node.output.iter().any(|o| o == name)
                })
                .and_then(|node| stored(&node.input[0]))
        });
        tensor
            .map(|t| t.dims.iter().map(|&d| d.max(0) as usize).collect())
            .ok_or_else(|| OnnxError::MissingInitializer(name.to_owned()))
    }

    /// A copy of this model that computes only `outputs`: the nodes they depend on are kept,
    /// everything else (and unused initializers) is dropped. Any intermediate value can be an output,
    /// which is how a layer's activations are exposed for comparison.
    pub fn extract(&self, outputs: &[&str]) -> Result<Model, OnnxError> {
        let graph = self.graph();
        let producer: HashMap<&str, usize> = graph
            .node
            .iter()
            .enumerate()
            .flat_map(|(i, n)| n.output.iter().map(move |o| (o.as_str(), i)))
            .collect();
        let sources: HashSet<&str> = graph
            .input
            .iter()
            .map(|v| v.name())
            .chain(graph.initializer.iter().map(|t| t.name()))
            .collect();

        let mut needed_nodes = HashSet::new();
        let mut needed_values: HashSet<&str> = HashSet::new();
        let mut stack: Vec<&str> = outputs.to_vec();
        while let Some(value) = stack.pop() {
            if value.is_empty() || !needed_values.insert(value) {
                continue;
            }
            match producer.get(value) {
                Some(&i) => {
                    if needed_nodes.insert(i) {
                        stack.extend(graph.node[i].input.iter().map(String::as_str));
                    }
                }
                None if sources.contains(value) => {}
                None => return Err(OnnxError::UnknownValue(value.to_owned())),
            }
        }

        let mut sub = graph.clone();
        sub.node = graph
            .node
            .iter()
            .enumerate()
            .filter(|(i, _)| needed_nodes.contains(i))
            .map(|(_, n)| n.clone())
            .collect();
        sub.initializer.retain(|t| needed_values.contains(t.name()));
        sub.input.retain(|v| needed_values.contains(v.name()));
        sub.output = outputs
            .iter()
            .map(|name| {
                graph
                    .output
                    .iter()
                    .chain(&graph.value_info)
                    .find(|v| v.name() == *name)
                    .cloned()
                    .unwrap_or_else(|| crate::builder::float_value_info(name, None))
            })
            .collect();
        let mut proto = self.proto.clone();
        proto.graph = Some(sub);
        Ok(Model { proto })
    }
}

fn value_info(v: &ValueInfoProto) -> ValueInfo {
    let tensor = v.r#type.as_ref().and_then(|t| match &t.value {
        Some(type_proto::Value::TensorType(tensor)) => Some(tensor),
        _ => None,
    });
    let dims = tensor.and_then(|t| t.shape.as_ref()).map(|shape| {
        shape
            .dim
            .iter()
            .map(|d| match &d.value {
                Some(tensor_shape_proto::dimension::Value::DimValue(n)) => Dim::Fixed(*n),
                Some(tensor_shape_proto::dimension::Value::DimParam(p)) => Dim::Named(p.clone()),
                None => Dim::Named(String::new()),
            })
            .collect()
    });
    ValueInfo {
        name: v.name().to_owned(),
        elem_type: tensor.map_or(0, |t| t.elem_type()),
        dims,
    }
}

pub(crate) fn decode_f32(tensor: &TensorProto) -> Result<Initializer, OnnxError> {
    let name = tensor.name().to_owned();
    if tensor.data_type() != tensor_proto::DataType::Float as i32 {
        return Err(OnnxError::UnsupportedDataType {
            name,
            data_type: tensor.data_type(),
        });
    }
    let dims: Vec<usize> = tensor.dims.iter().map(|&d| d.max(0) as usize).collect();
    let expected: usize = dims.iter().product();
    let data: Vec<f32> = match &tensor.raw_data {
        Some(raw) if !raw.is_empty() => {
            if raw.len() % 4 != 0 {
                return Err(OnnxError::SizeMismatch {
                    name,
                    expected,
                    actual: raw.len() / 4,
                });
            }
            raw.chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()
        }
        _ => tensor.float_data.clone(),
    };
    if data.len() != expected {
        return Err(OnnxError::SizeMismatch {
            name,
            expected,
            actual: data.len(),
        });
    }
    Ok(Initializer { name, dims, data })
}
