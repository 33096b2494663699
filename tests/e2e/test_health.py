"""The health step on the real engine: container states after `up --wait`, and HTTP and TCP probes."""

import uuid

import pytest

from accounts.principal import SYSTEM
from deployments.actions import deploy
from deployments.probes import ProbeInput, set_probe
from services import actions
from services.config import ServiceInput

from .conftest import http_get, wait_for_deployment

pytestmark = pytest.mark.e2e


def make_service(server, compose_projects, document: str, ports: list[str] = ()):
    project = actions.create_project(SYSTEM, f"h{uuid.uuid4().hex[:6]}", "production", server)
    service = actions.create_service(SYSTEM, project, project.environments.get(), ServiceInput(
        name="app", source_type="compose", compose_document=document, add_ports=list(ports),
    ))
    compose_projects.append(service.compose_project)
    return service


def container(service, name: str) -> str:
    return f"{service.compose_project}-{name}-1"


def test_unhealthy_container_fails_with_name(celery_worker, ssh_server, images, compose_projects):
    document = (
        "services:\n  app:\n"
        f"    image: {images['web_v1']}\n"
        "    healthcheck:\n      test: [\"CMD\", \"false\"]\n      interval: 1s\n      retries: 1\n"
    )
    service = make_service(ssh_server, compose_projects, document)

    finished = wait_for_deployment(deploy(SYSTEM, service)[0].pk, timeout=90)

    assert finished.conclusion == "failed"
    assert finished.failed_step in ("start", "health")
    assert container(service, "app") in finished.failure_reason
    assert "unhealthy" in finished.failure_reason


def test_exit_code_named_in_failure(celery_worker, ssh_server, images, compose_projects):
    document = (
        "services:\n"
        f"  app:\n    image: {images['web_v1']}\n"
        f"  job:\n    image: {images['busybox']}\n    command: [\"sh\", \"-c\", \"exit 7\"]\n"
    )
    service = make_service(ssh_server, compose_projects, document)

    finished = wait_for_deployment(deploy(SYSTEM, service)[0].pk, timeout=90)

    assert finished.conclusion == "failed"
    assert container(service, "job") in finished.failure_reason
    assert "7" in finished.failure_reason


def test_restarting_container_fails(celery_worker, ssh_server, images, compose_projects):
    document = (
        "services:\n"
        f"  app:\n    image: {images['busybox']}\n    restart: always\n"
        "    command: [\"sh\", \"-c\", \"exit 3\"]\n"
    )
    service = make_service(ssh_server, compose_projects, document)

    finished = wait_for_deployment(deploy(SYSTEM, service)[0].pk, timeout=90)

    assert finished.conclusion == "failed"
    assert container(service, "app") in finished.failure_reason
    assert "3" in finished.failure_reason


def test_one_off_job_exiting_zero_succeeds(celery_worker, ssh_server, images, compose_projects, port):
    document = (
        "services:\n"
        f"  app:\n    image: {images['web_v1']}\n"
        f"  migrate:\n    image: {images['busybox']}\n    command: [\"sh\", \"-c\", \"echo migrated\"]\n"
    )
    service = make_service(ssh_server, compose_projects, document, [f"127.0.0.1:{port}:8080"])

    finished = wait_for_deployment(deploy(SYSTEM, service)[0].pk, timeout=90)

    assert finished.conclusion == "succeeded", finished.failure_reason
    assert f"{container(service, 'migrate')}: exited" in finished.steps.get(name="health").detail
    assert http_get(port).strip() == "web v1"


# Running at once, listening on 8080 only after 4 seconds.
LATE_LISTENER = (
    "services:\n  app:\n"
    "    image: {image}\n"
    "    command: [\"sh\", \"-c\", \"sleep 4; exec httpd -f -p 8080 -h /www\"]\n"
)


def test_http_probe_waits_for_listener(celery_worker, ssh_server, images, compose_projects, port):
    service = make_service(ssh_server, compose_projects, LATE_LISTENER.format(image=images["web_v1"]),
                           [f"127.0.0.1:{port}:8080"])
    set_probe(SYSTEM, service, ProbeInput(kind="http", port=port, path="/index.html", timeout_seconds=30,
                                          interval_seconds=0.5))

    finished = wait_for_deployment(deploy(SYSTEM, service)[0].pk, timeout=90)

    assert finished.conclusion == "succeeded", finished.failure_reason
    health = finished.steps.get(name="health")
    assert health.duration_seconds >= 1.5
    assert f"HTTP probe of port {port} path /index.html passed" in health.detail
    lines = list(finished.log_lines.filter(step=health).values_list("text", flat=True))
    assert any(word in line for line in lines for word in ("refused", "reset", "closed")), lines
    assert http_get(port).strip() == "web v1"


def test_http_probe_wrong_status_fails(celery_worker, ssh_server, images, compose_projects, port):
    service = make_service(ssh_server, compose_projects, f"services:\n  app:\n    image: {images['web_v1']}\n",
                           [f"127.0.0.1:{port}:8080"])
    set_probe(SYSTEM, service, ProbeInput(kind="http", port=port, path="/missing", timeout_seconds=3,
                                          interval_seconds=0.5))

    finished = wait_for_deployment(deploy(SYSTEM, service)[0].pk, timeout=90)

    assert finished.conclusion == "failed"
    assert finished.failed_step == "health"
    assert f"HTTP probe of port {port} path /missing on 127.0.0.1 did not pass within 3 seconds" \
        in finished.failure_reason
    assert "status 404, expected 200" in finished.failure_reason


def test_tcp_probe_on_closed_port_fails(celery_worker, ssh_server, images, compose_projects, port):
    service = make_service(ssh_server, compose_projects, f"services:\n  app:\n    image: {images['web_v1']}\n")
    set_probe(SYSTEM, service, ProbeInput(kind="tcp", port=port, timeout_seconds=2, interval_seconds=0.5))

    finished = wait_for_deployment(deploy(SYSTEM, service)[0].pk, timeout=90)

    assert finished.conclusion == "failed"
    assert finished.failed_step == "health"
    assert f"TCP probe of port {port} on 127.0.0.1 did not pass within 2 seconds" in finished.failure_reason
    assert "connection refused" in finished.failure_reason
