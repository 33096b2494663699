"""Regressions found by attacking the product: each test is one way a secret or a privilege leaked."""

import pytest
from django.core.management import call_command

from accounts import scopes
from accounts.actions import create_token, set_role
from accounts.principal import SYSTEM, principal_for
from daoflow.errors import ScopeDenied
from services.models import EnvironmentVariable, Service
from tests.api.conftest import SECRET, client_for, grant, make_token, make_user


@pytest.mark.parametrize("accept", ["text/html", None])
def test_browsable_api_hides_secret_in_forms(world, accept):
    user = make_user("dev", scopes.DEVELOPER)
    grant(user, world["granted_project"], *scopes.OBJECT_SCOPES)
    token = make_token(user, [scopes.SERVICE_READ, scopes.ENV_READ, scopes.ENV_WRITE])
    row = EnvironmentVariable.objects.get(service=world["granted"], key="API_TOKEN")

    url = f"/api/v1/env-vars/{row.pk}/" + ("" if accept else "?format=api")
    response = client_for(token=token).get(url, HTTP_ACCEPT=accept or "text/html")

    assert response.status_code == 200
    assert SECRET not in response.content.decode()


def test_admin_cannot_mint_owner_token(db):
    owner = make_user("boss", scopes.OWNER)
    admin_user = make_user("adm", scopes.ADMIN)

    with pytest.raises(ScopeDenied):
        create_token(principal_for(admin_user), owner, name="steal", requested=[scopes.MEMBERS_MANAGE])


def test_demoted_superuser_loses_superuser_flag(db):
    make_user("boss", scopes.OWNER)
    user = make_user("former", scopes.OWNER)
    type(user).objects.filter(pk=user.pk).update(is_superuser=True)
    user.refresh_from_db()

    set_role(SYSTEM, user, scopes.VIEWER)
    user.refresh_from_db()

    assert user.is_superuser is False


def test_django_user_admin_is_not_offered(db):
    from django.contrib import admin
    from django.contrib.auth import get_user_model

    assert not admin.site.is_registered(get_user_model())


def test_repository_token_is_hidden(world):
    Service.objects.filter(pk=world["granted"].pk).update(
        repository_url="https://ghp_SECRETTOKEN@github.com/acme/app.git"
    )
    viewer = make_user("viewer", scopes.VIEWER)
    grant(viewer, world["granted_project"], scopes.SERVICE_READ)

    body = client_for(viewer).get(f"/api/v1/services/{world['granted'].pk}/").content.decode()

    assert "ghp_SECRETTOKEN" not in body
    assert "https://***@github.com/acme/app.git" in body


def test_secret_value_guess_is_not_confirmed(world):
    from services import actions
    from services.config import ServiceInput

    operator_user = make_user("op", scopes.OPERATOR)
    grant(operator_user, world["granted_project"], scopes.SERVICE_READ, scopes.SERVICE_UPDATE, scopes.ENV_WRITE)
    operator = principal_for(operator_user)
    changes = actions.update_service(
        operator, world["granted"], ServiceInput(set_env=[("API_TOKEN", SECRET, True)]), dry_run=True
    )

    assert changes["env"]["API_TOKEN"] == {"before": "********", "after": "********"}


def test_too_long_branch_is_400_not_500(world, owner):
    response = client_for(owner).patch(
        f"/api/v1/services/{world['granted'].pk}/", {"branch": "b" * 300}, format="json"
    )

    assert response.status_code == 400
    assert "limit is 255" in response.json()["error"]


def test_empty_token_is_rejected(db, monkeypatch):
    from io import StringIO

    monkeypatch.setenv("DAOFLOW_TOKEN", "")
    out = StringIO()
    with pytest.raises(SystemExit) as exit_:
        call_command("services", "--json", stdout=out)

    assert exit_.value.code == 1
    assert '"UNAUTHENTICATED"' in out.getvalue()


def test_audit_entries_cannot_be_upserted(world):
    from accounts.models import AuditEntry
    from accounts.audit import record

    entry = record(SYSTEM, "test.write", world["granted"])

    with pytest.raises(PermissionError):
        AuditEntry.objects.bulk_create(
            [AuditEntry(id=entry.pk, action="forged", actor_label="x")],
            update_conflicts=True, update_fields=["action"], unique_fields=["id"],
        )
    assert AuditEntry.objects.get(pk=entry.pk).action == "test.write"


def test_latest_deployment_needs_deploy_read(full_world):
    viewer = make_user("reader", scopes.VIEWER)
    grant(viewer, full_world["granted_project"], scopes.SERVICE_READ)

    body = client_for(viewer).get(f"/api/v1/services/{full_world['granted'].pk}/").json()

    assert body["latest_deployment"] is None
    assert body["state"] == "healthy"


def test_probe_path_must_be_ascii(world):
    from daoflow.errors import InvalidInput
    from deployments.probes import ProbeInput, validate_probe

    with pytest.raises(InvalidInput, match="non-ASCII"):
        validate_probe(ProbeInput(kind="http", port=8080, path="/é"))


def test_env_needs_env_read(world):
    reader = make_user("plain-reader", scopes.VIEWER)
    grant(reader, world["granted_project"], scopes.SERVICE_READ)

    body = client_for(reader).get(f"/api/v1/services/{world['granted'].pk}/").json()

    assert body["env"] == []


def test_env_value_size_is_limited():
    from services.validation import ENV_VALUE_MAX_BYTES, InvalidValue, validate_env_value

    assert validate_env_value("x" * ENV_VALUE_MAX_BYTES) == "x" * ENV_VALUE_MAX_BYTES
    with pytest.raises(InvalidValue, match="limit is 65536 bytes"):
        validate_env_value("x" * (ENV_VALUE_MAX_BYTES + 1))


def test_unknown_fields_are_rejected(world, owner):
    response = client_for(owner).patch(
        f"/api/v1/services/{world['granted'].pk}/", {"compose_project": "other", "image": "nginx:1.28"}, format="json"
    )

    assert response.status_code == 400
    assert "compose_project" in response.json()["error"]
    assert Service.objects.get(pk=world["granted"].pk).image == "nginx:1.27"


def test_service_filter_does_not_reveal_other_ids(world):
    user = make_user("dev2", scopes.DEVELOPER)
    grant(user, world["granted_project"], *scopes.OBJECT_SCOPES)
    client = client_for(user)

    other = client.get(f"/api/v1/deployments/?service={world['other'].pk}")
    missing = client.get("/api/v1/deployments/?service=999999")

    assert other.status_code == missing.status_code == 200
    assert other.json()["results"] == missing.json()["results"] == []
