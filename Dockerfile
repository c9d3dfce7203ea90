# One image for every process: inventory worker | beat | web | metrics.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
RUN useradd --create-home --uid 10001 inventory
WORKDIR /app
COPY pyproject.toml README.md ./
COPY inventory ./inventory
RUN pip install . && rm -rf /root/.cache
COPY config ./config
USER inventory
ENV INVENTORY_CONFIG=/app/config/default.yaml
EXPOSE 8080 8099
ENTRYPOINT ["inventory"]
CMD ["--help"]
