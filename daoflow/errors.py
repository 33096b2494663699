"""Errors a user can act on, shared by the command line and the API.

Each carries a machine-readable code; the CLI maps them to exit codes and the
API to HTTP statuses, both with the same JSON shape.
"""


class DaoflowError(Exception):
    code = "ERROR"
    http_status = 400
    exit_code = 1

    def __init__(self, message: str, **extra):
        super().__init__(message)
        self.message = message
        self.extra = extra

    def as_dict(self) -> dict:
        return {"ok": False, "error": self.message, "code": self.code, **self.extra}


class InvalidInput(DaoflowError):
    code = "INVALID_INPUT"

    @classmethod
    def from_invalid_value(cls, error, flag: str | None = None) -> "InvalidInput":
        field = flag or error.field
        message = error.message
        if flag and not message.startswith(flag):
            message = f"{flag}: {message}"
        return cls(message, field=field)


class NotFound(DaoflowError):
    code = "NOT_FOUND"
    http_status = 404


class Conflict(DaoflowError):
    code = "CONFLICT"
    http_status = 409


class ConfirmationRequired(DaoflowError):
    code = "CONFIRMATION_REQUIRED"

    def __init__(self, what: str):
        super().__init__(
            f"{what} changes something and needs confirmation: run it again with --yes "
            "(or --dry-run to preview)."
        )


class ScopeDenied(DaoflowError):
    code = "SCOPE_DENIED"
    http_status = 403
    exit_code = 2

    def __init__(self, required: str, granted, target: str = ""):
        where = f" on {target}" if target else ""
        super().__init__(
            f"This needs the scope {required}{where}, which the acting principal does not have; "
            "ask an owner or admin to grant it.",
            required_scopes=[required],
            granted_scopes=sorted(granted),
            requiredScope=required,
        )
        self.required = required


class Unavailable(DaoflowError):
    code = "UNAVAILABLE"
    http_status = 503
