"""API views of deployments: list, detail with steps, deploy, cancel, roll back, logs."""

import django_filters
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts import scopes
from accounts.permissions import require_scope
from daoflow.api_errors import RejectUnknownFields
from daoflow.errors import InvalidInput, NotFound
from services.api import PrincipalMixin
from services.models import Service

from . import actions
from .models import Deployment, DeploymentLogLine
from .serializers import DeploymentLogLineSerializer, DeploymentSerializer

DEFAULT_LOG_LINES = 1000
MAX_LOG_LINES = 5000


class DeployRequestSerializer(RejectUnknownFields, serializers.Serializer):
    service = serializers.IntegerField(help_text="Id of the service to deploy.")
    idempotency_key = serializers.CharField(
        required=False, allow_blank=True, max_length=200, default="",
        help_text="Requests with the same key and input return the same deployment "
                  "(the Idempotency-Key header works as well).",
    )


class DeploymentLogSerializer(serializers.Serializer):
    deployment = serializers.IntegerField()
    finished = serializers.BooleanField()
    next_after = serializers.IntegerField(allow_null=True)
    lines = DeploymentLogLineSerializer(many=True)


class DeploymentFilter(django_filters.FilterSet):
    # A number filter, so an id in a project the caller cannot read gives an
    # empty list like any other id, not a validation error.
    service = django_filters.NumberFilter(field_name="service_id")

    class Meta:
        model = Deployment
        fields = ["status", "conclusion", "trigger", "service__name", "service__project__name"]


class DeploymentViewSet(PrincipalMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Deployments. Lists show those of services with deploy:read; POST deploys a service."""

    serializer_class = DeploymentSerializer
    filterset_class = DeploymentFilter
    read_scope = scopes.DEPLOY_READ

    def get_queryset(self):
        if self.is_schema_request():
            return Deployment.objects.none()
        # Lists show only what the principal may read; a single deployment of a
        # readable service without deploy:read is 403 rather than 404.
        scope = scopes.DEPLOY_READ if self.action == "list" else scopes.SERVICE_READ
        services = Service.objects.for_scope(self.principal(), scope)
        return (
            Deployment.objects.filter(service__in=services)
            .select_related("service__project", "server")
            .prefetch_related("steps")
        )

    def get_object(self):
        deployment = super().get_object()
        if self.action in ("retrieve", "logs"):
            require_scope(self.principal(), scopes.DEPLOY_READ, deployment.service, self.grants())
        return deployment

    def get_serializer_class(self):
        return DeployRequestSerializer if self.action == "create" else DeploymentSerializer

    def _respond(self, deployment: Deployment, code=status.HTTP_200_OK) -> Response:
        fresh = self.get_queryset().model.objects.select_related("service__project", "server").prefetch_related(
            "steps").get(pk=deployment.pk)
        return Response(DeploymentSerializer(fresh).data, status=code)

    @extend_schema(request=DeployRequestSerializer, responses={201: DeploymentSerializer, 200: DeploymentSerializer})
    def create(self, request, *args, **kwargs):
        serializer = DeployRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        service_id = serializer.validated_data["service"]
        service = (
            Service.objects.for_scope(self.principal(), scopes.SERVICE_READ)
            .select_related("project", "environment__default_server", "target_server")
            .filter(pk=service_id)
            .first()
        )
        if service is None:
            raise NotFound(f"Service {service_id} not found; list services with GET /api/v1/services/.")
        key = serializer.validated_data["idempotency_key"] or _idempotency_header(request)
        deployment, created = actions.deploy(self.principal(), service, idempotency_key=key)
        return self._respond(deployment, status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(request=None, responses={200: DeploymentSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        deployment = self.get_object()
        actions.cancel(self.principal(), deployment)
        return self._respond(deployment)

    @extend_schema(request=None, responses={201: DeploymentSerializer})
    @action(detail=True, methods=["post"])
    def rollback(self, request, pk=None):
        """Deploy this (earlier) deployment's frozen input again, as a new deployment."""
        target = self.get_object()
        deployment = actions.rollback(self.principal(), target.service, target,
                                      idempotency_key=_idempotency_header(request))
        return self._respond(deployment, status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[
            OpenApiParameter("after", int, description="Only lines with an id above this one (for following)."),
            OpenApiParameter("limit", int, description=f"At most this many lines (default {DEFAULT_LOG_LINES}, "
                                                      f"maximum {MAX_LOG_LINES})."),
        ],
        responses={200: DeploymentLogSerializer},
    )
    @action(detail=True, methods=["get"])
    def logs(self, request, pk=None):
        """Log lines of the deployment, secret values masked; needs logs:read."""
        deployment = self.get_object()
        require_scope(self.principal(), scopes.LOGS_READ, deployment.service, self.grants())
        after = _int_param(request, "after", 0, 0, None)
        limit = _int_param(request, "limit", DEFAULT_LOG_LINES, 1, MAX_LOG_LINES)
        lines = list(
            DeploymentLogLine.objects.filter(deployment=deployment, pk__gt=after).select_related("step")
            .order_by("pk")[:limit]
        )
        return Response({
            "deployment": deployment.pk,
            "finished": deployment.is_finished,
            "next_after": lines[-1].pk if lines else after,
            "lines": DeploymentLogLineSerializer(lines, many=True).data,
        })


def _idempotency_header(request) -> str:
    key = request.headers.get("Idempotency-Key", "")
    if len(key) > 200:
        raise InvalidInput(f"Idempotency-Key: the header has {len(key)} characters, more than 200; use a shorter key.",
                           field="idempotency_key")
    return key


def _int_param(request, name: str, default: int, minimum: int, maximum: int | None) -> int:
    text = request.query_params.get(name)
    if text in (None, ""):
        return default
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < minimum or (maximum is not None and value > maximum):
        upper = f" and {maximum}" if maximum is not None else ""
        raise InvalidInput(f"{name}: {text!r} is not a whole number between {minimum}{upper}.", field=name)
    return value
