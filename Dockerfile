# The travelrisk service: `docker build -t travelrisk .` then
# `docker run -p 8000:8000 -v travelrisk-data:/data travelrisk` (SQLite in /data), or see compose.yaml.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY risk_rules ./risk_rules
COPY models ./models
COPY service ./service
COPY migrations ./migrations
RUN pip install '.[postgres]' && rm -rf /src

RUN useradd --system --uid 10001 --create-home --home-dir /home/travelrisk travelrisk \
    && mkdir /data && chown travelrisk:travelrisk /data
USER travelrisk
WORKDIR /data
ENV TRAVELRISK_DATABASE_URL=sqlite:////data/travelrisk.db
VOLUME ["/data"]
EXPOSE 8000

# Ready means: database reachable and migrated, model loaded.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4)"]

CMD ["travelrisk", "serve", "--host", "0.0.0.0", "--port", "8000"]
