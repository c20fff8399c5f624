# Two commands on a fresh machine: `make serve` (the app on http://127.0.0.1:$(PORT)) and `make test` (the suite).
PYTHON ?= python3
PORT ?= 8000
MODELS ?=
# The model `make serve` opens on with no network: SD 1.5's architecture at toy widths with seeded random weights
# (noise-like images, but every stage runs). Also `doppler generate`'s default (doppler/generate.py: DEFAULT_MODEL).
TINY_MODEL := build/models/tiny-random
VENV := .venv
BIN := $(VENV)/bin
PY_STAMP := $(VENV)/.installed-app
TEST_STAMP := $(VENV)/.installed-test
NPM_STAMP := node_modules/.installed
TINT_STAMP := tests/tint/node_modules/.installed
LAVAPIPE_ICD := /usr/share/vulkan/icd.d/lvp_icd.x86_64.json
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: serve test dist fixtures tiny-model system-deps clean

# MODELS (converted model folders) come first in the page's picker; the tiny model stays available after them.
serve: $(PY_STAMP) $(NPM_STAMP) $(TINY_MODEL)/manifest.json
	$(BIN)/doppler serve --port $(PORT) --models $(MODELS) $(TINY_MODEL)

test: system-deps $(TEST_STAMP) $(NPM_STAMP) $(TINT_STAMP)
	$(BIN)/python -m pytest

# The tiny SD 1.5-architecture model and diffusers' reference outputs, in tests/fixtures/generated/ (tests make it
# on first use too).
fixtures: $(TEST_STAMP)
	$(BIN)/python tests/fixtures/make_fixtures.py

dist: $(PY_STAMP) $(NPM_STAMP)
	$(BIN)/doppler dist dist $(if $(MODELS),--models $(MODELS))

tiny-model: $(TINY_MODEL)/manifest.json

# manifest.json appears once the whole folder is written (convert writes aside, then renames), so it is the stamp;
# a change to the converter or the manifest format makes the model again.
$(TINY_MODEL)/manifest.json: $(wildcard py/doppler/convert/*.py py/doppler/manifest/*.py) | $(PY_STAMP)
	$(BIN)/doppler convert --random tiny --seed 0 --force $(TINY_MODEL)

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

# Dawn's WGSL compiler for Node (tests/components/test_tint_compile.py), apart from node_modules/, which the app
# serves and the GPU machine's runs carry.
$(TINT_STAMP): tests/tint/package.json tests/tint/package-lock.json
	npm ci --prefix tests/tint --no-audit --no-fund --ignore-scripts
	touch $@

# Headless Chromium (WebGPU on SwiftShader) and lavapipe (Vulkan on the CPU, for wgpu-native), from Debian.
system-deps:
	@if ! command -v chromium >/dev/null || [ ! -e $(LAVAPIPE_ICD) ]; then \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium mesa-vulkan-drivers libvulkan1 >/dev/null; \
	fi

clean:
	rm -rf $(VENV) node_modules dist build
