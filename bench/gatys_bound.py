#!/usr/bin/env python3
"""How close one Gatys evaluation comes to this CPU's arithmetic limit.

    make bench-gatys-bound      (or: python bench/gatys_bound.py --help)

One evaluation of the paper's objective (value and gradient with respect to the pixels) is VGG16's
convolutions up to relu5_1, forward and backward to the input. This counts their multiply-adds at the
picture's size, measures this CPU's best dense matrix-product rate (torch.matmul on 2048 x 2048, the
densest work a CPU does), and measures one evaluation three ways: the FLOP count at that rate (the
practical floor for direct convolutions), PyTorch doing the same evaluation in the same precision and
layout as ours, and our CLI (`stylegram-train gatys --preset 3`, the extra seconds and evaluations
from --iterations 5 to --iterations 25, so start-up and target costs drop out).

Two legs, each in a fresh interpreter: bf16 with this CPU's instruction sets (what `--precision auto`
picks on CPUs with AVX-512 BF16; left out on other CPUs), and f32 with libtorch and MKL held to AVX2
(a CPU without AVX-512). Writes docs/gatys-bound.md. About 2½ minutes on a 2-core machine (2-core AMD EPYC,
2026-12-06).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import torch
import torch.nn.functional as F

from gatys_reference import (AVX2_ONLY, CONTENT_LAYERS, ROOT, STYLE_LAYERS, SUMMARY, activations,
                             cpu_description, cpu_info, gram, load_png, load_vgg, resized, total_variation)

LEGS = {
    "bf16": ("as found", {}),
    "f32": ("AVX2 only", {**AVX2_ONLY, "MKL_ENABLE_INSTRUCTIONS": "AVX2"}),
}
"""Precision of a leg, with the label and environment it runs under (MKL too: torch.matmul in f32
runs in MKL, which ignores oneDNN's setting)."""


def legs_for_this_cpu():
    """The legs worth running here: bf16 only where the CPU has AVX-512 BF16 (elsewhere `--precision
    auto` picks f32, and bf16 convolutions are emulated, many times slower), f32 with AVX2 always."""
    return (["bf16"] if "avx512_bf16" in cpu_info()[1] else []) + ["f32"]


def conv_shapes(height, width):
    """(input channels, output channels, height, width) of each VGG16 convolution up to conv5_1, with
    2x2 max pools (floor) between the blocks, as the encoder runs them."""
    blocks = [(3, 64, 64), (64, 128, 128), (128, 256, 256, 256), (256, 512, 512, 512), (512, 512)]
    shapes = []
    for b, channels in enumerate(blocks):
        if b > 0:
            height, width = height // 2, width // 2
        shapes += [(cin, cout, height, width) for cin, cout in zip(channels, channels[1:])]
    return shapes


def evaluation_gflop(height, width):
    """GFLOP of one evaluation: each 3x3 convolution forward (2·9·Cin·Cout per output pixel) and its
    backward to its input, which costs the same; the weights' gradients are never needed."""
    return sum(2 * 2 * 9 * cin * cout * h * w for cin, cout, h, w in conv_shapes(height, width)) / 1e9


def counted_gflop(vgg, height, width):
    """The same count by torch.utils.flop_counter on a real forward and backward of the convolutions
    up to conv5_1: an independent check of `evaluation_gflop`."""
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.rand(1, 3, height, width, requires_grad=True)
    with FlopCounterMode(display=False) as counter:
        activations(vgg, x, {"relu5_1"})["relu5_1"].sum().backward()
    return counter.get_total_flops() / 1e9


def best_seconds(run, repeats):
    """The fastest of `repeats` calls of `run` after one warm-up call."""
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def matmul_rate(dtype):
    """GFLOP/s of torch.matmul on two 2048 x 2048 matrices of `dtype`, the best of five."""
    a, b = torch.randn(2048, 2048).to(dtype), torch.randn(2048, 2048).to(dtype)
    return 2 * 2048 ** 3 / best_seconds(lambda: a @ b, 5) / 1e9


def torch_evaluation(vgg, content, style, dtype, repeats):
    """Seconds of one value-and-gradient of the objective in PyTorch, the convolutions in `dtype` and
    channels-last as ours run them, Gram matrices and losses in f32 (β = 10, γ = 10)."""
    layers = {**CONTENT_LAYERS, **STYLE_LAYERS}
    net = [(b, c, w.to(dtype).contiguous(memory_format=torch.channels_last), bias.to(dtype)) for b, c, w, bias in vgg]

    def acts(rgb):
        return activations(net, rgb, layers, lambda x: x.to(dtype).contiguous(memory_format=torch.channels_last))

    with torch.no_grad():
        content_t, style_t = acts(content), {k: gram(v) for k, v in acts(style).items()}

    def evaluate():
        x = content.clone().requires_grad_(True)
        a = acts(x)
        total = sum(w * F.mse_loss(a[k], content_t[k]) for k, w in CONTENT_LAYERS.items())
        total = total + 10 * sum(w * F.mse_loss(gram(a[k]), style_t[k]) for k, w in STYLE_LAYERS.items())
        (total + 10 * total_variation(x)).backward()

    return best_seconds(evaluate, repeats)


def ours_evaluation(args, paths, precision):
    """Our CLI's seconds per evaluation: the extra time over the extra evaluations from 5 to 25
    iterations of preset 3, so loading, targets and the first steps' line searches drop out."""
    runs = []
    for iterations in (5, 25):
        cmd = [args.binary, "gatys", "--content", paths["content"], "--style", paths["style"], "--device", "cpu",
               "--out", os.path.join(os.path.dirname(paths["content"]), "bound.png"), "--preset", "3",
               "--vgg", args.vgg, "--precision", precision, "--stall-tolerance", "0",
               "--iterations", str(iterations)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
        m = SUMMARY.search(done.stdout)
        if not m:
            sys.exit(f"could not parse the CLI summary: {done.stdout}{done.stderr}")
        runs.append((float(m.group(1)), int(m.group(4))))
    (t5, e5), (t25, e25) = runs
    return (t25 - t5) / (e25 - e5)


def leg(args, precision):
    """The measurements of one leg in this process's environment, printed as JSON for the parent."""
    tmp = tempfile.mkdtemp()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    vgg = load_vgg(args.vgg)
    out = {"capability": torch.backends.cpu.get_cpu_capability(), "rate": matmul_rate(dtype), "sizes": {}}
    for size in args.sizes:
        paths = resized(args, tmp, size)
        content, style = load_png(paths["content"]), load_png(paths["style"])
        height, width = content.shape[2:]
        gflop = evaluation_gflop(height, width)
        if abs(counted_gflop(vgg, height, width) - gflop) > 1e-3 * gflop:
            sys.exit(f"the FLOP count {gflop:.1f} disagrees with torch.utils.flop_counter's")
        out["sizes"][size] = {
            "pixels": f"{width}×{height}",
            "gflop": gflop,
            "torch": torch_evaluation(vgg, content, style, dtype, args.repeats),
            "ours": ours_evaluation(args, paths, precision),
        }
    print(json.dumps(out))


def run_leg(args, precision):
    """Runs `leg` in a fresh interpreter with the leg's environment set before torch loads."""
    cmd = [sys.executable, os.path.abspath(__file__), "--leg", precision, "--binary", args.binary, "--vgg", args.vgg,
           "--content", args.content, "--style", args.style, "--repeats", str(args.repeats),
           "--sizes", ",".join(map(str, args.sizes))]
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **LEGS[precision][1]})
    if done.returncode != 0:
        sys.exit(f"the {precision} leg failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    home = os.environ.get("STYLEGRAM_HOME", os.path.expanduser("~/.cache/stylegram"))
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--content", default=os.path.join(ROOT, "../shared/data/test/content/koala.jpg"))
    p.add_argument("--style", default=os.path.join(ROOT, "../shared/data/test/style/vangog.jpg"))
    p.add_argument("--sizes", type=lambda v: [int(x) for x in v.split(",")], default=[256, 512],
                   help="long sides to measure, comma-separated")
    p.add_argument("--repeats", type=int, default=5, help="PyTorch evaluations timed (the fastest counts)")
    p.add_argument("--vgg", default=os.environ.get("STYLEGRAM_VGG", os.path.join(home, "vgg16.safetensors")))
    p.add_argument("--binary", default=os.path.join(ROOT, "target/release/stylegram-train"))
    p.add_argument("--out", default=os.path.join(ROOT, "docs/gatys-bound.md"))
    p.add_argument("--leg", choices=sorted(LEGS), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.leg:
        return leg(args, args.leg)

    rows = ""
    for precision in legs_for_this_cpu():
        label = LEGS[precision][0]
        print(f"measuring the {precision} leg ({label}) at {args.sizes} px…", file=sys.stderr, flush=True)
        m = run_leg(args, precision)
        for size, s in m["sizes"].items():
            floor = s["gflop"] / m["rate"]
            rows += (f"| {label} ({m['capability']}) | {precision} | {s['pixels']} | {s['gflop']:.1f} | "
                     f"{m['rate']:.0f} | {floor:.3f} | {s['torch']:.3f} | {s['ours']:.3f} | "
                     f"{s['ours'] / floor:.2f}× | {s['gflop'] / s['ours']:.0f} |\n")
    text = (
        "# One Gatys evaluation against this CPU's arithmetic limit\n\n"
        f"Generated by `make bench-gatys-bound` (`python bench/gatys_bound.py`) on {cpu_description()}, "
        f"{os.cpu_count()} cores, torch {torch.__version__}, {time.strftime('%Y-%m-%d')}; "
        f"{os.path.basename(args.content)} × {os.path.basename(args.style)}.\n\n"
        "An evaluation is the objective's value and its gradient with respect to the pixels: VGG16's "
        "convolutions up to relu5_1, forward and backward to the input. *Floor*: its FLOPs at the best "
        "rate this CPU reaches on a dense 2048 × 2048 matrix product in that precision, the "
        "practical limit for direct convolutions (Winograd-style algorithms do fewer multiplications; "
        "docs/gatys.md says why that does not change the verdict). *PyTorch*: the same evaluation in PyTorch, "
        "convolutions channels-last in the same precision, the fastest of "
        f"{args.repeats}. *Ours*: `stylegram-train gatys --preset 3`, the extra seconds over the extra "
        "evaluations from 5 to 25 iterations (one run each). \"AVX2 only\" holds libtorch, oneDNN and "
        "MKL to AVX2 and FMA: a CPU without AVX-512, on this machine's cores. The bf16 leg runs only "
        "on CPUs with AVX-512 BF16, the only ones where `--precision auto` picks it.\n\n"
        "| instruction sets | precision | picture | GFLOP per evaluation | matrix product (GFLOP/s) | "
        "floor (s) | PyTorch (s) | ours (s) | ours ÷ floor | ours (GFLOP/s) |\n"
        "|---|---|---|---|---|---|---|---|---|---|\n" + rows
    )
    print(text)
    with open(args.out, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
