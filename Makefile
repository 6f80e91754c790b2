# civil-words: every target does its own set-up on a fresh clone (../shared beside it).
PYTHON ?= python3
VENV   ?= .venv
SHARED ?= ../shared
BIN    := $(VENV)/bin
MODEL  := model_store/civil-words.safetensors
# The counting model that `civil-words tune` picks on the corpus (a held-out tenth), shipped too.
TUNED  := model_store/civil-words-tuned.safetensors
# `make serve` serves both shipped models, the notebook's by default.
SERVE_ENV := MODEL_PATH=model_store DEFAULT_MODEL=civil-words
# The test extras (and so the venv) are rebuilt when pyproject.toml changes.
STAMP  := $(VENV)/.installed

# The image is built with podman (or docker: ENGINE=docker); podman on our Debian VMs needs the
# settings in deploy/image/containers.conf (runc, open-file limits), given here, not in /etc.
export CONTAINERS_CONF ?= $(CURDIR)/deploy/image/containers.conf

.PHONY: install serve test test-fast model lint fmt bench bench-smoke browser-deps image-deps image \
	image-test clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

install: $(STAMP)

serve: $(STAMP)
	$(SERVE_ENV) $(BIN)/civil-words serve

# The whole suite, the image's tests (tests/test_image.py: build, run, stop) and the real
# Prometheus's (tests/test_prometheus.py) included.
test: $(STAMP) browser-deps image-deps
	$(BIN)/python -m pytest

# The fast tier: what runs in the test process alone, no server, browser, image or other process
# (tests/conftest.py says which are `slow`); under a minute.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not server and not slow"

# Debian's Chromium for the browser test (Playwright's own browser download cannot work here).
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser test"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium wrk >/dev/null; }
	@command -v wrk >/dev/null 2>&1 || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }

# Debian's podman, runc and mmdebstrap build and run the image (mmdebstrap makes the base image
# where it cannot be pulled); catatonit is the pause process of the pods `podman kube play`
# makes (a podman recommendation, which --no-install-recommends leaves out); Debian's
# prometheus brings the server and promtool for the monitoring tests. Installed only when
# missing and apt-get is there (a Docker laptop skips it).
IMAGE_TOOLS := podman:podman runc:runc mmdebstrap:mmdebstrap catatonit:catatonit \
	prometheus:prometheus promtool:prometheus
image-deps:
	@missing=""; for t in $(IMAGE_TOOLS); do \
	  command -v $${t%%:*} >/dev/null 2>&1 || missing="$$missing $${t##*:}"; done; \
	if [ -n "$$missing" ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing Debian's$$missing for the image and monitoring tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends $$(echo $$missing | tr ' ' '\n' | sort -u) \
	    buildah uidmap slirp4netns fuse-overlayfs >/dev/null; fi

# The production image, civil-words:<version> (deploy/image/build.sh: podman or docker).
image: image-deps
	deploy/image/build.sh

# Builds the image (cached: seconds), runs it as a cluster would, and plays the rendered
# manifests (base, several-models) with `podman kube play`: tests/test_image.py.
image-test: $(STAMP) image-deps
	$(BIN)/python -m pytest tests/test_image.py

# Both with --language fr: their lexicon is wordfreq's French plus their training words (recorded
# in the config; the version, derived from the tensors, stays).
model: $(STAMP)
	$(BIN)/civil-words train --words $(SHARED)/data/civil_mots.txt --language fr --out $(MODEL)
	$(BIN)/civil-words tune --words $(SHARED)/data/civil_mots.txt --holdout 0.1 --language fr --out $(TUNED)

lint: $(STAMP)
	$(BIN)/ruff check service tests bench deploy
	$(BIN)/ruff format --check service tests bench deploy
	PATH="$(abspath $(BIN)):$$PATH" deploy/lint.sh

fmt: $(STAMP)
	$(BIN)/ruff format service tests bench deploy
	$(BIN)/ruff check --fix service tests bench deploy

# All benchmarks, one table (minutes); the smoke run (seconds) is part of `make test`.
bench: $(STAMP) browser-deps
	$(BIN)/python -m bench

bench-smoke: $(STAMP) browser-deps
	$(BIN)/python -m bench --smoke

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache artifacts
