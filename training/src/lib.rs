//! libtorch engines for Stylegram: the pretrained VGG encoder and its importer, and the Gatys
//! optimiser (quality mode), and the AdaIN operation (fast-mode training and export are to come).

pub mod adain;
pub mod adam;
pub mod cli;
pub mod decoder;
pub mod doctor;
mod error;
pub mod eval;
pub mod export;
pub mod gatys;
pub mod import;
pub mod paths;
pub mod plots;
pub mod serve;
pub mod tensors;
pub mod train;
pub mod vgg;

pub use error::TrainingError;
