//! Variants of a float bundle (int8 in [`crate::quantize`], fp16 in [`crate::half`]): the same
//! network with its graphs rewritten, written as a new bundle with fresh digests and a record of
//! what was done in its manifest.
use std::path::Path;

use stylegram_onnx::Model;

use crate::InferenceError;
use crate::bundle::{self, Manifest};

/// The float bundle in `src`, verified, and its encoder and decoder graphs.
pub(crate) fn read_source(
    src: &Path,
    kind: &str,
) -> Result<(Manifest, Model, Model), InferenceError> {
    let manifest = Manifest::read_verified(src)?;
    for done in ["quantization", "half_precision"] {
        if manifest.architecture.get(done).is_some() {
            return Err(InferenceError::BadRequest(format!(
                "{} is already a variant ({done}); make the {kind} variant from the float bundle",
                src.display()
            )));
        }
    }
    let graph = |name: &str| {
        let path = manifest
            .graph_path(src, name)
            .expect("read_verified checked both graphs");
        Model::from_file(&path).map_err(|e| InferenceError::BadBundle {
            dir: src.to_owned(),
            message: e.to_string(),
        })
    };
    let (encoder, decoder) = (graph("encoder")?, graph("decoder")?);
    Ok((manifest, encoder, decoder))
}

/// Writes `encoder` and `decoder` into `dst` (created if needed) under `source`'s file names, with
/// `source`'s manifest renamed to `name` (default: `dst`'s folder name, else `source`'s name and
/// `suffix`) and `record` stored under `architecture.<key>`; returns the new manifest.
pub(crate) fn write(
    source: &Manifest,
    dst: &Path,
    name: Option<&str>,
    suffix: &str,
    (key, record): (&str, serde_json::Value),
    encoder: &Model,
    decoder: &Model,
) -> Result<Manifest, InferenceError> {
    std::fs::create_dir_all(dst).map_err(|source| InferenceError::Io {
        path: dst.to_owned(),
        source,
    })?;
    let mut out = source.clone();
    out.name = match (name, dst.file_name()) {
        (Some(name), _) => name.to_owned(),
        (None, Some(folder)) => folder.to_string_lossy().into_owned(),
        (None, None) => format!("{}-{suffix}", source.name),
    };
    out.architecture[key] = record;
    out.files.clear();
    for (graph, model) in [("encoder", encoder), ("decoder", decoder)] {
        let file = &source.graphs[graph].file;
        let path = dst.join(file);
        std::fs::write(&path, model.to_bytes()).map_err(|source| InferenceError::Io {
            path: path.clone(),
            source,
        })?;
        out.files.insert(file.clone(), bundle::digest(&path)?);
    }
    out.write(dst)?;
    Ok(out)
}
