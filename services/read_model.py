"""The service read model: state derived from the latest deployment, and endpoints.

State is never stored. It follows the latest deployment that counts: one
cancelled before it ran anything on the target leaves the state as the
previous deployment made it.
"""

from deployments.models import Deployment

HEALTHY = "healthy"
DEGRADED = "degraded"
UPDATING = "updating"
NOT_DEPLOYED = "not_deployed"

STATE_LABELS = {
    HEALTHY: "Running / Healthy",
    DEGRADED: "Degraded",
    UPDATING: "Updating",
    NOT_DEPLOYED: "Not deployed",
}


def state_of(latest: Deployment | None) -> str:
    if latest is None:
        return NOT_DEPLOYED
    if latest.status in Deployment.ACTIVE_STATUSES:
        return UPDATING
    if latest.conclusion == Deployment.CONCLUSION_SUCCEEDED:
        return HEALTHY
    return DEGRADED


def attach_latest_deployments(services) -> None:
    """Set `latest_deployment` on services loaded with `with_read_model()`, in one query."""
    ids = [s.latest_deployment_id for s in services if getattr(s, "latest_deployment_id", None)]
    by_id = Deployment.objects.in_bulk(ids) if ids else {}
    for service in services:
        service.latest_deployment = by_id.get(getattr(service, "latest_deployment_id", None))


def latest_deployment_of(service) -> Deployment | None:
    if hasattr(service, "latest_deployment"):
        return service.latest_deployment
    return counted_deployments().filter(service=service).order_by("-created_at", "-id").first()


def counted_deployments():
    """Deployments that decide a service's state."""
    return Deployment.objects.exclude(conclusion=Deployment.CONCLUSION_CANCELLED, touched_target=False)


def endpoint_state(latest: Deployment | None) -> str:
    if latest is None:
        return "unavailable"
    if latest.status in Deployment.ACTIVE_STATUSES:
        return "pending"
    return "healthy" if latest.conclusion == Deployment.CONCLUSION_SUCCEEDED else "failed"


def endpoints(service, latest: Deployment | None) -> list[dict]:
    """Published ports as addresses an operator can reach, with the state of the deployment behind them.

    NOTE: the state comes from the latest deployment's health step, not from
    a probe at read time. A container that died since then still reads healthy.
    """
    server = service.server
    host = "127.0.0.1" if server is None or server.is_local else server.host
    state = endpoint_state(latest)
    result = []
    for port in service.ports.all():
        if not port.published:
            continue
        address = port.host_ip or host
        if ":" in address:
            address = f"[{address}]"
        result.append({
            "type": "port",
            "address": f"{address}:{port.published}",
            "url": f"http://{address}:{port.published}" if port.protocol == "tcp" else "",
            "protocol": port.protocol,
            "target": port.target,
            "state": state,
        })
    return result
