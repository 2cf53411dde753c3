# Two commands are the whole set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck bench clean test-deps

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Tools some tests use from outside PyPI: Go's reference signed-note implementation (an independent checkpoint
# verifier). Installed when we are root and apt is there; otherwise those tests skip and say why.
test-deps:
	@if ! command -v go >/dev/null 2>&1 || [ ! -d /usr/share/gocode/src/golang.org/x/mod/sumdb/note ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go golang-golang-x-mod-dev) >/dev/null \
	      || echo "warning: could not install Go; the independent signed-note check will skip"; \
	  else echo "note: Go not installed and not root; the independent signed-note check will skip"; fi; \
	fi

# First start: a demo ledger on SQLite under ./var; then serve on 127.0.0.1:8000 (URLs are printed).
run: $(STAMP)
	$(BIN)/chainproof demo --if-empty
	$(BIN)/chainproof serve --host 127.0.0.1 --port 8000

test: $(STAMP) test-deps
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/ledger_bench.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
