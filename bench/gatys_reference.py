#!/usr/bin/env python3
"""Gatys speed benchmark: the Python prototype's recipe in PyTorch against our CLI, side by side.

    make bench-gatys            (or: python bench/gatys_reference.py --help)

PyTorch loads the same VGG16 weights from the same safetensors file (`stylegram-train import-vgg`) and
implements the same losses (content MSE at relu4_2, Gram MSE at relu1_1..relu5_1 with weights 0.2,
Gram normalised by C*H*W, mean-squared total variation, Caffe BGR preprocessing). Both sides get the
same pre-resized PNGs, the same thread count, and report the loss of the best image seen, timed
from target computation to the end of the last iteration (weights loading excluded on both sides).
The table goes to stdout and to docs/gatys-benchmark.md.
"""
import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

CAFFE_MEAN_BGR = [103.939, 116.779, 123.68]
CONTENT_LAYERS = {"relu4_2": 1.0}
STYLE_LAYERS = {"relu1_1": 0.2, "relu2_1": 0.2, "relu3_1": 0.2, "relu4_1": 0.2, "relu5_1": 0.2}


def cpu_description():
    """The CPU's model and the instruction sets that decide f32/bf16 speed, from /proc/cpuinfo."""
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read()
    except OSError:
        return platform.processor() or platform.machine()
    model = next((l.split(":", 1)[1].strip() for l in info.splitlines() if l.startswith("model name")), "unknown CPU")
    flags = next((l.split(":", 1)[1].split() for l in info.splitlines() if l.startswith("flags")), [])
    wanted = ["avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8"]
    found = " ".join(f.upper() for f in wanted if f in flags) or "no AVX2"
    return f"{model} ({found})"


def load_vgg(path):
    tensors = load_file(path)
    layers = sorted({tuple(int(p) for p in re.findall(r"\d+", k)) for k in tensors if k.endswith(".weight")})
    return [(b, c, tensors[f"block{b}_conv{c}.weight"], tensors[f"block{b}_conv{c}.bias"]) for b, c in layers]


def activations(vgg, rgb, wanted):
    mean = torch.tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1)
    x = rgb.flip(1) * 255.0 - mean
    deepest = max(i for i, (b, c, _, _) in enumerate(vgg) if f"relu{b}_{c}" in wanted)
    out = {}
    for i, (b, c, w, bias) in enumerate(vgg[: deepest + 1]):
        if c == 1 and b > 1:
            x = F.max_pool2d(x, 2, 2)
        x = F.relu(F.conv2d(x, w, bias, padding=1))
        if f"relu{b}_{c}" in wanted:
            out[f"relu{b}_{c}"] = x
    return out


def gram(f):
    n, c, h, w = f.shape
    f = f.reshape(n, c, h * w)
    return f @ f.transpose(1, 2) / (c * h * w)


def total_variation(x):
    return ((x[:, :, 1:, :] - x[:, :, :-1, :]) ** 2).mean() + ((x[:, :, :, 1:] - x[:, :, :, :-1]) ** 2).mean()


def load_png(path):
    from PIL import Image

    a = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(a).permute(2, 0, 1).unsqueeze(0).contiguous()


def score(vgg, image, content, style, style_weight, tv_weight):
    """The recipe's losses (total, content, style, tv) of an image, as the reference defines them."""
    layers = list(CONTENT_LAYERS) + list(STYLE_LAYERS)
    with torch.no_grad():
        content_t = activations(vgg, content, CONTENT_LAYERS)
        style_t = {k: gram(v) for k, v in activations(vgg, style, STYLE_LAYERS).items()}
        acts = activations(vgg, image, layers)
        c = sum(w * F.mse_loss(acts[k], content_t[k]) for k, w in CONTENT_LAYERS.items()).item()
        s = style_weight * sum(w * F.mse_loss(gram(acts[k]), style_t[k]) for k, w in STYLE_LAYERS.items()).item()
        t = tv_weight * total_variation(image).item()
    return (c + s + t, c, s, t)


def reference(vgg, content, style, iterations, lr, style_weight, tv_weight):
    """The prototype's loop: Adam on the pixels from the content image, clamped to [0, 1]."""
    start = time.perf_counter()
    layers = list(CONTENT_LAYERS) + list(STYLE_LAYERS)
    with torch.no_grad():
        content_t = activations(vgg, content, CONTENT_LAYERS)
        style_t = {k: gram(v) for k, v in activations(vgg, style, STYLE_LAYERS).items()}
    x = content.clone().requires_grad_(True)
    opt = torch.optim.Adam([x], lr=lr)
    best = None
    for _ in range(iterations):
        opt.zero_grad()
        acts = activations(vgg, x, layers)
        c = sum(w * F.mse_loss(acts[k], content_t[k]) for k, w in CONTENT_LAYERS.items())
        s = style_weight * sum(w * F.mse_loss(gram(acts[k]), style_t[k]) for k, w in STYLE_LAYERS.items())
        t = tv_weight * total_variation(x)
        total = c + s + t
        total.backward()
        values = (total.item(), c.item(), s.item(), t.item())
        if best is None or values[0] < best[0]:
            best = values
        opt.step()
        with torch.no_grad():
            x.clamp_(0.0, 1.0)
    return time.perf_counter() - start, best


SUMMARY = re.compile(
    r"in ([\d.]+) s on (\w+)(?: \(\w+\))?: (\d+) iterations \((\d+) evaluations\), loss ([\d.e+-]+) = content ([\d.e+-]+) "
    r"\+ style ([\d.e+-]+) \+ tv ([\d.e+-]+)"
)


def ours(binary, content, style, out, extra):
    cmd = [binary, "gatys", "--content", content, "--style", style, "--out", out, "--device", "cpu"] + extra
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    m = SUMMARY.search(done.stdout)
    if not m:
        sys.exit(f"could not parse the CLI summary: {done.stdout}{done.stderr}")
    g = m.groups()
    return float(g[0]), (float(g[4]), float(g[5]), float(g[6]), float(g[7])), int(g[2])


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(here)
    home = os.environ.get("STYLEGRAM_HOME", os.path.expanduser("~/.cache/stylegram"))
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--content", default=os.path.join(root, "../shared/data/test/content/koala.jpg"))
    p.add_argument("--style", default=os.path.join(root, "../shared/data/test/style/vangog.jpg"))
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--iterations", type=int, default=300)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--style-weight", type=float, default=10.0)
    p.add_argument("--tv-weight", type=float, default=10.0)
    p.add_argument("--vgg", default=os.environ.get("STYLEGRAM_VGG", os.path.join(home, "vgg16.safetensors")))
    p.add_argument("--binary", default=os.path.join(root, "target/release/stylegram-train"))
    p.add_argument("--out", default=os.path.join(root, "docs/gatys-benchmark.md"))
    args = p.parse_args()

    from PIL import Image

    tmp = tempfile.mkdtemp()
    paths = {}
    for name in ("content", "style"):
        img = Image.open(getattr(args, name)).convert("RGB")
        if max(img.size) != args.size:
            scale = args.size / max(img.size)
            img = img.resize((round(img.width * scale), round(img.height * scale)), Image.LANCZOS)
        paths[name] = os.path.join(tmp, f"{name}.png")
        img.save(paths[name])

    threads = torch.get_num_threads()
    vgg = load_vgg(args.vgg)
    content, style = load_png(paths["content"]), load_png(paths["style"])
    # Every knob pinned explicitly, so no preset default leaks into the "same recipe" run.
    layers = ["--content-layers", ",".join(f"{k}:{w}" for k, w in CONTENT_LAYERS.items()),
              "--style-layers", ",".join(f"{k}:{w}" for k, w in STYLE_LAYERS.items())]
    recipe = ["--optimizer", "adam", "--lr", str(args.lr), "--iterations", str(args.iterations), "--scales", "1",
              "--init", "content", "--size", str(args.size), "--content-weight", "1", "--style-weight",
              str(args.style_weight), "--tv-weight", str(args.tv_weight), "--stall-tolerance", "0",
              "--precision", "f32", "--vgg", args.vgg] + layers
    # Same recipe, run in one command, ours first then PyTorch, then preset 3.
    ours_time, ours_loss, ours_its = ours(args.binary, paths["content"], paths["style"], os.path.join(tmp, "ours.png"), recipe)
    ref_time, ref_loss = reference(vgg, content, style, args.iterations, args.lr, args.style_weight, args.tv_weight)
    preset = ["--preset", "3", "--size", str(args.size), "--vgg", args.vgg]
    p3_time, _, p3_its = ours(args.binary, paths["content"], paths["style"], os.path.join(tmp, "p3.png"), preset)
    # Preset 3 optimises its own objective; score its saved image with the recipe's losses.
    p3_loss = score(vgg, load_png(os.path.join(tmp, "p3.png")), content, style, args.style_weight, args.tv_weight)
    # The bot's quality mode: 60 iterations from the fast model's picture (making it included).
    quality = ["--preset", "3", "--iterations", "60", "--size", str(args.size), "--vgg", args.vgg,
               "--warm-start", os.path.join(root, "models/adain-v1-int8")]
    q_time, _, q_its = ours(args.binary, paths["content"], paths["style"], os.path.join(tmp, "q.png"), quality)
    q_loss = score(vgg, load_png(os.path.join(tmp, "q.png")), content, style, args.style_weight, args.tv_weight)

    def rel(a, b):
        return f"{(a - b) / b * 100:+.2f}%"

    rows = [
        ("PyTorch eager (reference)", ref_time, ref_loss, f"{args.iterations} Adam", "1.00×", "", ""),
        ("stylegram-train, same recipe", ours_time, ours_loss, f"{ours_its} Adam", f"{ours_time / ref_time:.2f}×",
         rel(ours_loss[2], ref_loss[2]), rel(ours_loss[1], ref_loss[1])),
        ("stylegram-train --preset 3", p3_time, p3_loss, f"{p3_its} L-BFGS", f"{p3_time / ref_time:.2f}×",
         rel(p3_loss[2], ref_loss[2]), rel(p3_loss[1], ref_loss[1])),
        ("the bot's quality mode (warm start, 60 iterations)", q_time, q_loss, f"{q_its} L-BFGS",
         f"{q_time / ref_time:.2f}×", rel(q_loss[2], ref_loss[2]), rel(q_loss[1], ref_loss[1])),
    ]
    header = "| run | iterations | time (s) | time vs reference | total loss | content loss | style loss | style vs ref | content vs ref |\n|---|---|---|---|---|---|---|---|---|\n"
    body = "".join(
        f"| {name} | {its} | {t:.1f} | {ratio} | {l[0]:.4g} | {l[1]:.4g} | {l[2]:.4g} | {ds} | {dc} |\n"
        for name, t, l, its, ratio, ds, dc in rows
    )
    machine = f"{cpu_description()}, {os.cpu_count()} cores, {threads} torch threads"
    text = (
        "# Gatys benchmark: our CLI against the PyTorch reference\n\n"
        f"Generated by `make bench-gatys` (`python bench/gatys_reference.py`) on {machine}, "
        f"torch {torch.__version__}, {time.strftime('%Y-%m-%d')}.\n\n"
        f"Recipe: content {os.path.basename(args.content)}, style {os.path.basename(args.style)}, {args.size} px long side, "
        f"Adam lr {args.lr} from the content image, content relu4_2, style relu1_1..relu5_1 (0.2 each), "
        f"β = {args.style_weight}, γ = {args.tv_weight}, no early stop; our same-recipe run uses f32 like PyTorch. "
        "Preset 3 runs with its own settings (docs/gatys.md: L-BFGS, the same layers and weights, bf16 convolutions "
        "where the CPU has AVX-512 BF16); its saved image is scored with the reference's loss functions in f32, and so "
        "is the bot's quality mode (preset 3's objective, 60 iterations from the int8 fast model's picture, the time "
        "to make that picture included). "
        "Other losses are those of the best image seen during the run.\n\n"
        + header + body
    )
    print(text)
    with open(args.out, "w") as f:
        f.write(text)
    print(f"wrote {args.out}")
    print(json.dumps({"ours": ours_time, "reference": ref_time, "preset3": p3_time, "quality": q_time}))


if __name__ == "__main__":
    main()
