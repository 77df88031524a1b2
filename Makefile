# Mailwright entry points. Everything runs from the workspace venv in .venv,
# which `make install` builds from uv.lock (uv itself is bootstrapped into .tools/).
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV_VERSION := 0.13.9
UV := $(shell command -v uv 2>/dev/null || echo $(CURDIR)/.tools/bin/uv)
VENV := .venv
PY := $(VENV)/bin/python
BUF := node_modules/.bin/buf
PROTO_AREAS := common ingest profile segment render delivery

.PHONY: help install run run-distributed test pytest lint protos protos-check buf-lint buf-breaking bench bench-quick clean

help:
	@echo "make run         the main job: the platform embedded (SQLite, in-memory bus)"
	@echo "make test        the test suite"
	@echo "make lint        ruff, mypy, buf lint, stub drift"
	@echo "make protos      regenerate the Python stubs from protos/"
	@echo "make bench       every benchmark, one table of ratios"

$(CURDIR)/.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/pip install --quiet "uv==$(UV_VERSION)"

# Bytecode is compiled at install (the dependencies by uv, our packages by compileall): a
# fresh process then loads .pyc files instead of compiling sklearn, scipy, grpc and
# SQLAlchemy again, which matters where PYTHONDONTWRITEBYTECODE is set (a container, CI)
# and nothing is cached by the first run. Every benchmark server and test worker is such
# a process: it takes about 8 s of CPU off `make bench-quick`.
$(VENV)/.installed: Makefile $(UV) uv.lock pyproject.toml sdk/pyproject.toml $(wildcard services/*/pyproject.toml) $(wildcard plugins/*/pyproject.toml)
	$(UV) sync --frozen --all-packages --python python3.11 --compile-bytecode
	$(VENV)/bin/python -m compileall -q -j 0 sdk services plugins bench > /dev/null
	@touch $@

install: $(VENV)/.installed

$(BUF): package.json package-lock.json
	npm ci --silent --no-audit --no-fund
	@touch $@

run: install
	$(VENV)/bin/mailwright demo

run-distributed: install
	$(VENV)/bin/mailwright cluster

# The README's test command: lint (ruff, mypy, buf, stub drift), then the whole suite.
test: lint pytest

# Two workers by default (CI has 2 cores); each test file runs whole in one worker, so a
# module's fixtures start once. PYTEST_WORKERS=0 runs everything in this process.
PYTEST_WORKERS ?= 2
pytest: install
	$(PY) -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

lint: install $(BUF)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy sdk services plugins bench
	$(BUF) lint
	$(MAKE) protos-check

protos: install
	$(PY) tools/protos.py generate

protos-check: install
	$(PY) tools/protos.py check

buf-breaking: $(BUF)
	$(BUF) breaking --against '.git#branch=main'

bench: install
	$(PY) -m bench

bench-quick: install
	$(PY) -m bench --quick

clean:
	rm -rf $(VENV) .tools node_modules .mailwright
