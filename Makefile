# Two commands do everything: `make run` starts the app, `make test` runs the whole suite.
# Both create .venv if it is missing and (re)install requirements only when a requirements file changed.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8501
RUNTIME_REQS := requirements.txt requirements-meters.txt
TEST_REQS := $(RUNTIME_REQS) requirements-test.txt
# requirements.txt as this machine installs it: the same file, except that where pip's configured index serves
# torch's CPU build itself (`torch==2.13.0+cpu`: this project's machines, which cannot reach download.pytorch.org),
# its direct-URL torch lines become that pin, markers kept. Elsewhere the URLs stay (see requirements.txt).
HERE_REQS := $(VENV)/requirements-here.txt
TORCH_URL := ^torch @ https://download\.pytorch\.org/whl/cpu/torch-([^-%]+)%2Bcpu-[^ ;]*

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

$(HERE_REQS): requirements.txt | $(PY)
	@version=$$(sed -nE 's|$(TORCH_URL).*|\1|p' requirements.txt | head -n 1); \
	if [ -n "$$version" ] && \
	   $(PY) -m pip install --quiet --dry-run --no-deps "torch==$$version+cpu" >/dev/null 2>&1; then \
	  echo "torch $$version+cpu comes from pip's configured index (in place of download.pytorch.org)"; \
	  sed -E 's|$(TORCH_URL)|torch==\1+cpu|' requirements.txt > $@; \
	else cp requirements.txt $@; fi

$(VENV)/.runtime-installed: $(RUNTIME_REQS) $(HERE_REQS) pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -r $(HERE_REQS) -r requirements-meters.txt
	$(PY) -m pip install --quiet --no-deps --editable .
	touch $@

$(VENV)/.test-installed: $(TEST_REQS) $(VENV)/.runtime-installed
	$(PY) -m pip install --quiet -r $(HERE_REQS) -r requirements-meters.txt -r requirements-test.txt
	touch $@

# Browser tests drive Debian's Chromium through Playwright (Playwright's own browser download cannot work offline).
browser:
	@test -x /usr/bin/chromium || { \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "Browser tests need Chromium at /usr/bin/chromium (Debian: sudo apt-get install chromium); they will be skipped."; fi; }

clean:
	rm -rf $(VENV) .pytest_cache
