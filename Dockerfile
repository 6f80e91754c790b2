# civil-words: production image (gunicorn serving the shipped bigram model on :8000).
#
#   docker build -t civil-words:1.0.0 .
#   docker run --rm -p 8000:8000 --read-only --tmpfs /tmp civil-words:1.0.0
#
# Two stages: the builder fills a virtualenv, the final stage copies only that venv and the
# model, so pip, build caches and the source tree stay out of the image.

# ---------------------------------------------------------------------------- builder
FROM python:3.11.13-slim-bookworm AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1

RUN python -m venv /opt/venv
ENV PATH="/opt/venv/bin:$PATH"

# torch first, from PyTorch's CPU-only index: PyPI's Linux x86_64 wheel of the same version is
# the CUDA build and drags in gigabytes of nvidia libraries. The version is the one pinned in
# pyproject.toml; the CPU wheel (2.13.0+cpu) then satisfies `torch==2.13.0` below.
RUN pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu torch==2.13.0

# Then the project with its pinned dependencies from PyPI (a regular, non-editable install, so
# the final stage needs no source tree). Copying only what the build reads keeps the torch
# layer cached across code changes.
WORKDIR /src
COPY pyproject.toml README.md ./
COPY service ./service
RUN pip install --no-cache-dir . \
    && civil-words --help > /dev/null

# ------------------------------------------------------------------------------ final
FROM python:3.11.13-slim-bookworm

LABEL org.opencontainers.image.title="civil-words" \
      org.opencontainers.image.description="Bigram language model of the French Code civil, over HTTP" \
      org.opencontainers.image.version="1.0.0" \
      org.opencontainers.image.licenses="MIT"

# A fixed numeric UID/GID, so Kubernetes' runAsNonRoot can verify it without a passwd lookup;
# the deployment's securityContext uses the same numbers.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin app

COPY --from=builder /opt/venv /opt/venv

# The shipped model, owned by root and read-only for the service user.
WORKDIR /app
COPY model_store/civil-words.safetensors /app/model_store/civil-words.safetensors

# PROMETHEUS_MULTIPROC_DIR lives under /tmp, the only place the service writes (`serve` creates
# and wipes it), so the root filesystem can be mounted read-only with a tmpfs on /tmp.
ENV PATH="/opt/venv/bin:$PATH" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MODEL_PATH=/app/model_store/civil-words.safetensors \
    PROMETHEUS_MULTIPROC_DIR=/tmp/metrics \
    HOST=0.0.0.0 \
    PORT=8000

USER 10001:10001

EXPOSE 8000

# No curl in the slim image: the venv's python asks /healthz itself (urlopen raises, so the
# check fails, on anything but a 2xx). Kubernetes ignores this and uses its own probes.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8000') + '/healthz', timeout=4)"]

# Exec form: gunicorn's master is PID 1 and receives SIGTERM itself for a graceful shutdown.
CMD ["civil-words", "serve"]
