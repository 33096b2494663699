"""Faults on the real engine: a killed worker, a restarted broker, concurrent requests, lost SSH and Docker.

Every daemon a test stops is one it started itself (tests/e2e/private_daemons.py):
the shared sshd, dockerd and Redis of the test bed keep running.
"""

import os
import signal
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from accounts.principal import SYSTEM
from deployments import tasks
from deployments.actions import deploy
from deployments.models import Deployment
from services import actions
from services.config import ServiceInput
from services.hostkeys import fingerprint
from services.models import Server

from .conftest import WorkerProcess, _database_url, purge_broker, wait_for_deployment, worker_environment
from .private_daemons import PrivateRedis, PrivateSshd, free_port

pytestmark = pytest.mark.e2e

# Healthy 6 seconds after the container starts: `up --wait` blocks that long.
SLOW_START = """\
services:
  web:
    image: {image}
    command: ["sh", "-c", "sleep 6; mkdir -p /tmp; touch /tmp/ready; exec httpd -f -p 8080 -h /www"]
    healthcheck:
      test: ["CMD", "test", "-f", "/tmp/ready"]
      interval: 1s
      timeout: 2s
      retries: 120
"""

# Never healthy: `up --wait` blocks until its wait timeout.
NEVER_HEALTHY = """\
services:
  web:
    image: {image}
    healthcheck:
      test: ["CMD", "false"]
      interval: 1s
      timeout: 2s
      retries: 1000
"""


def use_broker(url: str | None) -> None:
    """Point the test process's Celery app at `url`, dropping connections to the previous broker."""
    from django.conf import settings

    from daoflow.celery import app

    # Both: the app reads its configuration lazily from the Django settings.
    settings.CELERY_BROKER_URL = url
    app.conf.broker_url = url
    app.amqp._producer_pool = None
    app._pool = None


@pytest.fixture
def start_worker(transactional_db, redis_url, e2e_root, monkeypatch, tmp_path, settings):
    """Start Celery workers with chosen settings; all are stopped, by PID, after the test.

    Their logs are in the test's tmp_path, which pytest keeps for the last runs.
    """
    # The autouse fixture of tests/conftest.py replaced `delay` with a recorder;
    # these tests send real tasks.
    monkeypatch.setattr(tasks.run_deployment, "delay",
                        lambda *args, **kwargs: tasks.run_deployment.apply_async(args, kwargs))
    started: list[WorkerProcess] = []

    def start(broker_url: str = redis_url, concurrency: int = 2, **overrides) -> WorkerProcess:
        use_broker(broker_url)
        env = worker_environment(e2e_root, _database_url(), broker_url)
        env.update(overrides)
        if not started:
            purge_broker(env)
        worker = WorkerProcess(env, tmp_path / f"worker-{len(started)}.log", concurrency=concurrency)
        worker.start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
    use_broker(None)


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:6]}"


def make_service(server: Server, compose_projects: list, **fields):
    project = actions.create_project(SYSTEM, unique("f"), "production", server)
    service = actions.create_service(SYSTEM, project, project.environments.get(), ServiceInput(name="web", **fields))
    compose_projects.append(service.compose_project)
    return service


def wait_for_step(deployment_id: int, step: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        deployment = Deployment.objects.get(pk=deployment_id)
        if deployment.steps.filter(name=step, status="running").exists():
            return
        if deployment.is_finished:
            raise AssertionError(f"deployment {deployment_id} ended before step {step}: {deployment.failure_reason}")
        time.sleep(0.2)
    raise AssertionError(f"deployment {deployment_id} did not reach step {step} within {seconds} s")


def processes_with(marker: str) -> list[tuple[int, str]]:
    """(pid, program) of processes other than ssh clients whose command line contains `marker`; inspect only."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        program = os.path.basename(argv[0].decode(errors="replace"))
        if program != "ssh" and any(marker.encode() in part for part in argv):
            found.append((int(entry.name), program))
    return found


def ssh_server_at(sshd: PrivateSshd, name: str, ssh_target) -> Server:
    server = actions.add_server(SYSTEM, name=name, host=sshd.host, port=sshd.port, user="root",
                                private_key=Path(ssh_target.key_path).read_text())
    return actions.approve_host_key(SYSTEM, server, fingerprint(server.scanned_host_key))


# -- worker and broker failures ----------------------------------------------------


def test_killed_worker_then_next_deploy(start_worker, ssh_server, images, compose_projects, settings):
    worker = start_worker()
    service = make_service(ssh_server, compose_projects, source_type="compose",
                           compose_document=SLOW_START.format(image=images["web_v1"]))
    first, _ = deploy(SYSTEM, service)
    wait_for_step(first.pk, "start")

    worker.stop(signal.SIGKILL)
    settings.DAOFLOW_HEARTBEAT_TIMEOUT = 3
    killed_at = time.monotonic()
    while time.monotonic() - killed_at < 30 and tasks.watchdog()["failed"] == 0:
        time.sleep(0.5)
    failed = Deployment.objects.get(pk=first.pk)

    assert failed.conclusion == "failed"
    assert failed.failed_step == "start"
    assert failed.failure_reason == "worker stopped reporting progress"
    assert time.monotonic() - killed_at < 30

    start_worker()
    second = wait_for_deployment(deploy(SYSTEM, service)[0].pk, timeout=120)
    assert second.conclusion == "succeeded", second.failure_reason


def test_redis_restart_keeps_queued(start_worker, ssh_server, images, compose_projects,
                                                  settings, tmp_path):
    redis = PrivateRedis(tmp_path / "redis")
    redis.start()
    try:
        start_worker(broker_url=redis.url, concurrency=1)
        slow = make_service(ssh_server, compose_projects, source_type="compose",
                            compose_document=SLOW_START.format(image=images["web_v1"]))
        waiting = [make_service(ssh_server, compose_projects, source_type="image", image=images["web_v1"])
                   for _ in range(2)]
        running, _ = deploy(SYSTEM, slow)
        wait_for_step(running.pk, "start")
        queued = [deploy(SYSTEM, service)[0] for service in waiting]

        # The restarted server has no persistence: the queued tasks are gone.
        redis.stop()
        during_outage, _ = deploy(SYSTEM, waiting[0])
        redis.start()
        settings.DAOFLOW_REQUEUE_AFTER = 1
        time.sleep(1.5)
        deadline = time.monotonic() + 120
        ids = [running.pk, *(d.pk for d in queued), during_outage.pk]
        while time.monotonic() < deadline:
            if all(Deployment.objects.get(pk=pk).is_finished for pk in ids):
                break
            tasks.watchdog()
            time.sleep(2)

        outcomes = {pk: Deployment.objects.get(pk=pk) for pk in ids}
        for pk, deployment in outcomes.items():
            assert deployment.conclusion == "succeeded", (pk, deployment.outcome, deployment.failure_reason)
    finally:
        redis.stop()


def test_task_sent_twice_runs_once(start_worker, ssh_server, images, compose_projects):
    start_worker(concurrency=2)
    service = make_service(ssh_server, compose_projects, source_type="image", image=images["web_v1"])
    deployment, _ = deploy(SYSTEM, service)
    tasks.run_deployment.delay(deployment.pk)
    tasks.run_deployment.delay(deployment.pk)

    finished = wait_for_deployment(deployment.pk, timeout=120)
    time.sleep(2)

    assert finished.conclusion == "succeeded", finished.failure_reason
    assert finished.steps.count() == 4
    assert finished.log_lines.filter(text__startswith="wrote ").count() == 3


def test_ten_simultaneous_requests_never_overlap(start_worker, ssh_server, images, compose_projects):
    start_worker(concurrency=2)
    service = make_service(ssh_server, compose_projects, source_type="image", image=images["web_v1"])
    created: list[int] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(10)

    def request() -> None:
        try:
            barrier.wait(timeout=30)
            created.append(deploy(SYSTEM, service)[0].pk)
        except BaseException as error:  # reported by the assertion below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=request) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert len(created) == 10
    finished = [wait_for_deployment(pk, timeout=240) for pk in sorted(created)]
    assert [d.conclusion for d in finished] == ["succeeded"] * 10
    spans = sorted(
        (min(s.started_at for s in d.steps.all()), max(s.finished_at for s in d.steps.all()), d.pk)
        for d in finished
    )
    for (_, end, earlier), (start, _, later) in zip(spans, spans[1:]):
        assert end <= start, f"deployments {earlier} and {later} ran at the same time"


# -- cancellation ------------------------------------------------------------------


def test_cancel_stops_remote_command(celery_worker, ssh_server, images, compose_projects):
    service = make_service(ssh_server, compose_projects, source_type="compose",
                           compose_document=NEVER_HEALTHY.format(image=images["web_v1"]))
    marker = service.compose_project
    deployment, _ = deploy(SYSTEM, service)
    wait_for_step(deployment.pk, "start")
    time.sleep(2)
    before = processes_with(marker)

    # Sets the field that the cancel action sets for a running deployment.
    Deployment.objects.filter(pk=deployment.pk).update(cancel_requested_at=timezone.now(), cancelled_by="test")
    finished = wait_for_deployment(deployment.pk, timeout=30)
    deadline = time.monotonic() + 10
    while processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.5)

    assert any(program.startswith("docker") for _, program in before), before
    assert finished.conclusion == "cancelled"
    assert finished.steps.get(name="start").status == "cancelled"
    assert processes_with(marker) == []


# -- target failures ---------------------------------------------------------------


def test_sshd_stopped_mid_deploy(start_worker, ssh_target, images, compose_projects, tmp_path):
    sshd = PrivateSshd(tmp_path / "sshd", ssh_target.key_path)
    sshd.start()
    try:
        start_worker()
        server = ssh_server_at(sshd, unique("gone"), ssh_target)
        service = make_service(server, compose_projects, source_type="compose",
                               compose_document=NEVER_HEALTHY.format(image=images["web_v1"]))
        deployment, _ = deploy(SYSTEM, service)
        wait_for_step(deployment.pk, "start")

        sshd.stop()
        stopped_at = time.monotonic()
        finished = wait_for_deployment(deployment.pk, timeout=60)
        elapsed = time.monotonic() - stopped_at
    finally:
        sshd.stop()

    assert finished.conclusion == "failed"
    assert finished.failed_step == "start"
    assert f"{sshd.host}:{sshd.port}" in finished.failure_reason or "SSH" in finished.failure_reason
    assert elapsed < 30


def test_dockerd_unreachable_on_target(start_worker, ssh_target, images, compose_projects, tmp_path):
    sshd = PrivateSshd(tmp_path / "sshd", ssh_target.key_path,
                       extra_config="SetEnv DOCKER_HOST=unix:///nonexistent.sock")
    sshd.start()
    try:
        start_worker()
        server = ssh_server_at(sshd, unique("nodocker"), ssh_target)
        service = make_service(server, compose_projects, source_type="image", image=images["web_v1"])
        started = time.monotonic()
        finished = wait_for_deployment(deploy(SYSTEM, service)[0].pk, timeout=60)
        elapsed = time.monotonic() - started
    finally:
        sshd.stop()

    assert finished.conclusion == "failed"
    assert finished.failed_step in ("resolve", "pull")
    assert "Cannot connect to the Docker daemon at unix:///nonexistent.sock" in finished.failure_reason
    assert elapsed < 30


@pytest.mark.parametrize("listener", ["refused", "silent"])
def test_unreachable_host_fails_fast(start_worker, ssh_target, images, listener):
    start_worker(DAOFLOW_SSH_CONNECT_TIMEOUT="3")
    port = free_port()
    silent = None
    if listener == "silent":
        # Accepts TCP connections and never sends the SSH banner.
        silent = socket.socket()
        silent.bind(("127.0.0.1", port))
        silent.listen(16)
    try:
        host_key = " ".join(ssh_target.host_public_key_line.split()[:2])
        server = Server.objects.create(name=unique("down"), kind=Server.KIND_SSH, host="127.0.0.1", port=port,
                                       user="root", private_key=Path(ssh_target.key_path).read_text(),
                                       scanned_host_key=host_key, approved_host_key=host_key,
                                       approved_at=timezone.now())
        service = make_service(server, [], source_type="image", image=images["web_v1"])
        started = time.monotonic()
        finished = wait_for_deployment(deploy(SYSTEM, service)[0].pk, timeout=60)
        elapsed = time.monotonic() - started
    finally:
        if silent is not None:
            silent.close()

    assert finished.conclusion == "failed"
    assert finished.failed_step == "resolve"
    expected = "refused the SSH connection" if listener == "refused" else "did not answer within 3 seconds"
    assert expected in finished.failure_reason
    assert elapsed < 20


def test_disk_full_on_target(celery_worker, ssh_server, images, compose_projects, tmp_path):
    mount = tmp_path / "full"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], check=True, timeout=30)
    try:
        subprocess.run(["dd", "if=/dev/zero", f"of={mount / 'filler'}", "bs=4k"], capture_output=True, timeout=30)
        ssh_server.workdir_root = str(mount)
        ssh_server.save()
        service = make_service(ssh_server, compose_projects, source_type="image", image=images["web_v1"])
        finished = wait_for_deployment(deploy(SYSTEM, service)[0].pk, timeout=60)
    finally:
        subprocess.run(["umount", str(mount)], check=False, timeout=30)

    assert finished.conclusion == "failed"
    assert finished.failed_step == "resolve"
    assert "No space left on device" in finished.failure_reason
    assert "Could not write" in finished.failure_reason


# -- remote commands over SSH ------------------------------------------------------


def unique_sleep() -> str:
    """A `sleep` argument no other process uses, so the remote sleep can be found by it."""
    return f"{300 + uuid.uuid4().int % 1000}.{uuid.uuid4().int % 10**9:09d}"


def remote_sleeps(seconds: str) -> list[tuple[int, str]]:
    return [(pid, program) for pid, program in processes_with(seconds) if program == "sleep"]


def test_ssh_cancel_stops_remote_command(ssh_server, tmp_path):
    from deployments.transports import CommandCancelled, SSHTransport

    seconds = unique_sleep()
    transport = SSHTransport(ssh_server, pid_dir=str(tmp_path / "pids"))
    seen: list = []

    def cancel_once_running() -> bool:
        seen.extend(remote_sleeps(seconds))
        return bool(seen)

    started = time.monotonic()
    with pytest.raises(CommandCancelled):
        transport.run(["sleep", seconds], timeout=60, should_cancel=cancel_once_running)
    deadline = time.monotonic() + 10
    while remote_sleeps(seconds) and time.monotonic() < deadline:
        time.sleep(0.2)

    assert seen
    assert remote_sleeps(seconds) == []
    assert time.monotonic() - started < 20
    assert list((tmp_path / "pids").glob("*.pid")) == []


def test_ssh_leftover_command_stopped(ssh_server, tmp_path):
    from deployments.transports import SSHTransport, TransportError

    seconds = unique_sleep()
    pid_dir = str(tmp_path / "pids")
    outcome: list = []

    def run_until_client_dies() -> None:
        try:
            outcome.append(SSHTransport(ssh_server, pid_dir=pid_dir).run(["sleep", seconds], timeout=60))
        except TransportError as error:
            outcome.append(error)

    thread = threading.Thread(target=run_until_client_dies)
    thread.start()
    deadline = time.monotonic() + 20
    while not remote_sleeps(seconds) and time.monotonic() < deadline:
        time.sleep(0.2)
    # The worker dies: only its local ssh client goes away, as with SIGKILL.
    clients = [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()
               and seconds.encode() in (entry / "cmdline").read_bytes()
               and (entry / "cmdline").read_bytes().startswith(b"ssh\0")]
    for pid in clients:
        os.kill(pid, signal.SIGKILL)
    thread.join(timeout=30)
    time.sleep(1)
    survivors = remote_sleeps(seconds)

    stopped = SSHTransport(ssh_server, pid_dir=pid_dir).stop_leftover_commands()

    assert clients
    assert survivors, "the remote command should outlive its ssh client"
    assert len(stopped) == 1
    assert stopped[0].startswith("stopped session ")
    assert remote_sleeps(seconds) == []
