//! `stylegram models compare`: how far one bundle's pictures are from another's (PSNR) over every
//! photo × style of a folder, with this CPU named; the int8 bundle's quality check.
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::Args;
use stylegram_imaging::{self as images, ImageLimits};
use stylegram_inference::adain::AdainModel;
use stylegram_inference::cpu::CpuFeatures;
use stylegram_inference::runtime::SessionOptions;

use crate::Failure;

/// What to compare, and on what.
#[derive(Args)]
pub struct CompareArgs {
    /// The bundle under test (e.g. models/adain-v1-int8).
    bundle: PathBuf,
    /// The reference bundle (e.g. models/adain-v1).
    #[arg(long, default_value = "models/adain-v1")]
    reference: PathBuf,
    /// Folder with content/ and style/ pictures.
    #[arg(
        long,
        default_value = "../shared/data/test",
        env = "STYLEGRAM_DATA_TEST"
    )]
    data: PathBuf,
    /// Long side of the photos and styles in pixels.
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u32).range(32..=2048))]
    size: u32,
    /// Photos used (evenly spaced over the folder, by name).
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=1000))]
    photos: u32,
    /// Styles used (evenly spaced over the folder, by name).
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=1000))]
    styles: u32,
    /// Markdown file the table is also written to.
    #[arg(long, default_value = "docs/quantization-psnr.md")]
    out: PathBuf,
}

/// Up to `count` pictures of `dir` (see [`images::sample_folder`]), named by their file stems.
fn pictures(dir: &Path, count: u32, size: u32) -> Result<Vec<(String, image::RgbImage)>, Failure> {
    let sampled = images::sample_folder(dir, count as usize, size, &ImageLimits::default())?;
    Ok(sampled
        .into_iter()
        .map(|(path, image)| {
            let name = path.file_stem().unwrap_or_default().to_string_lossy();
            (name.into_owned(), image)
        })
        .collect())
}

/// Runs the comparison and prints (and writes) the table.
pub fn run(args: CompareArgs) -> Result<(), Failure> {
    let ours = AdainModel::load(&args.bundle, SessionOptions::default())?;
    let reference = AdainModel::load(&args.reference, SessionOptions::default())?;
    let photos = pictures(&args.data.join("content"), args.photos, args.size)?;
    let styles = pictures(&args.data.join("style"), args.styles, args.size)?;
    let cpu = CpuFeatures::detect();
    let mut table = String::new();
    let _ = writeln!(
        table,
        "# {} against {}\n\n`stylegram models compare {} --reference {} --size {}` on {}.\n\nCPU: {}. Integer arithmetic: {}.\n\n| photo | style | PSNR (dB) |\n|---|---|---|",
        ours.manifest().name,
        reference.manifest().name,
        args.bundle.display(),
        args.reference.display(),
        args.size,
        args.data.display(),
        cpu,
        cpu.int8_arithmetic(),
    );
    let mut values = Vec::new();
    let bar = indicatif::ProgressBar::new((photos.len() * styles.len()) as u64).with_style(
        indicatif::ProgressStyle::with_template("comparing {bar:30} {pos}/{len} pairs {elapsed}")
            .expect("valid template"),
    );
    for (style_name, style) in &styles {
        let ours_stats = ours.style_stats(style)?;
        let reference_stats = reference.style_stats(style)?;
        for (photo_name, photo) in &photos {
            let a = ours.transfer(photo, &ours_stats, 1.0)?;
            let b = reference.transfer(photo, &reference_stats, 1.0)?;
            let p = images::psnr(&a, &b);
            values.push(p);
            bar.inc(1);
            let _ = writeln!(table, "| {photo_name} | {style_name} | {p:.2} |");
        }
    }
    bar.finish_and_clear();
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let worst = values.iter().copied().fold(f64::INFINITY, f64::min);
    let _ = writeln!(
        table,
        "\n{} pairs at {} px: mean {mean:.2} dB, worst {worst:.2} dB.",
        values.len(),
        args.size
    );
    print!("{table}");
    std::fs::write(&args.out, &table)
        .map_err(|e| Failure::Other(format!("{}: {e}", args.out.display())))?;
    eprintln!("wrote {}", args.out.display());
    Ok(())
}
