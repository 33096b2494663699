from daoflow.command import DaoflowCommand
from deployments import actions
from deployments.plan import plan
from services.lookup import find_service

from ._deployment_output import DeploymentOutputMixin, render_plan


class Command(DeploymentOutputMixin, DaoflowCommand):
    help = "Deploy a service: queue a deployment of its current configuration."
    mutating = True

    def add_command_arguments(self, parser):
        parser.add_argument("--service", required=True, help="Service to deploy.")
        parser.add_argument("--project", help="Project of the service, when its name is in several projects.")
        parser.add_argument("--wait", action="store_true",
                            help="Follow the steps and log lines until the deployment ends; exit 1 if it failed.")
        parser.add_argument("--idempotency-key", default="",
                            help="Requests with the same key and input return the same deployment.")

    def run(self, principal, **options):
        service = find_service(principal, options["service"], options.get("project"))
        if options["dry_run"]:
            # The same preview as `daoflow plan`, so a dry run shows the
            # checks and changes instead of only the target.
            self.dry_run_done({"plan": plan(principal, service)})
        self.confirm(options, f"Deploy {service}")
        deployment, created = actions.deploy(principal, service, idempotency_key=options["idempotency_key"])
        return self.deployment_result(deployment, wait=options["wait"], created=created)

    def render(self, data):
        if data.get("dry_run"):
            render_plan(self.stdout.write, data["plan"])
            self.stdout.write("Dry run: nothing was queued.")
            return
        self.render_deployment(data["deployment"])
        if data.get("created") is False:
            self.stdout.write("  (an earlier deployment with this idempotency key and input; nothing new was queued)")
