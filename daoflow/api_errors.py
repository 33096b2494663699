"""DRF errors in the same JSON shape as the command line: {"ok": false, "error", "code"}."""

from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from .errors import DaoflowError

CODES = {
    status.HTTP_400_BAD_REQUEST: "INVALID_INPUT",
    status.HTTP_401_UNAUTHORIZED: "UNAUTHENTICATED",
    status.HTTP_403_FORBIDDEN: "PERMISSION_DENIED",
    status.HTTP_404_NOT_FOUND: "NOT_FOUND",
    status.HTTP_405_METHOD_NOT_ALLOWED: "METHOD_NOT_ALLOWED",
    status.HTTP_409_CONFLICT: "CONFLICT",
    status.HTTP_429_TOO_MANY_REQUESTS: "THROTTLED",
}


def _sentence(detail) -> str:
    if isinstance(detail, dict):
        parts = [f"{field}: {_sentence(value)}" for field, value in detail.items()]
        return " ".join(parts)
    if isinstance(detail, list):
        return " ".join(_sentence(item) for item in detail)
    return str(detail)


def exception_handler(exc, context):
    if isinstance(exc, DaoflowError):
        return Response(exc.as_dict(), status=exc.http_status)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    body = {"ok": False, "error": _sentence(response.data), "code": CODES.get(response.status_code, "ERROR")}
    if isinstance(exc, exceptions.ValidationError) and isinstance(response.data, dict):
        body["fields"] = response.data
    response.data = body
    return response
