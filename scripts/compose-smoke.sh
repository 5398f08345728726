#!/usr/bin/env bash
# Smoke test of compose.yaml: Redis, the bot and a CPU worker as compose starts them, against the
# repo's fake Bot API, through the real polling path.
#
#   scripts/compose-smoke.sh          needs the images stylegram:cpu and redis:7-bookworm
#
# Starts the fake Bot API on this host (0.0.0.0:${PORT:-8091}), then `compose up redis bot
# cpu-worker` with TELOXIDE_API_URL pointing at it, and plays two users: one in fast mode, one in
# quality mode (STYLEGRAM_QUALITY_SIDE=96, 10 iterations, to keep it short on a CPU). Passes when both
# get their picture, the worker (not the bot) painted them, and the bot's /healthz answers on
# 127.0.0.1:9090. The GPU worker is not started: it needs an NVIDIA GPU. Tears the stack down at the
# end. Not part of `make test`: CI has no container engine.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT="${PORT:-8091}"
# An address of this host that containers reach (the fake API runs on the host, not in compose).
HOST_ADDR="${HOST_ADDR:-$(hostname -I | awk '{print $1}')}"
PHOTO="${PHOTO:-styles/great-wave.jpg}"
API=target/release/fake-bot-api
PROJECT=stylegram-smoke

if docker compose version >/dev/null 2>&1; then compose=(docker compose); else compose=(docker-compose); fi
"${compose[@]}" version >/dev/null || { echo "neither docker compose nor docker-compose found" >&2; exit 1; }
[[ -x "$API" ]] || { echo "$API missing: cargo build --release -p fake-bot-api" >&2; exit 1; }

"$API" --addr "0.0.0.0:$PORT" >/tmp/compose-smoke-api.log 2>&1 &
api_pid=$!
export TELOXIDE_TOKEN=123:compose TELOXIDE_API_URL="http://$HOST_ADDR:$PORT/"
export STYLEGRAM_QUALITY_SIDE=96 STYLEGRAM_QUALITY_ITERATIONS=10
up=("${compose[@]}" -p "$PROJECT" -f compose.yaml)
cleanup() {
  "${up[@]}" logs --no-color >target/compose-smoke.log 2>&1 || true
  "${up[@]}" down -v >/dev/null 2>&1 || true
  kill "$api_pid" 2>/dev/null || true
}
trap cleanup EXIT

echo "== ${compose[*]} up redis bot cpu-worker (fake Bot API at $TELOXIDE_API_URL)"
"${up[@]}" up -d redis bot cpu-worker
python3 - "$PORT" "$PHOTO" <<'PY'
import json, sys, time, urllib.request
port, photo = sys.argv[1], open(sys.argv[2], "rb").read()
base = f"http://127.0.0.1:{port}/control"
seen = 0

def post(path, body, ctype="application/json"):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    urllib.request.urlopen(urllib.request.Request(base + path, data, {"Content-Type": ctype}))

def wait(user, words, seconds, kind=None):
    """The first new bot event in `user`'s chat whose text holds `words` (and of `kind`, if given)."""
    global seen
    end = time.time() + seconds
    while time.time() < end:
        for e in json.load(urllib.request.urlopen(f"{base}/events?after={seen}")):
            seen = max(seen, e["seq"])
            if e["chat_id"] == user and words in e["text"] and kind in (None, e["kind"]):
                return e
        time.sleep(0.3)
    sys.exit(f"user {user}: no message with {words!r} within {seconds} s")

def button(event, label):
    """The callback data of the first button whose label holds `label` (as the Rust FakeUser)."""
    found = [d for row in event["buttons"] for (text, d) in row if label in text]
    if not found:
        sys.exit(f"no button {label!r} in {event['buttons']}")
    return found[0]

for user, mode in [(501, "⚡ Fast"), (502, "🎨 Quality")]:
    start = time.time()
    post(f"/upload?user_id={user}&kind=photo", photo, "application/octet-stream")
    gallery = wait(user, "Choose a style", 120)
    post("/press", {"user_id": user, "message_id": gallery["message_id"], "data": button(gallery, "1. ")})
    options = wait(user, "Settings for this picture", 60)
    if mode.endswith("Quality"):
        post("/press", {"user_id": user, "message_id": options["message_id"], "data": button(options, "Quality")})
        options = wait(user, "🎨 Quality", 60)
    post("/press", {"user_id": user, "message_id": options["message_id"], "data": button(options, "Go")})
    result = wait(user, mode, 300, kind="photo")
    assert result["has_bytes"], result
    print(f"user {user}: {mode} result {time.time() - start:.1f} s after the photo")
PY
curl -fsS http://127.0.0.1:9090/healthz >/dev/null && echo "bot /healthz: ok"
"${up[@]}" ps
worker_jobs="$("${up[@]}" logs --no-color cpu-worker | grep -c 'took a job' || true)"
echo "jobs the cpu-worker took: $worker_jobs"
[[ "$worker_jobs" -eq 2 ]] || { echo "the worker should have painted both pictures" >&2; exit 1; }
