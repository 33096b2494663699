"""API views of deployments."""

from rest_framework import viewsets

from accounts import scopes
from services.api import PrincipalMixin
from services.models import Service

from .models import Deployment
from .serializers import DeploymentSerializer


class DeploymentViewSet(PrincipalMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = DeploymentSerializer
    filterset_fields = ["status", "conclusion", "service__name"]

    def get_queryset(self):
        readable = Service.objects.for_scope(self.principal(), scopes.DEPLOY_READ)
        return (
            Deployment.objects.filter(service__in=readable)
            .select_related("service__project", "server")
            .prefetch_related("steps")
        )
