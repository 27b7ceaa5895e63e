# flask-psp — the commands the README documents.
#   make demo        run the example shop with the PSP simulators (http://127.0.0.1:5000)
#   make test        the whole suite on SQLite;  make test DB=postgres  on PostgreSQL
#   make e2e         the real-browser suite (Debian's Chromium)
#   make bench       benchmarks; figures in bench/results.json

PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
DB     ?= sqlite
PG_URL ?= postgresql://postgres@127.0.0.1:5432/test
PYTEST_ARGS ?=

.PHONY: install demo test test-all e2e bench translations wheel clean

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

translations: install
	$(BIN)/pybabel extract -F babel.cfg -k _ -k gettext -k lazy_gettext -k ngettext:1,2 --no-location --sort-output \
	  -o flask_psp/translations/flask_psp.pot .
	$(BIN)/pybabel update -D flask_psp -i flask_psp/translations/flask_psp.pot -d flask_psp/translations --no-fuzzy-matching
	$(BIN)/pybabel compile -D flask_psp -d flask_psp/translations --statistics

wheel: install
	$(BIN)/python -m build --wheel --outdir dist .

clean:
	rm -rf $(VENV) build dist *.egg-info example_shop/instance test-artifacts
