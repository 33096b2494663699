"""Health probe configuration: validation and the writes behind `daoflow probe`.

The probes themselves run in deployments/health.py; a deployment uses the
probes frozen into its input when it was requested.
"""

import logging
from dataclasses import dataclass

from django.db import transaction

from accounts import audit, scopes
from accounts.permissions import require_scope
from daoflow.errors import InvalidInput, NotFound

from .models import HealthProbe

logger = logging.getLogger(__name__)

MAX_TIMEOUT_SECONDS = 3600
MIN_INTERVAL_SECONDS = 0.2
MAX_PATH_LENGTH = 500


@dataclass
class ProbeInput:
    kind: str = HealthProbe.KIND_HTTP
    port: int = 0
    path: str = "/"
    expected_status: int = 200
    timeout_seconds: int = 60
    interval_seconds: float = 1.0


def validate_probe(data: ProbeInput) -> ProbeInput:
    """Raise InvalidInput naming the flag of the first invalid value; return the normalized input."""
    if data.kind not in (HealthProbe.KIND_HTTP, HealthProbe.KIND_TCP):
        raise InvalidInput(f"--kind: {data.kind!r} is not a probe kind; use http or tcp.", field="kind")
    if not 1 <= data.port <= 65535:
        raise InvalidInput(f"--port: {data.port} is not a TCP port (1-65535).", field="port")
    path = data.path or "/"
    if data.kind == HealthProbe.KIND_HTTP:
        # Only a path: the probe's host is always the deployment's target, so
        # no scheme, host or whitespace may sneak into the request line.
        if not path.startswith("/") or path.startswith("//"):
            raise InvalidInput(f"--path: {path!r} must be a path starting with a single /, e.g. /healthz.",
                               field="path")
        # Printable ASCII only: http.client cannot send anything else in a request line.
        if len(path) > MAX_PATH_LENGTH or any(not 33 <= ord(ch) <= 126 for ch in path):
            raise InvalidInput(f"--path: {path!r} contains whitespace, control or non-ASCII characters (percent-encode them), or is longer "
                               f"than {MAX_PATH_LENGTH} characters.", field="path")
        if not 100 <= data.expected_status <= 599:
            raise InvalidInput(f"--expected-status: {data.expected_status} is not an HTTP status (100-599).",
                               field="expected_status")
    if not 1 <= data.timeout_seconds <= MAX_TIMEOUT_SECONDS:
        raise InvalidInput(f"--timeout: {data.timeout_seconds} is outside 1-{MAX_TIMEOUT_SECONDS} seconds.",
                           field="timeout")
    if not MIN_INTERVAL_SECONDS <= data.interval_seconds <= data.timeout_seconds:
        raise InvalidInput(f"--interval: {data.interval_seconds} must be between {MIN_INTERVAL_SECONDS} seconds "
                           "and the timeout.", field="interval")
    return ProbeInput(kind=data.kind, port=data.port, path=path if data.kind == HealthProbe.KIND_HTTP else "",
                      expected_status=data.expected_status, timeout_seconds=data.timeout_seconds,
                      interval_seconds=float(data.interval_seconds))


@audit.records_denials("probe.set")
def set_probe(principal, service, data: ProbeInput) -> tuple[HealthProbe, bool]:
    """Create or replace the service's probe on data.port; return (probe, created)."""
    require_scope(principal, scopes.SERVICE_UPDATE, service)
    valid = validate_probe(data)
    fields = {
        "kind": valid.kind,
        "path": valid.path,
        "expected_status": valid.expected_status,
        "timeout_seconds": valid.timeout_seconds,
        "interval_seconds": valid.interval_seconds,
    }
    with transaction.atomic():
        probe, created = HealthProbe.objects.update_or_create(service=service, port=valid.port, defaults=fields)
        audit.record(principal, "probe.set", service, scope=scopes.SERVICE_UPDATE,
                     diff={"port": valid.port, **fields}, target_label=f"{service} probe on port {valid.port}")
    logger.info("service=%s probe port=%s %s", service.pk, valid.port, "created" if created else "updated")
    return probe, created


@audit.records_denials("probe.remove")
def remove_probe(principal, service, port: int) -> None:
    require_scope(principal, scopes.SERVICE_UPDATE, service)
    with transaction.atomic():
        deleted, _ = HealthProbe.objects.filter(service=service, port=port).delete()
        if not deleted:
            raise NotFound(f"Service {service} has no probe on port {port}; list them with "
                           f"`daoflow probe list --service {service.name}`.")
        audit.record(principal, "probe.remove", service, scope=scopes.SERVICE_UPDATE,
                     diff={"port": port}, target_label=f"{service} probe on port {port}")
    logger.info("service=%s probe port=%s removed", service.pk, port)


def probe_dict(probe: HealthProbe) -> dict:
    return {"id": probe.pk, **probe.frozen(), "path": probe.path}
