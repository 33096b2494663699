"""`daoflow user`, `grant`, `revoke`, `token` and `audit`: behaviour beyond the permission matrix."""

import io
import json
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone

from accounts import scopes
from accounts.models import APIToken, AuditEntry, hash_token
from daoflow.command import UsageError
from tests.api.conftest import client_for, make_user


@pytest.fixture(autouse=True)
def no_ambient_token(monkeypatch):
    monkeypatch.delenv("DAOFLOW_TOKEN", raising=False)


def run(*argv, stdin: str | None = None, monkeypatch=None) -> tuple[int, dict]:
    out = io.StringIO()
    if stdin is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    try:
        call_command(*argv, "--json", stdout=out, stderr=io.StringIO())
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    return code, json.loads(out.getvalue())


def test_user_create_with_password_stdin(db, monkeypatch):
    code, document = run("user", "create", "--username", "alice", "--role", "developer", "--password-stdin", "--yes",
                         stdin="a-Long-passphrase-42\n", monkeypatch=monkeypatch)

    alice = get_user_model().objects.get(username="alice")
    assert code == 0
    assert document["data"]["user"]["role"] == "developer"
    assert alice.check_password("a-Long-passphrase-42")
    assert alice.membership.role == "developer"
    entry = AuditEntry.objects.get(action="user.create")
    assert entry.actor_label == "system operator (local command line)"
    assert "a-Long-passphrase-42" not in json.dumps(entry.diff)


def test_user_create_rejects_unknown_role_and_duplicate(db):
    make_user("bob", scopes.VIEWER)

    with pytest.raises(UsageError, match="'root'"):
        run("user", "create", "--username", "carol", "--role", "root", "--yes")
    duplicate = run("user", "create", "--username", "bob", "--role", "viewer", "--yes")

    assert duplicate[0] == 1
    assert duplicate[1]["code"] == "CONFLICT"


def test_user_list_and_set_role(db):
    make_user("bob", scopes.VIEWER)

    code, changed = run("user", "set-role", "--username", "bob", "--role", "operator", "--yes")
    _, listing = run("user", "list")

    assert code == 0, changed
    assert [(u["username"], u["role"]) for u in listing["data"]["users"]] == [("bob", "operator")]
    assert AuditEntry.objects.get(action="user.set_role").diff == {"role": {"before": "viewer", "after": "operator"}}


def test_grant_and_revoke_change_access(world):
    dev = make_user("dev", scopes.DEVELOPER)
    client = client_for(dev)
    path = f"/api/v1/services/{world['granted'].pk}/"

    assert client.get(path).status_code == 404
    code, granted = run("grant", "--user", "dev", "--service", "web", "--scope", "service:read", "deploy:start", "--yes")
    assert code == 0
    assert granted["data"]["added"] == ["deploy:start", "service:read"]
    assert client.get(path).status_code == 200
    code, revoked = run("revoke", "--user", "dev", "--service", "web", "--scope", "service:read", "--yes")
    assert code == 0
    assert revoked["data"]["removed"] == ["service:read"]
    assert client.get(path).status_code == 404
    assert list(AuditEntry.objects.order_by("id").values_list("action", flat=True)) == ["grant.add", "grant.remove"]


def test_grant_project_covers_services(world):
    dev = make_user("dev", scopes.DEVELOPER)

    run("grant", "--user", "dev", "--project", "granted", "--scope", "service:read", "--yes")

    names = {row["name"] for row in client_for(dev).get("/api/v1/services/").json()["results"]}
    assert names == {"web"}


def test_grant_rejects_installation_wide_scope(world):
    make_user("dev", scopes.DEVELOPER)

    code, document = run("grant", "--user", "dev", "--project", "granted", "--scope", "server:write", "--yes")

    assert code == 1
    assert document["code"] == "INVALID_INPUT"
    assert "server:write" in document["error"]


def test_grant_needs_a_target(world):
    make_user("dev", scopes.DEVELOPER)

    code, document = run("grant", "--user", "dev", "--scope", "service:read", "--yes")

    assert code == 1
    assert "--project" in document["error"]


def test_token_lifecycle(world):
    dev = make_user("dev", scopes.DEVELOPER)
    run("grant", "--user", "dev", "--project", "granted", "--scope", "service:read", "--yes")

    code, created = run("token", "create", "--user", "dev", "--name", "ci", "--scope", "service:read",
                        "--expires-in", "30", "--yes")
    raw = created["data"]["value"]
    stored = APIToken.objects.get(name="ci")
    first = client_for(token=raw).get("/api/v1/services/")
    _, listed = run("token", "list", "--user", "dev")
    revoked_code, _ = run("token", "revoke", "--user", "dev", "--name", "ci", "--yes")
    after = client_for(token=raw).get("/api/v1/services/")

    assert code == 0
    assert raw.startswith("dfl_")
    assert stored.token_hash == hash_token(raw)
    assert raw not in json.dumps(listed)
    assert stored.expires_at > timezone.now() + timedelta(days=29)
    assert first.status_code == 200
    assert APIToken.objects.get(name="ci").last_used_at is not None
    assert listed["data"]["tokens"][0]["name"] == "ci"
    assert revoked_code == 0
    assert after.status_code == 401
    assert not AuditEntry.objects.filter(diff__icontains=raw).exists()
    assert list(AuditEntry.objects.filter(action__startswith="token").values_list("action", flat=True)) == [
        "token.revoke", "token.create"]


def test_token_scopes_must_fit_role(db):
    make_user("viewer", scopes.VIEWER)

    code, document = run("token", "create", "--user", "viewer", "--name", "x", "--scope", "deploy:start", "--yes")

    assert code == 1
    assert "deploy:start" in document["error"]
    assert not APIToken.objects.exists()


def test_token_expired_is_rejected(world):
    make_user("owner-user", scopes.OWNER)
    _, created = run("token", "create", "--user", "owner-user", "--name", "short", "--scope", "service:read",
                     "--expires-in", "1", "--yes")
    APIToken.objects.filter(name="short").update(expires_at=timezone.now() - timedelta(seconds=1))

    response = client_for(token=created["data"]["value"]).get("/api/v1/services/")

    assert response.status_code == 401


def test_token_rejects_past_expiry(db):
    make_user("owner-user", scopes.OWNER)

    code, document = run("token", "create", "--user", "owner-user", "--name", "old", "--scope", "service:read",
                         "--expires-at", "2001-01-01", "--yes")

    assert code == 1
    assert "--expires-at" in document["error"]


def test_audit_filters(world):
    make_user("dev", scopes.DEVELOPER)
    run("grant", "--user", "dev", "--project", "granted", "--scope", "service:read", "--yes")
    run("service", "update", "--name", "web", "--image", "nginx:1.29", "--yes")

    _, by_action = run("audit", "--action", "grant")
    _, by_target = run("audit", "--target", "web")
    _, limited = run("audit", "--limit", "1")
    _, recent = run("audit", "--since", "1h")
    bad_since = run("audit", "--since", "yesterday-ish")

    assert [e["action"] for e in by_action["data"]["entries"]] == ["grant.add"]
    assert "service.update" in [e["action"] for e in by_target["data"]["entries"]]
    assert len(limited["data"]["entries"]) == 1
    assert len(recent["data"]["entries"]) >= 2
    assert bad_since[0] == 1
    assert "--since" in bad_since[1]["error"]


def test_audit_is_append_only(world):
    run("service", "update", "--name", "web", "--image", "nginx:1.29", "--yes")
    entry = AuditEntry.objects.get(action="service.update")

    with pytest.raises(PermissionError):
        AuditEntry.objects.update(action="tampered")
    with pytest.raises(PermissionError):
        AuditEntry.objects.all().delete()
    with pytest.raises(PermissionError):
        entry.save()
    with pytest.raises(PermissionError):
        entry.delete()
    assert AuditEntry.objects.get(pk=entry.pk).action == "service.update"


def test_audit_api_is_read_only(world):
    owner = make_user("owner-user", scopes.OWNER)
    run("service", "update", "--name", "web", "--image", "nginx:1.29", "--yes")
    entry = AuditEntry.objects.get(action="service.update")
    client = client_for(owner)

    listed = client.get("/api/v1/audit/", {"action": "service"})

    assert listed.status_code == 200
    assert listed.json()["results"][0]["action"] == "service.update"
    assert client.delete(f"/api/v1/audit/{entry.pk}/").status_code == 405
    assert client.patch(f"/api/v1/audit/{entry.pk}/", {"action": "x"}, format="json").status_code == 405
    assert client.post("/api/v1/audit/", {}, format="json").status_code == 405
