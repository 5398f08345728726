//! What a training run leaves to look at: `metrics.jsonl`, the loss plot and sample grids.
use std::io::Write;
use std::path::{Path, PathBuf};

use image::RgbImage;
use serde::{Deserialize, Serialize};
use stylegram_imaging::{self as images, ImageLimits};
use tch::{Device, Tensor};

use super::data::ImageFolder;
use crate::TrainingError;
use crate::decoder::Decoder;
use crate::plots;
use stylegram_quality::tensors;
use stylegram_quality::vgg::Vgg;

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Record {
    /// Iterations completed.
    pub iteration: u64,
    /// Content loss L_c.
    pub content: f64,
    /// Style loss L_s (unweighted).
    pub style: f64,
    /// L_c + λ·L_s.
    pub total: f64,
    /// Learning rate used for this iteration.
    pub lr: f64,
    /// Training seconds since the run began (over resumes).
    pub elapsed_s: f64,
    /// Iterations per second in this session.
    pub iterations_per_s: f64,
    /// Achieved convolution TFLOP/s in this session.
    pub tflops: f64,
}

/// The metrics file of a run, and the records in it.
pub struct Metrics {
    path: PathBuf,
    file: std::fs::File,
    records: Vec<Record>,
}

impl Metrics {
    /// Opens `path`, keeping the records up to `iteration` (a resumed run continues the curve;
    /// records after the checkpoint it resumes from are dropped).
    pub fn open(path: &Path, iteration: u64) -> Result<Self, TrainingError> {
        let io = |source| TrainingError::Io {
            path: path.to_owned(),
            source,
        };
        let records: Vec<Record> = match std::fs::read_to_string(path) {
            Ok(text) => text
                .lines()
                .filter_map(|l| serde_json::from_str::<Record>(l).ok())
                .filter(|r| r.iteration <= iteration)
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io(e)),
        };
        let mut file = std::fs::File::create(path).map_err(io)?;
        for r in &records {
            writeln!(file, "{}", serde_json::to_string(r).expect("serialises")).map_err(io)?;
        }
        Ok(Metrics {
            path: path.to_owned(),
            file,
            records,
        })
    }

    /// The records of `path` up to `iteration`, without opening it for writing.
    pub fn open_read_only(path: &Path, iteration: u64) -> Result<Vec<Record>, TrainingError> {
        let text = std::fs::read_to_string(path).map_err(|source| TrainingError::Io {
            path: path.to_owned(),
            source,
        })?;
        Ok(text
            .lines()
            .filter_map(|l| serde_json::from_str::<Record>(l).ok())
            .filter(|r| r.iteration <= iteration)
            .collect())
    }

    /// Appends one record (flushed at once, so the file can be followed while training runs).
    pub fn record(&mut self, record: &Record) -> Result<(), TrainingError> {
        writeln!(
            self.file,
            "{}",
            serde_json::to_string(record).expect("serialises")
        )
        .and_then(|_| self.file.flush())
        .map_err(|source| TrainingError::Io {
            path: self.path.clone(),
            source,
        })?;
        self.records.push(record.clone());
        Ok(())
    }

    /// The records so far.
    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// Draws content, style and total loss against iterations (log scale) to `path`.
    pub fn plot(&self, path: &Path) -> Result<(), TrainingError> {
        if self.records.is_empty() {
            return Ok(());
        }
        let series = |name: &str, f: fn(&Record) -> f64| {
            (
                name.to_owned(),
                self.records
                    .iter()
                    .map(|r| (r.iteration as f64, f(r)))
                    .collect::<Vec<_>>(),
            )
        };
        plots::log_lines(
            path,
            "AdaIN training loss",
            "iteration",
            "loss",
            &[
                series("total", |r| r.total),
                series("content", |r| r.content),
                series("style (unweighted)", |r| r.style),
            ],
        )
    }
}

/// Fixed content and style crops rendered at each checkpoint, so runs can be compared by eye.
pub struct SampleSet {
    content: Vec<RgbImage>,
    style: Vec<RgbImage>,
    device: Device,
}

/// Up to `count` readable images spread evenly over `folder`, centre-cropped to `side`×`side`.
fn spread(folder: &ImageFolder, count: usize, side: u32) -> Vec<RgbImage> {
    let files = folder.files();
    let step = (files.len() / count).max(1);
    files
        .iter()
        .step_by(step)
        .filter_map(|p| images::load(p, &ImageLimits::default()).ok())
        .map(|img| centre_square(&img, side))
        .take(count)
        .collect()
}

fn centre_square(image: &RgbImage, side: u32) -> RgbImage {
    let (w, h) = image.dimensions();
    let s = w.min(h);
    let square = image::imageops::crop_imm(image, (w - s) / 2, (h - s) / 2, s, s).to_image();
    images::resize_exact(&square, side, side)
}

impl SampleSet {
    /// Four content and three style images from the training folders, at `side` pixels.
    pub fn new(
        content: &ImageFolder,
        style: &ImageFolder,
        side: u32,
        device: Device,
    ) -> Result<Self, TrainingError> {
        let side = side.max(64) / 8 * 8;
        Ok(SampleSet {
            content: spread(content, 4, side),
            style: spread(style, 3, side),
            device,
        })
    }

    /// The grid: styles across the top, contents down the left, stylized images inside.
    pub fn render(&self, vgg: &Vgg, decoder: &Decoder) -> Result<RgbImage, TrainingError> {
        sample_sheet(vgg, decoder, &self.content, &self.style, self.device)
    }
}

/// A contact sheet of every content × style pair through `decoder` (alpha 1); images must share one
/// size, a multiple of 8.
pub fn sample_sheet(
    vgg: &Vgg,
    decoder: &Decoder,
    content: &[RgbImage],
    style: &[RgbImage],
    device: Device,
) -> Result<RgbImage, TrainingError> {
    let cell = content.first().map_or(64, |c| c.width());
    let stack = |images: &[RgbImage]| {
        Tensor::cat(
            &images
                .iter()
                .map(|i| tensors::from_image(i, device))
                .collect::<Vec<_>>(),
            0,
        )
    };
    let mut rows = vec![
        std::iter::once(RgbImage::from_pixel(
            cell,
            cell,
            image::Rgb([255, 255, 255]),
        ))
        .chain(style.iter().cloned())
        .collect::<Vec<_>>(),
    ];
    rows.extend(content.iter().map(|c| vec![c.clone()]));
    if !content.is_empty() {
        let contents = stack(content);
        for s in style {
            let styles =
                tensors::from_image(s, device).expand([content.len() as i64, -1, -1, -1], false);
            let out = super::paint_batch(vgg, decoder, &contents, &styles)?;
            for (i, row) in rows.iter_mut().skip(1).enumerate() {
                row.push(tensors::to_image(&out.narrow(0, i as i64, 1)));
            }
        }
    }
    Ok(images::contact_sheet(&rows, cell))
}
