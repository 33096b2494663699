"""Daemons that a single fault test starts, stops and restarts: an sshd and a Redis server.

Each runs in the foreground as a child of the test process, on a loopback
address, with its files in a temporary directory, and is stopped by its PID
only. The shared test bed (the sshd on 127.0.0.1:2222, dockerd, the Redis on
6379) is never touched.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

START_SECONDS = 10
PR_SET_PDEATHSIG = 1


def _stop_with_parent() -> None:
    """Ask the kernel to kill the daemon when the test process dies, so an interrupted run leaves none behind."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def wait_for_port(host: str, port: int, seconds: float = START_SECONDS) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {host}:{port} after {seconds} s")


def descendants(pid: int) -> list[int]:
    """Processes below `pid` in the process tree, read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, pending = [], [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


def command_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


class PrivateSshd:
    """An sshd on a loopback address that accepts the test bed's client key as root."""

    def __init__(self, directory: Path, client_key_path: str, host: str = "127.0.0.2", extra_config: str = ""):
        self.directory = directory
        self.host = host
        self.port = free_port(host)
        self.client_key_path = client_key_path
        self.extra_config = extra_config
        self.process: subprocess.Popen | None = None
        directory.mkdir(parents=True, exist_ok=True)
        self.host_key = directory / "host_ed25519"
        if not self.host_key.exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.host_key)],
                           check=True, capture_output=True, timeout=30)

    def config(self) -> str:
        return "\n".join([
            f"ListenAddress {self.host}",
            f"Port {self.port}",
            f"HostKey {self.host_key}",
            f"AuthorizedKeysFile {self.client_key_path}.pub",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "StrictModes no",
            "PermitRootLogin prohibit-password",
            f"PidFile {self.directory / 'sshd.pid'}",
            "MaxSessions 50",
            "MaxStartups 100",
            "PrintMotd no",
            self.extra_config,
        ]) + "\n"

    def start(self) -> None:
        config = self.directory / "sshd_config"
        config.write_text(self.config())
        os.makedirs("/run/sshd", exist_ok=True)
        # -D keeps sshd in the foreground, so its PID is the one Popen returns.
        self.process = subprocess.Popen(
            ["/usr/sbin/sshd", "-D", "-f", str(config), "-E", str(self.directory / "sshd.log")],
            stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=_stop_with_parent,
        )
        wait_for_port(self.host, self.port)

    def stop(self) -> None:
        """Stop the listener and every connection it serves, as a stopped sshd service would."""
        if self.process is None or self.process.poll() is not None:
            return
        sessions = [pid for pid in descendants(self.process.pid) if command_name(pid) == "sshd"]
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        for pid in sessions:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


class PrivateRedis:
    """A redis-server without persistence, so a restart loses every queued message."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        directory.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.directory),
             "--save", "", "--appendonly", "no", "--daemonize", "no",
             "--logfile", str(self.directory / "redis.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True,
            preexec_fn=_stop_with_parent,
        )
        wait_for_port("127.0.0.1", self.port)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
