#!/usr/bin/env bash
# `make dev`: migrate, make sure the demo agency exists, then run the web server, a worker, the
# scheduler and the fake TikTok, stopped together.
#   PORT=8100 bash scripts/dev.sh   # serve on another port (links and the OAuth callback follow)
#   bash scripts/dev.sh env         # print the environment the processes get, as `export` lines
set -euo pipefail
PY=${PY:-.venv/bin/python}
PORT=${PORT:-8000}
FAKE_PORT=${FAKE_PORT:-8765}
# Absolute links, the TikTok redirect URI and the trusted form origins carry SITE_PORT
# (config/settings.py): it must be the port runserver listens on.
export SITE_PORT=${SITE_PORT:-$PORT}
# The settings default to production (DEBUG off); development turns it on.
export DEBUG=${DEBUG:-true}
export TIKTOK_AUTH_URL=${TIKTOK_AUTH_URL:-http://localhost:$FAKE_PORT/v2/auth/authorize/}
export TIKTOK_API_BASE_URL=${TIKTOK_API_BASE_URL:-http://127.0.0.1:$FAKE_PORT}
# Photo posts: the fake TikTok downloads them from the root domain's /tiktok-media/, verified there.
export TIKTOK_MEDIA_BASE_URL=${TIKTOK_MEDIA_BASE_URL:-http://localhost:$PORT/tiktok-media/}
if [[ ${1:-} == env ]]; then
  for name in DEBUG SITE_PORT TIKTOK_AUTH_URL TIKTOK_API_BASE_URL TIKTOK_MEDIA_BASE_URL; do
    printf 'export %s=%q\n' "$name" "${!name}"
  done
  exit 0
fi
$PY manage.py migrate_all --verbosity 0
$PY manage.py ensure_demo_agency --credentials-file .local/demo-password.txt
# Stop every process started here, once: kill 0 signals this shell too, which must not re-enter.
trap 'trap - EXIT INT TERM; kill 0' EXIT INT TERM
$PY manage.py run_fake_tiktok --port "$FAKE_PORT" --webhook-url "http://localhost:$PORT/webhooks/tiktok/" \
  --verified-url-prefix "$TIKTOK_MEDIA_BASE_URL" &
$PY manage.py run_worker --processes 1 --threads 4 &
$PY manage.py run_scheduler &
$PY manage.py runserver "0.0.0.0:$PORT"
