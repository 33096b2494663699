"""Service objects as the API and `daoflow services --json` show them: one serializer for both."""

from rest_framework import serializers

from accounts import scopes
from accounts.permissions import GrantIndex

from . import read_model
from .models import Environment, Project, Server, Service
from .validation import redact_url

MASK = "********"


def _principal(context):
    return context["principal"]


def grants_of(context) -> GrantIndex:
    """Return the principal's grants, loaded once per serializer context (one request or one command)."""
    if "grants" not in context:
        context["grants"] = GrantIndex(_principal(context))
    return context["grants"]


def can_read_secrets(principal, service, grants: GrantIndex | None = None) -> bool:
    if principal.unrestricted:
        return principal.has_scope(scopes.SECRETS_READ)
    return scopes.SECRETS_READ in (grants or GrantIndex(principal)).scopes_on(service)


class LatestDeploymentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    conclusion = serializers.CharField()
    trigger = serializers.CharField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField()
    failed_step = serializers.CharField()
    failure_reason = serializers.CharField()


class ServiceListSerializer(serializers.ListSerializer):
    def to_representation(self, data):
        items = list(data.all() if hasattr(data, "all") else data)
        read_model.attach_latest_deployments(items)
        return super().to_representation(items)


class ServiceSerializer(serializers.ModelSerializer):
    project = serializers.CharField(source="project.name", read_only=True)
    repository_url = serializers.SerializerMethodField()
    environment = serializers.CharField(source="environment.name", read_only=True)
    target_server = serializers.SerializerMethodField()
    env = serializers.SerializerMethodField()
    ports = serializers.SerializerMethodField()
    volumes = serializers.SerializerMethodField()
    state = serializers.SerializerMethodField()
    state_label = serializers.SerializerMethodField()
    latest_deployment = serializers.SerializerMethodField()
    endpoints = serializers.SerializerMethodField()

    class Meta:
        model = Service
        list_serializer_class = ServiceListSerializer
        fields = [
            "id", "name", "project", "environment", "source_type", "repository_url", "branch",
            "compose_path", "compose_service", "dockerfile_path", "image", "target_server",
            "compose_project", "env", "volumes", "ports", "state", "state_label",
            "latest_deployment", "endpoints", "created_at", "updated_at",
        ]
        read_only_fields = fields

    def _latest(self, service):
        return read_model.latest_deployment_of(service)

    def get_repository_url(self, service) -> str:
        # Credentials in the URL are never output; only the worker reads the stored value.
        return redact_url(service.repository_url) if service.repository_url else ""

    def get_target_server(self, service) -> str | None:
        server = service.server
        return server.name if server else None

    def get_env(self, service) -> list[dict]:
        principal = _principal(self.context)
        # Keys and values are env:read's, not service:read's.
        if principal.unrestricted:
            if not principal.has_scope(scopes.ENV_READ):
                return []
        elif scopes.ENV_READ not in grants_of(self.context).scopes_on(service):
            return []
        reveal = can_read_secrets(principal, service, grants_of(self.context))
        return [
            {"key": row.key, "value": row.value if (reveal or not row.secret) else MASK, "secret": row.secret}
            for row in sorted(service.variables.all(), key=lambda r: r.key)
        ]

    def get_ports(self, service) -> list[dict]:
        return [
            {"spec": row.spec.to_short(), "host_ip": row.host_ip, "published": row.published,
             "target": row.target, "protocol": row.protocol}
            for row in service.ports.all()
        ]

    def get_volumes(self, service) -> list[dict]:
        return [
            {"spec": row.spec.to_short(), "type": row.type, "source": row.source, "target": row.target,
             "read_only": row.read_only, "options": row.options}
            for row in service.volumes.all()
        ]

    def get_state(self, service) -> str:
        return read_model.state_of(self._latest(service))

    def get_state_label(self, service) -> str:
        return read_model.STATE_LABELS[self.get_state(service)]

    def get_latest_deployment(self, service) -> dict | None:
        latest = self._latest(service)
        if latest is None or not self._may_read_deployments(service):
            return None
        return LatestDeploymentSerializer(latest).data

    def _may_read_deployments(self, service) -> bool:
        # The state is part of service:read; the deployment record behind it
        # (its failure reason, its timing) needs deploy:read like any deployment.
        principal = _principal(self.context)
        if principal.unrestricted:
            return principal.has_scope(scopes.DEPLOY_READ)
        return scopes.DEPLOY_READ in grants_of(self.context).scopes_on(service)

    def get_endpoints(self, service) -> list[dict]:
        return read_model.endpoints(service, self._latest(service))


class ProjectSerializer(serializers.ModelSerializer):
    environments = serializers.SlugRelatedField(many=True, read_only=True, slug_field="name")

    class Meta:
        model = Project
        fields = ["id", "name", "description", "environments", "created_at"]


class EnvironmentSerializer(serializers.ModelSerializer):
    project = serializers.CharField(source="project.name", read_only=True)
    default_server = serializers.CharField(source="default_server.name", read_only=True, default=None)

    class Meta:
        model = Environment
        fields = ["id", "name", "project", "default_server", "created_at"]


class ServerSerializer(serializers.ModelSerializer):
    host_key_fingerprint = serializers.SerializerMethodField()
    host_key_approved = serializers.BooleanField(read_only=True)

    class Meta:
        model = Server
        fields = [
            "id", "name", "kind", "host", "port", "user", "host_key_fingerprint", "host_key_approved",
            "approved_at", "max_concurrent_deployments", "created_at",
        ]

    def get_host_key_fingerprint(self, server) -> str | None:
        from .hostkeys import fingerprint

        key = server.approved_host_key or server.scanned_host_key
        return fingerprint(key) if key else None
