from daoflow.command import DaoflowCommand
from deployments.plan import plan
from services.lookup import find_service

from ._deployment_output import render_plan


class Command(DaoflowCommand):
    help = ("Preview a deployment of a service without queuing it: target server, source, steps, "
            "preflight checks and the changes against the current deployment (secret values masked). "
            "Exits 0 even when a check failed; read \"ready\" in the output.")

    def add_command_arguments(self, parser):
        parser.add_argument("--service", required=True, help="Service to preview.")
        parser.add_argument("--project", help="Project of the service, when its name is in several projects.")

    def run(self, principal, **options):
        service = find_service(principal, options["service"], options.get("project"))
        return {"plan": plan(principal, service)}

    def render(self, data):
        render_plan(self.stdout.write, data["plan"])
