#!/usr/bin/env bash
# Run the test suite against real components: PostgreSQL and Redis that are
# already running, plus the Docker and SSH test bed from scripts/testbed.sh.
#
# Usage: scripts/test.sh [PYTEST ARGS...]
#
# Environment:
#   DAOFLOW_TEST_POSTGRES_URL  default postgres://postgres@127.0.0.1:5432/test
#   DAOFLOW_TEST_REDIS_URL     default redis://127.0.0.1:6379/15
#   DAOFLOW_TESTBED_DIR        test bed state directory (see scripts/testbed.sh)
#
# Exits with pytest's exit code, except that "no tests collected" (pytest's
# exit code 5) becomes 1.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

VENV="$REPO/.venv"
PYTHON="$VENV/bin/python"

log() {
    printf 'test.sh: %s\n' "$*"
}

die() {
    printf 'test.sh: error: %s\n' "$*" >&2
    exit 1
}

# --- virtualenv --------------------------------------------------------------

bash "$REPO/scripts/venv.sh"

# --- test bed ----------------------------------------------------------------

export DAOFLOW_TESTBED_VENV="$VENV"
bash "$REPO/scripts/testbed.sh"

STATE="${DAOFLOW_TESTBED_DIR:-$REPO/var/testbed}"
export DAOFLOW_TESTBED="$STATE/testbed.json"
export DAOFLOW_TEST_POSTGRES_URL="${DAOFLOW_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
export DAOFLOW_TEST_REDIS_URL="${DAOFLOW_TEST_REDIS_URL:-redis://127.0.0.1:6379/15}"

# --- PostgreSQL and Redis ----------------------------------------------------

# This script does not start PostgreSQL or Redis, so check that each one
# responds in its own protocol before pytest fails in a less obvious way.
"$PYTHON" - <<'EOF'
import os
import socket
import sys
from urllib.parse import urlsplit

TIMEOUT_SECONDS = 5


def check_postgres(url):
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 5432
    # An SSLRequest message, to which every PostgreSQL server replies with
    # one byte: "S" (SSL available) or "N" (not available).
    ssl_request = (8).to_bytes(4, "big") + (80877103).to_bytes(4, "big")
    with socket.create_connection((host, port), timeout=TIMEOUT_SECONDS) as conn:
        conn.sendall(ssl_request)
        reply = conn.recv(1)
    if reply not in (b"S", b"N"):
        raise OSError(f"{host}:{port} replied {reply!r}, which is not a PostgreSQL reply")


def check_redis(url):
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 6379
    with socket.create_connection((host, port), timeout=TIMEOUT_SECONDS) as conn:
        conn.sendall(b"PING\r\n")
        reply = conn.recv(64)
    # "-NOAUTH" still proves that a Redis server responds, and the
    # tests then fail on authentication with a message of their own.
    if not (reply.startswith(b"+PONG") or reply.startswith(b"-NOAUTH")):
        raise OSError(f"{host}:{port} replied {reply!r}, which is not a Redis reply")


def redact(url):
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(":" + parts.password + "@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


failed = False
for name, variable, check in (
    ("PostgreSQL", "DAOFLOW_TEST_POSTGRES_URL", check_postgres),
    ("Redis", "DAOFLOW_TEST_REDIS_URL", check_redis),
):
    url = os.environ[variable]
    shown_url = redact(url)
    try:
        check(url)
    except (OSError, ValueError) as exc:
        failed = True
        print(
            f"test.sh: error: {name} at {shown_url} ({variable}) did not respond: {exc}. "
            f"Start {name} or point {variable} at a running server.",
            file=sys.stderr,
        )
    else:
        print(f"test.sh: {name} responds at {shown_url}")
sys.exit(1 if failed else 0)
EOF

# --- pytest ------------------------------------------------------------------

status=0
"$PYTHON" -m pytest "$@" || status=$?
if ((status == 5)); then
    die "pytest collected no tests (exit code 5); a run without tests counts as a failure"
fi
exit "$status"
