"""Denied attempts stay in the audit trail although the failed request's transaction rolls back."""

import io

import pytest
from django.core.management import call_command
from django.db import transaction

from accounts import scopes
from accounts.audit import record_denial
from accounts.models import AuditEntry
from accounts.principal import principal_for
from daoflow.errors import ScopeDenied
from services.actions import update_service
from services.config import ServiceInput
from services.models import Service
from tests.api.conftest import client_for, grant, make_project, make_service, make_token, make_user


@pytest.fixture
def viewer_on_web(transactional_db):
    project = make_project("granted")
    service = make_service(project, "web")
    viewer = make_user("viewer-user", scopes.VIEWER)
    grant(viewer, project, *scopes.OBJECT_SCOPES)
    return viewer, service


def test_denial_inside_transaction_is_written_by_boundary(viewer_on_web):
    viewer, service = viewer_on_web

    with pytest.raises(ScopeDenied) as caught:
        with transaction.atomic():
            update_service(principal_for(viewer), service, ServiceInput(image="evil:1"))
    deferred = AuditEntry.objects.count()
    record_denial(principal_for(viewer), caught.value, "fallback")
    record_denial(principal_for(viewer), caught.value, "fallback")

    assert deferred == 0
    entry = AuditEntry.objects.get()
    assert entry.action == "service.update"
    assert entry.outcome == AuditEntry.OUTCOME_DENIED


def test_denial_outside_transaction_is_written_at_once(viewer_on_web):
    viewer, service = viewer_on_web

    with pytest.raises(ScopeDenied):
        update_service(principal_for(viewer), service, ServiceInput(image="evil:1"))

    assert AuditEntry.objects.get().action == "service.update"


def test_api_denial_is_committed(viewer_on_web):
    viewer, service = viewer_on_web

    response = client_for(viewer).patch(f"/api/v1/services/{service.pk}/", {"image": "evil:1"}, format="json")

    assert response.status_code == 403
    assert AuditEntry.objects.filter(outcome=AuditEntry.OUTCOME_DENIED).count() == 1
    assert Service.objects.get(pk=service.pk).image == "nginx:1.27"


def test_cli_denial_is_committed(viewer_on_web):
    viewer, _ = viewer_on_web
    token = make_token(viewer, scopes.ROLE_SCOPES[scopes.VIEWER])

    with pytest.raises(SystemExit) as exit_:
        call_command("deploy", "--service", "web", "--yes", "--json", "--token", token, stdout=io.StringIO())

    assert exit_.value.code == 2
    assert AuditEntry.objects.filter(outcome=AuditEntry.OUTCOME_DENIED, action="deployment.create").count() == 1
