#!/usr/bin/env bash
# Runs on the lent GPU machine (see README "GPU"), from the repository root, with .gpu/ carried
# (made by scripts/device/pack.py). Measures training throughput in f32 and bf16, trains the AdaIN
# decoder for TRAIN_SECONDS, and times Gatys preset 3 on CUDA. Everything lands in $OUT.
# STEPS picks the parts (default "throughput train gatys"). When .gpu/warm exists (pack.py --warm),
# training continues from those weights with --warm-start instead of starting fresh.
set -uo pipefail
OUT=${OUT:-/tmp/stylegram-out}
TRAIN_SECONDS=${TRAIN_SECONDS:-400}
# For a dry run on a CPU: DEVICE=cpu THROUGHPUT_ITERATIONS=2 TRAIN_SECONDS=5 GATYS_SIZE=64
DEVICE=${DEVICE:-cuda}
THROUGHPUT_ITERATIONS=${THROUGHPUT_ITERATIONS:-200}
GATYS_SIZE=${GATYS_SIZE:-512}
STEPS=${STEPS:-throughput train gatys}
G=.gpu
B=$G/stylegram-train
TORCH_LIB=${TORCH_LIB:-$(python3 -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')}
export LD_LIBRARY_PATH=$TORCH_LIB:${LD_LIBRARY_PATH:-}
export STYLEGRAM_VGG=$G/vgg16-f16.safetensors
export STYLEGRAM_FONT=$G/DejaVuSans.ttf
DATA=(--content $G/data/content --style $G/data/style --resize 288 --threads 12 --prefetch 24)
mkdir -p "$OUT"
exec > >(tee "$OUT/log.txt") 2>&1

echo "== machine"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
nproc
$B doctor

has() { [[ " $STEPS " == *" $1 "* ]]; }

has throughput && echo "== throughput (batch 8, 256 px crops, $THROUGHPUT_ITERATIONS iterations each)"
has throughput && for p in f32 bf16; do
  $B train --device $DEVICE --precision $p "${DATA[@]}" --iterations $THROUGHPUT_ITERATIONS --log-every 20 \
    --checkpoint-every 1000000 --run-dir /tmp/throughput-$p || { echo "throughput run $p failed"; exit 1; }
  echo "-- $p metrics"; cat /tmp/throughput-$p/metrics.jsonl
done

START=()
if [ -d $G/warm ]; then
  START=(--resume $G/warm --warm-start)
  mkdir -p /tmp/run && cp $G/warm/metrics.jsonl /tmp/run/ 2>/dev/null
fi
if has train; then
  echo "== training (bf16, ${TRAIN_SECONDS} s) ${START[*]}"
  $B train --device $DEVICE --amp "${DATA[@]}" "${START[@]}" --iterations 160000 \
    --max-time "$TRAIN_SECONDS" --log-every 50 --checkpoint-every 2500 --run-dir /tmp/run
  # Each file stays under the device tool's 16 MB return limit; the Adam moments allow --resume.
  cp /tmp/run/checkpoint/* /tmp/run/metrics.jsonl /tmp/run/loss.png /tmp/run/samples.jpg "$OUT/"
fi

has gatys && echo "== gatys preset 3 on $DEVICE, $GATYS_SIZE px, koala x vangog"
has gatys && for run in 1 2; do
  time $B gatys --device $DEVICE --preset 3 --size $GATYS_SIZE \
    --content $G/test/koala.jpg --style $G/test/vangog.jpg --out "$OUT/gatys-preset3-512.jpg"
done
echo "== done"
