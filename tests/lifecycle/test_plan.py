"""`plan` and `deploy --dry-run`: a preview that writes nothing and masks every secret value."""

import json
import socket

import pytest

from accounts.models import AuditEntry
from accounts.principal import SYSTEM, Principal
from daoflow.errors import InvalidInput, ScopeDenied
from deployments import actions
from deployments.models import Deployment
from deployments.plan import plan
from services.models import Server, Service

from .conftest import IMAGE_V1, IMAGE_V2, SECRET, finish, make_service, principal_with_role, run_command, update

pytestmark = pytest.mark.django_db

# A syntactically valid ed25519 public key that no test server offers.
SOME_HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"


def checks_of(result: dict) -> dict:
    return {check["name"]: check for check in result["checks"]}


def changes_of(result: dict) -> dict:
    return {change["field"]: change for change in result["changes"]}


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def ssh_server(name: str, *, approved: bool, port: int) -> Server:
    return Server.objects.create(
        name=name, kind=Server.KIND_SSH, host="127.0.0.1", port=port, user="root",
        private_key="-----BEGIN OPENSSH PRIVATE KEY-----\nnot a key\n-----END OPENSSH PRIVATE KEY-----\n",
        scanned_host_key=SOME_HOST_KEY, approved_host_key=SOME_HOST_KEY if approved else "",
    )


def test_plan_of_first_deployment(service):
    result = plan(SYSTEM, service)

    assert result["service"] == "shop/web"
    assert result["server"] == {"name": "local", "kind": "local", "address": "local engine"}
    assert result["source"] == {"type": "image", "image": IMAGE_V1}
    assert result["steps"] == ["resolve", "pull", "start", "health"]
    assert result["current_deployment"] is None
    changes = changes_of(result)
    assert changes["image"] == {"field": "image", "before": None, "after": IMAGE_V1}
    assert changes["env.GREETING"]["after"] == "hello"
    assert changes["env.API_TOKEN"]["after"] == "********"


def test_plan_checks_local_engine(service):
    checks = checks_of(plan(SYSTEM, service))

    assert checks["source"]["status"] == "passed"
    assert checks["host_key"]["status"] == "passed"
    assert checks["reachable"]["status"] == "passed", checks["reachable"]["detail"]
    assert checks["reachable"]["detail"].startswith("Docker Engine ")
    assert checks["compose_document"]["status"] == "skipped"


def test_plan_changes_against_current(service):
    current = finish(actions.deploy(SYSTEM, service)[0])
    finish(actions.deploy(SYSTEM, service)[0], "failed")
    update(service, image=IMAGE_V2, set_env=[("API_TOKEN", "rotated-secret", True)], add_ports=["127.0.0.1:18080:8080"])

    result = plan(SYSTEM, service)

    assert result["current_deployment"] == current.pk
    changes = changes_of(result)
    assert set(changes) == {"image", "ports", "env.API_TOKEN"}
    assert changes["image"]["before"] == IMAGE_V1
    assert changes["image"]["after"] == IMAGE_V2
    assert changes["ports"] == {"field": "ports", "before": [], "after": ["127.0.0.1:18080:8080"]}
    assert changes["env.API_TOKEN"] == {
        "field": "env.API_TOKEN", "before": "********", "after": "********", "secret": True,
    }
    shown = json.dumps(result, default=str)
    assert SECRET not in shown
    assert "rotated-secret" not in shown


def test_plan_without_changes(service):
    finish(actions.deploy(SYSTEM, service)[0])

    assert plan(SYSTEM, service)["changes"] == []


def test_plan_writes_nothing(service, recorded_queue):
    deployments = Deployment.objects.count()
    entries = AuditEntry.objects.count()

    plan(SYSTEM, service)

    assert Deployment.objects.count() == deployments
    assert AuditEntry.objects.count() == entries
    assert recorded_queue.ids == []


def test_plan_unapproved_host_key(service):
    ssh_server("fresh", approved=False, port=closed_port())
    update(service, target_server="fresh")

    result = plan(SYSTEM, service)

    checks = checks_of(result)
    assert checks["host_key"]["status"] == "failed"
    assert "approve-host-key --name fresh" in checks["host_key"]["detail"]
    assert checks["reachable"]["status"] == "skipped"
    assert result["ready"] is False


def test_plan_unreachable_server(service):
    port = closed_port()
    ssh_server("dark", approved=True, port=port)
    update(service, target_server="dark")

    result = plan(SYSTEM, service)

    checks = checks_of(result)
    assert checks["host_key"]["status"] == "passed"
    assert checks["reachable"]["status"] == "failed"
    assert f"port {port}" in checks["reachable"]["detail"]
    assert result["ready"] is False


def test_plan_invalid_inline_compose(db):
    service = make_service("stacks", "stack", source_type="compose", image="",
                           compose_document="services:\n  web:\n    image: daoflow-test/web:1\n")
    # A document stored before today's validation rules, for example.
    Service.objects.filter(pk=service.pk).update(compose_document="services: [web]\n")

    result = plan(SYSTEM, Service.objects.get(pk=service.pk))

    check = checks_of(result)["compose_document"]
    assert check["status"] == "failed"
    assert "services" in check["detail"]
    assert result["ready"] is False


def test_plan_valid_inline_compose(db):
    document = "services:\n  web:\n    image: daoflow-test/web:2\n  cache:\n    image: daoflow-test/busybox:1\n"
    service = make_service("stacks", "stack", source_type="compose", image="", compose_document=document)

    result = plan(SYSTEM, service)

    assert checks_of(result)["compose_document"]["status"] == "passed"
    assert result["source"]["images"] == {"web": "daoflow-test/web:2", "cache": "daoflow-test/busybox:1"}
    assert result["steps"] == ["resolve", "build", "pull", "start", "health"]


def test_plan_dockerfile_source(db):
    service = make_service("builder", "site", source_type="dockerfile", image="",
                           repository_url="https://deploy:hunter2@git.example.com/site.git", branch="main")

    result = plan(SYSTEM, service)

    assert result["source"]["repository_url"] == "https://deploy:***@git.example.com/site.git"
    assert result["source"]["dockerfile_path"] == "Dockerfile"
    assert "hunter2" not in json.dumps(result, default=str)
    assert result["steps"] == ["clone", "resolve", "build", "start", "health"]


def test_plan_without_server(service):
    environment = service.environment
    environment.default_server = None
    environment.save()

    with pytest.raises(InvalidInput, match="has no target server"):
        plan(SYSTEM, Service.objects.get(pk=service.pk))


def test_plan_masks_env_without_env_read(service):
    reader = Principal(scopes=frozenset({"deploy:read", "service:read"}), unrestricted=True)

    changes = changes_of(plan(reader, service))

    assert changes["env.GREETING"]["after"] == "********"
    assert changes["image"]["after"] == IMAGE_V1


def test_plan_needs_deploy_read(service):
    nobody = Principal(scopes=frozenset({"service:read"}), unrestricted=True)

    with pytest.raises(ScopeDenied):
        plan(nobody, service)


def test_viewer_with_grant_can_plan(service):
    viewer = principal_with_role("viewer1", "viewer", service.project, ["service:read", "deploy:read", "env:read"])

    assert plan(viewer, service)["service"] == "shop/web"


# -- command line -------------------------------------------------------------


def test_cli_plan_json(service):
    result = run_command("plan", "--service", "web", "--json")

    assert result.exit_code == 0
    document = result.json
    assert document["ok"] is True
    assert set(document["data"]["plan"]) == {
        "service", "environment", "server", "source", "steps", "checks", "ready",
        "current_deployment", "changes",
    }
    assert SECRET not in result.stdout


def test_cli_plan_text(service):
    finish(actions.deploy(SYSTEM, service)[0])
    update(service, image=IMAGE_V2)

    result = run_command("plan", "--service", "web", "--project", "shop")

    assert result.exit_code == 0
    assert "Plan for shop/web (production) on server local" in result.stdout
    assert f"image: {IMAGE_V1} -> {IMAGE_V2}" in result.stdout
    assert "passed   reachable" in result.stdout


def test_cli_plan_unknown_service(db):
    result = run_command("plan", "--service", "nope", "--json")

    assert result.exit_code == 1
    assert result.json["code"] == "NOT_FOUND"
    assert "'nope'" in result.json["error"]


def test_cli_deploy_dry_run_prints_plan(service, recorded_queue):
    result = run_command("deploy", "--service", "web", "--dry-run", "--json")

    assert result.exit_code == 3
    data = result.json["data"]
    assert data["dry_run"] is True
    assert data["plan"]["steps"] == plan(SYSTEM, service)["steps"]
    assert data["plan"]["source"] == {"type": "image", "image": IMAGE_V1}
    assert not Deployment.objects.exists()
    assert recorded_queue.ids == []
    assert SECRET not in result.stdout


def test_cli_deploy_dry_run_text(service):
    result = run_command("deploy", "--service", "web", "--dry-run")

    assert result.exit_code == 3
    assert "Plan for shop/web" in result.stdout
    assert "Dry run: nothing was queued." in result.stdout
