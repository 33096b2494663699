"""The interface the runner uses to run commands and write files on a target."""

import os
import queue
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Callable

OutputCallback = Callable[[str, str], None]  # (stream, line)
TickCallback = Callable[[], None]


class TransportError(Exception):
    """The target could not be reached or refused the connection; the message is for operators."""


class CommandTimedOut(TransportError):
    pass


class CommandCancelled(TransportError):
    pass


@dataclass
class CommandResult:
    exit_code: int
    stderr_tail: list[str]


class Transport:
    """Run argument lists on a target. Implementations never pass user input through a local shell."""

    def run(
        self,
        argv: list[str],
        *,
        timeout: float,
        on_output: OutputCallback | None = None,
        on_tick: TickCallback | None = None,
        stdin: bytes | None = None,
        should_cancel: Callable[[], bool] | None = None,
    ) -> CommandResult:
        raise NotImplementedError

    def write_file(self, path: str, data: bytes, mode: int) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


def run_process(
    argv: list[str],
    *,
    timeout: float,
    on_output: OutputCallback | None,
    on_tick: TickCallback | None,
    stdin: bytes | None,
    should_cancel: Callable[[], bool] | None,
    env: dict | None = None,
    tick_seconds: float = 1.0,
) -> CommandResult:
    """Run a local process, stream its lines, and stop it on timeout or cancellation.

    Output is read on two threads and handed to the calling thread through a
    queue, so callbacks (which write to the database) run on one thread only.
    """
    process = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        # A session of its own, so a timeout kills the whole process group
        # (ssh and its children, or compose and its plugins).
        start_new_session=True,
    )
    lines: queue.Queue = queue.Queue()
    readers = [
        threading.Thread(target=_pump, args=(process.stdout, "stdout", lines), daemon=True),
        threading.Thread(target=_pump, args=(process.stderr, "stderr", lines), daemon=True),
    ]
    for reader in readers:
        reader.start()
    if stdin is not None:
        threading.Thread(target=_feed, args=(process.stdin, stdin), daemon=True).start()

    deadline = time.monotonic() + timeout
    stderr_tail: list[str] = []
    open_streams = 2
    next_tick = time.monotonic() + tick_seconds
    while open_streams:
        try:
            stream, line = lines.get(timeout=0.2)
        except queue.Empty:
            stream = None
        if stream is not None:
            if line is None:
                open_streams -= 1
            else:
                if stream == "stderr":
                    stderr_tail = (stderr_tail + [line])[-20:]
                if on_output is not None:
                    on_output(stream, line)
        now = time.monotonic()
        if now >= next_tick:
            next_tick = now + tick_seconds
            if on_tick is not None:
                on_tick()
            if should_cancel is not None and should_cancel():
                _terminate(process)
                raise CommandCancelled("The command was stopped because the deployment was cancelled.")
        if now >= deadline:
            _terminate(process)
            raise CommandTimedOut(f"The command did not finish within {int(timeout)} seconds and was stopped.")

    remaining = max(deadline - time.monotonic(), 0.1)
    try:
        exit_code = process.wait(timeout=remaining)
    except subprocess.TimeoutExpired:
        _terminate(process)
        raise CommandTimedOut(f"The command did not finish within {int(timeout)} seconds and was stopped.")
    return CommandResult(exit_code=exit_code, stderr_tail=stderr_tail)


def _pump(pipe, stream: str, lines: queue.Queue) -> None:
    for raw in iter(pipe.readline, b""):
        lines.put((stream, raw.decode("utf-8", errors="replace").rstrip("\r\n")))
    pipe.close()
    lines.put((stream, None))


def _feed(pipe, data: bytes) -> None:
    try:
        pipe.write(data)
        pipe.close()
    except BrokenPipeError:
        pass


def _terminate(process: subprocess.Popen) -> None:
    """Stop the process group we started: TERM, then KILL after a grace period."""
    for sig, grace in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue
