from accounts import scopes
from accounts.permissions import require_scope
from daoflow.errors import InvalidInput, NotFound
from services.models import Service

from .models import Deployment


def find_deployment(principal, deployment_id, scope: str = scopes.DEPLOY_READ) -> Deployment:
    try:
        number = int(deployment_id)
    except (TypeError, ValueError):
        raise InvalidInput(f"--deployment: {deployment_id!r} is not a deployment id (a number).") from None
    readable = Service.objects.for_scope(principal, scopes.SERVICE_READ)
    deployment = (
        Deployment.objects.select_related("service__project", "server")
        .filter(pk=number, service__in=readable)
        .first()
    )
    if deployment is None:
        raise NotFound(f"Deployment {number} not found; list deployments with `daoflow deployments --service NAME`.")
    require_scope(principal, scope, deployment.service)
    return deployment
