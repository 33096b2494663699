"""Builders for the lifecycle tests: services on the local engine, finished deployments, principals and CLI calls."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts import actions as account_actions
from accounts.principal import SYSTEM, principal_for
from deployments.models import Deployment
from services import actions
from services.config import ServiceInput

SECRET = "s3cr3t-token-value"
IMAGE_V1 = "daoflow-test/web:1"
IMAGE_V2 = "daoflow-test/web:2"


def make_service(project_name: str = "shop", name: str = "web", **fields):
    """An image service on the local engine with one plain and one secret variable."""
    project = actions.create_project(SYSTEM, project_name)
    data = {
        "name": name,
        "source_type": "image",
        "image": IMAGE_V1,
        "set_env": [("GREETING", "hello", False), ("API_TOKEN", SECRET, True)],
        **fields,
    }
    return actions.create_service(SYSTEM, project, project.environments.get(), ServiceInput(**data))


def update(service, **fields):
    actions.update_service(SYSTEM, service, ServiceInput(**fields))
    service.refresh_from_db()
    return service


def finish(deployment: Deployment, conclusion: str = Deployment.CONCLUSION_SUCCEEDED, *, touched: bool = True):
    """Mark a deployment completed as a worker would have."""
    now = timezone.now()
    Deployment.objects.filter(pk=deployment.pk).update(
        status=Deployment.STATUS_COMPLETED, conclusion=conclusion, started_at=now, finished_at=now,
        touched_target=touched,
    )
    deployment.refresh_from_db()
    return deployment


def start(deployment: Deployment, *, touched: bool = False):
    Deployment.objects.filter(pk=deployment.pk).update(
        status=Deployment.STATUS_RUNNING, started_at=timezone.now(), touched_target=touched,
    )
    deployment.refresh_from_db()
    return deployment


def principal_with_role(username: str, role: str, project=None, granted: list[str] | None = None):
    """A user with `role` and, when given, object grants on `project`."""
    user = account_actions.create_user(SYSTEM, username=username, role=role)
    if project is not None and granted:
        account_actions.grant(SYSTEM, user, project, granted)
    return principal_for(user)


def token_for(username: str, role: str, project, granted: list[str]) -> str:
    """A raw API token of a new user with `role` and grants on `project`."""
    user = account_actions.create_user(SYSTEM, username=username, role=role)
    account_actions.grant(SYSTEM, user, project, granted)
    _, raw = account_actions.create_token(SYSTEM, user, name="cli", requested=granted)
    return raw


class CommandResult:
    def __init__(self, exit_code: int, stdout: str, stderr: str):
        self.exit_code = exit_code
        self.stdout = stdout
        self.stderr = stderr

    @property
    def json(self) -> dict:
        return json.loads(self.stdout)


def run_command(name: str, *args: str) -> CommandResult:
    """Run a daoflow command as the command line would, catching its exit code."""
    out, err = StringIO(), StringIO()
    try:
        call_command(name, *args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    return CommandResult(code, out.getvalue(), err.getvalue())


@pytest.fixture
def service(db):
    return make_service()
