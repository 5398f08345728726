//! The gallery's paintings: a folder of public-domain paintings with `manifest.json` (id, English and Russian
//! titles, artist, year, file), shipped in the repository's `styles/`.
use std::path::{Path, PathBuf};

use image::RgbImage;
use serde::Deserialize;

use crate::InferenceError;
use stylegram_imaging::{self as images, ImageLimits};

/// The largest painting file we accept (they travel in git and in every bot reply's keyboard).
pub const MAX_FILE_BYTES: u64 = 200_000;

/// One painting as described in the manifest.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Painting {
    /// Short id used on the command line and in the bot (`great-wave`).
    pub id: String,
    /// Title in English.
    pub title_en: String,
    /// Title in Russian.
    pub title_ru: String,
    /// Artist.
    pub artist: String,
    /// Year painted.
    pub year: i32,
    /// Year the artist died (public domain where the artist died over 70 years ago).
    pub artist_died: i32,
    /// Image file inside the folder.
    pub file: String,
}

#[derive(Deserialize)]
struct Manifest {
    styles: Vec<Painting>,
}

/// The paintings of a folder.
#[derive(Debug, Clone)]
pub struct Paintings {
    dir: PathBuf,
    paintings: Vec<Painting>,
}

impl Paintings {
    /// Reads `dir/manifest.json` and checks that ids are unique and every file exists, stays inside
    /// the folder and is at most [`MAX_FILE_BYTES`].
    pub fn load(dir: &Path) -> Result<Self, InferenceError> {
        let bad = |message: String| InferenceError::BadBundle {
            dir: dir.to_owned(),
            message,
        };
        let path = dir.join("manifest.json");
        let text = std::fs::read_to_string(&path).map_err(|source| InferenceError::Io {
            path: path.clone(),
            source,
        })?;
        let manifest: Manifest = serde_json::from_str(&text)
            .map_err(|e| bad(format!("manifest.json does not follow the schema: {e}")))?;
        let mut seen = std::collections::HashSet::new();
        for p in &manifest.styles {
            if !seen.insert(p.id.as_str()) {
                return Err(bad(format!("painting id '{}' appears twice", p.id)));
            }
            if p.file.contains('/') || p.file.contains("..") {
                return Err(bad(format!("file name '{}' leaves the folder", p.file)));
            }
            let size = std::fs::metadata(dir.join(&p.file))
                .map_err(|e| bad(format!("{}: {e}", p.file)))?
                .len();
            if size > MAX_FILE_BYTES {
                return Err(bad(format!(
                    "{} is {size} bytes, over {MAX_FILE_BYTES}",
                    p.file
                )));
            }
        }
        Ok(Paintings {
            dir: dir.to_owned(),
            paintings: manifest.styles,
        })
    }

    /// All paintings, in manifest order.
    pub fn all(&self) -> &[Painting] {
        &self.paintings
    }

    /// The painting with `id`.
    pub fn get(&self, id: &str) -> Option<&Painting> {
        self.paintings.iter().find(|p| p.id == id)
    }

    /// Decodes a painting's picture.
    pub fn image(&self, painting: &Painting) -> Result<RgbImage, InferenceError> {
        Ok(images::load(
            self.dir.join(&painting.file),
            &ImageLimits::default(),
        )?)
    }
}
