"""API views of projects, servers and services."""

from rest_framework import mixins, viewsets

from accounts import scopes
from accounts.authentication import principal_of_request
from daoflow.errors import ScopeDenied

from .models import Project, Server, Service
from .serializers import ProjectSerializer, ServerSerializer, ServiceSerializer


class PrincipalMixin:
    def principal(self):
        if not hasattr(self, "_principal"):
            self._principal = principal_of_request(self.request)
        return self._principal

    def get_serializer_context(self):
        context = super().get_serializer_context()
        context["principal"] = self.principal()
        return context


class ProjectViewSet(PrincipalMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = ProjectSerializer
    filterset_fields = ["name"]

    def get_queryset(self):
        return Project.objects.for_scope(self.principal(), scopes.SERVICE_READ).prefetch_related("environments")


class ServerViewSet(PrincipalMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = ServerSerializer
    filterset_fields = ["name", "kind"]

    def get_queryset(self):
        if not self.principal().has_scope(scopes.SERVER_READ):
            raise ScopeDenied(scopes.SERVER_READ, self.principal().scopes)
        return Server.objects.all()


class ServiceViewSet(PrincipalMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = ServiceSerializer
    filterset_fields = ["name", "project__name", "source_type"]

    def get_queryset(self):
        return Service.objects.for_scope(self.principal(), scopes.SERVICE_READ).with_read_model()
