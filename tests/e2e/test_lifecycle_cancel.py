"""Cancelling for real: a queued deployment never runs, a running one stops and records who cancelled it."""

import json
import time
import uuid
from io import StringIO

import pytest
from django.core.management import call_command

from accounts.principal import SYSTEM
from deployments.actions import cancel, deploy
from deployments.models import Deployment, DeploymentStep
from services import actions
from services.config import ServiceInput

from .conftest import wait_for_deployment

pytestmark = pytest.mark.e2e

# Seconds the container takes to report healthy: longer than the tests wait
# before cancelling, shorter than the worker's DAOFLOW_HEALTH_TIMEOUT (30),
# so `docker compose up --wait` is still running when the cancel arrives.
SLOW_START_SECONDS = 25


def slow_stack(busybox: str) -> str:
    """A compose document whose only service reports healthy SLOW_START_SECONDS after it starts."""
    return (
        "services:\n"
        "  slow:\n"
        f"    image: {busybox}\n"
        f"    command: [\"sh\", \"-c\", \"sleep {SLOW_START_SECONDS}; touch /tmp/ready; sleep 3600\"]\n"
        "    healthcheck:\n"
        "      test: [\"CMD\", \"test\", \"-f\", \"/tmp/ready\"]\n"
        "      interval: 1s\n"
        "      retries: 120\n"
    )


def make_slow_service(server, busybox: str):
    project = actions.create_project(SYSTEM, f"cancel-{uuid.uuid4().hex[:6]}", "production", server)
    return actions.create_service(SYSTEM, project, project.environments.get(), ServiceInput(
        name="slow", source_type="compose", compose_document=slow_stack(busybox),
    ))


def wait_for_step(deployment_id: int, name: str, timeout: float = 60) -> DeploymentStep:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        step = DeploymentStep.objects.filter(deployment_id=deployment_id, name=name).first()
        if step is not None and step.status == DeploymentStep.STATUS_RUNNING:
            return step
        time.sleep(0.2)
    raise AssertionError(f"step {name} of deployment {deployment_id} did not start within {timeout} s")


def service_state(service) -> str:
    out = StringIO()
    call_command("services", "--name", service.name, "--project", service.project.name, "--json", stdout=out)
    return json.loads(out.getvalue())["data"]["service"]["state"]


def test_cancel_queued_deployment(celery_worker, ssh_server, images, compose_projects):
    service = make_slow_service(ssh_server, images["busybox"])
    compose_projects.append(service.compose_project)
    running, _ = deploy(SYSTEM, service)
    wait_for_step(running.pk, "start")
    # The service is busy, so this one waits in the queue.
    waiting, _ = deploy(SYSTEM, service)

    cancelled = cancel(SYSTEM, waiting)

    assert cancelled.conclusion == "cancelled"
    assert cancelled.cancelled_by == SYSTEM.label
    cancel(SYSTEM, running)
    wait_for_deployment(running.pk, timeout=60)
    # A task delivered for the cancelled deployment finds nothing to claim.
    time.sleep(2)
    waiting.refresh_from_db()
    assert waiting.started_at is None
    assert not waiting.steps.exists()
    assert waiting.touched_target is False
    assert waiting.status == Deployment.STATUS_COMPLETED


def test_cancel_running_deployment(celery_worker, ssh_server, images, compose_projects):
    service = make_slow_service(ssh_server, images["busybox"])
    compose_projects.append(service.compose_project)
    deployment, _ = deploy(SYSTEM, service)
    wait_for_step(deployment.pk, "start")

    out = StringIO()
    call_command("cancel", "--deployment", str(deployment.pk), "--yes", "--json", stdout=out)
    requested_at = time.monotonic()
    finished = wait_for_deployment(deployment.pk, timeout=60)

    assert json.loads(out.getvalue())["ok"] is True
    assert finished.conclusion == "cancelled", finished.failure_reason
    assert finished.cancelled_by == SYSTEM.label
    assert finished.failed_step == ""
    # Well before the container would have turned healthy.
    assert time.monotonic() - requested_at < SLOW_START_SECONDS
    steps = {step.name: step.status for step in finished.steps.all()}
    assert steps["start"] == "cancelled"
    assert steps["health"] == "skipped"
    # It ran commands on the target before it stopped, so the service is
    # left degraded rather than as the previous deployment made it.
    assert finished.touched_target is True
    assert service_state(service) == "degraded"
