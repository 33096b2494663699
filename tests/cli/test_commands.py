"""The command-line contract: JSON shapes, error codes and exit codes."""

import json
from io import StringIO

import pytest
from django.core.management import call_command

from deployments.models import Deployment
from services.models import Project, Server, Service

pytestmark = pytest.mark.django_db


def run(*args: str) -> tuple[int, dict]:
    """Run a command with --json; return its exit code and parsed output."""
    out = StringIO()
    code = 0
    try:
        call_command(*args, "--json", stdout=out, stderr=StringIO())
    except SystemExit as exit_:
        code = exit_.code
    return code, json.loads(out.getvalue())


@pytest.fixture
def demo():
    assert run("project", "create", "--name", "demo", "--yes")[0] == 0
    code, output = run("service", "create", "--project", "demo", "--name", "api", "--source-type", "image",
                       "--image", "api:v1", "--port", "127.0.0.1:18080:80", "--env", "MODE=fast",
                       "--secret-env", "TOKEN=hunter2", "--yes")
    assert code == 0, output
    return output["data"]["service"]


def test_local_server_exists_by_default():
    code, output = run("server", "list")

    assert code == 0
    assert [s["name"] for s in output["data"]["servers"]] == ["local"]
    assert output["data"]["servers"][0]["kind"] == "local"


def test_project_create_defaults_to_production():
    code, output = run("project", "create", "--name", "shop", "--yes")

    assert code == 0
    assert output["ok"] is True
    assert output["data"]["project"]["environments"] == ["production"]


def test_project_create_without_yes_changes_nothing():
    code, output = run("project", "create", "--name", "shop")

    assert code == 1
    assert output == {"ok": False, "error": output["error"], "code": "CONFIRMATION_REQUIRED"}
    assert "--yes" in output["error"]
    assert not Project.objects.exists()


def test_project_create_dry_run_exits_3():
    code, output = run("project", "create", "--name", "shop", "--dry-run")

    assert code == 3
    assert output["data"]["dry_run"] is True
    assert not Project.objects.exists()


def test_service_object_fields(demo):
    code, output = run("services", "--name", "api")
    service = output["data"]["service"]

    assert code == 0
    for field in ("id", "name", "project", "environment", "source_type", "repository_url", "compose_path",
                  "image", "env", "volumes", "ports", "state", "state_label", "latest_deployment", "endpoints"):
        assert field in service, field
    assert service["state"] == "not_deployed"
    assert service["state_label"] == "Not deployed"
    assert service["latest_deployment"] is None
    assert service["endpoints"][0]["address"] == "127.0.0.1:18080"
    assert service["compose_project"] == "demo_production_api"


def test_services_lists_every_service(demo):
    for index in range(120):
        Service.objects.create(project=Project.objects.get(), environment=Project.objects.get().environments.get(),
                               name=f"svc{index}", source_type="image", image="x:1", compose_project=f"p{index}")

    code, output = run("services")

    assert code == 0
    assert len(output["data"]["services"]) == 121


def test_unknown_service_is_not_found(demo):
    code, output = run("services", "--name", "nope")

    assert code == 1
    assert output["code"] == "NOT_FOUND"
    assert "'nope'" in output["error"]


def test_ambiguous_service_name_names_projects(demo):
    run("project", "create", "--name", "other", "--yes")
    run("service", "create", "--project", "other", "--name", "api", "--source-type", "image",
        "--image", "api:v1", "--yes")

    code, output = run("services", "--name", "api")

    assert code == 1
    assert output["code"] == "INVALID_INPUT"
    assert "demo" in output["error"]
    assert "other" in output["error"]
    assert run("services", "--name", "api", "--project", "other")[1]["data"]["service"]["project"] == "other"


def test_service_update_image_prints_changes(demo):
    code, output = run("service", "update", "--name", "api", "--image", "api:v2", "--yes")

    assert code == 0
    assert output["data"]["changes"] == {"image": {"before": "api:v1", "after": "api:v2"}}
    assert output["data"]["service"]["image"] == "api:v2"


def test_invalid_image_changes_nothing(demo):
    code, output = run("service", "update", "--name", "api", "--image", "Bad Image", "--port", "9000:80", "--yes")

    assert code == 1
    assert output["code"] == "INVALID_INPUT"
    assert "--image" in output["error"]
    assert "'Bad Image'" in output["error"]
    service = Service.objects.get(name="api")
    assert service.image == "api:v1"
    assert service.ports.count() == 1


def test_usage_error_is_json():
    from services.management.commands.service import Command

    out = StringIO()
    with pytest.raises(SystemExit) as exit_:
        Command(stdout=out, stderr=StringIO()).run_from_argv(
            ["daoflow", "service", "create", "--json", "--project", "demo"]
        )
    output = json.loads(out.getvalue())

    assert exit_.value.code == 1
    assert output["ok"] is False
    assert output["code"] == "INVALID_INPUT"


def test_deploy_queues_with_frozen_input(demo, recorded_queue, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        code, output = run("deploy", "--service", "api", "--yes")
    deployment = Deployment.objects.get()

    assert code == 0
    assert output["data"]["deployment"]["status"] == "queued"
    assert output["data"]["deployment"]["id"] == deployment.pk
    assert recorded_queue.ids == [deployment.pk]
    assert deployment.input["image"] == "api:v1"
    assert {"key": "TOKEN", "value": "hunter2", "secret": True, "level": "service"} in deployment.input["env"]
    assert run("services", "--name", "api")[1]["data"]["service"]["state"] == "updating"


def test_deploy_without_yes_queues_nothing(demo, recorded_queue):
    code, output = run("deploy", "--service", "api")

    assert code == 1
    assert output["code"] == "CONFIRMATION_REQUIRED"
    assert not Deployment.objects.exists()
    assert recorded_queue.ids == []


def test_frozen_input_is_encrypted_at_rest(demo):
    from django.db import connection

    run("deploy", "--service", "api", "--yes")
    with connection.cursor() as cursor:
        cursor.execute("SELECT frozen_input FROM deployments_deployment")
        stored = bytes(cursor.fetchone()[0])
        cursor.execute("SELECT value FROM services_environmentvariable")
        values = [bytes(row[0]) for row in cursor.fetchall()]

    assert b"hunter2" not in stored
    assert b"api:v1" not in stored
    assert all(b"hunter2" not in value and b"fast" not in value for value in values)


def test_server_with_unapproved_key_cannot_be_deployed_to(demo, recorded_queue):
    server = Server.objects.create(name="far", kind="ssh", host="127.0.0.1", port=1, private_key="k",
                                   scanned_host_key="ssh-ed25519 AAAA")
    Service.objects.filter(name="api").update(target_server=server)

    code, output = run("deploy", "--service", "api", "--yes")

    assert code == 1
    assert output["code"] == "INVALID_INPUT"
    assert "approve-host-key" in output["error"]
    assert not Deployment.objects.exists()


def test_approve_with_wrong_fingerprint_is_rejected():
    Server.objects.create(name="far", kind="ssh", host="127.0.0.1", port=22, private_key="k",
                          scanned_host_key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDmzVSYJH3bzkgI0YRRMWrX5bZ0ybuFS2MmmpbbLfpgN")

    code, output = run("server", "approve-host-key", "--name", "far", "--fingerprint", "SHA256:wrong", "--yes")

    assert code == 1
    assert output["code"] == "INVALID_INPUT"
    assert Server.objects.get(name="far").approved_host_key == ""


def test_help_lists_product_commands_only():
    from daoflow.cli import product_help_text

    text = product_help_text("daoflow")

    assert "    deploy" in text
    assert "    services" in text
    assert "    flush" not in text
    assert "ensure_admin" not in text
