//! The one image module: decoding with limits and EXIF orientation, conversion of every pixel format
//! to 8-bit RGB, resizing, tensor layout and encoding. The CLI, the bot, both engines and the
//! trainer's data loader all come through here, so a limit is fixed in one place.
mod error;
pub mod ppm;

use std::io::Cursor;
use std::path::Path;

use image::{DynamicImage, ImageDecoder, ImageReader, RgbImage, imageops::FilterType};
use ndarray::Array4;

pub use error::ImagingError;

/// What we accept from users; the defaults suit photos sent through Telegram.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImageLimits {
    /// Largest accepted image, in megapixels (checked from the header, before decoding).
    pub max_megapixels: u32,
    /// Smallest accepted side in pixels.
    pub min_side: u32,
    /// Widest accepted aspect ratio (long side / short side).
    pub max_aspect: u32,
}

impl Default for ImageLimits {
    fn default() -> Self {
        // 50 MP covers every phone camera; 32 px is the smallest input whose relu4_1 map (1/8) is 4×4.
        ImageLimits {
            max_megapixels: 50,
            min_side: 32,
            max_aspect: 10,
        }
    }
}

/// Decodes image bytes (JPEG, PNG, WebP, BMP, GIF, TIFF) to 8-bit RGB, applying EXIF orientation;
/// grayscale, 16-bit, palette and CMYK inputs are converted, transparency is composited onto white.
pub fn decode(bytes: &[u8], limits: &ImageLimits) -> Result<RgbImage, ImagingError> {
    let unreadable = |e: image::ImageError| ImagingError::Unreadable(e.to_string());
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ImagingError::Unreadable(e.to_string()))?;
    if reader.format().is_none() {
        return Err(ImagingError::Unreadable(
            "not a recognised image format".to_owned(),
        ));
    }
    let mut decoder_limits = image::Limits::default();
    // A header can claim any size; cap the allocation at the pixel limit (16-bit RGBA = 8 bytes/px).
    decoder_limits.max_alloc = Some(u64::from(limits.max_megapixels) * 1_000_000 * 8 + (64 << 20));
    reader.limits(decoder_limits);
    let mut decoder = reader.into_decoder().map_err(unreadable)?;
    let (width, height) = decoder.dimensions();
    check_size(width, height, limits)?;
    let orientation = decoder.orientation().map_err(unreadable)?;
    let mut image = DynamicImage::from_decoder(decoder).map_err(unreadable)?;
    image.apply_orientation(orientation);
    Ok(to_rgb_on_white(image))
}

/// Reads and decodes an image file with [`decode`].
pub fn load(path: impl AsRef<Path>, limits: &ImageLimits) -> Result<RgbImage, ImagingError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| ImagingError::Io {
        path: path.to_owned(),
        source,
    })?;
    decode(&bytes, limits).map_err(|e| match e {
        ImagingError::Unreadable(why) => {
            ImagingError::Unreadable(format!("{}: {why}", path.display()))
        }
        other => other,
    })
}

fn check_size(width: u32, height: u32, limits: &ImageLimits) -> Result<(), ImagingError> {
    let megapixels = f64::from(width) * f64::from(height) / 1e6;
    if megapixels > f64::from(limits.max_megapixels) {
        return Err(ImagingError::TooLarge {
            width,
            height,
            megapixels,
            limit_megapixels: limits.max_megapixels,
        });
    }
    if width.min(height) < limits.min_side {
        return Err(ImagingError::TooSmall {
            width,
            height,
            min_side: limits.min_side,
        });
    }
    if width.max(height) > width.min(height).saturating_mul(limits.max_aspect) {
        return Err(ImagingError::ExtremeAspect {
            width,
            height,
            max_aspect: limits.max_aspect,
        });
    }
    Ok(())
}

fn to_rgb_on_white(image: DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        return image.to_rgb8();
    }
    let rgba = image.to_rgba32f();
    RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let [r, g, b, a] = rgba.get_pixel(x, y).0;
        let over_white = |c: f32| ((c * a + (1.0 - a)) * 255.0).round().clamp(0.0, 255.0) as u8;
        image::Rgb([over_white(r), over_white(g), over_white(b)])
    })
}

/// Downscales so that the longer side is at most `max_side`, keeping the aspect ratio; smaller images
/// are returned unchanged.
pub fn fit_max_side(image: RgbImage, max_side: u32) -> RgbImage {
    let (w, h) = image.dimensions();
    let long = w.max(h);
    if long <= max_side {
        return image;
    }
    let scale = f64::from(max_side) / f64::from(long);
    let nw = ((f64::from(w) * scale).round() as u32).max(1);
    let nh = ((f64::from(h) * scale).round() as u32).max(1);
    image::imageops::resize(&image, nw, nh, FilterType::Lanczos3)
}

/// A grid of images (rows × columns), each scaled to fit a `cell`×`cell` square on white, with a
/// 4-pixel gap. Missing cells (shorter rows) stay white.
pub fn contact_sheet(rows: &[Vec<RgbImage>], cell: u32) -> RgbImage {
    const GAP: u32 = 4;
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0) as u32;
    let width = columns * (cell + GAP) + GAP;
    let height = rows.len() as u32 * (cell + GAP) + GAP;
    let mut sheet = RgbImage::from_pixel(width.max(1), height.max(1), image::Rgb([255, 255, 255]));
    for (r, row) in rows.iter().enumerate() {
        for (c, img) in row.iter().enumerate() {
            let scale = f64::from(cell) / f64::from(img.width().max(img.height()));
            let (w, h) = (
                ((f64::from(img.width()) * scale).round() as u32).max(1),
                ((f64::from(img.height()) * scale).round() as u32).max(1),
            );
            let thumb = image::imageops::resize(img, w, h, FilterType::Triangle);
            let x = GAP + c as u32 * (cell + GAP) + (cell - w) / 2;
            let y = GAP + r as u32 * (cell + GAP) + (cell - h) / 2;
            image::imageops::replace(&mut sheet, &thumb, i64::from(x), i64::from(y));
        }
    }
    sheet
}

/// Pads by reflection (mirror without repeating the edge) on the right and bottom so that both sides
/// are multiples of `multiple`; crop the result back with [`crop_to`]. Sides must exceed the padding.
pub fn pad_reflect_to_multiple(image: &RgbImage, multiple: u32) -> RgbImage {
    let (w, h) = image.dimensions();
    let (pw, ph) = (
        w.div_ceil(multiple) * multiple,
        h.div_ceil(multiple) * multiple,
    );
    if (pw, ph) == (w, h) {
        return image.clone();
    }
    let reflect = |i: u32, n: u32| {
        if i < n {
            i
        } else {
            (2 * (n - 1)).saturating_sub(i)
        }
    };
    RgbImage::from_fn(pw, ph, |x, y| {
        *image.get_pixel(reflect(x, w), reflect(y, h))
    })
}

/// The top-left `width`×`height` of `image`.
pub fn crop_to(image: &RgbImage, width: u32, height: u32) -> RgbImage {
    image::imageops::crop_imm(image, 0, 0, width, height).to_image()
}

/// Output encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JPEG at quality 92.
    Jpeg,
    /// Lossless PNG.
    Png,
}

impl Format {
    /// The format a file name asks for (`.jpg`, `.jpeg`, `.png`), if any.
    pub fn from_path(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "jpg" | "jpeg" => Some(Format::Jpeg),
            "png" => Some(Format::Png),
            _ => None,
        }
    }
}

/// Encodes an image as JPEG or PNG bytes.
pub fn encode(image: &RgbImage, format: Format) -> Result<Vec<u8>, ImagingError> {
    let mut out = Vec::new();
    let result = match format {
        Format::Jpeg => {
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 92).encode_image(image)
        }
        Format::Png => image.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png),
    };
    result.map_err(|e| ImagingError::Encode(e.to_string()))?;
    Ok(out)
}

/// Luminance (BT.601 / YIQ's Y) of an RGB pixel, on the 0..255 scale.
fn luma(p: &image::Rgb<u8>) -> f32 {
    0.299 * f32::from(p.0[0]) + 0.587 * f32::from(p.0[1]) + 0.114 * f32::from(p.0[2])
}

/// The stylized image's luminance with the content's colours: each content pixel shifted by the
/// luminance difference, the same ΔY on R, G and B (YIQ's I and Q rows sum to zero, so the chroma
/// stays the content's exactly, up to clipping and rounding). Sizes must match.
pub fn keep_chroma(content: &RgbImage, stylized: &RgbImage) -> RgbImage {
    assert_eq!(content.dimensions(), stylized.dimensions(), "sizes differ");
    RgbImage::from_fn(content.width(), content.height(), |x, y| {
        let c = content.get_pixel(x, y);
        let delta = luma(stylized.get_pixel(x, y)) - luma(c);
        image::Rgb(c.0.map(|v| (f32::from(v) + delta).round().clamp(0.0, 255.0) as u8))
    })
}

/// Resizes to exactly `width`×`height` (Lanczos).
pub fn resize_exact(image: &RgbImage, width: u32, height: u32) -> RgbImage {
    image::imageops::resize(image, width, height, FilterType::Lanczos3)
}

/// The image as a `[1, 3, H, W]` RGB tensor with values in [0, 1].
pub fn to_nchw(image: &RgbImage) -> Array4<f32> {
    let (w, h) = image.dimensions();
    Array4::from_shape_fn((1, 3, h as usize, w as usize), |(_, c, y, x)| {
        f32::from(image.get_pixel(x as u32, y as u32).0[c]) / 255.0
    })
}

/// A `[1, 3, H, W]` (or `[3, H, W]` viewed as such) tensor in [0, 1] back to an image; values are clamped.
pub fn from_nchw(tensor: &Array4<f32>) -> RgbImage {
    let (_, _, h, w) = tensor.dim();
    RgbImage::from_fn(w as u32, h as u32, |x, y| {
        let px = |c: usize| {
            (tensor[(0, c, y as usize, x as usize)] * 255.0)
                .round()
                .clamp(0.0, 255.0) as u8
        };
        image::Rgb([px(0), px(1), px(2)])
    })
}

/// Up to `count` pictures (.jpg, .jpeg, .png) of folder `dir`, evenly spread over its files sorted
/// by name, decoded with `limits` and scaled to `max_side`, with their paths.
pub fn sample_folder(
    dir: &Path,
    count: usize,
    max_side: u32,
    limits: &ImageLimits,
) -> Result<Vec<(std::path::PathBuf, RgbImage)>, ImagingError> {
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| ImagingError::Io {
            path: dir.to_owned(),
            source,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| Format::from_path(p).is_some())
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(ImagingError::NoPictures(dir.to_owned()));
    }
    let step = (files.len() / count.max(1)).max(1);
    files
        .into_iter()
        .step_by(step)
        .take(count)
        .map(|p| {
            let image = load(&p, limits)?;
            Ok((p, fit_max_side(image, max_side)))
        })
        .collect()
}

/// Peak signal-to-noise ratio of `a` against `b` in dB (8-bit scale); infinite when they are equal.
/// Sizes must match.
pub fn psnr(a: &RgbImage, b: &RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions(), "sizes differ");
    let mse = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
        .sum::<f64>()
        / a.as_raw().len().max(1) as f64;
    10.0 * (255.0f64.powi(2) / mse).log10()
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageFormat, Luma, Rgba, RgbaImage};

    fn encode(image: DynamicImage, format: ImageFormat) -> Vec<u8> {
        let mut bytes = Vec::new();
        image
            .write_to(&mut Cursor::new(&mut bytes), format)
            .unwrap();
        bytes
    }

    #[test]
    fn grayscale_16bit_becomes_rgb() {
        let gray =
            image::ImageBuffer::<Luma<u16>, _>::from_fn(40, 36, |x, _| Luma([(x * 1000) as u16]));
        let rgb = decode(
            &encode(DynamicImage::ImageLuma16(gray), ImageFormat::Png),
            &ImageLimits::default(),
        )
        .unwrap();
        assert_eq!(rgb.dimensions(), (40, 36));
        let p = rgb.get_pixel(39, 0).0;
        assert_eq!(p[0], p[1]);
        assert_eq!(p[0], (39_000.0f32 / 65535.0 * 255.0).round() as u8);
    }

    #[test]
    fn transparency_is_composited_on_white() {
        let rgba = RgbaImage::from_fn(40, 40, |x, _| {
            if x < 20 {
                Rgba([0, 0, 0, 0])
            } else {
                Rgba([0, 0, 0, 255])
            }
        });
        let rgb = decode(
            &encode(DynamicImage::ImageRgba8(rgba), ImageFormat::Png),
            &ImageLimits::default(),
        )
        .unwrap();
        assert_eq!(rgb.get_pixel(0, 0).0, [255, 255, 255]);
        assert_eq!(rgb.get_pixel(30, 0).0, [0, 0, 0]);
    }

    #[test]
    fn limits_are_enforced_with_clear_messages() {
        let limits = ImageLimits::default();
        let tiny = encode(DynamicImage::new_rgb8(20, 100), ImageFormat::Png);
        assert_eq!(
            decode(&tiny, &limits).unwrap_err().to_string(),
            "image is 20×100; each side must be at least 32 pixels"
        );
        let thin = encode(DynamicImage::new_rgb8(40, 1000), ImageFormat::Png);
        assert!(
            decode(&thin, &limits)
                .unwrap_err()
                .to_string()
                .contains("aspect ratio over 10:1")
        );
        let big = encode(DynamicImage::new_rgb8(1200, 1000), ImageFormat::Png);
        let small_limit = ImageLimits {
            max_megapixels: 1,
            ..limits
        };
        assert_eq!(
            decode(&big, &small_limit).unwrap_err().to_string(),
            "image is 1200×1000 (1.2 megapixels), over the 1-megapixel limit"
        );
        let garbage = decode(b"hello, this is text", &limits).unwrap_err();
        assert!(
            garbage.to_string().starts_with("cannot decode the image"),
            "{garbage}"
        );
    }

    #[test]
    fn exif_orientation_is_applied() {
        // A 40×60 JPEG with a red top row, tagged "rotate 90° clockwise" (orientation 6).
        let img = RgbImage::from_fn(40, 60, |_, y| {
            if y < 8 {
                image::Rgb([255, 0, 0])
            } else {
                image::Rgb([0, 0, 255])
            }
        });
        let jpeg = encode(DynamicImage::ImageRgb8(img), ImageFormat::Jpeg);
        let tagged = insert_exif_orientation(&jpeg, 6);
        let out = decode(&tagged, &ImageLimits::default()).unwrap();
        assert_eq!(out.dimensions(), (60, 40), "rotated to landscape");
        let right = out.get_pixel(58, 20).0;
        assert!(
            right[0] > 200 && right[2] < 60,
            "the red top row is now the right column: {right:?}"
        );
    }

    /// Inserts an APP1 Exif segment holding only the orientation tag after the JPEG SOI marker.
    fn insert_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
        let mut tiff = b"MM\0\x2a\0\0\0\x08".to_vec(); // big-endian TIFF header, IFD at offset 8
        tiff.extend_from_slice(&1u16.to_be_bytes()); // one entry
        tiff.extend_from_slice(&0x0112u16.to_be_bytes()); // Orientation
        tiff.extend_from_slice(&3u16.to_be_bytes()); // SHORT
        tiff.extend_from_slice(&1u32.to_be_bytes()); // count
        tiff.extend_from_slice(&orientation.to_be_bytes());
        tiff.extend_from_slice(&[0, 0, 0, 0, 0, 0]); // pad value, next IFD = 0
        let mut app1 = b"Exif\0\0".to_vec();
        app1.extend_from_slice(&tiff);
        let mut out = jpeg[..2].to_vec();
        out.extend_from_slice(&[0xFF, 0xE1]);
        out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
        out.extend_from_slice(&app1);
        out.extend_from_slice(&jpeg[2..]);
        out
    }

    #[test]
    fn contact_sheet_places_cells_in_a_grid() {
        let red = RgbImage::from_pixel(20, 10, image::Rgb([255, 0, 0]));
        let blue = RgbImage::from_pixel(10, 20, image::Rgb([0, 0, 255]));
        let sheet = contact_sheet(&[vec![red.clone(), blue], vec![red]], 16);
        assert_eq!(sheet.dimensions(), (2 * 20 + 4, 2 * 20 + 4));
        assert_eq!(
            sheet.get_pixel(4 + 8, 4 + 8).0,
            [255, 0, 0],
            "first cell holds the red image"
        );
        assert_eq!(
            sheet.get_pixel(24 + 8, 4 + 8).0,
            [0, 0, 255],
            "second cell the blue one"
        );
        assert_eq!(
            sheet.get_pixel(24 + 8, 24 + 8).0,
            [255, 255, 255],
            "missing cell stays white"
        );
    }

    #[test]
    fn fit_and_tensor_round_trip() {
        let img = RgbImage::from_fn(300, 150, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, 7])
        });
        assert_eq!(fit_max_side(img.clone(), 100).dimensions(), (100, 50));
        assert_eq!(fit_max_side(img.clone(), 1000).dimensions(), (300, 150));
        let t = to_nchw(&img);
        assert_eq!(t.dim(), (1, 3, 150, 300));
        assert!((t[(0, 0, 10, 255)] - 1.0).abs() < 1e-6);
        assert_eq!(from_nchw(&t), img);
    }

    #[test]
    fn reflect_padding_mirrors_without_repeating_the_edge_and_crops_back() {
        let img = RgbImage::from_fn(10, 9, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let padded = pad_reflect_to_multiple(&img, 8);
        assert_eq!(padded.dimensions(), (16, 16));
        // Column 10 mirrors column 8, column 15 mirrors column 3; row 9 mirrors row 7.
        assert_eq!(padded.get_pixel(10, 0).0[0], 8);
        assert_eq!(padded.get_pixel(15, 0).0[0], 3);
        assert_eq!(padded.get_pixel(0, 9).0[1], 7);
        assert_eq!(crop_to(&padded, 10, 9), img);
        let aligned = RgbImage::new(16, 8);
        assert_eq!(pad_reflect_to_multiple(&aligned, 8).dimensions(), (16, 8));
    }

    #[test]
    fn keep_chroma_takes_luminance_from_one_image_and_colour_from_the_other() {
        let content = RgbImage::from_fn(8, 8, |x, y| {
            image::Rgb([90 + x as u8 * 5, 120, 150 - y as u8 * 4])
        });
        let stylized =
            RgbImage::from_fn(8, 8, |x, y| image::Rgb([100 + y as u8, 110 + x as u8, 105]));
        let out = keep_chroma(&content, &stylized);
        let yiq_iq = |p: &image::Rgb<u8>| {
            let [r, g, b] = p.0.map(f32::from);
            (
                0.596 * r - 0.274 * g - 0.322 * b,
                0.211 * r - 0.523 * g + 0.312 * b,
            )
        };
        for (x, y, o) in out.enumerate_pixels() {
            let (ci, cq) = yiq_iq(content.get_pixel(x, y));
            let (oi, oq) = yiq_iq(o);
            // Rounding each channel to an integer moves I and Q by at most about 0.6.
            assert!(
                (ci - oi).abs() < 0.7 && (cq - oq).abs() < 0.7,
                "chroma at {x},{y}"
            );
            assert!(
                (luma(o) - luma(stylized.get_pixel(x, y))).abs() < 0.6,
                "luma at {x},{y}"
            );
        }
    }
}
