"""Ports and volumes arrive in the container exactly as configured, checked with `docker inspect`."""

import json
import socket
import subprocess
import uuid

import pytest

from accounts.principal import SYSTEM
from deployments.actions import deploy
from services import actions
from services.config import ServiceInput

from .conftest import container_of, free_port, http_get, wait_for_deployment

pytestmark = pytest.mark.e2e


def free_port_pair() -> int:
    """A port p such that p and p + 1 are both free on 127.0.0.1."""
    for _ in range(50):
        first = free_port()
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", first + 1))
            except OSError:
                continue
        return first
    raise AssertionError("no two consecutive free ports on 127.0.0.1")


def inspect(container: str) -> dict:
    completed = subprocess.run(["docker", "inspect", container], capture_output=True, timeout=30, check=True)
    return json.loads(completed.stdout)[0]


def test_ports_and_volumes_arrive(celery_worker, ssh_server, images, port, compose_projects, tmp_path):
    udp_port = free_port()
    range_start = free_port_pair()
    config_dir = tmp_path / "conf"
    config_dir.mkdir()
    (config_dir / "app.conf").write_text("setting=1\n")
    created_dir = tmp_path / "created-by-compose"
    project = actions.create_project(SYSTEM, f"cfgports-{uuid.uuid4().hex[:6]}", "production", ssh_server)
    service = actions.create_service(SYSTEM, project, project.environments.get(), ServiceInput(
        name="web", source_type="image", image=images["web_v1"],
        add_ports=[f"127.0.0.1:{port}:8080", f"127.0.0.1:{udp_port}:9999/udp",
                   f"127.0.0.1:{range_start}-{range_start + 1}:7000-7001"],
        add_volumes=[f"{config_dir}:/conf:ro", "data:/data", f"{created_dir}:/created"],
    ))
    compose_projects.append(service.compose_project)

    finished = wait_for_deployment(deploy(SYSTEM, service)[0].pk)

    assert finished.conclusion == "succeeded", finished.failure_reason
    container = container_of(service.compose_project, "web")
    details = inspect(container)
    bindings = details["HostConfig"]["PortBindings"]
    assert bindings["8080/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": str(port)}]
    assert bindings["9999/udp"] == [{"HostIp": "127.0.0.1", "HostPort": str(udp_port)}]
    assert bindings["7000/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": str(range_start)}]
    assert bindings["7001/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": str(range_start + 1)}]
    assert "9999/tcp" not in bindings

    mounts = {mount["Destination"]: mount for mount in details["Mounts"]}
    assert mounts["/conf"]["Type"] == "bind"
    assert mounts["/conf"]["Source"] == str(config_dir)
    assert mounts["/conf"]["RW"] is False
    assert mounts["/data"]["Type"] == "volume"
    assert mounts["/data"]["Name"] == f"{service.compose_project}_data"
    assert mounts["/data"]["RW"] is True
    assert mounts["/created"]["RW"] is True
    assert created_dir.is_dir()

    assert http_get(port).strip() == "web v1"
    read = subprocess.run(["docker", "exec", container, "cat", "/conf/app.conf"], capture_output=True, timeout=30)
    assert read.stdout == b"setting=1\n"
    write = subprocess.run(["docker", "exec", container, "touch", "/conf/new"], capture_output=True, timeout=30)
    assert write.returncode != 0
    assert b"Read-only file system" in write.stderr
    written = subprocess.run(["docker", "exec", container, "touch", "/data/new"], capture_output=True, timeout=30)
    assert written.returncode == 0
