"""Cancelling deployments: queued ones at once, running ones through the worker, finished ones never."""

import pytest

from accounts.models import AuditEntry
from accounts.principal import SYSTEM
from daoflow.errors import Conflict, ScopeDenied
from deployments import actions, queue
from deployments.models import Deployment
from services import read_model
from services.models import Service

from .conftest import finish, principal_with_role, run_command, start, token_for

pytestmark = pytest.mark.django_db


def state_of(service) -> str:
    """The service state as `daoflow services` shows it, through both read paths."""
    annotated = Service.objects.with_read_model().get(pk=service.pk)
    read_model.attach_latest_deployments([annotated])
    plain = read_model.state_of(read_model.latest_deployment_of(Service.objects.get(pk=service.pk)))
    assert read_model.state_of(annotated.latest_deployment) == plain
    return plain


def test_queued_deployment_cancelled_at_once(service, django_capture_on_commit_callbacks):
    deployment, _ = actions.deploy(SYSTEM, service)

    with django_capture_on_commit_callbacks(execute=True):
        cancelled = actions.cancel(SYSTEM, deployment)

    assert cancelled.status == Deployment.STATUS_COMPLETED
    assert cancelled.conclusion == Deployment.CONCLUSION_CANCELLED
    assert cancelled.cancelled_by == SYSTEM.label
    assert cancelled.cancel_requested_at is not None
    assert cancelled.finished_at is not None
    assert cancelled.failed_step == ""


def test_queued_cancel_enqueues_next_waiting(service, recorded_queue, django_capture_on_commit_callbacks):
    first, _ = actions.deploy(SYSTEM, service)
    second, _ = actions.deploy(SYSTEM, service)
    recorded_queue.ids.clear()

    with django_capture_on_commit_callbacks(execute=True):
        actions.cancel(SYSTEM, first)

    assert recorded_queue.ids == [second.pk]


def test_cancelled_queued_deployment_is_never_claimed(service):
    deployment, _ = actions.deploy(SYSTEM, service)
    actions.cancel(SYSTEM, deployment)

    assert queue.claim(deployment.pk, "worker-test") is None
    deployment.refresh_from_db()
    assert deployment.status == Deployment.STATUS_COMPLETED
    assert not deployment.steps.exists()


def test_running_deployment_gets_cancel_request(service):
    deployment = start(actions.deploy(SYSTEM, service)[0])

    requested = actions.cancel(SYSTEM, deployment)

    assert requested.status == Deployment.STATUS_RUNNING
    assert requested.conclusion == ""
    assert requested.cancel_requested_at is not None
    assert requested.cancelled_by == SYSTEM.label


def test_second_cancel_of_running_changes_nothing(service):
    deployment = start(actions.deploy(SYSTEM, service)[0])
    first = actions.cancel(SYSTEM, deployment)
    entries = AuditEntry.objects.filter(action="deployment.cancel").count()

    second = actions.cancel(SYSTEM, deployment)

    assert second.cancel_requested_at == first.cancel_requested_at
    assert AuditEntry.objects.filter(action="deployment.cancel").count() == entries


@pytest.mark.parametrize("conclusion", ["succeeded", "failed", "cancelled"])
def test_finished_deployment_cannot_be_cancelled(service, conclusion):
    deployment = finish(actions.deploy(SYSTEM, service)[0], conclusion)

    with pytest.raises(Conflict, match=f"Deployment {deployment.pk} already finished \\({conclusion}\\)"):
        actions.cancel(SYSTEM, deployment)

    deployment.refresh_from_db()
    assert deployment.conclusion == conclusion
    assert deployment.cancelled_by == ""
    assert not AuditEntry.objects.filter(action="deployment.cancel").exists()


def test_cancel_writes_audit_entry(service):
    deployment, _ = actions.deploy(SYSTEM, service)

    actions.cancel(SYSTEM, deployment)

    entry = AuditEntry.objects.get(action="deployment.cancel")
    assert entry.target_id == str(deployment.pk)
    assert entry.scope == "deploy:cancel"
    assert entry.diff == {"status_before": "queued", "effect": "cancelled"}
    assert entry.actor_label == SYSTEM.label


def test_cancel_needs_deploy_cancel_scope(service):
    deployment, _ = actions.deploy(SYSTEM, service)
    developer = principal_with_role("dev", "developer", service.project,
                                    ["service:read", "deploy:read", "deploy:start"])

    with pytest.raises(ScopeDenied):
        actions.cancel(developer, deployment)

    deployment.refresh_from_db()
    assert deployment.status == Deployment.STATUS_QUEUED


def test_operator_with_grant_can_cancel(service):
    deployment, _ = actions.deploy(SYSTEM, service)
    operator = principal_with_role("ops", "operator", service.project, ["service:read", "deploy:cancel"])

    cancelled = actions.cancel(operator, deployment)

    assert cancelled.cancelled_by == "ops"


# -- service state ------------------------------------------------------------


def test_cancel_before_target_keeps_state(service):
    finish(actions.deploy(SYSTEM, service)[0])
    assert state_of(service) == read_model.HEALTHY
    queued, _ = actions.deploy(SYSTEM, service)
    assert state_of(service) == read_model.UPDATING

    actions.cancel(SYSTEM, queued)

    assert state_of(service) == read_model.HEALTHY


def test_cancel_of_running_untouched_keeps_state(service):
    finish(actions.deploy(SYSTEM, service)[0])
    running = start(actions.deploy(SYSTEM, service)[0], touched=False)
    actions.cancel(SYSTEM, running)

    # The worker concludes it before it ran anything on the target.
    queue.conclude(running, Deployment.CONCLUSION_CANCELLED, reason="The deployment was cancelled.")

    assert state_of(service) == read_model.HEALTHY


def test_cancel_after_start_leaves_degraded(service):
    finish(actions.deploy(SYSTEM, service)[0])
    running = start(actions.deploy(SYSTEM, service)[0], touched=True)
    actions.cancel(SYSTEM, running)

    queue.conclude(running, Deployment.CONCLUSION_CANCELLED, reason="The deployment was cancelled.")

    assert state_of(service) == read_model.DEGRADED


def test_cancel_of_first_deployment_leaves_not_deployed(service):
    queued, _ = actions.deploy(SYSTEM, service)

    actions.cancel(SYSTEM, queued)

    assert state_of(service) == read_model.NOT_DEPLOYED


# -- command line -------------------------------------------------------------


def test_cli_cancel_needs_confirmation(service):
    deployment, _ = actions.deploy(SYSTEM, service)

    result = run_command("cancel", "--deployment", str(deployment.pk), "--json")

    assert result.exit_code == 1
    assert result.json["code"] == "CONFIRMATION_REQUIRED"
    deployment.refresh_from_db()
    assert deployment.status == Deployment.STATUS_QUEUED
    assert not AuditEntry.objects.filter(action="deployment.cancel").exists()


def test_cli_cancel_queued(service):
    deployment, _ = actions.deploy(SYSTEM, service)

    result = run_command("cancel", "--deployment", str(deployment.pk), "--yes", "--json")

    assert result.exit_code == 0
    shown = result.json["data"]["deployment"]
    assert result.json["ok"] is True
    assert shown["id"] == deployment.pk
    assert shown["status"] == "completed"
    assert shown["conclusion"] == "cancelled"
    assert shown["cancelled_by"] == SYSTEM.label


def test_cli_cancel_running_text(service):
    deployment = start(actions.deploy(SYSTEM, service)[0])

    result = run_command("cancel", "--deployment", str(deployment.pk), "--yes")

    assert result.exit_code == 0
    assert f"Cancellation of deployment {deployment.pk} requested" in result.stdout


def test_cli_cancel_dry_run(service):
    deployment, _ = actions.deploy(SYSTEM, service)

    result = run_command("cancel", "--deployment", str(deployment.pk), "--dry-run", "--json")

    assert result.exit_code == 3
    assert result.json["data"] == {"dry_run": True, "deployment": deployment.pk, "effect": "cancelled at once"}
    deployment.refresh_from_db()
    assert deployment.status == Deployment.STATUS_QUEUED


def test_cli_cancel_finished_is_conflict(service):
    deployment = finish(actions.deploy(SYSTEM, service)[0])

    for extra in (["--yes"], ["--dry-run"]):
        result = run_command("cancel", "--deployment", str(deployment.pk), "--json", *extra)
        assert result.exit_code == 1
        assert result.json["code"] == "CONFLICT"
        assert str(deployment.pk) in result.json["error"]


def test_cli_cancel_bad_id(service):
    result = run_command("cancel", "--deployment", "abc", "--yes", "--json")

    assert result.exit_code == 1
    assert result.json["code"] == "INVALID_INPUT"
    assert "'abc'" in result.json["error"]


def test_cli_cancel_unknown_id(service):
    result = run_command("cancel", "--deployment", "987654", "--yes", "--json")

    assert result.exit_code == 1
    assert result.json["code"] == "NOT_FOUND"


def test_cli_cancel_denied_exits_2(service):
    deployment, _ = actions.deploy(SYSTEM, service)
    token = token_for("viewer1", "viewer", service.project, ["service:read", "deploy:read"])

    result = run_command("cancel", "--deployment", str(deployment.pk), "--yes", "--json", "--token", token)

    assert result.exit_code == 2
    assert result.json["code"] == "SCOPE_DENIED"
    deployment.refresh_from_db()
    assert deployment.status == Deployment.STATUS_QUEUED
    denial = AuditEntry.objects.get(outcome=AuditEntry.OUTCOME_DENIED)
    assert denial.scope == "deploy:cancel"
    assert denial.target_id == str(service.pk)
