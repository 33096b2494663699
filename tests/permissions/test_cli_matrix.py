"""The command-line permission matrix: commands x roles x a token with or without the scope x granted or not.

Exit codes follow the API's statuses: 0 where the API returns 2xx, 2 (with
the SCOPE_DENIED document) where it returns 403, and 1 with NOT_FOUND where
it returns 404. Without a token a command acts as the local system operator.
"""

import io
import json
from dataclasses import dataclass, field
from typing import Callable

import pytest
from django.core.management import call_command

from accounts import scopes
from accounts.models import APIToken, AuditEntry
from deployments.models import Deployment
from services.models import Service, ServiceUserObjectPermission
from tests.api.conftest import ROLES, grant, make_token, make_user

MODES = ["token", "narrow"]


@dataclass
class Command:
    name: str
    argv: Callable  # (world, target) -> list of arguments
    base_scope: str
    needed: list = field(default_factory=list)
    object_level: bool = True
    changed: Callable | None = None

    @property
    def narrowed_scope(self) -> str:
        return (self.needed or [self.base_scope])[-1]


COMMANDS = [
    Command("services", lambda w, t: ["services"], scopes.SERVICE_READ, object_level=False),
    Command("services.one", lambda w, t: ["services", "--name", w[t].name], scopes.SERVICE_READ),
    Command("service.update", lambda w, t: ["service", "update", "--name", w[t].name, "--image", "nginx:1.28", "--yes"],
            scopes.SERVICE_READ, [scopes.SERVICE_UPDATE],
            changed=lambda w, t: Service.objects.get(pk=w[t].pk).image),
    Command("deploy", lambda w, t: ["deploy", "--service", w[t].name, "--yes"], scopes.SERVICE_READ,
            [scopes.DEPLOY_START], changed=lambda w, t: Deployment.objects.filter(service=w[t]).count()),
    Command("deployments", lambda w, t: ["deployments", "--service", w[t].name], scopes.SERVICE_READ,
            [scopes.DEPLOY_READ]),
    Command("logs", lambda w, t: ["logs", "--deployment", str(w[f"{t}_deployment"].pk)], scopes.SERVICE_READ,
            [scopes.DEPLOY_READ, scopes.LOGS_READ]),
    Command("server.list", lambda w, t: ["server", "list"], scopes.SERVER_READ, object_level=False),
    Command("user.list", lambda w, t: ["user", "list"], scopes.MEMBERS_MANAGE, object_level=False),
    Command("user.create", lambda w, t: ["user", "create", "--username", "newcomer", "--role", "viewer", "--yes"],
            scopes.MEMBERS_MANAGE, object_level=False,
            changed=lambda w, t: AuditEntry.objects.filter(action="user.create", outcome="success").count()),
    Command("grant", lambda w, t: ["grant", "--user", "grantee", "--service", "web", "--scope", "deploy:read", "--yes"],
            scopes.MEMBERS_MANAGE, object_level=False,
            changed=lambda w, t: ServiceUserObjectPermission.objects.filter(user__username="grantee").count()),
    Command("token.create", lambda w, t: ["token", "create", "--user", "grantee", "--name", "ci", "--scope",
                                          "service:read", "--yes"],
            scopes.TOKENS_MANAGE, object_level=False,
            changed=lambda w, t: APIToken.objects.filter(name="ci").count()),
    Command("audit", lambda w, t: ["audit"], scopes.MEMBERS_MANAGE, object_level=False),
]


def held_scopes(role: str, mode: str, command: Command) -> frozenset:
    held = scopes.ROLE_SCOPES[role]
    return held - {command.narrowed_scope} if mode == "narrow" else held


def expected_exit(command: Command, role: str, mode: str, target: str) -> tuple[int, str | None]:
    held = held_scopes(role, mode, command)
    if command.base_scope not in held:
        # Reads of named objects go through for_scope, so without the read
        # scope the object is simply not found.
        return (1, "NOT_FOUND") if command.object_level else (2, "SCOPE_DENIED")
    if command.object_level and target == "other" and role not in scopes.UNRESTRICTED_ROLES:
        return 1, "NOT_FOUND"
    if any(scope not in held for scope in command.needed):
        return 2, "SCOPE_DENIED"
    return 0, None


def run_cli(*argv: str, token: str | None = None) -> tuple[int, dict]:
    out = io.StringIO()
    arguments = [*argv, "--json"] + (["--token", token] if token else [])
    try:
        call_command(*arguments, stdout=out, stderr=io.StringIO())
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    return code, json.loads(out.getvalue())


def cases():
    for command in COMMANDS:
        for role in ROLES:
            for mode in MODES:
                for target in (["granted", "other"] if command.object_level else ["granted"]):
                    yield pytest.param(command, role, mode, target, id=f"{command.name}-{role}-{mode}-{target}")


@pytest.mark.parametrize("command,role,mode,target", list(cases()))
def test_cli_permission(full_world, command, role, mode, target):
    make_user("grantee", scopes.VIEWER)
    user = make_user(f"{role}-user", role)
    if role not in scopes.UNRESTRICTED_ROLES:
        grant(user, full_world["granted_project"], *scopes.OBJECT_SCOPES)
    token = make_token(user, held_scopes(role, mode, command), name="matrix")
    before = command.changed(full_world, target) if command.changed else None

    code, document = run_cli(*command.argv(full_world, target), token=token)

    expected_code, expected_error = expected_exit(command, role, mode, target)
    assert code == expected_code, document
    assert document["ok"] is (expected_code == 0)
    if expected_error:
        assert document["code"] == expected_error
    if expected_error == "SCOPE_DENIED":
        assert document["required_scopes"] == [command.narrowed_scope] or document["required_scopes"]
        assert isinstance(document["granted_scopes"], list)
    if command.changed:
        assert (command.changed(full_world, target) != before) == (expected_code == 0)


@pytest.mark.parametrize("command", COMMANDS, ids=[c.name for c in COMMANDS])
def test_cli_system_operator_without_token(full_world, command, monkeypatch):
    monkeypatch.delenv("DAOFLOW_TOKEN", raising=False)
    make_user("grantee", scopes.VIEWER)

    code, document = run_cli(*command.argv(full_world, "other"))

    assert code == 0, document
    assert document["ok"] is True


def test_cli_invalid_token_is_rejected(full_world):
    code, document = run_cli("services", token="dfl_not-a-real-token")

    assert code == 1
    assert document["code"] == "UNAUTHENTICATED"


def test_cli_token_from_environment(full_world, monkeypatch):
    viewer = make_user("viewer-user", scopes.VIEWER)
    monkeypatch.setenv("DAOFLOW_TOKEN", make_token(viewer, scopes.ROLE_SCOPES[scopes.VIEWER]))

    code, document = run_cli("services")

    assert code == 0
    assert document["data"]["services"] == []


def test_cli_denied_attempt_is_audited(full_world):
    viewer = make_user("viewer-user", scopes.VIEWER)
    grant(viewer, full_world["granted_project"], *scopes.OBJECT_SCOPES)
    token = make_token(viewer, scopes.ROLE_SCOPES[scopes.VIEWER], name="laptop")

    code, _ = run_cli("deploy", "--service", "web", "--yes", token=token)

    assert code == 2
    entry = AuditEntry.objects.get(outcome=AuditEntry.OUTCOME_DENIED)
    assert entry.action == "deployment.create"
    assert entry.token_name == "laptop"
    assert entry.scope == scopes.DEPLOY_START


def test_cli_system_operator_is_named_in_audit(full_world, monkeypatch):
    monkeypatch.delenv("DAOFLOW_TOKEN", raising=False)

    run_cli("service", "update", "--name", "web", "--image", "nginx:1.29", "--yes")

    entry = AuditEntry.objects.filter(action="service.update").get()
    assert entry.actor_user is None
    assert entry.actor_label == "system operator (local command line)"
