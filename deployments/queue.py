"""Claiming and concluding deployments: one running deployment per service, a limit per server.

A deployment moves queued -> running only through `claim()`, inside a
transaction that holds the service's row lock and then the server's. Every
worker, however many there are, goes through that lock, so two deployments of
one service never run at once and a task delivered twice runs once.
"""

import logging

from django.db import transaction
from django.utils import timezone

from .models import Deployment, DeploymentStep

logger = logging.getLogger(__name__)


def plan_steps(frozen: dict) -> list[str]:
    source_type = frozen["source_type"]
    if source_type == "image":
        return ["resolve", "pull", "start", "health"]
    if source_type == "dockerfile":
        return ["clone", "resolve", "build", "start", "health"]
    steps = ["clone"] if frozen["repository_url"] else []
    return steps + ["resolve", "build", "pull", "start", "health"]


def claim(deployment_id: int, worker: str) -> Deployment | None:
    """Move a queued deployment to running, or return None if it must wait or is gone."""
    from services.models import Server, Service

    with transaction.atomic():
        deployment = Deployment.objects.filter(pk=deployment_id).first()
        if deployment is None or deployment.status != Deployment.STATUS_QUEUED:
            return None

        # claim() is the only code that locks both rows, and always service first,
        # then server, so two claims never deadlock.
        Service.objects.select_for_update().get(pk=deployment.service_id)
        server = Server.objects.select_for_update().get(pk=deployment.server_id)

        if deployment.cancel_requested_at is not None:
            return None
        running = Deployment.objects.filter(status=Deployment.STATUS_RUNNING)
        if running.filter(service_id=deployment.service_id).exists():
            logger.info("deployment=%s waits: service=%s is busy", deployment.pk, deployment.service_id)
            return None
        earlier = Deployment.objects.filter(
            service_id=deployment.service_id, status=Deployment.STATUS_QUEUED, pk__lt=deployment.pk
        )
        if earlier.exists():
            logger.info("deployment=%s waits for an earlier deployment of service=%s", deployment.pk, deployment.service_id)
            return None
        if running.filter(server_id=server.pk).count() >= server.max_concurrent_deployments:
            logger.info("deployment=%s waits: server=%s is at its limit", deployment.pk, server.pk)
            return None

        now = timezone.now()
        updated = Deployment.objects.filter(pk=deployment.pk, status=Deployment.STATUS_QUEUED).update(
            status=Deployment.STATUS_RUNNING, started_at=now, heartbeat_at=now, worker=worker[:200]
        )
        if not updated:
            return None
        DeploymentStep.objects.bulk_create(
            DeploymentStep(deployment=deployment, position=position, name=name)
            for position, name in enumerate(plan_steps(deployment.input))
        )
    deployment.refresh_from_db()
    return deployment


def conclude(deployment: Deployment, conclusion: str, *, failed_step: str = "", reason: str = "") -> bool:
    """Mark a running deployment completed; False if someone else concluded it first."""
    with transaction.atomic():
        updated = Deployment.objects.filter(pk=deployment.pk, status=Deployment.STATUS_RUNNING).update(
            status=Deployment.STATUS_COMPLETED,
            conclusion=conclusion,
            finished_at=timezone.now(),
            failed_step=failed_step,
            failure_reason=reason[:4000],
        )
        unfinished = DeploymentStep.objects.filter(
            deployment=deployment, status__in=[DeploymentStep.STATUS_PENDING, DeploymentStep.STATUS_RUNNING]
        )
        if updated:
            unfinished.filter(status=DeploymentStep.STATUS_RUNNING).update(
                status=DeploymentStep.STATUS_CANCELLED
                if conclusion == Deployment.CONCLUSION_CANCELLED
                else DeploymentStep.STATUS_FAILED,
                finished_at=timezone.now(),
            )
            unfinished.filter(status=DeploymentStep.STATUS_PENDING).update(status=DeploymentStep.STATUS_SKIPPED)
            transaction.on_commit(lambda: enqueue_waiting(deployment.service_id, deployment.server_id))
    logger.info(
        "deployment=%s service=%s concluded=%s step=%s", deployment.pk, deployment.service_id, conclusion, failed_step
    )
    return bool(updated)


def next_waiting(service_id: int, server_id: int) -> list[int]:
    """Return the deployments that may be claimable now that one finished: the next of the service and of the server."""
    queued = Deployment.objects.filter(status=Deployment.STATUS_QUEUED).order_by("pk")
    ids = list(queued.filter(service_id=service_id).values_list("pk", flat=True)[:1])
    ids += list(queued.filter(server_id=server_id).values_list("pk", flat=True)[:5])
    return list(dict.fromkeys(ids))


def enqueue(deployment_id: int) -> None:
    """Send the deployment's task; a broker that is down leaves it to the watchdog.

    The deployment row is committed before this runs, so a failed send loses
    nothing: the watchdog enqueues queued deployments again after
    DAOFLOW_REQUEUE_AFTER seconds.
    """
    from kombu.exceptions import OperationalError

    from .tasks import run_deployment

    try:
        run_deployment.delay(deployment_id)
    except (OperationalError, OSError) as error:
        logger.warning("deployment=%s could not be sent to the broker, the watchdog will retry: %s",
                       deployment_id, error)


def enqueue_waiting(service_id: int, server_id: int) -> None:
    for deployment_id in next_waiting(service_id, server_id):
        enqueue(deployment_id)
