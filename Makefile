# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
WAREHOUSE ?= warehouse
REPORTS ?= reports
PYTEST_WORKERS ?= 2
EXTRAS ?= dev

.PHONY: venv demo test test-fast lint typecheck bench bench-spark notebooks lab clean

$(BIN)/.installed-$(EXTRAS): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[$(EXTRAS)]'
	@# gbstats (GrowthBook's stats engine, a test reference) pins pandas<2 and numpy<2 in its
	@# metadata although the modules the tests use work with both: installed without its pins.
	case ',$(EXTRAS),' in *,dev,*) $(BIN)/pip install --quiet --no-deps 'gbstats==0.8.0' ;; esac
	touch $@

venv: $(BIN)/.installed-$(EXTRAS)

DEMO_REPORT_DAYS ?= 3

demo: venv  ## synthetic warehouse (two weeks after two weeks of pre-period) + the daily reports of its last 3 days and the last day's deep dive; prints the history page
	$(BIN)/expkit demo --pre-days 14 --warehouse $(WAREHOUSE) --out $(REPORTS)
	@# the days before the last, so the history page and the day links have something to show
	for day in $$($(BIN)/python -c 'import datetime as dt; from expkit.cli_options import DEMO_END; \
	    print(*(DEMO_END - dt.timedelta(days=i) for i in range(1, $(DEMO_REPORT_DAYS))))'); do \
	  $(BIN)/expkit daily --quiet --warehouse $(WAREHOUSE) --out $(REPORTS) --date $$day || exit $$?; \
	done
	$(BIN)/expkit deepdive --quiet --warehouse $(WAREHOUSE) --out $(REPORTS) \
	  --date $$($(BIN)/python -c 'from expkit.cli_options import DEMO_END; print(DEMO_END)') >/dev/null
	@echo "history of the reports: $(abspath $(REPORTS))/index.html"

test: venv  ## lint, type check, then every test (slow end-to-end ones included)
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/mypy
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadgroup --durations=30

test-fast: venv  ## unit tests only
	$(BIN)/pytest -n $(PYTEST_WORKERS) -m "not slow"

lint: venv
	$(BIN)/ruff check src tests benchmarks scripts

typecheck: venv  ## mypy over src/expkit as configured in pyproject.toml ([tool.mypy]; strict for expkit.stats)
	$(BIN)/mypy

bench: venv  ## performance benchmarks at 1M and 10M impressions/day (figures appended to docs/benchmarks.md); LARGE=1 adds 100M
	$(BIN)/python benchmarks/run_all.py --record $(if $(LARGE),--large,)

bench-spark:  ## a day's rollup on a 2-worker Spark cluster (started on 127.0.0.1) vs DuckDB, 1M and 10M impressions (tens of minutes)
	$(MAKE) venv EXTRAS=dev,spark
	$(VENV)/bin/python benchmarks/bench_spark_cluster.py --sizes 1m 10m --record

notebooks: venv  ## regenerate the thin tile notebooks from the tile registry
	$(BIN)/python scripts/make_notebooks.py

LAB_PORT ?= 8888

lab:  ## install the lab extra (JupyterLab) into $(VENV) and start it on notebooks/ at 127.0.0.1:$(LAB_PORT); prints the URL
	@$(BIN)/python -c 'import jupyterlab' 2>/dev/null || $(MAKE) --no-print-directory venv EXTRAS=$(EXTRAS),lab
	@token=$$($(BIN)/python -c 'import secrets; print(secrets.token_hex(16))'); \
	echo "JupyterLab on notebooks/: http://127.0.0.1:$(LAB_PORT)/lab?token=$$token (Ctrl-C stops it)"; \
	exec $(BIN)/jupyter lab --no-browser --allow-root --ip=127.0.0.1 --port=$(LAB_PORT) \
	  --ServerApp.port_retries=0 --ServerApp.root_dir=notebooks --IdentityProvider.token=$$token

clean:
	rm -rf $(WAREHOUSE) $(REPORTS)/20* $(REPORTS)/index.html .pytest_cache test-artifacts
