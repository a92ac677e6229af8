# report-ingest: `make demo` runs the whole pipeline offline, `make test` runs the suite.
# Both install what is missing first.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test system-deps services-up services-down bench clean

demo: system-deps $(STAMP)
	$(VENV)/bin/report-ingest demo

test: system-deps $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadfile

# Debian packages the services need (Redis server, Maven to fetch Elasticsearch, Java 21+ must already be there).
system-deps:
	@command -v redis-server >/dev/null && command -v mvn >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq redis-server maven >/dev/null; \
	  else echo "install redis-server and maven (sudo apt-get install redis-server maven)" >&2; exit 1; fi; }

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	touch $(STAMP)

services-up: system-deps $(STAMP)
	$(VENV)/bin/report-ingest services up

services-down: $(STAMP)
	$(VENV)/bin/report-ingest services down

BENCH_STAMP := $(VENV)/.installed-bench

$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install -q -e ".[test,bench]"
	touch $(BENCH_STAMP)

# The head-to-head needs nginx for its fast site (it falls back to a Python server without it).
bench: system-deps $(BENCH_STAMP)
	@command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || [ "$$(id -u)" != 0 ] || { apt-get update -qq && apt-get install -y -qq nginx-light >/dev/null; }
	$(PY) benchmarks/parse.py
	$(PY) benchmarks/pipeline.py
	$(PY) benchmarks/pdf.py
	$(PY) benchmarks/headtohead.py
	$(PY) benchmarks/scale.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
