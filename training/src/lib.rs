//! Offline work on libtorch: the AdaIN decoder and its trainer, export to ONNX, the VGG importer,
//! evaluation of fast models and quality results, the Gatys speed study, plots and MLflow tracking.
//! Serving-time quality mode (VGG, Gatys, L-BFGS) is `stylegram-quality`; pictures come from
//! `stylegram-imaging`.

pub mod adain;
pub mod cli;
pub mod decoder;
pub mod doctor;
mod error;
pub mod eval;
pub mod export;
pub mod gatys_study;
pub mod import;
pub mod paths;
pub mod plots;
pub mod train;
pub mod warm_study;

pub use error::TrainingError;
