"""Deployment records: one immutable attempt to release one service to one server."""

import json

from django.conf import settings
from django.db import models
from django.utils import timezone
from fernet_fields import EncryptedTextField


class Deployment(models.Model):
    STATUS_QUEUED = "queued"
    STATUS_RUNNING = "running"
    STATUS_COMPLETED = "completed"
    STATUS_CHOICES = [
        (STATUS_QUEUED, "Queued"),
        (STATUS_RUNNING, "Running"),
        (STATUS_COMPLETED, "Completed"),
    ]
    ACTIVE_STATUSES = (STATUS_QUEUED, STATUS_RUNNING)

    CONCLUSION_SUCCEEDED = "succeeded"
    CONCLUSION_FAILED = "failed"
    CONCLUSION_CANCELLED = "cancelled"
    CONCLUSION_CHOICES = [
        (CONCLUSION_SUCCEEDED, "Succeeded"),
        (CONCLUSION_FAILED, "Failed"),
        (CONCLUSION_CANCELLED, "Cancelled"),
    ]

    TRIGGER_MANUAL = "manual"
    TRIGGER_ROLLBACK = "rollback"
    TRIGGER_CHOICES = [(TRIGGER_MANUAL, "Manual"), (TRIGGER_ROLLBACK, "Rollback")]

    service = models.ForeignKey(
        "services.Service", on_delete=models.CASCADE, related_name="deployments"
    )
    server = models.ForeignKey(
        "services.Server", on_delete=models.PROTECT, related_name="deployments"
    )
    status = models.CharField(max_length=10, choices=STATUS_CHOICES, default=STATUS_QUEUED)
    conclusion = models.CharField(max_length=10, choices=CONCLUSION_CHOICES, blank=True)
    trigger = models.CharField(max_length=10, choices=TRIGGER_CHOICES, default=TRIGGER_MANUAL)
    rollback_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="rollbacks"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    actor_label = models.CharField(max_length=200)
    # The complete input of the attempt (compose documents, image, env values,
    # ports, volumes, target), frozen at creation and encrypted because it
    # contains secret values.
    frozen_input = EncryptedTextField()
    # SHA-256 of the frozen input without secrets: compares two deployments'
    # inputs without decrypting them.
    input_digest = models.CharField(max_length=64, blank=True)
    idempotency_key = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    failed_step = models.CharField(max_length=20, blank=True)
    failure_reason = models.TextField(blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.CharField(max_length=200, blank=True)
    # Set when the first command ran on the target: a cancellation before it
    # leaves the service state as the previous deployment made it.
    touched_target = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["service", "-created_at"], name="deployment_service_recent"),
            models.Index(fields=["status", "created_at"], name="deployment_status_age"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["service", "idempotency_key"],
                condition=~models.Q(idempotency_key=""),
                name="unique_idempotency_key_per_service",
            ),
        ]

    def __str__(self) -> str:
        return f"deployment {self.pk} of {self.service_id}"

    @property
    def input(self) -> dict:
        return json.loads(self.frozen_input)

    @property
    def is_finished(self) -> bool:
        return self.status == self.STATUS_COMPLETED

    @property
    def outcome(self) -> str:
        return self.conclusion or self.status

    @property
    def queue_position(self) -> int | None:
        """Place among the queued deployments of the service, 1 starting next; None unless queued.

        Queued deployments of one service are claimed in id order (see
        queue.claim), so the place is 1 + the earlier queued ones.
        """
        if self.status != self.STATUS_QUEUED:
            return None
        earlier = Deployment.objects.filter(
            service_id=self.service_id, status=self.STATUS_QUEUED, pk__lt=self.pk
        ).count()
        return earlier + 1


class DeploymentStep(models.Model):
    STATUS_PENDING = "pending"
    STATUS_RUNNING = "running"
    STATUS_SUCCEEDED = "succeeded"
    STATUS_FAILED = "failed"
    STATUS_SKIPPED = "skipped"
    STATUS_CANCELLED = "cancelled"
    STATUS_CHOICES = [
        (s, s.capitalize())
        for s in (STATUS_PENDING, STATUS_RUNNING, STATUS_SUCCEEDED, STATUS_FAILED, STATUS_SKIPPED, STATUS_CANCELLED)
    ]

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=20)
    status = models.CharField(max_length=10, choices=STATUS_CHOICES, default=STATUS_PENDING)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    detail = models.TextField(blank=True)

    class Meta:
        ordering = ["deployment", "position"]
        constraints = [
            models.UniqueConstraint(fields=["deployment", "position"], name="unique_step_position"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class DeploymentLogLine(models.Model):
    STREAM_STDOUT = "stdout"
    STREAM_STDERR = "stderr"
    STREAM_SYSTEM = "system"
    STREAM_CHOICES = [(s, s) for s in (STREAM_STDOUT, STREAM_STDERR, STREAM_SYSTEM)]

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="log_lines")
    step = models.ForeignKey(
        DeploymentStep, null=True, blank=True, on_delete=models.CASCADE, related_name="log_lines"
    )
    stream = models.CharField(max_length=6, choices=STREAM_CHOICES)
    text = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.text[:80]


class HealthProbe(models.Model):
    """An HTTP or TCP check that a deployment's health step runs from the worker.

    The probe connects to a port published on the deployment's target host:
    127.0.0.1 for the local engine, the server's SSH host otherwise. Only the
    port and the path are configurable, so a probe cannot be pointed at any
    other address.
    """

    KIND_HTTP = "http"
    KIND_TCP = "tcp"
    KIND_CHOICES = [(KIND_HTTP, "HTTP GET"), (KIND_TCP, "TCP connect")]

    service = models.ForeignKey(
        "services.Service", on_delete=models.CASCADE, related_name="health_probes"
    )
    kind = models.CharField(max_length=4, choices=KIND_CHOICES, default=KIND_HTTP)
    port = models.PositiveIntegerField(help_text="Published port on the target host.")
    path = models.CharField(max_length=500, blank=True, help_text="Request path of an HTTP probe.")
    expected_status = models.PositiveSmallIntegerField(default=200)
    timeout_seconds = models.PositiveIntegerField(
        default=60, help_text="Seconds the health step keeps probing before the deployment fails."
    )
    interval_seconds = models.FloatField(default=1.0, help_text="Seconds between two attempts.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["port"]
        constraints = [
            models.UniqueConstraint(fields=["service", "port"], name="unique_probe_port_per_service"),
        ]

    def __str__(self) -> str:
        if self.kind == self.KIND_HTTP:
            return f"http :{self.port}{self.path or '/'} -> {self.expected_status}"
        return f"tcp :{self.port}"

    def frozen(self) -> dict:
        return {
            "kind": self.kind,
            "port": self.port,
            "path": self.path or "/",
            "expected_status": self.expected_status,
            "timeout_seconds": self.timeout_seconds,
            "interval_seconds": self.interval_seconds,
        }
