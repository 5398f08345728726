//! libtorch engines for Stylegram: the pretrained VGG encoder and its importer (more to come:
//! AdaIN training, the Gatys optimiser, export to ONNX).

pub mod doctor;
mod error;
pub mod import;
pub mod paths;
pub mod vgg;

pub use error::TrainingError;
