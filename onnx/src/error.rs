use std::path::PathBuf;

/// Everything that can go wrong reading or building an ONNX model.
#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    /// The file could not be read.
    #[error("cannot read ONNX file {path}: {source}")]
    Io {
        /// The file we tried to read.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The bytes are not an ONNX `ModelProto`.
    #[error("not a valid ONNX model: {0}")]
    Decode(#[from] prost::DecodeError),
    /// The model has no graph at all.
    #[error("the ONNX model has no graph")]
    NoGraph,
    /// An initializer that was asked for is not in the graph.
    #[error("the graph has no initializer named '{0}'")]
    MissingInitializer(String),
    /// An initializer holds a type other than f32.
    #[error("initializer '{name}' holds ONNX data type {data_type}; only float32 (1) is supported")]
    UnsupportedDataType {
        /// Initializer name.
        name: String,
        /// ONNX `TensorProto.DataType` code.
        data_type: i32,
    },
    /// An initializer's data does not match its declared shape.
    #[error("initializer '{name}' declares {expected} values but holds {actual}")]
    SizeMismatch {
        /// Initializer name.
        name: String,
        /// Element count from the dims.
        expected: usize,
        /// Element count found in the data.
        actual: usize,
    },
    /// A requested output is produced by no node, input or initializer.
    #[error("no node, input or initializer in the graph produces '{0}'")]
    UnknownValue(String),
    /// The graph has a shape a transformation does not handle.
    #[error("{0}")]
    Unsupported(String),
    /// Data passed to the builder does not match the shape given with it.
    #[error(
        "tensor '{name}' has shape {shape:?} ({expected} values) but {actual} values were given"
    )]
    ShapeMismatch {
        /// Tensor name.
        name: String,
        /// Declared shape.
        shape: Vec<usize>,
        /// Element count from the shape.
        expected: usize,
        /// Values supplied.
        actual: usize,
    },
}
