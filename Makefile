# Two commands are the whole set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck bench clean test-deps mutate

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# setuptools notes on every editable install that local folders shadow installed packages (they are the
	# package here): silenced, so that the install prints nothing it does not need to
	PYTHONWARNINGS='ignore:Editable installation' $(BIN)/python -m pip install --quiet -e '.[dev]'
	# an editable install leaves our own modules uncompiled (a wheel install compiles them): compiled here, so a
	# CLI start does not compile them again where PYTHONDONTWRITEBYTECODE keeps Python from caching them
	$(BIN)/python -m compileall -q ledger api cli certificates > /dev/null
	touch $(STAMP)

# Tools some tests use from outside PyPI, from Debian's packages: Go's reference signed-note implementation (an
# independent checkpoint verifier), Chromium (product pages in a real browser), zbarimg (QR round trip), Node
# (the in-browser verifier's unit tests) and nginx (published tiles served by a plain static web server).
# Installed when we are root and apt is there; otherwise those tests skip and say why.
TEST_TOOLS_MISSING = $(shell \
	command -v go >/dev/null 2>&1 && test -d /usr/share/gocode/src/golang.org/x/mod/sumdb/note || echo "golang-go golang-golang-x-mod-dev"; \
	test -x /usr/bin/chromium || echo chromium; \
	command -v zbarimg >/dev/null 2>&1 || echo zbar-tools; \
	command -v node >/dev/null 2>&1 || echo nodejs; \
	test -x /usr/sbin/nginx || echo nginx-light)

test-deps:
	@if [ -n "$(strip $(TEST_TOOLS_MISSING))" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing test tools: $(strip $(TEST_TOOLS_MISSING))"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(TEST_TOOLS_MISSING)) >/dev/null \
	      || echo "warning: could not install $(strip $(TEST_TOOLS_MISSING)); the tests that need them will skip"; \
	  else echo "note: not root: $(strip $(TEST_TOOLS_MISSING)) not installed; the tests that need them will skip"; fi; \
	fi

# First start: a demo ledger on SQLite under ./var; then serve on 127.0.0.1:$(PORT) (URLs are printed, with the
# real port: make run PORT=8100).
PORT ?= 8000
run: $(STAMP)
	CHAINPROOF_DATA_DIR=./var CHAINPROOF_PUBLIC_URL=http://127.0.0.1:$(PORT) $(BIN)/chainproof demo --if-empty
	CHAINPROOF_DATA_DIR=./var CHAINPROOF_PUBLIC_URL=http://127.0.0.1:$(PORT) $(BIN)/chainproof serve --host 127.0.0.1 --port $(PORT)

test: $(STAMP) test-deps
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

# Mutation testing of ledger/merkle.py, ledger/rules.py and ledger/verify.py (slow; not part of make test):
# prints each surviving mutant and the score, killed / all.
mutate: $(STAMP)
	rm -rf mutants
	$(BIN)/mutmut run --max-children 2 || true
	$(BIN)/python bench/mutation_score.py

bench: $(STAMP)
	$(BIN)/python bench/ledger_bench.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache mutants
