# The travelrisk service: `docker build -t travelrisk .` then
# `docker run -p 8000:8000 -v travelrisk-data:/data travelrisk` (SQLite and models in /data), or see compose.yaml.
#
# Dependencies come from requirements.lock, pinned with hashes and refreshed on purpose (README: "The image").
# Its Python version is the one the lock was resolved for.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# The locked dependencies first: this layer is rebuilt only when the lock changes.
COPY requirements.lock ./
RUN pip install --require-hashes --no-deps -r requirements.lock
COPY pyproject.toml README.md ./
COPY risk_rules ./risk_rules
COPY models ./models
COPY service ./service
COPY migrations ./migrations
# The project itself, with nothing resolved beyond the lock; `pip check` fails the build if the lock lacks a dependency.
RUN pip install --no-deps . && pip check && rm -rf /src

# /data holds the SQLite database and refitted models; both must be writable by the service's user.
RUN useradd --system --uid 10001 --create-home --home-dir /home/travelrisk travelrisk \
    && mkdir -p /data/models && chown -R 10001:10001 /data
USER 10001
WORKDIR /data
ENV TRAVELRISK_DATABASE_URL=sqlite:////data/travelrisk.db \
    TRAVELRISK_MODEL_DIR=/data/models \
    TRAVELRISK_HOST=0.0.0.0 \
    TRAVELRISK_PORT=8000
VOLUME ["/data"]
EXPOSE 8000

# Ready means: database reachable and migrated, model loaded. The port is the one the service is configured
# with (TRAVELRISK_PORT, or a .env file in /data), read through the service's own settings.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; from service.settings import get_settings; urllib.request.urlopen(f'http://127.0.0.1:{get_settings().port}/readyz', timeout=4)"]

CMD ["travelrisk", "serve"]
