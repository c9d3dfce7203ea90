# One image for every process: inventory worker | beat | web | metrics | events.
# The base is pinned to a Python patch release on a Debian release; to pin its digest too, add
# the one `docker buildx imagetools inspect python:3.11.11-slim-bookworm` shows you (@sha256:...).
FROM python:3.11.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN useradd --create-home --uid 10001 --user-group inventory
WORKDIR /app

# Dependencies before the code: this layer is rebuilt only when a lock file changes. Every
# package is pinned with its hash (requirements/image.txt, made by scripts/lock).
COPY requirements/build.txt requirements/image.txt ./requirements/
RUN pip install --require-hashes --no-deps -r requirements/build.txt \
    && pip install --require-hashes --no-deps -r requirements/image.txt

COPY pyproject.toml README.md ./
COPY inventory ./inventory
RUN pip install --no-deps --no-build-isolation . && pip check
COPY config ./config

USER 10001:10001
ENV INVENTORY_CONFIG=/app/config/default.yaml \
    INVENTORY_HEALTH__HEARTBEAT_PATH=/tmp/inventory.alive
EXPOSE 8080 8099
# Every long-running command touches the heartbeat file from its working loop; no broker call.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["inventory", "health"]
# dumb-init is PID 1: it forwards SIGTERM to inventory (a warm shutdown) and reaps children.
ENTRYPOINT ["dumb-init", "--", "inventory"]
CMD ["--help"]
