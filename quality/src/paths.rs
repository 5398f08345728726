//! Default location of the VGG weights that quality mode reads.
use std::path::PathBuf;

/// The bootstrap's cache folder: `STYLEGRAM_HOME`, default `~/.cache/stylegram`.
pub fn stylegram_home() -> PathBuf {
    std::env::var_os("STYLEGRAM_HOME").map_or_else(
        || {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| ".".into()))
                .join(".cache/stylegram")
        },
        PathBuf::from,
    )
}

/// Our imported VGG weights: `STYLEGRAM_VGG`, else `vgg16.safetensors` in the bootstrap's folder.
pub fn vgg_weights() -> PathBuf {
    std::env::var_os("STYLEGRAM_VGG")
        .map(PathBuf::from)
        .unwrap_or_else(|| stylegram_home().join("vgg16.safetensors"))
}
