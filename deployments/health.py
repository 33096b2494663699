"""Health probes that the worker runs against a deployment's published ports.

A probe connects to the target host only: 127.0.0.1 for the local engine,
the server's SSH host otherwise. The probe configuration chooses the port
and, for HTTP, the request path, never the address. Redirects are not
followed, so a response cannot send the worker to another host.
"""

import http.client
import socket
import time
from typing import Callable

LOCAL_HOST = "127.0.0.1"
# Upper bound of one attempt's connect and read time, in seconds.
MAX_ATTEMPT_SECONDS = 5.0
USER_AGENT = "daoflow-health-probe"


class ProbeFailed(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def probe_host(frozen: dict) -> str:
    """Return the address probes connect to: the deployment's target host, never anything the probe names."""
    server = frozen["server"]
    return LOCAL_HOST if server["kind"] == "local" else server["host"]


def describe(probe: dict) -> str:
    if probe["kind"] == "http":
        return f"HTTP probe of port {probe['port']} path {probe['path']}"
    return f"TCP probe of port {probe['port']}"


def attempt(probe: dict, host: str, timeout: float) -> str:
    """Run one attempt; return "" when it passed, else what went wrong."""
    try:
        if probe["kind"] == "tcp":
            with socket.create_connection((host, probe["port"]), timeout=timeout):
                return ""
        connection = http.client.HTTPConnection(host, probe["port"], timeout=timeout)
        try:
            connection.request("GET", probe["path"], headers={"User-Agent": USER_AGENT, "Connection": "close"})
            status = connection.getresponse().status
        finally:
            connection.close()
    except (OSError, http.client.HTTPException) as error:
        return _error_text(error)
    if status != probe["expected_status"]:
        return f"status {status}, expected {probe['expected_status']}"
    return ""


def wait_until_passing(
    probe: dict, host: str, *, seconds: float, on_wait: Callable[[], None], on_attempt: Callable[[str], None]
) -> int:
    """Repeat attempts every interval until one passes; return the number of attempts.

    `on_wait` runs at least once a second while waiting (heartbeat and
    cancellation checks; it may raise to stop). Raises ProbeFailed with the
    last attempt's error when `seconds` pass without success.
    """
    deadline = time.monotonic() + seconds
    attempts = 0
    while True:
        attempts += 1
        remaining = deadline - time.monotonic()
        error = attempt(probe, host, max(0.2, min(MAX_ATTEMPT_SECONDS, probe["interval_seconds"], remaining)))
        if not error:
            return attempts
        on_attempt(error)
        if time.monotonic() + probe["interval_seconds"] > deadline:
            raise ProbeFailed(
                f"{describe(probe)} on {host} did not pass within {int(round(seconds))} seconds "
                f"({attempts} attempts); last attempt: {error}."
            )
        _sleep(probe["interval_seconds"], on_wait)


def _sleep(seconds: float, on_wait: Callable[[], None]) -> None:
    end = time.monotonic() + seconds
    while True:
        on_wait()
        remaining = end - time.monotonic()
        if remaining <= 0:
            return
        time.sleep(min(1.0, remaining))


def _error_text(error: Exception) -> str:
    # RemoteDisconnected is a ConnectionResetError, so it is tested first.
    if isinstance(error, http.client.RemoteDisconnected):
        return "connection closed without a response"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, ConnectionResetError):
        # docker-proxy accepts on the published port and resets the
        # connection while nothing listens in the container.
        return "connection reset by peer"
    if isinstance(error, (socket.timeout, TimeoutError)):
        return "timed out"
    return str(error) or type(error).__name__
