//! The Gatys engine on the real VGG16 and real test images, at small sizes so the suite stays quick.
mod common;

use common::vgg;
use std::ops::ControlFlow;
use std::time::Duration;

use image::RgbImage;
use stylegram_imaging::{self as images, ImageLimits};
use stylegram_quality::QualityError;
use stylegram_quality::gatys::{self, GatysConfig, Init, Optimizer, StopReason, Style};

fn photo(name: &str) -> RgbImage {
    images::load(common::picture(name), &ImageLimits::default()).unwrap()
}

fn small(iterations: usize) -> GatysConfig {
    GatysConfig {
        size: 64,
        iterations,
        scales: 1,
        stall_tolerance: None,
        ..GatysConfig::default()
    }
}

fn van_gogh() -> Vec<Style> {
    vec![Style {
        image: photo("starry-night-rhone.jpg"),
        weight: 1.0,
    }]
}

fn run(config: &GatysConfig, styles: &[Style]) -> gatys::GatysOutput {
    gatys::optimize(&vgg(), &photo("great-wave.jpg"), styles, config, |_| {
        ControlFlow::Continue(())
    })
    .unwrap()
}

/// Koala × Van Gogh with `config`, showing `seen` every iteration.
fn run_with(config: &GatysConfig, mut seen: impl FnMut(&gatys::Iteration)) -> gatys::GatysOutput {
    let styles = van_gogh();
    gatys::optimize(&vgg(), &photo("great-wave.jpg"), &styles, config, |p| {
        seen(p);
        ControlFlow::Continue(())
    })
    .unwrap()
}

#[test]
fn lbfgs_lowers_the_loss_and_keeps_the_aspect_ratio() {
    let mut first = None;
    let output = gatys::optimize(
        &vgg(),
        &photo("great-wave.jpg"),
        &van_gogh(),
        &small(15),
        |p| {
            first.get_or_insert(p.losses.total);
            ControlFlow::Continue(())
        },
    )
    .unwrap();
    let first = first.unwrap();
    assert_eq!(output.stop, StopReason::Iterations);
    assert_eq!(output.iterations, 15);
    assert!(
        output.losses.total < 0.5 * first,
        "{} → {}",
        first,
        output.losses.total
    );
    let (w, h) = output.image.dimensions();
    let (cw, ch) = photo("great-wave.jpg").dimensions();
    assert_eq!(w.max(h), 64);
    assert!(((w as f64 / h as f64) - (cw as f64 / ch as f64)).abs() < 0.05);
}

#[test]
fn noise_init_is_deterministic_with_a_seed_on_cpu() {
    let config = GatysConfig {
        init: Init::Noise,
        seed: 7,
        optimizer: Optimizer::Adam { lr: 0.05 },
        ..small(4)
    };
    let a = run(&config, &van_gogh());
    let b = run(&config, &van_gogh());
    assert_eq!(a.image, b.image);
    let c = run(&GatysConfig { seed: 8, ..config }, &van_gogh());
    assert_ne!(a.image, c.image);
}

#[test]
fn cancel_and_time_budget_stop_early_with_an_image() {
    let output = gatys::optimize(
        &vgg(),
        &photo("great-wave.jpg"),
        &van_gogh(),
        &small(50),
        |p| {
            if p.iteration == 3 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        },
    )
    .unwrap();
    assert_eq!((output.stop, output.iterations), (StopReason::Cancelled, 3));

    let budget = GatysConfig {
        time_budget: Some(Duration::ZERO),
        ..small(50)
    };
    let output = run(&budget, &van_gogh());
    assert_eq!(
        (output.stop, output.iterations),
        (StopReason::TimeBudget, 1)
    );
    assert_eq!(
        output.image.dimensions().0.max(output.image.dimensions().1),
        64
    );
}

#[test]
fn progress_reports_previews_and_eta() {
    let config = GatysConfig {
        preview_every: 2,
        ..small(4)
    };
    let mut events = Vec::new();
    run_with(&config, |p| {
        events.push((p.iteration, p.preview.is_some(), p.eta))
    });
    let iterations: Vec<usize> = events.iter().map(|e| e.0).collect();
    assert_eq!(iterations, [1, 2, 3, 4]);
    let previews: Vec<bool> = events.iter().map(|e| e.1).collect();
    assert_eq!(previews, [false, true, false, true]);
    assert_eq!(
        events[3].2,
        Duration::ZERO,
        "nothing left after the last iteration"
    );
}

#[test]
fn progress_under_a_time_budget_counts_the_budget() {
    // A cap the run never reaches: the budget ends it, so percent and ETA must follow the budget.
    let budget = Duration::from_millis(800);
    let config = GatysConfig {
        time_budget: Some(budget),
        ..small(100_000)
    };
    let mut events = Vec::new();
    let output = run_with(&config, |p| events.push((p.fraction, p.eta, p.elapsed)));
    assert_eq!(output.stop, StopReason::TimeBudget);
    assert!(
        events.len() >= 2,
        "{} iterations in {budget:?}",
        events.len()
    );
    assert!(
        events.windows(2).all(|w| w[0].0 <= w[1].0),
        "the share done never goes back: {events:?}"
    );
    for &(fraction, eta, elapsed) in &events {
        let expected = (elapsed.as_secs_f32() / budget.as_secs_f32()).min(1.0);
        assert!(
            (fraction - expected).abs() < 1e-3,
            "share {fraction} after {elapsed:?} of {budget:?}"
        );
        assert!(
            eta <= budget.saturating_sub(elapsed) + Duration::from_millis(1),
            "ETA {eta:?} after {elapsed:?} of {budget:?}"
        );
    }
    let (fraction, eta, _) = *events.last().unwrap();
    assert_eq!((fraction, eta), (1.0, Duration::ZERO));
}

#[test]
fn preserve_color_keeps_the_content_chroma() {
    let config = GatysConfig {
        preserve_color: true,
        ..small(8)
    };
    let out = run(&config, &van_gogh());
    let content = images::resize_exact(
        &photo("great-wave.jpg"),
        out.image.width(),
        out.image.height(),
    );
    // I and Q of YIQ per pixel; compare means (clipping and 8-bit rounding allow small differences).
    let iq = |img: &RgbImage| {
        let n = f64::from(img.width() * img.height());
        img.pixels().fold((0.0, 0.0), |(i, q), p| {
            let [r, g, b] = p.0.map(|c| f64::from(c) / 255.0);
            (
                i + (0.596 * r - 0.274 * g - 0.322 * b) / n,
                q + (0.211 * r - 0.523 * g + 0.312 * b) / n,
            )
        })
    };
    let ((ci, cq), (oi, oq)) = (iq(&content), iq(&out.image));
    assert!(
        (ci - oi).abs() < 0.01 && (cq - oq).abs() < 0.01,
        "content IQ ({ci:.3}, {cq:.3}) vs output ({oi:.3}, {oq:.3})"
    );
    let plain = run(&small(8), &van_gogh());
    let (pi, pq) = iq(&plain.image);
    assert!(
        (ci - pi).abs() + (cq - pq).abs() > 0.02,
        "without the flag the colours do change"
    );
}

#[test]
fn style_weights_are_normalised_shares() {
    let picasso = Style {
        image: photo("composition-vii.jpg"),
        weight: 0.0,
    };
    let alone = run(&small(3), &van_gogh());
    let with_zero_share = run(&small(3), &[van_gogh().remove(0), picasso.clone()]);
    assert_eq!(
        alone.image, with_zero_share.image,
        "a zero-weight style changes nothing"
    );
    let doubled = run(
        &small(3),
        &[Style {
            weight: 2.0,
            ..van_gogh().remove(0)
        }],
    );
    assert_eq!(
        alone.image, doubled.image,
        "a single style's weight is normalised to 1"
    );
    let mixed = run(
        &small(3),
        &[
            van_gogh().remove(0),
            Style {
                weight: 1.0,
                ..picasso
            },
        ],
    );
    assert_ne!(alone.image, mixed.image);
}

#[test]
fn non_finite_loss_returns_the_best_image_with_a_reason() {
    let config = GatysConfig {
        style_weight: f64::INFINITY,
        ..small(5)
    };
    let output = run(&config, &van_gogh());
    assert_eq!(output.stop, StopReason::NonFinite);
    assert_eq!(
        output.image.dimensions().0.max(output.image.dimensions().1),
        64
    );
}

#[test]
fn bad_configurations_are_refused_clearly() {
    let content = photo("great-wave.jpg");
    let err = |config: &GatysConfig, styles: &[Style]| {
        gatys::optimize(&vgg(), &content, styles, config, |_| {
            ControlFlow::Continue(())
        })
        .unwrap_err()
    };
    assert!(
        matches!(err(&small(1), &[]), QualityError::InvalidConfig(m) if m.contains("at least one style"))
    );
    let unknown = GatysConfig {
        style_layers: vec![("relu9_1".into(), 1.0)],
        ..small(1)
    };
    assert!(
        err(&unknown, &van_gogh())
            .to_string()
            .starts_with("unknown VGG layer 'relu9_1'")
    );
    let tiny = GatysConfig {
        size: 8,
        ..small(1)
    };
    assert!(err(&tiny, &van_gogh()).to_string().contains("too small"));
}

#[test]
fn two_scales_split_the_iterations_and_end_at_full_size() {
    let config = GatysConfig {
        scales: 2,
        ..small(6)
    };
    let mut sizes = Vec::new();
    let output = gatys::optimize(
        &vgg(),
        &photo("great-wave.jpg"),
        &van_gogh(),
        &GatysConfig {
            preview_every: 1,
            ..config
        },
        |p| {
            sizes.push(
                p.preview
                    .as_ref()
                    .unwrap()
                    .width()
                    .max(p.preview.as_ref().unwrap().height()),
            );
            ControlFlow::Continue(())
        },
    )
    .unwrap();
    assert_eq!(sizes, [32, 32, 32, 64, 64, 64]);
    assert_eq!(output.iterations, 6);
}

#[test]
fn bf16_convolutions_match_f32_features_and_gradients() {
    use stylegram_quality::vgg::Precision;
    use tch::{Kind, Tensor};
    let f32_vgg = vgg();
    let bf16_vgg = vgg().with_precision(Precision::Bf16);
    assert_eq!(bf16_vgg.precision(), Precision::Bf16);
    let wave = images::fit_max_side(photo("great-wave.jpg"), 96);
    let rgb = images::to_nchw(&wave);
    let rgb = Tensor::from_slice(rgb.as_slice().unwrap()).view([
        1,
        3,
        i64::from(wave.height()),
        i64::from(wave.width()),
    ]);
    let layers = ["relu1_1", "relu3_1", "relu4_2"];
    let grads: Vec<Tensor> = [&f32_vgg, &bf16_vgg]
        .iter()
        .map(|net| {
            let x = rgb.copy().set_requires_grad(true);
            let features = net.activations(&x, &layers).unwrap();
            let loss = features
                .iter()
                .map(|f| {
                    assert_eq!(f.kind(), Kind::Float, "features come back as f32");
                    f.square().mean(Kind::Float)
                })
                .fold(Tensor::from(0.0f32), |a, b| a + b);
            loss.backward();
            x.grad()
        })
        .collect();
    let exact = f32_vgg.activations(&rgb, &layers).unwrap();
    let low = bf16_vgg.activations(&rgb, &layers).unwrap();
    for ((a, b), name) in exact.iter().zip(&low).zip(layers) {
        let relative = f64::try_from((a - b).norm() / a.norm()).unwrap();
        assert!(relative < 0.03, "{name}: relative error {relative}");
    }
    let cosine = f64::try_from(
        (&grads[0] * &grads[1]).sum(Kind::Float) / (grads[0].norm() * grads[1].norm()),
    )
    .unwrap();
    assert!(cosine > 0.98, "gradient direction kept: cosine {cosine}");
}

#[test]
fn a_pyramid_spends_most_iterations_where_pixels_are_cheap_and_reports_true_progress() {
    let config = GatysConfig {
        scales: 2,
        final_iterations: Some(2),
        ..small(10)
    };
    assert_eq!(gatys::schedule(&config), [8, 2]);
    assert_eq!(
        gatys::schedule(&GatysConfig {
            final_iterations: None,
            ..config.clone()
        }),
        [5, 5]
    );
    let mut events = Vec::new();
    run_with(&config, |p| events.push((p.scale, p.fraction)));
    let scales: Vec<usize> = events.iter().map(|e| e.0).collect();
    assert_eq!(scales, [0, 0, 0, 0, 0, 0, 0, 0, 1, 1]);
    // A coarse iteration is a quarter of a fine one: 8 × ¼ + 2 × 1 = 4 units in all.
    assert!((events[7].1 - 0.5).abs() < 1e-6, "{events:?}");
    assert!((events[9].1 - 1.0).abs() < 1e-6, "{events:?}");
    assert!(events.windows(2).all(|w| w[0].1 < w[1].1), "monotone");
}

#[test]
fn a_warm_start_begins_where_it_is_told_and_keeps_the_objective() {
    let vgg = vgg();
    let content = photo("great-wave.jpg");
    let styles = van_gogh();
    let config = small(6);
    let first_loss = |start: Option<&RgbImage>| {
        let mut first = None;
        let out = gatys::optimize_from(&vgg, &content, start, &styles, &config, |p| {
            first.get_or_insert(p.losses);
            ControlFlow::Continue(())
        })
        .unwrap();
        (first.unwrap(), out)
    };
    let (from_photo, photo_run) = first_loss(None);
    // A start that already has the style's look: a result of the same objective.
    let styled = photo_run.image.clone();
    let (from_styled, _) = first_loss(Some(&styled));
    assert!(
        from_styled.style < from_photo.style,
        "the styled start is closer in style: {from_styled:?} vs {from_photo:?}"
    );
    // The objective is the paper's either way: the photo itself as a start is the content init.
    let (from_itself, _) = first_loss(Some(&content));
    let same = (from_itself.total - from_photo.total).abs() / from_photo.total;
    assert!(same < 0.02, "{from_itself:?} vs {from_photo:?}");
}

#[test]
fn zero_iterations_return_the_start_with_its_losses() {
    let vgg = vgg();
    let content = photo("great-wave.jpg");
    let styles = van_gogh();
    let styled = run(&small(3), &styles).image;
    let out = gatys::optimize_from(&vgg, &content, Some(&styled), &styles, &small(0), |_| {
        ControlFlow::Continue(())
    })
    .unwrap();
    assert_eq!(out.iterations, 0);
    // The start, not the photo, and the objective measured on it (not zeros).
    let (a, b) = (out.image.as_raw(), styled.as_raw());
    assert_eq!(a.len(), b.len());
    let max_diff = a.iter().zip(b).map(|(x, y)| x.abs_diff(*y)).max().unwrap();
    assert!(
        max_diff <= 1,
        "the result moved from the start by {max_diff}"
    );
    assert!(
        out.losses.style > 0.0 && out.losses.content > 0.0,
        "{:?}",
        out.losses
    );
    assert!(
        (out.losses.total - out.losses.content - out.losses.style - out.losses.tv).abs()
            < 1e-6 * out.losses.total
    );
}
