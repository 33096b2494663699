"""Fernet keys for encryption at rest.

`DAOFLOW_ENCRYPTION_KEYS` contains comma-separated Fernet keys: the first one
encrypts, all of them decrypt, so a new key is rotated in by putting it first.
Without the variable, one key is generated once into the data directory.
"""

import logging
import os
from pathlib import Path

from cryptography.fernet import Fernet

logger = logging.getLogger(__name__)

KEY_FILE_NAME = "encryption.key"

# Settings load before logging is configured, so the notice about a generated
# key is logged later, from an app's ready(), by report_generated_key().
_generated_key_path: Path | None = None


class KeyConfigurationError(RuntimeError):
    pass


def load_encryption_keys(data_dir: Path) -> list[str]:
    configured = os.environ.get("DAOFLOW_ENCRYPTION_KEYS", "").strip()
    if configured:
        keys = [key.strip() for key in configured.split(",") if key.strip()]
        for position, key in enumerate(keys, start=1):
            _check_key(key, f"DAOFLOW_ENCRYPTION_KEYS entry {position}")
        return keys
    return [_load_or_create_key_file(data_dir / KEY_FILE_NAME)]


def _check_key(key: str, origin: str) -> None:
    try:
        Fernet(key.encode())
    except ValueError as error:
        raise KeyConfigurationError(
            f"{origin} is not a valid Fernet key ({error}); generate one with "
            "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'."
        ) from None


def _load_or_create_key_file(path: Path) -> str:
    if path.exists():
        key = path.read_text().strip()
        _check_key(key, str(path))
        return key

    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key().decode()
    # O_EXCL makes two processes starting at once agree on one key: the loser
    # of the race reads the winner's file instead of overwriting it.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _load_or_create_key_file(path)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")

    global _generated_key_path
    _generated_key_path = path
    return key


def report_generated_key() -> None:
    if _generated_key_path is not None:
        logger.warning(
            "Generated a new encryption key in %s (mode 0600). Back it up: without it "
            "encrypted values cannot be read. Set DAOFLOW_ENCRYPTION_KEYS to manage keys yourself.",
            _generated_key_path,
        )
