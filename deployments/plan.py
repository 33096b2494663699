"""A read-only preview of a deployment: target, source, steps, preflight checks and changes.

Nothing is written and nothing is queued. The only commands sent anywhere
are the reachability check: `true` over SSH, or `docker version` on the
local engine.
"""

import logging
import subprocess

from accounts import scopes
from accounts.permissions import GrantIndex, require_scope
from daoflow.errors import DaoflowError
from services.config import check_source_complete
from services.hostkeys import fingerprint
from services.validation import InvalidValue, parse_compose_document, redact_url

from .actions import target_server_of
from .diff import compare_inputs, secret_values_of
from .freeze import freeze
from .masking import Masker
from .models import Deployment
from .queue import plan_steps
from .transports import TransportError, transport_for

logger = logging.getLogger(__name__)

# Time for the reachability command itself; opening the SSH connection has
# its own limit, DAOFLOW_SSH_CONNECT_TIMEOUT.
REACHABILITY_TIMEOUT_SECONDS = 15

PASSED = "passed"
FAILED = "failed"
SKIPPED = "skipped"


def plan(principal, service) -> dict:
    """Preview what `deploy` would do for `service` now; needs deploy:read."""
    grants = GrantIndex(principal)
    require_scope(principal, scopes.DEPLOY_READ, service, grants)
    server = target_server_of(service)
    frozen = freeze(service, server)

    current = latest_succeeded(service)
    current_input = current.input if current is not None else None
    checks = preflight_checks(service, server, Masker(secret_values_of(frozen)))
    show_env_values = scopes.ENV_READ in grants.scopes_on(service)
    return {
        "service": str(service),
        "environment": service.environment.name,
        "server": {"name": server.name, "kind": server.kind, "address": server.address},
        "source": describe_source(frozen),
        "steps": plan_steps(frozen),
        "checks": checks,
        "ready": all(check["status"] != FAILED for check in checks),
        "current_deployment": current.pk if current is not None else None,
        "changes": compare_inputs(current_input, frozen, show_env_values=show_env_values),
    }


def describe_source(frozen: dict) -> dict:
    """Describe what the deployment starts: the image, or where its compose file or Dockerfile comes from."""
    source_type = frozen["source_type"]
    if source_type == "image":
        return {"type": source_type, "image": frozen["image"]}
    if source_type == "dockerfile":
        return {
            "type": source_type,
            "repository_url": redact_url(frozen["repository_url"]),
            "branch": frozen["branch"] or None,
            "dockerfile_path": frozen["dockerfile_path"] or "Dockerfile",
            "image": f"daoflow/{frozen['compose_project']}:deployment-<id of the new deployment>",
        }
    if frozen["repository_url"]:
        return {
            "type": source_type,
            "repository_url": redact_url(frozen["repository_url"]),
            "branch": frozen["branch"] or None,
            "compose_path": frozen["compose_path"] or "compose.yaml",
            "compose_service": frozen["compose_service"] or None,
        }
    return {
        "type": source_type,
        "compose_document": "inline",
        "images": _declared_images(frozen["compose_document"]),
        "compose_service": frozen["compose_service"] or None,
    }


def _declared_images(document_text: str) -> dict:
    try:
        services = parse_compose_document(document_text).get("services") or {}
    except InvalidValue:
        return {}
    return {name: definition.get("image") for name, definition in services.items()}


def preflight_checks(service, server, mask: Masker) -> list[dict]:
    return [
        _check_source(service),
        _check_host_key(server),
        _check_reachable(server, mask),
        _check_compose_document(service, mask),
    ]


def _check(name: str, status: str, detail: str) -> dict:
    return {"name": name, "status": status, "detail": detail}


def _check_source(service) -> dict:
    try:
        check_source_complete(service)
    except DaoflowError as error:
        return _check("source", FAILED, error.message)
    return _check("source", PASSED, f"{service.source_type} service with its required fields set")


def _check_host_key(server) -> dict:
    if server.is_local:
        return _check("host_key", PASSED, "the local engine needs no host key")
    if not server.approved_host_key:
        return _check(
            "host_key", FAILED,
            f"server {server.name!r} has no approved host key; approve it with: daoflow server "
            f"approve-host-key --name {server.name} --fingerprint SHA256:... --yes",
        )
    return _check("host_key", PASSED, f"approved {fingerprint(server.approved_host_key)}")


def _check_reachable(server, mask: Masker) -> dict:
    if not server.host_key_approved:
        return _check("reachable", SKIPPED, "not tried, because no command is sent without an approved host key")
    if server.is_local:
        argv = ["docker", "version", "--format", "{{.Server.Version}}"]
    else:
        argv = ["true"]
    stdout: list[str] = []

    def on_output(stream: str, line: str) -> None:
        if stream == "stdout" and line.strip():
            stdout.append(line.strip())

    try:
        transport = transport_for(server)
        try:
            result = transport.run(argv, timeout=REACHABILITY_TIMEOUT_SECONDS, on_output=on_output)
        finally:
            transport.close()
    except TransportError as error:
        return _check("reachable", FAILED, mask(str(error)))
    except subprocess.TimeoutExpired:
        return _check("reachable", FAILED, f"opening the SSH connection to {server.address} timed out")
    except OSError as error:
        return _check("reachable", FAILED, f"`{argv[0]}` could not be started: {error.strerror}")

    if result.exit_code != 0:
        detail = " ".join(line.strip() for line in result.stderr_tail if line.strip()) or "no error output"
        return _check("reachable", FAILED, mask(f"`{' '.join(argv[:2])}` failed (exit code {result.exit_code}): {detail}"))
    if server.is_local:
        version = stdout[-1] if stdout else "unknown"
        return _check("reachable", PASSED, f"Docker Engine {version} responds")
    return _check("reachable", PASSED, f"SSH login to {server.address} works")


def _check_compose_document(service, mask: Masker) -> dict:
    if service.source_type != "compose":
        return _check("compose_document", SKIPPED, f"only compose services have a compose document, "
                                                   f"and this one is a {service.source_type} service")
    if service.repository_url:
        return _check("compose_document", SKIPPED,
                      "the compose file is read from the repository when the deployment runs")
    try:
        parse_compose_document(service.compose_document, "the inline compose document")
    except InvalidValue as error:
        return _check("compose_document", FAILED, mask(error.message))
    return _check("compose_document", PASSED, "valid YAML with a services mapping")


def plan_rollback(principal, service, target: Deployment) -> dict:
    """Preview a rollback to `target`: its steps and the changes against the current deployment."""
    from .actions import rollback_input

    grants = GrantIndex(principal)
    require_scope(principal, scopes.DEPLOY_ROLLBACK, service, grants)
    frozen = rollback_input(service, target)
    current = latest_succeeded(service)
    return {
        "service": str(service),
        "target": target.pk,
        "server": {"name": target.server.name, "kind": target.server.kind, "address": target.server.address},
        "steps": plan_steps(frozen),
        "current_deployment": current.pk if current is not None else None,
        "changes": compare_inputs(
            current.input if current is not None else None, frozen,
            show_env_values=scopes.ENV_READ in grants.scopes_on(service),
        ),
    }


def latest_succeeded(service) -> Deployment | None:
    """Return the current deployment: the latest one of the service that succeeded."""
    return (
        Deployment.objects.filter(service=service, conclusion=Deployment.CONCLUSION_SUCCEEDED)
        .select_related("server").order_by("-created_at", "-id").first()
    )
