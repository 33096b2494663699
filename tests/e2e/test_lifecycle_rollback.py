"""Rolling back for real: the earlier image and environment values run again, checked inside the container."""

import json
import subprocess
import uuid
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from accounts.principal import SYSTEM
from deployments.actions import deploy
from deployments.models import Deployment
from services import actions
from services.config import ServiceInput

from .conftest import container_environ, container_of, http_get, wait_for_deployment

pytestmark = pytest.mark.e2e

SECRET_V1 = "first-$ecret 'quoted'"
SECRET_V2 = "second-secret"


def make_project(name: str, server):
    project = actions.create_project(SYSTEM, f"{name}-{uuid.uuid4().hex[:6]}", "production", server)
    return project, project.environments.get()


def daoflow(*args: str) -> tuple[int, dict]:
    out = StringIO()
    try:
        call_command(*args, "--json", stdout=out)
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    return code, json.loads(out.getvalue())


def deployed(service) -> Deployment:
    finished = wait_for_deployment(deploy(SYSTEM, service)[0].pk)
    assert finished.conclusion == "succeeded", finished.failure_reason
    return finished


def test_rollback_restores_image_and_env(celery_worker, ssh_server, images, port, compose_projects):
    project, environment = make_project("rollback", ssh_server)
    service = actions.create_service(SYSTEM, project, environment, ServiceInput(
        name="web", source_type="image", image=images["web_v1"], add_ports=[f"127.0.0.1:{port}:8080"],
        set_env=[("GREETING", "hello from v1", False), ("API_TOKEN", SECRET_V1, True)],
    ))
    compose_projects.append(service.compose_project)
    container = container_of(service.compose_project, "web")

    v1 = deployed(service)
    assert http_get(port).strip() == "web v1"
    actions.update_service(SYSTEM, service, ServiceInput(
        image=images["web_v2"], set_env=[("GREETING", "hello from v2", False), ("API_TOKEN", SECRET_V2, True)],
    ))
    service.refresh_from_db()
    deployed(service)
    assert http_get(port).strip() == "web v2"
    assert container_environ(container)[b"GREETING"] == b"hello from v2"

    code, document = daoflow("rollback", "--service", "web", "--project", project.name,
                             "--target", str(v1.pk), "--yes", "--wait")

    assert code == 0, document
    shown = document["data"]["deployment"]
    assert shown["conclusion"] == "succeeded"
    assert shown["trigger"] == "rollback"
    assert shown["rollback_of"] == v1.pk
    assert http_get(port).strip() == "web v1"
    environ = container_environ(container)
    assert environ[b"GREETING"] == b"hello from v1"
    assert environ[b"API_TOKEN"] == SECRET_V1.encode()
    code, services = daoflow("services", "--name", "web", "--project", project.name)
    assert services["data"]["service"]["state"] == "healthy"
    assert services["data"]["service"]["latest_deployment"]["trigger"] == "rollback"


def test_rollback_of_dockerfile_service_reuses_image(celery_worker, ssh_server, images, port, compose_projects,
                                                     tmp_path):
    repository = _git_repository(tmp_path / "site", images["web_v1"], "built v1\n")
    project, environment = make_project("rebuild", ssh_server)
    service = actions.create_service(SYSTEM, project, environment, ServiceInput(
        name="site", source_type="dockerfile", repository_url=f"file://{repository}", branch="main",
        add_ports=[f"127.0.0.1:{port}:8080"],
    ))
    compose_projects.append(service.compose_project)

    v1 = deployed(service)
    assert http_get(port).strip() == "built v1"
    _commit(repository, "built v2\n")
    deployed(service)
    assert http_get(port).strip() == "built v2"

    code, document = daoflow("rollback", "--service", "site", "--project", project.name,
                             "--target", str(v1.pk), "--yes", "--wait")

    assert code == 0, document
    assert http_get(port).strip() == "built v1"
    rolled = Deployment.objects.get(pk=document["data"]["deployment"]["id"])
    steps = {step.name: step for step in rolled.steps.all()}
    assert steps["clone"].detail.startswith("no clone: the rollback reuses the image")
    assert steps["build"].detail.startswith("no build: the rollback reuses the image")
    assert rolled.input["rollback_image"].endswith(f":deployment-{v1.pk}")


def _git_repository(path: Path, base_image: str, page: str) -> Path:
    path.mkdir(parents=True)
    (path / "Dockerfile").write_text(f"FROM {base_image}\nCOPY index.html /www/index.html\n")
    _git(path, "init", "-q", "-b", "main")
    _commit(path, page)
    return path


def _commit(path: Path, page: str) -> None:
    (path / "index.html").write_text(page)
    _git(path, "add", "-A")
    _git(path, "-c", "user.name=test", "-c", "user.email=test@example.invalid", "commit", "-q", "-m", page.strip())


def _git(path: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(path), *args], check=True, capture_output=True, timeout=60)
