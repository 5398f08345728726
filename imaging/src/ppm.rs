//! Binary PPM (P6, 8-bit): the uncompressed exchange format with scripts that have nothing but
//! PyTorch to read pictures with (`bench/adain_reference.py` on a bare GPU machine).
use image::RgbImage;

use crate::ImagingError;

/// `image` as a binary PPM.
pub fn encode(image: &RgbImage) -> Vec<u8> {
    let (w, h) = image.dimensions();
    let mut out = format!("P6\n{w} {h}\n255\n").into_bytes();
    out.extend_from_slice(image.as_raw());
    out
}

/// A binary 8-bit PPM (`#` comments allowed in the header).
pub fn decode(bytes: &[u8]) -> Result<RgbImage, ImagingError> {
    let bad = |why: &str| ImagingError::Unreadable(format!("not an 8-bit binary PPM: {why}"));
    let mut fields = Vec::with_capacity(4);
    let mut pos = 0;
    while fields.len() < 4 {
        match bytes.get(pos) {
            None => return Err(bad("the header ends early")),
            Some(b) if b.is_ascii_whitespace() => pos += 1,
            Some(b'#') => {
                pos += bytes[pos..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .ok_or_else(|| bad("a comment does not end"))?;
            }
            Some(_) => {
                let end = bytes[pos..]
                    .iter()
                    .position(u8::is_ascii_whitespace)
                    .map_or(bytes.len(), |n| pos + n);
                fields.push(&bytes[pos..end]);
                pos = end;
            }
        }
    }
    let number = |field: &[u8]| -> Result<u32, ImagingError> {
        std::str::from_utf8(field)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("a size is not a number"))
    };
    if fields[0] != b"P6" || fields[3] != b"255" {
        return Err(bad("only P6 with maximum 255 is read"));
    }
    let (w, h) = (number(fields[1])?, number(fields[2])?);
    let len = (w as usize) * (h as usize) * 3;
    let pixels = bytes
        .get(pos + 1..pos + 1 + len)
        .ok_or_else(|| bad("fewer pixels than the header says"))?;
    RgbImage::from_raw(w, h, pixels.to_vec()).ok_or_else(|| bad("the sizes do not fit"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pictures_round_trip_and_bad_files_are_refused() {
        let img = RgbImage::from_fn(5, 3, |x, y| image::Rgb([x as u8 * 40, y as u8 * 70, 9]));
        assert_eq!(decode(&encode(&img)).unwrap(), img);
        let commented = [b"P6 # made by hand\n5 3\n255\n".as_slice(), img.as_raw()].concat();
        assert_eq!(decode(&commented).unwrap(), img);
        let mut short = encode(&img);
        short.pop();
        assert!(
            decode(&short)
                .unwrap_err()
                .to_string()
                .contains("fewer pixels")
        );
        assert!(decode(b"P3\n1 1\n255\n0 0 0").is_err());
        assert!(decode(b"P6\n1").is_err());
    }
}
