"""Transports: how the runner reaches a target's Docker engine."""

from .base import CommandCancelled, CommandResult, CommandTimedOut, Transport, TransportError
from .local import LocalTransport
from .ssh import HostKeyNotApproved, SSHTransport


def transport_for(server) -> Transport:
    if server.is_local:
        return LocalTransport()
    return SSHTransport(server)


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
