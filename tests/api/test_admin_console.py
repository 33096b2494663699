"""The admin as the operator's console: state and endpoints in the service list, logs on the deployment page."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts import scopes
from tests.api.conftest import make_deployment, make_project, make_service
from tests.api.test_admin import staff_client


def test_service_list_shows_state_and_endpoints(full_world):
    client, _ = staff_client(scopes.OWNER)

    page = client.get("/admin/services/service/").content.decode()

    assert "Running / Healthy" in page
    assert "127.0.0.1:8080 (healthy)" in page
    assert f"#{full_world['granted_deployment'].pk} succeeded" in page


@pytest.mark.parametrize("count", [10, 60])
def test_service_list_query_count_is_flat(db, count, django_assert_max_num_queries):
    project = make_project("many")
    for index in range(count):
        service = make_service(project, f"svc{index}", port=str(20000 + index))
        if index % 2:
            make_deployment(service)
    client, _ = staff_client(scopes.OWNER)

    with CaptureQueriesContext(connection) as queries:
        response = client.get("/admin/services/service/")

    assert response.status_code == 200
    # Sessions, user, counts, the page of services, ports: a fixed set,
    # whatever the number of services.
    assert len(queries) <= 12, [q["sql"][:120] for q in queries]


def test_deployment_page_shows_masked_log(full_world):
    client, _ = staff_client(scopes.OWNER)
    deployment = full_world["granted_deployment"]

    page = client.get(f"/admin/deployments/deployment/{deployment.pk}/change/").content.decode()

    assert "API_TOKEN=********" in page
    assert "s3cret-value" not in page


def test_deployment_log_needs_logs_read(full_world):
    client, _ = staff_client(scopes.DEVELOPER, full_world, scopes.DEPLOY_READ, scopes.SERVICE_READ)
    deployment = full_world["granted_deployment"]

    page = client.get(f"/admin/deployments/deployment/{deployment.pk}/change/").content.decode()

    assert "needs the scope logs:read" in page
    assert "API_TOKEN=********" not in page
