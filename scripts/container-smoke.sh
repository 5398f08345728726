#!/usr/bin/env bash
# Smoke test of a built container image against the repo's fake Bot API, through the real polling path.
#
#   scripts/container-smoke.sh [IMAGE] [USERS]     default: stylegram:cpu, 3 users
#
# Runs `stylegram doctor` in the image; in the CUDA variant, checks that every library ONNX Runtime's
# CUDA provider links resolves inside the image except the driver's libcuda.so.1 (which the NVIDIA
# Container Toolkit mounts from the host); then runs `bot-load` with the image as the bot: each user sends
# a real photo, picks the first preset style, presses Go and waits for the styled picture. The
# container shares the host's network (the fake Bot API listens on 127.0.0.1). Needs docker and the
# release bot-load (`cargo build --release -p fake-bot-api`); writes the table to
# ${OUT:-target/container-smoke.md}; PHOTO picks the photo. Not part of `make test`: CI has no container engine.
set -euo pipefail

IMAGE="${1:-stylegram:cpu}"
USERS="${2:-3}"
OUT="${OUT:-target/container-smoke.md}"
PHOTO="${PHOTO:-styles/great-wave.jpg}"
NAME="stylegram-smoke-$$"
LOAD=target/release/bot-load

command -v docker >/dev/null || { echo "docker not found" >&2; exit 1; }
[[ -x "$LOAD" ]] || { echo "$LOAD missing: cargo build --release -p fake-bot-api" >&2; exit 1; }
docker image inspect "$IMAGE" >/dev/null || { echo "no image $IMAGE: docker build -t $IMAGE ." >&2; exit 1; }

echo "== $IMAGE: $(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.2f GB", $1/1e9}')"
echo "== stylegram doctor"
docker run --rm --entrypoint /bin/sh "$IMAGE" -c '. "$STYLEGRAM_HOME/env.sh" && stylegram doctor'

echo "== the CUDA provider's libraries"
docker run --rm --entrypoint /bin/sh "$IMAGE" -c '
  . "$STYLEGRAM_HOME/env.sh"
  provider="$(dirname "$ORT_DYLIB_PATH")/libonnxruntime_providers_cuda.so"
  if [ ! -f "$provider" ]; then echo "none: ONNX Runtime CPU build"; exit 0; fi
  missing="$(ldd "$provider" | awk "/not found/ {print \$1}")"
  echo "$(ldd "$provider" | wc -l) libraries linked; not found: ${missing:-none}"
  [ "$missing" = libcuda.so.1 ] || { echo "only the driver'"'"'s libcuda.so.1 may be missing" >&2; exit 1; }'

# bot-load starts its bot with the fake API's address in the environment; this wrapper hands that
# environment to the container. bot-load kills the wrapper (the docker client) at the end, which
# leaves the container running, so the trap removes it.
wrapper="$(mktemp)"
trap 'docker rm -f "$NAME" >/dev/null 2>&1 || true; rm -f "$wrapper"' EXIT
cat > "$wrapper" <<EOF
#!/bin/sh
exec docker run --rm --name "$NAME" --network=host \\
  -e TELOXIDE_TOKEN -e TELOXIDE_API_URL -e STYLEGRAM_HTTP_ADDR -e STYLEGRAM_FAST_WORKERS \\
  -e STYLEGRAM_MAX_SIDE -e RUST_LOG "$IMAGE"
EOF
chmod +x "$wrapper"

echo "== bot-load: $USERS users against $IMAGE (the RSS column is the docker client's, not the bot's)"
"$LOAD" --bot "$wrapper" --users "$USERS" --photo "$PHOTO" --timeout 300 --out "$OUT"
cat "$OUT"
