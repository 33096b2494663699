"""The API permission matrix: every endpoint x every role x three ways to authenticate x granted or not.

Each row of ENDPOINTS states the scopes a request needs; `expected_status`
turns the rules of the scope system into the status the request must get:

- no credentials: 401;
- the principal lacks the endpoint's base read scope altogether: 403;
- the object is outside the principal's grants (owners and admins have no
  grants to miss): 404;
- a needed scope is missing on the object: 403;
- otherwise the endpoint's success status.

A principal is a user of the role signed in without a token ("session"), the
same user through a token carrying every scope of the role ("token"), or
through a token that lacks the endpoint's last needed scope ("narrow").
Non-admin users hold every grantable scope on the project "granted" and
nothing on "other". For writes, the test also checks that the data changed
exactly when the request succeeded.
"""

from dataclasses import dataclass, field
from typing import Callable

import pytest

from accounts import scopes
from accounts.models import AuditEntry
from deployments.models import Deployment
from services.models import Environment, EnvironmentVariable, Project, Server, Service
from tests.api.conftest import ROLES, client_for, grant, make_deployment, make_token, make_user

MODES = ["session", "token", "narrow"]
TARGETS = ["granted", "other"]


@dataclass
class Endpoint:
    name: str
    method: str
    path: Callable  # (world, target) -> path
    base_scope: str  # without it at all: 403
    needed: list = field(default_factory=list)  # checked on the object: 403
    object_level: bool = True  # not granted: 404
    ok: int = 200
    body: Callable | None = None  # (world, target) -> request body
    changed: Callable | None = None  # (world, target) -> a value that differs after a successful write
    unrestricted_only: bool = False
    prepare: Callable | None = None  # (world, target) -> None, before the request

    @property
    def narrowed_scope(self) -> str:
        return (self.needed or [self.base_scope])[-1]


def service_of(world, target):
    return world[target]


def deployment_of(world, target):
    return world[f"{target}_deployment"]


def queued_deployment(world, target):
    world[f"{target}_queued"] = make_deployment(world[target], succeeded=False)


def project_of(world, target):
    return world[f"{target}_project"]


def variable_of(world, target):
    return EnvironmentVariable.objects.get(service=world[target], key="GREETING")


ENDPOINTS = [
    # projects and environments
    Endpoint("projects.list", "get", lambda w, t: "/api/v1/projects/", scopes.SERVICE_READ, object_level=False),
    Endpoint("projects.detail", "get", lambda w, t: f"/api/v1/projects/{project_of(w, t).pk}/", scopes.SERVICE_READ),
    Endpoint("projects.create", "post", lambda w, t: "/api/v1/projects/", scopes.SERVICE_READ,
             [scopes.SERVICE_UPDATE], object_level=False, ok=201, unrestricted_only=True,
             body=lambda w, t: {"name": "fresh"},
             changed=lambda w, t: Project.objects.filter(name="fresh").exists()),
    Endpoint("environments.list", "get", lambda w, t: "/api/v1/environments/", scopes.SERVICE_READ,
             object_level=False),
    Endpoint("environments.create", "post", lambda w, t: "/api/v1/environments/", scopes.SERVICE_READ,
             [scopes.SERVICE_UPDATE], ok=201,
             body=lambda w, t: {"project": project_of(w, t).name, "name": "staging"},
             changed=lambda w, t: Environment.objects.filter(name="staging").count()),
    # servers
    Endpoint("servers.list", "get", lambda w, t: "/api/v1/servers/", scopes.SERVER_READ, object_level=False),
    Endpoint("servers.detail", "get", lambda w, t: f"/api/v1/servers/{w['ssh_server'].pk}/", scopes.SERVER_READ,
             object_level=False),
    Endpoint("servers.create", "post", lambda w, t: "/api/v1/servers/", scopes.SERVER_READ, [scopes.SERVER_WRITE],
             object_level=False, ok=201,
             body=lambda w, t: {"name": "web2", "host": "127.0.0.1", "port": 2222,
                                "private_key": "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n"},
             changed=lambda w, t: Server.objects.filter(name="web2").exists()),
    Endpoint("servers.approve_host_key", "post",
             lambda w, t: f"/api/v1/servers/{w['ssh_server'].pk}/approve-host-key/", scopes.SERVER_READ,
             [scopes.SERVER_WRITE], object_level=False,
             body=lambda w, t: {"fingerprint": _fingerprint()},
             changed=lambda w, t: Server.objects.get(pk=w["ssh_server"].pk).approved_host_key),
    # services
    Endpoint("services.list", "get", lambda w, t: "/api/v1/services/", scopes.SERVICE_READ, object_level=False),
    Endpoint("services.detail", "get", lambda w, t: f"/api/v1/services/{service_of(w, t).pk}/", scopes.SERVICE_READ),
    Endpoint("services.create", "post", lambda w, t: "/api/v1/services/", scopes.SERVICE_READ,
             [scopes.SERVICE_UPDATE], ok=201,
             body=lambda w, t: {"project": project_of(w, t).name, "name": "api", "source_type": "image",
                                "image": "nginx:1.27"},
             changed=lambda w, t: Service.objects.filter(name="api").exists()),
    Endpoint("services.update", "patch", lambda w, t: f"/api/v1/services/{service_of(w, t).pk}/",
             scopes.SERVICE_READ, [scopes.SERVICE_UPDATE],
             body=lambda w, t: {"image": "nginx:1.28"},
             changed=lambda w, t: Service.objects.get(pk=service_of(w, t).pk).image),
    Endpoint("services.update_env", "patch", lambda w, t: f"/api/v1/services/{service_of(w, t).pk}/",
             scopes.SERVICE_READ, [scopes.SERVICE_UPDATE, scopes.ENV_WRITE],
             body=lambda w, t: {"set_env": [{"key": "NEW", "value": "1", "secret": False}]},
             changed=lambda w, t: EnvironmentVariable.objects.filter(key="NEW").exists()),
    # environment variables
    Endpoint("env_vars.list", "get", lambda w, t: "/api/v1/env-vars/", scopes.ENV_READ, object_level=False),
    Endpoint("env_vars.detail", "get", lambda w, t: f"/api/v1/env-vars/{variable_of(w, t).pk}/", scopes.ENV_READ),
    Endpoint("env_vars.set", "post", lambda w, t: "/api/v1/env-vars/", scopes.ENV_READ, [scopes.ENV_WRITE], ok=201,
             body=lambda w, t: {"service": service_of(w, t).pk, "key": "ADDED", "value": "1"},
             changed=lambda w, t: EnvironmentVariable.objects.filter(key="ADDED").exists()),
    Endpoint("env_vars.change", "patch", lambda w, t: f"/api/v1/env-vars/{variable_of(w, t).pk}/", scopes.ENV_READ,
             [scopes.ENV_WRITE], body=lambda w, t: {"value": "changed"},
             changed=lambda w, t: EnvironmentVariable.objects.get(service=w[t], key="GREETING").value),
    Endpoint("env_vars.delete", "delete", lambda w, t: f"/api/v1/env-vars/{variable_of(w, t).pk}/", scopes.ENV_READ,
             [scopes.ENV_WRITE], ok=204,
             changed=lambda w, t: EnvironmentVariable.objects.filter(service=w[t], key="GREETING").exists()),
    # deployments
    Endpoint("deployments.list", "get", lambda w, t: "/api/v1/deployments/", scopes.DEPLOY_READ, object_level=False),
    Endpoint("deployments.detail", "get", lambda w, t: f"/api/v1/deployments/{deployment_of(w, t).pk}/",
             scopes.DEPLOY_READ),
    Endpoint("deployments.create", "post", lambda w, t: "/api/v1/deployments/", scopes.DEPLOY_READ,
             [scopes.DEPLOY_START], ok=201, body=lambda w, t: {"service": service_of(w, t).pk},
             changed=lambda w, t: Deployment.objects.filter(service=service_of(w, t)).count()),
    Endpoint("deployments.logs", "get", lambda w, t: f"/api/v1/deployments/{deployment_of(w, t).pk}/logs/",
             scopes.DEPLOY_READ, [scopes.LOGS_READ]),
    Endpoint("deployments.cancel", "post", lambda w, t: f"/api/v1/deployments/{w[t + '_queued'].pk}/cancel/",
             scopes.DEPLOY_READ, [scopes.DEPLOY_CANCEL], prepare=queued_deployment,
             changed=lambda w, t: Deployment.objects.get(pk=w[t + "_queued"].pk).conclusion),
    Endpoint("deployments.rollback", "post", lambda w, t: f"/api/v1/deployments/{deployment_of(w, t).pk}/rollback/",
             scopes.DEPLOY_READ, [scopes.DEPLOY_ROLLBACK], ok=201,
             changed=lambda w, t: Deployment.objects.filter(trigger=Deployment.TRIGGER_ROLLBACK).count()),
    # audit
    Endpoint("audit.list", "get", lambda w, t: "/api/v1/audit/", scopes.MEMBERS_MANAGE, object_level=False),
]


def _fingerprint() -> str:
    from services.hostkeys import fingerprint
    from tests.api.conftest import HOST_KEY

    return fingerprint(HOST_KEY)


def held_scopes(role: str, mode: str, endpoint: Endpoint) -> frozenset:
    held = scopes.ROLE_SCOPES[role]
    if mode == "narrow":
        held = held - {endpoint.narrowed_scope}
    return held


def expected_status(endpoint: Endpoint, role: str, mode: str, target: str) -> int:
    held = held_scopes(role, mode, endpoint)
    unrestricted = role in scopes.UNRESTRICTED_ROLES
    if endpoint.base_scope not in held:
        return 403
    if endpoint.object_level and target == "other" and not unrestricted:
        return 404
    if any(scope not in held for scope in endpoint.needed):
        return 403
    if endpoint.unrestricted_only and not unrestricted:
        return 403
    return endpoint.ok


def cases():
    for endpoint in ENDPOINTS:
        targets = TARGETS if endpoint.object_level else ["granted"]
        for role in ROLES:
            for mode in MODES:
                for target in targets:
                    yield pytest.param(endpoint, role, mode, target, id=f"{endpoint.name}-{role}-{mode}-{target}")


@pytest.fixture
def fake_host_key_scan(monkeypatch):
    from tests.api.conftest import HOST_KEY

    monkeypatch.setattr("services.hostkeys.scan_host_key", lambda host, port: HOST_KEY)


def _send(client, endpoint: Endpoint, world, target: str):
    body = endpoint.body(world, target) if endpoint.body else None
    return getattr(client, endpoint.method)(endpoint.path(world, target), body, format="json")


@pytest.mark.parametrize("endpoint,role,mode,target", list(cases()))
def test_api_permission(full_world, fake_host_key_scan, endpoint, role, mode, target):
    user = make_user(f"{role}-user", role)
    if role not in scopes.UNRESTRICTED_ROLES:
        grant(user, full_world["granted_project"], *scopes.OBJECT_SCOPES)
    if mode == "session":
        client = client_for(user)
    else:
        client = client_for(token=make_token(user, held_scopes(role, mode, endpoint)))
    if endpoint.prepare:
        endpoint.prepare(full_world, target)
    before = endpoint.changed(full_world, target) if endpoint.changed else None

    response = _send(client, endpoint, full_world, target)

    expected = expected_status(endpoint, role, mode, target)
    assert response.status_code == expected, response.content
    if expected >= 400:
        body = response.json()
        assert body["ok"] is False
        assert body["code"] == {403: "SCOPE_DENIED", 404: "NOT_FOUND"}[expected]
    if expected == 403:
        assert body["required_scopes"]
        assert isinstance(body["granted_scopes"], list)
    if expected == 403 and not endpoint.unrestricted_only:
        assert set(body["required_scopes"]).isdisjoint(body["granted_scopes"])
    if endpoint.changed:
        after = endpoint.changed(full_world, target)
        assert (after != before) == (expected < 400)


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[e.name for e in ENDPOINTS])
def test_api_without_credentials(full_world, endpoint):
    if endpoint.prepare:
        endpoint.prepare(full_world, "granted")
    before = endpoint.changed(full_world, "granted") if endpoint.changed else None

    response = _send(client_for(), endpoint, full_world, "granted")

    assert response.status_code == 401
    assert response.json()["code"] == "UNAUTHENTICATED"
    if endpoint.changed:
        assert endpoint.changed(full_world, "granted") == before


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[e.name for e in ENDPOINTS])
def test_api_with_revoked_token(full_world, endpoint):
    from django.utils import timezone

    from accounts.models import APIToken

    if endpoint.prepare:
        endpoint.prepare(full_world, "granted")
    user = make_user("owner-user", scopes.OWNER)
    raw = make_token(user, scopes.ALL_SCOPES)
    APIToken.objects.update(revoked_at=timezone.now())

    response = _send(client_for(token=raw), endpoint, full_world, "granted")

    assert response.status_code == 401
    assert response.json()["code"] == "UNAUTHENTICATED"


LIST_ENDPOINTS = {
    "services.list": ("name", {"granted": "web", "other": "db"}),
    "deployments.list": ("service", {"granted": "web", "other": "db"}),
    "projects.list": ("name", {"granted": "granted", "other": "other"}),
}


@pytest.mark.parametrize("endpoint_name", sorted(LIST_ENDPOINTS))
@pytest.mark.parametrize("role", ROLES)
def test_api_list_shows_only_permitted(full_world, endpoint_name, role):
    endpoint = next(e for e in ENDPOINTS if e.name == endpoint_name)
    field_name, names = LIST_ENDPOINTS[endpoint_name]
    user = make_user(f"{role}-user", role)
    if role not in scopes.UNRESTRICTED_ROLES:
        grant(user, full_world["granted_project"], *scopes.OBJECT_SCOPES)

    listed = {row[field_name] for row in _send(client_for(user), endpoint, full_world, "granted").json()["results"]}

    assert names["granted"] in listed
    assert (names["other"] in listed) == (role in scopes.UNRESTRICTED_ROLES)


def test_api_service_grant_covers_only_that_service(full_world):
    from services.models import Service
    from tests.api.conftest import make_service

    sibling = make_service(full_world["granted_project"], "sibling")
    user = make_user("dev", scopes.DEVELOPER)
    grant(user, full_world["granted"], scopes.SERVICE_READ, scopes.DEPLOY_READ)
    client = client_for(user)

    listed = {row["name"] for row in client.get("/api/v1/services/").json()["results"]}

    assert listed == {"web"}
    assert client.get(f"/api/v1/services/{sibling.pk}/").status_code == 404
    assert client.get(f"/api/v1/services/{full_world['granted'].pk}/").status_code == 200
    assert Service.objects.count() == 3


def test_api_denied_write_is_audited(full_world):
    user = make_user("viewer-user", scopes.VIEWER)
    grant(user, full_world["granted_project"], *scopes.OBJECT_SCOPES)

    response = client_for(user).patch(f"/api/v1/services/{full_world['granted'].pk}/", {"image": "evil:1"},
                                      format="json")

    assert response.status_code == 403
    entry = AuditEntry.objects.get(outcome=AuditEntry.OUTCOME_DENIED)
    assert entry.action == "service.update"
    assert entry.scope == scopes.SERVICE_UPDATE
    assert entry.actor_label == "viewer-user"
    assert entry.target_id == str(full_world["granted"].pk)
