//! Building ONNX graphs: a small fluent API over the protobuf messages.
use crate::proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto, attribute_proto, tensor_proto, tensor_shape_proto,
    type_proto,
};
use crate::{Dim, Model, OnnxError};

/// IR version 8 goes with opset 17..18 (see ONNX `docs/Versioning.md`).
const IR_VERSION: i64 = 8;
/// The default opset; every op we export exists unchanged there.
pub const DEFAULT_OPSET: i64 = 17;

/// Builds one ONNX graph: inputs, f32 initializers, nodes and outputs.
///
/// ```
/// use stylegram_onnx::{Dim, GraphBuilder};
/// let mut g = GraphBuilder::new("double");
/// let x = g.input("x", &[Dim::named("N"), 3.into()]);
/// let two = g.initializer("two", &[1], &[2.0]).unwrap();
/// let y = g.op("Mul").inputs([&x, &two]).build();
/// g.output(&y, "y", &[Dim::named("N"), 3.into()]);
/// let model = g.finish();
/// assert_eq!(model.outputs()[0].name, "y");
/// ```
#[derive(Debug, Default)]
pub struct GraphBuilder {
    graph: GraphProto,
    opset: Option<i64>,
    metadata: Vec<(String, String)>,
    counter: usize,
}

/// One node under construction; [`NodeBuilder::build`] adds it to the graph and returns its output.
#[must_use = "call .build() to add the node to the graph"]
pub struct NodeBuilder<'g> {
    graph: &'g mut GraphBuilder,
    node: NodeProto,
}

impl GraphBuilder {
    /// An empty graph called `name`.
    pub fn new(name: &str) -> Self {
        GraphBuilder {
            graph: GraphProto {
                name: Some(name.to_owned()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    /// Uses `opset` instead of [`DEFAULT_OPSET`].
    pub fn opset(mut self, opset: i64) -> Self {
        self.opset = Some(opset);
        self
    }

    /// Adds a model-level metadata entry (shown by ONNX tools, readable from ONNX Runtime).
    pub fn metadata(&mut self, key: &str, value: &str) {
        self.metadata.push((key.to_owned(), value.to_owned()));
    }

    /// Declares a float32 graph input and returns its name.
    pub fn input(&mut self, name: &str, dims: &[Dim]) -> String {
        self.graph.input.push(float_value_info(name, Some(dims)));
        name.to_owned()
    }

    /// Adds a float32 weight tensor stored as little-endian raw bytes; returns its name.
    pub fn initializer(
        &mut self,
        name: &str,
        shape: &[usize],
        data: &[f32],
    ) -> Result<String, OnnxError> {
        check_len(name, shape, data.len())?;
        self.graph.initializer.push(TensorProto {
            name: Some(name.to_owned()),
            dims: shape.iter().map(|&d| d as i64).collect(),
            data_type: Some(tensor_proto::DataType::Float as i32),
            raw_data: Some(data.iter().flat_map(|v| v.to_le_bytes()).collect()),
            ..Default::default()
        });
        Ok(name.to_owned())
    }

    /// Adds an int64 constant tensor (shapes, axes, pads for ops that take them as inputs).
    pub fn initializer_i64(
        &mut self,
        name: &str,
        shape: &[usize],
        data: &[i64],
    ) -> Result<String, OnnxError> {
        check_len(name, shape, data.len())?;
        self.graph.initializer.push(TensorProto {
            name: Some(name.to_owned()),
            dims: shape.iter().map(|&d| d as i64).collect(),
            data_type: Some(tensor_proto::DataType::Int64 as i32),
            int64_data: data.to_vec(),
            ..Default::default()
        });
        Ok(name.to_owned())
    }

    /// Starts a node of type `op_type` (e.g. `"Conv"`).
    pub fn op(&mut self, op_type: &str) -> NodeBuilder<'_> {
        self.counter += 1;
        let name = format!("{}_{}", op_type, self.counter);
        NodeBuilder {
            node: NodeProto {
                op_type: Some(op_type.to_owned()),
                name: Some(name),
                ..Default::default()
            },
            graph: self,
        }
    }

    /// Exposes `value` as a graph output called `name` (adding an Identity when the names differ).
    pub fn output(&mut self, value: &str, name: &str, dims: &[Dim]) {
        if value != name {
            self.op("Identity").input(value).output_name(name).build();
        }
        self.graph.output.push(float_value_info(name, Some(dims)));
    }

    /// Finishes the model.
    pub fn finish(self) -> Model {
        let proto = ModelProto {
            ir_version: Some(IR_VERSION),
            producer_name: Some("stylegram".to_owned()),
            producer_version: Some(env!("CARGO_PKG_VERSION").to_owned()),
            opset_import: vec![OperatorSetIdProto {
                domain: Some(String::new()),
                version: Some(self.opset.unwrap_or(DEFAULT_OPSET)),
            }],
            metadata_props: self
                .metadata
                .into_iter()
                .map(|(key, value)| crate::proto::StringStringEntryProto {
                    key: Some(key),
                    value: Some(value),
                })
                .collect(),
            graph: Some(self.graph),
            ..Default::default()
        };
        Model::from_proto(proto).expect("the builder always sets a graph")
    }
}

impl NodeBuilder<'_> {
    /// Appends one input by name (use `""` for an omitted optional input).
    pub fn input(mut self, name: &str) -> Self {
        self.node.input.push(name.to_owned());
        self
    }

    /// Appends several inputs.
    pub fn inputs<'a>(mut self, names: impl IntoIterator<Item = &'a String>) -> Self {
        self.node.input.extend(names.into_iter().cloned());
        self
    }

    /// Names the node's (single) output instead of the generated `<node>_out`.
    pub fn output_name(mut self, name: &str) -> Self {
        self.node.output = vec![name.to_owned()];
        self
    }

    /// An integer attribute.
    pub fn int(self, name: &str, value: i64) -> Self {
        self.attr(name, attribute_proto::AttributeType::Int, |a| {
            a.i = Some(value)
        })
    }

    /// An integer-list attribute (pads, strides, kernel_shape, perm, axes...).
    pub fn ints(self, name: &str, values: &[i64]) -> Self {
        self.attr(name, attribute_proto::AttributeType::Ints, |a| {
            a.ints = values.to_vec()
        })
    }

    /// A float attribute (epsilon, alpha...).
    pub fn float(self, name: &str, value: f32) -> Self {
        self.attr(name, attribute_proto::AttributeType::Float, |a| {
            a.f = Some(value)
        })
    }

    /// A string attribute (mode...).
    pub fn string(self, name: &str, value: &str) -> Self {
        self.attr(name, attribute_proto::AttributeType::String, |a| {
            a.s = Some(value.as_bytes().to_vec())
        })
    }

    fn attr(
        mut self,
        name: &str,
        kind: attribute_proto::AttributeType,
        set: impl FnOnce(&mut AttributeProto),
    ) -> Self {
        let mut attribute = AttributeProto {
            name: Some(name.to_owned()),
            r#type: Some(kind as i32),
            ..Default::default()
        };
        set(&mut attribute);
        self.node.attribute.push(attribute);
        self
    }

    /// Adds the node to the graph and returns the name of its output.
    pub fn build(mut self) -> String {
        if self.node.output.is_empty() {
            self.node.output.push(format!("{}_out", self.node.name()));
        }
        let output = self.node.output[0].clone();
        self.graph.graph.node.push(self.node);
        output
    }
}

/// Checks that `len` values fill a tensor of `shape`.
fn check_len(name: &str, shape: &[usize], len: usize) -> Result<(), OnnxError> {
    let expected: usize = shape.iter().product();
    if expected == len {
        Ok(())
    } else {
        Err(OnnxError::ShapeMismatch {
            name: name.to_owned(),
            shape: shape.to_vec(),
            expected,
            actual: len,
        })
    }
}

/// A float32 `ValueInfoProto`; `dims: None` declares no shape.
pub(crate) fn float_value_info(name: &str, dims: Option<&[Dim]>) -> ValueInfoProto {
    let shape = dims.map(|dims| TensorShapeProto {
        dim: dims
            .iter()
            .map(|d| tensor_shape_proto::Dimension {
                value: Some(match d {
                    Dim::Fixed(n) => tensor_shape_proto::dimension::Value::DimValue(*n),
                    Dim::Named(p) => tensor_shape_proto::dimension::Value::DimParam(p.clone()),
                }),
                ..Default::default()
            })
            .collect(),
    });
    ValueInfoProto {
        name: Some(name.to_owned()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(tensor_proto::DataType::Float as i32),
                shape,
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}
