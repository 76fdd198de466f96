# The production image: one image for every process (web, worker, scheduler, migrations);
# compose.yaml and the README's "Production deployment" say which command runs what.
#   docker build -t postline .
# Packages: requirements-production.lock only (no test, lint or development package);
# DEBUG off, a user without a shell or write access to the code, static files collected here.

FROM python:3.12-slim AS packages
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY requirements-production.lock /tmp/requirements-production.lock
# Exact pins, no resolving: the lock holds every package; `pip check` fails the build if not.
RUN python -m venv /venv \
    && /venv/bin/pip install --no-deps -r /tmp/requirements-production.lock \
    && /venv/bin/pip check

FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/venv/bin:$PATH \
    DEBUG=false \
    LOG_FORMAT=json \
    STATIC_ROOT=/app/staticfiles \
    PROMETHEUS_MULTIPROC_DIR=/tmp/postline-metrics
RUN groupadd --system --gid 10001 postline \
    && useradd --system --uid 10001 --gid postline --home-dir /nonexistent --no-create-home \
       --shell /usr/sbin/nologin postline
COPY --from=packages /venv /venv
WORKDIR /app
# Owned by root: the application cannot change its own code or static files.
COPY . .
# collectstatic with production settings (whitenoise's compressed, hashed files). It reads no
# database and no secret; the settings just refuse to load without them, so placeholders that
# live only in this step.
RUN SECRET_KEY=collectstatic-only FIELD_ENCRYPTION_KEYS=Y29sbGVjdHN0YXRpYy1vbmx5LXBsYWNlaG9sZGVyISE= \
    TIKTOK_AUTH_URL=https://tiktok.invalid/ TIKTOK_API_BASE_URL=https://tiktok.invalid \
    TIKTOK_CLIENT_SECRET=collectstatic-only S3_SECRET_ACCESS_KEY=collectstatic-only \
    EMAIL_BACKEND=django.core.mail.backends.dummy.EmailBackend \
    python manage.py collectstatic --noinput --verbosity 0
USER 10001:10001
EXPOSE 8000
# /healthz answers by address without touching a dependency (apps/common/health.py); the
# worker and scheduler run `manage.py healthcheck` instead (compose.yaml).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"]
CMD ["gunicorn", "-c", "config/gunicorn.py", "config.wsgi"]
