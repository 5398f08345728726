//! `stylegram-train eval`: the fast model on every content × style pair, Gatys on a spread subset,
//! the same VGG scores for both, a report and contact sheets.
use std::fmt::Write as _;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use image::RgbImage;
use indicatif::{ProgressBar, ProgressStyle};
use stylegram_imaging::{self as images, ImageLimits};
use stylegram_inference::adain::AdainModel;
use stylegram_inference::runtime::{Device, SessionOptions};
use stylegram_quality::gatys::{self, Style};
use stylegram_quality::vgg::Vgg;
use stylegram_training::eval::{self, Scores};
use stylegram_training::paths;

use crate::UsageError;

/// Options of `eval`.
#[derive(Args)]
pub struct EvalArgs {
    /// Model bundle folder.
    #[arg(long, default_value = "models/adain-v1", env = "STYLEGRAM_MODEL")]
    model: PathBuf,
    /// Folder with content/ and style/ subfolders; every content is paired with every style.
    #[arg(
        long,
        default_value = "../shared/data/test",
        env = "STYLEGRAM_DATA_TEST"
    )]
    pairs: PathBuf,
    /// Long side of the photos in pixels (styles are scaled to the same long side).
    #[arg(long, default_value_t = 512)]
    size: u32,
    /// Pairs also stylized with Gatys (spread over the grid; 0 = none).
    #[arg(long, default_value_t = 4)]
    gatys_pairs: usize,
    /// Gatys preset to compare with.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=5))]
    gatys_preset: u8,
    /// ONNX Runtime intra-op threads (0 = one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Where the report goes (eval.md, eval-pairs.csv, eval-sheet.jpg, eval-gatys.jpg).
    #[arg(long, default_value = "docs")]
    out_dir: PathBuf,
    /// VGG weights from `import-vgg` (all 13 layers: the Gram score reads relu5_1).
    #[arg(long, env = "STYLEGRAM_VGG")]
    vgg: Option<PathBuf>,
}

struct PairResult {
    content: usize,
    style: usize,
    scores: Scores,
    seconds: f64,
}

fn name(path: &Path) -> String {
    path.file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned())
}

/// Photo, style, the four scores and the time of one pair, joined by `sep`.
fn pair_fields(r: &PairResult, contents: &[PathBuf], styles: &[PathBuf], sep: &str) -> String {
    [
        name(&contents[r.content]),
        name(&styles[r.style]),
        format!("{:.4e}", r.scores.content),
        format!("{:.4e}", r.scores.style_gram),
        format!("{:.4e}", r.scores.style_stats),
        format!("{:.3}", r.scores.ssim),
        format!("{:.2}", r.seconds),
    ]
    .join(sep)
}

fn mean(results: &[&PairResult], f: impl Fn(&PairResult) -> f64) -> f64 {
    results.iter().map(|r| f(r)).sum::<f64>() / results.len().max(1) as f64
}

fn bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{{spinner}} {what} [{{elapsed_precise}}] {{bar:30}} {{pos}}/{{len}}  ETA {{eta}}"
        ))
        .expect("valid template"),
    );
    bar
}

fn save_jpeg(image: &RgbImage, path: &Path) -> anyhow::Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("writing {}", path.display()))?;
    image::codecs::jpeg::JpegEncoder::new_with_quality(std::io::BufWriter::new(file), 85)
        .encode_image(image)
        .with_context(|| format!("encoding {}", path.display()))?;
    Ok(())
}

/// Runs `eval`.
pub fn run(args: EvalArgs) -> anyhow::Result<ExitCode> {
    let (content_paths, style_paths) = eval::pair_folders(&args.pairs)
        .map_err(|e| UsageError(format!("--pairs {}: {e}", args.pairs.display())))?;
    let model = AdainModel::load(
        &args.model,
        SessionOptions {
            device: Device::Cpu,
            intra_threads: args.threads,
        },
    )
    .map_err(|e| UsageError(format!("--model {}: {e}", args.model.display())))?;
    let vgg_path = args.vgg.clone().unwrap_or_else(paths::vgg_weights);
    let vgg = Vgg::load(&vgg_path, tch::Device::Cpu)
        .with_context(|| format!("loading VGG weights {}", vgg_path.display()))?;
    let limits = ImageLimits::default();
    let load = |p: &PathBuf| -> anyhow::Result<RgbImage> {
        Ok(images::fit_max_side(
            images::load(p, &limits).with_context(|| format!("reading {}", p.display()))?,
            args.size,
        ))
    };
    let contents: Vec<RgbImage> = content_paths.iter().map(load).collect::<Result<_, _>>()?;
    let styles: Vec<RgbImage> = style_paths
        .iter()
        .map(|p| load(p).map(|s| gatys::fit_long_side(&s, args.size)))
        .collect::<Result<_, _>>()?;

    let start = Instant::now();
    let stats = styles
        .iter()
        .map(|s| model.style_stats(s))
        .collect::<Result<Vec<_>, _>>()?;
    let stats_seconds = start.elapsed().as_secs_f64() / styles.len() as f64;

    let progress = bar((contents.len() * styles.len()) as u64, "fast model");
    let mut results = Vec::new();
    let mut outputs: Vec<Vec<RgbImage>> = Vec::new();
    for (ci, content) in contents.iter().enumerate() {
        let mut row = Vec::new();
        for (si, style) in styles.iter().enumerate() {
            let t = Instant::now();
            let output = model.transfer(content, &stats[si], 1.0)?;
            let seconds = t.elapsed().as_secs_f64();
            let scores = eval::score(&vgg, &output, content, style)?;
            results.push(PairResult {
                content: ci,
                style: si,
                scores,
                seconds,
            });
            row.push(output);
            progress.inc(1);
        }
        outputs.push(row);
    }
    progress.finish_and_clear();

    // Gatys on pairs spread along the grid's diagonal.
    let count = args.gatys_pairs.min(contents.len());
    let step = (contents.len() / count.max(1)).max(1);
    let subset: Vec<(usize, usize)> = (0..count)
        .map(|i| (i * step, (i * step * 7 + 3) % styles.len()))
        .collect();
    let mut config = gatys::preset(args.gatys_preset).expect("clap limits the preset");
    config.size = args.size;
    let progress = bar(subset.len() as u64, "gatys");
    let mut gatys_results = Vec::new();
    let mut gatys_images = Vec::new();
    for &(ci, si) in &subset {
        let style = Style {
            image: styles[si].clone(),
            weight: 1.0,
        };
        let out = gatys::optimize(&vgg, &contents[ci], &[style], &config, |_| {
            ControlFlow::Continue(())
        })?;
        let scores = eval::score(&vgg, &out.image, &contents[ci], &styles[si])?;
        gatys_results.push(PairResult {
            content: ci,
            style: si,
            scores,
            seconds: out.elapsed.as_secs_f64(),
        });
        gatys_images.push(out.image);
        progress.inc(1);
    }
    progress.finish_and_clear();

    std::fs::create_dir_all(&args.out_dir)
        .with_context(|| format!("creating {}", args.out_dir.display()))?;
    // Full grid: styles across the top, contents down the left.
    let cell = 72;
    let blank = RgbImage::from_pixel(cell, cell, image::Rgb([255, 255, 255]));
    let mut rows = vec![
        std::iter::once(blank)
            .chain(styles.iter().cloned())
            .collect(),
    ];
    for (c, row) in contents.iter().zip(outputs.iter()) {
        rows.push(
            std::iter::once(c.clone())
                .chain(row.iter().cloned())
                .collect(),
        );
    }
    save_jpeg(
        &images::contact_sheet(&rows, cell),
        &args.out_dir.join("eval-sheet.jpg"),
    )?;
    let comparison: Vec<Vec<RgbImage>> = subset
        .iter()
        .zip(&gatys_images)
        .map(|(&(ci, si), g)| {
            vec![
                contents[ci].clone(),
                styles[si].clone(),
                outputs[ci][si].clone(),
                g.clone(),
            ]
        })
        .collect();
    if !comparison.is_empty() {
        save_jpeg(
            &images::contact_sheet(&comparison, 256),
            &args.out_dir.join("eval-gatys.jpg"),
        )?;
    }

    let mut csv =
        String::from("method,content,style,content_loss,style_gram,style_stats,ssim,seconds\n");
    for (method, list) in [("fast", &results), ("gatys", &gatys_results)] {
        for r in list.iter() {
            let fields = pair_fields(r, &content_paths, &style_paths, ",");
            let _ = writeln!(csv, "{method},{fields}");
        }
    }
    std::fs::write(args.out_dir.join("eval-pairs.csv"), csv)?;
    let report = render(
        &args,
        &model,
        &content_paths,
        &style_paths,
        &results,
        &gatys_results,
        stats_seconds,
    );
    std::fs::write(args.out_dir.join("eval.md"), &report)?;
    print!("{report}");
    Ok(ExitCode::SUCCESS)
}

fn render(
    args: &EvalArgs,
    model: &AdainModel,
    content_paths: &[PathBuf],
    style_paths: &[PathBuf],
    results: &[PairResult],
    gatys_results: &[PairResult],
    stats_seconds: f64,
) -> String {
    let all: Vec<&PairResult> = results.iter().collect();
    let fast_subset: Vec<&PairResult> = gatys_results
        .iter()
        .filter_map(|g| {
            results
                .iter()
                .find(|r| r.content == g.content && r.style == g.style)
        })
        .collect();
    let gatys: Vec<&PairResult> = gatys_results.iter().collect();
    let manifest = model.manifest();
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Evaluation: fast model `{}` {} against Gatys preset {}\n",
        manifest.name, manifest.version, args.gatys_preset
    );
    let _ = writeln!(
        md,
        "Made by `stylegram-train eval --model {} --pairs {} --size {} --gatys-pairs {} --gatys-preset {}` \
         on this machine's CPU (ONNX Runtime CPU provider for the fast model, libtorch CPU for Gatys). \
         {} content photos × {} styles = {} pairs at {} px on the long side; Gatys on {} of them.\n",
        args.model.display(),
        args.pairs.display(),
        args.size,
        args.gatys_pairs,
        args.gatys_preset,
        content_paths.len(),
        style_paths.len(),
        results.len(),
        args.size,
        gatys_results.len()
    );
    md.push_str(
        "Scores, all under our VGG16 (Caffe input scale): **content** = MSE of relu4_2 features against \
         the photo's (Gatys's content term); **style (Gram)** = mean over relu1_1..relu5_1 of the MSE \
         between Gram matrices (Gatys's style term); **style (stats)** = Σ over relu1_1..relu4_1 of \
         MSE(mean) + MSE(std) (AdaIN's style term); **SSIM** of the luminance to the photo; **time** = \
         seconds per image with the style's statistics cached (fast) or the whole optimisation (Gatys). \
         Lower is better except SSIM.\n\n",
    );
    let row = |label: &str, set: &[&PairResult]| {
        format!(
            "| {label} | {} | {:.4e} | {:.4e} | {:.4e} | {:.3} | {:.2} |\n",
            set.len(),
            mean(set, |r| r.scores.content),
            mean(set, |r| r.scores.style_gram),
            mean(set, |r| r.scores.style_stats),
            mean(set, |r| r.scores.ssim),
            mean(set, |r| r.seconds)
        )
    };
    md.push_str("| method | pairs | content | style (Gram) | style (stats) | SSIM | time (s) |\n|---|---|---|---|---|---|---|\n");
    md.push_str(&row("fast model, all pairs", &all));
    if !gatys.is_empty() {
        md.push_str(&row("fast model, Gatys's pairs", &fast_subset));
        md.push_str(&row(&format!("Gatys preset {}", args.gatys_preset), &gatys));
        let ratio = |f: fn(&PairResult) -> f64| mean(&fast_subset, f) / mean(&gatys, f);
        let _ = writeln!(
            md,
            "\nOn the same pairs, fast ÷ Gatys: content {:.2}×, style (Gram) {:.2}×, style (stats) {:.2}×, \
             time {:.3}×. Targets: style ≤ 1.5× and content ≤ 1×.\n",
            ratio(|r| r.scores.content),
            ratio(|r| r.scores.style_gram),
            ratio(|r| r.scores.style_stats),
            ratio(|r| r.seconds),
        );
        md.push_str("| method | photo | style | content | style (Gram) | style (stats) | SSIM | time (s) |\n|---|---|---|---|---|---|---|---|\n");
        for (f, g) in fast_subset.iter().zip(&gatys) {
            for (label, r) in [("fast", f), ("Gatys", g)] {
                let fields = pair_fields(r, content_paths, style_paths, " | ");
                let _ = writeln!(md, "| {label} | {fields} |");
            }
        }
        md.push_str("\n![photo, style, fast model, Gatys](eval-gatys.jpg)\n\n");
    }
    let _ = writeln!(
        md,
        "Style statistics took {stats_seconds:.2} s per style (computed once per style and cached in serving).\n\n\
         Every pair (rows: photos, columns: styles; per-pair numbers in [eval-pairs.csv](eval-pairs.csv)):\n\n\
         ![all pairs](eval-sheet.jpg)"
    );
    md
}
