//! Photos decoded once: `check_image` decodes a user's photo and keeps it here, keyed by its exact
//! bytes, so the job that follows (and its "Stronger" or "Quality" follow-ups) does not decode it
//! again. Bounded in bytes (the decoded pixels and the key), oldest out first.
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use image::RgbImage;

/// The cache.
pub(crate) struct Decoded {
    limit: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// (encoded bytes, decoded picture), least recently used first.
    entries: VecDeque<(Vec<u8>, Arc<RgbImage>)>,
    bytes: usize,
    decodes: u64,
}

fn cost(key: &[u8], image: &RgbImage) -> usize {
    key.len() + image.as_raw().len()
}

impl Decoded {
    /// A cache holding at most `limit` bytes.
    pub(crate) fn new(limit: usize) -> Self {
        Decoded {
            limit,
            inner: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The picture of `bytes`: from the cache, or from `decode` (outside the lock), then kept.
    pub(crate) fn get_or_decode<E>(
        &self,
        bytes: &[u8],
        decode: impl FnOnce() -> Result<RgbImage, E>,
    ) -> Result<Arc<RgbImage>, E> {
        {
            let mut inner = self.lock();
            if let Some(i) = inner
                .entries
                .iter()
                .position(|(k, _)| k.as_slice() == bytes)
            {
                let entry = inner.entries.remove(i).expect("found above");
                let image = entry.1.clone();
                inner.entries.push_back(entry);
                return Ok(image);
            }
        }
        let image = Arc::new(decode()?);
        let mut inner = self.lock();
        inner.decodes += 1;
        let size = cost(bytes, &image);
        if size <= self.limit {
            while inner.bytes + size > self.limit {
                let Some((k, old)) = inner.entries.pop_front() else {
                    break;
                };
                inner.bytes -= cost(&k, &old);
            }
            inner.bytes += size;
            inner.entries.push_back((bytes.to_vec(), image.clone()));
        }
        Ok(image)
    }

    /// How many pictures `get_or_decode` had to decode.
    pub(crate) fn decodes(&self) -> u64 {
        self.lock().decodes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn picture(w: u32) -> Result<RgbImage, ()> {
        Ok(RgbImage::new(w, 10))
    }

    fn kept() -> Result<RgbImage, ()> {
        panic!("the picture was kept: no decoding")
    }

    #[test]
    fn decodes_once_and_drops_the_oldest_when_full() {
        // Room for two 10×10 pictures (300 bytes each) with 1-byte keys.
        let cache = Decoded::new(700);
        cache.get_or_decode(b"a", || picture(10)).unwrap();
        cache.get_or_decode(b"a", kept).unwrap();
        cache.get_or_decode(b"b", || picture(10)).unwrap();
        cache.get_or_decode(b"c", || picture(10)).unwrap(); // "a" goes
        assert_eq!(cache.decodes(), 3);
        cache.get_or_decode(b"c", kept).unwrap();
        cache.get_or_decode(b"a", || picture(10)).unwrap();
        assert_eq!(cache.decodes(), 4);
        // Too large to keep: decoded, not kept, nothing else dropped.
        cache.get_or_decode(b"big", || picture(100)).unwrap();
        cache.get_or_decode(b"big", || picture(100)).unwrap();
        assert_eq!(cache.decodes(), 6);
        cache.get_or_decode(b"a", kept).unwrap();
        // Errors are passed on and nothing is kept.
        assert!(
            cache
                .get_or_decode(b"bad", || Err::<RgbImage, ()>(()))
                .is_err()
        );
        assert_eq!(cache.decodes(), 6);
    }
}
