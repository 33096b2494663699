"""Test settings: the product's settings, pointed at PostgreSQL when the test run provides it."""

import os
import tempfile

# A data directory of the test run's own, so tests never touch ./var.
os.environ.setdefault("DAOFLOW_DATA_DIR", tempfile.mkdtemp(prefix="daoflow-test-"))
if not os.environ.get("DAOFLOW_ENCRYPTION_KEYS"):
    from cryptography.fernet import Fernet

    # Exported, so the worker processes that end-to-end tests start share it.
    os.environ["DAOFLOW_ENCRYPTION_KEYS"] = Fernet.generate_key().decode()

from daoflow.settings import *  # noqa: E402,F401,F403
from daoflow.settings import DATABASES  # noqa: E402

import dj_database_url  # noqa: E402

_postgres = os.environ.get("DAOFLOW_TEST_POSTGRES_URL")
if _postgres:
    DATABASES["default"] = dj_database_url.parse(_postgres)

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
