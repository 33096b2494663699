"""Executing a claimed deployment on its target, step by step.

Each step runs argument lists through a transport; output is masked and
stored as it arrives. A failure names the step and gives a reason an operator
can act on: user errors (a bad compose file, a container that exits) are kept
apart from errors of the product, which are logged with a traceback.
"""

import json
import logging
import posixpath
import re
import socket
import time

from django.conf import settings

from services.validation import InvalidValue, parse_compose_document, redact_url

from . import compose, health
from .freeze import secret_values
from .masking import Masker
from .models import Deployment, DeploymentStep
from .queue import claim, conclude
from .recording import Recorder
from .transports import CommandCancelled, CommandTimedOut, TransportError, transport_for

logger = logging.getLogger(__name__)

CLONE_SCRIPT = (
    'set -e; mkdir -p "$(dirname "$1")"; rm -rf "$1.new"; '
    'if [ -n "$3" ]; then git clone --quiet --depth 1 --single-branch --branch "$3" -- "$2" "$1.new"; '
    'else git clone --quiet --depth 1 --single-branch -- "$2" "$1.new"; fi; '
    'rm -rf "$1"; mv "$1.new" "$1"; git -C "$1" rev-parse HEAD'
)


# Seconds that `docker compose ps` and similar short commands may take.
SHORT_COMMAND_SECONDS = 60
# Directory, inside the service's work directory, of the pid files of running commands.
PID_DIR = ".daoflow-commands"
# Seconds between two `docker compose ps` while containers are still starting.
HEALTH_POLL_SECONDS = 1.0

# `docker compose up --wait` (Compose 2.40) stops with "container NAME exited (0)"
# at a one-off job that finished. Only that failure, with no other, is let through.
ONE_OFF_EXITED = re.compile(r"exited \(0\)")
OTHER_FAILURE = re.compile(r"exited \([1-9][0-9]*\)|unhealthy|error", re.IGNORECASE)


# Container output recorded in the log when the start or health step fails,
# and how many of those lines the failure reason repeats.
CONTAINER_LOG_LINES = 30
REASON_LOG_LINES = 3


class StepFailed(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class StepTimedOut(StepFailed):
    pass


class DeploymentRun:
    """The state of one deployment while a worker executes it."""

    def __init__(self, deployment: Deployment):
        self.deployment = deployment
        self.frozen = deployment.input
        self.frozen["deployment_id"] = deployment.pk
        self.recorder = Recorder(deployment, Masker(secret_values(self.frozen)))
        self.workdir = self.frozen["workdir"]
        self.source_dir = posixpath.join(self.workdir, "src")
        self.compose_files: list[str] = []
        self.project_directory = self.workdir
        self.transport = None
        self.step_name = ""
        # Monotonic times after which the current step, and the whole run, are stopped.
        self.deadline = time.monotonic() + settings.DAOFLOW_DEPLOY_DEADLINE
        self.step_deadline = self.deadline
        self.step_seconds = float(settings.DAOFLOW_STEP_TIMEOUT)
        # Cleared by the resolve step of a compose stack whose document builds nothing.
        self.needs_build = True

    # -- running commands -------------------------------------------------

    def command(
        self,
        argv: list[str],
        *,
        timeout: float | None = None,
        collect: list[str] | None = None,
        log_stdout: bool = True,
    ) -> list[str]:
        """Run argv on the target; raise StepFailed with the command's last error lines if it fails.

        With `collect`, standard output lines are appended to it; with
        log_stdout=False they are not stored in the deployment log (machine
        output such as `ps --format json`).
        """
        self.recorder.mark_touched()
        stderr_lines: list[str] = []

        def on_output(stream: str, line: str) -> None:
            if stream == "stdout" and collect is not None:
                collect.append(line)
            if stream == "stdout" and not log_stdout:
                return
            masked = self.recorder.line(stream, line)
            if stream == "stderr" and masked.strip():
                stderr_lines.append(masked)

        limit, bound = self.time_left(timeout or settings.DAOFLOW_STEP_TIMEOUT)
        try:
            result = self.transport.run(
                argv,
                timeout=limit,
                on_output=on_output,
                on_tick=self.recorder.tick,
                should_cancel=self.recorder.cancel_requested,
            )
        except CommandTimedOut:
            failure = f"`{_describe(argv)}` did not finish within {int(round(limit))} seconds and was stopped"
            raise StepTimedOut(self.timeout_reason(bound, failure)) from None
        if result.exit_code != 0:
            tail = [line for line in stderr_lines if line.strip()][-5:]
            detail = " ".join(line.strip() for line in tail) or f"exit code {result.exit_code}"
            raise StepFailed(f"`{_describe(argv)}` failed (exit code {result.exit_code}): {detail}")
        return collect if collect is not None else []

    def time_left(self, requested: float) -> tuple[float, str]:
        """Return the seconds a command may take and which limit sets them ("command", "step" or "deadline").

        The requested time is cut by the step timeout and the deployment
        deadline. Raises StepTimedOut when the step or the run has no time left.
        """
        now = time.monotonic()
        limits = [(requested, "command"), (self.step_deadline - now, "step"), (self.deadline - now, "deadline")]
        seconds = min(limit for limit, _ in limits)
        # The first limit within a second of the shortest one is named: a
        # command whose own limit equals its step's is reported as the command's.
        bound = next(name for limit, name in limits if limit <= seconds + 1)
        if seconds <= 0:
            raise StepTimedOut(self.timeout_reason(bound, "no time was left to run the next command"))
        return seconds, bound

    def timeout_reason(self, bound: str, failure: str) -> str:
        if bound == "deadline":
            return (f"The deployment exceeded its deadline of {settings.DAOFLOW_DEPLOY_DEADLINE} seconds "
                    f"(DAOFLOW_DEPLOY_DEADLINE) in step {self.step_name}: {failure}.")
        if bound == "step":
            return (f"Step {self.step_name} timed out after its limit of {int(round(self.step_seconds))} seconds: "
                    f"{failure}.")
        return f"Step {self.step_name} timed out: {failure}."

    def compose(self, *arguments: str) -> list[str]:
        argv = ["docker", "compose", "--project-name", self.frozen["compose_project"],
                "--project-directory", self.project_directory]
        for path in self.compose_files:
            argv += ["--file", path]
        return argv + list(arguments)

    def write(self, name: str, data: bytes, mode: int) -> str:
        return self.write_all([(name, data, mode)])[0]

    def write_all(self, files: list[tuple[str, bytes, int]]) -> list[str]:
        """Write files into the service's directory on the target, in one round trip where the transport can."""
        self.recorder.mark_touched()
        self.transport.write_files(self.workdir, files)
        paths = [posixpath.join(self.workdir, name) for name, _, _ in files]
        for path, (_, _, mode) in zip(paths, files):
            self.recorder.system(f"wrote {path} (mode {mode:o})")
        return paths

    # -- steps ------------------------------------------------------------

    def step_clone(self) -> str:
        if self.frozen.get("rollback_image"):
            return self.skip_for_rollback()
        commit: list[str] = []
        self.command(
            ["env", "GIT_TERMINAL_PROMPT=0", "sh", "-c", CLONE_SCRIPT, "sh",
             self.source_dir, self.frozen["repository_url"], self.frozen["branch"]],
            collect=commit,
        )
        head = commit[-1].strip() if commit else ""
        return f"commit {head}" if head else ""

    def step_resolve(self) -> str:
        frozen = self.frozen
        source_type = frozen["source_type"]
        if source_type in ("image", "dockerfile"):
            # One service of a known name, so all three files go in one write.
            stack_services = [frozen["service"]["name"]]
            self.compose_files = self.write_all([
                (compose.BASE_FILE, compose.render_base(self.base_input(), self.source_dir), 0o644),
                (compose.OVERRIDE_FILE, compose.render_override(frozen, stack_services[0]), 0o644),
                (compose.ENV_FILE, compose.render_env(frozen, stack_services), 0o600),
            ])
        elif not frozen["repository_url"] and "include" not in self._parse_document(
            frozen["compose_document"], "the inline compose document"
        ):
            # An inline document without `include` declares every service of
            # the stack itself (`extends` adds none), so the document and both
            # generated files go in one write, with no `config --services` run.
            document_text = frozen["compose_document"]
            stack_services = list(parse_compose_document(document_text)["services"])
            primary = self._primary_service(document_text, stack_services)
            self.needs_build = _may_build(document_text)
            self.compose_files = self.write_all([
                (compose.BASE_FILE, document_text.encode(), 0o644),
                (compose.OVERRIDE_FILE, compose.render_override(frozen, primary), 0o644),
                (compose.ENV_FILE, compose.render_env(frozen, stack_services), 0o600),
            ])
        else:
            user_file, document_text = self._user_compose_file()
            self.compose_files = [user_file]
            self.project_directory = posixpath.dirname(user_file)
            listed = self.command(self.compose("config", "--services"), timeout=120, collect=[])
            stack_services = [name.strip() for name in listed if name.strip()]
            primary = self._primary_service(document_text, stack_services)
            self.needs_build = _may_build(document_text)
            self.compose_files += self.write_all([
                (compose.OVERRIDE_FILE, compose.render_override(frozen, primary), 0o644),
                (compose.ENV_FILE, compose.render_env(frozen, stack_services), 0o600),
            ])

        # Compose validates the merged result before anything starts.
        self.command(self.compose("config", "--quiet"), timeout=120)
        return f"compose project {frozen['compose_project']}; services: {', '.join(stack_services)}"

    def _user_compose_file(self) -> tuple[str, str]:
        frozen = self.frozen
        if not frozen["repository_url"]:
            text = frozen["compose_document"]
            self._parse_document(text, "the inline compose document")
            return self.write(compose.BASE_FILE, text.encode(), 0o644), text

        relative = frozen["compose_path"] or "compose.yaml"
        path = posixpath.join(self.source_dir, relative)
        try:
            lines = self.command(["cat", "--", path], timeout=60, collect=[], log_stdout=False)
        except StepFailed as error:
            if "No such file" not in error.reason:
                raise
            branch = frozen["branch"] or "its default branch"
            raise StepFailed(
                f"The compose file {relative!r} is not in the repository {redact_url(frozen['repository_url'])} "
                f"({branch}); set --compose-path to the compose file's path in the repository."
            ) from None
        text = "\n".join(lines)
        self._parse_document(text, frozen["compose_path"] or "compose.yaml")
        return path, text

    def _parse_document(self, text: str, source: str) -> dict:
        try:
            return parse_compose_document(text, source)
        except InvalidValue as error:
            raise StepFailed(error.message) from None

    def _primary_service(self, document_text: str, stack_services: list[str]) -> str:
        wanted = self.frozen["compose_service"]
        if wanted:
            if wanted not in stack_services:
                raise StepFailed(
                    f"compose service {wanted!r} is not in the stack (it has {', '.join(stack_services)}); "
                    "set --compose-service to one of them."
                )
            return wanted
        declared = list((parse_compose_document(document_text).get("services") or {}).keys())
        for name in declared:
            if name in stack_services:
                return name
        return stack_services[0]

    def step_build(self) -> str:
        if self.frozen.get("rollback_image"):
            return self.check_rollback_image()
        if not self.needs_build:
            # Saves a `docker compose build` run that would do nothing (0.25 s on the
            # loopback target, measured with bench/deploy_overhead.py).
            return "nothing to build: no service of the stack has a build section"
        self.command(self.compose("build"))
        return ""

    def step_pull(self) -> str:
        self.command(self.compose("pull", "--policy", "missing", "--ignore-buildable"))
        return ""

    def step_start(self) -> str:
        wait = settings.DAOFLOW_HEALTH_TIMEOUT
        try:
            self.command(
                self.compose("up", "--detach", "--wait", "--wait-timeout", str(wait),
                             "--remove-orphans", "--pull", "missing"),
                timeout=settings.DAOFLOW_STEP_TIMEOUT + wait,
            )
        except StepTimedOut:
            raise
        except StepFailed as error:
            if not ONE_OFF_EXITED.search(error.reason) or OTHER_FAILURE.search(ONE_OFF_EXITED.sub("", error.reason)):
                raise
            self.recorder.system("A one-off container exited with code 0, which ended `docker compose up --wait`; "
                                 "the health step waits for the other containers.")
        return ""

    def step_health(self) -> str:
        containers = self.wait_for_containers()
        summary = ", ".join(f"{c.get('Name')}: {c.get('State')}" for c in containers)
        passed = [self.run_probe(probe) for probe in self.frozen.get("probes") or []]
        return "; ".join([summary, *passed])

    def wait_for_containers(self) -> list[dict]:
        """Poll `docker compose ps` until no container's health check is starting; fail on any problem.

        Unhealthy, restarting and non-zero exited containers fail at once;
        containers that exited with code 0 (one-off jobs) are fine.
        """
        seconds, bound = self.time_left(settings.DAOFLOW_HEALTH_TIMEOUT)
        deadline = time.monotonic() + seconds
        while True:
            lines = self.command(self.compose("ps", "--all", "--format", "json"), timeout=SHORT_COMMAND_SECONDS,
                                 collect=[], log_stdout=False)
            containers = parse_ps_output(lines)
            if not containers:
                raise StepFailed("No container of the stack is running after `docker compose up`.")
            problems = [problem for problem in map(container_problem, containers) if problem]
            starting = [c.get("Name") for c in containers if (c.get("Health") or "").lower() == "starting"]
            if len(problems) > len(starting):
                raise StepFailed("Unhealthy containers: " + "; ".join(problems) + ".")
            if not starting:
                return containers
            if time.monotonic() + HEALTH_POLL_SECONDS > deadline:
                failure = f"the health check of {', '.join(starting)} was still starting"
                if bound == "command":
                    raise StepFailed(f"Containers not healthy within {int(round(seconds))} seconds: {failure}.")
                raise StepTimedOut(self.timeout_reason(bound, failure))
            self.pause(HEALTH_POLL_SECONDS)

    def pause(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.check_in()
            time.sleep(min(0.5, max(0.0, end - time.monotonic())))

    def run_probe(self, probe: dict) -> str:
        host = health.probe_host(self.frozen)
        seconds, bound = self.time_left(probe["timeout_seconds"])
        self.recorder.system(f"{health.describe(probe)} on {host}: waiting up to {int(round(seconds))} seconds")
        try:
            attempts = health.wait_until_passing(
                probe, host, seconds=seconds, on_wait=self.check_in,
                on_attempt=lambda error: self.recorder.system(f"{health.describe(probe)}: {error}"),
            )
        except health.ProbeFailed as error:
            if bound == "command":
                raise StepFailed(error.reason) from None
            raise StepTimedOut(self.timeout_reason(bound, error.reason.rstrip("."))) from None
        self.recorder.system(f"{health.describe(probe)} passed after {attempts} attempt(s)")
        return f"{health.describe(probe)} passed"

    def check_in(self) -> None:
        """Write the heartbeat and stop if the deployment was cancelled, between commands."""
        self.recorder.tick()
        if self.recorder.cancel_requested():
            raise CommandCancelled("The deployment was cancelled.")

    # -- rollbacks of Dockerfile services --------------------------------
    # A rollback's frozen input names the image its target deployment built
    # ("rollback_image"). The rollback starts that image again: no clone and
    # no build, so the result is what ran then even if the branch moved.

    def base_input(self) -> dict:
        """Return the frozen input that the generated compose file is rendered from."""
        if self.frozen.get("rollback_image"):
            return {**self.frozen, "source_type": "image", "image": self.frozen["rollback_image"]}
        return self.frozen

    def skip_for_rollback(self) -> str:
        return f"no clone: the rollback reuses the image {self.frozen['rollback_image']}"

    def check_rollback_image(self) -> str:
        image = self.frozen["rollback_image"]
        found: list[str] = []
        try:
            self.command(["docker", "image", "inspect", "--format", "{{.Id}}", image], timeout=60, collect=found)
        except StepFailed:
            raise StepFailed(
                f"The image {image}, built by the rollback target, is not on server "
                f"{self.deployment.server.name} any more, so the rollback cannot start it; deploy the "
                "service instead, which builds the image again from the repository."
            ) from None
        image_id = found[-1].strip() if found else "no id"
        return f"no build: the rollback reuses the image {image} ({image_id})"

    STEPS = {
        "clone": step_clone,
        "resolve": step_resolve,
        "build": step_build,
        "pull": step_pull,
        "start": step_start,
        "health": step_health,
    }

    # -- the whole run ----------------------------------------------------

    def execute(self) -> None:
        deployment = self.deployment
        steps = list(deployment.steps.order_by("position"))
        current = steps[0] if steps else None
        try:
            self.transport = transport_for(deployment.server, posixpath.join(self.workdir, PID_DIR))
            for current in steps:
                self.begin_step(current)
                detail = self.STEPS[current.name](self) or ""
                self.recorder.finish_step(DeploymentStep.STATUS_SUCCEEDED, detail)
            self.recorder.flush()
            conclude(deployment, Deployment.CONCLUSION_SUCCEEDED)
        except CommandCancelled:
            if self.recorder.superseded:
                logger.warning("deployment=%s service=%s was concluded elsewhere (the watchdog); stopped",
                               deployment.pk, deployment.service_id)
                return
            self._stop(current, Deployment.CONCLUSION_CANCELLED, "The deployment was cancelled.")
        except (StepFailed, TransportError) as error:
            reason = self.recorder.mask(getattr(error, "reason", None) or str(error))
            if isinstance(error, CommandTimedOut):
                reason = f"Step {current.name} timed out: {reason}"
            if isinstance(error, StepFailed) and current.name in ("start", "health"):
                reason += self.container_output()
            self._stop(current, Deployment.CONCLUSION_FAILED, reason)
        except Exception:
            logger.exception("deployment=%s service=%s failed with an internal error", deployment.pk, deployment.service_id)
            self._stop(current, Deployment.CONCLUSION_FAILED,
                       "Internal error in the deployment worker; the worker log has the details.")
        finally:
            if self.transport is not None:
                self.transport.close()

    def container_output(self) -> str:
        """Record the stack's last output lines and return the last few for the failure reason.

        A container that exits at start usually prints the cause on its way out, and
        without this the operator would have to run `docker compose logs` on
        the target. Best effort: a failure here leaves the reason as it was.
        """
        lines: list[str] = []
        try:
            self.command(
                self.compose("logs", "--no-color", "--no-log-prefix", "--tail", str(CONTAINER_LOG_LINES)),
                timeout=SHORT_COMMAND_SECONDS, collect=lines,
            )
        except (StepFailed, TransportError) as error:
            logger.warning("deployment=%s could not read container output: %s", self.deployment.pk, error)
            return ""
        tail = [self.recorder.mask(line.strip()) for line in lines if line.strip()][-REASON_LOG_LINES:]
        return f" Last container output: {' | '.join(tail)}" if tail else ""

    def begin_step(self, step: DeploymentStep) -> None:
        if self.recorder.cancel_requested(force=True):
            raise CommandCancelled("The deployment was cancelled.")
        self.step_name = step.name
        self.step_seconds = self.step_timeout(step.name)
        self.step_deadline = time.monotonic() + self.step_seconds
        self.recorder.start_step(step)
        if step.position == 0:
            self.stop_leftover_commands()
        if time.monotonic() >= self.deadline:
            raise StepTimedOut(self.timeout_reason("deadline", "the step could not start"))

    def step_timeout(self, name: str) -> float:
        """Seconds one step may take: its commands' own limits, plus what it waits for."""
        if name == "start":
            return settings.DAOFLOW_STEP_TIMEOUT + settings.DAOFLOW_HEALTH_TIMEOUT
        if name == "health":
            probes = self.frozen.get("probes") or []
            return SHORT_COMMAND_SECONDS + sum(probe["timeout_seconds"] for probe in probes)
        return settings.DAOFLOW_STEP_TIMEOUT

    def stop_leftover_commands(self) -> None:
        """Stop commands of an earlier run of this service whose worker died before they ended.

        The service lock guarantees that no live run of this service owns them.
        """
        for line in self.transport.stop_leftover_commands():
            self.recorder.system(f"stopped a command left running by an earlier deployment ({line})")

    def _stop(self, step: DeploymentStep | None, conclusion: str, reason: str) -> None:
        if step is not None and step.status == DeploymentStep.STATUS_PENDING:
            self.recorder.start_step(step)
        if step is not None:
            self.recorder.system(reason)
            status = (DeploymentStep.STATUS_CANCELLED if conclusion == Deployment.CONCLUSION_CANCELLED
                      else DeploymentStep.STATUS_FAILED)
            self.recorder.finish_step(status, reason)
        self.recorder.flush()
        conclude(self.deployment, conclusion, failed_step=step.name if step and conclusion != Deployment.CONCLUSION_CANCELLED else "", reason=reason)


def parse_ps_output(lines: list[str]) -> list[dict]:
    """Containers from `docker compose ps --format json`: one object per line, or one array (older Compose)."""
    text = "\n".join(lines).strip()
    if not text:
        return []
    if text.startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def container_problem(container: dict) -> str:
    name = container.get("Name") or container.get("Service") or "?"
    state = (container.get("State") or "").lower()
    health = (container.get("Health") or "").lower()
    exit_code = _exit_code(container)
    if state == "exited":
        return "" if exit_code == 0 else f"{name} exited with code {exit_code}"
    if state == "restarting":
        return f"{name} is restarting (last exit code {exit_code})"
    if state != "running":
        return f"{name} is {state or 'in an unknown state'}"
    if health and health != "healthy":
        return f"{name} is {health}"
    return ""


def _exit_code(container: dict) -> int:
    """Return the container's last exit code, read from Status for exited and restarting containers.

    Compose 2.40 reports ExitCode 0 for a restarting container; its Status
    ("Restarting (3) 1 second ago") contains the real code.
    """
    status_code = re.search(r"\((-?[0-9]+)\)", container.get("Status") or "")
    if status_code and (container.get("State") or "").lower() in ("exited", "restarting"):
        return int(status_code.group(1))
    return container.get("ExitCode", 0)


def _may_build(document_text: str) -> bool:
    """Report whether `docker compose build` could build anything: a build section, or include/extends that may add one."""
    document = parse_compose_document(document_text)
    if "include" in document:
        return True
    for definition in (document.get("services") or {}).values():
        if not isinstance(definition, dict) or "build" in definition or "extends" in definition:
            return True
    return False


def _describe(argv: list[str]) -> str:
    """Return a short form of a command for failure reasons: the program and its subcommand."""
    if argv[:2] == ["docker", "compose"]:
        verbs = [a for a in argv[2:] if a in ("config", "build", "pull", "up", "ps")]
        return "docker compose " + (verbs[0] if verbs else "")
    if "git" in argv or argv[:1] == ["env"]:
        return "git clone"
    return argv[0]


def execute(deployment_id: int, worker: str = "") -> str:
    """Claim and run one deployment. Returns what happened, for the task's log."""
    deployment = claim(deployment_id, worker or socket.gethostname())
    if deployment is None:
        return "not claimed"
    logger.info("deployment=%s service=%s started on server=%s", deployment.pk, deployment.service_id, deployment.server_id)
    DeploymentRun(deployment).execute()
    return "ran"
