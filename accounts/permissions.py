"""One permission path for the API, the admin and the command line."""

from daoflow.errors import ScopeDenied

from .principal import Principal


def require_scope(principal: Principal, scope: str, obj=None) -> None:
    """Raise ScopeDenied unless the principal holds `scope`, on `obj` when given.

    Callers load `obj` through `for_scope(principal, <read scope>)` first, so an
    object the principal cannot read has already been reported as not found.
    """
    if not principal.has_scope(scope):
        raise ScopeDenied(scope, principal.scopes, str(obj) if obj is not None else "")
    if obj is None or principal.unrestricted:
        return
    if not has_object_scope(principal, scope, obj):
        raise ScopeDenied(scope, granted_object_scopes(principal, obj), str(obj))


def _service_and_project(obj):
    from services.models import Project, Service

    if isinstance(obj, Project):
        return None, obj
    if isinstance(obj, Service):
        return obj, obj.project
    service = getattr(obj, "service", None)
    if service is not None:
        return service, service.project
    return None, getattr(obj, "project", None)


def granted_object_scopes(principal: Principal, obj) -> set[str]:
    from services.models import OBJECT_PERMISSIONS, ProjectUserObjectPermission, ServiceUserObjectPermission

    if principal.unrestricted:
        return set(principal.scopes)
    service, project = _service_and_project(obj)
    by_codename = dict(OBJECT_PERMISSIONS)
    codenames = set()
    if project is not None:
        codenames |= set(
            ProjectUserObjectPermission.objects.filter(
                user=principal.user, content_object=project
            ).values_list("permission__codename", flat=True)
        )
    if service is not None:
        codenames |= set(
            ServiceUserObjectPermission.objects.filter(
                user=principal.user, content_object=service
            ).values_list("permission__codename", flat=True)
        )
    return {by_codename[c] for c in codenames if c in by_codename} & set(principal.scopes)


def has_object_scope(principal: Principal, scope: str, obj) -> bool:
    return scope in granted_object_scopes(principal, obj)
