"""Reading the audit trail with filters, shared by `daoflow audit` and the API."""

import re
from datetime import datetime, timedelta

from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from daoflow.errors import InvalidInput

from .models import AuditEntry

MAX_LIMIT = 1000
RELATIVE = re.compile(r"^(\d+)([mhd])$")
UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400}


def parse_since(text: str):
    match = RELATIVE.match(text.strip())
    if match:
        try:
            return timezone.now() - timedelta(seconds=int(match.group(1)) * UNIT_SECONDS[match.group(2)])
        except (OverflowError, ValueError):
            raise InvalidInput(f"--since: {text!r} reaches back further than any date; use a smaller number.",
                               field="since") from None
    return parse_point_in_time(text, "--since", "30m, 24h, 7d, 2027-01-31 or 2027-01-31T12:00:00Z")


def parse_point_in_time(text: str, flag: str, forms: str):
    """Parse an ISO date or date-time (naive ones in the current time zone); raise InvalidInput naming `flag`."""
    moment = parse_moment(text)
    if moment is None:
        day = parse_day(text)
        if day is None:
            raise InvalidInput(f"{flag}: {text!r} is not a date or time; use {forms}.", field=flag.lstrip("-"))
        moment = datetime(day.year, day.month, day.day)
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, timezone.get_current_timezone())
    return moment


def entry_dict(entry: AuditEntry) -> dict:
    return {
        "id": entry.pk,
        "time": entry.created_at,
        "actor": entry.actor_label,
        "token": entry.token_name or None,
        "action": entry.action,
        "target_type": entry.target_type,
        "target_id": entry.target_id,
        "target": entry.target_label,
        "scope": entry.scope,
        "outcome": entry.outcome,
        "diff": entry.diff,
        "detail": entry.detail,
    }


def filter_entries(entries, *, action=None, actor=None, target=None, since=None, outcome=None):
    """Apply the audit filters shared by `daoflow audit` and the API."""
    if action:
        # "service" or "service." selects every service action; "service.update" only that one.
        entries = entries.filter(Q(action=action) | Q(action__startswith=action.rstrip(".") + "."))
    if actor:
        entries = entries.filter(Q(actor_label__icontains=actor) | Q(actor_user__username=actor))
    if target:
        entries = entries.filter(Q(target_label__icontains=target) | Q(target_type=target))
    if since:
        entries = entries.filter(created_at__gte=parse_since(since))
    if outcome:
        if outcome not in dict(AuditEntry.OUTCOME_CHOICES):
            raise InvalidInput(f"--outcome: {outcome!r} is not an outcome; use success, denied or failed.",
                               field="outcome")
        entries = entries.filter(outcome=outcome)
    return entries


def parse_moment(text: str):
    try:
        return parse_datetime(text)
    except ValueError:  # well formed but impossible, such as month 13
        return None


def parse_day(text: str):
    try:
        return parse_date(text)
    except ValueError:
        return None
