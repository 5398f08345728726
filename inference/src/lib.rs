//! Fast mode on ONNX Runtime: model bundles, sessions, the AdaIN pipeline, the registry with hot
//! swap, int8 quantisation and the `stylegram` CLI. Pictures come from `stylegram-imaging`.

pub mod adain;
pub mod bench;
pub mod bundle;
pub mod cpu;
mod error;
pub mod half;
pub mod paintings;
pub mod quantize;
pub mod registry;
pub mod runtime;
pub mod stylizer;
mod variant;

pub use error::InferenceError;
