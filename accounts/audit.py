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


def mask_secret_values(diff: dict, secret_keys) -> dict:
    """Return a copy of `diff` with the value of every key in `secret_keys` replaced by the mask."""
    secret_keys = set(secret_keys)
    return {key: (MASK if key in secret_keys and value is not None else value) for key, value in diff.items()}


def record_denial(principal, error, action: str, target=None) -> AuditEntry | None:
    """Append the entry of a denied attempt, once per error.

    Call it where no transaction that is about to roll back is open (after
    the failed request's atomic blocks have exited), so the entry survives.
    """
    if principal is None or getattr(error, "audit_recorded", False):
        return None
    target = target if target is not None else getattr(error, "target_object", None)
    if target is not None and getattr(target, "pk", None) is None:
        target = None
    entry = record(
        principal,
        getattr(error, "audit_action", "") or action,
        target,
        scope=getattr(error, "required", ""),
        outcome=AuditEntry.OUTCOME_DENIED,
        detail=error.message,
    )
    error.audit_recorded = True
    return entry


def records_denials(action: str):
    """Decorate an action function so a ScopeDenied it raises is written to the audit trail.

    The entry is written at once when no transaction is open. Inside one it
    would roll back with the caller's work, so the error only carries the
    action name. The boundary that catches it (the API's exception handler,
    the command line's `fail`, the admin) writes the entry after the
    transaction has ended.
    """
    from functools import wraps

    from django.db import connection

    from daoflow.errors import ScopeDenied

    def decorate(function):
        @wraps(function)
        def wrapper(principal, *args, **kwargs):
            try:
                return function(principal, *args, **kwargs)
            except ScopeDenied as error:
                if not getattr(error, "audit_action", ""):
                    error.audit_action = action
                if not connection.in_atomic_block:
                    record_denial(principal, error, action)
                raise

        return wrapper

    return decorate
