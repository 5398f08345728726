"""Packs what the GPU training run needs into .gpu/ (ignored by git), under the device tool's 64 MiB.

The training corpus is 105 MB of JPEGs at 320 px, too large to carry as is, so it is re-encoded at
288 px (content at JPEG quality 60, styles at 80; about 45 MB). The VGG16 weights are cut after
block4_conv2 (what AdaIN training and Gatys preset 3 read) and stored in f16 (about 11 MB);
`Vgg::load` converts them back to f32. Dev tooling only: run with the bootstrap's venv python.
"""
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


def main():
    for kind, quality in [("content", 60), ("style", 80)]:
        out = os.path.join(PACK, "data", kind)
        os.makedirs(out, exist_ok=True)
        files = sorted(glob.glob(os.path.join(DATA, "train", kind, "*")))
        jobs = [(f, quality, os.path.join(out, os.path.splitext(os.path.basename(f))[0] + ".jpg")) for f in files]
        with ThreadPoolExecutor(os.cpu_count()) as pool:
            total = sum(pool.map(reencode, jobs))
        print(f"{kind}: {len(jobs)} images, {total / 1e6:.1f} MB")
    keep = {}
    with safe_open(os.path.join(HOME, "vgg16.safetensors"), "pt") as f:
        metadata = f.metadata()
        for key in f.keys():
            block, conv = key.split(".")[0].removeprefix("block").split("_conv")
            if (int(block), int(conv)) <= (4, 2):
                keep[key] = f.get_tensor(key).half()
    save_file(keep, os.path.join(PACK, "vgg16-relu4_2-f16.safetensors"), metadata=metadata)
    os.makedirs(os.path.join(PACK, "test"), exist_ok=True)
    shutil.copy(os.path.join(DATA, "test", "content", "koala.jpg"), os.path.join(PACK, "test"))
    shutil.copy(os.path.join(DATA, "test", "style", "vangog.jpg"), os.path.join(PACK, "test"))
    shutil.copy("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", PACK)  # plots need a font
    subprocess.run(["strip", "-o", os.path.join(PACK, "stylegram-train"),
                    os.path.join(ROOT, "target", "release", "stylegram-train")], check=True)
    print(subprocess.run(["du", "-sh", PACK], capture_output=True, text=True).stdout.strip())


if __name__ == "__main__":
    sys.exit(main())
