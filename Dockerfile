# syntax=docker/dockerfile:1
# Stylegram's bot and workers in one image, built with the project's own bootstrap.
#
#   docker build -t stylegram:cpu .                                   CPU image (ONNX Runtime CPU build)
#   docker build -t stylegram:cuda --build-arg STYLEGRAM_GPU=1 .      CUDA variant: ONNX Runtime's GPU
#                                                                     build, CUDA 13 and cuDNN 9 from the
#                                                                     torch wheel; the driver comes from
#                                                                     the host (NVIDIA Container Toolkit)
#   docker run -e TELOXIDE_TOKEN=... stylegram:cpu                    the bot (in-process queue)
#   docker run -e TELOXIDE_TOKEN=... -e STYLEGRAM_REDIS_URL=... stylegram:cuda worker
#
# Configuration is the README's environment variables. compose.yaml runs Redis, the bot and a GPU
# worker. No Python runs in the image: the torch venv only provides libtorch's shared libraries.

FROM rust:1.95-bookworm AS build
ARG STYLEGRAM_GPU=0
ENV STYLEGRAM_HOME=/opt/stylegram STYLEGRAM_GPU=${STYLEGRAM_GPU}
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The native dependencies first, in their own layer: they change far less often than the code.
COPY scripts/bootstrap.sh scripts/bootstrap.sh
RUN scripts/bootstrap.sh
COPY . .
RUN . "$STYLEGRAM_HOME/env.sh" \
    && cargo build --release --locked --bin stylegram-bot --bin stylegram-train --bin stylegram \
    && target/release/stylegram-train import-vgg --out "$STYLEGRAM_HOME/vgg16.safetensors" \
    && rm -rf "$STYLEGRAM_HOME/vgg16"

FROM debian:bookworm-slim
ARG STYLEGRAM_GPU=0
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*
ENV STYLEGRAM_HOME=/opt/stylegram \
    STYLEGRAM_HTTP_ADDR=0.0.0.0:9090 \
    STYLEGRAM_SPOOL=/var/lib/stylegram/spool \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
# Same paths as in the build stage: the binaries find libtorch through their rpath, and env.sh
# (written by the bootstrap) sets ONNX Runtime's library and, in the CUDA variant, the CUDA libraries.
COPY --from=build /opt/stylegram /opt/stylegram
COPY --from=build /src/target/release/stylegram-bot /src/target/release/stylegram-train /src/target/release/stylegram /usr/local/bin/
COPY --from=build /src/models /app/models
COPY --from=build /src/styles /app/styles
WORKDIR /app
RUN mkdir -p /var/lib/stylegram/spool
VOLUME /var/lib/stylegram
EXPOSE 9090
ENTRYPOINT ["/bin/sh", "-c", ". \"$STYLEGRAM_HOME/env.sh\" && exec stylegram-bot \"$@\"", "stylegram-bot"]
