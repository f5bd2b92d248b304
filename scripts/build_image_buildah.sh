#!/usr/bin/env bash
# Build and smoke-test the CPU image (Dockerfile) without a Docker daemon, with buildah.
#
# A local verification path, not CI and not part of `make test`: it was written to prove the Dockerfile builds and
# runs on a machine with no Docker engine and no Docker Hub (only PyPI and Debian mirrors reachable). It
#   1. builds a stand-in for python:3.11-slim-bookworm: `debootstrap bookworm` plus Debian's python3.11, python3-venv,
#      python3-dev and ca-certificates, imported as localhost/python:3.11-slim-bookworm (Debian's python3.11 is in
#      /usr/bin, the official image's in /usr/local/bin; the Dockerfile only calls `python3.11` and `python3`);
#   2. runs `buildah bud` on the unchanged Dockerfile with --build-arg BASE_IMAGE=<that stand-in>, and, for this build
#      only, mounts this machine's pip setup into the RUN steps (a pip.conf, the CA bundle of the TLS proxy, local
#      wheel dirs and indexes, and optionally a copy of a pip cache, owned by uid 1000). Mounts are not committed:
#      the image is what the Dockerfile alone produces;
#   3. `smoke`: runs the image's CMD (buildah run, host network) and checks /health, /v1/models, speech -> wav ->
#      transcription, the HEALTHCHECK command, the user and HF_HUB_OFFLINE.
#
# Usage (root; apt-get install buildah debootstrap runc):
#   scripts/build_image_buildah.sh base     # the stand-in base image (~1 min)
#   scripts/build_image_buildah.sh build    # the voxloop image, localhost/voxloop:cpu
#   scripts/build_image_buildah.sh smoke    # run it and exercise the API on 127.0.0.1:$PORT
#   scripts/build_image_buildah.sh clean    # remove the images, containers and build storage this made
# Everything at once: scripts/build_image_buildah.sh all
set -euo pipefail
cd "$(dirname "$0")/.."

BASE=localhost/python:3.11-slim-bookworm
IMAGE=${IMAGE:-localhost/voxloop:cpu}
ROOTFS=${ROOTFS:-/var/tmp/voxloop-pyroot}
WORK=${WORK:-/var/tmp/voxloop-buildah}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
PORT=${PORT:-8000}
# crun 1.8 (Debian's default) refuses cgroups in hybrid mode ("drop all controllers from cgroupv2"); runc works.
export BUILDAH_RUNTIME=${BUILDAH_RUNTIME:-$(command -v runc || echo crun)}
# This machine's pip setup (see `pip config list`). download.pytorch.org is not reachable here, so TORCH_INDEX points
# at a local index; torch==2.13.0+cpu then comes from the local find-links dir. Elsewhere leave these empty/unset.
PIP_FIND_LINKS_DIR=${PIP_FIND_LINKS_DIR:-/opt/wheels}
PIP_EXTRA_INDEXES=${PIP_EXTRA_INDEXES:-/opt/pypi/simple /opt/pypi-more/simple}
PIP_CONSTRAINTS=${PIP_CONSTRAINTS:-/etc/xdg/pip/constraints.txt}
HOST_CA=${HOST_CA:-/etc/ssl/certs/ca-certificates.crt}
# HOST_PIP_CACHE=/root/.cache/pip reuses that cache's llama-cpp-python wheel (skips the ~14 min compile on 2 cores),
# but that wheel was built for this host, not with the Dockerfile's CMAKE_ARGS; unset, the build compiles it.
HOST_PIP_CACHE=${HOST_PIP_CACHE:-}
LOCAL_TORCH_INDEX=${LOCAL_TORCH_INDEX:-file:///opt/pypi/simple}

base() {
    if buildah images -q "$BASE" >/dev/null 2>&1; then echo "$BASE exists"; return; fi
    rm -rf "$ROOTFS"
    debootstrap --variant=minbase --include=python3.11,python3.11-venv,python3-venv,python3-dev,ca-certificates \
        bookworm "$ROOTFS" "$MIRROR"
    chroot "$ROOTFS" apt-get clean
    rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin
    local c m
    c=$(buildah from scratch)
    m=$(buildah mount "$c")
    cp -a "$ROOTFS"/. "$m"/
    # The mount points of `build`'s -v mounts: buildah creates a missing one in the RUN step's layer and leaves it
    # there (empty); made here, they stay out of the voxloop layers.
    mkdir -p "$m/etc/pip-host" "$m/pipcache"; touch "$m/etc/pip.conf"
    for d in $PIP_FIND_LINKS_DIR $PIP_EXTRA_INDEXES; do mkdir -p "$m${d%/simple}"; done
    buildah umount "$c" >/dev/null
    # What python:3.11-slim sets that matters here; its python is /usr/local/bin/python3.11, ours /usr/bin/python3.11.
    buildah config --env LANG=C.UTF-8 --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        --cmd python3.11 --label org.opencontainers.image.description="Debian bookworm + python3.11: a local \
stand-in for python:3.11-slim-bookworm" "$c"
    buildah commit -q --rm "$c" "$BASE"
    rm -rf "$ROOTFS"
}

build() {
    mkdir -p "$WORK"
    # pip inside the build (user voxloop, uid 1000) sees the host's sources through this pip.conf.
    local conf=$WORK/pip.conf indexes="" d
    for d in $PIP_EXTRA_INDEXES; do indexes+=" file://$d"; done
    {
        echo "[global]"
        echo "cert = /etc/pip-host/ca.crt"
        echo "default-timeout = 180"
        echo "disable-pip-version-check = true"
        echo "cache-dir = /pipcache"
        [ -d "$PIP_FIND_LINKS_DIR" ] && echo "find-links = $PIP_FIND_LINKS_DIR"
        [ -n "$indexes" ] && echo "extra-index-url =$indexes"
        [ -f "$PIP_CONSTRAINTS" ] && echo "constraint = /etc/pip-host/constraints.txt"
    } >"$conf"
    rm -rf "$WORK/pipcache"
    mkdir "$WORK/pipcache"
    [ -n "$HOST_PIP_CACHE" ] && [ -d "$HOST_PIP_CACHE" ] && cp -a "$HOST_PIP_CACHE"/. "$WORK/pipcache"/
    chown -R 1000:1000 "$WORK/pipcache"
    mkdir -p "$WORK/pip-host"
    cp "$HOST_CA" "$WORK/pip-host/ca.crt"
    [ -f "$PIP_CONSTRAINTS" ] && cp "$PIP_CONSTRAINTS" "$WORK/pip-host/constraints.txt"
    local mounts=(-v "$conf:/etc/pip.conf:ro" -v "$WORK/pip-host:/etc/pip-host:ro" -v "$WORK/pipcache:/pipcache")
    [ -d "$PIP_FIND_LINKS_DIR" ] && mounts+=(-v "$PIP_FIND_LINKS_DIR:$PIP_FIND_LINKS_DIR:ro")
    # An index's pages link to ../../files/, so mount the directory above simple/.
    for d in $PIP_EXTRA_INDEXES; do [ -d "$d" ] && mounts+=(-v "${d%/simple}:${d%/simple}:ro"); done
    local torch_arg=()
    [ -n "$LOCAL_TORCH_INDEX" ] && torch_arg=(--build-arg "TORCH_INDEX=$LOCAL_TORCH_INDEX")
    local t0=$SECONDS
    # --format docker: the OCI format has no HEALTHCHECK (buildah drops it with a warning); Docker builds this format.
    buildah bud --format docker --layers --network host "${mounts[@]}" \
        --build-arg "BASE_IMAGE=$BASE" "${torch_arg[@]}" \
        -t "$IMAGE" -f Dockerfile .
    echo "build: $((SECONDS - t0)) s"
    buildah images "$IMAGE"
    buildah inspect --type image --format '{{range .Docker.History}}{{.CreatedBy}}{{"\n"}}{{end}}' "$IMAGE" | tail -n 12
    rm -rf "$WORK/pipcache"
}

smoke() {
    local out=$WORK/smoke url=http://127.0.0.1:$PORT
    mkdir -p "$out"
    c=$(buildah from -q "$IMAGE")
    trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; buildah rm "$c" >/dev/null' EXIT
    local t0; t0=$(date +%s.%N)
    # The image's own CMD, user, workdir and ENV; loopback only, hence ALLOW_INSECURE_PUBLIC instead of an API key.
    buildah run --network host --env VOXLOOP_ALLOW_INSECURE_PUBLIC=true --env VOXLOOP_PORT="$PORT" "$c" \
        -- .venv/bin/voxloop serve >"$out/server.log" 2>&1 &
    pid=$!
    until curl -fsS "$url/health" >"$out/health.json" 2>/dev/null; do
        kill -0 "$pid" 2>/dev/null || { cat "$out/server.log"; echo "server exited"; return 1; }
        sleep 0.1
    done
    python3 -c "import sys,time; print(f'cold start to /health: {time.time() - float(sys.argv[1]):.1f} s')" "$t0"
    cat "$out/health.json"; echo
    # Readiness (the default models are present and loadable; they load on first use).
    curl -sS "$url/ready" -w '\nready: HTTP %{http_code}\n'
    curl -fsS "$url/v1/models" | python3 -c 'import json,sys; print([m["id"] for m in json.load(sys.stdin)["data"]])'
    local text="The quick brown fox jumps over the lazy dog."
    curl -fsS "$url/v1/audio/speech" -H 'Content-Type: application/json' -o "$out/speech.wav" \
        -w 'speech: %{time_total} s\n' \
        -d "{\"model\": \"piper\", \"voice\": \"alloy\", \"input\": \"$text\", \"response_format\": \"wav\"}"
    # A streamed wav's header has no length: the duration is the data after the 44-byte header.
    python3 - "$out/speech.wav" <<'EOF2'
import os, sys, wave
w = wave.open(sys.argv[1])
frames = (os.path.getsize(sys.argv[1]) - 44) / w.getsampwidth() / w.getnchannels()
print(f"{frames / w.getframerate():.2f} s of {w.getframerate()} Hz wav")
EOF2
    curl -fsS "$url/v1/audio/transcriptions" -F "file=@$out/speech.wav" -F model=whisper-1 -o "$out/transcript.json" \
        -w 'transcription: %{time_total} s\n'
    cat "$out/transcript.json"; echo
    python3 - "$out/transcript.json" <<'EOF2'
import json, sys
said = json.load(open(sys.argv[1]))["text"].lower()
missing = [w for w in "quick brown fox jumps over lazy dog".split() if w not in said]
print("transcript has every word" if not missing else f"transcript lacks {missing}")
sys.exit(1 if missing else 0)
EOF2
    # The embedded LLM: the llama-cpp-python build in the image loads and answers.
    curl -fsS "$url/v1/chat/completions" -H 'Content-Type: application/json' -w '\nchat: %{time_total} s\n' \
        -d '{"model": "smollm2-135m-instruct", "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 16}'
    # The Dockerfile's HEALTHCHECK command, run in a second container of the image (host network: same loopback).
    local hc; hc=$(buildah inspect --type image --format '{{.Docker.Config.Healthcheck.Test}}' "$IMAGE")
    echo "HEALTHCHECK: $hc"
    [ "$hc" != "[]" ] && [ -n "$hc" ] || { echo "image has no HEALTHCHECK"; return 1; }
    local c2; c2=$(buildah from -q "$IMAGE")
    buildah run --network host "$c2" -- python3 -c "import urllib.request; urllib.request.urlopen('$url/health')" \
        && echo "healthcheck command: ok"
    buildah run "$c2" -- sh -c 'echo "user $(id -u):$(id -g) ($(id -un)), HF_HUB_OFFLINE=$HF_HUB_OFFLINE"'
    # AVX-512 instructions (zmm registers) in the llama.cpp CPU backend: 0 unless built with -march=native on such a CPU.
    buildah run "$c2" -- sh -c 'echo "libggml-cpu zmm instructions: $(objdump -d --no-show-raw-insn \
        .venv/lib/python3.11/site-packages/llama_cpp/lib/libggml-cpu.so | grep -c zmm)"' || true
    buildah rm "$c2" >/dev/null
    # voxloop is the container's PID 1 and SIGTERM (STOPSIGNAL) reaches it, as with `docker stop`. (Signalling
    # `buildah run` itself would SIGKILL the container.) Its pid in the host's namespace: the newest `voxloop serve`.
    local vpid; vpid=$(pgrep -n -u 1000 -f '.venv/bin/voxloop serve')
    echo "server: host pid $vpid, container pid $(awk '/^NSpid/ {print $NF}' "/proc/$vpid/status")," \
        "uid $(awk '/^Uid/ {print $2}' "/proc/$vpid/status")"
    kill -TERM "$vpid"; wait "$pid" || true
    grep -o '"message": "[^"]*\(Shutting down\|Finished server process\)[^"]*"' "$out/server.log" || true
    # No network at all (--network none: only lo): the models come from the image, nothing is downloaded.
    cat >"$out/offline_check.py" <<'EOF2'
# Inside a container with no network (buildah run --network none): serve, then speech -> transcription and chat.
import json, os, subprocess, time, urllib.request

env = dict(os.environ, VOXLOOP_ALLOW_INSECURE_PUBLIC="true")
server = subprocess.Popen([".venv/bin/voxloop", "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
url = "http://127.0.0.1:8000"


def post(path, body, ctype="application/json"):
    if isinstance(body, dict):
        body = json.dumps(body).encode()
    req = urllib.request.Request(url + path, data=body, headers={"Content-Type": ctype})
    return urllib.request.urlopen(req, timeout=120).read()


try:
    for _ in range(300):
        try:
            urllib.request.urlopen(url + "/health", timeout=1)
            break
        except OSError:
            time.sleep(0.1)
    text = "Offline, no network at all."
    wav = post("/v1/audio/speech", {"model": "tts-1", "voice": "alloy", "input": text, "response_format": "wav"})
    b = "xVoxloopBoundary"
    form = (
        f'--{b}\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-base\r\n'
        f'--{b}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\nContent-Type: audio/wav\r\n\r\n'
    ).encode() + wav + f"\r\n--{b}--\r\n".encode()
    said = json.loads(post("/v1/audio/transcriptions", form, f"multipart/form-data; boundary={b}"))["text"]
    print("offline transcript (whisper-base):", said)
    messages = [{"role": "user", "content": "Hi"}]
    chat = post("/v1/chat/completions", {"model": "smollm2-135m-instruct", "messages": messages, "max_tokens": 8})
    chat = json.loads(chat)
    print("offline chat:", chat["choices"][0]["message"]["content"])
    print("network interfaces:", sorted(os.listdir("/sys/class/net")))
finally:
    server.terminate()
    server.wait()
EOF2
    local c3; c3=$(buildah from -q "$IMAGE")
    buildah run --network none -v "$out/offline_check.py:/tmp/offline_check.py:ro" "$c3" -- \
        python3 /tmp/offline_check.py
    buildah rm "$c3" >/dev/null
}

clean() {
    buildah rm -a >/dev/null 2>&1 || true
    buildah rmi "$IMAGE" "$BASE" >/dev/null 2>&1 || true
    buildah rmi --prune >/dev/null 2>&1 || true
    rm -rf "$WORK" "$ROOTFS"
}

case "${1:-all}" in
    base) base ;;
    build) build ;;
    smoke) smoke ;;
    clean) clean ;;
    all) base; build; smoke ;;
    *) echo "usage: $0 [base|build|smoke|clean|all]" >&2; exit 2 ;;
esac
