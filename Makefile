# batchpipe: every target works from a clean clone on a fresh Debian machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install system-deps test lint bench run clean

install: system-deps $(STAMP)

# Debian packages the pipelines run: Blender and FFmpeg (and python3-venv on a bare Debian), installed when missing.
DEB_NEEDED = $(strip $(if $(shell command -v blender),,blender) $(if $(shell command -v ffmpeg),,ffmpeg) \
  $(if $(shell $(PYTHON) -c 'import ensurepip, venv' 2>/dev/null && echo ok),,python3-venv))

system-deps:
	@if [ -n "$(DEB_NEEDED)" ]; then \
	  echo "installing Debian packages: $(DEB_NEEDED)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(DEB_NEEDED); \
	fi

$(STAMP): pyproject.toml | system-deps
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

test: install
	$(BIN)/pytest -q

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

bench: install
	$(BIN)/python bench/run.py

run: install
	$(BIN)/batchpipe run montecarlo examples/portfolio.json --local

clean:
	rm -rf $(VENV) batchpipe-runs .pytest_cache .mypy_cache .ruff_cache
