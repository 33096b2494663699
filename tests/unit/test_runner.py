"""The runner against a recording fake transport: argument lists, masking, failure reasons and timeouts."""

import time
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.principal import SYSTEM
from deployments import runner, tasks
from deployments.actions import deploy
from deployments.models import Deployment, DeploymentLogLine
from deployments.recording import Recorder
from deployments.masking import Masker
from deployments.serializers import DeploymentSerializer
from deployments.transports import CommandCancelled, CommandResult, CommandTimedOut, Transport
from deployments.transports.base import run_process
from services import actions
from services.config import ServiceInput
from services.models import Server

SECRET = "hunter2-very-secret"


@dataclass
class Scripted:
    """What the fake returns for a command whose argv contains `match`."""

    match: str
    exit_code: int = 0
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    raises: Exception | None = None
    sleep: float = 0.0
    before: object = None


class RecordingTransport(Transport):
    """Records every argv and written file, and returns results from a script of (substring, result) entries."""

    def __init__(self, script: list[Scripted] | None = None):
        super().__init__()
        self.script = script or []
        self.commands: list[list[str]] = []
        self.files: dict[str, tuple[bytes, int]] = {}
        self.closed = False

    def run(self, argv, *, timeout, on_output=None, on_tick=None, stdin=None, should_cancel=None):
        self.commands.append(list(argv))
        joined = " ".join(argv)
        for entry in self.script:
            if entry.match in joined:
                if entry.before is not None:
                    entry.before()
                if entry.sleep:
                    time.sleep(entry.sleep)
                if should_cancel is not None and should_cancel():
                    raise CommandCancelled("The command was stopped because the deployment was cancelled.")
                if entry.raises is not None:
                    raise entry.raises
                for line in entry.stdout:
                    on_output("stdout", line)
                for line in entry.stderr:
                    on_output("stderr", line)
                return CommandResult(entry.exit_code, entry.stderr[-20:])
        if should_cancel is not None and should_cancel():
            raise CommandCancelled("The command was stopped because the deployment was cancelled.")
        if "ps" in argv and "--format" in argv:
            on_output("stdout", '{"Name": "web-1", "State": "running", "Health": "", "ExitCode": 0}')
        return CommandResult(0, [])

    def write_file(self, path, data, mode):
        self.files[path] = (data, mode)

    def close(self):
        self.closed = True

    def compose_verbs(self) -> list[str]:
        verbs = []
        for argv in self.commands:
            if argv[:2] == ["docker", "compose"]:
                rest = argv[argv.index("--file") + 1:] if "--file" in argv else argv[2:]
                verbs.append(next(a for a in rest if a in ("config", "build", "pull", "up", "ps")))
        return verbs


@pytest.fixture
def fake(monkeypatch):
    transport = RecordingTransport()
    monkeypatch.setattr(runner, "transport_for", lambda server, pid_dir=None: transport)
    return transport


@pytest.fixture
def local_server(db):
    return Server.objects.get(name="local")


def make_service(server, name="web", **fields):
    project = actions.create_project(SYSTEM, f"p{name}", "production", server)
    data = ServiceInput(name=name, **fields)
    return actions.create_service(SYSTEM, project, project.environments.get(), data)


def run(service) -> Deployment:
    deployment, _ = deploy(SYSTEM, service)
    assert runner.execute(deployment.pk, worker="unit") == "ran"
    return Deployment.objects.get(pk=deployment.pk)


def compose_prefix(deployment: Deployment) -> list[str]:
    frozen = deployment.input
    return ["docker", "compose", "--project-name", frozen["compose_project"], "--project-directory", frozen["workdir"]]


# -- argument lists per source type -------------------------------------------


def test_image_service_argv(fake, local_server):
    service = make_service(local_server, source_type="image", image="nginx:1.27", add_ports=["127.0.0.1:8080:80"])

    finished = run(service)

    assert finished.conclusion == "succeeded", finished.failure_reason
    workdir = finished.input["workdir"]
    files = [f"{workdir}/compose.yaml", f"{workdir}/daoflow.override.yaml", f"{workdir}/daoflow.env.yaml"]
    assert list(fake.files) == files
    assert fake.files[files[2]][1] == 0o600
    with_files = compose_prefix(finished) + [arg for path in files for arg in ("--file", path)]
    assert fake.commands == [
        with_files + ["config", "--quiet"],
        with_files + ["pull", "--policy", "missing", "--ignore-buildable"],
        with_files + ["up", "--detach", "--wait", "--wait-timeout", "120", "--remove-orphans", "--pull", "missing"],
        with_files + ["ps", "--all", "--format", "json"],
    ]
    assert fake.closed


def test_inline_compose_service_argv(fake, local_server):
    document = "services:\n  app:\n    image: nginx:1.27\n  worker:\n    image: busybox\n"
    fake.script = [Scripted("--services", stdout=["app", "worker"])]
    service = make_service(local_server, source_type="compose", compose_document=document)

    finished = run(service)

    assert finished.conclusion == "succeeded", finished.failure_reason
    assert fake.compose_verbs() == ["config", "pull", "up", "ps"]
    assert fake.commands[0][-2:] == ["config", "--quiet"]
    assert fake.files[f"{finished.input['workdir']}/compose.yaml"][0] == document.encode()
    assert b'"app"' in fake.files[f"{finished.input['workdir']}/daoflow.env.yaml"][0]
    assert b'"worker"' in fake.files[f"{finished.input['workdir']}/daoflow.env.yaml"][0]
    assert finished.steps.get(name="build").detail.startswith("nothing to build")


def test_inline_compose_with_include_lists_services(fake, local_server):
    document = "include:\n  - other.yaml\nservices:\n  app:\n    image: nginx:1.27\n"
    fake.script = [Scripted("--services", stdout=["app", "included"])]
    service = make_service(local_server, source_type="compose", compose_document=document)

    finished = run(service)

    assert finished.conclusion == "succeeded", finished.failure_reason
    assert fake.commands[0][-2:] == ["config", "--services"]
    assert b'"included"' in fake.files[f"{finished.input['workdir']}/daoflow.env.yaml"][0]


def test_compose_with_build_section_builds(fake, local_server):
    document = "services:\n  app:\n    build: ./app\n"
    fake.script = [Scripted("--services", stdout=["app"])]
    service = make_service(local_server, source_type="compose", compose_document=document)

    finished = run(service)

    assert finished.conclusion == "succeeded", finished.failure_reason
    assert fake.compose_verbs() == ["config", "build", "pull", "up", "ps"]


def test_dockerfile_service_argv(fake, local_server):
    fake.script = [Scripted("git clone", stdout=["0123abcd"])]
    service = make_service(local_server, source_type="dockerfile", repository_url="https://example.com/app.git",
                           branch="main", dockerfile_path="Dockerfile")

    finished = run(service)

    assert finished.conclusion == "succeeded", finished.failure_reason
    clone = fake.commands[0]
    assert clone[:4] == ["env", "GIT_TERMINAL_PROMPT=0", "sh", "-c"]
    assert clone[4] == runner.CLONE_SCRIPT
    assert clone[5:] == ["sh", f"{finished.input['workdir']}/src", "https://example.com/app.git", "main"]
    assert fake.compose_verbs() == ["config", "build", "up", "ps"]
    assert finished.steps.get(name="clone").detail == "commit 0123abcd"


# -- masking and failure reasons ------------------------------------------------


def test_secret_masked_in_lines_and_reason(fake, local_server):
    fake.script = [
        Scripted("--policy", stdout=[f"token is {SECRET}"]),
        Scripted(" up ", exit_code=1, stderr=[f"error: bad value {SECRET}"]),
    ]
    service = make_service(local_server, source_type="image", image="nginx:1.27",
                           set_env=[("API_TOKEN", SECRET, True)])

    finished = run(service)

    texts = list(DeploymentLogLine.objects.filter(deployment=finished).values_list("text", flat=True))
    assert "token is ********" in texts
    assert not [text for text in texts if SECRET in text]
    assert finished.failed_step == "start"
    assert SECRET not in finished.failure_reason
    assert "bad value ********" in finished.failure_reason


def test_pull_failure_names_step_and_error(fake, local_server):
    fake.script = [Scripted("--policy", exit_code=18, stderr=["Error response from daemon: manifest unknown"])]
    service = make_service(local_server, source_type="image", image="nginx:1.27")

    finished = run(service)

    assert finished.conclusion == "failed"
    assert finished.failed_step == "pull"
    assert finished.failure_reason.startswith("`docker compose pull` failed (exit code 18)")
    assert "manifest unknown" in finished.failure_reason
    statuses = dict(finished.steps.values_list("name", "status"))
    assert statuses == {"resolve": "succeeded", "pull": "failed", "start": "skipped", "health": "skipped"}


@pytest.mark.parametrize("container, expected", [
    ({"Name": "app-1", "State": "running", "Health": "unhealthy"}, "app-1 is unhealthy"),
    ({"Name": "app-1", "State": "exited", "ExitCode": 3}, "app-1 exited with code 3"),
    ({"Name": "app-1", "State": "restarting", "ExitCode": 137}, "app-1 is restarting (last exit code 137)"),
    ({"Name": "app-1", "State": "created"}, "app-1 is created"),
])
def test_container_problem_fails_health(fake, local_server, container, expected):
    import json

    fake.script = [Scripted("--format", stdout=[json.dumps(container)])]
    service = make_service(local_server, source_type="image", image="nginx:1.27")

    finished = run(service)

    assert finished.failed_step == "health"
    assert finished.failure_reason == f"Unhealthy containers: {expected}."


def test_one_off_job_exiting_zero_is_healthy(fake, local_server):
    fake.script = [Scripted("--format", stdout=[
        '{"Name": "migrate-1", "State": "exited", "ExitCode": 0}',
        '{"Name": "web-1", "State": "running", "Health": "healthy", "ExitCode": 0}',
    ])]
    service = make_service(local_server, source_type="image", image="nginx:1.27")

    finished = run(service)

    assert finished.conclusion == "succeeded", finished.failure_reason
    assert finished.steps.get(name="health").detail == "migrate-1: exited, web-1: running"


# -- timeouts -------------------------------------------------------------------


def test_command_timeout_names_step(fake, local_server):
    fake.script = [Scripted(" up ", raises=CommandTimedOut("The command did not finish within 720 seconds."))]
    service = make_service(local_server, source_type="image", image="nginx:1.27")

    finished = run(service)

    assert finished.failed_step == "start"
    assert finished.failure_reason == (
        "Step start timed out: `docker compose up` did not finish within 720 seconds and was stopped."
    )
    assert finished.steps.get(name="start").status == "failed"


def test_step_limit_cuts_command_timeout(fake, local_server, settings):
    settings.DAOFLOW_STEP_TIMEOUT = 7
    seen = []
    fake.run_original = fake.run

    def run_recording_timeout(argv, *, timeout, **kwargs):
        seen.append(timeout)
        return fake.run_original(argv, timeout=timeout, **kwargs)

    fake.run = run_recording_timeout
    service = make_service(local_server, source_type="image", image="nginx:1.27")

    finished = run(service)

    assert finished.conclusion == "succeeded", finished.failure_reason
    assert max(seen) <= 7 + settings.DAOFLOW_HEALTH_TIMEOUT
    assert all(limit > 0 for limit in seen)


def test_deadline_names_step(fake, local_server, settings):
    settings.DAOFLOW_DEPLOY_DEADLINE = 1
    fake.script = [Scripted("--policy", sleep=1.2)]
    service = make_service(local_server, source_type="image", image="nginx:1.27")

    finished = run(service)

    assert finished.conclusion == "failed"
    assert finished.failed_step == "start"
    assert finished.failure_reason.startswith(
        "The deployment exceeded its deadline of 1 seconds (DAOFLOW_DEPLOY_DEADLINE) in step start"
    )


# -- cancellation, idempotency, heartbeat ----------------------------------------


def test_cancel_during_command(fake, local_server, monkeypatch):
    monkeypatch.setattr("deployments.recording.CANCEL_CHECK_EVERY_SECONDS", 0)
    service = make_service(local_server, source_type="image", image="nginx:1.27")
    deployment, _ = deploy(SYSTEM, service)

    def request_cancel():
        Deployment.objects.filter(pk=deployment.pk).update(cancel_requested_at=timezone.now())

    fake.script = [Scripted("--policy", before=request_cancel)]
    runner.execute(deployment.pk, worker="unit")
    finished = Deployment.objects.get(pk=deployment.pk)

    assert finished.conclusion == "cancelled"
    assert finished.steps.get(name="pull").status == "cancelled"
    assert fake.compose_verbs() == ["config", "pull"]


def test_superseded_run_stops_and_writes_nothing(fake, local_server, monkeypatch):
    monkeypatch.setattr("deployments.recording.CANCEL_CHECK_EVERY_SECONDS", 0)
    service = make_service(local_server, source_type="image", image="nginx:1.27")
    deployment, _ = deploy(SYSTEM, service)

    def watchdog_gives_up():
        Deployment.objects.filter(pk=deployment.pk).update(
            status="completed", conclusion="failed", failure_reason=tasks.WORKER_LOST_REASON)

    fake.script = [Scripted("--policy", before=watchdog_gives_up)]
    runner.execute(deployment.pk, worker="unit")
    finished = Deployment.objects.get(pk=deployment.pk)

    assert finished.failure_reason == tasks.WORKER_LOST_REASON
    assert fake.compose_verbs() == ["config", "pull"]


def test_task_run_twice_deploys_once(fake, local_server):
    service = make_service(local_server, source_type="image", image="nginx:1.27")
    deployment, _ = deploy(SYSTEM, service)

    first = tasks.run_deployment.apply(args=[deployment.pk]).get()
    second = tasks.run_deployment.apply(args=[deployment.pk]).get()

    assert (first, second) == ("ran", "not claimed")
    assert fake.compose_verbs().count("up") == 1
    assert Deployment.objects.get(pk=deployment.pk).steps.count() == 4


def test_heartbeat_ticks_while_command_is_silent():
    ticks = []

    result = run_process(["sleep", "2.5"], timeout=10, on_output=None, on_tick=lambda: ticks.append(1),
                         stdin=None, should_cancel=None)

    assert result.exit_code == 0
    assert len(ticks) >= 2


def test_recorder_tick_writes_heartbeat(local_server, settings):
    settings.DAOFLOW_HEARTBEAT_TIMEOUT = 2
    service = make_service(local_server, source_type="image", image="nginx:1.27")
    deployment, _ = deploy(SYSTEM, service)
    old = timezone.now() - timedelta(hours=1)
    Deployment.objects.filter(pk=deployment.pk).update(heartbeat_at=old)
    recorder = Recorder(deployment, Masker([]))

    recorder.tick()

    assert recorder.heartbeat_every == 0.5
    assert Deployment.objects.get(pk=deployment.pk).heartbeat_at > old


# -- watchdog and queue ----------------------------------------------------------


def test_watchdog_fails_stale_and_frees_service(fake, local_server, recorded_queue, settings,
                                               django_capture_on_commit_callbacks):
    settings.DAOFLOW_HEARTBEAT_TIMEOUT = 5
    service = make_service(local_server, source_type="image", image="nginx:1.27")
    stale, _ = deploy(SYSTEM, service)
    waiting, _ = deploy(SYSTEM, service)
    from deployments.queue import claim

    assert claim(stale.pk, "dead-worker") is not None
    Deployment.objects.filter(pk=stale.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=60))
    recorded_queue.ids.clear()

    with django_capture_on_commit_callbacks(execute=True):
        outcome = tasks.watchdog()
    again = tasks.watchdog()

    failed = Deployment.objects.get(pk=stale.pk)
    assert outcome["failed"] == 1
    assert again["failed"] == 0
    assert failed.conclusion == "failed"
    assert failed.failure_reason == "worker stopped reporting progress"
    assert recorded_queue.ids[0] == waiting.pk
    assert runner.execute(waiting.pk, worker="new") == "ran"


def test_watchdog_requeues_lost_tasks(local_server, recorded_queue, settings):
    settings.DAOFLOW_REQUEUE_AFTER = 30
    first = make_service(local_server, name="one", source_type="image", image="nginx:1.27")
    second = make_service(local_server, name="two", source_type="image", image="nginx:1.27")
    old = [deploy(SYSTEM, first)[0], deploy(SYSTEM, first)[0], deploy(SYSTEM, second)[0]]
    Deployment.objects.filter(pk__in=[d.pk for d in old]).update(created_at=timezone.now() - timedelta(minutes=5))
    fresh, _ = deploy(SYSTEM, second)
    recorded_queue.ids.clear()

    outcome = tasks.watchdog()

    assert outcome == {"failed": 0, "requeued": 2}
    assert recorded_queue.ids == [old[0].pk, old[2].pk]
    assert fresh.pk not in recorded_queue.ids


def test_queue_position(local_server):
    service = make_service(local_server, source_type="image", image="nginx:1.27")
    deployments = [deploy(SYSTEM, service)[0] for _ in range(3)]
    from deployments.queue import claim

    claim(deployments[0].pk, "unit")
    positions = [DeploymentSerializer(Deployment.objects.get(pk=d.pk)).data["queue_position"] for d in deployments]

    assert positions == [None, 1, 2]


class SequenceTransport(RecordingTransport):
    """Returns the next of several outputs for `docker compose ps`, repeating the last."""

    def __init__(self, ps_outputs: list[list[str]], script=None):
        super().__init__(script)
        self.ps_outputs = ps_outputs

    def run(self, argv, *, timeout, on_output=None, **kwargs):
        if "ps" in argv and "--format" in argv:
            self.commands.append(list(argv))
            lines = self.ps_outputs.pop(0) if len(self.ps_outputs) > 1 else self.ps_outputs[0]
            for line in lines:
                on_output("stdout", line)
            return CommandResult(0, [])
        return super().run(argv, timeout=timeout, on_output=on_output, **kwargs)


def test_health_waits_while_starting(monkeypatch, local_server):
    starting = '{"Name": "web-1", "State": "running", "Health": "starting", "ExitCode": 0}'
    healthy = '{"Name": "web-1", "State": "running", "Health": "healthy", "ExitCode": 0}'
    transport = SequenceTransport([[starting], [starting], [healthy]])
    monkeypatch.setattr(runner, "transport_for", lambda server, pid_dir=None: transport)
    monkeypatch.setattr(runner, "HEALTH_POLL_SECONDS", 0.05)
    service = make_service(local_server, source_type="image", image="nginx:1.27")

    finished = run(service)

    assert finished.conclusion == "succeeded", finished.failure_reason
    assert transport.compose_verbs().count("ps") == 3


def test_health_still_starting_fails(monkeypatch, local_server, settings):
    settings.DAOFLOW_HEALTH_TIMEOUT = 1
    starting = '{"Name": "web-1", "State": "running", "Health": "starting", "ExitCode": 0}'
    transport = SequenceTransport([[starting]])
    monkeypatch.setattr(runner, "transport_for", lambda server, pid_dir=None: transport)
    monkeypatch.setattr(runner, "HEALTH_POLL_SECONDS", 0.2)
    service = make_service(local_server, source_type="image", image="nginx:1.27")

    finished = run(service)

    assert finished.failed_step == "health"
    assert finished.failure_reason == (
        "Containers not healthy within 1 seconds: the health check of web-1 was still starting."
    )


def test_one_off_exit_zero_ends_up_wait(fake, local_server):
    fake.script = [Scripted(" up ", exit_code=1, stderr=["Container p-web-1  Healthy",
                                                         "container p-migrate-1 exited (0)"])]
    service = make_service(local_server, source_type="image", image="nginx:1.27")

    finished = run(service)

    assert finished.conclusion == "succeeded", finished.failure_reason
    assert finished.log_lines.filter(text__startswith="A one-off container exited with code 0").exists()


def test_up_failure_with_other_exit_is_kept(fake, local_server):
    fake.script = [Scripted(" up ", exit_code=1, stderr=["container p-migrate-1 exited (0)",
                                                         "container p-web-1 exited (2)"])]
    service = make_service(local_server, source_type="image", image="nginx:1.27")

    finished = run(service)

    assert finished.failed_step == "start"
    assert "p-web-1 exited (2)" in finished.failure_reason


def test_restarting_exit_code_read_from_status():
    container = {"Name": "app-1", "State": "restarting", "ExitCode": 0, "Status": "Restarting (3) 1 second ago"}

    assert runner.container_problem(container) == "app-1 is restarting (last exit code 3)"


def test_run_process_cancel_kills_process_group(tmp_path):
    marker = tmp_path / "still-running"
    script = f"sleep 30 & wait; touch {marker}"
    started = time.monotonic()

    with pytest.raises(CommandCancelled):
        run_process(["sh", "-c", script], timeout=60, on_output=None, on_tick=None, stdin=None,
                    should_cancel=lambda: time.monotonic() - started > 1)

    assert time.monotonic() - started < 10
    assert not marker.exists()
