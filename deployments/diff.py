"""Comparing the frozen inputs of deployments, with secret values masked.

`compare_inputs` is shared by `daoflow diff` (two recorded deployments) and
`daoflow plan` (the current deployment against what a deploy would freeze
now). Values are compared in the clear and masked only for display, so a
changed secret shows as changed with the mask on both sides.
"""

from accounts import scopes
from accounts.permissions import GrantIndex, require_scope
from services.config import SCALAR_FIELDS as SERVICE_FIELDS
from services.validation import PortMapping, VolumeMount, redact_url

from .freeze import secret_values
from .masking import MASK, Masker
from .models import Deployment

# Fields shown one to one, in this order: the service's own, then those the
# deployment adds.
SCALAR_FIELDS = (*SERVICE_FIELDS, "rollback_image", "compose_project", "workdir")


def diff(principal, a: Deployment, b: Deployment) -> dict:
    """Compare deployment `a`'s frozen input with deployment `b`'s; needs deploy:read on both."""
    grants = GrantIndex(principal)
    for deployment in (a, b):
        require_scope(principal, scopes.DEPLOY_READ, deployment.service, grants)
    show_env_values = all(
        scopes.ENV_READ in grants.scopes_on(deployment.service) for deployment in (a, b)
    )
    changes = compare_inputs(a.input, b.input, show_env_values=show_env_values)
    return {
        "a": deployment_summary(a),
        "b": deployment_summary(b),
        "same_input": not changes,
        "changes": changes,
    }


def deployment_summary(deployment: Deployment) -> dict:
    return {
        "id": deployment.pk,
        "service": str(deployment.service),
        "server": deployment.server.name,
        "outcome": deployment.outcome,
        "trigger": deployment.trigger,
        "rollback_of": deployment.rollback_of_id,
        "created_at": deployment.created_at,
    }


def compare_inputs(before: dict | None, after: dict, *, show_env_values: bool = True) -> list[dict]:
    """List the changes from `before` to `after` as [{"field", "before", "after"}], masked for display.

    `before` None means nothing was deployed yet, so every set field is a
    change. Without `show_env_values` (the reader lacks env:read) every
    environment value is masked, not only the secret ones. Every secret value
    of either input is also masked wherever else it appears, such as a
    password pasted into an inline compose document.
    """
    before = before or {}
    mask = Masker(secret_values_of(before) + secret_values_of(after))
    changes: list[dict] = []

    def add(field: str, old, new, **extra) -> None:
        if old != new:
            changes.append({"field": field, "before": _masked(mask, old), "after": _masked(mask, new), **extra})

    add("service", _service_label(before), _service_label(after))
    add("server", (before.get("server") or {}).get("name"), after["server"]["name"])
    for field in SCALAR_FIELDS:
        old, new = before.get(field) or None, after.get(field) or None
        if field == "repository_url":
            old, new = (redact_url(old) if old else old), (redact_url(new) if new else new)
        add(field, old, new)
    add("ports", _port_specs(before), _port_specs(after))
    add("volumes", _volume_specs(before), _volume_specs(after))
    add("probes", _probe_specs(before), _probe_specs(after))
    changes += _env_changes(before.get("env") or [], after["env"], show_env_values, mask)
    return changes


def secret_values_of(frozen: dict) -> list[str]:
    return secret_values(frozen) if frozen.get("env") else []


def _env_changes(before: list[dict], after: list[dict], show_values: bool, mask: Masker) -> list[dict]:
    old = {item["key"]: item for item in before}
    new = {item["key"]: item for item in after}
    changes = []
    for key in sorted(old.keys() | new.keys()):
        was, now = old.get(key), new.get(key)
        if was is not None and now is not None and (was["value"], was["secret"]) == (now["value"], now["secret"]):
            continue
        changes.append({
            "field": f"env.{key}",
            "before": _masked(mask, _env_value(was, show_values)),
            "after": _masked(mask, _env_value(now, show_values)),
            "secret": bool((was and was["secret"]) or (now and now["secret"])),
        })
    return changes


def _env_value(item: dict | None, show_values: bool) -> str | None:
    if item is None:
        return None
    if item["secret"] or not show_values:
        return MASK
    return item["value"]


def _masked(mask: Masker, value):
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, list):
        return [mask(item) if isinstance(item, str) else item for item in value]
    return value


def _service_label(frozen: dict) -> str | None:
    service = frozen.get("service")
    if not service:
        return None
    return f"{service['project']}/{service['environment']}/{service['name']}"


def _port_specs(frozen: dict) -> list[str]:
    return [PortMapping(**port).to_short() for port in frozen.get("ports") or []]


def _volume_specs(frozen: dict) -> list[str]:
    specs = []
    for volume in frozen.get("volumes") or []:
        options = tuple(tuple(pair) for pair in volume.get("options", ()))
        spec = VolumeMount(**{**volume, "options": options}).to_short()
        if options:
            # The short form leaves some options out; show them so a change of
            # options alone is visible.
            spec += " (" + ", ".join(f"{key}={value}" for key, value in options) + ")"
        specs.append(spec)
    return specs


def _probe_specs(frozen: dict) -> list[str]:
    # Inputs frozen before health probes existed have no "probes" key.
    specs = []
    for probe in frozen.get("probes") or []:
        if probe["kind"] == "http":
            spec = f"http :{probe['port']}{probe['path']} expects {probe['expected_status']}"
        else:
            spec = f"tcp :{probe['port']}"
        specs.append(f"{spec} within {probe['timeout_seconds']} s")
    return specs
