"""Access to the local test bed that scripts/testbed.sh sets up.

scripts/testbed.sh writes a JSON file describing the sshd on 127.0.0.1 and
the test images, and scripts/test.sh exports its path as DAOFLOW_TESTBED.
This module imports nothing from Django, so it also works outside a
configured Django project.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TESTBED_ENV_VAR = "DAOFLOW_TESTBED"

_REQUIRED_KEYS = ("ssh_host", "ssh_port", "ssh_user", "ssh_key", "host_public_key", "images")
_REQUIRED_IMAGES = ("busybox", "web_v1", "web_v2")


class TestbedError(RuntimeError):
    """Error for a missing or invalid test bed description."""

    # Keeps pytest from collecting this class as a test class.
    __test__ = False


def load_testbed() -> dict[str, Any]:
    """Read and validate the test bed JSON file named by DAOFLOW_TESTBED.

    Raises TestbedError when the variable is unset, the file is missing or
    unreadable, or a required key is absent.
    """
    path_value = os.environ.get(TESTBED_ENV_VAR)
    if not path_value:
        raise TestbedError(
            f"{TESTBED_ENV_VAR} is not set; run the tests with scripts/test.sh, or run "
            f"scripts/testbed.sh and set {TESTBED_ENV_VAR} to the testbed.json it writes"
        )

    path = Path(path_value)
    try:
        testbed = json.loads(path.read_text())
    except FileNotFoundError:
        raise TestbedError(
            f"{TESTBED_ENV_VAR}={path_value}: file not found; run scripts/testbed.sh to create it"
        ) from None
    except (OSError, ValueError) as exc:
        raise TestbedError(f"{TESTBED_ENV_VAR}={path_value}: unreadable or invalid test bed JSON: {exc}") from exc

    if not isinstance(testbed, dict):
        raise TestbedError(f"{TESTBED_ENV_VAR}={path_value}: expected a JSON object")
    missing = [key for key in _REQUIRED_KEYS if key not in testbed]
    if not isinstance(testbed.get("images"), dict):
        missing.append("images (object)")
    else:
        missing += [f"images.{name}" for name in _REQUIRED_IMAGES if name not in testbed["images"]]
    if missing:
        raise TestbedError(
            f"{TESTBED_ENV_VAR}={path_value}: missing keys {', '.join(missing)}; "
            "rerun scripts/testbed.sh to rewrite it"
        )
    return testbed


@dataclass(frozen=True)
class SshTarget:
    """Connection details for logging in to the test bed's sshd with a private key."""

    host: str
    port: int
    user: str
    key_path: str
    # Content of the sshd's host public key file: "ssh-ed25519 AAAA... comment".
    host_public_key_line: str

    @classmethod
    def from_testbed(cls, testbed: dict[str, Any] | None = None) -> SshTarget:
        """Build the target from a loaded test bed, or from load_testbed() when None."""
        if testbed is None:
            testbed = load_testbed()

        host_key_path = Path(testbed["host_public_key"])
        try:
            host_public_key_line = host_key_path.read_text().strip()
        except OSError as exc:
            raise TestbedError(
                f"host public key {host_key_path} from {TESTBED_ENV_VAR} is unreadable: {exc}; "
                "rerun scripts/testbed.sh"
            ) from exc

        return cls(
            host=testbed["ssh_host"],
            port=int(testbed["ssh_port"]),
            user=testbed["ssh_user"],
            key_path=testbed["ssh_key"],
            host_public_key_line=host_public_key_line,
        )

    def known_hosts_line(self) -> str:
        """Format the host key as an OpenSSH known_hosts entry for host and port."""
        key_type, key_base64 = self.host_public_key_line.split()[:2]
        host = self.host if self.port == 22 else f"[{self.host}]:{self.port}"
        return f"{host} {key_type} {key_base64}"
