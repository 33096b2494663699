"""The operator's console for projects, servers and services, under the same scopes as the API.

Changes go through the action functions, which check scopes and write the
audit trail. Ports, volumes and variables are read-only here: change them
with `daoflow service update` or the API.
"""

from types import SimpleNamespace

from django import forms
from django.contrib import admin
from django.db.models import OuterRef, Subquery
from django.utils.html import format_html, format_html_join

from accounts import scopes
from accounts.admin_scoping import ReadOnlyInline, ScopedAdmin, grants_of_admin_request, principal_of_admin_request
from daoflow.errors import DaoflowError

from . import actions, read_model
from .config import SCALAR_FIELDS, ServiceInput
from .models import Environment, EnvironmentVariable, PortMapping, Project, Server, Service, VolumeMount

MASK = "********"


@admin.register(Server)
class ServerAdmin(ScopedAdmin):
    """Servers are read-only here; add them and approve host keys with `daoflow server` or the API."""

    list_display = ["name", "kind", "host", "port", "user", "approved_at"]
    exclude = ["private_key"]
    readonly_fields = ["scanned_host_key", "approved_host_key", "approved_at"]
    read_scope = scopes.SERVER_READ


class EnvironmentInline(ReadOnlyInline):
    model = Environment
    fields = ["name", "default_server"]
    readonly_fields = ["name", "default_server"]


@admin.register(Project)
class ProjectAdmin(ScopedAdmin):
    list_display = ["name", "created_at"]
    inlines = [EnvironmentInline]
    read_scope = scopes.SERVICE_READ
    # A grant on one service makes its project visible, so the object check is the grant itself.
    object_read_scope = None

    def scoped_queryset(self, request, queryset):
        return queryset.for_scope(principal_of_admin_request(request), scopes.SERVICE_READ)


class PortInline(ReadOnlyInline):
    model = PortMapping
    fields = ["host_ip", "published", "target", "protocol"]
    readonly_fields = fields


class VolumeInline(ReadOnlyInline):
    model = VolumeMount
    fields = ["type", "source", "target", "read_only"]
    readonly_fields = fields


class VariableInline(ReadOnlyInline):
    model = EnvironmentVariable
    fk_name = "service"
    fields = ["key", "shown_value", "secret"]
    readonly_fields = fields

    def get_formset(self, request, obj=None, **kwargs):
        # The inline needs the request to decide whether secret values show.
        self._request = request
        return super().get_formset(request, obj, **kwargs)

    @admin.display(description="value")
    def shown_value(self, row):
        if not row.secret:
            return row.value
        principal = principal_of_admin_request(self._request)
        granted = grants_of_admin_request(self._request).scopes_on(row)
        return row.value if scopes.SECRETS_READ in granted and principal.has_scope(scopes.SECRETS_READ) else MASK


class ServiceChangeForm(forms.ModelForm):
    """Validated by a dry run of `update_service`, so the admin shows the same errors as the API and the CLI."""

    target_server = forms.ModelChoiceField(queryset=Server.objects.all(), required=False)

    class Meta:
        model = Service
        fields = ["name", *SCALAR_FIELDS, "target_server"]

    def service_input(self) -> ServiceInput:
        data = ServiceInput()
        for name in self.changed_data:
            value = self.cleaned_data.get(name)
            if name == "target_server":
                data.target_server = value.name if value else ""
            elif hasattr(data, name):
                setattr(data, name, value if value is not None else "")
        return data

    def clean(self):
        cleaned = super().clean()
        if self.errors or self.instance.pk is None:
            return cleaned
        try:
            actions.update_service(self.principal, Service.objects.get(pk=self.instance.pk), self.service_input(),
                                   dry_run=True)
        except DaoflowError as error:
            field = error.extra.get("field")
            raise forms.ValidationError({field: error.message} if field in self.fields else error.message) from None
        return cleaned


@admin.register(Service)
class ServiceAdmin(ScopedAdmin):
    list_display = ["name", "project", "environment", "source_type", "state", "endpoints", "latest_deployment"]
    list_select_related = ["project", "environment__project", "environment__default_server", "target_server"]
    list_filter = ["source_type", "project"]
    search_fields = ["name", "project__name"]
    readonly_fields = ["project", "environment", "compose_project"]
    inlines = [PortInline, VolumeInline, VariableInline]
    form = ServiceChangeForm
    actions = ["deploy_selected"]
    read_scope = scopes.SERVICE_READ
    change_scope = scopes.SERVICE_UPDATE
    # NOTE: services are created with `daoflow service create` or the API; the
    # admin has no add form yet because ports, volumes and variables are
    # entered there as one validated request.
    add_scope = None

    def scoped_queryset(self, request, queryset):
        # The latest deployment's fields come in as annotations, so the list
        # costs the same number of queries for 10 services or 1,000.
        latest = read_model.counted_deployments().filter(service=OuterRef("pk")).order_by("-created_at", "-id")
        return (
            queryset.for_scope(principal_of_admin_request(request), scopes.SERVICE_READ)
            .prefetch_related("ports")
            .annotate(
                latest_id=Subquery(latest.values("id")[:1]),
                latest_status=Subquery(latest.values("status")[:1]),
                latest_conclusion=Subquery(latest.values("conclusion")[:1]),
            )
        )

    @staticmethod
    def _latest(service):
        if getattr(service, "latest_id", None) is None:
            return None
        return SimpleNamespace(status=service.latest_status, conclusion=service.latest_conclusion)

    @admin.display(description="State")
    def state(self, service):
        state = read_model.state_of(self._latest(service))
        colour = {"healthy": "#1a7f37", "degraded": "#cf222e", "updating": "#9a6700"}.get(state, "#57606a")
        return format_html('<strong style="color: {}">{}</strong>', colour, read_model.STATE_LABELS[state])

    @admin.display(description="Endpoints")
    def endpoints(self, service):
        shown = read_model.endpoints(service, self._latest(service))
        if not shown:
            return "-"
        return format_html_join(", ", "{} ({})", ((e["address"], e["state"]) for e in shown))

    @admin.display(description="Latest deployment")
    def latest_deployment(self, service):
        if getattr(service, "latest_id", None) is None:
            return "-"
        outcome = service.latest_conclusion or service.latest_status
        return format_html('<a href="../../deployments/deployment/{}/change/">#{} {}</a>',
                           service.latest_id, service.latest_id, outcome)

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        form.principal = principal_of_admin_request(request)
        return form

    def save_model(self, request, obj, form, change):
        # The form already holds the changes; update_service re-reads the row
        # under a lock, applies them, checks service:update on the object and
        # writes the audit entry.
        actions.update_service(self.principal(request), Service.objects.get(pk=obj.pk), form.service_input())
        obj.refresh_from_db()

    @admin.action(description="Deploy the selected services")
    def deploy_selected(self, request, queryset):
        from deployments.actions import deploy

        self.run_per_object(request, queryset, deploy, "Deployments queued")
