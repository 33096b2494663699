"""End-to-end fixtures: a real Celery worker over Redis, PostgreSQL, Docker and an SSH target.

Outside CI a missing component skips these tests with the reason; under
CI=true it fails them, because CI must run every suite against the real thing.
"""

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from tests.e2e.testbed import SshTarget, TestbedError, load_testbed

REPO = Path(__file__).resolve().parents[2]
IN_CI = os.environ.get("CI", "").lower() == "true"
WORKER_START_SECONDS = 60


def missing(reason: str):
    if IN_CI:
        pytest.fail(f"{reason} (CI must run the end-to-end suites, not skip them)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def testbed() -> dict:
    try:
        return load_testbed()
    except TestbedError as error:
        missing(str(error))


@pytest.fixture(scope="session")
def ssh_target(testbed) -> SshTarget:
    return SshTarget.from_testbed(testbed)


@pytest.fixture(scope="session")
def images(testbed) -> dict:
    return testbed["images"]


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = os.environ.get("DAOFLOW_TEST_REDIS_URL")
    if not url:
        missing("DAOFLOW_TEST_REDIS_URL is not set; run the tests with scripts/test.sh")
    return url


@pytest.fixture(scope="session")
def e2e_root() -> Path:
    root = Path(tempfile.mkdtemp(prefix="daoflow-e2e-"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


def _database_url() -> str:
    database = settings.DATABASES["default"]
    if database["ENGINE"] != "django.db.backends.postgresql":
        missing("DAOFLOW_TEST_POSTGRES_URL is not set: the end-to-end worker needs PostgreSQL")
    user = database.get("USER") or "postgres"
    host = database.get("HOST") or "127.0.0.1"
    port = database.get("PORT") or 5432
    password = database.get("PASSWORD") or ""
    auth = f"{user}:{password}" if password else user
    # While tests run, NAME is the test database that pytest-django created.
    return f"postgres://{auth}@{host}:{port}/{connection.settings_dict['NAME']}"


def worker_environment(e2e_root: Path, database_url: str, broker_url: str) -> dict:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="daoflow.settings",
        DATABASE_URL=database_url,
        CELERY_BROKER_URL=broker_url,
        DAOFLOW_DATA_DIR=str(e2e_root / "worker-data"),
        DAOFLOW_LOCAL_WORKDIR_ROOT=str(e2e_root / "local-targets"),
        DAOFLOW_REMOTE_WORKDIR_ROOT=str(e2e_root / "remote-targets"),
        DAOFLOW_HEALTH_TIMEOUT="30",
        DAOFLOW_STEP_TIMEOUT="120",
        PYTHONUNBUFFERED="1",
        DAOFLOW_TASK_QUEUE=settings.CELERY_TASK_DEFAULT_QUEUE,
    )
    return env


class WorkerProcess:
    """A `celery -A daoflow worker` process started and stopped by PID."""

    def __init__(self, env: dict, log_path: Path, concurrency: int = 2, queues_name: str = ""):
        self.env = env
        self.log_path = log_path
        self.concurrency = concurrency
        self.name = f"e2e-{uuid.uuid4().hex[:8]}@%h"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "daoflow", "worker", "--loglevel", "INFO",
             "--concurrency", str(self.concurrency), "--hostname", self.name, "--without-gossip",
             "--queues", self.env.get("DAOFLOW_TASK_QUEUE", "celery"),
             "--without-mingle", "--prefetch-multiplier", "1"],
            cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=_stop_with_parent,
        )
        deadline = time.monotonic() + WORKER_START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the Celery worker exited at start; see {self.log_path}:\n{self.tail()}")
            if b" ready." in self.log_path.read_bytes():
                return
            time.sleep(0.2)
        raise RuntimeError(f"the Celery worker was not ready within {WORKER_START_SECONDS} s:\n{self.tail()}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, sig)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _stop_with_parent() -> None:
    """Have the kernel send TERM to the worker when the test process dies, so an interrupted run leaves none behind.

    TERM rather than KILL: the worker's warm shutdown also stops its pool processes.
    """
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def purge_broker(env: dict) -> None:
    """Drop tasks that an earlier test of this run left in its own queue."""
    subprocess.run([sys.executable, "-m", "celery", "-A", "daoflow", "purge", "-f",
                    "--queues", env["DAOFLOW_TASK_QUEUE"]],
                   cwd=REPO, env=env, capture_output=True, timeout=60, check=False)


@pytest.fixture
def celery_worker(transactional_db, redis_url, e2e_root, settings):
    """A real worker process consuming from Redis and writing to the test PostgreSQL database."""
    settings.CELERY_BROKER_URL = redis_url
    from daoflow.celery import app

    app.conf.broker_url = redis_url
    env = worker_environment(e2e_root, _database_url(), redis_url)
    purge_broker(env)
    worker = WorkerProcess(env, e2e_root / f"worker-{uuid.uuid4().hex[:6]}.log")
    worker.start()
    yield worker
    worker.stop()
    app.conf.broker_url = None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def port():
    return free_port()


@pytest.fixture
def ssh_server(ssh_target, transactional_db):
    """The loopback sshd registered through the product, with its scanned host key approved."""
    from accounts.principal import SYSTEM
    from services import actions
    from services.hostkeys import fingerprint

    server = actions.add_server(
        SYSTEM, name="loopback", host=ssh_target.host, port=ssh_target.port,
        user=ssh_target.user, private_key=Path(ssh_target.key_path).read_text(),
    )
    return actions.approve_host_key(SYSTEM, server, fingerprint(server.scanned_host_key))


@pytest.fixture
def compose_projects():
    """Compose project names to take down after the test, containers and volumes included."""
    names: list[str] = []
    yield names
    for name in names:
        subprocess.run(["docker", "compose", "--project-name", name, "down", "--volumes", "--remove-orphans",
                        "--timeout", "2"], capture_output=True, timeout=120, check=False)


def wait_for_deployment(deployment_id: int, timeout: float = 180):
    from deployments.models import Deployment

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        deployment = Deployment.objects.get(pk=deployment_id)
        if deployment.is_finished:
            return deployment
        time.sleep(0.3)
    raise AssertionError(f"deployment {deployment_id} did not finish within {timeout} s")


def http_get(port: int, path: str = "/", timeout: float = 10) -> str:
    """GET from 127.0.0.1:port, retrying until the listener responds or the timeout passes."""
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=3) as response:
                return response.read().decode()
        except (urllib.error.URLError, ConnectionError, OSError) as error:
            last_error = error
            time.sleep(0.3)
    raise AssertionError(f"127.0.0.1:{port} did not answer within {timeout} s: {last_error}")


def container_environ(container: str) -> dict[bytes, bytes]:
    """The environment of the container's main process, read byte for byte from /proc/1/environ."""
    completed = subprocess.run(["docker", "exec", container, "cat", "/proc/1/environ"],
                               capture_output=True, timeout=30, check=True)
    environ = {}
    for entry in completed.stdout.split(b"\0"):
        if entry:
            key, _, value = entry.partition(b"=")
            environ[key] = value
    return environ


def container_of(compose_project: str, service: str) -> str:
    return f"{compose_project}-{service}-1"
