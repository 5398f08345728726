"""PyTorch eager reference for `stylegram bench`: the fast-mode network (VGG16 to relu4_1, AdaIN,
mirrored decoder) with the bundle's own weights, read from its ONNX initializers, timed on the same
photo and style with the same thread count. Prints one JSON line; writes the stylized photo.

Run by `stylegram bench` (it passes every argument); by hand:
  python bench/adain_reference.py --model models/adain-v1 --content c.png --style s.png \
      --runs 5 --threads 2 --out ref.png
"""
import argparse
import json
import os
import time

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper
from PIL import Image

ENCODER = ["relu1_1", "relu1_2", "relu2_1", "relu2_2", "relu3_1", "relu3_2", "relu3_3", "relu4_1"]
CAFFE_MEAN_BGR = torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1)
EPS = 1e-5


def initializers(path):
    model = onnx.load(path)
    return {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in model.graph.initializer}


def encode(w, x):
    x = x[:, [2, 1, 0]] * 255.0 - CAFFE_MEAN_BGR
    for name in ENCODER:
        if name.endswith("_1") and name != "relu1_1":
            x = F.max_pool2d(x, 2, 2)
        x = F.relu(F.conv2d(x, w[name + ".weight"], w[name + ".bias"], padding=1))
    return x


def stats(f):
    mean = f.mean(dim=(2, 3), keepdim=True)
    var = ((f - mean) ** 2).mean(dim=(2, 3), keepdim=True)
    return mean, (var + EPS).sqrt()


def decode(w, t):
    x = t * w["input_scale"]
    for i in range(1, 9):
        x = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), w[f"conv{i}.weight"], w[f"conv{i}.bias"])
        if i < 8:
            x = F.relu(x)
        if i in (1, 4, 6):
            x = F.interpolate(x, scale_factor=2, mode="nearest")
    return x


def load_image(path):
    a = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(a).permute(2, 0, 1).unsqueeze(0).contiguous()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--content", required=True, help="photo, sides multiples of 8")
    p.add_argument("--style", required=True)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    enc = initializers(os.path.join(a.model, "encoder.onnx"))
    dec = initializers(os.path.join(a.model, "decoder.onnx"))
    content, style = load_image(a.content), load_image(a.style)
    times = []
    with torch.inference_mode():
        style_mean, style_std = stats(encode(enc, style))
        for _ in range(a.runs + 1):  # the first run warms up and is not counted
            start = time.perf_counter()
            f = encode(enc, content)
            mean, std = stats(f)
            out = decode(dec, (f - mean) / std * style_std + style_mean)
            times.append(time.perf_counter() - start)
    image = (out[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255.0).round().astype(np.uint8)
    Image.fromarray(image).save(a.out)
    t = sorted(times[1:])
    print(json.dumps({"p50": float(np.percentile(t, 50)), "p95": float(np.percentile(t, 95)), "runs": len(t),
                      "torch": torch.__version__, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
