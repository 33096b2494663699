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
    # A test database and a task queue of this run's own, so two test runs
    # on one machine (a developer's and CI's) never share rows or tasks.
    DATABASES["default"]["TEST"] = {"NAME": f"test_daoflow_{os.getpid()}"}

CELERY_TASK_DEFAULT_QUEUE = f"daoflow-test-{os.getpid()}"
os.environ["DAOFLOW_TASK_QUEUE"] = CELERY_TASK_DEFAULT_QUEUE

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
