#!/usr/bin/env bash
# `make dev`: the web server, a worker, the scheduler and the fake TikTok, stopped together.
set -euo pipefail
PY=${PY:-.venv/bin/python}
PORT=${PORT:-8000}
FAKE_PORT=${FAKE_PORT:-8765}
export TIKTOK_AUTH_URL=${TIKTOK_AUTH_URL:-http://localhost:$FAKE_PORT/v2/auth/authorize/}
export TIKTOK_API_BASE_URL=${TIKTOK_API_BASE_URL:-http://127.0.0.1:$FAKE_PORT}
trap 'kill 0' EXIT INT TERM
$PY manage.py run_fake_tiktok --port "$FAKE_PORT" --webhook-url "http://localhost:$PORT/webhooks/tiktok/" &
$PY manage.py run_worker --processes 1 --threads 4 &
$PY manage.py run_scheduler &
$PY manage.py runserver "0.0.0.0:$PORT"
