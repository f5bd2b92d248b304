# voxloop: the same install and entry point as `make serve` (make install, then `voxloop serve`).
# CPU by default; for CUDA pass --build-arg BASE_IMAGE=<a CUDA runtime image with python3.11 and venv>.
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}

RUN apt-get update && apt-get install -y --no-install-recommends make && rm -rf /var/lib/apt/lists/*
RUN useradd --create-home --uid 1000 voxloop
WORKDIR /app
COPY --chown=voxloop:voxloop . /app
USER voxloop
RUN make install PYTHON=python3.11

ENV VOXLOOP_HOST=0.0.0.0 VOXLOOP_PORT=8000
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s CMD python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health')"
CMD ["make", "serve"]
