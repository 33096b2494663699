"""services.env (set, unset, list), the layering that deployments freeze, and `daoflow env`."""

import json
from io import StringIO

import pytest
from django.core.management import call_command

from accounts import actions as accounts_actions
from accounts.models import AuditEntry
from accounts.principal import SYSTEM, principal_for
from daoflow.errors import InvalidInput, NotFound, ScopeDenied
from deployments.freeze import resolve_env
from services import actions, env
from services.config import ServiceInput
from services.models import EnvironmentVariable

pytestmark = pytest.mark.django_db

PEM = "-----BEGIN PRIVATE KEY-----\nMIIB$x${Y}#z\n-----END PRIVATE KEY-----\n"


@pytest.fixture
def stack():
    project = actions.create_project(SYSTEM, "shop")
    production = project.environments.get()
    staging = actions.create_environment(SYSTEM, project, "staging")
    web = actions.create_service(SYSTEM, project, production, ServiceInput(name="web", source_type="image",
                                                                           image="nginx:1.27"))
    worker = actions.create_service(SYSTEM, project, staging, ServiceInput(name="worker", source_type="image",
                                                                           image="nginx:1.27"))
    return {"project": project, "production": production, "staging": staging, "web": web, "worker": worker}


def user_principal(username: str, role: str, grants=()):
    user = accounts_actions.create_user(SYSTEM, username=username, role=role)
    for target, scopes in grants:
        accounts_actions.grant(SYSTEM, user, target, scopes)
    return principal_for(user)


def run_env(*args, stdin=None, monkeypatch=None) -> tuple[int, dict]:
    out = StringIO()
    if stdin is not None:
        monkeypatch.setattr("sys.stdin", stdin)
    try:
        call_command("env", *args, "--json", stdout=out)
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    return code, json.loads(out.getvalue())


# -- layering -------------------------------------------------------------------


def test_service_level_wins(stack):
    env.set_variable(SYSTEM, project=stack["project"], key="LEVEL", value="project", secret=False)
    env.set_variable(SYSTEM, project=stack["project"], environment=stack["production"], key="LEVEL",
                     value="environment", secret=False)
    env.set_variable(SYSTEM, project=stack["project"], service=stack["web"], key="LEVEL", value="service",
                     secret=False)

    resolved = {item["key"]: item for item in resolve_env(stack["web"])}

    assert resolved["LEVEL"]["value"] == "service"
    assert resolved["LEVEL"]["level"] == "service"


def test_environment_level_beats_project(stack):
    env.set_variable(SYSTEM, project=stack["project"], key="LEVEL", value="project", secret=False)
    env.set_variable(SYSTEM, project=stack["project"], environment=stack["production"], key="LEVEL",
                     value="environment", secret=False)

    assert resolve_env(stack["web"]) == [
        {"key": "LEVEL", "value": "environment", "secret": False, "level": "environment"}
    ]
    assert resolve_env(stack["worker"]) == [
        {"key": "LEVEL", "value": "project", "secret": False, "level": "project"}
    ]


def test_layering_keeps_other_services_out(stack):
    env.set_variable(SYSTEM, project=stack["project"], service=stack["worker"], key="ONLY_WORKER", value="1",
                     secret=False)
    env.set_variable(SYSTEM, project=stack["project"], environment=stack["staging"], key="ONLY_STAGING",
                     value="1", secret=False)
    other = actions.create_project(SYSTEM, "other")
    env.set_variable(SYSTEM, project=other, key="OTHER_PROJECT", value="1", secret=False)

    assert resolve_env(stack["web"]) == []


def test_layering_merges_distinct_keys(stack):
    env.set_variable(SYSTEM, project=stack["project"], key="A", value="from project", secret=False)
    env.set_variable(SYSTEM, project=stack["project"], environment=stack["production"], key="B", value="env",
                     secret=True)
    env.set_variable(SYSTEM, project=stack["project"], service=stack["web"], key="C", value="", secret=False)

    resolved = resolve_env(stack["web"])

    assert [(item["key"], item["value"], item["level"]) for item in resolved] == [
        ("A", "from project", "project"), ("B", "env", "environment"), ("C", "", "service"),
    ]
    assert resolved[1]["secret"] is True


def test_deployment_freezes_layered_env(stack):
    from deployments.actions import deploy

    env.set_variable(SYSTEM, project=stack["project"], key="TOKEN", value="project", secret=False)
    env.set_variable(SYSTEM, project=stack["project"], service=stack["web"], key="TOKEN", value="service",
                     secret=True)

    deployment, _ = deploy(SYSTEM, stack["web"])
    env.set_variable(SYSTEM, project=stack["project"], service=stack["web"], key="TOKEN", value="later",
                     secret=True)

    frozen = json.loads(deployment.frozen_input)
    assert frozen["env"] == [{"key": "TOKEN", "value": "service", "secret": True, "level": "service"}]


# -- set_variable and unset_variable --------------------------------------------------


def test_set_keeps_value_exactly(stack):
    for key, value in [("PEM", PEM), ("SPACES", "  padded \t"), ("EMPTY", ""), ("a.b:c", "$$"), ("K$X", "${X}")]:
        env.set_variable(SYSTEM, project=stack["project"], service=stack["web"], key=key, value=value,
                         secret=False)
        row = EnvironmentVariable.objects.get(service=stack["web"], key=key)
        assert row.value == value


def test_set_replaces_at_same_level(stack):
    first = env.set_variable(SYSTEM, project=stack["project"], key="X", value="1", secret=False)
    second = env.set_variable(SYSTEM, project=stack["project"], key="X", value="2", secret=True)

    assert first.pk == second.pk
    assert EnvironmentVariable.objects.filter(key="X").count() == 1
    assert EnvironmentVariable.objects.get(key="X").value == "2"
    assert EnvironmentVariable.objects.get(key="X").secret is True


def test_service_row_records_environment(stack):
    row = env.set_variable(SYSTEM, project=stack["project"], service=stack["web"], key="X", value="1",
                           secret=False)

    assert row.level == "service"
    assert row.environment_id == stack["production"].pk


def test_unset_removes_one_level(stack):
    env.set_variable(SYSTEM, project=stack["project"], key="X", value="project", secret=False)
    env.set_variable(SYSTEM, project=stack["project"], service=stack["web"], key="X", value="service",
                     secret=False)

    env.unset_variable(SYSTEM, project=stack["project"], service=stack["web"], key="X")

    assert resolve_env(stack["web"])[0]["value"] == "project"


def test_unset_missing_is_not_found(stack):
    with pytest.raises(NotFound) as caught:
        env.unset_variable(SYSTEM, project=stack["project"], environment=stack["staging"], key="MISSING")

    assert "'MISSING' is not set on environment shop/staging" in caught.value.message
    assert "daoflow env list --project shop --environment staging" in caught.value.message


@pytest.mark.parametrize(
    "key, value, field, text",
    [
        ("", "v", "key", "the variable name is empty"),
        ("A=B", "v", "key", "contains '='"),
        ("A\0B", "v", "key", "NUL"),
        ("K" * 256, "v", "key", "maximum is 255"),
        ("\n\n", "v", "key", "contains only line feeds"),
        ("OK", "a\0b", "value", "NUL character at position 1"),
        ("OK", "bad \udcff", "value", "not valid UTF-8"),
    ],
)
def test_set_rejects_invalid(stack, key, value, field, text):
    with pytest.raises(InvalidInput) as caught:
        env.set_variable(SYSTEM, project=stack["project"], key=key, value=value, secret=False)

    assert caught.value.extra["field"] == field
    assert text in caught.value.message
    assert not EnvironmentVariable.objects.exists()


def test_set_rejects_foreign_service(stack):
    other = actions.create_project(SYSTEM, "other")

    with pytest.raises(InvalidInput, match="belongs to project 'shop', not 'other'"):
        env.set_variable(SYSTEM, project=other, service=stack["web"], key="X", value="1", secret=False)


def test_set_rejects_mismatched_environment(stack):
    with pytest.raises(InvalidInput, match="belongs to environment 'production', not 'staging'"):
        env.set_variable(SYSTEM, project=stack["project"], environment=stack["staging"], service=stack["web"],
                         key="X", value="1", secret=False)


def test_audit_masks_secret(stack):
    env.set_variable(SYSTEM, project=stack["project"], key="TOKEN", value="hunter2", secret=True)
    env.set_variable(SYSTEM, project=stack["project"], key="TOKEN", value="hunter3", secret=True)
    env.unset_variable(SYSTEM, project=stack["project"], key="TOKEN")

    entries = list(AuditEntry.objects.filter(action__startswith="env.").order_by("id"))
    assert [entry.action for entry in entries] == ["env.set", "env.set", "env.unset"]
    assert entries[0].diff["value"] == {"before": None, "after": "********"}
    assert entries[1].diff["value"] == {"before": "********", "after": "********"}
    assert entries[2].diff["value"] == {"before": "********", "after": None}
    assert "hunter" not in json.dumps([entry.diff for entry in entries])
    assert "hunter" not in " ".join(entry.target_label + entry.detail for entry in entries)


def test_audit_shows_plain_value(stack):
    env.set_variable(SYSTEM, project=stack["project"], key="MODE", value="fast", secret=False)

    entry = AuditEntry.objects.get(action="env.set")
    assert entry.diff == {"key": "MODE", "level": "project", "value": {"before": None, "after": "fast"}}


def test_log_never_has_value(stack, caplog):
    caplog.set_level("DEBUG")
    env.set_variable(SYSTEM, project=stack["project"], key="TOKEN", value="hunter2-plain", secret=False)
    env.unset_variable(SYSTEM, project=stack["project"], key="TOKEN")

    assert "hunter2-plain" not in caplog.text


# -- scopes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "role, grant_on, scopes, target, allowed",
    [
        ("developer", "project", ["env:write"], "project", True),
        ("developer", "project", ["env:write"], "service", True),
        ("developer", "service", ["env:write"], "service", True),
        ("developer", "service", ["env:write"], "project", False),
        ("developer", "project", ["env:read"], "project", False),
        ("viewer", "project", ["env:write"], "project", False),
    ],
)
def test_set_scope_matrix(stack, role, grant_on, scopes, target, allowed):
    principal = user_principal("dev", role, [(stack["project"] if grant_on == "project" else stack["web"], scopes)])
    where = {"project": stack["project"]}
    if target == "service":
        where["service"] = stack["web"]

    if allowed:
        env.set_variable(principal, **where, key="X", value="1", secret=False)
        assert EnvironmentVariable.objects.filter(key="X").exists()
    else:
        with pytest.raises(ScopeDenied) as caught:
            env.set_variable(principal, **where, key="X", value="1", secret=False)
        assert not EnvironmentVariable.objects.filter(key="X").exists()
        # The test's own transaction is open, so the denial is left for the caller's boundary to record.
        assert caught.value.audit_action == "env.set"


def test_list_masks_without_secrets_read(stack):
    env.set_variable(SYSTEM, project=stack["project"], key="TOKEN", value="hunter2", secret=True)
    env.set_variable(SYSTEM, project=stack["project"], key="MODE", value="fast", secret=False)
    reader = user_principal("reader", "developer", [(stack["project"], ["env:read"])])

    listed = {item["key"]: item for item in env.list_variables(reader, project=stack["project"])}

    assert listed["TOKEN"]["value"] == "********"
    assert listed["MODE"]["value"] == "fast"
    assert listed["TOKEN"]["level"] == "project"


def test_list_reveals_with_secrets_read(stack):
    env.set_variable(SYSTEM, project=stack["project"], key="TOKEN", value="hunter2", secret=True)
    reader = user_principal("reader", "operator", [(stack["project"], ["env:read"])])
    owner = user_principal("boss", "owner")
    granted = user_principal("sec", "admin")

    assert env.list_variables(reader, project=stack["project"])[0]["value"] == "********"
    assert env.list_variables(owner, project=stack["project"])[0]["value"] == "hunter2"
    assert env.list_variables(granted, project=stack["project"])[0]["value"] == "hunter2"


def test_list_needs_env_read(stack):
    outsider = user_principal("outsider", "developer", [(stack["project"], ["service:read"])])

    with pytest.raises(ScopeDenied):
        env.list_variables(outsider, project=stack["project"])


def test_list_resolved_view(stack):
    env.set_variable(SYSTEM, project=stack["project"], key="A", value="project", secret=False)
    env.set_variable(SYSTEM, project=stack["project"], key="B", value="project", secret=False)
    env.set_variable(SYSTEM, project=stack["project"], environment=stack["production"], key="B", value="env",
                     secret=False)
    env.set_variable(SYSTEM, project=stack["project"], service=stack["web"], key="A", value="service",
                     secret=True)
    env.set_variable(SYSTEM, project=stack["project"], service=stack["worker"], key="C", value="worker",
                     secret=False)

    resolved = env.list_variables(SYSTEM, project=stack["project"], service=stack["web"], resolved=True)
    own = env.list_variables(SYSTEM, project=stack["project"], service=stack["web"])

    assert [(item["key"], item["value"], item["level"]) for item in resolved] == [
        ("A", "service", "service"), ("B", "env", "environment"),
    ]
    assert [(item["key"], item["level"]) for item in own] == [("A", "service")]


# -- daoflow env ----------------------------------------------------------------------


def test_cli_set_from_file_exact(stack, tmp_path):
    path = tmp_path / "key.pem"
    path.write_bytes(PEM.encode() + b"\r\n")

    code, document = run_env("set", "--service", "web", "--key", "TLS_KEY", "--value-file", str(path),
                             "--secret", "--yes")

    assert code == 0
    assert document["data"]["variable"]["level"] == "service"
    assert EnvironmentVariable.objects.get(key="TLS_KEY").value == PEM + "\r\n"


def test_cli_set_from_stdin_exact(stack, monkeypatch):
    code, _ = run_env("set", "--project", "shop", "--key", "FROM_STDIN", "--yes",
                      stdin=StringIO("two\nlines\n"), monkeypatch=monkeypatch)

    assert code == 0
    assert EnvironmentVariable.objects.get(key="FROM_STDIN").value == "two\nlines\n"


def test_cli_set_environment_level(stack):
    code, document = run_env("set", "--project", "shop", "--environment", "staging", "--key", "E",
                             "--value", " spaced ", "--yes")

    assert code == 0
    assert document["data"]["variable"]["level"] == "environment"
    assert document["data"]["variable"]["value"] == " spaced "


def test_cli_set_rejects_non_utf8_file(stack, tmp_path):
    path = tmp_path / "bin"
    path.write_bytes(b"ok\xff")

    code, document = run_env("set", "--project", "shop", "--key", "X", "--value-file", str(path), "--yes")

    assert code == 1
    assert document["code"] == "INVALID_INPUT"
    assert "--value-file" in document["error"]
    assert "offset 2" in document["error"]


def test_cli_missing_file(stack, tmp_path):
    code, document = run_env("set", "--project", "shop", "--key", "X", "--value-file", str(tmp_path / "nope"),
                             "--yes")

    assert code == 1
    assert "does not exist" in document["error"]


def test_cli_set_dry_run_masks(stack):
    code, document = run_env("set", "--project", "shop", "--key", "TOKEN", "--value", "hunter2", "--secret",
                             "--dry-run")

    assert code == 3
    assert document == {"ok": True, "data": {"dry_run": True,
                                             "changes": {"TOKEN": {"before": None, "after": "********"}}}}
    assert not EnvironmentVariable.objects.exists()


def test_cli_needs_confirmation(stack):
    code, document = run_env("set", "--project", "shop", "--key", "X", "--value", "1")

    assert code == 1
    assert document["code"] == "CONFIRMATION_REQUIRED"
    assert not EnvironmentVariable.objects.exists()


def test_cli_invalid_key_before_confirmation(stack):
    code, document = run_env("set", "--project", "shop", "--key", "A=B", "--value", "1")

    assert code == 1
    assert document["code"] == "INVALID_INPUT"
    assert document["error"].startswith("--key: the variable name 'A=B' contains '='")


def test_cli_list_service_layered(stack):
    env.set_variable(SYSTEM, project=stack["project"], key="A", value="project", secret=False)
    env.set_variable(SYSTEM, project=stack["project"], service=stack["web"], key="A", value="service",
                     secret=False)

    code, document = run_env("list", "--service", "web")
    _, own = run_env("list", "--service", "web", "--own")

    assert code == 0
    assert document["data"]["resolved"] is True
    assert [(item["key"], item["value"], item["level"]) for item in document["data"]["variables"]] == [
        ("A", "service", "service")
    ]
    assert own["data"]["resolved"] is False


def test_cli_unset(stack):
    env.set_variable(SYSTEM, project=stack["project"], key="A", value="1", secret=False)

    code, document = run_env("unset", "--project", "shop", "--key", "A", "--yes")

    assert code == 0
    assert document["data"]["changes"] == {"A": {"before": "1", "after": None}}
    assert not EnvironmentVariable.objects.exists()


def test_cli_environment_mismatch(stack):
    code, document = run_env("set", "--service", "web", "--environment", "staging", "--key", "A", "--value", "1",
                             "--yes")

    assert code == 1
    assert "--environment" in document["error"]
    assert "'production'" in document["error"]


def test_cli_requires_project(stack):
    code, document = run_env("list")

    assert code == 1
    assert document["error"].startswith("--project: missing")


def test_cli_rejects_invalid_project_name(stack):
    code, document = run_env("list", "--project", "Bad Name\udcff")

    assert code == 1
    assert document["code"] == "INVALID_INPUT"
    assert document["error"].startswith("--project:")
