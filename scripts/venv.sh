#!/usr/bin/env bash
# Create REPO/.venv with python3.11 when it is missing or broken, and install
# requirements.txt (which includes the project itself, editable) whenever the
# requirements or pyproject.toml changed since the last install.
#
# Usage: scripts/venv.sh   (idempotent; a second run installs nothing)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO/.venv"
PYTHON="$VENV/bin/python"
REQUIREMENTS="$REPO/requirements.txt"
STAMP="$VENV/.requirements.sha256"

log() {
    printf 'venv.sh: %s\n' "$*"
}

if [[ ! -x "$PYTHON" ]]; then
    log "creating virtualenv $VENV with python3.11"
    python3.11 -m venv "$VENV"
elif ! "$PYTHON" -c 'import sys' >/dev/null 2>&1; then
    log "virtualenv $VENV is broken (its python does not run), recreating it"
    python3.11 -m venv --clear "$VENV"
fi

[[ -f "$REQUIREMENTS" ]] || { log "error: $REQUIREMENTS not found" >&2; exit 1; }

# pyproject.toml counts too: it declares the `daoflow` console script.
requirements_hash="$(cat "$REPO"/requirements*.txt "$REPO/pyproject.toml" | sha256sum | cut -d ' ' -f 1)"
if [[ -f "$STAMP" && "$(<"$STAMP")" == "$requirements_hash" ]]; then
    log "requirements unchanged since the last install"
else
    log "installing $REQUIREMENTS into $VENV"
    (cd "$REPO" && "$PYTHON" -m pip install -q -r "$REQUIREMENTS")
    printf '%s\n' "$requirements_hash" >"$STAMP"
fi
