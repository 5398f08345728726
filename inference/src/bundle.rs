//! Fast-mode model bundles: a folder with `manifest.json`, `encoder.onnx` and `decoder.onnx`
//! (see `docs/model-format.md`). The training crate writes them; the server reads and checks them.
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::InferenceError;

/// The manifest's file name inside a bundle.
pub const MANIFEST: &str = "manifest.json";
/// The `format` value this code reads and writes.
pub const FORMAT: &str = "stylegram-adain-bundle/1";

/// One tensor of a graph's interface.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TensorSpec {
    /// Input or output name in the ONNX graph.
    pub name: String,
    /// Dimensions: numbers, or symbols such as "N", "H", "W".
    pub shape: Vec<String>,
    /// Element type (always "float32" in format 1).
    pub dtype: String,
    /// What it holds.
    pub description: String,
}

/// One ONNX graph of the bundle and its contract.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GraphSpec {
    /// File name inside the bundle.
    pub file: String,
    /// Inputs, in order.
    pub inputs: Vec<TensorSpec>,
    /// Outputs, in order.
    pub outputs: Vec<TensorSpec>,
}

/// Size and digest of one file, to detect truncation and tampering.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FileDigest {
    /// Bytes.
    pub bytes: u64,
    /// Lower-case hex SHA-256.
    pub sha256: String,
}

/// `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// Model name (the folder's name by convention).
    pub name: String,
    /// Model version (semver).
    pub version: String,
    /// Network description: encoder, decoder, AdaIN epsilon, padding.
    pub architecture: serde_json::Value,
    /// What the caller must do to images before and after the graphs.
    pub preprocessing: serde_json::Value,
    /// `encoder` and `decoder` graphs.
    pub graphs: BTreeMap<String, GraphSpec>,
    /// Training data and recipe.
    pub training: serde_json::Value,
    /// Measured numbers (training losses, evaluation).
    pub metrics: serde_json::Value,
    /// Digest of every file the graphs name.
    pub files: BTreeMap<String, FileDigest>,
}

fn bad(dir: &Path, message: impl Into<String>) -> InferenceError {
    InferenceError::BadBundle {
        dir: dir.to_owned(),
        message: message.into(),
    }
}

/// Size and SHA-256 of a file, read in chunks.
pub fn digest(path: &Path) -> Result<FileDigest, InferenceError> {
    let io = |source| InferenceError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buffer).map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        bytes += n as u64;
    }
    let sha256 = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(FileDigest { bytes, sha256 })
}

impl Manifest {
    /// Reads and checks `dir/manifest.json`: the format, both graphs named, and every listed file
    /// present with the recorded size and SHA-256.
    pub fn read_verified(dir: &Path) -> Result<Self, InferenceError> {
        let path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&path).map_err(|source| InferenceError::Io {
            path: path.clone(),
            source,
        })?;
        let manifest: Manifest = serde_json::from_str(&text)
            .map_err(|e| bad(dir, format!("{MANIFEST} does not follow the schema: {e}")))?;
        if manifest.format != FORMAT {
            return Err(bad(
                dir,
                format!("format '{}', expected '{FORMAT}'", manifest.format),
            ));
        }
        for graph in ["encoder", "decoder"] {
            let spec = manifest
                .graphs
                .get(graph)
                .ok_or_else(|| bad(dir, format!("the manifest names no {graph} graph")))?;
            if !manifest.files.contains_key(&spec.file) {
                return Err(bad(dir, format!("{} has no digest in 'files'", spec.file)));
            }
        }
        for (name, expected) in &manifest.files {
            if name.contains('/') || name.contains("..") {
                return Err(bad(dir, format!("file name '{name}' leaves the bundle")));
            }
            let actual = digest(&dir.join(name)).map_err(|e| bad(dir, e.to_string()))?;
            if actual != *expected {
                return Err(bad(
                    dir,
                    format!(
                        "{name} is {} bytes with sha256 {}, the manifest says {} bytes with {}",
                        actual.bytes, actual.sha256, expected.bytes, expected.sha256
                    ),
                ));
            }
        }
        Ok(manifest)
    }

    /// The path of graph `graph` ("encoder" or "decoder") inside `dir`.
    pub fn graph_path(&self, dir: &Path, graph: &str) -> Option<PathBuf> {
        self.graphs.get(graph).map(|g| dir.join(&g.file))
    }

    /// Writes the manifest as pretty JSON to `dir/manifest.json`.
    pub fn write(&self, dir: &Path) -> Result<(), InferenceError> {
        let path = dir.join(MANIFEST);
        let json = serde_json::to_string_pretty(self).expect("manifest serialises");
        std::fs::write(&path, json + "\n").map_err(|source| InferenceError::Io { path, source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_matches_a_known_sha256() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("abc");
        std::fs::write(&path, b"abc").unwrap();
        let d = digest(&path).unwrap();
        assert_eq!(d.bytes, 3);
        assert_eq!(
            d.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
