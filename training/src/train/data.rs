//! Training images: recursive folder listing, and background threads that decode, resize and randomly
//! crop them into u8 batches, a few iterations ahead of the GPU.
//!
//! Batches are a pure function of `(seed, iteration)`, so a resumed run sees exactly the batches an
//! uninterrupted run would have seen, whatever the number of threads.
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use image::RgbImage;
use image::imageops::{self, FilterType};
use stylegram_imaging::{self as images, ImageLimits};

use crate::TrainingError;

/// File name endings read as images.
const EXTENSIONS: [&str; 8] = ["jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff"];

/// The image files under a folder, found recursively, in sorted order.
#[derive(Debug, Clone)]
pub struct ImageFolder {
    root: PathBuf,
    files: Vec<PathBuf>,
}

impl ImageFolder {
    /// Lists every image file under `root` (recursively); an error if there is none.
    pub fn scan(root: &Path) -> Result<Self, TrainingError> {
        let mut files = Vec::new();
        let mut pending = vec![root.to_owned()];
        while let Some(dir) = pending.pop() {
            let entries = std::fs::read_dir(&dir).map_err(|source| TrainingError::Io {
                path: dir.clone(),
                source,
            })?;
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    pending.push(path);
                } else if is_image_name(&path) {
                    files.push(path);
                }
            }
        }
        files.sort();
        if files.is_empty() {
            return Err(TrainingError::InvalidConfig(format!(
                "{}: no image files ({}) found",
                root.display(),
                EXTENSIONS.join(", ")
            )));
        }
        Ok(ImageFolder {
            root: root.to_owned(),
            files,
        })
    }

    /// The folder that was scanned.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The files found, sorted.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }
}

fn is_image_name(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// How training samples are cut from the images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sampling {
    /// Images per batch (content and style each).
    pub batch: usize,
    /// The shorter side is resized to this many pixels first.
    pub resize: u32,
    /// Then a random square of this side is cut out.
    pub crop: u32,
    /// Seed of the per-iteration random choices.
    pub seed: u64,
}

/// One iteration's images as u8 RGB, `[batch, 3, crop, crop]` in row-major order.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// The iteration this batch belongs to.
    pub iteration: u64,
    /// Content crops.
    pub content: Vec<u8>,
    /// Style crops.
    pub style: Vec<u8>,
}

/// SplitMix64: small, fast and good enough for picking files and crop offsets.
struct SplitMix64(u64);

impl SplitMix64 {
    fn for_iteration(seed: u64, iteration: u64) -> Self {
        let mut rng = SplitMix64(seed ^ iteration.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        rng.next();
        rng
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Files that failed to decode, remembered so each is reported once and then avoided.
#[derive(Default)]
struct Unreadable(Mutex<HashSet<PathBuf>>);

impl Unreadable {
    fn contains(&self, path: &Path) -> bool {
        self.0.lock().expect("not poisoned").contains(path)
    }

    fn add(&self, path: &Path, why: &str) {
        if self.0.lock().expect("not poisoned").insert(path.to_owned()) {
            tracing::warn!(
                "skipping unreadable training image {}: {why}",
                path.display()
            );
        }
    }
}

/// Loads `files[index]` (or, if unreadable, the next readable file after it), resized so the shorter
/// side is `resize` and randomly cropped to `crop`×`crop`, appended to `out` as CHW u8.
fn sample_into(
    files: &[PathBuf],
    index: usize,
    sampling: &Sampling,
    rng: &mut SplitMix64,
    unreadable: &Unreadable,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let limits = ImageLimits::default();
    for offset in 0..files.len() {
        let path = &files[(index + offset) % files.len()];
        if unreadable.contains(path) {
            continue;
        }
        match images::load(path, &limits) {
            Ok(image) => {
                let crop = random_crop(&image, sampling.resize, sampling.crop, rng);
                push_chw(&crop, out);
                return Ok(());
            }
            Err(e) => unreadable.add(path, &e.to_string()),
        }
    }
    Err(format!(
        "none of the {} training images could be read",
        files.len()
    ))
}

/// Resizes the shorter side to `resize` (bilinear; a no-op when it already is) and cuts a random
/// `crop`×`crop` square.
fn random_crop(image: &RgbImage, resize: u32, crop: u32, rng: &mut SplitMix64) -> RgbImage {
    let (w, h) = image.dimensions();
    let scale = f64::from(resize) / f64::from(w.min(h));
    let (rw, rh) = (
        ((f64::from(w) * scale).round() as u32).max(crop),
        ((f64::from(h) * scale).round() as u32).max(crop),
    );
    let resized = if (rw, rh) == (w, h) {
        image.clone()
    } else {
        imageops::resize(image, rw, rh, FilterType::Triangle)
    };
    let x = rng.below(u64::from(rw - crop) + 1) as u32;
    let y = rng.below(u64::from(rh - crop) + 1) as u32;
    imageops::crop_imm(&resized, x, y, crop, crop).to_image()
}

fn push_chw(image: &RgbImage, out: &mut Vec<u8>) {
    let raw = image.as_raw();
    for c in 0..3 {
        out.extend(raw.iter().skip(c).step_by(3));
    }
}

/// The batch of `iteration`: `batch` random content files and style files, each randomly cropped.
pub fn make_batch(
    content: &[PathBuf],
    style: &[PathBuf],
    sampling: &Sampling,
    iteration: u64,
) -> Result<Batch, String> {
    make_batch_skipping(content, style, sampling, iteration, &Unreadable::default())
}

fn make_batch_skipping(
    content: &[PathBuf],
    style: &[PathBuf],
    sampling: &Sampling,
    iteration: u64,
    unreadable: &Unreadable,
) -> Result<Batch, String> {
    let mut rng = SplitMix64::for_iteration(sampling.seed, iteration);
    let size = sampling.batch * 3 * (sampling.crop as usize).pow(2);
    let mut batch = Batch {
        iteration,
        content: Vec::with_capacity(size),
        style: Vec::with_capacity(size),
    };
    for _ in 0..sampling.batch {
        let c = rng.below(content.len() as u64) as usize;
        sample_into(
            content,
            c,
            sampling,
            &mut rng,
            unreadable,
            &mut batch.content,
        )?;
        let s = rng.below(style.len() as u64) as usize;
        sample_into(style, s, sampling, &mut rng, unreadable, &mut batch.style)?;
    }
    Ok(batch)
}

/// Background decoding: `threads` workers prepare batches up to `prefetch` iterations ahead; batches
/// come out in iteration order.
pub struct Loader {
    results: Receiver<Result<Batch, String>>,
    ready: BTreeMap<u64, Batch>,
    next: u64,
    consumed: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
}

impl Loader {
    /// Starts the workers at `first_iteration`.
    pub fn start(
        content: &ImageFolder,
        style: &ImageFolder,
        sampling: Sampling,
        first_iteration: u64,
        threads: usize,
        prefetch: usize,
    ) -> Self {
        let threads = threads.max(1);
        let prefetch = prefetch.max(threads) as u64;
        let (sender, results) = sync_channel(prefetch as usize);
        let consumed = Arc::new(AtomicU64::new(first_iteration));
        let stop = Arc::new(AtomicBool::new(false));
        let unreadable = Arc::new(Unreadable::default());
        let workers = (0..threads as u64)
            .map(|k| {
                let worker = Worker {
                    content: content.files.clone(),
                    style: style.files.clone(),
                    sampling,
                    sender: sender.clone(),
                    consumed: consumed.clone(),
                    stop: stop.clone(),
                    unreadable: unreadable.clone(),
                };
                std::thread::spawn(move || {
                    worker.run(first_iteration + k, threads as u64, prefetch);
                })
            })
            .collect();
        Loader {
            results,
            ready: BTreeMap::new(),
            next: first_iteration,
            consumed,
            stop,
            workers,
        }
    }

    /// The next iteration's batch (blocks until it is decoded).
    pub fn next_batch(&mut self) -> Result<Batch, TrainingError> {
        while !self.ready.contains_key(&self.next) {
            let batch = self
                .results
                .recv()
                .map_err(|_| TrainingError::InvalidConfig("the image loader stopped".into()))?
                .map_err(TrainingError::InvalidConfig)?;
            self.ready.insert(batch.iteration, batch);
        }
        let batch = self.ready.remove(&self.next).expect("checked above");
        self.next += 1;
        self.consumed.store(self.next, Ordering::Release);
        Ok(batch)
    }
}

impl Drop for Loader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // Unblock workers waiting on a full channel.
        while self.results.try_recv().is_ok() {}
        for worker in self.workers.drain(..) {
            while !worker.is_finished() {
                while self.results.try_recv().is_ok() {}
                std::thread::sleep(Duration::from_millis(1));
            }
            let _ = worker.join();
        }
    }
}

struct Worker {
    content: Vec<PathBuf>,
    style: Vec<PathBuf>,
    sampling: Sampling,
    sender: SyncSender<Result<Batch, String>>,
    consumed: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    unreadable: Arc<Unreadable>,
}

impl Worker {
    fn run(self, mut iteration: u64, stride: u64, prefetch: u64) {
        while !self.stop.load(Ordering::Acquire) {
            if iteration >= self.consumed.load(Ordering::Acquire) + prefetch {
                std::thread::sleep(Duration::from_millis(1));
                continue;
            }
            let result = make_batch_skipping(
                &self.content,
                &self.style,
                &self.sampling,
                iteration,
                &self.unreadable,
            );
            let failed = result.is_err();
            if self.sender.send(result).is_err() || failed {
                return;
            }
            iteration += stride;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder_with(images: &[(u32, u32)], garbage: usize) -> (tempfile::TempDir, ImageFolder) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("nested")).unwrap();
        for (i, &(w, h)) in images.iter().enumerate() {
            let img = RgbImage::from_fn(w, h, |x, y| {
                image::Rgb([(x * 7 + i as u32) as u8, (y * 3) as u8, 100])
            });
            img.save(dir.path().join("nested").join(format!("{i}.png")))
                .unwrap();
        }
        for i in 0..garbage {
            std::fs::write(dir.path().join(format!("broken{i}.jpg")), b"not a jpeg").unwrap();
        }
        std::fs::write(dir.path().join("notes.txt"), b"ignored").unwrap();
        let folder = ImageFolder::scan(dir.path()).unwrap();
        (dir, folder)
    }

    fn sampling(batch: usize) -> Sampling {
        Sampling {
            batch,
            resize: 40,
            crop: 32,
            seed: 7,
        }
    }

    #[test]
    fn scan_is_recursive_and_finds_only_images() {
        let (_dir, folder) = folder_with(&[(50, 40), (40, 60)], 1);
        assert_eq!(folder.files().len(), 3);
        let empty = tempfile::tempdir().unwrap();
        assert!(ImageFolder::scan(empty.path()).is_err());
    }

    #[test]
    fn batches_have_the_right_size_and_depend_only_on_seed_and_iteration() {
        let (_d1, content) = folder_with(&[(50, 40), (40, 60), (80, 45)], 0);
        let (_d2, style) = folder_with(&[(64, 64)], 0);
        let s = sampling(3);
        let a = make_batch(content.files(), style.files(), &s, 5).unwrap();
        assert_eq!(a.content.len(), 3 * 3 * 32 * 32);
        assert_eq!(a.style.len(), a.content.len());
        assert_eq!(
            a,
            make_batch(content.files(), style.files(), &s, 5).unwrap()
        );
        assert_ne!(
            a.content,
            make_batch(content.files(), style.files(), &s, 6)
                .unwrap()
                .content
        );
    }

    #[test]
    fn loader_delivers_in_order_the_same_batches_as_make_batch() {
        let (_d1, content) = folder_with(&[(50, 40), (40, 60), (80, 45)], 2);
        let (_d2, style) = folder_with(&[(64, 64), (48, 70)], 0);
        let s = sampling(2);
        let mut loader = Loader::start(&content, &style, s, 10, 3, 4);
        for iteration in 10..20 {
            let batch = loader.next_batch().unwrap();
            assert_eq!(batch.iteration, iteration);
            // Unreadable files are skipped the same way with or without the loader's memory of them.
            let direct = make_batch(content.files(), style.files(), &s, iteration).unwrap();
            assert_eq!(batch, direct);
        }
    }

    #[test]
    fn a_folder_of_unreadable_files_is_an_error_not_a_hang() {
        let (_d1, content) = folder_with(&[], 2);
        let (_d2, style) = folder_with(&[(64, 64)], 0);
        let mut loader = Loader::start(&content, &style, sampling(1), 0, 2, 2);
        let err = loader.next_batch().unwrap_err().to_string();
        assert!(err.contains("could be read"), "{err}");
    }
}
