"""Listing services costs the same number of queries for 10 and for 200 services."""

import io

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts import scopes
from tests.api.conftest import client_for, grant, make_deployment, make_project, make_service, make_user


def build(count: int):
    project = make_project("bulk")
    services = [make_service(project, f"svc{index}", port=str(9000 + index)) for index in range(count)]
    for service in services[::3]:
        make_deployment(service)
    return project, services


def api_list_queries(user, limit: int) -> int:
    client = client_for(user)
    with CaptureQueriesContext(connection) as captured:
        response = client.get("/api/v1/services/", {"limit": limit})
    assert response.status_code == 200
    assert len(response.json()["results"]) == limit
    first = response.json()["results"][0]
    assert first["state"]
    assert "endpoints" in first
    assert "latest_deployment" in first
    return len(captured)


def cli_list_queries(token: str | None) -> int:
    with CaptureQueriesContext(connection) as captured:
        call_command("services", "--json", *(["--token", token] if token else []), stdout=io.StringIO())
    return len(captured)


@pytest.mark.parametrize("grant_on", ["project", "each service"])
@pytest.mark.parametrize("role", [scopes.OWNER, scopes.DEVELOPER])
def test_api_service_list_query_count_flat(db, role, grant_on):
    project, services = build(200)
    user = make_user("lister", role)
    if role != scopes.OWNER and grant_on == "project":
        grant(user, project, *scopes.OBJECT_SCOPES)
    if role != scopes.OWNER and grant_on == "each service":
        for service in services:
            grant(user, service, scopes.SERVICE_READ, scopes.ENV_READ)

    small = api_list_queries(user, 10)
    large = api_list_queries(user, 200)

    assert small == large


@pytest.mark.parametrize("role", [None, scopes.DEVELOPER])
def test_cli_service_list_query_count_flat(db, monkeypatch, role):
    from accounts.models import APIToken
    from tests.api.conftest import make_token

    monkeypatch.delenv("DAOFLOW_TOKEN", raising=False)
    project, services = build(10)
    token = None
    if role:
        user = make_user("lister", role)
        grant(user, project, *scopes.OBJECT_SCOPES)
        token = make_token(user, scopes.ROLE_SCOPES[role])
    small = cli_list_queries(token)
    for index in range(10, 200):
        make_service(project, f"svc{index}")
    APIToken.objects.update(last_used_at=None)

    large = cli_list_queries(token)

    assert small == large
