//! Quality mode on libtorch: Gatys et al. (2015) optimisation of the picture's pixels against a
//! pretrained VGG16 ([`vgg`]), with our L-BFGS ([`gatys::lbfgs`]) or Adam ([`adam`]), colour
//! preservation and the tested presets ([`gatys::preset`]). Serving-time code only: the VGG importer,
//! studies and the AdaIN trainer live in `stylegram-training`.

pub mod adam;
mod error;
pub mod gatys;
pub mod heap;
pub mod paths;
pub mod tensors;
pub mod vgg;

pub use error::QualityError;
