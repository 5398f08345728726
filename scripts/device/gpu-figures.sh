#!/usr/bin/env bash
# The GPU figures of docs/gpu.md, on the lent GPU machine (an H100/H200 with PyTorch 2.11 at
# /opt/torch/.venv, no Rust, no network), from the repository root. What it runs comes in parts
# made by scripts/device/pack-figures.py and carried one per call (target/gpu/parts/).
#
#   gpu-figures.sh receive   checks the parts that have arrived so far against MANIFEST
#   gpu-figures.sh run       reassembles them and measures; everything lands in $OUT
#
# STEPS picks what `run` measures (default "doctor fast gatys"):
#   doctor  nvidia-smi, `stylegram doctor`, `stylegram-train doctor`
#   fast    `stylegram bench --device cuda` at 512/1024/2048 px: the float bundle and its fp16
#           variant (made there by `stylegram models convert --fp16`), PyTorch eager on the same GPU
#   gatys   presets 1-5 at 512 and 1024 px on CUDA in f32 (cuDNN autotuning on, libtorch's
#           default TF32 convolutions) and preset 3 in bf16, the quality mode from the fast picture
# A dry run on a CPU machine: DEVICE=cpu SIZES_FAST=256 SIZES_GATYS=64 RUNS=2 gpu-figures.sh run
set -uo pipefail
G=target/gpu
P=$G/parts
U=$G/unpacked/payload
OUT=${OUT:-/tmp/stylegram-out}
DEVICE=${DEVICE:-cuda}
STEPS=${STEPS:-doctor fast gatys}
SIZES_FAST=${SIZES_FAST:-512,1024,2048}
SIZES_GATYS=${SIZES_GATYS:-512 1024}
RUNS=${RUNS:-50}
PYTHON=${PYTHON:-/opt/torch/.venv/bin/python}
[ -x "$PYTHON" ] || PYTHON=python3
mkdir -p "$OUT"

verify() {  # prints what is missing or damaged; exit status 0 when every part is there and sound
  local missing=0
  [ -f $P/MANIFEST ] || { echo "no $P/MANIFEST"; return 1; }
  while read -r name sum size; do
    [ "$name" = stream ] && continue
    if [ ! -f "$P/$name" ]; then echo "$name: not here yet"; missing=1
    elif [ "$(sha256sum "$P/$name" | cut -d' ' -f1)" != "$sum" ]; then echo "$name: damaged"; missing=1
    else echo "$name: ok ($size bytes)"; fi
  done < $P/MANIFEST
  return $missing
}

case "${1:-}" in
  receive) verify; exit 0 ;;
  run) ;;
  *) echo "usage: $0 receive|run" >&2; exit 2 ;;
esac

exec > >(tee "$OUT/log.txt") 2>&1
verify || { echo "parts missing: carry them first"; exit 1; }
if [ ! -x $U/stylegram ]; then
  rm -rf $G/unpacked && mkdir -p $G/unpacked
  # Python's lzma and tarfile: nothing but the interpreter is assumed on the machine.
  "$PYTHON" - "$P" "$G/unpacked" <<'PY' || exit 1
import glob, hashlib, io, lzma, sys, tarfile
parts, dest = sys.argv[1], sys.argv[2]
manifest = open(f"{parts}/MANIFEST").read().split("\n")
want_sum = manifest[0].split()[1]
stream = b"".join(open(p, "rb").read() for p in sorted(glob.glob(f"{parts}/part-*")))
assert hashlib.sha256(stream).hexdigest() == want_sum, "the reassembled stream does not match MANIFEST"
tarfile.open(fileobj=io.BytesIO(lzma.decompress(stream))).extractall(dest)
PY
fi
B=$U/stylegram
T=$U/stylegram-train
TORCH_LIB=${TORCH_LIB:-$("$PYTHON" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')}
SITE=$(dirname "$(dirname "$TORCH_LIB")")
export LD_LIBRARY_PATH=$TORCH_LIB:$SITE/nvidia/cu13/lib:$SITE/nvidia/cudnn/lib:$U/ort:${LD_LIBRARY_PATH:-}
export ORT_DYLIB_PATH=$U/ort/libonnxruntime.so
export STYLEGRAM_VGG=$U/vgg16-f16.safetensors
export STYLEGRAM_DEVICE=$DEVICE
KOALA=$U/test/content/koala.jpg
VANGOG=$U/test/style/vangog.jpg
has() { [[ " $STEPS " == *" $1 "* ]]; }

if has doctor; then
  echo "== machine"
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv 2>&1
  nproc
  $B doctor --models models
  $T doctor
fi

if has fast; then
  echo "== fast mode on $DEVICE: float and fp16 bundles, PyTorch eager on the same device"
  rm -rf /tmp/adain-v1-fp16
  $B models convert --fp16 models/adain-v1 --out /tmp/adain-v1-fp16 || echo "fp16 conversion failed"
  COMPARE=()
  [ -d /tmp/adain-v1-fp16 ] && COMPARE=(--compare /tmp/adain-v1-fp16)
  $B bench --device "$DEVICE" --model models/adain-v1 "${COMPARE[@]}" --sizes "$SIZES_FAST" \
    --runs "$RUNS" --threads "$(nproc)" --content "$KOALA" --style "$VANGOG" \
    --python "$PYTHON" --out "$OUT/benchmarks-gpu.md"
fi

if has gatys; then
  echo "== gatys on $DEVICE (koala x vangog); each size's first run also warms cuDNN's autotuner"
  for size in $SIZES_GATYS; do
    $T gatys --device "$DEVICE" --preset 1 --size "$size" --content "$KOALA" --style "$VANGOG" \
      --out /tmp/warmup.jpg > /dev/null
    for preset in 1 2 3 4 5; do
      echo "-- preset $preset, $size px, f32"
      $T gatys --device "$DEVICE" --precision f32 --preset $preset --size "$size" \
        --content "$KOALA" --style "$VANGOG" --out "$OUT/gatys-p$preset-$size.jpg"
    done
    echo "-- preset 3, $size px, bf16"
    $T gatys --device "$DEVICE" --precision bf16 --preset 3 --size "$size" \
      --content "$KOALA" --style "$VANGOG" --out "$OUT/gatys-p3-$size-bf16.jpg"
    echo "-- quality mode (60 iterations from the fast picture), $size px, f32"
    $T gatys --device "$DEVICE" --precision f32 --warm-start models/adain-v1 --iterations 60 \
      --size "$size" --content "$KOALA" --style "$VANGOG" --out "$OUT/gatys-quality-$size.jpg"
  done
fi
echo "== done"
