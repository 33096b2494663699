"""Recording a running deployment: steps, masked log lines, heartbeat and cancellation checks."""

import logging
import time

from django.conf import settings
from django.utils import timezone

from .masking import Masker
from .models import Deployment, DeploymentLogLine, DeploymentStep

logger = logging.getLogger(__name__)

FLUSH_EVERY_SECONDS = 0.5
FLUSH_EVERY_LINES = 100
# The heartbeat is written at least four times per DAOFLOW_HEARTBEAT_TIMEOUT,
# so the watchdog never mistakes a slow database write for a dead worker.
MAX_HEARTBEAT_EVERY_SECONDS = 5
CANCEL_CHECK_EVERY_SECONDS = 2
MAX_LINE_LENGTH = 8000


class Recorder:
    """Buffers output lines of the current step and writes them in small batches.

    Lines are masked before they are buffered, so no secret value is ever
    held in a row, a log record or an exception message built from output.
    """

    def __init__(self, deployment: Deployment, masker: Masker):
        self.deployment = deployment
        self.mask = masker
        self.step: DeploymentStep | None = None
        self._buffer: list[DeploymentLogLine] = []
        self._last_flush = time.monotonic()
        self._last_heartbeat = 0.0
        self._last_cancel_check = 0.0
        self._cancel_requested = False
        self.heartbeat_every = min(MAX_HEARTBEAT_EVERY_SECONDS, max(0.5, settings.DAOFLOW_HEARTBEAT_TIMEOUT / 4))
        # True once the deployment was concluded by someone else (the
        # watchdog gave up on this worker): the run must stop and write nothing.
        self.superseded = False

    def start_step(self, step: DeploymentStep) -> None:
        self.flush()
        self.step = step
        step.status = DeploymentStep.STATUS_RUNNING
        step.started_at = timezone.now()
        step.save(update_fields=["status", "started_at"])
        self.tick(force=True)

    def finish_step(self, status: str, detail: str = "") -> None:
        self.flush()
        step = self.step
        step.status = status
        step.finished_at = timezone.now()
        step.detail = self.mask(detail)[:4000]
        step.save(update_fields=["status", "finished_at", "detail"])
        self.tick(force=True)

    def line(self, stream: str, text: str) -> str:
        masked = self.mask(text)[:MAX_LINE_LENGTH]
        self._buffer.append(
            DeploymentLogLine(deployment=self.deployment, step=self.step, stream=stream, text=masked)
        )
        now = time.monotonic()
        if len(self._buffer) >= FLUSH_EVERY_LINES or now - self._last_flush >= FLUSH_EVERY_SECONDS:
            self.flush()
        return masked

    def system(self, text: str) -> None:
        self.line(DeploymentLogLine.STREAM_SYSTEM, text)

    def flush(self) -> None:
        if self._buffer:
            DeploymentLogLine.objects.bulk_create(self._buffer)
            self._buffer = []
        self._last_flush = time.monotonic()

    def tick(self, force: bool = False) -> None:
        """Flush buffered lines and write the heartbeat when due; called about once a second while a command runs."""
        now = time.monotonic()
        if force or now - self._last_flush >= FLUSH_EVERY_SECONDS:
            self.flush()
        if force or now - self._last_heartbeat >= self.heartbeat_every:
            self._last_heartbeat = now
            Deployment.objects.filter(pk=self.deployment.pk).update(heartbeat_at=timezone.now())

    def cancel_requested(self, force: bool = False) -> bool:
        """Whether the run must stop: a cancellation was requested, or the deployment is no longer running."""
        now = time.monotonic()
        due = force or now - self._last_cancel_check >= CANCEL_CHECK_EVERY_SECONDS
        if not self._cancel_requested and due:
            self._last_cancel_check = now
            row = Deployment.objects.filter(pk=self.deployment.pk).values("status", "cancel_requested_at").first()
            self.superseded = row is None or row["status"] != Deployment.STATUS_RUNNING
            self._cancel_requested = self.superseded or row["cancel_requested_at"] is not None
        return self._cancel_requested

    def mark_touched(self) -> None:
        if not self.deployment.touched_target:
            self.deployment.touched_target = True
            Deployment.objects.filter(pk=self.deployment.pk).update(touched_target=True)


def touch_heartbeat(deployment_id: int) -> None:
    Deployment.objects.filter(pk=deployment_id).update(heartbeat_at=timezone.now())

