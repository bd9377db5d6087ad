# gamebus: the two commands a new user runs are `make demo` and `make test`.
# Everything they need is installed here: Python packages into .venv, Debian
# packages (nats-server, redis-server, chromium, firefox-esr) with apt-get when missing.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
APT_PACKAGES := nats-server redis-server chromium firefox-esr
NPM_STAMP := demo-client/node_modules/.installed

.PHONY: all venv system-deps npm-deps demo-model test test-fast lint demo bench loadtest clean

all: test

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,bench]'
	touch $(STAMP)

venv: $(STAMP)

# apt-get only when something is missing, so repeated runs stay offline and fast.
system-deps:
	@missing=""; \
	for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

$(NPM_STAMP): demo-client/package.json
	cd demo-client && npm install --no-audit --no-fund --silent
	touch $(NPM_STAMP)

npm-deps: $(NPM_STAMP)

# The demo's cached anti-cheat model, trained once per gamebus version (the
# demo itself would train it on its first start, beside the running system).
demo-model: venv
	$(PY) -m gamebus.demo.model

lint: venv
	$(VENV)/bin/ruff check gamebus relay anticheat tests loadtests
	$(VENV)/bin/mypy

test: venv system-deps npm-deps lint demo-model
	$(VENV)/bin/pytest -q -p no:cacheprovider

test-fast: venv
	$(VENV)/bin/pytest -q -x -m "not slow and not browser"

demo: venv npm-deps
	$(VENV)/bin/gamebus demo $(DEMO_ARGS)

bench: venv system-deps
	$(PY) -m loadtests.bench

loadtest: venv
	$(PY) -m loadtests.run

clean:
	rm -rf $(VENV) demo-client/node_modules .pytest_cache .mypy_cache .ruff_cache
