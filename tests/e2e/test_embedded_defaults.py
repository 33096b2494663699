"""The product on its embedded defaults: SQLite, the file-system broker and the local Docker engine."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO, WorkerProcess, container_environ, http_get

pytestmark = pytest.mark.e2e

DAOFLOW = str(Path(sys.executable).with_name("daoflow"))


def embedded_environment(data_dir: Path) -> dict:
    env = {key: value for key, value in os.environ.items()
           if key not in ("DATABASE_URL", "CELERY_BROKER_URL", "DAOFLOW_ENCRYPTION_KEYS", "DJANGO_SETTINGS_MODULE")}
    env["DAOFLOW_DATA_DIR"] = str(data_dir)
    env["DAOFLOW_HEALTH_TIMEOUT"] = "30"
    return env


def daoflow(env: dict, *args: str) -> tuple[int, dict]:
    completed = subprocess.run([DAOFLOW, *args, "--json"], cwd=REPO, env=env, capture_output=True, timeout=300)
    return completed.returncode, json.loads(completed.stdout)


def test_deploy_on_embedded_defaults(testbed, tmp_path, port):
    env = embedded_environment(tmp_path / "var")
    subprocess.run([DAOFLOW, "migrate", "-v", "0"], cwd=REPO, env=env, check=True, timeout=300)
    worker = WorkerProcess(env, tmp_path / "worker.log")
    worker.start()
    project_name = f"embedded{port}"
    try:
        assert daoflow(env, "project", "create", "--name", project_name, "--yes")[0] == 0
        code, created = daoflow(
            env, "service", "create", "--project", project_name, "--name", "web", "--source-type", "image",
            "--image", testbed["images"]["web_v1"], "--port", f"127.0.0.1:{port}:8080",
            "--secret-env", "TOKEN=embedded-secret", "--yes",
        )
        assert code == 0, created
        code, deployed = daoflow(env, "deploy", "--service", "web", "--yes", "--wait")
        code_list, listed = daoflow(env, "services")
    finally:
        worker.stop()
        compose_project = f"{project_name}_production_web"
        body = None
        try:
            body = http_get(port, timeout=5)
            environ = container_environ(f"{compose_project}-web-1")
        finally:
            subprocess.run(["docker", "compose", "--project-name", compose_project, "down", "--timeout", "2"],
                           capture_output=True, timeout=120, check=False)

    assert code == 0, deployed
    assert deployed["data"]["deployment"]["conclusion"] == "succeeded"
    assert code_list == 0
    assert listed["data"]["services"][0]["state"] == "healthy"
    assert body.strip() == "web v1"
    assert environ[b"TOKEN"] == b"embedded-secret"
    assert (tmp_path / "var" / "daoflow.sqlite3").exists()
    assert (tmp_path / "var" / "encryption.key").stat().st_mode & 0o777 == 0o600
    assert b"embedded-secret" not in (tmp_path / "var" / "daoflow.sqlite3").read_bytes()
