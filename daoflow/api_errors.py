"""DRF errors in the same JSON shape as the command line: {"ok": false, "error", "code"}."""

import logging

from django.db import DatabaseError, DataError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from .errors import DaoflowError, ScopeDenied

logger = logging.getLogger(__name__)

CODES = {
    status.HTTP_400_BAD_REQUEST: "INVALID_INPUT",
    status.HTTP_401_UNAUTHORIZED: "UNAUTHENTICATED",
    status.HTTP_403_FORBIDDEN: "PERMISSION_DENIED",
    status.HTTP_404_NOT_FOUND: "NOT_FOUND",
    status.HTTP_405_METHOD_NOT_ALLOWED: "METHOD_NOT_ALLOWED",
    status.HTTP_406_NOT_ACCEPTABLE: "NOT_ACCEPTABLE",
    status.HTTP_409_CONFLICT: "CONFLICT",
    status.HTTP_415_UNSUPPORTED_MEDIA_TYPE: "UNSUPPORTED_MEDIA_TYPE",
    status.HTTP_429_TOO_MANY_REQUESTS: "THROTTLED",
}


UNAUTHENTICATED_HINT = (
    " Send the header 'Authorization: Bearer dfl_...' with a token from `daoflow token create`, "
    "or sign in at /api-auth/login/."
)


class RejectUnknownFields:
    """A serializer mixin that rejects keys it does not accept, instead of ignoring them.

    A misspelt or read-only field (`compose_project`, `id`) would otherwise
    be dropped without a word, and the caller would think it was applied.
    """

    def to_internal_value(self, data):
        if isinstance(data, dict):
            writable = {name for name, field in self.fields.items() if not field.read_only}
            unknown = sorted(str(key) for key in data if key not in writable)
            if unknown:
                raise exceptions.ValidationError({
                    key: [f"{key!r} is not a field this request accepts; it takes {', '.join(sorted(writable))}."]
                    for key in unknown
                })
        return super().to_internal_value(data)


def _sentence(detail) -> str:
    if isinstance(detail, dict) and set(detail) == {"detail"}:
        return _sentence(detail["detail"])
    if isinstance(detail, dict):
        parts = [f"{field}: {_sentence(value)}" for field, value in detail.items()]
        return " ".join(parts)
    if isinstance(detail, list):
        return " ".join(_sentence(item) for item in detail)
    return str(detail)


def _record_denial(error: ScopeDenied, context) -> None:
    """Write the denied attempt to the audit trail; the request's own transactions have rolled back by now."""
    from accounts.audit import record_denial

    view = context.get("view")
    request = context.get("request")
    principal_of = getattr(view, "principal", None)
    if principal_of is None or request is None or not request.user.is_authenticated:
        return
    action = f"{getattr(view, 'basename', 'api')}.{getattr(view, 'action', None) or request.method.lower()}"
    try:
        record_denial(principal_of(), error, action)
    except DatabaseError:
        # The 403 still goes out; the failure is logged without the request body.
        logger.exception("audit entry of a denied request could not be written: action=%s", action)


def exception_handler(exc, context):
    if isinstance(exc, (DataError, OverflowError)):
        # A backstop for input that passed validation but not the database
        # (a value too long, a NUL byte) or a number out of range: the
        # request was wrong, so it is a 400, not a 500.
        logger.warning("request rejected by the database or a range check: %s", type(exc).__name__)
        message = "A value in the request is too long, out of range or contains characters that cannot be stored; " \
                  "shorten it or remove control characters."
        return Response({"ok": False, "error": message, "code": "INVALID_INPUT"}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, DaoflowError):
        if isinstance(exc, ScopeDenied):
            _record_denial(exc, context)
        return Response(exc.as_dict(), status=exc.http_status)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    message = _sentence(response.data)
    if response.status_code == status.HTTP_401_UNAUTHORIZED:
        message += UNAUTHENTICATED_HINT
    body = {"ok": False, "error": message, "code": CODES.get(response.status_code, "ERROR")}
    if isinstance(exc, exceptions.ValidationError) and isinstance(response.data, dict):
        body["fields"] = response.data
    response.data = body
    return response
