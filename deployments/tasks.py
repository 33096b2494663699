"""Celery tasks: ids in, one domain call, nothing secret through the broker."""

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from . import queue, runner
from .models import Deployment
from .queue import conclude

logger = logging.getLogger(__name__)

WORKER_LOST_REASON = "worker stopped reporting progress"


@shared_task(acks_late=True, ignore_result=True)
def run_deployment(deployment_id: int) -> str:
    # Idempotent: claim() is a conditional update, so a redelivered task, or
    # one sent twice, runs the deployment at most once.
    return runner.execute(deployment_id, worker=run_deployment.request.hostname or "")


@shared_task(ignore_result=True)
def watchdog() -> dict:
    """Fail deployments whose worker died and re-enqueue queued ones whose task was lost.

    Safe to run at any time and in several processes at once: conclude() and
    claim() are conditional updates, so a deployment is failed once and a
    task enqueued twice runs once.
    """
    now = timezone.now()
    stale = Deployment.objects.filter(
        status=Deployment.STATUS_RUNNING,
        heartbeat_at__lt=now - timedelta(seconds=settings.DAOFLOW_HEARTBEAT_TIMEOUT),
    )
    failed = 0
    for deployment in stale:
        step = deployment.steps.filter(status="running").values_list("name", flat=True).first() or ""
        if conclude(deployment, Deployment.CONCLUSION_FAILED, failed_step=step, reason=WORKER_LOST_REASON):
            logger.warning("deployment=%s service=%s failed: %s", deployment.pk, deployment.service_id, WORKER_LOST_REASON)
            failed += 1

    waiting = Deployment.objects.filter(
        status=Deployment.STATUS_QUEUED, created_at__lt=now - timedelta(seconds=settings.DAOFLOW_REQUEUE_AFTER)
    ).order_by("pk")
    requeued = 0
    seen_services: set[int] = set()
    # Only the first queued deployment of a service can be claimed; the others
    # are enqueued when it concludes.
    for deployment in waiting:
        if deployment.service_id in seen_services:
            continue
        seen_services.add(deployment.service_id)
        queue.enqueue(deployment.pk)
        requeued += 1
    if requeued:
        logger.info("watchdog enqueued %s waiting deployments again", requeued)
    return {"failed": failed, "requeued": requeued}
