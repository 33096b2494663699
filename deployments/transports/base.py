"""The interface the runner uses to run commands and write files on a target."""

import os
import posixpath
import queue
import signal
import subprocess
import threading
import time
import uuid
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


# Runs "$@" after recording the shell's process id in the file named by $1.
# run_process and `setsid` start the shell as the leader of a new session,
# so the recorded id is the session id of every process the command starts.
# Another connection can then stop the whole session. A pid file that cannot
# be written (a full disk) does not stop the command, which then fails with
# the real error.
TRACKED_COMMAND_SCRIPT = (
    'f=$1; shift; { mkdir -p "${f%/*}" && echo $$ > "$f"; } 2>/dev/null; '
    '"$@"; code=$?; rm -f "$f"; exit $code'
)

# Stops the sessions recorded in the pid files given as arguments: TERM,
# then KILL after 5 seconds. A session is only signalled while its leader's
# command line still contains the pid file's path, so a pid that was reused
# by an unrelated process after the command ended is never signalled.
STOP_COMMANDS_SCRIPT = (
    'for f in "$@"; do '
    '[ -f "$f" ] || continue; '
    'sid=$(cat "$f" 2>/dev/null); '
    'case "$sid" in ""|*[!0-9]*) rm -f "$f"; continue;; esac; '
    'if tr "\\0" "\\n" < "/proc/$sid/cmdline" 2>/dev/null | grep -qxF -- "$f"; then '
    'pkill -TERM -s "$sid"; i=0; '
    'while [ $i -lt 50 ] && pgrep -s "$sid" >/dev/null; do sleep 0.1; i=$((i+1)); done; '
    'pkill -KILL -s "$sid"; echo "stopped session $sid"; '
    'fi; rm -f "$f"; done'
)

# The same for every pid file in the directory given as $1: commands that a
# worker which died (or was given up on by the watchdog) left running.
STOP_LEFTOVER_COMMANDS_SCRIPT = 'set -- "$1"/*.pid; ' + STOP_COMMANDS_SCRIPT


def new_pid_file(pid_dir: str) -> str:
    return f"{pid_dir.rstrip('/')}/{uuid.uuid4().hex}.pid"


class Transport:
    """Run argument lists on a target. Implementations never pass user input through a local shell.

    With a `pid_dir`, every command records its session id in a file there,
    so a cancelled command, or one left behind by a worker that died, can be
    stopped with all its child processes.
    """

    def __init__(self, pid_dir: str | None = None):
        self.pid_dir = pid_dir

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

    def write_files(self, directory: str, files: list[tuple[str, bytes, int]]) -> None:
        """Write (name, data, mode) files into one directory; transports with a round trip per command batch them."""
        for name, data, mode in files:
            self.write_file(posixpath.join(directory, name), data, mode)

    def stop_leftover_commands(self) -> list[str]:
        """Stop the commands recorded in pid_dir; return one line per stopped session."""
        return []

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
