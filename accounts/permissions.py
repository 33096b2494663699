"""One permission path for the API, the admin and the command line."""

from collections import defaultdict

from daoflow.errors import ScopeDenied

from .principal import Principal


def require_scope(principal: Principal, scope: str, obj=None, grants: "GrantIndex | None" = None) -> None:
    """Raise ScopeDenied unless the principal has `scope`, on `obj` when given.

    Callers load `obj` through `for_scope(principal, <read scope>)` first, so an
    object the principal cannot read has already been reported as not found.
    The raised error carries `obj` as `target_object`, for the audit entry of
    the denied attempt.
    """
    if not principal.has_scope(scope):
        error = ScopeDenied(scope, principal.scopes, str(obj) if obj is not None else "")
        error.target_object = obj
        raise error
    if obj is None or principal.unrestricted:
        return
    granted = (grants or GrantIndex(principal)).scopes_on(obj)
    if scope not in granted:
        error = ScopeDenied(scope, granted, str(obj))
        error.target_object = obj
        raise error


def _service_and_project_ids(obj) -> tuple[int | None, int | None]:
    """Return the ids of the service and project whose grants cover `obj`, without extra queries."""
    from services.models import Project, Service

    if isinstance(obj, Project):
        return None, obj.pk
    if isinstance(obj, Service):
        return obj.pk, obj.project_id
    service_id = getattr(obj, "service_id", None)
    if service_id is not None:
        service = obj.service
        return service.pk, service.project_id
    return None, getattr(obj, "project_id", None)


class GrantIndex:
    """A principal's object grants, loaded once in two queries and reused for every object.

    List serializers keep one index per request, so checking secrets:read on
    200 services costs the same two queries as on one.
    """

    def __init__(self, principal: Principal):
        self.principal = principal
        self._by_project: dict[int, set[str]] | None = None
        self._by_service: dict[int, set[str]] | None = None

    def _load(self) -> None:
        from services.models import OBJECT_PERMISSIONS, ProjectUserObjectPermission, ServiceUserObjectPermission

        scope_of = dict(OBJECT_PERMISSIONS)
        self._by_project = defaultdict(set)
        self._by_service = defaultdict(set)
        user = self.principal.user
        if getattr(user, "pk", None) is None:
            return
        for table, index in (
            (ProjectUserObjectPermission, self._by_project),
            (ServiceUserObjectPermission, self._by_service),
        ):
            rows = table.objects.filter(user=user).values_list("content_object_id", "permission__codename")
            for object_id, codename in rows:
                if codename in scope_of:
                    index[object_id].add(scope_of[codename])

    def scopes_on(self, obj) -> set[str]:
        """Return the scopes the principal has on `obj`: its own scopes narrowed by the grants that cover it."""
        if self.principal.unrestricted:
            return set(self.principal.scopes)
        if self._by_project is None:
            self._load()
        service_id, project_id = _service_and_project_ids(obj)
        granted: set[str] = set()
        if project_id is not None:
            granted |= self._by_project.get(project_id, set())
        if service_id is not None:
            granted |= self._by_service.get(service_id, set())
        return granted & set(self.principal.scopes)


def granted_object_scopes(principal: Principal, obj) -> set[str]:
    return GrantIndex(principal).scopes_on(obj)


def has_object_scope(principal: Principal, scope: str, obj, grants: GrantIndex | None = None) -> bool:
    return scope in (grants or GrantIndex(principal)).scopes_on(obj)
