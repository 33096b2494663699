from accounts import scopes
from accounts.permissions import require_scope
from daoflow.command import DaoflowCommand
from deployments.follow import follow
from deployments.lookup import find_deployment
from deployments.serializers import DeploymentLogLineSerializer


class Command(DaoflowCommand):
    help = "Show a deployment's log lines (secret values are masked)."

    def add_command_arguments(self, parser):
        parser.add_argument("--deployment", required=True, help="Deployment id.")
        parser.add_argument("--follow", action="store_true", help="Keep printing until the deployment ends.")

    def run(self, principal, **options):
        deployment = find_deployment(principal, options["deployment"])
        require_scope(principal, scopes.LOGS_READ, deployment.service)
        if options["follow"] and not self._json:
            follow(deployment.pk, on_line=lambda line: self.stdout.write(self._format(line)), on_step=lambda s: None)
            return {"printed": True}
        lines = deployment.log_lines.select_related("step").order_by("pk")
        return {"deployment": deployment.pk, "lines": DeploymentLogLineSerializer(lines, many=True).data}

    @staticmethod
    def _format(line) -> str:
        step = line.step.name if line.step else "-"
        return f"[{step}] {line.text}"

    def render(self, data):
        for line in data.get("lines", []):
            self.stdout.write(f"[{line['step'] or '-'}] {line['text']}")
