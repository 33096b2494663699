"""Running deployment commands on the control plane's own Docker engine."""

import logging
import os
import subprocess
from pathlib import Path

from .base import (
    STOP_LEFTOVER_COMMANDS_SCRIPT,
    TRACKED_COMMAND_SCRIPT,
    CommandResult,
    Transport,
    new_pid_file,
    run_process,
)

logger = logging.getLogger(__name__)

STOP_LEFTOVERS_TIMEOUT_SECONDS = 30


class LocalTransport(Transport):
    def run(self, argv, *, timeout, on_output=None, on_tick=None, stdin=None, should_cancel=None) -> CommandResult:
        if self.pid_dir:
            # run_process starts the shell in a new session, so its pid is the session id.
            argv = ["sh", "-c", TRACKED_COMMAND_SCRIPT, "sh", new_pid_file(self.pid_dir), *argv]
        return run_process(
            argv,
            timeout=timeout,
            on_output=on_output,
            on_tick=on_tick,
            stdin=stdin,
            should_cancel=should_cancel,
        )

    def write_file(self, path: str, data: bytes, mode: int) -> None:
        target = Path(path)
        # Directories 0755 like the SSH target's: containers that run as
        # another user must reach files that the compose file bind-mounts
        # relative to it. Each secret file has its own mode (0600).
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        temporary = target.with_name(target.name + ".tmp")
        # Created with its final mode, so a secret file is never readable by others, even briefly.
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(temporary, mode)
        os.replace(temporary, target)

    def stop_leftover_commands(self) -> list[str]:
        if not self.pid_dir or not Path(self.pid_dir).is_dir():
            return []
        completed = subprocess.run(
            ["sh", "-c", STOP_LEFTOVER_COMMANDS_SCRIPT, "sh", self.pid_dir],
            capture_output=True, timeout=STOP_LEFTOVERS_TIMEOUT_SECONDS, check=False,
        )
        return completed.stdout.decode(errors="replace").split("\n")[:-1]
