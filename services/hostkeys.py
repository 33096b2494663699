"""Scanning SSH host keys and computing their fingerprints."""

import base64
import binascii
import hashlib
import subprocess

from daoflow.errors import InvalidInput, Unavailable

# Preferred first: the strongest key the host offers is the one we pin.
KEY_TYPE_PREFERENCE = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "rsa-sha2-512", "ssh-rsa")
SCAN_TIMEOUT_SECONDS = 10


def fingerprint(public_key: str) -> str:
    """SHA-256 fingerprint in OpenSSH's form (`SHA256:` + unpadded base64) of "TYPE BASE64 [comment]"."""
    parts = public_key.split()
    if len(parts) < 2:
        raise InvalidInput(f"host key: {public_key!r} is not an OpenSSH public key ('TYPE BASE64').")
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(f"host key: {parts[1][:20]!r}... is not valid base64.") from None
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"


def scan_host_key(host: str, port: int) -> str:
    """Return the preferred host key offered by host:port as "TYPE BASE64"."""
    if host.startswith("-"):
        raise InvalidInput(f"--host: {host!r} is not a host name or address.")
    try:
        completed = subprocess.run(
            ["ssh-keyscan", "-T", str(SCAN_TIMEOUT_SECONDS), "-p", str(port), "--", host],
            capture_output=True,
            timeout=SCAN_TIMEOUT_SECONDS + 5,
        )
    except subprocess.TimeoutExpired:
        raise Unavailable(f"{host}:{port} did not offer a host key within {SCAN_TIMEOUT_SECONDS} seconds.") from None

    offered: dict[str, str] = {}
    for line in completed.stdout.decode(errors="replace").splitlines():
        fields = line.split()
        if len(fields) >= 3 and not line.startswith("#"):
            offered[fields[1]] = f"{fields[1]} {fields[2]}"
    for key_type in KEY_TYPE_PREFERENCE:
        if key_type in offered:
            return offered[key_type]
    if offered:
        return next(iter(offered.values()))
    raise Unavailable(
        f"{host}:{port} offered no SSH host key: check that sshd runs there and the port is right."
    )
