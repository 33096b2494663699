"""`diff`: the changes between two deployments' frozen inputs, secret values masked."""

import json

import pytest

from accounts.principal import SYSTEM, Principal
from daoflow.errors import ScopeDenied
from deployments import actions
from deployments.diff import compare_inputs, diff

from .conftest import IMAGE_V1, IMAGE_V2, SECRET, finish, make_service, run_command, token_for, update

pytestmark = pytest.mark.django_db


def changes_of(result: dict) -> dict:
    return {change["field"]: change for change in result["changes"]}


@pytest.fixture
def pair(service):
    a = finish(actions.deploy(SYSTEM, service)[0])
    update(service, image=IMAGE_V2, set_env=[("API_TOKEN", "rotated-secret", True), ("NEW_FLAG", "on", False)],
           unset_env=["GREETING"], add_volumes=["app-data:/var/lib/app"])
    b = finish(actions.deploy(SYSTEM, service)[0], "failed")
    return a, b


def test_diff_lists_changed_fields(pair):
    a, b = pair

    result = diff(SYSTEM, a, b)

    assert result["a"]["id"] == a.pk
    assert result["b"]["id"] == b.pk
    assert result["b"]["outcome"] == "failed"
    assert result["same_input"] is False
    changes = changes_of(result)
    assert set(changes) == {"image", "volumes", "env.API_TOKEN", "env.GREETING", "env.NEW_FLAG"}
    assert changes["image"] == {"field": "image", "before": IMAGE_V1, "after": IMAGE_V2}
    assert changes["volumes"] == {"field": "volumes", "before": [], "after": ["app-data:/var/lib/app"]}
    assert changes["env.GREETING"] == {"field": "env.GREETING", "before": "hello", "after": None, "secret": False}
    assert changes["env.NEW_FLAG"] == {"field": "env.NEW_FLAG", "before": None, "after": "on", "secret": False}


def test_changed_secret_masked_both_sides(pair):
    a, b = pair

    result = diff(SYSTEM, a, b)

    change = changes_of(result)["env.API_TOKEN"]
    assert change == {"field": "env.API_TOKEN", "before": "********", "after": "********", "secret": True}
    shown = json.dumps(result, default=str)
    assert SECRET not in shown
    assert "rotated-secret" not in shown


def test_unchanged_secret_not_listed(service):
    a = finish(actions.deploy(SYSTEM, service)[0])
    update(service, image=IMAGE_V2)
    b = finish(actions.deploy(SYSTEM, service)[0])

    assert set(changes_of(diff(SYSTEM, a, b))) == {"image"}


def test_identical_inputs(service):
    a = finish(actions.deploy(SYSTEM, service)[0])
    b = finish(actions.deploy(SYSTEM, service)[0])

    result = diff(SYSTEM, a, b)

    assert result["same_input"] is True
    assert result["changes"] == []


def test_secret_turned_plain_shows_only_plain_side(service):
    a = finish(actions.deploy(SYSTEM, service)[0])
    update(service, set_env=[("API_TOKEN", "now-public", False)])
    b = finish(actions.deploy(SYSTEM, service)[0])

    change = changes_of(diff(SYSTEM, a, b))["env.API_TOKEN"]

    assert change["before"] == "********"
    assert change["after"] == "now-public"
    assert change["secret"] is True


def test_secret_inside_compose_document_masked():
    document_a = "services:\n  db:\n    image: postgres\n"
    document_b = f"services:\n  db:\n    image: postgres\n    command: [run, --password, {SECRET}]\n"
    base = {
        "service": {"project": "p", "environment": "e", "name": "s"},
        "server": {"name": "local"},
        "source_type": "compose",
        "env": [{"key": "DB_PASSWORD", "value": SECRET, "secret": True, "level": "service"}],
        "ports": [],
        "volumes": [],
    }

    changes = compare_inputs({**base, "compose_document": document_a}, {**base, "compose_document": document_b})

    assert len(changes) == 1
    assert SECRET not in changes[0]["after"]
    assert "--password, ********" in changes[0]["after"]


def test_input_without_probes_compares(service):
    a = finish(actions.deploy(SYSTEM, service)[0])
    older = a.input
    older.pop("probes", None)

    assert compare_inputs(older, a.input) == []


def test_diff_across_services(service):
    other = make_service("other", "api")
    a = finish(actions.deploy(SYSTEM, service)[0])
    b = finish(actions.deploy(SYSTEM, other)[0])

    changes = changes_of(diff(SYSTEM, a, b))

    assert changes["service"]["before"] == "shop/production/web"
    assert changes["service"]["after"] == "other/production/api"


def test_diff_without_env_read_masks_all_values(pair):
    a, b = pair
    reader = Principal(scopes=frozenset({"deploy:read", "service:read"}), unrestricted=True)

    changes = changes_of(diff(reader, a, b))

    assert changes["env.GREETING"]["before"] == "********"
    assert changes["env.NEW_FLAG"]["after"] == "********"


def test_diff_needs_deploy_read(pair):
    a, b = pair
    nobody = Principal(scopes=frozenset({"service:read"}), unrestricted=True)

    with pytest.raises(ScopeDenied):
        diff(nobody, a, b)


# -- command line -------------------------------------------------------------


def test_cli_diff_json(pair):
    a, b = pair

    result = run_command("diff", "--a", str(a.pk), "--b", str(b.pk), "--json")

    assert result.exit_code == 0
    data = result.json["data"]["diff"]
    assert set(data) == {"a", "b", "same_input", "changes"}
    assert {"field", "before", "after"} <= set(data["changes"][0])
    assert SECRET not in result.stdout
    assert "rotated-secret" not in result.stdout


def test_cli_diff_text(pair):
    a, b = pair

    result = run_command("diff", "--a", str(a.pk), "--b", str(b.pk))

    assert result.exit_code == 0
    assert f"image: {IMAGE_V1} -> {IMAGE_V2}" in result.stdout
    assert "env.API_TOKEN: ******** -> ********" in result.stdout
    assert "env.GREETING: hello -> (none)" in result.stdout


def test_cli_diff_compose_document_text(db):
    service = make_service("stacks", "stack", source_type="compose", image="",
                           compose_document="services:\n  web:\n    image: daoflow-test/web:1\n")
    a = finish(actions.deploy(SYSTEM, service)[0])
    update(service, compose_document="services:\n  web:\n    image: daoflow-test/web:2\n")
    b = finish(actions.deploy(SYSTEM, service)[0])

    result = run_command("diff", "--a", str(a.pk), "--b", str(b.pk))

    assert "-    image: daoflow-test/web:1" in result.stdout
    assert "+    image: daoflow-test/web:2" in result.stdout


def test_cli_diff_bad_id(pair):
    a, _ = pair

    result = run_command("diff", "--a", str(a.pk), "--b", "latest", "--json")

    assert result.exit_code == 1
    assert result.json["code"] == "INVALID_INPUT"
    assert result.json["error"].startswith("--b: 'latest'")


def test_cli_diff_unknown_id(pair):
    a, _ = pair

    result = run_command("diff", "--a", str(a.pk), "--b", "987654", "--json")

    assert result.exit_code == 1
    assert result.json["code"] == "NOT_FOUND"


def test_cli_diff_unreadable_deployment(pair):
    a, b = pair
    other = make_service("other", "api")
    foreign = finish(actions.deploy(SYSTEM, other)[0])
    token = token_for("viewer1", "viewer", a.service.project, ["service:read", "deploy:read"])

    readable = run_command("diff", "--a", str(a.pk), "--b", str(b.pk), "--json", "--token", token)
    hidden = run_command("diff", "--a", str(a.pk), "--b", str(foreign.pk), "--json", "--token", token)

    assert readable.exit_code == 0
    assert hidden.exit_code == 1
    assert hidden.json["code"] == "NOT_FOUND"
