use std::path::PathBuf;

/// Everything that can go wrong in the inference crate, in words a user or operator can act on.
#[derive(Debug, thiserror::Error)]
pub enum InferenceError {
    /// The ONNX Runtime shared library was not found anywhere we looked.
    #[error(
        "ONNX Runtime library not found (looked at {tried}); run `make bootstrap` or set ORT_DYLIB_PATH to libonnxruntime.so"
    )]
    RuntimeMissing {
        /// The places we looked, comma separated.
        tried: String,
    },
    /// The library exists but could not be loaded (wrong version, wrong architecture...).
    #[error("cannot load ONNX Runtime from {path}: {message}")]
    RuntimeLoad {
        /// The library file.
        path: PathBuf,
        /// The loader's explanation.
        message: String,
    },
    /// ONNX Runtime rejected a model or failed while running it.
    #[error("ONNX Runtime: {0}")]
    Ort(String),
    /// A picture could not be decoded, accepted or encoded.
    #[error(transparent)]
    Image(#[from] stylegram_imaging::ImagingError),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A model bundle is malformed, incomplete or altered.
    #[error("model bundle {dir}: {message}")]
    BadBundle {
        /// The bundle folder.
        dir: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A request that cannot be served as asked (no style, a weight or alpha out of range).
    #[error("{0}")]
    BadRequest(String),
}

impl<T> From<ort::Error<T>> for InferenceError {
    fn from(e: ort::Error<T>) -> Self {
        InferenceError::Ort(e.to_string())
    }
}
