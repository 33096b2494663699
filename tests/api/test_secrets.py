"""Secret values read as ******** everywhere unless the principal has secrets:read on the object."""

import io
import json

import pytest
from django.core.management import call_command

from accounts import scopes
from accounts.models import AuditEntry
from tests.api.conftest import SECRET, client_for, grant, make_token, make_user

MASK = "********"


def env_of(payload: dict) -> dict:
    return {row["key"]: row["value"] for row in payload["env"]}


@pytest.mark.parametrize(
    "role,token_scopes,revealed",
    [
        (scopes.OWNER, None, True),
        (scopes.ADMIN, None, True),
        (scopes.OWNER, set(scopes.ALL_SCOPES) - {scopes.SECRETS_READ}, False),
        (scopes.OPERATOR, None, False),
        (scopes.DEVELOPER, None, False),
        (scopes.VIEWER, None, False),
    ],
)
def test_api_service_secret_masking(world, role, token_scopes, revealed):
    user = make_user("someone", role)
    grant(user, world["granted_project"], *scopes.OBJECT_SCOPES)
    client = client_for(token=make_token(user, token_scopes)) if token_scopes else client_for(user)

    detail = client.get(f"/api/v1/services/{world['granted'].pk}/").json()
    listed = client.get("/api/v1/services/").json()["results"][0]
    variables = client.get("/api/v1/env-vars/", {"key": "API_TOKEN", "service": world["granted"].pk}).json()

    expected = SECRET if revealed else MASK
    assert env_of(detail)["API_TOKEN"] == expected
    assert env_of(detail)["GREETING"] == "hello"
    assert env_of(listed)["API_TOKEN"] == expected
    assert variables["results"][0]["value"] == expected
    if not revealed:
        assert SECRET not in json.dumps([detail, listed, variables])


def test_api_secret_revealed_by_grant_only_with_role(world):
    """A grant of secrets:read reveals nothing to a role without secrets:read: grants never exceed the role."""
    developer = make_user("dev", scopes.DEVELOPER)
    grant(developer, world["granted"], scopes.SERVICE_READ, scopes.ENV_READ, scopes.SECRETS_READ)

    detail = client_for(developer).get(f"/api/v1/services/{world['granted'].pk}/").json()

    assert env_of(detail)["API_TOKEN"] == MASK


def run_json(*argv, token=None) -> dict:
    out = io.StringIO()
    call_command(*argv, "--json", *(["--token", token] if token else []), stdout=out, stderr=io.StringIO())
    return json.loads(out.getvalue())


@pytest.mark.parametrize("token_scopes,revealed", [(None, True), ("no-secrets", False)])
def test_cli_service_secret_masking(world, monkeypatch, token_scopes, revealed):
    monkeypatch.delenv("DAOFLOW_TOKEN", raising=False)
    token = None
    if token_scopes:
        owner = make_user("owner-user", scopes.OWNER)
        token = make_token(owner, set(scopes.ALL_SCOPES) - {scopes.SECRETS_READ})

    listed = run_json("services", token=token)["data"]["services"]
    one = run_json("services", "--name", "web", token=token)["data"]["service"]

    expected = SECRET if revealed else MASK
    web = next(service for service in listed if service["name"] == "web")
    assert env_of(web)["API_TOKEN"] == expected
    assert env_of(one)["API_TOKEN"] == expected


def test_audit_masks_secret_values(world, monkeypatch):
    monkeypatch.delenv("DAOFLOW_TOKEN", raising=False)
    owner = make_user("owner-user", scopes.OWNER)
    client = client_for(owner)

    response = client.patch(f"/api/v1/services/{world['granted'].pk}/",
                            {"set_env": [{"key": "DB_PASSWORD", "value": "hunter2-very-secret", "secret": True}]},
                            format="json")
    trail = run_json("audit")

    assert response.status_code == 200
    entry = AuditEntry.objects.get(action="service.update")
    assert entry.diff["env"]["DB_PASSWORD"]["after"] == MASK
    assert "hunter2-very-secret" not in json.dumps(entry.diff)
    assert "hunter2-very-secret" not in json.dumps(trail)
    assert "hunter2-very-secret" not in json.dumps(response.json()["changes"])


def test_admin_masks_secret_values(world):
    from django.test import Client

    owner = make_user("owner-user", scopes.OWNER)
    operator = make_user("operator-user", scopes.OPERATOR)
    for user in (owner, operator):
        user.is_staff = True
        user.save()
    grant(operator, world["granted_project"], *scopes.OBJECT_SCOPES)
    path = f"/admin/services/service/{world['granted'].pk}/change/"

    as_owner = Client()
    as_owner.force_login(owner)
    as_operator = Client()
    as_operator.force_login(operator)
    owner_page = as_owner.get(path).content.decode()
    operator_page = as_operator.get(path).content.decode()

    assert SECRET in owner_page
    assert SECRET not in operator_page
    assert MASK in operator_page
