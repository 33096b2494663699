"""Freezing the complete input of a deployment at the moment it is requested.

The worker deploys exactly this document, never the service's current rows,
so later edits don't leak into a queued deployment and a rollback can replay
an earlier one.
"""

import dataclasses
import hashlib
import hmac
import json
from pathlib import PurePosixPath

from django.conf import settings

FROZEN_INPUT_VERSION = 1


def resolve_env(service) -> list[dict]:
    """Layer project, environment and service variables; the narrowest level wins."""
    from services.models import EnvironmentVariable

    rows = EnvironmentVariable.objects.filter(project_id=service.project_id).filter(
        models_q_for_service(service)
    )
    precedence = {"project": 0, "environment": 1, "service": 2}
    resolved: dict[str, dict] = {}
    for row in sorted(rows, key=lambda r: precedence[r.level]):
        resolved[row.key] = {"key": row.key, "value": row.value, "secret": row.secret, "level": row.level}
    return [resolved[key] for key in sorted(resolved)]


def models_q_for_service(service):
    from django.db.models import Q

    project_level = Q(environment__isnull=True, service__isnull=True)
    environment_level = Q(environment_id=service.environment_id, service__isnull=True)
    return project_level | environment_level | Q(service_id=service.pk)


def workdir_for(service, server) -> str:
    if server.is_local:
        root = str(settings.DAOFLOW_LOCAL_WORKDIR_ROOT)
    else:
        root = server.workdir_root or settings.DAOFLOW_REMOTE_WORKDIR_ROOT
    return str(PurePosixPath(root) / service.project.name / service.environment.name / service.name)


def freeze(service, server) -> dict:
    return {
        "version": FROZEN_INPUT_VERSION,
        "service": {
            "id": service.pk,
            "name": service.name,
            "project": service.project.name,
            "environment": service.environment.name,
        },
        "server": {"id": server.pk, "name": server.name, "kind": server.kind, "host": server.host},
        "source_type": service.source_type,
        "compose_project": service.compose_project,
        "workdir": workdir_for(service, server),
        "image": service.image,
        "repository_url": service.repository_url,
        "branch": service.branch,
        "compose_path": service.compose_path,
        "compose_document": service.compose_document,
        "compose_service": service.compose_service,
        "dockerfile_path": service.dockerfile_path,
        "env": resolve_env(service),
        "ports": [dataclasses.asdict(port.spec) for port in service.ports.all()],
        "volumes": [_volume_dict(volume.spec) for volume in service.volumes.all()],
        "probes": [probe.frozen() for probe in service.health_probes.all()],
    }


def _volume_dict(spec) -> dict:
    data = dataclasses.asdict(spec)
    data["options"] = [list(pair) for pair in spec.options]
    return data


def secret_values(frozen: dict) -> list[str]:
    return [item["value"] for item in frozen["env"] if item["secret"] and item["value"]]


def masked(frozen: dict) -> dict:
    """Return a copy that is safe to show, with secret values replaced by the mask."""
    copy = json.loads(json.dumps(frozen))
    for item in copy["env"]:
        if item["secret"]:
            item["value"] = "********"
    return copy


def digest(frozen: dict) -> str:
    """A stable keyed hash of the input without the per-deployment id.

    Keyed with SECRET_KEY because the input contains secret values: a plain hash
    of a short secret could be found by guessing.
    """
    comparable = {key: value for key, value in frozen.items() if key != "deployment_id"}
    payload = json.dumps(comparable, sort_keys=True).encode()
    return hmac.new(settings.SECRET_KEY.encode(), payload, hashlib.sha256).hexdigest()
