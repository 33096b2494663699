#!/usr/bin/env bash
# Start DaoFlow on its embedded defaults from a fresh clone: SQLite and a
# file-system Celery broker in ./var, the local Docker engine as the default
# target. Runs the web server (admin and API on 127.0.0.1:8000) and one
# Celery worker with the periodic watchdog, until Ctrl-C.
#
# Environment: every DAOFLOW_* / DATABASE_URL / CELERY_BROKER_URL setting of
# the product applies (see README.md). DAOFLOW_BIND sets the web address
# (default 127.0.0.1:8000).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
VENV="$REPO/.venv"
BIND="${DAOFLOW_BIND:-127.0.0.1:8000}"
export DAOFLOW_DATA_DIR="${DAOFLOW_DATA_DIR:-$REPO/var}"

log() {
    printf 'run.sh: %s\n' "$*"
}

bash "$REPO/scripts/venv.sh"

if [[ "$(id -u)" == 0 ]]; then
    # Idempotent: starts dockerd and installs the Compose plugin only when
    # missing, and builds the example image of the README's first session.
    DAOFLOW_TESTBED_DIR="$DAOFLOW_DATA_DIR/engine" bash "$REPO/scripts/testbed.sh" engine
elif ! docker info >/dev/null 2>&1 || ! docker compose version 2>/dev/null | grep -q ' v2\.'; then
    log "warning: no Docker engine with Compose v2 answers; deployments to the local server will fail until one runs"
fi

"$VENV/bin/daoflow" migrate --no-input -v 0
"$VENV/bin/daoflow" collectstatic --no-input -v 0
"$VENV/bin/daoflow" ensure_admin

pids=()
stop_children() {
    # Only the processes this script started, by PID.
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    wait || true
}
trap stop_children EXIT INT TERM

"$VENV/bin/celery" -A daoflow worker --beat --loglevel INFO --concurrency 2 \
    --schedule "$DAOFLOW_DATA_DIR/celerybeat-schedule" &
pids+=("$!")
"$VENV/bin/gunicorn" daoflow.wsgi --bind "$BIND" --workers 2 --access-logfile - &
pids+=("$!")

log "admin: http://$BIND/admin/   API: http://$BIND/api/v1/   (Ctrl-C stops both)"
wait -n "${pids[@]}"
