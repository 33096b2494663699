"""Transports: how the runner reaches a target's Docker engine."""

from .base import CommandCancelled, CommandResult, CommandTimedOut, Transport, TransportError
from .local import LocalTransport
from .ssh import HostKeyNotApproved, SSHTransport


def transport_for(server, pid_dir: str | None = None) -> Transport:
    if server.is_local:
        return LocalTransport(pid_dir)
    return SSHTransport(server, pid_dir)


__all__ = [
    "CommandCancelled",
    "CommandResult",
    "CommandTimedOut",
    "HostKeyNotApproved",
    "LocalTransport",
    "SSHTransport",
    "Transport",
    "TransportError",
    "transport_for",
]
