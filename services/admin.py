from django.contrib import admin

from .models import Environment, EnvironmentVariable, PortMapping, Project, Server, Service, VolumeMount


@admin.register(Server)
class ServerAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "host", "port", "user", "approved_at"]
    exclude = ["private_key"]
    readonly_fields = ["scanned_host_key", "approved_host_key", "approved_at"]


class EnvironmentInline(admin.TabularInline):
    model = Environment
    extra = 0


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "created_at"]
    inlines = [EnvironmentInline]


class PortInline(admin.TabularInline):
    model = PortMapping
    extra = 0


class VolumeInline(admin.TabularInline):
    model = VolumeMount
    extra = 0


class VariableInline(admin.TabularInline):
    model = EnvironmentVariable
    fk_name = "service"
    fields = ["key", "secret"]
    readonly_fields = ["key", "secret"]
    extra = 0
    can_delete = False


@admin.register(Service)
class ServiceAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "environment", "source_type", "image"]
    list_select_related = ["project", "environment"]
    list_filter = ["source_type", "project"]
    search_fields = ["name", "project__name"]
    readonly_fields = ["compose_project"]
    inlines = [PortInline, VolumeInline, VariableInline]
