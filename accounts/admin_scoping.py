"""The admin's side of the one permission path: scoped querysets, per-object checks and audited actions.

Django's stock admin checks model permissions only: `has_change_permission`
ignores the object and `delete_selected` checks nothing per object. Every
admin here derives its permissions from the request's principal instead,
and offers no delete that bypasses the action functions.
"""

from django.contrib import admin, messages
from django.http import HttpResponseRedirect

from daoflow.errors import DaoflowError, ScopeDenied

from .audit import record_denial
from .permissions import GrantIndex
from .principal import principal_for


def principal_of_admin_request(request):
    """Return the principal of the signed-in admin user, built once per request."""
    if not hasattr(request, "_daoflow_principal"):
        request._daoflow_principal = principal_for(request.user)
    return request._daoflow_principal


def grants_of_admin_request(request) -> GrantIndex:
    if not hasattr(request, "_daoflow_grants"):
        request._daoflow_grants = GrantIndex(principal_of_admin_request(request))
    return request._daoflow_grants


class ScopedAdmin(admin.ModelAdmin):
    """A model admin whose permissions come from scopes and object grants.

    `read_scope` is needed to see the model at all; `object_read_scope`,
    when set, is checked on each object. `change_scope` (None: read-only) is
    checked on the object when one is given. Subclasses filter the list in
    `scoped_queryset`.
    """

    read_scope: str = ""
    object_read_scope: str | None = None
    change_scope: str | None = None
    add_scope: str | None = None

    def principal(self, request):
        return principal_of_admin_request(request)

    def grants(self, request) -> GrantIndex:
        return grants_of_admin_request(request)

    def holds(self, request, scope: str | None, obj=None) -> bool:
        if not scope or not request.user.is_active or not request.user.is_staff:
            return False
        principal = self.principal(request)
        if not principal.has_scope(scope):
            return False
        return obj is None or principal.unrestricted or scope in self.grants(request).scopes_on(obj)

    def scoped_queryset(self, request, queryset):
        return queryset

    def get_queryset(self, request):
        return self.scoped_queryset(request, super().get_queryset(request))

    def has_module_permission(self, request):
        return self.holds(request, self.read_scope)

    def has_view_permission(self, request, obj=None):
        if not self.holds(request, self.read_scope):
            return False
        return obj is None or self.object_read_scope is None or self.holds(request, self.object_read_scope, obj)

    def has_change_permission(self, request, obj=None):
        return self.holds(request, self.change_scope, obj)

    def has_add_permission(self, request, obj=None):
        return self.holds(request, self.add_scope)

    def has_delete_permission(self, request, obj=None):
        # No admin delete: deletions would bypass the action functions and the audit trail.
        return False

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # An action function may still reject a valid form (a taken name, a
        # scope the object lacks). The admin's own transaction has rolled back
        # by the time the error arrives here, so a denial entry stays.
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except DaoflowError as error:
            if isinstance(error, ScopeDenied):
                record_denial(self.principal(request), error, f"admin.{self.model._meta.model_name}.save")
            self.message_user(request, error.message, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def run_per_object(self, request, queryset, function, done: str) -> None:
        """Run `function(principal, obj)` for each selected object; each call checks its own scope.

        The selection is re-read through `get_queryset`, so objects outside the
        principal's reach are never touched, and one denied object does not
        stop the others.
        """
        principal = self.principal(request)
        allowed = self.get_queryset(request).filter(pk__in=queryset.values("pk"))
        succeeded = 0
        for obj in allowed:
            try:
                function(principal, obj)
                succeeded += 1
            except ScopeDenied as error:
                record_denial(principal, error, f"admin.{function.__name__}", obj)
                self.message_user(request, f"{obj}: {error.message}", messages.ERROR)
            except DaoflowError as error:
                self.message_user(request, f"{obj}: {error.message}", messages.ERROR)
        skipped = queryset.count() - allowed.count()
        if succeeded:
            self.message_user(request, f"{done}: {succeeded} object(s).", messages.SUCCESS)
        if skipped:
            self.message_user(request, f"{skipped} selected object(s) are outside your scopes and were left alone.",
                              messages.WARNING)


class ReadOnlyInline(admin.TabularInline):
    """An inline that shows rows and never changes them: writes go through the action functions."""

    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return True
