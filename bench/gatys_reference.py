#!/usr/bin/env python3
"""Gatys speed benchmark: the Python prototype's recipe in PyTorch against our CLI, side by side.

    make bench-gatys            (or: python bench/gatys_reference.py --help)

PyTorch loads the same VGG16 weights from the same safetensors file (`stylegram-train import-vgg`) and
implements the same losses (content MSE at relu4_2, Gram MSE at relu1_1..relu5_1 with weights 0.2,
Gram normalised by C*H*W, mean-squared total variation, Caffe BGR preprocessing). Both sides get the
same pre-resized PNGs, the same thread count, and report the loss of the best image seen, timed
from target computation to the end of the last iteration (weights loading excluded on both sides).

Three tables, to stdout and to docs/gatys-benchmark.md: the recipe side by side (with preset 3 and the
bot's quality mode scored by the reference's losses); one f32 iteration, ours against PyTorch, with
this CPU's instruction sets and, where it has AVX-512, with AVX2 only; and what preset 3 and the quality
mode take at 256 and 512 px each way (about 15 minutes in all on a 2-core machine; --skip-expectations
leaves the last out).
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


def cpu_info():
    """The CPU's model name and its flags, from /proc/cpuinfo (None, [] where it cannot be read)."""
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read()
    except OSError:
        return None, []
    model = next((l.split(":", 1)[1].strip() for l in info.splitlines() if l.startswith("model name")), "unknown CPU")
    flags = next((l.split(":", 1)[1].split() for l in info.splitlines() if l.startswith("flags")), [])
    return model, flags


def has_avx512():
    """Whether this CPU has AVX-512: only then does holding libtorch to AVX2 change anything."""
    return "avx512f" in cpu_info()[1]


def cpu_description():
    """The CPU's model and the instruction sets that decide f32/bf16 speed, from /proc/cpuinfo."""
    model, flags = cpu_info()
    if model is None:
        return platform.processor() or platform.machine()
    wanted = ["avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8"]
    found = " ".join(f.upper() for f in wanted if f in flags) or "no AVX2"
    return f"{model} ({found})"


def write_report(path, lines):
    """Writes a Markdown report (a list of lines) to `path` and prints it."""
    text = "\n".join(lines) + "\n"
    with open(path, "w") as f:
        f.write(text)
    print(text)


def load_vgg(path):
    tensors = load_file(path)
    layers = sorted({tuple(int(p) for p in re.findall(r"\d+", k)) for k in tensors if k.endswith(".weight")})
    return [(b, c, tensors[f"block{b}_conv{c}.weight"], tensors[f"block{b}_conv{c}.bias"]) for b, c in layers]


def activations(vgg, rgb, wanted, convert=lambda x: x):
    """The `wanted` ReLU activations (in f32) of an RGB picture in [0, 1]; `convert` takes the network's
    input to the precision and layout of `vgg`'s weights."""
    mean = torch.tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1)
    x = convert(rgb.flip(1) * 255.0 - mean)
    deepest = max(i for i, (b, c, _, _) in enumerate(vgg) if f"relu{b}_{c}" in wanted)
    out = {}
    for i, (b, c, w, bias) in enumerate(vgg[: deepest + 1]):
        if c == 1 and b > 1:
            x = F.max_pool2d(x, 2, 2)
        x = F.relu(F.conv2d(x, w, bias, padding=1))
        if f"relu{b}_{c}" in wanted:
            out[f"relu{b}_{c}"] = x.float()
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


AVX2_ONLY = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
"""Environment that keeps libtorch (ATen kernels and oneDNN convolutions) to AVX2 and FMA: how a CPU
without AVX-512 runs, on this machine's cores."""


def instruction_set_legs():
    """(label, environment) of each way to run: as found and, on a CPU with AVX-512, held to AVX2 too
    (on a CPU without AVX-512 the two would be the same run twice)."""
    if has_avx512():
        return [("as found", {}), ("AVX2 only", AVX2_ONLY)]
    return [("as found (no AVX-512)", {})]

LAYERS = ["--content-layers", ",".join(f"{k}:{w}" for k, w in CONTENT_LAYERS.items()),
          "--style-layers", ",".join(f"{k}:{w}" for k, w in STYLE_LAYERS.items())]


def recipe_args(args, size, iterations):
    """Every knob of the prototype's recipe pinned explicitly, so no preset default leaks in."""
    return ["--optimizer", "adam", "--lr", str(args.lr), "--iterations", str(iterations), "--scales", "1",
            "--init", "content", "--size", str(size), "--content-weight", "1", "--style-weight",
            str(args.style_weight), "--tv-weight", str(args.tv_weight), "--stall-tolerance", "0",
            "--precision", "f32", "--vgg", args.vgg] + LAYERS


def resized(args, tmp, size):
    """The content and style pictures resized to `size` px long side, as PNGs both sides read."""
    from PIL import Image

    paths = {}
    for name in ("content", "style"):
        img = Image.open(getattr(args, name)).convert("RGB")
        if max(img.size) != size:
            scale = size / max(img.size)
            img = img.resize((round(img.width * scale), round(img.height * scale)), Image.LANCZOS)
        paths[name] = os.path.join(tmp, f"{name}-{size}.png")
        img.save(paths[name])
    return paths


def iteration_probe(args):
    """One iteration's cost in f32 at each size, ours and PyTorch's, in this process's instruction
    sets: the mean over --probe-iterations Adam iterations of the recipe, targets included on both
    sides. Prints JSON for the parent."""
    tmp = tempfile.mkdtemp()
    vgg = load_vgg(args.vgg)
    n = args.probe_iterations
    out = {"capability": torch.backends.cpu.get_cpu_capability(), "sizes": {}}
    for size in args.probe_sizes:
        paths = resized(args, tmp, size)
        ours_time, _, _ = ours(args.binary, paths["content"], paths["style"], os.path.join(tmp, "o.png"),
                               recipe_args(args, size, n))
        ref_time, _ = reference(vgg, load_png(paths["content"]), load_png(paths["style"]), n, args.lr,
                                args.style_weight, args.tv_weight)
        out["sizes"][size] = {"ours": ours_time / n, "torch": ref_time / n}
    print(json.dumps(out))


def run_probe(args, env_extra):
    """Runs `iteration_probe` in a fresh interpreter with `env_extra` set before torch loads."""
    cmd = [sys.executable, os.path.abspath(__file__), "--iteration-probe", "--binary", args.binary, "--vgg", args.vgg,
           "--content", args.content, "--style", args.style, "--probe-iterations", str(args.probe_iterations),
           "--probe-sizes", ",".join(map(str, args.probe_sizes))]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True, env={**os.environ, **env_extra})
    return json.loads(done.stdout.strip().splitlines()[-1])


def expectation(args, tmp, size, env_extra, precision, what):
    """Seconds our CLI takes for preset 3 or the bot's quality mode at `size`, under `env_extra`."""
    paths = resized(args, tmp, size)
    extra = ["--preset", "3", "--size", str(size), "--vgg", args.vgg, "--precision", precision]
    if what == "quality":
        extra += ["--iterations", "60", "--warm-start", os.path.join(ROOT, "models/adain-v1-int8")]
    env = {**os.environ, **env_extra}
    cmd = [args.binary, "gatys", "--content", paths["content"], "--style", paths["style"], "--out",
           os.path.join(tmp, "e.png"), "--device", "cpu"] + extra
    done = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    m = SUMMARY.search(done.stdout)
    if not m:
        sys.exit(f"could not parse the CLI summary: {done.stdout}{done.stderr}")
    return float(m.group(1)), int(m.group(3))


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    home = os.environ.get("STYLEGRAM_HOME", os.path.expanduser("~/.cache/stylegram"))
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--content", default=os.path.join(ROOT, "../shared/data/test/content/koala.jpg"))
    p.add_argument("--style", default=os.path.join(ROOT, "../shared/data/test/style/vangog.jpg"))
    p.add_argument("--size", type=int, default=256, help="long side of the recipe table's run")
    p.add_argument("--iterations", type=int, default=300)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--style-weight", type=float, default=10.0)
    p.add_argument("--tv-weight", type=float, default=10.0)
    p.add_argument("--vgg", default=os.environ.get("STYLEGRAM_VGG", os.path.join(home, "vgg16.safetensors")))
    p.add_argument("--binary", default=os.path.join(ROOT, "target/release/stylegram-train"))
    p.add_argument("--out", default=os.path.join(ROOT, "docs/gatys-benchmark.md"))
    p.add_argument("--probe-iterations", type=int, default=20, help="iterations per one-iteration measurement")
    p.add_argument("--probe-sizes", type=lambda v: [int(x) for x in v.split(",")], default=[256, 512])
    p.add_argument("--skip-expectations", action="store_true",
                   help="leave out the preset 3 and quality-mode times at 256 and 512 px (about 10 minutes)")
    p.add_argument("--iteration-probe", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.iteration_probe:
        return iteration_probe(args)

    tmp = tempfile.mkdtemp()
    paths = resized(args, tmp, args.size)
    threads = torch.get_num_threads()
    vgg = load_vgg(args.vgg)
    content, style = load_png(paths["content"]), load_png(paths["style"])
    # Same recipe, run in one command, ours first then PyTorch, then preset 3.
    ours_time, ours_loss, ours_its = ours(args.binary, paths["content"], paths["style"], os.path.join(tmp, "ours.png"),
                                          recipe_args(args, args.size, args.iterations))
    ref_time, ref_loss = reference(vgg, content, style, args.iterations, args.lr, args.style_weight, args.tv_weight)
    preset = ["--preset", "3", "--size", str(args.size), "--vgg", args.vgg]
    p3_time, _, p3_its = ours(args.binary, paths["content"], paths["style"], os.path.join(tmp, "p3.png"), preset)
    # Preset 3 optimises its own objective; score its saved image with the recipe's losses.
    p3_loss = score(vgg, load_png(os.path.join(tmp, "p3.png")), content, style, args.style_weight, args.tv_weight)
    # The bot's quality mode: 60 iterations from the fast model's picture (making it included).
    quality = ["--preset", "3", "--iterations", "60", "--size", str(args.size), "--vgg", args.vgg,
               "--warm-start", os.path.join(ROOT, "models/adain-v1-int8")]
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

    # One iteration in f32, ours against PyTorch, with this CPU's instruction sets and with AVX2 only.
    probes = [(label, run_probe(args, env)) for label, env in instruction_set_legs()]
    iteration = (
        "\n## One iteration in f32\n\n"
        f"Value and gradient of the same objective in f32, both sides on the same pictures: the mean over "
        f"{args.probe_iterations} Adam iterations of the recipe above, its targets included on both sides "
        "(our CLI's `--precision f32`, PyTorch eager). \"AVX2 only\" runs both with "
        "`ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2`, which keeps libtorch's kernels and oneDNN's "
        "convolutions to AVX2 and FMA: the instruction sets of a CPU without AVX-512, on this machine's "
        "cores (a real AVX2-only CPU has other cores and caches, so its times differ); on a CPU without "
        "AVX-512 that row would repeat the first, so it is left out.\n\n"
        "| instruction sets | libtorch kernels | size | ours (s/iteration) | PyTorch (s/iteration) | ours ÷ PyTorch |\n"
        "|---|---|---|---|---|---|\n"
    )
    for label, probe in probes:
        for size, t in probe["sizes"].items():
            iteration += (f"| {label} | {probe['capability']} | {size} px | {t['ours']:.3f} | {t['torch']:.3f} | "
                          f"{t['ours'] / t['torch']:.2f}× |\n")

    expectations = ""
    if not args.skip_expectations:
        expectations = (
            "\n## What to expect: preset 3 and the bot's quality mode\n\n"
            "Our CLI alone, `stylegram-train gatys --preset 3` and the bot's quality mode (`--preset 3 "
            "--iterations 60 --warm-start models/adain-v1-int8`, the fast picture's time included), as this "
            "CPU runs them (precision `auto`: bf16 where the CPU has AVX-512 BF16) and with AVX2 only in f32 "
            "(see above). One run each.\n\n"
            "| instruction sets | precision | size | preset 3 (s) | its iterations | quality mode (s) |\n"
            "|---|---|---|---|---|---|\n"
        )
        for label, env in instruction_set_legs():
            precision = "f32" if env else "auto"
            for size in (256, 512):
                p3, p3_n = expectation(args, tmp, size, env, precision, "preset")
                q, _ = expectation(args, tmp, size, env, precision, "quality")
                expectations += f"| {label} | {precision} | {size} px | {p3:.1f} | {p3_n} | {q:.1f} |\n"

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
        + header + body + iteration + expectations
    )
    print(text)
    with open(args.out, "w") as f:
        f.write(text)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
