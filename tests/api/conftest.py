"""Builders of users, tokens, projects, services and grants for the API and permission tests."""

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from accounts import scopes
from accounts.models import APIToken, Membership, hash_token
from services.models import (
    Environment,
    EnvironmentVariable,
    PortMapping,
    Project,
    ProjectUserObjectPermission,
    Server,
    Service,
    ServiceUserObjectPermission,
)

ROLES = list(scopes.ROLE_SCOPES)


def make_user(username: str, role: str):
    user = get_user_model().objects.create_user(username=username, password="pw-" + username)
    Membership.objects.create(user=user, role=role)
    return user


def make_token(user, token_scopes, name: str = "test") -> str:
    raw = APIToken.generate()
    APIToken.objects.create(user=user, name=name, prefix=raw[:12], token_hash=hash_token(raw),
                            scopes=sorted(token_scopes))
    return raw


def grant(user, obj, *granted: str) -> None:
    from django.contrib.auth.models import Permission
    from django.contrib.contenttypes.models import ContentType

    from services.models import permission_codename

    table = ProjectUserObjectPermission if isinstance(obj, Project) else ServiceUserObjectPermission
    for scope in granted:
        permission = Permission.objects.get(
            content_type=ContentType.objects.get_for_model(type(obj)), codename=permission_codename(scope)
        )
        table.objects.create(user=user, permission=permission, content_object=obj)


def local_server() -> Server:
    server, _ = Server.objects.get_or_create(name="local", defaults={"kind": Server.KIND_LOCAL, "host": "", "user": ""})
    return server


def make_project(name: str) -> Project:
    project = Project.objects.create(name=name)
    Environment.objects.create(project=project, name="production", default_server=local_server())
    return project


def make_service(project: Project, name: str, *, port: str | None = None, secret: str = "s3cret-value") -> Service:
    environment = project.environments.get(name="production")
    service = Service.objects.create(
        project=project, environment=environment, name=name, source_type=Service.SOURCE_IMAGE,
        image="nginx:1.27", compose_project=f"{project.name}-{environment.name}-{name}",
    )
    if port:
        PortMapping.objects.create(service=service, host_ip="127.0.0.1", published=port, target="80")
    EnvironmentVariable.objects.create(project=project, environment=environment, service=service,
                                       key="GREETING", value="hello", secret=False)
    EnvironmentVariable.objects.create(project=project, environment=environment, service=service,
                                       key="API_TOKEN", value=secret, secret=True)
    return service


def client_for(user=None, token: str | None = None) -> APIClient:
    client = APIClient()
    if token is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    elif user is not None:
        client.force_authenticate(user=user)
    return client


@pytest.fixture
def world(db):
    """Two projects with one service each; `granted` is the one non-admin roles get grants on."""
    granted_project = make_project("granted")
    other_project = make_project("other")
    return {
        "granted_project": granted_project,
        "other_project": other_project,
        "granted": make_service(granted_project, "web", port="8080"),
        "other": make_service(other_project, "db", port="5432"),
    }


@pytest.fixture
def owner(db):
    return make_user("owner", scopes.OWNER)


SECRET = "s3cret-value"
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBf0sN7m3kQ2S7n3pYbqY9nXl2kq8mJtQ3e8V1t5yZ0a"


def make_deployment(service, *, succeeded: bool = True):
    """A deployment made by the real deploy action, then marked finished as a worker would."""
    from django.utils import timezone

    from accounts.principal import SYSTEM
    from deployments.actions import deploy
    from deployments.models import Deployment, DeploymentLogLine

    deployment, _ = deploy(SYSTEM, service)
    if succeeded:
        Deployment.objects.filter(pk=deployment.pk).update(
            status=Deployment.STATUS_COMPLETED, conclusion=Deployment.CONCLUSION_SUCCEEDED,
            started_at=timezone.now(), finished_at=timezone.now(), touched_target=True,
        )
    DeploymentLogLine.objects.create(deployment=deployment, stream="stdout", text="API_TOKEN=********")
    deployment.refresh_from_db()
    return deployment


def make_ssh_server(name: str = "web1") -> Server:
    return Server.objects.create(name=name, kind=Server.KIND_SSH, host="127.0.0.1", port=2222, user="deploy",
                                 private_key="-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n",
                                 scanned_host_key=HOST_KEY)


@pytest.fixture
def full_world(world):
    """`world` with a finished deployment per service and one SSH server whose host key awaits approval."""
    world["granted_deployment"] = make_deployment(world["granted"])
    world["other_deployment"] = make_deployment(world["other"])
    world["ssh_server"] = make_ssh_server()
    return world
