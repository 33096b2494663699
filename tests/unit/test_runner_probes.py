"""Health probes: the probe module against local listeners, validation, and the `daoflow probe` command."""

import http.server
import json
import socket
import threading
from io import StringIO

import pytest
from django.core.management import call_command

from accounts.principal import SYSTEM
from daoflow.errors import InvalidInput
from deployments import health
from deployments.freeze import freeze
from deployments.models import HealthProbe
from deployments.probes import ProbeInput, validate_probe
from services import actions
from services.config import ServiceInput
from services.models import Server


class CountingHandler(http.server.BaseHTTPRequestHandler):
    """Returns status 503 to the first `failures` requests, then 200."""

    failures = 2
    seen = 0

    def do_GET(self):
        type(self).seen += 1
        self.send_response(503 if type(self).seen <= type(self).failures else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def http_listener():
    CountingHandler.seen = 0
    server = http.server.HTTPServer(("127.0.0.1", 0), CountingHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def probe(**fields) -> dict:
    base = {"kind": "http", "port": 1, "path": "/", "expected_status": 200, "timeout_seconds": 5,
            "interval_seconds": 0.2}
    return {**base, **fields}


def test_http_probe_retries_until_status(http_listener):
    waits = []

    attempts = health.wait_until_passing(probe(port=http_listener), "127.0.0.1", seconds=5,
                                         on_wait=lambda: waits.append(1), on_attempt=lambda error: None)

    assert attempts == 3
    assert waits


def test_http_probe_reports_last_status(http_listener):
    CountingHandler.failures = 1000
    try:
        with pytest.raises(health.ProbeFailed) as failed:
            health.wait_until_passing(probe(port=http_listener), "127.0.0.1", seconds=1,
                                      on_wait=lambda: None, on_attempt=lambda error: None)
    finally:
        CountingHandler.failures = 2

    assert failed.value.reason.startswith(f"HTTP probe of port {http_listener} path / on 127.0.0.1 did not pass")
    assert failed.value.reason.endswith("last attempt: status 503, expected 200.")


def test_tcp_probe():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]

        assert health.attempt(probe(kind="tcp", port=port), "127.0.0.1", 1) == ""
    assert health.attempt(probe(kind="tcp", port=port), "127.0.0.1", 1) == "connection refused"


def test_probe_host_is_target_host():
    assert health.probe_host({"server": {"kind": "local", "host": ""}}) == "127.0.0.1"
    assert health.probe_host({"server": {"kind": "ssh", "host": "10.1.2.3"}}) == "10.1.2.3"


@pytest.mark.parametrize("fields, flag", [
    ({"path": "http://169.254.169.254/"}, "--path"),
    ({"path": "//other.example/"}, "--path"),
    ({"path": "/a b"}, "--path"),
    ({"path": "/x\r\nHost: other"}, "--path"),
    ({"port": 0}, "--port"),
    ({"port": 70000}, "--port"),
    ({"kind": "udp"}, "--kind"),
    ({"expected_status": 42}, "--expected-status"),
    ({"timeout_seconds": 0}, "--timeout"),
    ({"interval_seconds": 0.01}, "--interval"),
])
def test_invalid_probe_rejected(fields, flag):
    with pytest.raises(InvalidInput) as rejected:
        validate_probe(ProbeInput(**{"port": 8080, **fields}))

    assert rejected.value.message.startswith(flag)


def call(*args) -> dict:
    out = StringIO()
    try:
        call_command("probe", *args, "--json", stdout=out)
    except SystemExit:
        pass
    return json.loads(out.getvalue())


def test_probe_command_set_list_remove(db):
    server = Server.objects.get(name="local")
    project = actions.create_project(SYSTEM, "probes", "production", server)
    service = actions.create_service(SYSTEM, project, project.environments.get(),
                                     ServiceInput(name="web", source_type="image", image="nginx:1.27"))

    created = call("set", "--service", "web", "--port", "8080", "--path", "/healthz", "--timeout", "30", "--yes")
    updated = call("set", "--service", "web", "--port", "8080", "--kind", "tcp", "--yes")
    listed = call("list", "--service", "web")
    frozen = freeze(service, server)
    removed = call("remove", "--service", "web", "--port", "8080", "--yes")
    missing = call("remove", "--service", "web", "--port", "8080", "--yes")
    invalid = call("set", "--service", "web", "--port", "8080", "--path", "http://x/", "--yes")

    assert created["data"]["created"] is True
    assert created["data"]["probe"]["path"] == "/healthz"
    assert updated["data"]["created"] is False
    assert [p["kind"] for p in listed["data"]["probes"]] == ["tcp"]
    assert frozen["probes"] == [{"kind": "tcp", "port": 8080, "path": "/", "expected_status": 200,
                                 "timeout_seconds": 60, "interval_seconds": 1.0}]
    assert removed["ok"] is True
    assert missing["code"] == "NOT_FOUND"
    assert invalid["code"] == "INVALID_INPUT"
    assert not HealthProbe.objects.exists()
