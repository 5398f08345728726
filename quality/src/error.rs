use std::path::PathBuf;

/// Everything that can go wrong in quality mode, in words a user can act on.
#[derive(Debug, thiserror::Error)]
pub enum QualityError {
    /// A file could not be read.
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
    /// The weights file is not in a layout we know.
    #[error("{path}: {message}")]
    BadWeights {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A layer name that the encoder does not have.
    #[error("unknown VGG layer '{name}'; this network has {available}")]
    UnknownLayer {
        /// The requested name.
        name: String,
        /// The layers it does have.
        available: String,
    },
    /// A run was configured in a way that cannot work.
    #[error("{0}")]
    InvalidConfig(String),
}
