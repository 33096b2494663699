"""Running deployment commands on an SSH target with the OpenSSH client.

The server's approved host key is pinned in a known_hosts file of our own
with StrictHostKeyChecking=yes, so a changed or unapproved key stops the
connection before any command runs. One master connection per server is
reused by every command (ControlMaster), and every command has a timeout
both here and on the target.
"""

import hashlib
import io
import logging
import math
import os
import shlex
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

from django.conf import settings

from .base import (
    STOP_COMMANDS_SCRIPT,
    STOP_LEFTOVER_COMMANDS_SCRIPT,
    TRACKED_COMMAND_SCRIPT,
    CommandCancelled,
    CommandResult,
    CommandTimedOut,
    Transport,
    TransportError,
    new_pid_file,
    run_process,
)

logger = logging.getLogger(__name__)

# Grace period after which the target's `timeout` sends KILL to a command
# that ignored TERM.
REMOTE_KILL_AFTER_SECONDS = 10
# Time the stop scripts need on the target: 5 seconds between TERM and KILL, and some margin.
STOP_SCRIPT_SECONDS = 15

# Writes stdin to a file atomically with the given mode. The path and mode
# arrive as positional arguments, never as part of the script text.
WRITE_FILE_SCRIPT = (
    'set -e; (umask 022; mkdir -p "$(dirname "$1")"); umask 077; '
    'cat > "$1.tmp"; chmod "$2" "$1.tmp"; mv -f "$1.tmp" "$1"'
)

# Unpacks a tar archive from stdin into a fresh directory beside the target
# files, then moves each file into place, so every file is replaced
# atomically and keeps the mode it had in the archive. The directory arrives
# as a positional argument.
WRITE_FILES_SCRIPT = (
    'set -e; (umask 022; mkdir -p "$1"); umask 077; incoming=$(mktemp -d "$1/.incoming.XXXXXX"); '
    'tar -x -p -f - -C "$incoming"; '
    'for file in "$incoming"/* "$incoming"/.[!.]*; do [ -e "$file" ] && mv -f "$file" "$1/"; done; '
    'rmdir "$incoming"'
)


class HostKeyNotApproved(TransportError):
    pass


class SSHTransport(Transport):
    """Commands over SSH, each in a session of its own on the target.

    Killing the local ssh client does not stop the remote command: without a
    terminal, sshd sends it no signal, and a command that writes no output
    never notices the closed connection. So with a pid_dir each command runs
    under `setsid` (util-linux) and records its session id, and a cancelled
    or timed-out command is stopped from a second SSH session with `pkill -s`
    (procps).
    """

    def __init__(self, server, pid_dir: str | None = None):
        super().__init__(pid_dir)
        if not server.approved_host_key:
            # Fail closed: no key approved means no connection at all.
            raise HostKeyNotApproved(
                f"Server {server.name!r} has no approved host key, so no command was sent; "
                f"approve its key with: daoflow server approve-host-key --name {server.name} "
                "--fingerprint SHA256:... --yes"
            )
        self.server = server
        self._files = _ConnectionFiles(server)
        self._master_checked = False

    def _base_command(self) -> list[str]:
        server = self.server
        return [
            "ssh",
            "-F", "/dev/null",
            "-p", str(server.port),
            "-i", str(self._files.key_path),
            "-o", "IdentitiesOnly=yes",
            "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=yes",
            "-o", f"UserKnownHostsFile={self._files.known_hosts_path}",
            "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", f"HostKeyAlias={self._files.alias}",
            "-o", "UpdateHostKeys=no",
            "-o", f"ConnectTimeout={settings.DAOFLOW_SSH_CONNECT_TIMEOUT}",
            "-o", "ServerAliveInterval=5",
            "-o", "ServerAliveCountMax=3",
            "-o", f"ControlPath={self._files.control_path}",
            "-l", server.user or "root",
        ]

    def _ensure_master(self) -> None:
        """Start the shared master connection if none is up.

        The master is started on its own with its output discarded, because a
        master forked from a streaming command would keep that command's
        pipes open after it ends.
        """
        if self._master_checked:
            return
        base = self._base_command()
        check = subprocess.run(
            [*base, "-O", "check", self.server.host],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=settings.DAOFLOW_SSH_CONNECT_TIMEOUT + 5,
        )
        if check.returncode != 0:
            started = subprocess.run(
                [*base, "-o", "ControlMaster=yes", "-o", "ControlPersist=120", "-f", "-N", self.server.host],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                timeout=settings.DAOFLOW_SSH_CONNECT_TIMEOUT + 5,
            )
            if started.returncode != 0:
                message = started.stderr.decode(errors="replace").strip()
                raise TransportError(explain_ssh_failure(self.server, message))
        self._master_checked = True

    def run(self, argv, *, timeout, on_output=None, on_tick=None, stdin=None, should_cancel=None) -> CommandResult:
        self._ensure_master()
        # GNU timeout treats 0 as "no limit", so the remote limit is at least one second.
        remote_argv = ["timeout", "-k", str(REMOTE_KILL_AFTER_SECONDS), str(max(1, math.ceil(timeout))), *argv]
        pid_file = new_pid_file(self.pid_dir) if self.pid_dir else None
        if pid_file:
            # NOTE: needs util-linux's `setsid -w` on the target (Debian, Ubuntu, RHEL have it).
            # BusyBox setsid has no -w, so an Alpine target fails every command here.
            remote_argv = ["setsid", "-w", "sh", "-c", TRACKED_COMMAND_SCRIPT, "sh", pid_file, *remote_argv]
        command = [*self._base_command(), "-o", "ControlMaster=no", self.server.host, "--", shlex.join(remote_argv)]
        try:
            result = run_process(
                command,
                timeout=timeout + REMOTE_KILL_AFTER_SECONDS + 5,
                on_output=on_output,
                on_tick=on_tick,
                stdin=stdin,
                should_cancel=should_cancel,
            )
        except (CommandCancelled, CommandTimedOut):
            if pid_file:
                self._stop_remote(STOP_COMMANDS_SCRIPT, pid_file)
            raise
        if result.exit_code == 255:
            # 255 is ssh's own failure (connection, host key), not the command's.
            raise TransportError(explain_ssh_failure(self.server, "\n".join(result.stderr_tail)))
        return result

    def stop_leftover_commands(self) -> list[str]:
        if not self.pid_dir:
            return []
        self._ensure_master()
        return self._stop_remote(STOP_LEFTOVER_COMMANDS_SCRIPT, self.pid_dir)

    def _stop_remote(self, script: str, argument: str) -> list[str]:
        """Run a stop script in a new SSH session; a failure is logged, because the caller is already failing."""
        # ControlMaster=auto: a new connection when the master is gone.
        command = [*self._base_command(), "-o", "ControlMaster=auto", self.server.host, "--",
                   shlex.join(["sh", "-c", script, "sh", argument])]
        try:
            completed = subprocess.run(
                command, stdin=subprocess.DEVNULL, capture_output=True,
                timeout=settings.DAOFLOW_SSH_CONNECT_TIMEOUT + STOP_SCRIPT_SECONDS,
            )
        except subprocess.TimeoutExpired:
            logger.warning("server=%s: stopping remote commands timed out", self.server.pk)
            return []
        if completed.returncode != 0:
            logger.warning("server=%s: stopping remote commands failed (exit code %s): %s", self.server.pk,
                           completed.returncode, completed.stderr.decode(errors="replace").strip()[:500])
        return completed.stdout.decode(errors="replace").split("\n")[:-1]

    def write_file(self, path: str, data: bytes, mode: int) -> None:
        result = self.run(
            ["sh", "-c", WRITE_FILE_SCRIPT, "sh", path, format(mode, "o")],
            timeout=60,
            stdin=data,
        )
        if result.exit_code != 0:
            raise TransportError(
                f"Could not write {path} on {self.server.name}: {' '.join(result.stderr_tail) or 'exit ' + str(result.exit_code)}"
            )

    def write_files(self, directory: str, files: list[tuple[str, bytes, int]]) -> None:
        """Write several files with one SSH command instead of one command each."""
        result = self.run(["sh", "-c", WRITE_FILES_SCRIPT, "sh", directory], timeout=60, stdin=tar_archive(files))
        if result.exit_code != 0:
            raise TransportError(
                f"Could not write {', '.join(name for name, _, _ in files)} in {directory} on {self.server.name}: "
                f"{' '.join(result.stderr_tail) or 'exit ' + str(result.exit_code)}"
            )

    def close(self) -> None:
        # The master stays up for ControlPersist seconds so the next
        # deployment to this server skips the handshake.
        pass


def explain_ssh_failure(server, stderr: str) -> str:
    text = stderr.strip()
    lowered = text.lower()
    where = f"{server.name} ({server.user}@{server.host}:{server.port})"
    if "host key verification failed" in lowered or "remote host identification has changed" in lowered:
        return (
            f"The host key of {where} does not match the approved key, so no command was sent. "
            "If the server was reinstalled, scan and approve its new key with daoflow server "
            "approve-host-key; otherwise treat it as a possible attack."
        )
    if "permission denied" in lowered:
        return f"{where} rejected the SSH key: add the server's public key to the target's authorized_keys."
    if "connection refused" in lowered:
        return f"{where} refused the SSH connection: is sshd running on port {server.port}?"
    if "timed out" in lowered or "no route to host" in lowered:
        return f"{where} did not answer within {settings.DAOFLOW_SSH_CONNECT_TIMEOUT} seconds: check the host, port and firewall."
    return f"SSH to {where} failed: {text or 'no output from ssh'}"


class _ConnectionFiles:
    """The key, known_hosts and control socket paths of one server, written on first use."""

    def __init__(self, server):
        ssh_dir = Path(settings.DAOFLOW_SSH_DIR)
        ssh_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        identity = hashlib.sha256(
            f"{server.pk}|{server.host}|{server.port}|{server.user}|{server.approved_host_key}|{server.private_key}".encode()
        ).hexdigest()[:16]
        self.alias = f"daoflow-server-{server.pk}"
        self.key_path = ssh_dir / f"server-{server.pk}-{identity}.key"
        self.known_hosts_path = ssh_dir / f"server-{server.pk}-{identity}.known_hosts"
        # Unix socket paths are limited to about 100 bytes, so the control
        # socket lives in a short directory keyed by the data directory.
        control_dir = Path(tempfile.gettempdir()) / (
            "daoflow-ssh-" + hashlib.sha256(str(ssh_dir).encode()).hexdigest()[:10]
        )
        control_dir.mkdir(exist_ok=True, mode=0o700)
        self.control_path = control_dir / f"{server.pk}-{identity}"
        _write_private(self.key_path, _normalize_key(server.private_key))
        _write_private(self.known_hosts_path, f"{self.alias} {server.approved_host_key.strip()}\n")


def _normalize_key(key: str) -> str:
    # OpenSSH rejects a private key file without its final newline.
    return key if key.endswith("\n") else key + "\n"


def _write_private(path: Path, content: str) -> None:
    if path.exists() and path.read_text() == content:
        return
    fd = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(content)
    os.replace(path.with_suffix(".tmp"), path)


def tar_archive(files: list[tuple[str, bytes, int]]) -> bytes:
    """Build a tar archive of plain files at the top level, with their modes, for the remote user to unpack."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, data, mode in files:
            if "/" in name or name in ("", ".", ".."):
                raise ValueError(f"write_files takes plain file names, not {name!r}")
            member = tarfile.TarInfo(name)
            member.size = len(data)
            member.mode = mode
            member.mtime = int(time.time())
            archive.addfile(member, io.BytesIO(data))
    return buffer.getvalue()
