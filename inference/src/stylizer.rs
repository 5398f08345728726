//! The fast-mode request path: a photo and weighted styles in, a stylized picture out. Style
//! statistics are computed once per style picture and kept in an LRU cache keyed by a hash of the
//! picture, so a style used again costs only the photo's encoder run and the decoder.
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use image::RgbImage;
use sha2::{Digest, Sha256};

use crate::InferenceError;
use crate::adain::{AdainModel, StyleStats};
use stylegram_imaging as images;

/// How to stylize one photo.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    /// Strength in [0, 1]: 0 returns (the decoder's reconstruction of) the photo, 1 full style.
    pub alpha: f32,
    /// Keep the photo's colours, take only the luminance of the stylized result.
    pub preserve_color: bool,
    /// Longer side of the result; larger photos (and styles) are downscaled first.
    pub max_side: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            alpha: 1.0,
            preserve_color: false,
            max_side: 512,
        }
    }
}

/// A style picture's identity in the cache: SHA-256 of its size and pixels.
pub type StyleKey = [u8; 32];

/// The cache key of a decoded style picture.
pub fn style_key(style: &RgbImage) -> StyleKey {
    let mut hasher = Sha256::new();
    hasher.update(style.width().to_le_bytes());
    hasher.update(style.height().to_le_bytes());
    hasher.update(style.as_raw());
    hasher.finalize().into()
}

/// A least-recently-used map with a fixed capacity.
struct Lru {
    capacity: usize,
    entries: HashMap<StyleKey, Arc<StyleStats>>,
    order: VecDeque<StyleKey>,
}

impl Lru {
    fn get(&mut self, key: &StyleKey) -> Option<Arc<StyleStats>> {
        let value = self.entries.get(key)?.clone();
        self.order.retain(|k| k != key);
        self.order.push_back(*key);
        Some(value)
    }

    fn insert(&mut self, key: StyleKey, value: Arc<StyleStats>) {
        if self.entries.insert(key, value).is_none() {
            self.order.push_back(key);
        }
        while self.entries.len() > self.capacity {
            if let Some(oldest) = self.order.pop_front() {
                self.entries.remove(&oldest);
            }
        }
    }
}

/// Where a stylization's time went.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StylizeTimes {
    /// The styles' statistics (zero when they were cached).
    pub style: Duration,
    /// Resizing the photo, the network, and colour preservation.
    pub network: Duration,
}

/// A model plus the style statistics cache.
pub struct Stylizer {
    model: Arc<AdainModel>,
    cache: Mutex<Lru>,
}

impl Stylizer {
    /// Serves `model`, remembering the statistics of up to `cache_capacity` styles.
    pub fn new(model: Arc<AdainModel>, cache_capacity: usize) -> Self {
        Stylizer {
            model,
            cache: Mutex::new(Lru {
                capacity: cache_capacity.max(1),
                entries: HashMap::new(),
                order: VecDeque::new(),
            }),
        }
    }

    /// The model in use.
    pub fn model(&self) -> &Arc<AdainModel> {
        &self.model
    }

    /// Styles whose statistics are cached now.
    pub fn cached_styles(&self) -> usize {
        self.cache.lock().expect("cache lock").entries.len()
    }

    /// The statistics of `style` at `max_side`, from the cache or computed (and cached) now.
    pub fn style_stats(
        &self,
        style: &RgbImage,
        max_side: u32,
    ) -> Result<Arc<StyleStats>, InferenceError> {
        let style = images::fit_max_side(style.clone(), max_side);
        let key = style_key(&style);
        if let Some(stats) = self.cache.lock().expect("cache lock").get(&key) {
            return Ok(stats);
        }
        let stats = Arc::new(self.model.style_stats(&style)?);
        self.cache
            .lock()
            .expect("cache lock")
            .insert(key, stats.clone());
        Ok(stats)
    }

    /// Stylizes `content` with `styles` (pictures with weights, normalised to sum to 1).
    pub fn stylize(
        &self,
        content: &RgbImage,
        styles: &[(&RgbImage, f32)],
        options: &Options,
    ) -> Result<RgbImage, InferenceError> {
        self.stylize_timed(content, styles, options)
            .map(|(image, _)| image)
    }

    /// [`Stylizer::stylize`], with where the time went.
    pub fn stylize_timed(
        &self,
        content: &RgbImage,
        styles: &[(&RgbImage, f32)],
        options: &Options,
    ) -> Result<(RgbImage, StylizeTimes), InferenceError> {
        if styles.is_empty() {
            return Err(InferenceError::BadRequest("no style given".into()));
        }
        if styles.iter().any(|(_, w)| !(*w >= 0.0 && w.is_finite())) {
            return Err(InferenceError::BadRequest(
                "style weights must be finite and not negative".into(),
            ));
        }
        if !(0.0..=1.0).contains(&options.alpha) {
            return Err(InferenceError::BadRequest(format!(
                "alpha {} is outside [0, 1]",
                options.alpha
            )));
        }
        let started = Instant::now();
        let stats = styles
            .iter()
            .map(|(s, w)| Ok((self.style_stats(s, options.max_side)?, *w)))
            .collect::<Result<Vec<_>, InferenceError>>()?;
        let style = started.elapsed();
        let weighted: Vec<(&StyleStats, f32)> =
            stats.iter().map(|(s, w)| (s.as_ref(), *w)).collect();
        let mixed = StyleStats::mix(&weighted)
            .ok_or_else(|| InferenceError::BadRequest("the style weights sum to 0".into()))?;
        let started = Instant::now();
        let content = images::fit_max_side(content.clone(), options.max_side);
        let out = self.model.transfer(&content, &mixed, options.alpha)?;
        let image = if options.preserve_color {
            images::keep_chroma(&content, &out)
        } else {
            out
        };
        let times = StylizeTimes {
            style,
            network: started.elapsed(),
        };
        Ok((image, times))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array4;

    fn stats(v: f32) -> Arc<StyleStats> {
        Arc::new(StyleStats {
            mean: Array4::from_elem((1, 2, 1, 1), v),
            std: Array4::from_elem((1, 2, 1, 1), v),
        })
    }

    #[test]
    fn lru_evicts_the_least_recently_used() {
        let mut lru = Lru {
            capacity: 2,
            entries: HashMap::new(),
            order: VecDeque::new(),
        };
        lru.insert([1; 32], stats(1.0));
        lru.insert([2; 32], stats(2.0));
        assert!(lru.get(&[1; 32]).is_some()); // 1 is now the most recent
        lru.insert([3; 32], stats(3.0));
        assert!(lru.get(&[2; 32]).is_none(), "2 was the least recently used");
        assert!(lru.get(&[1; 32]).is_some() && lru.get(&[3; 32]).is_some());
    }

    #[test]
    fn style_key_depends_on_pixels_and_shape() {
        let a = RgbImage::from_pixel(4, 2, image::Rgb([1, 2, 3]));
        let b = RgbImage::from_pixel(2, 4, image::Rgb([1, 2, 3]));
        let mut c = a.clone();
        c.put_pixel(0, 0, image::Rgb([1, 2, 4]));
        assert_eq!(style_key(&a), style_key(&a.clone()));
        assert_ne!(style_key(&a), style_key(&b));
        assert_ne!(style_key(&a), style_key(&c));
    }

    #[test]
    fn mixing_normalises_the_weights() {
        let mixed = StyleStats::mix(&[(&stats(1.0), 1.0), (&stats(4.0), 3.0)]).unwrap();
        assert!(mixed.mean.iter().all(|&v| (v - 3.25).abs() < 1e-6));
        let single = StyleStats::mix(&[(&stats(2.0), 5.0)]).unwrap();
        assert_eq!(single, *stats(2.0));
        assert!(StyleStats::mix(&[(&stats(2.0), 0.0)]).is_none());
    }
}
