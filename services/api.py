"""API views of projects, environments, servers, services and environment variables.

Views only adapt HTTP: reads go through `for_scope`, writes through the
action functions, which check scopes and write the audit trail. An object
the principal cannot read is 404; a readable one without the scope an
operation needs is 403 with the SCOPE_DENIED body.
"""

import django_filters
from django.http import Http404
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts import scopes
from accounts.authentication import principal_of_request
from accounts.permissions import GrantIndex, require_scope
from daoflow.api_errors import RejectUnknownFields
from daoflow.errors import InvalidInput, NotFound, ScopeDenied

from . import actions, env
from .config import ServiceInput
from .lookup import find_environment, find_project, find_server
from .models import Environment, EnvironmentVariable, Project, Server, Service
from .serializers import (
    EnvironmentSerializer,
    ProjectSerializer,
    ServerSerializer,
    ServiceSerializer,
    grants_of,
)

MASK = "********"


class PrincipalMixin:
    """The acting principal of the request, its grants, and the 403/404 rules shared by every viewset.

    `read_scope` is the scope every request to the viewset needs at all: a
    principal without it gets 403, one with it but without a grant on an
    object gets 404 for that object.
    """

    read_scope: str | None = None

    def principal(self):
        if not hasattr(self, "_principal"):
            self._principal = principal_of_request(self.request)
        return self._principal

    def grants(self) -> GrantIndex:
        if not hasattr(self, "_grants"):
            self._grants = GrantIndex(self.principal())
        return self._grants

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if self.request is not None and self.request.user.is_authenticated:
            context["principal"] = self.principal()
            context["grants"] = self.grants()
        return context

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if self.read_scope and not self.principal().has_scope(self.read_scope):
            raise ScopeDenied(self.read_scope, self.principal().scopes)

    def is_schema_request(self) -> bool:
        return getattr(self, "swagger_fake_view", False)

    def get_object(self):
        try:
            return super().get_object()
        except Http404:
            lookup = self.kwargs.get(self.lookup_url_kwarg or self.lookup_field)
            raise NotFound(
                f"{self.basename.replace('-', ' ').capitalize()} {lookup!r} not found; "
                f"list what you can read with GET {reverse(self.basename + '-list')}."
            ) from None


class NameField(serializers.CharField):
    """A name as the command line takes it: kept exactly, validated by the action."""

    def __init__(self, **kwargs):
        kwargs.setdefault("trim_whitespace", False)
        kwargs.setdefault("max_length", 255)
        super().__init__(**kwargs)


# -- projects and environments ----------------------------------------------


class ProjectCreateSerializer(RejectUnknownFields, serializers.Serializer):
    name = NameField()
    environment = NameField(required=False, default=actions.DEFAULT_ENVIRONMENT,
                            help_text="Name of the first environment.")
    server = NameField(required=False, allow_null=True, default=None,
                       help_text="Default server of that environment (default: the local engine).")


class ProjectViewSet(PrincipalMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Projects with at least one readable service or a grant of their own; creating one is for owners and admins."""

    serializer_class = ProjectSerializer
    filterset_fields = ["name"]
    read_scope = scopes.SERVICE_READ

    def get_queryset(self):
        if self.is_schema_request():
            return Project.objects.none()
        return Project.objects.for_scope(self.principal(), scopes.SERVICE_READ).prefetch_related("environments")

    def get_serializer_class(self):
        return ProjectCreateSerializer if self.action == "create" else ProjectSerializer

    @extend_schema(request=ProjectCreateSerializer, responses={201: ProjectSerializer})
    def create(self, request, *args, **kwargs):
        data = self._validated(ProjectCreateSerializer)
        server = find_server(self.principal(), data["server"]) if data["server"] else None
        project = actions.create_project(self.principal(), data["name"], data["environment"], server)
        project = Project.objects.prefetch_related("environments").get(pk=project.pk)
        return Response(ProjectSerializer(project, context=self.get_serializer_context()).data,
                        status=status.HTTP_201_CREATED)

    def _validated(self, serializer_class) -> dict:
        serializer = serializer_class(data=self.request.data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data


class EnvironmentCreateSerializer(RejectUnknownFields, serializers.Serializer):
    project = NameField(help_text="Project name.")
    name = NameField()
    server = NameField(required=False, allow_null=True, default=None,
                       help_text="Default server (default: the local engine).")


class EnvironmentViewSet(PrincipalMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = EnvironmentSerializer
    filterset_fields = ["name", "project__name"]
    read_scope = scopes.SERVICE_READ

    def get_queryset(self):
        if self.is_schema_request():
            return Environment.objects.none()
        readable = Project.objects.for_scope(self.principal(), scopes.SERVICE_READ)
        return Environment.objects.filter(project__in=readable).select_related("project", "default_server")

    def get_serializer_class(self):
        return EnvironmentCreateSerializer if self.action == "create" else EnvironmentSerializer

    @extend_schema(request=EnvironmentCreateSerializer, responses={201: EnvironmentSerializer})
    def create(self, request, *args, **kwargs):
        serializer = EnvironmentCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        project = find_project(self.principal(), data["project"])
        server = find_server(self.principal(), data["server"]) if data["server"] else None
        environment = actions.create_environment(self.principal(), project, data["name"], server)
        return Response(EnvironmentSerializer(environment).data, status=status.HTTP_201_CREATED)


# -- servers ----------------------------------------------------------------


class ServerCreateSerializer(RejectUnknownFields, serializers.Serializer):
    name = NameField()
    host = NameField()
    port = serializers.IntegerField(default=22)
    user = NameField(default="root")
    private_key = serializers.CharField(write_only=True, trim_whitespace=False, style={"base_template": "textarea.html"},
                                        help_text="The OpenSSH private key the control plane logs in with.")


class FingerprintSerializer(RejectUnknownFields, serializers.Serializer):
    fingerprint = serializers.CharField(help_text="The SHA256:... fingerprint checked on the server itself.")


class ServerViewSet(PrincipalMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Target servers. Reading needs server:read; adding a server and approving its host key need server:write."""

    serializer_class = ServerSerializer
    filterset_fields = ["name", "kind"]
    read_scope = scopes.SERVER_READ

    def get_queryset(self):
        return Server.objects.all()

    def get_serializer_class(self):
        if self.action == "create":
            return ServerCreateSerializer
        if self.action == "approve_host_key":
            return FingerprintSerializer
        return ServerSerializer

    @extend_schema(request=ServerCreateSerializer, responses={201: ServerSerializer})
    def create(self, request, *args, **kwargs):
        # Checked before the body, so a denied request never triggers a host key scan.
        require_scope(self.principal(), scopes.SERVER_WRITE)
        serializer = ServerCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        server = actions.add_server(self.principal(), **serializer.validated_data)
        return Response(ServerSerializer(server).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=FingerprintSerializer, responses={200: ServerSerializer})
    @action(detail=True, methods=["post"], url_path="approve-host-key")
    def approve_host_key(self, request, pk=None):
        server = self.get_object()
        require_scope(self.principal(), scopes.SERVER_WRITE)
        serializer = FingerprintSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        server = actions.approve_host_key(self.principal(), server, serializer.validated_data["fingerprint"])
        return Response(ServerSerializer(server).data)


# -- services ---------------------------------------------------------------


class EnvAssignmentSerializer(RejectUnknownFields, serializers.Serializer):
    key = serializers.CharField(trim_whitespace=False)
    value = serializers.CharField(allow_blank=True, trim_whitespace=False)
    secret = serializers.BooleanField(default=False)


def _spec_list(**kwargs):
    return serializers.ListField(child=serializers.CharField(trim_whitespace=False), required=False, **kwargs)


class ServiceChangeSerializer(RejectUnknownFields, serializers.Serializer):
    """The fields of a service change. Only their shape is checked here; services.config validates values."""

    name = NameField(required=False)
    source_type = serializers.CharField(required=False)
    image = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    repository_url = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    branch = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    compose_path = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    compose_document = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    compose_service = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    dockerfile_path = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    target_server = serializers.CharField(required=False, allow_blank=True, allow_null=True,
                                          help_text="Server name; empty or null for the environment's server.")

    def to_input(self, *, creating: bool) -> ServiceInput:
        data = dict(self.validated_data)
        target_server = data.pop("target_server", None)
        renamed = {"ports": "add_ports", "volumes": "add_volumes", "env": "set_env"}
        for old, new in renamed.items():
            if old in data:
                data[new] = data.pop(old)
        data["set_env"] = [(item["key"], item["value"], item["secret"]) for item in data.get("set_env", [])]
        service_input = ServiceInput(**{k: v for k, v in data.items() if k in ServiceInput.__dataclass_fields__})
        if "target_server" in self.validated_data:
            # "" clears the service's own server, so the environment's applies.
            service_input.target_server = target_server or ""
        labels = {name: name for name in self.fields}
        labels.update({
            "port": "ports" if creating else "add_ports",
            "remove_port": "remove_ports",
            "volume": "volumes" if creating else "add_volumes",
            "remove_volume": "remove_volumes",
            "env": "env" if creating else "set_env",
        })
        service_input.labels = labels
        return service_input


class ServiceCreateSerializer(ServiceChangeSerializer):
    project = NameField(help_text="Project name.")
    environment = NameField(required=False, help_text="Environment name (default: the project's only one).")
    name = NameField()
    source_type = serializers.ChoiceField(choices=[choice for choice, _ in Service.SOURCE_CHOICES])
    ports = _spec_list(help_text="Port mappings in Compose short syntax, e.g. 127.0.0.1:8080:80/tcp.")
    volumes = _spec_list(help_text="Volume mounts, e.g. data:/var/lib/data.")
    env = EnvAssignmentSerializer(many=True, required=False)


class ServiceUpdateSerializer(ServiceChangeSerializer):
    add_ports = _spec_list()
    remove_ports = _spec_list()
    add_volumes = _spec_list()
    remove_volumes = _spec_list()
    set_env = EnvAssignmentSerializer(many=True, required=False)
    unset_env = _spec_list()


class ServiceViewSet(PrincipalMixin, mixins.CreateModelMixin, mixins.UpdateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Services. PATCH changes a service (`?dry_run=1` returns the changes without writing them); PUT is not offered."""

    serializer_class = ServiceSerializer
    filterset_fields = ["name", "project__name", "environment__name", "source_type"]
    read_scope = scopes.SERVICE_READ
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self):
        if self.is_schema_request():
            return Service.objects.none()
        return Service.objects.for_scope(self.principal(), scopes.SERVICE_READ).with_read_model()

    def get_serializer_class(self):
        if self.action == "create":
            return ServiceCreateSerializer
        if self.action == "partial_update":
            return ServiceUpdateSerializer
        return ServiceSerializer

    def _respond(self, service: Service, code=status.HTTP_200_OK, **extra) -> Response:
        fresh = Service.objects.with_read_model().get(pk=service.pk)
        data = ServiceSerializer(fresh, context=self.get_serializer_context()).data
        return Response({**data, **extra} if extra else data, status=code)

    @extend_schema(request=ServiceCreateSerializer, responses={201: ServiceSerializer})
    def create(self, request, *args, **kwargs):
        serializer = ServiceCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        project = find_project(self.principal(), serializer.validated_data["project"])
        environment = find_environment(project, serializer.validated_data.get("environment"))
        service = actions.create_service(self.principal(), project, environment, serializer.to_input(creating=True))
        return self._respond(service, status.HTTP_201_CREATED)

    @extend_schema(request=ServiceUpdateSerializer, responses={200: ServiceSerializer})
    def partial_update(self, request, *args, **kwargs):
        service = self.get_object()
        serializer = ServiceUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        dry_run = request.query_params.get("dry_run", "").lower() in ("1", "true", "yes")
        changes = actions.update_service(self.principal(), service, serializer.to_input(creating=False), dry_run=dry_run)
        if dry_run:
            return Response({"dry_run": True, "changes": changes})
        return self._respond(service, changes=changes)

    def update(self, request, *args, **kwargs):
        return self.partial_update(request, *args, **kwargs)


# -- environment variables --------------------------------------------------


class EnvironmentVariableSerializer(serializers.ModelSerializer):
    """A variable; the value of a secret one reads as ******** without secrets:read on its project or service."""

    project = serializers.CharField(source="project.name", read_only=True)
    environment = serializers.CharField(source="environment.name", read_only=True, default=None)
    service = serializers.IntegerField(source="service_id", read_only=True, default=None)
    value = serializers.SerializerMethodField()

    class Meta:
        model = EnvironmentVariable
        fields = ["id", "key", "value", "secret", "level", "project", "environment", "service", "updated_at"]
        read_only_fields = fields

    def get_value(self, row) -> str:
        if not row.secret:
            return row.value
        principal = self.context["principal"]
        if scopes.SECRETS_READ in grants_of(self.context).scopes_on(row) and principal.has_scope(scopes.SECRETS_READ):
            return row.value
        return MASK


class EnvironmentVariableSetSerializer(RejectUnknownFields, serializers.Serializer):
    project = NameField(required=False, help_text="Project name; not needed with service.")
    environment = NameField(required=False, help_text="Environment name, for an environment-level variable.")
    service = serializers.IntegerField(required=False, help_text="Service id, for a service-level variable.")
    key = serializers.CharField(trim_whitespace=False)
    value = serializers.CharField(allow_blank=True, trim_whitespace=False)
    secret = serializers.BooleanField(default=False)


class EnvironmentVariableChangeSerializer(RejectUnknownFields, serializers.Serializer):
    # Write-only: this serializer never shows a stored value, masked or not.
    value = serializers.CharField(allow_blank=True, trim_whitespace=False, write_only=True)
    secret = serializers.BooleanField(required=False)


class VariableFilter(django_filters.FilterSet):
    # A number filter, not django-filter's model choice: that one validates
    # the id against every service, so its error would reveal that an id
    # exists in a project the caller cannot read.
    service = django_filters.NumberFilter(field_name="service_id")

    class Meta:
        model = EnvironmentVariable
        fields = ["key", "secret", "project__name", "environment__name"]


class EnvironmentVariableViewSet(PrincipalMixin, mixins.CreateModelMixin, mixins.UpdateModelMixin,
                                 mixins.DestroyModelMixin, viewsets.ReadOnlyModelViewSet):
    """Variables at project, environment and service level.

    Listing shows the variables on which the principal has env:read. A
    variable whose project or service the principal can read, but without
    env:read on it, is 403; POST sets a variable (creating or replacing it),
    PATCH changes its value, DELETE removes it.
    """

    serializer_class = EnvironmentVariableSerializer
    filterset_class = VariableFilter
    read_scope = scopes.ENV_READ
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        if self.is_schema_request():
            return EnvironmentVariable.objects.none()
        rows = EnvironmentVariable.objects.select_related("project", "environment", "service")
        if self.action == "list":
            return self._with_scope(rows, scopes.ENV_READ)
        return self._with_scope(rows, scopes.SERVICE_READ)

    def _with_scope(self, rows, scope: str):
        principal = self.principal()
        if principal.unrestricted:
            return rows if principal.has_scope(scope) else rows.none()
        projects = Project.objects.for_scope(principal, scope)
        services = Service.objects.for_scope(principal, scope)
        # A grant on one service makes its project readable by name only, so
        # project- and environment-level rows need a grant on the project.
        granted_projects = projects.filter(
            projectuserobjectpermission__user=principal.user,
            projectuserobjectpermission__permission__codename="scope_" + scope.replace(":", "_"),
        )
        return rows.filter(service__in=services) | rows.filter(service__isnull=True, project__in=granted_projects)

    def get_object(self):
        row = super().get_object()
        require_scope(self.principal(), scopes.ENV_READ, row, self.grants())
        return row

    def get_serializer_class(self):
        if self.action == "create":
            return EnvironmentVariableSetSerializer
        if self.action == "partial_update":
            return EnvironmentVariableChangeSerializer
        return EnvironmentVariableSerializer

    def _respond(self, row, code=status.HTTP_200_OK) -> Response:
        return Response(EnvironmentVariableSerializer(row, context=self.get_serializer_context()).data, status=code)

    @extend_schema(request=EnvironmentVariableSetSerializer, responses={201: EnvironmentVariableSerializer})
    def create(self, request, *args, **kwargs):
        serializer = EnvironmentVariableSetSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        project, environment, service = self._owner(data)
        row = env.set_variable(
            self.principal(), project=project, environment=environment, service=service,
            key=data["key"], value=data["value"], secret=data["secret"],
        )
        return self._respond(row, status.HTTP_201_CREATED)

    def _owner(self, data: dict):
        principal = self.principal()
        if data.get("service") is not None:
            service = Service.objects.for_scope(principal, scopes.SERVICE_READ).select_related(
                "project", "environment").filter(pk=data["service"]).first()
            if service is None:
                raise NotFound(f"Service {data['service']} not found; list services with GET /api/v1/services/.")
            if data.get("project") and data["project"] != service.project.name:
                raise InvalidInput(
                    f"project: service {data['service']} belongs to project {service.project.name!r}, "
                    f"not {data['project']!r}; leave project out or correct it.",
                    field="project",
                )
            return service.project, None, service
        if not data.get("project"):
            raise InvalidInput("project: name the project (and environment), or give a service id.", field="project")
        project = find_project(principal, data["project"])
        environment = find_environment(project, data["environment"]) if data.get("environment") else None
        return project, environment, None

    @extend_schema(request=EnvironmentVariableChangeSerializer, responses={200: EnvironmentVariableSerializer})
    def partial_update(self, request, *args, **kwargs):
        row = self.get_object()
        serializer = EnvironmentVariableChangeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        row = env.set_variable(
            self.principal(), project=row.project, environment=row.environment, service=row.service,
            key=row.key, value=data["value"], secret=data.get("secret", row.secret),
        )
        return self._respond(row)

    def update(self, request, *args, **kwargs):
        return self.partial_update(request, *args, **kwargs)

    def destroy(self, request, *args, **kwargs):
        row = self.get_object()
        env.unset_variable(
            self.principal(), project=row.project, environment=row.environment, service=row.service, key=row.key
        )
        return Response(status=status.HTTP_204_NO_CONTENT)
