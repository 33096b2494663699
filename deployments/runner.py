"""Executing a claimed deployment on its target, step by step.

Each step runs argument lists through a transport; output is masked and
stored as it arrives. A failure names the step and gives a reason an operator
can act on: user errors (a bad compose file, a container that exits) are kept
apart from errors of the product, which are logged with a traceback.
"""

import json
import logging
import posixpath
import socket

from django.conf import settings

from services.validation import InvalidValue, parse_compose_document

from . import compose
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


class StepFailed(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


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

        result = self.transport.run(
            argv,
            timeout=timeout or settings.DAOFLOW_STEP_TIMEOUT,
            on_output=on_output,
            on_tick=self.recorder.tick,
            should_cancel=self.recorder.cancel_requested,
        )
        if result.exit_code != 0:
            tail = [line for line in stderr_lines if line.strip()][-5:]
            detail = " ".join(line.strip() for line in tail) or f"exit code {result.exit_code}"
            raise StepFailed(f"`{_describe(argv)}` failed (exit code {result.exit_code}): {detail}")
        return collect if collect is not None else []

    def compose(self, *arguments: str) -> list[str]:
        argv = ["docker", "compose", "--project-name", self.frozen["compose_project"],
                "--project-directory", self.project_directory]
        for path in self.compose_files:
            argv += ["--file", path]
        return argv + list(arguments)

    def write(self, name: str, data: bytes, mode: int) -> str:
        path = posixpath.join(self.workdir, name)
        self.recorder.mark_touched()
        self.transport.write_file(path, data, mode)
        self.recorder.system(f"wrote {path} (mode {mode:o})")
        return path

    # -- steps ------------------------------------------------------------

    def step_clone(self) -> str:
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
            base = self.write(compose.BASE_FILE, compose.render_base(frozen, self.source_dir), 0o644)
            self.compose_files = [base]
            stack_services = [frozen["service"]["name"]]
            primary = stack_services[0]
        else:
            user_file, document_text = self._user_compose_file()
            self.compose_files = [user_file]
            self.project_directory = posixpath.dirname(user_file)
            listed = self.command(self.compose("config", "--services"), timeout=120, collect=[])
            stack_services = [name.strip() for name in listed if name.strip()]
            primary = self._primary_service(document_text, stack_services)

        override = self.write(compose.OVERRIDE_FILE, compose.render_override(frozen, primary), 0o644)
        env_file = self.write(compose.ENV_FILE, compose.render_env(frozen, stack_services), 0o600)
        self.compose_files += [override, env_file]

        # Compose validates the merged result before anything starts.
        self.command(self.compose("config", "--quiet"), timeout=120)
        return f"compose project {frozen['compose_project']}; services: {', '.join(stack_services)}"

    def _user_compose_file(self) -> tuple[str, str]:
        frozen = self.frozen
        if not frozen["repository_url"]:
            text = frozen["compose_document"]
            self._parse_document(text, "the inline compose document")
            return self.write(compose.BASE_FILE, text.encode(), 0o644), text

        path = posixpath.join(self.source_dir, frozen["compose_path"] or "compose.yaml")
        lines = self.command(["cat", "--", path], timeout=60, collect=[], log_stdout=False)
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
        self.command(self.compose("build"))
        return ""

    def step_pull(self) -> str:
        self.command(self.compose("pull", "--policy", "missing", "--ignore-buildable"))
        return ""

    def step_start(self) -> str:
        wait = settings.DAOFLOW_HEALTH_TIMEOUT
        self.command(
            self.compose("up", "--detach", "--wait", "--wait-timeout", str(wait),
                         "--remove-orphans", "--pull", "missing"),
            timeout=settings.DAOFLOW_STEP_TIMEOUT + wait,
        )
        return ""

    def step_health(self) -> str:
        lines = self.command(self.compose("ps", "--all", "--format", "json"), timeout=60, collect=[], log_stdout=False)
        containers = parse_ps_output(lines)
        if not containers:
            raise StepFailed("No container of the stack is running after `docker compose up`.")
        problems = [problem for problem in map(container_problem, containers) if problem]
        if problems:
            raise StepFailed("Unhealthy containers: " + "; ".join(problems) + ".")
        return ", ".join(f"{c.get('Name')}: {c.get('State')}" for c in containers)

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
            self.transport = transport_for(deployment.server)
            for current in steps:
                self.recorder.start_step(current)
                detail = self.STEPS[current.name](self) or ""
                self.recorder.finish_step(DeploymentStep.STATUS_SUCCEEDED, detail)
            self.recorder.flush()
            conclude(deployment, Deployment.CONCLUSION_SUCCEEDED)
        except CommandCancelled:
            self._stop(current, Deployment.CONCLUSION_CANCELLED, "The deployment was cancelled.")
        except (StepFailed, TransportError) as error:
            reason = self.recorder.mask(getattr(error, "reason", None) or str(error))
            if isinstance(error, CommandTimedOut):
                reason = f"Step {current.name} timed out: {reason}"
            self._stop(current, Deployment.CONCLUSION_FAILED, reason)
        except Exception:
            logger.exception("deployment=%s service=%s failed with an internal error", deployment.pk, deployment.service_id)
            self._stop(current, Deployment.CONCLUSION_FAILED,
                       "Internal error in the deployment worker; the worker log has the details.")
        finally:
            if self.transport is not None:
                self.transport.close()

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
    exit_code = container.get("ExitCode", 0)
    if state == "exited":
        return "" if exit_code == 0 else f"{name} exited with code {exit_code}"
    if state == "restarting":
        return f"{name} is restarting (last exit code {exit_code})"
    if state != "running":
        return f"{name} is {state or 'in an unknown state'}"
    if health and health != "healthy":
        return f"{name} is {health}"
    return ""


def _describe(argv: list[str]) -> str:
    """A short form of a command for failure reasons: the program and its subcommand."""
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
