"""Running deployment commands on the control plane's own Docker engine."""

import os
from pathlib import Path

from .base import CommandResult, Transport, run_process


class LocalTransport(Transport):
    def run(self, argv, *, timeout, on_output=None, on_tick=None, stdin=None, should_cancel=None) -> CommandResult:
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
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = target.with_name(target.name + ".tmp")
        # Created with its final mode, so a secret file is never readable by others, even briefly.
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(temporary, mode)
        os.replace(temporary, target)
