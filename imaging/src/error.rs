use std::path::PathBuf;

/// Why a picture cannot be read, accepted or written, in words a user can act on.
#[derive(Debug, thiserror::Error)]
pub enum ImagingError {
    /// The bytes are not an image we can decode.
    #[error("cannot decode the image: {0}")]
    Unreadable(String),
    /// The image is larger than the configured limit.
    #[error(
        "image is {width}×{height} ({megapixels:.1} megapixels), over the {limit_megapixels}-megapixel limit"
    )]
    TooLarge {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
        /// Its size in megapixels.
        megapixels: f64,
        /// The configured limit.
        limit_megapixels: u32,
    },
    /// The image is too small to stylize meaningfully.
    #[error("image is {width}×{height}; each side must be at least {min_side} pixels")]
    TooSmall {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
        /// The smallest side we accept.
        min_side: u32,
    },
    /// The image's aspect ratio is beyond what we process.
    #[error("image is {width}×{height}, an aspect ratio over {max_aspect}:1")]
    ExtremeAspect {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
        /// The widest ratio we accept.
        max_aspect: u32,
    },
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A folder that should hold pictures holds none.
    #[error("{0} holds no .jpg or .png pictures")]
    NoPictures(PathBuf),
    /// The image could not be encoded.
    #[error("cannot encode the image: {0}")]
    Encode(String),
}

impl ImagingError {
    /// Whether the fault is the picture's own (a user sent something unusable), as opposed to a
    /// file or encoder failure on our side.
    pub fn is_bad_picture(&self) -> bool {
        matches!(
            self,
            ImagingError::Unreadable(_)
                | ImagingError::TooLarge { .. }
                | ImagingError::TooSmall { .. }
                | ImagingError::ExtremeAspect { .. }
        )
    }
}
