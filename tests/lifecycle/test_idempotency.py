"""Idempotency keys: the same key and input return the same deployment, a different input is a conflict."""

import pytest

from accounts.principal import SYSTEM
from daoflow.errors import Conflict
from deployments import actions
from deployments.models import Deployment

from .conftest import IMAGE_V2, make_service, run_command, update

pytestmark = pytest.mark.django_db


def test_same_key_same_input_returns_same(service, recorded_queue, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        first, created_first = actions.deploy(SYSTEM, service, idempotency_key="release-1")
        second, created_second = actions.deploy(SYSTEM, service, idempotency_key="release-1")

    assert second.pk == first.pk
    assert created_first is True
    assert created_second is False
    assert Deployment.objects.count() == 1
    assert recorded_queue.ids == [first.pk]


def test_same_key_after_finish_returns_same(service):
    first, _ = actions.deploy(SYSTEM, service, idempotency_key="release-1")
    Deployment.objects.filter(pk=first.pk).update(status="completed", conclusion="succeeded")

    again, created = actions.deploy(SYSTEM, service, idempotency_key="release-1")

    assert again.pk == first.pk
    assert created is False


def test_same_key_other_input_conflicts(service):
    first, _ = actions.deploy(SYSTEM, service, idempotency_key="release-1")
    update(service, image=IMAGE_V2)

    with pytest.raises(Conflict, match=f"'release-1' was used for deployment {first.pk} with a different input"):
        actions.deploy(SYSTEM, service, idempotency_key="release-1")

    assert Deployment.objects.count() == 1


def test_changed_secret_counts_as_other_input(service):
    actions.deploy(SYSTEM, service, idempotency_key="release-1")
    update(service, set_env=[("API_TOKEN", "rotated", True)])

    with pytest.raises(Conflict):
        actions.deploy(SYSTEM, service, idempotency_key="release-1")


def test_key_is_per_service(service):
    other = make_service("other", "api")

    first, _ = actions.deploy(SYSTEM, service, idempotency_key="release-1")
    second, created = actions.deploy(SYSTEM, other, idempotency_key="release-1")

    assert created is True
    assert second.pk != first.pk


def test_no_key_always_creates(service):
    first, _ = actions.deploy(SYSTEM, service)
    second, created = actions.deploy(SYSTEM, service)

    assert created is True
    assert second.pk != first.pk


# -- command line -------------------------------------------------------------


def test_cli_same_key_twice(service):
    args = ("deploy", "--service", "web", "--yes", "--json", "--idempotency-key", "release-1")

    first = run_command(*args)
    second = run_command(*args)

    assert first.exit_code == 0
    assert second.exit_code == 0
    assert first.json["data"]["created"] is True
    assert second.json["data"]["created"] is False
    assert second.json["data"]["deployment"]["id"] == first.json["data"]["deployment"]["id"]
    assert Deployment.objects.count() == 1


def test_cli_same_key_other_input(service):
    args = ("deploy", "--service", "web", "--yes", "--json", "--idempotency-key", "release-1")
    run_command(*args)
    update(service, image=IMAGE_V2)

    result = run_command(*args)

    assert result.exit_code == 1
    assert result.json["ok"] is False
    assert result.json["code"] == "CONFLICT"
    assert "release-1" in result.json["error"]
    assert Deployment.objects.count() == 1


def test_cli_replay_text_says_nothing_new(service):
    args = ("deploy", "--service", "web", "--yes", "--idempotency-key", "release-1")
    run_command(*args)

    result = run_command(*args)

    assert "nothing new was queued" in result.stdout


def test_cli_deploy_needs_confirmation(service):
    result = run_command("deploy", "--service", "web", "--json", "--idempotency-key", "release-1")

    assert result.exit_code == 1
    assert result.json["code"] == "CONFIRMATION_REQUIRED"
    assert not Deployment.objects.exists()
