"""Deployments in the admin: read-only records, listed under the same scopes as the API."""

from django.contrib import admin
from django.utils.html import format_html

from accounts import scopes
from accounts.admin_scoping import ReadOnlyInline, ScopedAdmin, grants_of_admin_request, principal_of_admin_request
from services.models import Service

from .models import Deployment, DeploymentStep


# The newest lines shown on the deployment page; `daoflow logs` prints them all.
LOG_LINES_SHOWN = 2000


class StepInline(ReadOnlyInline):
    model = DeploymentStep
    readonly_fields = ["position", "name", "status", "started_at", "finished_at", "detail"]


@admin.register(Deployment)
class DeploymentAdmin(ScopedAdmin):
    list_display = ["id", "service", "server", "status", "conclusion", "created_at", "finished_at"]
    list_select_related = ["service__project", "server"]
    list_filter = ["status", "conclusion"]
    exclude = ["frozen_input"]
    readonly_fields = [
        "service", "server", "status", "conclusion", "trigger", "rollback_of", "actor", "actor_label",
        "input_digest", "idempotency_key", "created_at", "started_at", "finished_at", "heartbeat_at",
        "worker", "failed_step", "failure_reason", "cancel_requested_at", "cancelled_by", "touched_target",
    ]
    inlines = [StepInline]
    actions = ["cancel_selected", "roll_back_to_selected"]
    read_scope = scopes.DEPLOY_READ

    def scoped_queryset(self, request, queryset):
        services = Service.objects.for_scope(principal_of_admin_request(request), scopes.DEPLOY_READ)
        return queryset.filter(service__in=services)

    def get_readonly_fields(self, request, obj=None):
        # The log needs the request to check logs:read; a callable built per
        # request keeps it off the admin instance, which all requests share.
        @admin.display(description="Log (secret values masked)")
        def log(deployment):
            return self.render_log(request, deployment)

        return [*super().get_readonly_fields(request, obj), log]

    def render_log(self, request, deployment):
        principal = principal_of_admin_request(request)
        allowed = principal.has_scope(scopes.LOGS_READ) and (
            principal.unrestricted
            or scopes.LOGS_READ in grants_of_admin_request(request).scopes_on(deployment.service)
        )
        if not allowed:
            return "Reading the log needs the scope logs:read on this service."
        lines = list(deployment.log_lines.select_related("step").order_by("-pk")[:LOG_LINES_SHOWN])
        lines.reverse()
        text = "\n".join(f"[{line.step.name if line.step else '-'}] {line.text}" for line in lines)
        return format_html('<pre style="max-height: 40em; overflow: auto; white-space: pre-wrap">{}</pre>',
                           text or "(no output yet)")

    @admin.action(description="Cancel the selected deployments")
    def cancel_selected(self, request, queryset):
        from . import actions

        self.run_per_object(request, queryset, actions.cancel, "Cancellation requested")

    @admin.action(description="Roll back to the selected deployments")
    def roll_back_to_selected(self, request, queryset):
        from . import actions

        def roll_back(principal, deployment):
            return actions.rollback(principal, deployment.service, deployment)

        self.run_per_object(request, queryset, roll_back, "Rollbacks queued")
