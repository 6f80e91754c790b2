# civil-words: production image (gunicorn serving the shipped models on :8000).
#
#   make image                                   (podman or docker; see deploy/image/build.sh)
#   docker build -t civil-words:1.0.0 .
#   docker run --rm -p 127.0.0.1:8000:8000 --read-only --tmpfs /tmp civil-words:1.0.0
#
# Stages, ordered so that a code change rebuilds seconds of work, not the dependencies:
#   deps     a virtualenv with torch (CPU build) and the pinned dependencies of pyproject.toml
#   runtime  that venv less what the service never runs (pip, setuptools, tests, C++ headers)
#   project  the project itself, installed on its own beside the venv
#   final    the runtime venv + the project + the model; no RUN, so nothing a build step
#            mounted (the host's pip configuration, see deploy/image/) can leave a trace.

# ------------------------------------------------------------------------------- deps
FROM python:3.11.13-slim-bookworm AS deps

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1

RUN python -m venv /opt/venv
ENV PATH="/opt/venv/bin:$PATH"

# torch first, pinned to its CPU build: PyPI's Linux x86_64 wheel of the same version is the
# CUDA build and drags in gigabytes of nvidia libraries. The +cpu wheel comes from PyTorch's CPU
# index (or, where the host's pip configuration already holds it, from there: TORCH_INDEX is then
# empty) and satisfies pyproject.toml's `torch==2.13.0` below.
# (hadolint takes the optional `--extra-index-url` expansion for an unpinned package: DL3013.)
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
# hadolint ignore=DL3013
RUN pip install --no-cache-dir ${TORCH_INDEX:+--extra-index-url "$TORCH_INDEX"} torch==2.13.0+cpu

# Then the other pinned dependencies, read from pyproject.toml (no source code needed yet).
COPY pyproject.toml /tmp/pyproject.toml
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('/tmp/pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install --no-cache-dir -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt /tmp/pyproject.toml

# ---------------------------------------------------------------------------- runtime
FROM deps AS runtime

# What the service never runs: pip and setuptools (nothing is installed at run time), the test
# suites shipped inside dependencies (torch's C++ test binaries, numpy's, sympy's, networkx's),
# torch's C++ headers and CMake files (for compiling extensions; the image has no compiler) and
# its type stubs (.pyi, for type checkers).
# torch itself, sympy and the rest of its Python dependencies stay: torch imports them.
RUN site=/opt/venv/lib/python3.11/site-packages \
    && pip uninstall --yes --quiet pip setuptools \
    && rm -rf "$site/torch/test" "$site/torch/include" "$site/torch/share/cmake" \
              "$site"/torch/lib/lib*test*.so "$site/torch/lib/libbackend_with_compiler.so" \
              "$site/torch/lib/libaoti_custom_ops.so" \
    && find "$site/torch/bin" -mindepth 1 ! -name torch_shm_manager -exec rm -rf {} + \
    && find "$site" -depth -type d -name tests ! -path "$site/torch/*" -exec rm -rf {} + \
    && find "$site/torch" -name '*.pyi' -delete \
    && python -c "import torch, numpy, sympy; torch.multinomial(torch.ones(3), 1)"

# A fixed numeric UID/GID, so Kubernetes' runAsNonRoot can verify it without a passwd lookup;
# the deployment's securityContext uses the same numbers. Created here, copied below.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin app

# ---------------------------------------------------------------------------- project
FROM deps AS project

# A regular (non-editable) install of the project alone, into its own directory: copying only
# what the build reads keeps every layer above cached across code changes.
WORKDIR /src
COPY pyproject.toml README.md ./
COPY service ./service
RUN pip install --no-cache-dir --no-deps --target /opt/project/site-packages . \
    && mv /opt/project/site-packages/bin /opt/project/bin \
    && PYTHONPATH=/opt/project/site-packages /opt/project/bin/civil-words --help > /dev/null

# ------------------------------------------------------------------------------ final
FROM python:3.11.13-slim-bookworm

LABEL org.opencontainers.image.title="civil-words" \
      org.opencontainers.image.description="Character-level language models of the French Code civil, over HTTP" \
      org.opencontainers.image.version="1.0.0" \
      org.opencontainers.image.licenses="MIT"

# The base's users and groups, plus the service's (uid/gid 10001).
COPY --from=runtime /etc/passwd /etc/group /etc/
COPY --from=runtime /opt/venv /opt/venv
COPY --from=project /opt/project/site-packages/ /opt/venv/lib/python3.11/site-packages/
COPY --from=project /opt/project/bin/ /opt/venv/bin/

# The shipped models (the notebook's, the default, and the one `civil-words tune` picks), owned
# by root and read-only for the service user.
WORKDIR /app
COPY model_store/civil-words.safetensors model_store/civil-words-tuned.safetensors /app/model_store/

# PROMETHEUS_MULTIPROC_DIR lives under /tmp, the only place the service writes (`serve` creates
# and wipes it), so the root filesystem can be mounted read-only with a tmpfs on /tmp.
ENV PATH="/opt/venv/bin:$PATH" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MODEL_PATH=/app/model_store \
    DEFAULT_MODEL=civil-words \
    PROMETHEUS_MULTIPROC_DIR=/tmp/metrics \
    HOST=0.0.0.0 \
    PORT=8000

USER 10001:10001

EXPOSE 8000

# No curl in the slim image: the venv's python asks /healthz itself (urlopen raises, so the
# check fails, on anything but a 2xx). Kubernetes ignores this and uses its own probes; podman
# without systemd runs it on demand (`podman healthcheck run`).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8000') + '/healthz', timeout=4)"]

# Exec form: gunicorn's master is PID 1 and receives SIGTERM itself for a graceful shutdown.
CMD ["civil-words", "serve"]
