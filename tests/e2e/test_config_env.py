"""Environment values and layering, read back from inside containers that a real worker deployed."""

import uuid

import pytest

from accounts.principal import SYSTEM
from deployments.actions import deploy
from services import actions, env
from services.config import ServiceInput

from .conftest import container_environ, container_of, wait_for_deployment

pytestmark = pytest.mark.e2e

PEM = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIJ+$HOME+${X}+#/aGVsbG8=\n"
    "-----END PRIVATE KEY-----\n"
)
HARD_VALUES = {
    "DOLLAR": "$",
    "DOUBLE_DOLLAR": "$$",
    "BRACED": "${X}",
    "DEFAULTED": "${X:-fallback} $HOME",
    "HASH": "value # not a comment",
    "QUOTES": "'single' \"double\" `back` \\slash",
    "PEM": PEM,
    "EMPTY": "",
    "SPACES": "  leading and trailing  ",
    "UNICODE": "naïve ünïcödé \u2028 \x85 end",
    "a.b:c": "key with dot and colon",
    "K$Y": "key with a dollar",
}


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:6]}"


def deployed_environ(service) -> dict[bytes, bytes]:
    finished = wait_for_deployment(deploy(SYSTEM, service)[0].pk)
    assert finished.conclusion == "succeeded", finished.failure_reason
    return container_environ(container_of(service.compose_project, service.name))


def test_hard_values_reach_container(celery_worker, ssh_server, images, compose_projects):
    project = actions.create_project(SYSTEM, unique("cfgenv"), "production", ssh_server)
    service = actions.create_service(SYSTEM, project, project.environments.get(), ServiceInput(
        name="web", source_type="image", image=images["web_v1"],
        set_env=[(key, value, key == "PEM") for key, value in HARD_VALUES.items()],
    ))
    compose_projects.append(service.compose_project)

    environ = deployed_environ(service)

    for key, value in HARD_VALUES.items():
        assert environ.get(key.encode()) == value.encode(), key


def test_service_value_overrides_project(celery_worker, ssh_server, images, compose_projects):
    project = actions.create_project(SYSTEM, unique("cfglayer"), "production", ssh_server)
    environment = project.environments.get()
    service = actions.create_service(SYSTEM, project, environment, ServiceInput(
        name="web", source_type="image", image=images["web_v1"]))
    compose_projects.append(service.compose_project)
    env.set_variable(SYSTEM, project=project, key="LEVEL", value="project", secret=False)
    env.set_variable(SYSTEM, project=project, key="PROJECT_ONLY", value="p", secret=False)
    env.set_variable(SYSTEM, project=project, environment=environment, key="LEVEL", value="environment",
                     secret=False)
    env.set_variable(SYSTEM, project=project, environment=environment, key="ENVIRONMENT_ONLY", value="e",
                     secret=True)
    env.set_variable(SYSTEM, project=project, service=service, key="LEVEL", value="service $X", secret=True)

    environ = deployed_environ(service)

    assert environ[b"LEVEL"] == b"service $X"
    assert environ[b"PROJECT_ONLY"] == b"p"
    assert environ[b"ENVIRONMENT_ONLY"] == b"e"
