"""Environment variables at project, environment and service level: set, unset and list.

A deployment gets the variables of all three levels, and for a key set at several
levels the narrowest one wins: service over environment over project
(deployments.freeze.resolve_env does the layering). Values are never logged, and a
secret value appears in audit entries and listings only as the mask, unless the
listing principal has secrets:read.
"""

import logging

from django.db import IntegrityError, transaction

from accounts import audit, scopes
from accounts.permissions import GrantIndex, require_scope
from daoflow.errors import InvalidInput, NotFound

from . import validation
from .models import Environment, EnvironmentVariable, Project, Service
from .serializers import can_read_secrets

logger = logging.getLogger(__name__)

MASK = "********"


@audit.records_denials("env.set")
def set_variable(
    principal,
    *,
    project: Project,
    environment: Environment | None = None,
    service: Service | None = None,
    key: str,
    value: str,
    secret: bool,
) -> EnvironmentVariable:
    """Create or replace the variable `key` at the level that the arguments name, in one transaction."""
    _check_write(principal, project, environment, service)
    key = _checked_key(key)
    value = _checked_value(value)

    with transaction.atomic():
        row = _level_rows(project, environment, service, key).select_for_update().first()
        before = _shown(row)
        if row is None:
            row = _create_row(project, environment, service, key, value, secret)
        else:
            row.value, row.secret = value, bool(secret)
            row.save(update_fields=["value", "secret", "updated_at"])
        diff = {"key": key, "level": row.level, "value": {"before": before, "after": _shown(row)}}
        audit.record(principal, "env.set", row, scope=scopes.ENV_WRITE, diff=diff,
                     target_label=_describe(project, environment, service, key))
    logger.info("variable=%s set at level=%s project=%s service=%s secret=%s",
                row.pk, row.level, project.pk, service.pk if service else None, row.secret)
    return row


@audit.records_denials("env.unset")
def unset_variable(
    principal,
    *,
    project: Project,
    environment: Environment | None = None,
    service: Service | None = None,
    key: str,
) -> None:
    """Delete the variable `key` at the level that the arguments name; NotFound when it is not set there."""
    _check_write(principal, project, environment, service)
    key = _checked_key(key)

    with transaction.atomic():
        row = _level_rows(project, environment, service, key).select_for_update().first()
        if row is None:
            raise NotFound(
                f"key: {key!r} is not set on {_describe(project, environment, service)}. "
                f"List the variables with `daoflow env list{_list_flags(project, environment, service)}`."
            )
        level, row_id = row.level, row.pk
        diff = {"key": key, "level": level, "value": {"before": _shown(row), "after": None}}
        audit.record(principal, "env.unset", row, scope=scopes.ENV_WRITE, diff=diff,
                     target_label=_describe(project, environment, service, key))
        row.delete()
    logger.info("variable=%s unset at level=%s project=%s service=%s",
                row_id, level, project.pk, service.pk if service else None)


def preview_change(
    principal,
    *,
    project: Project,
    environment: Environment | None = None,
    service: Service | None = None,
    key: str,
    value: str | None = None,
    secret: bool = False,
) -> dict:
    """Run the checks of set_variable (or of unset_variable when value is None) and return the change.

    The change is {key: {"before": ..., "after": ...}} with secret values masked, and
    nothing is written.
    """
    _check_write(principal, project, environment, service)
    key = _checked_key(key)
    row = _level_rows(project, environment, service, key).first()
    if value is None:
        if row is None:
            raise NotFound(
                f"key: {key!r} is not set on {_describe(project, environment, service)}. "
                f"List the variables with `daoflow env list{_list_flags(project, environment, service)}`."
            )
        return {key: {"before": _shown(row), "after": None}}
    value = _checked_value(value)
    return {key: {"before": _shown(row), "after": MASK if secret else value}}


def list_variables(
    principal,
    *,
    project: Project,
    environment: Environment | None = None,
    service: Service | None = None,
    resolved: bool = False,
) -> list[dict]:
    """List variables, with secret values masked unless the principal has secrets:read on them.

    Without a service: every variable of the project, or of one environment (its own and
    its services'), each with its level. With a service: the variables set on the
    service, or with resolved=True the layered view that a deployment gets, where each
    key has the value of the narrowest level that sets it.
    """
    _check_level(project, environment, service)
    require_scope(principal, scopes.ENV_READ, service or project)
    grants = GrantIndex(principal)

    if service is not None and resolved:
        rows = _resolved_rows(service)
    elif service is not None:
        rows = list(service.variables.select_related("project", "environment", "service"))
    else:
        rows = EnvironmentVariable.objects.filter(project=project).select_related(
            "project", "environment", "service")
        if environment is not None:
            rows = rows.filter(environment=environment)
        rows = list(rows)
    rows.sort(key=lambda row: (row.key, _LEVEL_ORDER[row.level]))
    return [_listed(principal, row, grants) for row in rows]


_LEVEL_ORDER = {"project": 0, "environment": 1, "service": 2}


def _resolved_rows(service: Service) -> list[EnvironmentVariable]:
    from deployments.freeze import resolve_env

    # resolve_env is the layering that deployments freeze, so the listing shows what a deploy gets.
    winners = {(item["key"], item["level"]) for item in resolve_env(service)}
    candidates = EnvironmentVariable.objects.filter(project_id=service.project_id).select_related(
        "project", "environment", "service")
    return [row for row in candidates if (row.key, row.level) in winners and _applies_to(row, service)]


def _applies_to(row: EnvironmentVariable, service: Service) -> bool:
    if row.service_id is not None:
        return row.service_id == service.pk
    if row.environment_id is not None:
        return row.environment_id == service.environment_id
    return True


def _listed(principal, row: EnvironmentVariable, grants: GrantIndex) -> dict:
    reveal = not row.secret or can_read_secrets(principal, row, grants)
    return {
        "key": row.key,
        "value": row.value if reveal else MASK,
        "secret": row.secret,
        "level": row.level,
        "project": row.project.name,
        "environment": row.environment.name if row.environment_id else None,
        "service": row.service.name if row.service_id else None,
    }


# -- checks -------------------------------------------------------------------


def _check_write(principal, project, environment, service) -> None:
    _check_level(project, environment, service)
    require_scope(principal, scopes.ENV_WRITE, service or project)


def _check_level(project: Project, environment: Environment | None, service: Service | None) -> None:
    """Reject an environment or service that does not belong to the project, or to each other."""
    if service is not None and service.project_id != project.pk:
        raise InvalidInput(
            f"service: {service.name!r} belongs to project {service.project.name!r}, not {project.name!r}. "
            "Name the service's own project or leave the project out.",
            field="service",
        )
    if environment is not None and environment.project_id != project.pk:
        raise InvalidInput(
            f"environment: {environment.name!r} is not an environment of project {project.name!r}. "
            "Choose one of the project's environments.",
            field="environment",
        )
    if service is not None and environment is not None and service.environment_id != environment.pk:
        raise InvalidInput(
            f"environment: service {service.name!r} belongs to environment {service.environment.name!r}, "
            f"not {environment.name!r}. Leave the environment out for a service variable.",
            field="environment",
        )


def _checked_key(key: str) -> str:
    try:
        return validation.validate_env_key(key)
    except validation.InvalidValue as error:
        raise InvalidInput(error.message, field="key") from None


def _checked_value(value: str) -> str:
    try:
        return validation.validate_env_value(value)
    except validation.InvalidValue as error:
        raise InvalidInput(error.message, field="value") from None


# -- rows ---------------------------------------------------------------------


def _level_rows(project, environment, service, key: str):
    """Return the rows of `key` at exactly the level the arguments name (at most one, by the unique constraints)."""
    if service is not None:
        return EnvironmentVariable.objects.filter(service=service, key=key)
    if environment is not None:
        return EnvironmentVariable.objects.filter(environment=environment, service__isnull=True, key=key)
    return EnvironmentVariable.objects.filter(
        project=project, environment__isnull=True, service__isnull=True, key=key)


def _create_row(project, environment, service, key: str, value: str, secret: bool) -> EnvironmentVariable:
    # A service variable also records the service's environment, as service updates write it.
    row_environment = service.environment if service is not None else environment
    try:
        with transaction.atomic():
            return EnvironmentVariable.objects.create(
                project=project, environment=row_environment, service=service, key=key, value=value,
                secret=bool(secret),
            )
    except IntegrityError:
        # A concurrent request created the same key first, so replace its value as a second set would.
        row = _level_rows(project, environment, service, key).select_for_update().get()
        row.value, row.secret = value, bool(secret)
        row.save(update_fields=["value", "secret", "updated_at"])
        return row


def _shown(row: EnvironmentVariable | None) -> str | None:
    if row is None:
        return None
    return MASK if row.secret else row.value


def _describe(project, environment, service, key: str = "") -> str:
    if service is not None:
        where = f"service {service.project.name}/{service.name}"
    elif environment is not None:
        where = f"environment {project.name}/{environment.name}"
    else:
        where = f"project {project.name}"
    return f"{where} variable {key}" if key else where


def _list_flags(project, environment, service) -> str:
    if service is not None:
        return f" --project {project.name} --service {service.name}"
    if environment is not None:
        return f" --project {project.name} --environment {environment.name}"
    return f" --project {project.name}"
