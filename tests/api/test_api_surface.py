"""The API's documentation, browsable pages, filters, pagination and error shapes."""

from accounts import scopes
from tests.api.conftest import client_for, make_service, make_user


def test_schema_and_docs_pages(world):
    owner = make_user("owner-user", scopes.OWNER)
    client = client_for(owner)

    schema = client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    docs = client.get("/api/v1/docs/")

    assert schema.status_code == 200
    paths = schema.json()["paths"]
    for path in ("/api/v1/services/", "/api/v1/deployments/{id}/rollback/", "/api/v1/env-vars/", "/api/v1/audit/"):
        assert path in paths
    assert "apiToken" in schema.json()["components"]["securitySchemes"]
    assert docs.status_code == 200


def test_browsable_api_with_session(world):
    from django.test import Client

    owner = make_user("owner-user", scopes.OWNER)
    client = Client()
    client.force_login(owner)

    response = client.get("/api/v1/services/", HTTP_ACCEPT="text/html")

    assert response.status_code == 200
    assert "text/html" in response["Content-Type"]


def test_filter_and_pagination(world):
    owner = make_user("owner-user", scopes.OWNER)
    for index in range(3):
        make_service(world["granted_project"], f"extra{index}")
    client = client_for(owner)

    filtered = client.get("/api/v1/services/", {"project__name": "other"}).json()
    page = client.get("/api/v1/services/", {"limit": 2, "offset": 1}).json()

    assert [row["name"] for row in filtered["results"]] == ["db"]
    assert page["count"] == 5
    assert len(page["results"]) == 2
    assert page["next"]


def test_invalid_input_names_field_and_value(world):
    owner = make_user("owner-user", scopes.OWNER)

    response = client_for(owner).patch(f"/api/v1/services/{world['granted'].pk}/", {"add_ports": ["99999:80"]},
                                       format="json")

    body = response.json()
    assert response.status_code == 400
    assert body["ok"] is False
    assert body["code"] == "INVALID_INPUT"
    assert "99999" in body["error"]


def test_not_found_message_names_object(world):
    owner = make_user("owner-user", scopes.OWNER)

    body = client_for(owner).get("/api/v1/services/999999/").json()

    assert body == {"ok": False, "code": "NOT_FOUND",
                    "error": "Service '999999' not found; list what you can read with GET /api/v1/services/."}


def test_put_is_not_offered_on_services(world):
    owner = make_user("owner-user", scopes.OWNER)

    response = client_for(owner).put(f"/api/v1/services/{world['granted'].pk}/", {}, format="json")

    assert response.status_code == 405
    assert response.json()["code"] == "METHOD_NOT_ALLOWED"


def test_deploy_is_idempotent_with_key(world):
    owner = make_user("owner-user", scopes.OWNER)
    client = client_for(owner)
    body = {"service": world["granted"].pk, "idempotency_key": "release-42"}

    first = client.post("/api/v1/deployments/", body, format="json")
    second = client.post("/api/v1/deployments/", body, format="json")

    assert first.status_code == 201
    assert second.status_code == 200
    assert first.json()["id"] == second.json()["id"]


def test_deployment_detail_has_steps_and_logs_masked(full_world):
    owner = make_user("owner-user", scopes.OWNER)
    client = client_for(owner)
    deployment = full_world["granted_deployment"]

    detail = client.get(f"/api/v1/deployments/{deployment.pk}/").json()
    logs = client.get(f"/api/v1/deployments/{deployment.pk}/logs/").json()
    bad = client.get(f"/api/v1/deployments/{deployment.pk}/logs/", {"after": "x"})

    assert "steps" in detail
    assert logs["lines"][0]["text"] == "API_TOKEN=********"
    assert logs["finished"] is True
    assert bad.status_code == 400
    assert "after" in bad.json()["error"]
