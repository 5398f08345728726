//! Helpers shared by the training crate's integration tests.
#![allow(dead_code)] // each test binary uses its own subset

use std::path::PathBuf;
use std::sync::OnceLock;

use stylegram_quality::vgg::Vgg;
use stylegram_training::{import, paths};

/// The repository's preset paintings (`styles/`): the tests paint these, photos and styles alike,
/// so that no verdict depends on a data folder outside the clone.
pub fn pictures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../styles")
}

/// One of the repository's preset paintings, by file name.
pub fn picture(name: &str) -> PathBuf {
    pictures().join(name)
}

/// The VGG16 weights file: the one `make test` imported, or a fresh import into a temporary folder.
pub fn vgg_path() -> PathBuf {
    static WEIGHTS: OnceLock<PathBuf> = OnceLock::new();
    WEIGHTS
        .get_or_init(|| {
            let installed = paths::vgg_weights();
            if installed.is_file() {
                return installed;
            }
            let out = tempfile::tempdir()
                .unwrap()
                .keep()
                .join("vgg16.safetensors");
            import::import_vgg(&paths::vgg_onnx(), &out)
                .expect("import VGG (run `make bootstrap`)");
            out
        })
        .clone()
}

/// The VGG16 on CPU.
pub fn vgg() -> Vgg {
    Vgg::load(&vgg_path(), tch::Device::Cpu).unwrap()
}
