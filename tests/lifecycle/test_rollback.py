"""Rolling back: a new deployment that replays an earlier succeeded deployment's frozen input."""

import json

import pytest
import yaml

from accounts.models import AuditEntry
from accounts.principal import SYSTEM
from daoflow.errors import Conflict, InvalidInput, ScopeDenied
from deployments import actions, queue, runner
from deployments.compose import built_image_tag
from deployments.models import Deployment, DeploymentStep
from deployments.transports import CommandResult, Transport

from .conftest import IMAGE_V1, IMAGE_V2, SECRET, finish, make_service, principal_with_role, run_command, update

pytestmark = pytest.mark.django_db


def env_of(deployment) -> dict:
    return {item["key"]: item["value"] for item in deployment.input["env"]}


@pytest.fixture
def history(service):
    """Two succeeded deployments: v1 with the first env values, then v2 with new ones."""
    v1 = finish(actions.deploy(SYSTEM, service)[0])
    update(service, image=IMAGE_V2, set_env=[("GREETING", "hi v2", False), ("API_TOKEN", "new-secret", True)])
    v2 = finish(actions.deploy(SYSTEM, service)[0])
    return v1, v2


def test_rollback_replays_target_input(service, history):
    v1, v2 = history

    rolled = actions.rollback(SYSTEM, service, v1)

    assert rolled.pk not in (v1.pk, v2.pk)
    assert rolled.status == Deployment.STATUS_QUEUED
    assert rolled.trigger == Deployment.TRIGGER_ROLLBACK
    assert rolled.rollback_of_id == v1.pk
    assert rolled.server_id == v1.server_id
    assert rolled.input["image"] == IMAGE_V1
    assert env_of(rolled) == {"GREETING": "hello", "API_TOKEN": SECRET}
    assert rolled.input_digest == v1.input_digest
    assert "rollback_image" not in rolled.input


def test_rollback_leaves_history_and_service(service, history):
    v1, v2 = history
    before = {d.pk: (d.status, d.conclusion, d.frozen_input) for d in Deployment.objects.all()}

    actions.rollback(SYSTEM, service, v1)

    after = {d.pk: (d.status, d.conclusion, d.frozen_input) for d in Deployment.objects.filter(pk__in=before)}
    assert after == before
    service.refresh_from_db()
    assert service.image == IMAGE_V2


def test_rollback_enqueued_on_commit(service, history, recorded_queue, django_capture_on_commit_callbacks):
    v1, _ = history
    recorded_queue.ids.clear()

    with django_capture_on_commit_callbacks(execute=True):
        rolled = actions.rollback(SYSTEM, service, v1)

    assert recorded_queue.ids == [rolled.pk]


def test_rollback_writes_audit_entry(service, history):
    v1, _ = history

    rolled = actions.rollback(SYSTEM, service, v1)

    entry = AuditEntry.objects.get(action="deployment.rollback")
    assert entry.target_id == str(rolled.pk)
    assert entry.scope == "deploy:rollback"
    assert entry.diff["rollback_of"] == v1.pk
    assert entry.diff["trigger"] == "rollback"
    assert SECRET not in json.dumps(entry.diff)


@pytest.mark.parametrize("conclusion", ["failed", "cancelled"])
def test_unsuccessful_target_rejected(service, conclusion):
    target = finish(actions.deploy(SYSTEM, service)[0], conclusion)
    count = Deployment.objects.count()

    with pytest.raises(InvalidInput, match=f"Deployment {target.pk} cannot be a rollback target") as error:
        actions.rollback(SYSTEM, service, target)

    assert error.value.extra["field"] == "target"
    assert conclusion in error.value.message
    assert Deployment.objects.count() == count


def test_active_target_rejected(service):
    target, _ = actions.deploy(SYSTEM, service)

    with pytest.raises(InvalidInput, match=f"Deployment {target.pk} .*'queued'"):
        actions.rollback(SYSTEM, service, target)


def test_target_of_other_service_rejected(service):
    other = make_service("other", "api")
    target = finish(actions.deploy(SYSTEM, other)[0])

    with pytest.raises(InvalidInput, match=f"Deployment {target.pk} belongs to another service"):
        actions.rollback(SYSTEM, service, target)

    assert not service.deployments.exists()


def test_rollback_needs_rollback_scope(service, history):
    v1, _ = history
    developer = principal_with_role("dev", "developer", service.project,
                                    ["service:read", "deploy:read", "deploy:start"])

    with pytest.raises(ScopeDenied):
        actions.rollback(developer, service, v1)

    assert not Deployment.objects.filter(trigger=Deployment.TRIGGER_ROLLBACK).exists()


def test_rollback_idempotency_key(service, history):
    v1, v2 = history

    first = actions.rollback(SYSTEM, service, v1, idempotency_key="undo-1")
    again = actions.rollback(SYSTEM, service, v1, idempotency_key="undo-1")

    assert again.pk == first.pk
    with pytest.raises(Conflict, match="undo-1"):
        actions.rollback(SYSTEM, service, v2, idempotency_key="undo-1")
    assert Deployment.objects.filter(trigger=Deployment.TRIGGER_ROLLBACK).count() == 1


# -- Dockerfile services ----------------------------------------------------------


@pytest.fixture
def built_service(db):
    return make_service("builder", "site", source_type="dockerfile", image="",
                        repository_url="file:///srv/site.git", branch="main")


def test_dockerfile_rollback_reuses_built_image(built_service):
    target = finish(actions.deploy(SYSTEM, built_service)[0])

    rolled = actions.rollback(SYSTEM, built_service, target)

    expected = built_image_tag({**target.input, "deployment_id": target.pk})
    assert rolled.input["rollback_image"] == expected
    assert expected.endswith(f":deployment-{target.pk}")


def test_rollback_of_rollback_keeps_image(built_service):
    target = finish(actions.deploy(SYSTEM, built_service)[0])
    first = finish(actions.rollback(SYSTEM, built_service, target))

    second = actions.rollback(SYSTEM, built_service, first)

    assert second.input["rollback_image"] == first.input["rollback_image"]
    assert second.rollback_of_id == first.pk


class RecordingTransport(Transport):
    """Record argument lists and written files without running anything, and return `ps` output of a healthy stack."""

    def __init__(self):
        self.commands: list[list[str]] = []
        self.files: dict[str, bytes] = {}

    def run(self, argv, *, on_output=None, **options):
        self.commands.append(list(argv))
        if on_output is not None and "inspect" in argv:
            on_output("stdout", "sha256:feedface")
        if on_output is not None and "ps" in argv:
            on_output("stdout", json.dumps({"Name": "site-1", "State": "running", "Health": "", "ExitCode": 0}))
        return CommandResult(exit_code=0, stderr_tail=[])

    def write_file(self, path, data, mode):
        self.files[path] = data

    def stop_leftover_commands(self):
        return []

    def close(self):
        pass


def test_runner_skips_clone_and_build_for_rollback(built_service, monkeypatch):
    target = finish(actions.deploy(SYSTEM, built_service)[0])
    rolled = actions.rollback(SYSTEM, built_service, target)
    transport = RecordingTransport()
    monkeypatch.setattr(runner, "transport_for", lambda server, *args: transport)

    runner.execute(rolled.pk, worker="test")

    rolled.refresh_from_db()
    assert rolled.conclusion == Deployment.CONCLUSION_SUCCEEDED, rolled.failure_reason
    programs = [" ".join(argv) for argv in transport.commands]
    assert not any("git" in command for command in programs)
    assert not any("build" in argv for argv in transport.commands)
    image = rolled.input["rollback_image"]
    assert ["docker", "image", "inspect", "--format", "{{.Id}}", image] in transport.commands
    base = next(data for path, data in transport.files.items() if path.endswith("/compose.yaml"))
    definition = yaml.safe_load(base)["services"]["site"]
    assert definition["image"] == image
    assert "build" not in definition
    steps = {step.name: step for step in rolled.steps.all()}
    assert steps["clone"].detail.startswith("no clone")
    assert steps["build"].detail.startswith(f"no build: the rollback reuses the image {image}")


def test_runner_fails_rollback_when_image_gone(built_service, monkeypatch):
    target = finish(actions.deploy(SYSTEM, built_service)[0])
    rolled = actions.rollback(SYSTEM, built_service, target)
    transport = RecordingTransport()
    original_run = transport.run

    def run(argv, **kwargs):
        if "inspect" in argv:
            transport.commands.append(list(argv))
            return CommandResult(exit_code=1, stderr_tail=["Error: No such image"])
        return original_run(argv, **kwargs)

    transport.run = run
    monkeypatch.setattr(runner, "transport_for", lambda server, *args: transport)

    runner.execute(rolled.pk, worker="test")

    rolled.refresh_from_db()
    assert rolled.conclusion == Deployment.CONCLUSION_FAILED
    assert rolled.failed_step == "build"
    assert "is not on server" in rolled.failure_reason
    assert "deploy the service instead" in rolled.failure_reason
    assert rolled.steps.get(name="start").status == DeploymentStep.STATUS_SKIPPED


def test_runner_builds_for_plain_deploy(built_service, monkeypatch):
    deployment, _ = actions.deploy(SYSTEM, built_service)
    transport = RecordingTransport()
    monkeypatch.setattr(runner, "transport_for", lambda server, *args: transport)

    runner.execute(deployment.pk, worker="test")

    programs = [" ".join(argv) for argv in transport.commands]
    assert any("git clone" in command for command in programs)
    assert any("build" in argv for argv in transport.commands)


# -- command line -------------------------------------------------------------------


def test_cli_lists_succeeded_targets(service, history):
    v1, v2 = history
    finish(actions.deploy(SYSTEM, service)[0], "failed")

    result = run_command("rollback", "--service", "web", "--json")

    assert result.exit_code == 0
    data = result.json["data"]
    assert [target["id"] for target in data["targets"]] == [v2.pk, v1.pk]
    assert data["current_deployment"] == v2.pk
    assert data["service"] == "shop/web"


def test_cli_list_text(service, history):
    v1, v2 = history

    result = run_command("rollback", "--service", "web")

    assert result.exit_code == 0
    assert "(current)" in result.stdout
    assert "daoflow rollback --service web --target ID --yes" in result.stdout


def test_cli_rollback_needs_confirmation(service, history):
    v1, _ = history

    result = run_command("rollback", "--service", "web", "--target", str(v1.pk), "--json")

    assert result.exit_code == 1
    assert result.json["code"] == "CONFIRMATION_REQUIRED"
    assert not Deployment.objects.filter(trigger=Deployment.TRIGGER_ROLLBACK).exists()


def test_cli_rollback_creates_deployment(service, history):
    v1, _ = history

    result = run_command("rollback", "--service", "web", "--target", str(v1.pk), "--yes", "--json")

    assert result.exit_code == 0
    shown = result.json["data"]["deployment"]
    assert shown["trigger"] == "rollback"
    assert shown["rollback_of"] == v1.pk
    assert shown["status"] == "queued"
    assert Deployment.objects.get(pk=shown["id"]).input["image"] == IMAGE_V1


def test_cli_rollback_dry_run_shows_changes(service, history):
    v1, v2 = history

    result = run_command("rollback", "--service", "web", "--target", str(v1.pk), "--dry-run", "--json")

    assert result.exit_code == 3
    preview = result.json["data"]["rollback"]
    assert preview["target"] == v1.pk
    assert preview["current_deployment"] == v2.pk
    changes = {change["field"]: change for change in preview["changes"]}
    assert changes["image"] == {"field": "image", "before": IMAGE_V2, "after": IMAGE_V1}
    assert changes["env.API_TOKEN"]["before"] == changes["env.API_TOKEN"]["after"] == "********"
    assert SECRET not in result.stdout
    assert "new-secret" not in result.stdout
    assert not Deployment.objects.filter(trigger=Deployment.TRIGGER_ROLLBACK).exists()


@pytest.mark.parametrize("value", ["abc", "987654"])
def test_cli_rollback_bad_target(service, history, value):
    result = run_command("rollback", "--service", "web", "--target", value, "--yes", "--json")

    assert result.exit_code == 1
    assert result.json["code"] == "INVALID_INPUT"
    assert result.json["field"] == "target"
    assert value in result.json["error"]
    assert not Deployment.objects.filter(trigger=Deployment.TRIGGER_ROLLBACK).exists()


def test_cli_rollback_failed_target(service):
    failed = finish(actions.deploy(SYSTEM, service)[0], "failed")

    result = run_command("rollback", "--service", "web", "--target", str(failed.pk), "--yes", "--json")

    assert result.exit_code == 1
    assert result.json["code"] == "INVALID_INPUT"
    assert f"Deployment {failed.pk}" in result.json["error"]


def test_cli_rollback_target_of_other_service(service):
    other = make_service("other", "api")
    foreign = finish(actions.deploy(SYSTEM, other)[0])

    result = run_command("rollback", "--service", "web", "--target", str(foreign.pk), "--yes", "--json")

    assert result.exit_code == 1
    assert result.json["field"] == "target"
    assert "is not a deployment of shop/web" in result.json["error"]


def test_claim_runs_rollback_steps(service, history):
    v1, _ = history
    rolled = actions.rollback(SYSTEM, service, v1)

    claimed = queue.claim(rolled.pk, "worker-test")

    assert [step.name for step in claimed.steps.order_by("position")] == queue.plan_steps(v1.input)
