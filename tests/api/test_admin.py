"""The admin under the same rules as the API: scoped lists, per-object checks, no unchecked delete."""

import pytest
from django.test import Client

from accounts import scopes
from accounts.models import AuditEntry
from deployments.models import Deployment
from services.models import Service
from tests.api.conftest import grant, make_user


def staff_client(role: str, world=None, *granted) -> tuple[Client, object]:
    user = make_user(f"{role}-staff", role)
    user.is_staff = True
    user.save()
    if world is not None and granted:
        grant(user, world["granted_project"], *granted)
    client = Client()
    client.force_login(user)
    return client, user


def test_admin_service_list_shows_only_granted(world):
    client, _ = staff_client(scopes.DEVELOPER, world, *scopes.OBJECT_SCOPES)

    page = client.get("/admin/services/service/").content.decode()

    assert f"/admin/services/service/{world['granted'].pk}/change/" in page
    assert f"/admin/services/service/{world['other'].pk}/change/" not in page


def test_admin_ungranted_service_is_not_found(world):
    client, _ = staff_client(scopes.DEVELOPER, world, *scopes.OBJECT_SCOPES)

    response = client.get(f"/admin/services/service/{world['other'].pk}/change/")

    # The admin redirects to its index with "doesn't exist" for objects outside the queryset.
    assert response.status_code == 302


def test_admin_change_needs_service_update_on_object(world):
    client, _ = staff_client(scopes.DEVELOPER, world, *scopes.OBJECT_SCOPES)
    path = f"/admin/services/service/{world['granted'].pk}/change/"

    response = client.post(path, {"name": "web", "source_type": "image", "image": "evil:1"})

    assert response.status_code == 403
    assert Service.objects.get(pk=world["granted"].pk).image == "nginx:1.27"


def test_admin_change_goes_through_update_service(world):
    client, _ = staff_client(scopes.OPERATOR, world, *scopes.OBJECT_SCOPES)
    path = f"/admin/services/service/{world['granted'].pk}/change/"
    form = {"name": "web", "source_type": "image", "image": "nginx:1.28", "repository_url": "", "branch": "",
            "compose_path": "", "compose_document": "", "compose_service": "", "dockerfile_path": "",
            "target_server": ""}
    for prefix in ("ports", "volumes", "variables"):
        form.update({f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"})

    response = client.post(path, form)

    assert response.status_code == 302, response.content.decode()[:2000]
    assert Service.objects.get(pk=world["granted"].pk).image == "nginx:1.28"
    entry = AuditEntry.objects.get(action="service.update")
    assert entry.actor_label == "operator-staff"
    assert entry.diff["image"] == {"before": "nginx:1.27", "after": "nginx:1.28"}


def test_admin_invalid_change_shows_validation_error(world):
    client, _ = staff_client(scopes.OWNER)
    path = f"/admin/services/service/{world['granted'].pk}/change/"
    form = {"name": "web", "source_type": "image", "image": "Not A Valid Image", "target_server": ""}
    for prefix in ("ports", "volumes", "variables"):
        form.update({f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"})

    response = client.post(path, form)

    assert response.status_code == 200
    assert "Not A Valid Image" in response.content.decode()
    assert Service.objects.get(pk=world["granted"].pk).image == "nginx:1.27"


def test_admin_offers_no_delete(world):
    client, _ = staff_client(scopes.OWNER)

    listing = client.get("/admin/services/service/").content.decode()
    delete = client.post(f"/admin/services/service/{world['granted'].pk}/delete/", {"post": "yes"})

    assert "delete_selected" not in listing
    assert delete.status_code == 403
    assert Service.objects.filter(pk=world["granted"].pk).exists()


def test_admin_deploy_action_rechecks_each_object(world):
    client, _ = staff_client(scopes.VIEWER, world, *scopes.OBJECT_SCOPES)

    client.post("/admin/services/service/", {
        "action": "deploy_selected", "_selected_action": [world["granted"].pk, world["other"].pk],
    })

    assert not Deployment.objects.exists()
    denied = AuditEntry.objects.get(outcome=AuditEntry.OUTCOME_DENIED)
    assert denied.action == "deployment.create"
    assert denied.target_id == str(world["granted"].pk)


def test_admin_deploy_action_for_permitted_objects(world):
    client, _ = staff_client(scopes.DEVELOPER, world, *scopes.OBJECT_SCOPES)

    client.post("/admin/services/service/", {
        "action": "deploy_selected", "_selected_action": [world["granted"].pk, world["other"].pk],
    })

    assert list(Deployment.objects.values_list("service_id", flat=True)) == [world["granted"].pk]


def test_admin_audit_is_read_only(world):
    from accounts.principal import SYSTEM
    from services.actions import update_service
    from services.config import ServiceInput

    update_service(SYSTEM, world["granted"], ServiceInput(image="nginx:1.28"))
    entry = AuditEntry.objects.get()
    client, _ = staff_client(scopes.OWNER)

    change = client.post(f"/admin/accounts/auditentry/{entry.pk}/change/", {"action": "tampered"})
    delete = client.post(f"/admin/accounts/auditentry/{entry.pk}/delete/", {"post": "yes"})

    assert change.status_code in (302, 403)
    assert delete.status_code == 403
    assert AuditEntry.objects.get(pk=entry.pk).action == "service.update"


@pytest.mark.parametrize("role,visible", [(scopes.OWNER, True), (scopes.OPERATOR, False)])
def test_admin_members_need_members_manage(db, role, visible):
    client, _ = staff_client(role)

    response = client.get("/admin/accounts/membership/")

    assert (response.status_code == 200) == visible


def test_admin_token_add_is_audited_and_shown_once(db):
    from accounts.models import APIToken

    client, owner = staff_client(scopes.OWNER)

    response = client.post("/admin/accounts/apitoken/add/", {
        "user": owner.pk, "name": "from-admin", "token_scopes": ["service:read"], "expires_at_0": "", "expires_at_1": "",
    }, follow=True)

    token = APIToken.objects.get(name="from-admin")
    assert "dfl_" in response.content.decode()
    assert token.scopes == ["service:read"]
    assert AuditEntry.objects.get(action="token.create").actor_label == "owner-staff"


def test_admin_grant_add_and_revoke(world):
    from services.models import ProjectUserObjectPermission

    client, _ = staff_client(scopes.OWNER)
    dev = make_user("dev", scopes.DEVELOPER)

    client.post("/admin/services/projectuserobjectpermission/add/", {
        "user": dev.pk, "content_object": world["granted_project"].pk, "scope": "service:read",
    })
    row = ProjectUserObjectPermission.objects.get(user=dev)
    client.post("/admin/services/projectuserobjectpermission/", {
        "action": "revoke_selected", "_selected_action": [row.pk],
    })

    assert not ProjectUserObjectPermission.objects.filter(user=dev).exists()
    assert list(AuditEntry.objects.order_by("id").values_list("action", flat=True)) == ["grant.add", "grant.remove"]
