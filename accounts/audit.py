"""Writing the audit trail: one entry per write or denied attempt."""

import logging

from .models import AuditEntry

logger = logging.getLogger(__name__)

MASK = "********"


def record(
    principal,
    action: str,
    target=None,
    *,
    scope: str = "",
    outcome: str = AuditEntry.OUTCOME_SUCCESS,
    diff: dict | None = None,
    detail: str = "",
    target_type: str = "",
    target_label: str = "",
) -> AuditEntry:
    """Append an entry. Callers pass diffs with secret values already masked."""
    entry = AuditEntry.objects.create(
        actor_user=principal.user if getattr(principal.user, "pk", None) else None,
        actor_label=principal.label,
        token_name=principal.token.name if principal.token is not None else "",
        action=action,
        target_type=target_type or (type(target).__name__.lower() if target is not None else ""),
        target_id=str(target.pk) if target is not None and target.pk is not None else "",
        target_label=target_label or (str(target) if target is not None else ""),
        scope=scope,
        outcome=outcome,
        diff=diff or {},
        detail=detail,
    )
    logger.info(
        "audit action=%s target=%s:%s actor=%s outcome=%s",
        action,
        entry.target_type,
        entry.target_id,
        entry.actor_label,
        outcome,
    )
    return entry
