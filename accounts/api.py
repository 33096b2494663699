"""The audit trail in the API: read-only, for principals with members:manage."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, viewsets

from services.api import PrincipalMixin

from . import scopes
from .audit_query import filter_entries
from .models import AuditEntry


class AuditEntrySerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_label")
    token = serializers.CharField(source="token_name")
    target = serializers.CharField(source="target_label")
    time = serializers.DateTimeField(source="created_at")

    class Meta:
        model = AuditEntry
        fields = ["id", "time", "actor", "token", "action", "target_type", "target_id", "target", "scope",
                  "outcome", "diff", "detail"]
        read_only_fields = fields


FILTERS = ("action", "actor", "target", "since", "outcome")


@extend_schema(parameters=[OpenApiParameter(name, str) for name in FILTERS])
class AuditEntryViewSet(PrincipalMixin, viewsets.ReadOnlyModelViewSet):
    """Audit entries, newest first. Entries are append-only, so only GET is offered."""

    serializer_class = AuditEntrySerializer
    read_scope = scopes.MEMBERS_MANAGE
    filter_backends = []

    def get_queryset(self):
        if self.action != "list":
            return AuditEntry.objects.all()
        params = self.request.query_params
        return filter_entries(AuditEntry.objects.all(), **{name: params.get(name) for name in FILTERS})
