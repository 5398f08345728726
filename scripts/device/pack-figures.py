"""Packs what the GPU figures run needs (scripts/device/gpu-figures.sh) into target/gpu/parts/, in
parts small enough for the device tool, which carries at most 64 MiB per call, the tracked tree
included.

One xz stream of a tar holds: the stripped `stylegram` and `stylegram-train` binaries, the VGG16
weights cut after block5_conv1 (what the Gatys presets read: relu1_1 .. relu5_1, relu4_2) in f16,
the koala and Van Gogh test pictures, and ONNX Runtime 1.31.1's GPU build (libonnxruntime and its CUDA provider, 284 MB before
compression) from the bootstrap's cache (`make bootstrap-gpu` puts it there). The stream is cut
into parts of --part-mib; target/gpu/parts/MANIFEST lists them with their SHA-256 and the
stream's. Carry one part per call; the machine keeps ignored files between calls while it stays
warm, and the last call reassembles and runs (see docs/gpu.md).

Dev tooling only: run with the bootstrap's venv python after `cargo build --release`.
"""
import argparse
import hashlib
import io
import lzma
import os
import shutil
import subprocess
import sys
import tarfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pack import HOME, save_vgg_f16  # noqa: E402  (scripts/device/pack.py)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ORT = os.path.join(HOME, "onnxruntime-gpu-1.31.1")
OUT = os.path.join(ROOT, "target", "gpu")
LAST_CONV = (5, 1)


def tracked_bytes():
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return sum(os.path.getsize(os.path.join(ROOT, f)) for f in files.decode().split("\0") if f and
               os.path.isfile(os.path.join(ROOT, f)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part-mib", type=float, default=0.0,
                        help="part size in MiB (default: what 64 MiB leaves after the tracked tree, less 1 MiB)")
    parser.add_argument("--preset", type=int, default=6, help="xz preset (0-9)")
    args = parser.parse_args()
    if not os.path.isfile(os.path.join(ORT, "libonnxruntime_providers_cuda.so")):
        sys.exit(f"{ORT} has no CUDA provider: run `make bootstrap-gpu` first")
    stage = os.path.join(OUT, "stage")
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(os.path.join(stage, "ort"))
    os.makedirs(os.path.join(OUT, "parts"))
    for binary in ["stylegram", "stylegram-train"]:
        subprocess.run(["strip", "-o", os.path.join(stage, binary),
                        os.path.join(ROOT, "target", "release", binary)], check=True)
    save_vgg_f16(os.path.join(stage, "vgg16-f16.safetensors"), LAST_CONV)
    data = os.path.join(ROOT, "..", "shared", "data", "test")
    for kind, name in [("content", "koala.jpg"), ("style", "vangog.jpg")]:
        os.makedirs(os.path.join(stage, "test", kind), exist_ok=True)
        shutil.copy(os.path.join(data, kind, name), os.path.join(stage, "test", kind, name))
    for lib in ["libonnxruntime.so.1.31.1", "libonnxruntime_providers_shared.so",
                "libonnxruntime_providers_cuda.so"]:
        shutil.copy(os.path.join(ORT, lib), os.path.join(stage, "ort", lib))
    os.symlink("libonnxruntime.so.1.31.1", os.path.join(stage, "ort", "libonnxruntime.so"))

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(stage, arcname="payload")
    stream = lzma.compress(buffer.getvalue(), preset=args.preset)
    budget = 64 * 2**20 - tracked_bytes() - 2**20
    part = int(args.part_mib * 2**20) if args.part_mib else budget
    if part <= 0:
        sys.exit("the tracked tree leaves no room under 64 MiB")
    lines = [f"stream {hashlib.sha256(stream).hexdigest()} {len(stream)}"]
    for i in range(0, len(stream), part):
        name = f"part-{i // part + 1:02d}"
        chunk = stream[i:i + part]
        with open(os.path.join(OUT, "parts", name), "wb") as f:
            f.write(chunk)
        lines.append(f"{name} {hashlib.sha256(chunk).hexdigest()} {len(chunk)}")
    shutil.rmtree(stage)
    with open(os.path.join(OUT, "parts", "MANIFEST"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"{len(lines) - 1} parts of at most {part / 2**20:.1f} MiB ({len(stream) / 1e6:.1f} MB compressed) "
          f"in {os.path.relpath(os.path.join(OUT, 'parts'), ROOT)}:")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
