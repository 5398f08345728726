//! `stylegram-train gatys-study --warm-starts`: the warm-start study (see
//! `stylegram_training::warm_study`), with its report, plots and contact sheet.
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use image::RgbImage;
use indicatif::{ProgressBar, ProgressStyle};
use stylegram_imaging::{self as images, ImageLimits};
use stylegram_inference::adain::AdainModel;
use stylegram_inference::runtime::{Device, SessionOptions};
use stylegram_inference::stylizer::{Options, Stylizer};
use stylegram_quality::gatys;
use stylegram_quality::vgg::{Precision, Vgg};
use stylegram_training::plots;
use stylegram_training::warm_study::{self as study, Curve, Ladder, Pair, Row, Snapshots, Start};

use crate::UsageError;

/// What the study runs on.
pub struct WarmArgs<'a> {
    /// The content/style pairs (photo path, style path).
    pub pairs: Vec<(PathBuf, PathBuf)>,
    /// Long sides to study.
    pub sizes: Vec<u32>,
    /// The fast-mode bundle whose pictures are the warm starts.
    pub model: &'a Path,
    /// VGG weights.
    pub vgg: &'a Path,
    /// Where the report goes.
    pub out_dir: &'a Path,
    /// Seconds of refinement of the fast picture that the "fast+" column shows.
    pub fast_plus_seconds: f64,
}

fn stem(p: &Path) -> String {
    p.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Runs the study and writes OUT_DIR/gatys-warm.md, gatys-warm-<size>.png, gatys-warm-sheet.jpg
/// and gatys-fast-plus-sheet.jpg.
pub fn run(args: WarmArgs) -> anyhow::Result<ExitCode> {
    let model = AdainModel::load(
        args.model,
        SessionOptions {
            device: Device::Cpu,
            intra_threads: 0,
        },
    )
    .map_err(|e| UsageError(format!("--model {}: {e}", args.model.display())))?;
    let fast = Stylizer::new(std::sync::Arc::new(model), 8);
    let device = gatys::default_device();
    let vgg = Vgg::load(args.vgg, device)
        .with_context(|| format!("loading VGG weights {}", args.vgg.display()))?
        .with_precision(Precision::auto(device));
    let limits = ImageLimits::default();
    let bar = ProgressBar::new((args.sizes.len() * args.pairs.len() * Start::ALL.len()) as u64);
    bar.set_style(
        ProgressStyle::with_template("[{elapsed_precise}] {bar:30} {pos}/{len} runs  {msg}")
            .expect("valid template"),
    );
    let mut report = String::new();
    let mut sheet_rows: Vec<Vec<RgbImage>> = Vec::new();
    let mut all_rows: Vec<(u32, Row)> = Vec::new();
    let mut ladders: Vec<(u32, Ladder)> = Vec::new();
    let mut ladder_rows: Vec<Vec<RgbImage>> = Vec::new();
    for &size in &args.sizes {
        let mut series = Vec::new();
        for (content_path, style_path) in &args.pairs {
            let load = |p: &PathBuf| -> anyhow::Result<RgbImage> {
                images::load(p, &limits).with_context(|| format!("reading {}", p.display()))
            };
            let content = images::fit_max_side(load(content_path)?, size);
            let style = load(style_path)?;
            let options = Options {
                alpha: 1.0,
                preserve_color: false,
                max_side: size,
            };
            let fast_picture = fast
                .stylize(&content, &[(&style, 1.0)], &options)
                .map_err(|e| anyhow::anyhow!("fast model: {e}"))?;
            let pair = Pair {
                name: format!("{}×{}", stem(content_path), stem(style_path)),
                content,
                style,
                fast: fast_picture,
            };
            bar.set_message(format!("{} at {size} px", pair.name));
            let reference =
                study::run(&vgg, &pair, Start::Photo, size, None, Snapshots::default())?;
            bar.inc(1);
            let budget = std::time::Duration::from_secs_f64(reference.seconds);
            let quarter = reference.seconds / 4.0;
            let mut curves = vec![reference];
            for start in &Start::ALL[1..] {
                let snapshots = Snapshots {
                    quarter: Some(quarter),
                    short: Some(args.fast_plus_seconds),
                    iterations: Some(gatys::quality_mode().iterations),
                };
                curves.push(study::run(
                    &vgg,
                    &pair,
                    *start,
                    size,
                    Some(budget),
                    snapshots,
                )?);
                bar.inc(1);
            }
            if let Some(ladder) = study::ladder(&curves) {
                ladder_rows.push(ladder_row(&pair, &curves));
                ladders.push((size, ladder));
            }
            let rows = study::compare(&curves);
            for row in &rows {
                bar.println(format!(
                    "{size} px {:<20} {:<20} to target {:>7}  at ¼ time {:>6}  at equal time {:>6}",
                    row.pair,
                    row.start.name(),
                    seconds(row.time_to_target),
                    ratio(row.at_quarter),
                    ratio(row.at_equal_time)
                ));
            }
            let target = curves[0].points.last().map_or(1.0, |p| p.1);
            for c in &curves {
                series.push((
                    format!("{} ({})", c.start.name(), c.pair),
                    c.points
                        .iter()
                        .map(|(t, y)| (t / curves[0].seconds, y / target))
                        .collect(),
                ));
            }
            if size == *args.sizes.last().unwrap_or(&size) {
                sheet_rows.push(sheet_row(&pair, &curves));
            }
            all_rows.extend(rows.into_iter().map(|r| (size, r)));
        }
        let plot = args.out_dir.join(format!("gatys-warm-{size}.png"));
        plots::log_lines(
            &plot,
            &format!(
                "Gatys objective against time, {size} px (1 = preset 3's final objective and time)"
            ),
            "time / preset 3's time",
            "objective / preset 3's final objective",
            &series,
        )?;
    }
    bar.finish_and_clear();
    let sheet = images::contact_sheet(&sheet_rows, 256);
    let sheet_path = args.out_dir.join("gatys-warm-sheet.jpg");
    sheet
        .save(&sheet_path)
        .with_context(|| format!("writing {}", sheet_path.display()))?;
    let ladder_sheet = images::contact_sheet(&ladder_rows, 320);
    let ladder_path = args.out_dir.join("gatys-fast-plus-sheet.jpg");
    ladder_sheet
        .save(&ladder_path)
        .with_context(|| format!("writing {}", ladder_path.display()))?;
    write_report(&mut report, &args, vgg.precision(), &all_rows);
    write_ladders(&mut report, args.fast_plus_seconds, &ladders);
    let md = args.out_dir.join("gatys-warm.md");
    std::fs::write(&md, report).with_context(|| format!("writing {}", md.display()))?;
    println!("wrote {}", md.display());
    Ok(ExitCode::SUCCESS)
}

/// Photo, fast picture, each start's picture at a quarter of preset 3's time, preset 3's result.
fn sheet_row(pair: &Pair, curves: &[Curve]) -> Vec<RgbImage> {
    let fit = |i: &RgbImage| images::fit_max_side(i.clone(), 256);
    let blank = || RgbImage::from_pixel(8, 8, image::Rgb([255, 255, 255]));
    let mut row = vec![fit(&pair.content), fit(&pair.fast)];
    for c in &curves[1..] {
        row.push(c.at_quarter.as_ref().map_or_else(blank, fit));
    }
    row.push(fit(&curves[0].image));
    row
}

/// Photo, fast picture, fast+, the quality mode's picture, preset 3's result (one pair, one size).
fn ladder_row(pair: &Pair, curves: &[Curve]) -> Vec<RgbImage> {
    let fit = |i: &RgbImage| images::fit_max_side(i.clone(), 320);
    let blank = || RgbImage::from_pixel(8, 8, image::Rgb([255, 255, 255]));
    let mut row = vec![fit(&pair.content)];
    if let Some(fast) = curves.iter().find(|c| c.start == Start::Fast) {
        for s in [
            fast.at_start.as_ref(),
            fast.fast_plus(),
            fast.at_iterations.as_ref(),
        ] {
            row.push(s.map_or_else(blank, |s| fit(&s.image)));
        }
    }
    row.push(fit(&curves[0].image));
    row
}

fn rung(v: Option<(f64, f64, usize)>) -> String {
    v.map_or_else(
        || "–".into(),
        |(objective, seconds, iterations)| {
            format!("{objective:.2} ({iterations} it., {seconds:.1} s)")
        },
    )
}

fn write_ladders(out: &mut String, fast_plus_seconds: f64, ladders: &[(u32, Ladder)]) {
    let _ = writeln!(
        out,
        "\n## Fast, fast+ and quality mode\n\n\
         Snapshots of the fast-init run: the fast picture itself (0 iterations), the last iterate \
         within {fast_plus_seconds} s (\"fast+\"), and the iterate after {} iterations (the bot's \
         quality mode). Objective over preset 3's final objective (1 = preset 3); seconds count from \
         the start of the optimisation (the fast picture itself takes under a second more). \
         Pictures: gatys-fast-plus-sheet.jpg (photo, fast, fast+, quality mode, preset 3).\n\n\
         | size | pair | preset 3's time | fast picture | fast+ | quality mode |\n|---|---|---|---|---|---|",
        gatys::quality_mode().iterations
    );
    for (size, l) in ladders {
        let _ = writeln!(
            out,
            "| {size} | {} | {:.1} s | {} | {} | {} |",
            l.pair,
            l.reference_seconds,
            rung(l.fast),
            rung(l.fast_plus),
            rung(l.quality)
        );
    }
}

fn seconds(v: Option<f64>) -> String {
    v.map_or_else(|| "–".into(), |s| format!("{s:.1} s"))
}

fn ratio(v: Option<f64>) -> String {
    v.map_or_else(|| "–".into(), |r| format!("{r:.3}"))
}

/// The environment variables that hold libtorch's kernels below what the CPU has, as
/// `NAME=value` pairs, so that a report says when it was measured under such a limit.
fn instruction_set_limits() -> String {
    [
        "ATEN_CPU_CAPABILITY",
        "ONEDNN_MAX_CPU_ISA",
        "DNNL_MAX_CPU_ISA",
    ]
    .into_iter()
    .filter_map(|name| std::env::var(name).ok().map(|v| format!("{name}={v}")))
    .collect::<Vec<_>>()
    .join(" ")
}

fn write_report(out: &mut String, args: &WarmArgs, precision: Precision, rows: &[(u32, Row)]) {
    let cpu = stylegram_inference::cpu::CpuFeatures::detect();
    let limits = match instruction_set_limits() {
        none if none.is_empty() => String::new(),
        some => format!(", libtorch held back by {some}"),
    };
    let _ = writeln!(
        out,
        "# Warm starts for quality mode\n\n\
         Generated by `stylegram-train gatys-study --warm-starts --sizes {} --model {}` on {cpu} \
         ({} threads, {} convolutions{limits}). Each pair runs preset 3 as it ships (from the photo, one scale, until the \
         objective stalls); its final objective is the target and its time the budget. The other \
         starts run for that budget with the same objective (the paper's, at full size): from the \
         fast model's picture, from a {}-iteration half-size optimum upsampled (pyramid), and both. \
         \"To target\" is the time until the full-size objective first reached preset 3's final \
         value; \"at ¼\" and \"at equal time\" are the objective at a quarter of preset 3's time and \
         at its full time, over preset 3's final objective (below 1 is better than preset 3 ever \
         got). Plots: gatys-warm-<size>.png; pictures: gatys-warm-sheet.jpg (photo, fast picture, \
         each start at a quarter of preset 3's time, preset 3's result).\n",
        args.sizes
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(","),
        args.model.display(),
        tch::get_num_threads(),
        precision.as_str(),
        study::COARSE_ITERATIONS,
    );
    let _ = writeln!(
        out,
        "| size | pair | start | to target | share of preset 3's time | objective at ¼ time | objective at equal time |\n|---|---|---|---|---|---|---|"
    );
    for (size, r) in rows {
        let _ = writeln!(
            out,
            "| {size} | {} | {} | {} | {} | {} | {} |",
            r.pair,
            r.start.name(),
            seconds(r.time_to_target),
            ratio(r.share_of_reference),
            ratio(r.at_quarter),
            ratio(r.at_equal_time)
        );
    }
}
