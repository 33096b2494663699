"""Roles, API tokens and the append-only audit trail."""

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone

from .scopes import ROLE_CHOICES, VIEWER

TOKEN_PREFIX = "dfl_"


class Membership(models.Model):
    """A user's role in this installation."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="membership"
    )
    role = models.CharField(max_length=20, choices=ROLE_CHOICES, default=VIEWER)

    def __str__(self) -> str:
        return f"{self.user} ({self.role})"


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class APITokenQuerySet(models.QuerySet):
    def active(self):
        now = timezone.now()
        return self.filter(revoked_at__isnull=True).filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now)
        )


class APIToken(models.Model):
    """A bearer token: shown once at creation, stored only as its SHA-256 hash."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, help_text="The first characters, to recognise a token.")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = APITokenQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "name"], name="unique_token_name_per_user"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @staticmethod
    def generate() -> str:
        return TOKEN_PREFIX + secrets.token_urlsafe(32)

    @property
    def is_active(self) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > timezone.now()


class AuditEntryQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise PermissionError("Audit entries are append-only.")

    def bulk_create(self, objs, *args, **kwargs):
        # An upsert would overwrite existing entries.
        if kwargs.get("update_conflicts") or kwargs.get("ignore_conflicts"):
            raise PermissionError("Audit entries are append-only: no upserts.")
        return super().bulk_create(objs, *args, **kwargs)

    def delete(self):
        raise PermissionError("Audit entries are append-only.")


class AuditEntry(models.Model):
    """One write or denied attempt. Rows are never updated or deleted."""

    OUTCOME_SUCCESS = "success"
    OUTCOME_DENIED = "denied"
    OUTCOME_FAILED = "failed"
    OUTCOME_CHOICES = [
        (OUTCOME_SUCCESS, "Success"),
        (OUTCOME_DENIED, "Denied"),
        (OUTCOME_FAILED, "Failed"),
    ]

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    actor_label = models.CharField(max_length=200)
    token_name = models.CharField(max_length=100, blank=True)
    action = models.CharField(max_length=60, db_index=True)
    target_type = models.CharField(max_length=60)
    target_id = models.CharField(max_length=60, blank=True)
    target_label = models.CharField(max_length=300, blank=True)
    scope = models.CharField(max_length=40, blank=True)
    outcome = models.CharField(max_length=10, choices=OUTCOME_CHOICES, default=OUTCOME_SUCCESS)
    diff = models.JSONField(default=dict, blank=True)
    detail = models.TextField(blank=True)

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_label} {self.action} {self.target_label}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise PermissionError("Audit entries are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("Audit entries are append-only.")
