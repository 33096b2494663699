"""Every write to deployments: deploy (and later cancel and roll back)."""

import json
import logging

from django.db import IntegrityError, transaction

from accounts import audit, scopes
from accounts.permissions import require_scope
from daoflow.errors import Conflict, InvalidInput

from .freeze import digest, freeze
from .models import Deployment
from .queue import enqueue

logger = logging.getLogger(__name__)


@audit.records_denials("deployment.create")
def deploy(principal, service, *, idempotency_key: str = "", trigger: str = Deployment.TRIGGER_MANUAL) -> tuple[Deployment, bool]:
    """Freeze the service's input into a queued deployment and enqueue it on commit.

    Returns (deployment, created); with an idempotency key that was used
    before for the same input, the earlier deployment and False.
    """
    require_scope(principal, scopes.DEPLOY_START, service)
    server = service.server
    if server is None:
        raise InvalidInput(
            f"Service {service.name!r} has no target server: set --target-server on the service "
            "or a default server on its environment.",
            field="target_server",
        )
    if not server.host_key_approved:
        raise InvalidInput(
            f"Server {server.name!r} has no approved host key, so nothing can be deployed to it; "
            f"approve it with: daoflow server approve-host-key --name {server.name} --fingerprint SHA256:... --yes",
            field="target_server",
        )

    frozen = freeze(service, server)
    input_digest = digest(frozen)
    with transaction.atomic():
        if idempotency_key:
            earlier = Deployment.objects.filter(service=service, idempotency_key=idempotency_key).first()
            if earlier is not None:
                return _replay(earlier, input_digest, idempotency_key), False
        try:
            with transaction.atomic():
                deployment = Deployment.objects.create(
                    service=service,
                    server=server,
                    trigger=trigger,
                    actor=principal.user if getattr(principal.user, "pk", None) else None,
                    actor_label=principal.label,
                    frozen_input=json.dumps(frozen),
                    input_digest=input_digest,
                    idempotency_key=idempotency_key,
                )
        except IntegrityError:
            # Another request with the same key won the race.
            earlier = Deployment.objects.get(service=service, idempotency_key=idempotency_key)
            return _replay(earlier, input_digest, idempotency_key), False
        audit.record(principal, "deployment.create", deployment, scope=scopes.DEPLOY_START,
                     target_label=f"{service} deployment {deployment.pk}",
                     diff={"service": str(service), "server": server.name, "trigger": trigger})
        # Only the id travels through the broker, after the row is committed
        # so the worker can always read it.
        transaction.on_commit(lambda: enqueue(deployment.pk))
    logger.info("deployment=%s service=%s queued server=%s", deployment.pk, service.pk, server.pk)
    return deployment, True


def _replay(earlier: Deployment, input_digest: str, key: str) -> Deployment:
    if earlier.input_digest != input_digest:
        raise Conflict(
            f"Idempotency key {key!r} was used for deployment {earlier.pk} with a different input; "
            "use a new key for a new deployment."
        )
    return earlier
