use std::path::PathBuf;

/// Everything that can go wrong in the training crate, in words a user can act on.
#[derive(Debug, thiserror::Error)]
pub enum TrainingError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// libtorch reported an error.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
    /// An ONNX file could not be read.
    #[error(transparent)]
    Onnx(#[from] stylegram_onnx::OnnxError),
    /// The weights file is not in a layout we know.
    #[error("{path}: {message}")]
    BadWeights {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A run was configured in a way that cannot work.
    #[error("{0}")]
    InvalidConfig(String),
    /// The experiment tracker (MLflow) refused or could not be reached.
    #[error("MLflow: {0}")]
    Tracking(String),
    /// Image loading failed.
    #[error(transparent)]
    Image(#[from] stylegram_imaging::ImagingError),
    /// Quality mode (VGG, Gatys) failed.
    #[error(transparent)]
    Quality(#[from] stylegram_quality::QualityError),
    /// ONNX Runtime failed while running a model bundle (evaluation, parity).
    #[error(transparent)]
    Inference(#[from] stylegram_inference::InferenceError),
}
