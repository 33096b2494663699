from django.contrib import admin

from .models import Deployment, DeploymentStep


class StepInline(admin.TabularInline):
    model = DeploymentStep
    extra = 0
    can_delete = False
    readonly_fields = ["position", "name", "status", "started_at", "finished_at", "detail"]


@admin.register(Deployment)
class DeploymentAdmin(admin.ModelAdmin):
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

    def has_add_permission(self, request):
        return False
