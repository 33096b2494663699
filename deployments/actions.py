"""Every write to deployments: deploy, roll back and cancel."""

import json
import logging

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts import audit, scopes
from accounts.permissions import require_scope
from daoflow.errors import Conflict, InvalidInput

from . import queue
from .compose import built_image_tag
from .freeze import FROZEN_INPUT_VERSION, digest, freeze
from .models import Deployment

logger = logging.getLogger(__name__)


@audit.records_denials("deployment.create")
def deploy(principal, service, *, idempotency_key: str = "", trigger: str = Deployment.TRIGGER_MANUAL) -> tuple[Deployment, bool]:
    """Freeze the service's input into a queued deployment and enqueue it on commit.

    Returns (deployment, created); with an idempotency key that was used
    before for the same input, the earlier deployment and False.
    """
    require_scope(principal, scopes.DEPLOY_START, service)
    server = deployable_server(service)
    return _create(
        principal, service, server, freeze(service, server),
        trigger=trigger, idempotency_key=idempotency_key, scope=scopes.DEPLOY_START,
    )


def deployable_server(service):
    """Return the service's target server, or raise InvalidInput saying how to make it deployable."""
    server = target_server_of(service)
    _require_approved_host_key(server)
    return server


def target_server_of(service):
    """Return the server the service deploys to, or raise InvalidInput when none is set."""
    server = service.server
    if server is None:
        raise InvalidInput(
            f"Service {service.name!r} has no target server: set --target-server on the service "
            "or a default server on its environment.",
            field="target_server",
        )
    return server


def _require_approved_host_key(server) -> None:
    if not server.host_key_approved:
        raise InvalidInput(
            f"Server {server.name!r} has no approved host key, so nothing can be deployed to it; "
            f"approve it with: daoflow server approve-host-key --name {server.name} --fingerprint SHA256:... --yes",
            field="target_server",
        )


@audit.records_denials("deployment.rollback")
def rollback(principal, service, target: Deployment, *, idempotency_key: str = "") -> Deployment:
    """Queue a new deployment that replays the frozen input of an earlier succeeded one.

    History is never edited: the rollback is a deployment of its own, with
    trigger "rollback" and rollback_of pointing at the target. It runs on the
    target's server with the target's image, compose files and environment
    values, whatever the service's rows contain now.
    """
    require_scope(principal, scopes.DEPLOY_ROLLBACK, service)
    frozen = rollback_input(service, target)
    _require_approved_host_key(target.server)
    deployment, _ = _create(
        principal, service, target.server, frozen,
        trigger=Deployment.TRIGGER_ROLLBACK, rollback_of=target,
        idempotency_key=idempotency_key, scope=scopes.DEPLOY_ROLLBACK,
    )
    return deployment


def rollback_input(service, target: Deployment) -> dict:
    """Build the frozen input of a rollback to `target`, or raise InvalidInput if `target` can't be one."""
    fix = f"choose a succeeded deployment listed by `daoflow rollback --service {service.name}`."
    if target.service_id != service.pk:
        raise InvalidInput(
            f"Deployment {target.pk} belongs to another service, not to {service}, so it cannot be "
            f"a rollback target; {fix}",
            field="target",
        )
    if target.conclusion != Deployment.CONCLUSION_SUCCEEDED:
        raise InvalidInput(
            f"Deployment {target.pk} cannot be a rollback target because its outcome is "
            f"{target.outcome!r}, and only succeeded deployments can be; {fix}",
            field="target",
        )
    frozen = target.input
    if frozen.get("version") != FROZEN_INPUT_VERSION:
        raise InvalidInput(
            f"Deployment {target.pk} was recorded in input format {frozen.get('version')!r}, "
            f"which this version cannot replay; {fix}",
            field="target",
        )

    if frozen["source_type"] == "dockerfile" and not frozen.get("rollback_image"):
        # The target built its image under a tag of its own. The rollback
        # starts that image again instead of cloning and building the branch,
        # because the branch may have moved since. A rollback of a rollback
        # keeps the tag.
        frozen["rollback_image"] = built_image_tag({**frozen, "deployment_id": target.pk})
    return frozen


def _create(principal, service, server, frozen: dict, *, trigger: str, idempotency_key: str, scope: str,
            rollback_of: Deployment | None = None) -> tuple[Deployment, bool]:
    input_digest = digest(frozen)
    action = "deployment.rollback" if trigger == Deployment.TRIGGER_ROLLBACK else "deployment.create"
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
                    rollback_of=rollback_of,
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
        diff = {"service": str(service), "server": server.name, "trigger": trigger}
        if rollback_of is not None:
            diff["rollback_of"] = rollback_of.pk
        audit.record(principal, action, deployment, scope=scope,
                     target_label=f"{service} deployment {deployment.pk}", diff=diff)
        # Only the id travels through the broker, after the row is committed
        # so the worker can always read it.
        transaction.on_commit(lambda: queue.enqueue(deployment.pk))
    logger.info("deployment=%s service=%s queued server=%s trigger=%s", deployment.pk, service.pk, server.pk, trigger)
    return deployment, True


def _replay(earlier: Deployment, input_digest: str, key: str) -> Deployment:
    if earlier.input_digest != input_digest:
        raise Conflict(
            f"Idempotency key {key!r} was used for deployment {earlier.pk} with a different input; "
            "use a new key for a new deployment."
        )
    return earlier


@audit.records_denials("deployment.cancel")
def cancel(principal, deployment: Deployment) -> Deployment:
    """Cancel a queued deployment at once, or ask the worker to stop a running one.

    A running deployment is only marked: its worker checks the mark while a
    command runs, stops the command and concludes the deployment cancelled.
    Raises Conflict for a deployment that has already finished.
    """
    require_scope(principal, scopes.DEPLOY_CANCEL, deployment.service)
    now = timezone.now()
    rows = Deployment.objects.filter(pk=deployment.pk)
    with transaction.atomic():
        # Conditional updates in the order a deployment moves (queued, then
        # running), so a worker claiming or concluding it between the two
        # can never be overwritten.
        if rows.filter(status=Deployment.STATUS_QUEUED).update(
            status=Deployment.STATUS_COMPLETED, conclusion=Deployment.CONCLUSION_CANCELLED,
            finished_at=now, cancel_requested_at=now, cancelled_by=principal.label,
        ):
            status_before, effect = Deployment.STATUS_QUEUED, "cancelled"
            # This deployment may have been the one that others of the
            # service or server waited for.
            transaction.on_commit(
                lambda: queue.enqueue_waiting(deployment.service_id, deployment.server_id)
            )
        elif rows.filter(status=Deployment.STATUS_RUNNING, cancel_requested_at__isnull=True).update(
            cancel_requested_at=now, cancelled_by=principal.label,
        ):
            status_before, effect = Deployment.STATUS_RUNNING, "cancel requested"
        else:
            current = rows.get()
            if current.is_finished:
                raise _finished_conflict(current)
            # A running deployment whose cancellation was already requested:
            # asking again changes nothing.
            return current
        audit.record(principal, "deployment.cancel", deployment, scope=scopes.DEPLOY_CANCEL,
                     target_label=f"{deployment.service} deployment {deployment.pk}",
                     diff={"status_before": status_before, "effect": effect})
    logger.info("deployment=%s service=%s %s by=%s", deployment.pk, deployment.service_id, effect, principal.label)
    deployment.refresh_from_db()
    return deployment


def cancel_effect(deployment: Deployment) -> str:
    """Describe what cancel() would do to the deployment as loaded, for a dry run; raise Conflict if it has finished."""
    if deployment.status == Deployment.STATUS_QUEUED:
        return "cancelled at once"
    if deployment.status == Deployment.STATUS_RUNNING:
        return "stopped by its worker"
    raise _finished_conflict(deployment)


def _finished_conflict(deployment: Deployment) -> Conflict:
    return Conflict(
        f"Deployment {deployment.pk} already finished ({deployment.outcome}), so there is nothing "
        "to cancel; to undo it, roll back with `daoflow rollback`."
    )
