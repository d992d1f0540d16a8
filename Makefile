# The front door. `make` lists the targets; the README's two commands are `make demo` and `make test`.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch goes in first, and only when the environment has none, so a CUDA build you installed stays.
# The default pins a release; on Linux PyPI serves it with CUDA, on this project's CPU machines a
# CPU wheel. Pick another build with e.g. TORCH="torch --index-url https://download.pytorch.org/whl/cu126"
TORCH ?= torch==2.13.0
PROFILE ?= demo
ARGS ?=

.PHONY: help install demo test lab bench browser clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-9s %s\n", $$1, $$2}'

install: $(VENV)/.installed ## create .venv, install mer_lib with all extras, register the Jupyter kernel

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install $(TORCH)
	$(BIN)/pip install -e ".[all]"
	$(BIN)/python -m mer_lib.kernel
	touch $@

demo: install ## run the whole notebook sequence on the demo data (PROFILE=mer2024 for the paper run)
	$(BIN)/python -m mer_lib.reproduce --profile $(PROFILE) $(ARGS)

test: install ## run the test suite
	$(BIN)/python -m pytest $(ARGS)

lab: install ## open JupyterLab on the notebooks
	$(BIN)/jupyter lab notebooks/

bench: install ## run the benchmarks (prints figures and ratios)
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b; done

browser: ## install Debian's Chromium, pdffonts and a CJK font for the tests that need them (root; CI does this)
	apt-get install -y chromium poppler-utils fonts-noto-cjk

clean: ## remove run folders and the generated demo data
	rm -rf runs/ data/demo data/.demo.partial
