//! Fast-mode serving on ONNX Runtime, and [`images`]: the one place where photos are decoded,
//! oriented, limited, resized and encoded, used by every entry point (CLI, bot, trainer).

pub mod adain;
pub mod bench;
pub mod bundle;
mod error;
pub mod images;
pub mod presets;
pub mod quantize;
pub mod registry;
pub mod runtime;
pub mod stylizer;

pub use error::InferenceError;
