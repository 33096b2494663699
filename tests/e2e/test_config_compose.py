"""A repository stack that uses include, extends and env_file deploys with the product's override merged in."""

import uuid

import pytest

from accounts.principal import SYSTEM
from deployments.actions import deploy
from services import actions
from services.config import ServiceInput

from .conftest import container_environ, container_of, http_get, wait_for_deployment
from .test_deploy import git_repository

pytestmark = pytest.mark.e2e


def test_include_extends_env_file(celery_worker, ssh_server, images, port, compose_projects, tmp_path):
    url = git_repository(tmp_path / "stack", {
        "deploy/compose.yaml": (
            "include:\n"
            "  - sidecar.yaml\n"
            "services:\n"
            "  app:\n"
            "    extends:\n"
            "      file: common.yaml\n"
            "      service: base\n"
            "    env_file:\n"
            "      - app.env\n"
        ),
        "deploy/common.yaml": (
            "services:\n"
            "  base:\n"
            f"    image: {images['web_v1']}\n"
            "    environment:\n"
            "      FROM_EXTENDS: extended\n"
        ),
        "deploy/sidecar.yaml": (
            "services:\n"
            "  sidecar:\n"
            f"    image: {images['busybox']}\n"
            "    command: [\"sleep\", \"3600\"]\n"
        ),
        "deploy/app.env": "FROM_ENV_FILE=from the env file\nSHADOWED=from the env file\n",
    })
    project = actions.create_project(SYSTEM, f"cfgstack-{uuid.uuid4().hex[:6]}", "production", ssh_server)
    service = actions.create_service(SYSTEM, project, project.environments.get(), ServiceInput(
        name="stack", source_type="compose", repository_url=url, compose_path="deploy/compose.yaml",
        add_ports=[f"127.0.0.1:{port}:8080"], set_env=[("SHADOWED", "from daoflow", False),
                                                       ("GREETING", "$hello #x", False)],
    ))
    compose_projects.append(service.compose_project)

    finished = wait_for_deployment(deploy(SYSTEM, service)[0].pk)

    assert finished.conclusion == "succeeded", finished.failure_reason
    assert http_get(port).strip() == "web v1"
    app = container_environ(container_of(service.compose_project, "app"))
    sidecar = container_environ(container_of(service.compose_project, "sidecar"))
    assert app[b"FROM_EXTENDS"] == b"extended"
    assert app[b"FROM_ENV_FILE"] == b"from the env file"
    assert app[b"SHADOWED"] == b"from daoflow"
    assert app[b"GREETING"] == b"$hello #x"
    assert sidecar[b"GREETING"] == b"$hello #x"


def test_broken_include_fails_resolve(celery_worker, ssh_server, images, compose_projects, tmp_path):
    url = git_repository(tmp_path / "broken", {
        "compose.yaml": (
            "include:\n"
            "  - missing.yaml\n"
            "services:\n"
            "  app:\n"
            f"    image: {images['web_v1']}\n"
        ),
    })
    project = actions.create_project(SYSTEM, f"cfgbroken-{uuid.uuid4().hex[:6]}", "production", ssh_server)
    service = actions.create_service(SYSTEM, project, project.environments.get(), ServiceInput(
        name="stack", source_type="compose", repository_url=url,
    ))
    compose_projects.append(service.compose_project)

    finished = wait_for_deployment(deploy(SYSTEM, service)[0].pk)

    assert finished.conclusion == "failed"
    assert finished.failed_step == "resolve"
    assert "missing.yaml" in finished.failure_reason
