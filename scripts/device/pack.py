"""Packs what the GPU training run needs into .gpu/ (ignored by git), under the device tool's 64 MiB.

The training corpus is 105 MB of JPEGs at 320 px, too large to carry as is, so it is re-encoded at
288 px (content at JPEG quality 50, styles at 80; about 41 MB). The VGG16 weights are cut after
block4_conv2 (what AdaIN training and Gatys preset 3 read) and stored in f16 (about 11 MB);
`Vgg::load` converts them back to f32. With `--warm CHECKPOINT` (a training checkpoint folder) the
decoder weights travel too, in f16 (6 MB), for `train --resume .gpu/warm --warm-start`; then the VGG
is cut after block4_conv1 to make room (training reads nothing deeper; Gatys preset 3 needs relu4_2).
Dev tooling only: run with the bootstrap's venv python.
"""
import argparse
import glob
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from PIL import Image
from safetensors import safe_open
from safetensors.torch import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, "..", "shared", "data")
PACK = os.path.join(ROOT, ".gpu")
HOME = os.environ.get("STYLEGRAM_HOME", os.path.expanduser("~/.cache/stylegram"))
SIDE = 288


def reencode(job):
    src, quality, dst = job
    im = Image.open(src).convert("RGB")
    w, h = im.size
    s = SIDE / min(w, h)
    im = im.resize((round(w * s), round(h * s)), Image.LANCZOS)
    im.save(dst, "JPEG", quality=quality, optimize=True)
    return os.path.getsize(dst)


def save_vgg_f16(dst, last_conv):
    """The bootstrap's VGG16 weights up to block{last_conv[0]}_conv{last_conv[1]}, in f16, to `dst`
    (`Vgg::load` converts them back to f32)."""
    keep = {}
    with safe_open(os.path.join(HOME, "vgg16.safetensors"), "pt") as f:
        metadata = f.metadata()
        for key in f.keys():
            block, conv = key.split(".")[0].removeprefix("block").split("_conv")
            if (int(block), int(conv)) <= last_conv:
                keep[key] = f.get_tensor(key).half()
    save_file(keep, dst, metadata=metadata)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warm", help="training checkpoint folder to carry (weights only, f16)")
    args = parser.parse_args()
    last_conv = (4, 1) if args.warm else (4, 2)
    for kind, quality in [("content", 50), ("style", 80)]:
        out = os.path.join(PACK, "data", kind)
        os.makedirs(out, exist_ok=True)
        files = sorted(glob.glob(os.path.join(DATA, "train", kind, "*")))
        jobs = [(f, quality, os.path.join(out, os.path.splitext(os.path.basename(f))[0] + ".jpg")) for f in files]
        with ThreadPoolExecutor(os.cpu_count()) as pool:
            total = sum(pool.map(reencode, jobs))
        print(f"{kind}: {len(jobs)} images, {total / 1e6:.1f} MB")
    for old in glob.glob(os.path.join(PACK, "vgg16-*.safetensors")):
        os.remove(old)
    save_vgg_f16(os.path.join(PACK, "vgg16-f16.safetensors"), last_conv)
    warm = os.path.join(PACK, "warm")
    shutil.rmtree(warm, ignore_errors=True)
    if args.warm:
        os.makedirs(warm)
        with safe_open(os.path.join(args.warm, "decoder.safetensors"), "pt") as f:
            save_file({k: f.get_tensor(k).half() for k in f.keys()}, os.path.join(warm, "decoder.safetensors"))
        shutil.copy(os.path.join(args.warm, "state.json"), warm)
        metrics = os.path.join(os.path.dirname(os.path.abspath(args.warm)), "metrics.jsonl")
        if os.path.isfile(metrics):  # the loss plot then covers the whole history
            shutil.copy(metrics, warm)
    os.makedirs(os.path.join(PACK, "test"), exist_ok=True)
    shutil.copy(os.path.join(DATA, "test", "content", "koala.jpg"), os.path.join(PACK, "test"))
    shutil.copy(os.path.join(DATA, "test", "style", "vangog.jpg"), os.path.join(PACK, "test"))
    shutil.copy("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", PACK)  # plots need a font
    subprocess.run(["strip", "-o", os.path.join(PACK, "stylegram-train"),
                    os.path.join(ROOT, "target", "release", "stylegram-train")], check=True)
    print(subprocess.run(["du", "-sh", PACK], capture_output=True, text=True).stdout.strip())


if __name__ == "__main__":
    sys.exit(main())
