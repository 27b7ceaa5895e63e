# flask-psp — the commands the README documents.
#   make demo        run the example shop with the PSP simulators (http://127.0.0.1:5000)
#   make test        the whole suite on SQLite;  make test DB=postgres  on PostgreSQL
#   make e2e         the real-browser suite (Playwright + Debian's Chromium); screenshots in test-artifacts/
#   make bench       benchmarks; figures in bench/results.json
#   make docs        the documentation site (Sphinx + MyST) into docs/_build/html, warnings as errors

PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
DB     ?= sqlite
PG_URL ?= postgresql://postgres@127.0.0.1:5432/test
PYTEST_ARGS ?=

.PHONY: install demo test test-all e2e bench docs translations wheel clean

$(VENV)/.installed: setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip setuptools wheel
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/python -m example_shop.demo

test: install
ifeq ($(DB),postgres)
	PSP_TEST_DATABASE_URL=$(PG_URL) $(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)
else
	$(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)
endif

test-all:
	$(MAKE) test DB=sqlite
	$(MAKE) test DB=postgres

# The real-browser suite: Playwright (from PyPI, the `e2e` extra) driving Debian's Chromium, never a
# browser that Playwright downloads (`playwright install` is not used). Installs what it lacks itself;
# whatever is still missing makes it fail, never skip. Screenshots: test-artifacts/;
# `make e2e UPDATE_SCREENSHOTS=1` also refreshes the README's docs/screenshots/.
CHROMIUM ?= /usr/bin/chromium
SUDO    := $(if $(filter 0,$(shell id -u)),,sudo)

$(VENV)/.installed-e2e: $(VENV)/.installed setup.cfg pyproject.toml
	$(BIN)/python -m pip install -q -e '.[test,e2e]'
	touch $@

e2e: $(VENV)/.installed-e2e
	@if [ ! -x $(CHROMIUM) ] && [ "$(CHROMIUM)" = /usr/bin/chromium ]; then \
	  echo "== installing Debian's chromium"; \
	  $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q chromium; \
	fi
	@test -x $(CHROMIUM) || { echo "make e2e: no Chromium at $(CHROMIUM) (apt-get install -y chromium)" >&2; exit 1; }
	PSP_E2E_CHROMIUM=$(CHROMIUM) PSP_E2E_UPDATE_SCREENSHOTS=$(UPDATE_SCREENSHOTS) \
	  $(BIN)/python -m pytest -q -p no:cacheprovider e2e $(PYTEST_ARGS)

# the benchmarks own their database (emptied at each run): `bench` unless PG_URL is given
BENCH_PG_URL = $(if $(filter command line environment environment override,$(origin PG_URL)),$(PG_URL),postgresql://postgres@127.0.0.1:5432/bench)

$(VENV)/.bench-installed: $(VENV)/.installed setup.cfg
	$(BIN)/python -m pip install -q -e '.[test,bench]'
	touch $@

bench: install $(VENV)/.bench-installed
	PG_URL=$(BENCH_PG_URL) $(BIN)/python -m bench.run

# The documentation: Sphinx with MyST Markdown pages under docs/ (the `docs` extra, installed here).
# A fresh build each time (no stale page of a moved file; -E: every page's warnings show); -W --keep-going: all warnings, then
# fail; -n: every cross-reference and API name must resolve.
$(VENV)/.installed-docs: $(VENV)/.installed setup.cfg pyproject.toml
	$(BIN)/python -m pip install -q -e '.[docs]'
	touch $@

docs: $(VENV)/.installed-docs
	rm -rf docs/_build/html
	$(BIN)/python -m sphinx -E -W --keep-going -n -q -b html docs docs/_build/html
	@echo "docs: docs/_build/html/index.html"

translations: install
	$(BIN)/pybabel extract -F babel.cfg -k _ -k gettext -k lazy_gettext -k ngettext:1,2 --no-location --sort-output \
	  -o flask_psp/translations/flask_psp.pot .
	$(BIN)/pybabel update -D flask_psp -i flask_psp/translations/flask_psp.pot -d flask_psp/translations --no-fuzzy-matching
	$(BIN)/pybabel compile -D flask_psp -d flask_psp/translations --statistics

wheel: install
	$(BIN)/python -m build --wheel --outdir dist .

clean:
	rm -rf $(VENV) build dist *.egg-info example_shop/instance test-artifacts docs/_build
