# Two commands on a fresh machine: `make serve` (the app on http://127.0.0.1:$(PORT)) and `make test` (the suite).
PYTHON ?= python3
PORT ?= 8000
MODELS ?=
VENV := .venv
BIN := $(VENV)/bin
PY_STAMP := $(VENV)/.installed-app
TEST_STAMP := $(VENV)/.installed-test
NPM_STAMP := node_modules/.installed
LAVAPIPE_ICD := /usr/share/vulkan/icd.d/lvp_icd.x86_64.json
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: serve test dist fixtures system-deps clean

serve: $(PY_STAMP) $(NPM_STAMP)
	$(BIN)/doppler serve --port $(PORT) $(if $(MODELS),--models $(MODELS))

test: system-deps $(TEST_STAMP) $(NPM_STAMP)
	$(BIN)/python -m pytest

# The tiny SD 1.5-architecture model and diffusers' reference outputs, in tests/fixtures/generated/ (tests make it
# on first use too).
fixtures: $(TEST_STAMP)
	$(BIN)/python tests/fixtures/make_fixtures.py

dist: $(PY_STAMP) $(NPM_STAMP)
	$(BIN)/doppler dist dist $(if $(MODELS),--models $(MODELS))

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(PY_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[native]'
	touch $@

# torch first, pinned to the local CPU wheel: an unpinned `torch` (e.g. from diffusers) would pull a CUDA build.
$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[native,convert,test]'
	touch $(PY_STAMP) $@

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

# Headless Chromium (WebGPU on SwiftShader) and lavapipe (Vulkan on the CPU, for wgpu-native), from Debian.
system-deps:
	@if ! command -v chromium >/dev/null || [ ! -e $(LAVAPIPE_ICD) ]; then \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium mesa-vulkan-drivers libvulkan1 >/dev/null; \
	fi

clean:
	rm -rf $(VENV) node_modules dist build
