"""PyTorch eager reference for `stylegram bench`: the fast-mode network (VGG16 to relu4_1, AdaIN,
mirrored decoder) with the bundle's own weights, read from its ONNX initializers, timed on the same
photo and style with the same thread count. Prints one JSON line; writes the stylized photo.

Run by `stylegram bench` (it passes every argument); by hand:
  python bench/adain_reference.py --model models/adain-v1 --content c.ppm --style s.ppm \
      --runs 5 --threads 2 --out ref.ppm [--device cuda]

Pictures are binary PPM, and without the `onnx` package the initializers are read from the
protobuf wire format directly, so torch is all it needs (the GPU machine's bare torch venv).
"""
import argparse
import ctypes
import json
import os
import time

import torch
import torch.nn.functional as F

ENCODER = ["relu1_1", "relu1_2", "relu2_1", "relu2_2", "relu3_1", "relu3_2", "relu3_3", "relu4_1"]
CAFFE_MEAN_BGR = torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1)
EPS = 1e-5


def varint(data, pos):
    """A protobuf varint at `pos`: (value, position after it)."""
    value, shift = 0, 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def fields(data):
    """The (field number, wire type, value) triples of one protobuf message; length-delimited values
    are memoryview slices, varints ints."""
    pos = 0
    while pos < len(data):
        key, pos = varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = varint(data, pos)
        elif wire == 2:
            length, pos = varint(data, pos)
            value, pos = data[pos:pos + length], pos + length
        elif wire == 5:
            value, pos = data[pos:pos + 4], pos + 4
        elif wire == 1:
            value, pos = data[pos:pos + 8], pos + 8
        else:
            raise SystemExit(f"unsupported protobuf wire type {wire}")
        yield number, wire, value


def read_initializers(path):
    """Float initializers of an ONNX file, read with nothing but the protobuf wire format
    (ModelProto.graph = 7, GraphProto.initializer = 5; TensorProto dims = 1, data_type = 2,
    float_data = 4, name = 8, raw_data = 9): for a torch-only Python without the onnx package."""
    with open(path, "rb") as f:
        model = memoryview(f.read())
    out = {}
    for number, _, graph in fields(model):
        if number != 7:
            continue
        for n, _, tensor in fields(graph):
            if n != 5:
                continue
            dims, dtype, name, raw, floats = [], 1, "", None, None
            for k, wire, v in fields(tensor):
                if k == 1 and wire == 0:
                    dims.append(v)
                elif k == 1:  # packed dims
                    p = 0
                    while p < len(v):
                        d, p = varint(v, p)
                        dims.append(d)
                elif k == 2:
                    dtype = v
                elif k == 4:
                    floats = bytes(v)
                elif k == 8:
                    name = bytes(v).decode()
                elif k == 9:
                    raw = bytes(v)
            if dtype != 1:  # FLOAT only; the float bundle has nothing else among its weights
                continue
            data = raw if raw is not None else floats
            out[name] = torch.frombuffer(bytearray(data), dtype=torch.float32).reshape(dims).clone()
    return out


def initializers(path):
    """The ONNX file's float initializers by name (with the onnx package when it is installed)."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        return read_initializers(path)
    model = onnx.load(path)
    return {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in model.graph.initializer}


def encode(w, x):
    x = x[:, [2, 1, 0]] * 255.0 - CAFFE_MEAN_BGR.to(x.device)
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


def read_ppm(path):
    """A binary (P6, 8-bit) PPM as a [1, 3, H, W] tensor in [0, 1]."""
    with open(path, "rb") as f:
        data = f.read()
    fields, pos = [], 0
    while len(fields) < 4:
        while data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":
            pos = data.index(b"\n", pos)
            continue
        end = pos
        while not data[end:end + 1].isspace():
            end += 1
        fields.append(data[pos:end])
        pos = end
    if fields[0] != b"P6" or fields[3] != b"255":
        raise SystemExit(f"{path}: not an 8-bit binary PPM")
    w, h = int(fields[1]), int(fields[2])
    pixels = torch.frombuffer(bytearray(data[pos + 1:pos + 1 + w * h * 3]), dtype=torch.uint8)
    return (pixels.reshape(h, w, 3).permute(2, 0, 1).unsqueeze(0).float() / 255.0).contiguous()


def write_ppm(path, image):
    """[1, 3, H, W] in [0, 1] to a binary PPM."""
    _, _, h, w = image.shape
    pixels = (image[0].clamp(0, 1).permute(1, 2, 0) * 255.0).round().to(torch.uint8).cpu().contiguous()
    with open(path, "wb") as f:
        f.write(b"P6\n%d %d\n255\n" % (w, h))
        f.write(ctypes.string_at(pixels.data_ptr(), pixels.numel()))


def percentile(values, q):
    """The q-th percentile (linear interpolation, as numpy's default)."""
    v = sorted(values)
    k = (len(v) - 1) * q / 100.0
    lo, hi = int(k), min(int(k) + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--content", required=True, help="photo, sides multiples of 8")
    p.add_argument("--style", required=True)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", required=True)
    p.add_argument("--device", default="cpu", help="cpu or cuda (timed with a synchronise per run)")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    device = torch.device(a.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    move = lambda w: {k: v.to(device) for k, v in w.items()}  # noqa: E731
    enc = move(initializers(os.path.join(a.model, "encoder.onnx")))
    dec = move(initializers(os.path.join(a.model, "decoder.onnx")))
    content, style = read_ppm(a.content).to(device), read_ppm(a.style).to(device)
    times = []
    with torch.inference_mode():
        style_mean, style_std = stats(encode(enc, style))
        for _ in range(a.runs + 1):  # the first run warms up and is not counted
            sync()
            start = time.perf_counter()
            f = encode(enc, content)
            mean, std = stats(f)
            out = decode(dec, (f - mean) / std * style_std + style_mean)
            sync()
            times.append(time.perf_counter() - start)
    write_ppm(a.out, out)
    t = times[1:]
    print(json.dumps({"p50": percentile(t, 50), "p95": percentile(t, 95), "runs": len(t),
                      "torch": torch.__version__, "threads": torch.get_num_threads(),
                      "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu"}))


if __name__ == "__main__":
    main()
