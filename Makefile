# batchpipe: every target works from a clean clone on a fresh Debian machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install system-deps test lint bench run clean

install: system-deps $(STAMP)

# Debian packages, installed when missing: FFmpeg; the X11/GL libraries the official Blender build (the bpy module,
# the render extra) loads even headless; Debian's own Blender, the second Blender the tests render with (--blender);
# python3-venv on a bare Debian; buildah and debootstrap, with which the image tests make a base image, build both
# container images from their Dockerfiles and run them (no Docker daemon or registry needed).
BPY_LIBS = libgl1 libsm6 libx11-6 libxext6 libxfixes3 libxi6 libxrender1 libxkbcommon0
IMAGE_TOOLS = buildah debootstrap
DEB_MISSING = $(shell for p in $(BPY_LIBS) $(IMAGE_TOOLS); do dpkg-query -W -f='$${db:Status-Abbrev}' $$p 2>/dev/null \
  | grep -q '^ii' || echo $$p; done)
DEB_NEEDED = $(strip $(if $(shell command -v blender),,blender) $(if $(shell command -v ffmpeg),,ffmpeg) \
  $(DEB_MISSING) $(if $(shell $(PYTHON) -c 'import ensurepip, venv' 2>/dev/null && echo ok),,python3-venv))

system-deps:
	@if [ -n "$(DEB_NEEDED)" ]; then \
	  echo "installing Debian packages: $(DEB_NEEDED)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(DEB_NEEDED); \
	fi

$(STAMP): pyproject.toml | system-deps
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,render]'
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
