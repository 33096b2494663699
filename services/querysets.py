"""Reads that depend on the principal: one queryset method per model.

`for_scope(principal, scope)` is the only path by which the API, the admin and
the commands list projects and services, so object grants hold everywhere.
"""

from django.db import models


def _granted(principal, scope: str, project_path: str, service_path: str | None) -> models.Q:
    from .models import permission_codename

    codename = permission_codename(scope)
    condition = models.Q(
        **{
            f"{project_path}projectuserobjectpermission__user": principal.user,
            f"{project_path}projectuserobjectpermission__permission__codename": codename,
        }
    )
    if service_path is not None:
        condition |= models.Q(
            **{
                f"{service_path}serviceuserobjectpermission__user": principal.user,
                f"{service_path}serviceuserobjectpermission__permission__codename": codename,
            }
        )
    return condition


class ProjectQuerySet(models.QuerySet):
    def for_scope(self, principal, scope: str):
        if not principal.has_scope(scope):
            return self.none()
        if principal.unrestricted:
            return self
        # A grant on a single service makes its project visible by name, but
        # gives nothing on the project's other services.
        condition = _granted(principal, scope, "", None) | _granted(principal, scope, "", "services__")
        return self.filter(pk__in=self.model.objects.filter(condition).values("pk"))


class ServiceQuerySet(models.QuerySet):
    def for_scope(self, principal, scope: str):
        if not principal.has_scope(scope):
            return self.none()
        if principal.unrestricted:
            return self
        condition = _granted(principal, scope, "project__", "")
        return self.filter(pk__in=self.model.objects.filter(condition).values("pk"))

    def with_read_model(self):
        """Load everything the service read model shows, in a fixed number of queries."""
        from .read_model import counted_deployments

        latest = counted_deployments().filter(service=models.OuterRef("pk")).order_by("-created_at", "-id")
        return (
            self.select_related("project", "environment__default_server", "target_server")
            .prefetch_related("ports", "volumes", "variables")
            .annotate(latest_deployment_id=models.Subquery(latest.values("id")[:1]))
        )
