# civil-words: every target does its own set-up on a fresh clone (../shared beside it).
PYTHON ?= python3
VENV   ?= .venv
SHARED ?= ../shared
BIN    := $(VENV)/bin
MODEL  := model_store/civil-words.safetensors
# The test extras (and so the venv) are rebuilt when pyproject.toml changes.
STAMP  := $(VENV)/.installed

.PHONY: install serve test model lint fmt bench bench-smoke browser-deps clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

install: $(STAMP)

serve: $(STAMP)
	$(BIN)/civil-words serve

test: $(STAMP) browser-deps
	$(BIN)/python -m pytest

# Debian's Chromium for the browser test (Playwright's own browser download cannot work here).
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser test"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium wrk >/dev/null; }
	@command -v wrk >/dev/null 2>&1 || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }

model: $(STAMP)
	$(BIN)/civil-words train --words $(SHARED)/data/civil_mots.txt --out $(MODEL)

lint: $(STAMP)
	$(BIN)/ruff check service tests bench
	$(BIN)/ruff format --check service tests bench
	PATH="$(abspath $(BIN)):$$PATH" deploy/lint.sh

fmt: $(STAMP)
	$(BIN)/ruff format service tests bench
	$(BIN)/ruff check --fix service tests bench

# All benchmarks, one table (minutes); the smoke run (seconds) is part of `make test`.
bench: $(STAMP) browser-deps
	$(BIN)/python -m bench

bench-smoke: $(STAMP) browser-deps
	$(BIN)/python -m bench --smoke

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache artifacts
