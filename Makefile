# Two commands do everything: `make run` starts the app, `make test` runs the whole suite.
# Both create .venv if it is missing and (re)install requirements only when a requirements file changed.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8501
RUNTIME_REQS := requirements.txt requirements-meters.txt
TEST_REQS := $(RUNTIME_REQS) requirements-test.txt

.PHONY: run test setup setup-test browser bench clean

run: $(VENV)/.runtime-installed
	$(PY) -m streamlit run app.py --server.port $(PORT)

test: $(VENV)/.test-installed browser
	$(PY) -m pytest

setup: $(VENV)/.runtime-installed

setup-test: $(VENV)/.test-installed browser

bench: $(VENV)/.runtime-installed
	$(PY) -m explorer bench

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.runtime-installed: $(RUNTIME_REQS) pyproject.toml | $(PY)
	$(PY) -m pip install --quiet $(addprefix -r ,$(RUNTIME_REQS))
	$(PY) -m pip install --quiet --no-deps --editable .
	touch $@

$(VENV)/.test-installed: $(TEST_REQS) $(VENV)/.runtime-installed
	$(PY) -m pip install --quiet $(addprefix -r ,$(TEST_REQS))
	touch $@

# Browser tests drive Debian's Chromium through Playwright (Playwright's own browser download cannot work offline).
browser:
	@test -x /usr/bin/chromium || { \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "Browser tests need Chromium at /usr/bin/chromium (Debian: sudo apt-get install chromium); they will be skipped."; fi; }

clean:
	rm -rf $(VENV) .pytest_cache
