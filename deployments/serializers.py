from rest_framework import serializers

from .models import Deployment, DeploymentLogLine, DeploymentStep


class DeploymentStepSerializer(serializers.ModelSerializer):
    duration_seconds = serializers.FloatField(read_only=True)

    class Meta:
        model = DeploymentStep
        fields = ["name", "status", "started_at", "finished_at", "duration_seconds", "detail"]


class DeploymentSerializer(serializers.ModelSerializer):
    service = serializers.CharField(source="service.name", read_only=True)
    project = serializers.CharField(source="service.project.name", read_only=True)
    server = serializers.CharField(source="server.name", read_only=True)
    actor = serializers.CharField(source="actor_label", read_only=True)
    steps = DeploymentStepSerializer(many=True, read_only=True)
    queue_position = serializers.SerializerMethodField(
        help_text="For a queued deployment, its place among the queued deployments of its service "
                  "(1 starts next); null otherwise."
    )

    class Meta:
        model = Deployment
        fields = [
            "id", "service", "project", "server", "status", "conclusion", "trigger", "actor",
            "created_at", "started_at", "finished_at", "failed_step", "failure_reason",
            "cancelled_by", "rollback_of", "queue_position", "steps",
        ]
        read_only_fields = fields

    def get_queue_position(self, deployment: Deployment) -> int | None:
        return deployment.queue_position


class DeploymentLogLineSerializer(serializers.ModelSerializer):
    step = serializers.CharField(source="step.name", read_only=True, default=None)

    class Meta:
        model = DeploymentLogLine
        fields = ["id", "step", "stream", "text", "created_at"]
