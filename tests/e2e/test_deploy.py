"""Deploying each source type for real: a Celery worker over Redis, PostgreSQL, Docker, and sshd."""

import json
import subprocess
import uuid
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

from accounts.principal import SYSTEM
from deployments.actions import deploy
from services import actions
from services.config import ServiceInput
from services.models import Server

from .conftest import container_environ, container_of, http_get, wait_for_deployment

pytestmark = pytest.mark.e2e

HARD_VALUE = "p@ss$word 'x' \"y\" #z"
SECRET_VALUE = "s3cr3t-$HOME-#not-a-comment"


def make_project(name: str, server: Server):
    # A suffix per call keeps Compose project names apart when two test runs share the engine.
    project = actions.create_project(SYSTEM, f"{name}-{uuid.uuid4().hex[:6]}", "production", server)
    return project, project.environments.get()


def services_json(name: str) -> dict:
    out = StringIO()
    call_command("services", "--name", name, "--json", stdout=out)
    return json.loads(out.getvalue())["data"]["service"]


def git_repository(path: Path, files: dict[str, str]) -> str:
    """A local Git repository with one commit on branch main; returns its file:// URL."""
    path.mkdir(parents=True)
    for name, content in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(content)
    run = lambda *args: subprocess.run(["git", "-C", str(path), *args], check=True, capture_output=True)  # noqa: E731
    run("init", "-q", "-b", "main")
    run("add", "-A")
    run("-c", "user.name=test", "-c", "user.email=test@example.invalid", "commit", "-q", "-m", "initial")
    return f"file://{path}"


def test_image_service_over_ssh(celery_worker, ssh_server, images, port, compose_projects):
    project, environment = make_project("shop", ssh_server)
    service = actions.create_service(SYSTEM, project, environment, ServiceInput(
        name="web", source_type="image", image=images["web_v1"], add_ports=[f"127.0.0.1:{port}:8080"],
        set_env=[("GREETING", HARD_VALUE, False), ("API_TOKEN", SECRET_VALUE, True)],
    ))
    compose_projects.append(service.compose_project)

    deployment, created = deploy(SYSTEM, service)
    finished = wait_for_deployment(deployment.pk)

    assert created
    assert finished.conclusion == "succeeded", finished.failure_reason
    assert http_get(port).strip() == "web v1"
    shown = services_json("web")
    assert shown["state"] == "healthy"
    assert shown["state_label"] == "Running / Healthy"
    assert [step["name"] for step in _steps(finished)] == ["resolve", "pull", "start", "health"]
    assert all(step["status"] == "succeeded" for step in _steps(finished))
    assert shown["endpoints"][0]["address"] == f"127.0.0.1:{port}"
    environ = container_environ(container_of(service.compose_project, "web"))
    assert environ[b"GREETING"] == HARD_VALUE.encode()
    assert environ[b"API_TOKEN"] == SECRET_VALUE.encode()
    workdir = Path(finished.input["workdir"])
    assert workdir.stat().st_mode & 0o777 == 0o755
    assert (workdir / "daoflow.env.yaml").stat().st_mode & 0o777 == 0o600
    assert (workdir / "compose.yaml").stat().st_mode & 0o777 == 0o644


def test_no_plaintext_secret_in_database(celery_worker, ssh_server, images, port, compose_projects):
    project, environment = make_project("vault", ssh_server)
    service = actions.create_service(SYSTEM, project, environment, ServiceInput(
        name="web", source_type="image", image=images["web_v1"], add_ports=[f"127.0.0.1:{port}:8080"],
        set_env=[("API_TOKEN", SECRET_VALUE, True), ("GREETING", HARD_VALUE, False)],
    ))
    compose_projects.append(service.compose_project)
    finished = wait_for_deployment(deploy(SYSTEM, service)[0].pk)
    assert finished.conclusion == "succeeded", finished.failure_reason

    for needle in (SECRET_VALUE, HARD_VALUE, "s3cr3t"):
        assert _tables_containing(needle) == [], needle


def test_dockerfile_service_over_ssh(celery_worker, ssh_server, images, port, compose_projects, tmp_path):
    url = git_repository(tmp_path / "repo", {
        "docker/Dockerfile": f"FROM {images['web_v1']}\nCOPY docker/index.html /www/index.html\n",
        "docker/index.html": "built from git\n",
    })
    project, environment = make_project("builder", ssh_server)
    service = actions.create_service(SYSTEM, project, environment, ServiceInput(
        name="site", source_type="dockerfile", repository_url=url, branch="main",
        dockerfile_path="docker/Dockerfile", add_ports=[f"127.0.0.1:{port}:8080"],
    ))
    compose_projects.append(service.compose_project)

    finished = wait_for_deployment(deploy(SYSTEM, service)[0].pk)

    assert finished.conclusion == "succeeded", finished.failure_reason
    assert [step["name"] for step in _steps(finished)] == ["clone", "resolve", "build", "start", "health"]
    assert finished.steps.get(name="clone").detail.startswith("commit ")
    assert http_get(port).strip() == "built from git"
    assert services_json("site")["state"] == "healthy"


def test_compose_service_from_repository_over_ssh(celery_worker, ssh_server, images, port, compose_projects, tmp_path):
    url = git_repository(tmp_path / "stack", {
        "deploy/compose.yaml": (
            "services:\n"
            "  app:\n"
            f"    image: {images['web_v1']}\n"
            "    environment:\n"
            "      FROM_FILE: kept\n"
            "  sidecar:\n"
            f"    image: {images['busybox']}\n"
            "    command: [\"sleep\", \"3600\"]\n"
        ),
    })
    project, environment = make_project("stacks", ssh_server)
    service = actions.create_service(SYSTEM, project, environment, ServiceInput(
        name="stack", source_type="compose", repository_url=url, compose_path="deploy/compose.yaml",
        add_ports=[f"127.0.0.1:{port}:8080"], set_env=[("GREETING", HARD_VALUE, False)],
    ))
    compose_projects.append(service.compose_project)

    finished = wait_for_deployment(deploy(SYSTEM, service)[0].pk)

    assert finished.conclusion == "succeeded", finished.failure_reason
    assert http_get(port).strip() == "web v1"
    app = container_environ(container_of(service.compose_project, "app"))
    sidecar = container_environ(container_of(service.compose_project, "sidecar"))
    assert app[b"FROM_FILE"] == b"kept"
    assert app[b"GREETING"] == HARD_VALUE.encode()
    assert sidecar[b"GREETING"] == HARD_VALUE.encode()
    assert services_json("stack")["state"] == "healthy"


def test_inline_compose_service_over_ssh(celery_worker, ssh_server, images, port, compose_projects):
    document = f"services:\n  web:\n    image: {images['web_v2']}\n"
    project, environment = make_project("inline", ssh_server)
    service = actions.create_service(SYSTEM, project, environment, ServiceInput(
        name="web", source_type="compose", compose_document=document, add_ports=[f"127.0.0.1:{port}:8080"],
    ))
    compose_projects.append(service.compose_project)

    finished = wait_for_deployment(deploy(SYSTEM, service)[0].pk)

    assert finished.conclusion == "succeeded", finished.failure_reason
    assert http_get(port).strip() == "web v2"


def test_container_exiting_fails_deployment(celery_worker, ssh_server, images, compose_projects):
    document = (f"services:\n  job:\n    image: {images['busybox']}\n"
                "    command: [\"sh\", \"-c\", \"echo cannot-open-database; exit 1\"]\n")
    project, environment = make_project("broken", ssh_server)
    service = actions.create_service(SYSTEM, project, environment, ServiceInput(
        name="job", source_type="compose", compose_document=document,
    ))
    compose_projects.append(service.compose_project)

    finished = wait_for_deployment(deploy(SYSTEM, service)[0].pk)

    assert finished.conclusion == "failed"
    assert finished.failed_step in ("start", "health")
    assert "exit" in finished.failure_reason.lower()
    assert "cannot-open-database" in finished.failure_reason
    assert finished.steps.get(name=finished.failed_step).status == "failed"
    assert services_json("job")["state"] == "degraded"


def test_invalid_compose_fails_in_resolve(celery_worker, ssh_server, images, compose_projects):
    document = f"services:\n  web:\n    image: {images['web_v1']}\n    frobnicate: sometimes\n"
    project, environment = make_project("invalid", ssh_server)
    service = actions.create_service(SYSTEM, project, environment, ServiceInput(
        name="web", source_type="compose", compose_document=document,
    ))
    compose_projects.append(service.compose_project)

    finished = wait_for_deployment(deploy(SYSTEM, service)[0].pk)

    assert finished.conclusion == "failed"
    assert finished.failed_step == "resolve"
    assert "frobnicate" in finished.failure_reason
    assert services_json("web")["state"] == "degraded"


def test_unapproved_host_key_gets_no_deployment(celery_worker, ssh_target, images):
    server = actions.add_server(SYSTEM, name="unapproved", host=ssh_target.host, port=ssh_target.port,
                                user=ssh_target.user, private_key=Path(ssh_target.key_path).read_text())
    project, environment = make_project("closed", server)
    service = actions.create_service(SYSTEM, project, environment, ServiceInput(
        name="web", source_type="image", image=images["web_v1"],
    ))

    from daoflow.errors import InvalidInput

    with pytest.raises(InvalidInput, match="no approved host key"):
        deploy(SYSTEM, service)
    assert not service.deployments.exists()


def test_changed_host_key_gets_no_command(celery_worker, ssh_server, images, e2e_root):
    # An ed25519 key that the loopback sshd does not have stands for a host
    # whose key changed after approval.
    other_key = subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(e2e_root / "impostor")],
        capture_output=True, check=True,
    )
    assert other_key.returncode == 0
    ssh_server.approved_host_key = " ".join((e2e_root / "impostor.pub").read_text().split()[:2])
    ssh_server.save()
    project, environment = make_project("tampered", ssh_server)
    service = actions.create_service(SYSTEM, project, environment, ServiceInput(
        name="web", source_type="image", image=images["web_v1"],
    ))

    finished = wait_for_deployment(deploy(SYSTEM, service)[0].pk)

    assert finished.conclusion == "failed"
    assert finished.failed_step == "resolve"
    assert "does not match the approved key" in finished.failure_reason
    workdir = e2e_root / "remote-targets" / project.name
    assert not workdir.exists()


def _steps(deployment) -> list[dict]:
    return list(deployment.steps.order_by("position").values("name", "status"))


def _tables_containing(needle: str) -> list[str]:
    """Tables that have a row whose text form contains `needle` (PostgreSQL)."""
    found = []
    with connection.cursor() as cursor:
        tables = connection.introspection.table_names(cursor)
        for table in tables:
            cursor.execute(
                f'SELECT 1 FROM "{table}" AS t WHERE position(%s in t::text) > 0 LIMIT 1', [needle]
            )
            if cursor.fetchone():
                found.append(table)
    return found
