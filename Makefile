# Stylegram: `make run` starts the bot, `make test` runs every test. Both bootstrap first.
SHELL := /bin/bash
STYLEGRAM_HOME ?= $(HOME)/.cache/stylegram
export STYLEGRAM_HOME
ENV_FILE := $(STYLEGRAM_HOME)/env.sh
# Every cargo call goes through the bootstrap's environment (libtorch venv on PATH, ORT library path),
# so the torch-sys build script sees the same inputs each time and is not rebuilt.
CARGO := source $(ENV_FILE) && cargo
VGG := $(STYLEGRAM_HOME)/vgg16.safetensors

.PHONY: run worker demo test bootstrap bootstrap-test bootstrap-gpu test-gpu-build build pack-gpu-figures vgg lint fmt doctor bench-gatys bench-gatys-bound bench-gatys-heap bench-fast bench-bot bench-bot-arena quantize soak soak-short

## run: bootstrap, build, and start stylegram-bot (needs TELOXIDE_TOKEN; honours TELOXIDE_API_URL)
run: bootstrap
	@$(CARGO) build --release --bin stylegram-bot
	@source $(ENV_FILE) && exec target/release/stylegram-bot

## worker: a `stylegram-bot worker` taking jobs from Redis (needs STYLEGRAM_REDIS_URL and TELOXIDE_TOKEN)
worker: bootstrap
	@$(CARGO) build --release --bin stylegram-bot
	@source $(ENV_FILE) && exec target/release/stylegram-bot worker

## demo: the bot against the fake Bot API server; chat at http://127.0.0.1:8081/
demo: bootstrap
	@$(CARGO) build --release --bin stylegram-bot --bin fake-bot-api
	@target/release/fake-bot-api & trap "kill $$!" EXIT; sleep 1; \
	  source $(ENV_FILE) && TELOXIDE_TOKEN=123:demo TELOXIDE_API_URL=http://127.0.0.1:8081/ target/release/stylegram-bot

## test: bootstrap (with redis-server), build, import the VGG weights, run every test
test: bootstrap-test vgg
	@$(CARGO) test --workspace --no-fail-fast

bootstrap:
	@scripts/bootstrap.sh

bootstrap-test:
	@scripts/bootstrap.sh --test-services

## bootstrap-gpu: install ONNX Runtime's GPU build (CUDA provider) even on a machine without a GPU
bootstrap-gpu:
	@scripts/bootstrap.sh --gpu

## test-gpu-build: with the GPU build installed, check that the CUDA provider's libraries resolve and
## that sessions fall back to the CPU, with the reason, where no GPU is usable (no GPU needed)
test-gpu-build: bootstrap-gpu
	@$(CARGO) test -p stylegram-inference --test gpu_build

build: bootstrap
	@$(CARGO) build --release --workspace

## pack-gpu-figures: pack the binaries, VGG16 and ONNX Runtime's GPU build into target/gpu/parts/ for
## scripts/device/gpu-figures.sh on a lent GPU machine (see README "Running on a GPU machine")
pack-gpu-figures: bootstrap-gpu
	@$(CARGO) build --release --bin stylegram --bin stylegram-train
	@source $(ENV_FILE) && python scripts/device/pack-figures.py
	@scripts/bootstrap.sh

## vgg: import the bootstrap's VGG16 into $(VGG) once
vgg: $(VGG)
$(VGG): | bootstrap-test
	@$(CARGO) run --bin stylegram-train -- import-vgg --out $(VGG)

## bench-gatys: our Gatys CLI against the PyTorch reference recipe, side by side (writes docs/gatys-benchmark.md)
bench-gatys: bootstrap vgg
	@$(CARGO) build --release --bin stylegram-train
	@source $(ENV_FILE) && python bench/gatys_reference.py

## bench-gatys-bound: one Gatys evaluation against this CPU's matrix-product rate, bf16 and AVX2-only f32 (writes docs/gatys-bound.md)
bench-gatys-bound: bootstrap vgg
	@$(CARGO) build --release --bin stylegram-train
	@source $(ENV_FILE) && python bench/gatys_bound.py

## bench-gatys-heap: Gatys with large tensors kept on the heap against glibc's default allocator, runs alternated (writes docs/gatys-heap.md)
bench-gatys-heap: bootstrap vgg
	@$(CARGO) build --release --bin stylegram-train
	@source $(ENV_FILE) && python bench/gatys_heap.py

## bench-fast: fast-mode latency at 256/512/1024 px, float and int8 bundles against PyTorch eager (writes docs/benchmarks.md)
bench-fast: bootstrap
	@$(CARGO) build --release --bin stylegram
	@source $(ENV_FILE) && target/release/stylegram bench --compare models/adain-v1-int8

## quantize: rebuild models/adain-v1-int8 from models/adain-v1, calibrated on ../shared/data/train
quantize: bootstrap
	@$(CARGO) build --release --bin stylegram
	@rm -rf models/adain-v1-int8.new
	@source $(ENV_FILE) && target/release/stylegram models quantize models/adain-v1 --out models/adain-v1-int8.new --name adain-v1-int8
	@cp models/adain-v1-int8/README.md models/adain-v1-int8.new/ 2>/dev/null || true
	@rm -rf models/adain-v1-int8 && mv models/adain-v1-int8.new models/adain-v1-int8

## bench-bot: 50 users at once in fast mode against the bot through the fake Bot API (writes docs/bot-benchmark.md)
bench-bot: bootstrap
	@$(CARGO) build --release --bin stylegram-bot --bin bot-load
	@source $(ENV_FILE) && target/release/bot-load

## bench-bot-arena: the bot with every thread on glibc's main heap (MALLOC_ARENA_MAX=1) against glibc's
## default arenas, quality and fast mode, runs alternated (writes docs/bot-arena.md; about 17 minutes on a 2-core AVX-512 machine)
bench-bot-arena: bootstrap vgg
	@$(CARGO) build --release --bin stylegram-bot --bin bot-load
	@source $(ENV_FILE) && python bench/bot_arena.py

## soak: 240 scripted users per mode through a faulty fake Bot API (429s, 5xx, late answers,
## dropped connections), in-process with a bot restart and in Redis mode with a killed worker
## (writes docs/reliability.md; about 10 minutes)
soak: bootstrap-test vgg
	@$(CARGO) build --release --bin stylegram-bot --bin bot-soak
	@source $(ENV_FILE) && target/release/bot-soak

## soak-short: the same with 30 users over 40 s per mode, the debug build and the repository's paintings
## as photos and styles, so it needs no data folder (CI runs it)
soak-short: bootstrap-test vgg
	@$(CARGO) build --bin stylegram-bot --bin bot-soak
	@source $(ENV_FILE) && target/debug/bot-soak --bot target/debug/stylegram-bot --users 30 --seconds 40 --photos styles --styles styles --out target/soak-short.md

doctor: bootstrap
	@$(CARGO) run --quiet --bin stylegram-train -- doctor
	@$(CARGO) run --quiet --bin stylegram -- doctor

lint:
	@$(CARGO) fmt --all -- --check
	@$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	@cargo fmt --all
